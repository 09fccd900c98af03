"""A thin, typed adapter over the ``docker`` CLI: build, run, inspect, logs, history, remove.

It shells out to the CLI (no SDK dependency) and does not interpret anything: callers (the
engine tests, later ``unroot verify``) decide what an outcome means.  Failures to reach the
engine become :class:`DockerUnavailable` (an :class:`~unroot.errors.EnvironmentProblem`, exit 3);
a command the engine refuses becomes :class:`DockerFailed` carrying its output; a command that
overruns its timeout becomes :class:`DockerTimeout` after the container it started is removed.

The CLI is ``UNROOT_DOCKER`` when set, else ``/usr/bin/docker`` when present (what Debian's
``docker.io`` ships: a newer CLI elsewhere on PATH may insist on buildx for ``docker build``),
else ``docker`` on PATH.  ``build(buildkit=False)`` sets ``DOCKER_BUILDKIT=0``: the classic
builder; ``build(buildkit=True)`` sets ``DOCKER_BUILDKIT=1``: the BuildKit the daemon embeds
(Docker 20.10.24 from Debian: BuildKit v0.8.3-31-gc0149372 with its builtin Dockerfile frontend, no
buildx needed; ``FROM`` resolves images of the local store).  The two differ on
``security.capability`` (``COPY --from`` keeps it only under BuildKit: tests/engine).  Both accept
``--quiet`` (the image id on stdout), ``--label``, ``--target`` and ``--build-arg``; BuildKit tags
no intermediate stage images but keeps a build cache (:meth:`Docker.prune_build_cache`).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from unroot.errors import EnvironmentProblem

DEFAULT_CLI = "/usr/bin/docker"


class DockerUnavailable(EnvironmentProblem):
    """No docker CLI, or the engine does not answer."""


class DockerFailed(EnvironmentProblem):
    """The CLI exited non-zero; ``result`` holds what it said."""

    def __init__(self, message: str, result: Completed) -> None:
        self.result = result
        super().__init__(message)


class DockerTimeout(EnvironmentProblem):
    """The CLI did not finish in time (its container, if any, has been removed)."""


@dataclass(frozen=True, slots=True)
class Completed:
    """One CLI invocation: its arguments (after ``docker``), exit status and output."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


@dataclass(frozen=True, slots=True)
class Layer:
    """One line of ``docker history``: the layer's size in bytes and the instruction."""

    size: int
    created_by: str


@dataclass(frozen=True, slots=True)
class RunOptions:
    """The ``docker run`` flags unroot varies (seed 002's grid and a few more)."""

    user: str | None = None
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    no_new_privileges: bool = False
    network: str | None = None  # "bridge", "host", "none", "container:…"
    publish: tuple[str, ...] = ()  # "127.0.0.1:8080:80"
    sysctls: Mapping[str, str] = field(default_factory=dict)
    entrypoint: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    extra: tuple[str, ...] = ()  # any other flags, passed verbatim before the image

    def flags(self) -> list[str]:
        out: list[str] = []
        if self.user is not None:
            out += ["--user", self.user]
        for cap in self.cap_drop:
            out += ["--cap-drop", cap]
        for cap in self.cap_add:
            out += ["--cap-add", cap]
        if self.no_new_privileges:
            out += ["--security-opt", "no-new-privileges"]
        if self.network is not None:
            out += ["--network", self.network]
        for mapping in self.publish:
            out += ["--publish", mapping]
        for key, value in self.sysctls.items():
            out += ["--sysctl", f"{key}={value}"]
        if self.entrypoint is not None:
            out += ["--entrypoint", self.entrypoint]
        for key, value in self.labels.items():
            out += ["--label", f"{key}={value}"]
        return out + list(self.extra)


def find_cli() -> str:
    """The docker CLI to use (see the module doc); DockerUnavailable when there is none."""
    chosen = os.environ.get("UNROOT_DOCKER")
    if chosen:
        return chosen
    if os.access(DEFAULT_CLI, os.X_OK):
        return DEFAULT_CLI
    found = shutil.which("docker")
    if found is None:
        raise DockerUnavailable("no docker CLI (install docker.io, or set UNROOT_DOCKER)")
    return found


class Docker:
    """The engine behind one CLI. Every method runs one ``docker`` command."""

    def __init__(self, cli: str | None = None, *, timeout: float = 120.0) -> None:
        self.cli = cli or find_cli()
        self.timeout = timeout

    # -- plumbing ----------------------------------------------------------------------------
    def call(
        self,
        args: Sequence[str],
        *,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
        container: str | None = None,
    ) -> Completed:
        """Run ``docker ARGS``; ``container``: remove it if the command times out."""
        full_env = {**os.environ, **env} if env else None
        try:
            proc = subprocess.run(
                [self.cli, *args],
                capture_output=True,
                text=True,
                errors="replace",
                timeout=self.timeout if timeout is None else timeout,
                env=full_env,
                check=False,
            )
        except FileNotFoundError:
            raise DockerUnavailable(f"no docker CLI at {self.cli}") from None
        except subprocess.TimeoutExpired:
            if container is not None:
                self.remove(container)
            raise DockerTimeout(f"docker {' '.join(args[:2])} did not finish in time") from None
        done = Completed(tuple(args), proc.returncode, proc.stdout, proc.stderr)
        if check and not done.ok:
            if "Cannot connect to the Docker daemon" in proc.stderr:
                raise DockerUnavailable(proc.stderr.strip().splitlines()[-1])
            last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise DockerFailed(f"docker {args[0]} failed ({proc.returncode}): {last}", done)
        return done

    # -- the engine ----------------------------------------------------------------------------
    def version(self) -> dict[str, Any]:
        """``docker version`` as JSON (``Server.Version``, ``Server.Components``…)."""
        data = json.loads(self.call(["version", "--format", "{{json .}}"]).stdout)
        if not isinstance(data, dict) or not data.get("Server"):
            raise DockerUnavailable("the docker engine does not answer")
        return data

    def info(self) -> dict[str, Any]:
        """``docker info`` as JSON (``Driver``, ``ServerVersion``, ``SecurityOptions``…)."""
        data = json.loads(self.call(["info", "--format", "{{json .}}"]).stdout)
        if not isinstance(data, dict):
            raise DockerUnavailable("docker info gave no object")
        return data

    # -- images --------------------------------------------------------------------------------
    def build(
        self,
        context: str | os.PathLike[str],
        dockerfile: str | os.PathLike[str] | None = None,
        tag: str | None = None,
        *,
        buildkit: bool = False,
        target: str | None = None,
        build_args: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
        no_cache: bool = False,
        timeout: float | None = None,
    ) -> str:
        """Build ``context`` (up to stage ``target``) and return the image id.  ``buildkit=False``
        is the classic builder, which leaves the other stages' images untagged: build and tag
        them with ``target`` too to be able to remove them; ``buildkit=True`` leaves no stage
        images, only build cache."""
        args = ["build", "--quiet"]
        if dockerfile is not None:
            args += ["--file", os.fspath(dockerfile)]
        if tag is not None:
            args += ["--tag", tag]
        if target is not None:
            args += ["--target", target]
        for key, value in (build_args or {}).items():
            args += ["--build-arg", f"{key}={value}"]
        for key, value in (labels or {}).items():
            args += ["--label", f"{key}={value}"]
        if no_cache:
            args.append("--no-cache")
        if not buildkit:
            args.append("--force-rm")  # a failed RUN must not leave its container behind
        args.append(os.fspath(context))
        env = {"DOCKER_BUILDKIT": "1" if buildkit else "0"}
        done = self.call(args, env=env, timeout=timeout)
        return done.stdout.strip().splitlines()[-1]

    def prune_build_cache(self, until: str | None = None) -> None:
        """Remove BuildKit's unused build cache (only entries older than ``until``, a Go
        duration such as ``"24h"``, when given); never raises."""
        args = ["builder", "prune", "--force", "--all"]
        if until is not None:
            args += ["--filter", f"until={until}"]
        self.call(args, check=False, timeout=120)

    def history(self, image: str) -> list[Layer]:
        """The image's layers, newest first, sizes in bytes."""
        fmt = "{{.Size}}\t{{.CreatedBy}}"
        out = self.call(["history", "--no-trunc", "--human=false", "--format", fmt, image]).stdout
        layers = []
        for line in out.splitlines():
            size, _, created_by = line.partition("\t")
            layers.append(Layer(int(size), created_by))
        return layers

    def remove_image(self, image: str) -> None:
        """Remove an image (force, no error when it is gone)."""
        self.call(["image", "rm", "--force", image], check=False)

    # -- containers ----------------------------------------------------------------------------
    def run(
        self,
        image: str,
        command: Iterable[str] = (),
        options: RunOptions | None = None,
        *,
        timeout: float | None = None,
    ) -> Completed:
        """``docker run --rm`` in the foreground: its exit status and output (never raises on a
        non-zero exit: the container's status is the caller's fact to judge)."""
        name = new_name()
        opts = (options or RunOptions()).flags()
        args = ["run", "--rm", "--name", name, *opts, image, *command]
        return self.call(args, timeout=timeout, check=False, container=name)

    def start(
        self, image: str, command: Iterable[str] = (), options: RunOptions | None = None
    ) -> Completed:
        """``docker run --detach``: ``stdout`` is the container id when ``ok``; a refused start
        (``docker run`` itself failing, e.g. an OCI runtime error) is returned, not raised."""
        opts = (options or RunOptions()).flags()
        args = ["run", "--detach", "--name", new_name(), *opts, image, *command]
        done = self.call(args, check=False)
        if done.ok:
            return Completed(done.args, 0, done.stdout.strip(), done.stderr)
        return done

    def inspect(
        self, ref: str, kind: Literal["container", "image", "network"] = "container"
    ) -> dict[str, Any]:
        """``docker KIND inspect REF`` as a dict."""
        data = json.loads(self.call([kind, "inspect", ref]).stdout)
        if not isinstance(data, list) or len(data) != 1 or not isinstance(data[0], dict):
            raise DockerFailed(
                f"docker {kind} inspect {ref}: unexpected output", Completed((), 0, "", "")
            )
        return data[0]

    def logs(self, container: str) -> tuple[str, str]:
        """The container's (stdout, stderr) so far."""
        done = self.call(["logs", container])
        return done.stdout, done.stderr

    def remove(self, container: str) -> None:
        """Remove a container, running or not (no error when it is gone)."""
        self.call(["rm", "--force", "--volumes", container], check=False, timeout=60)

    def containers(self, label: str) -> list[str]:
        """Ids of the containers (running or not) carrying ``label`` (``key`` or ``key=value``)."""
        out = self.call(["ps", "--all", "--quiet", "--no-trunc", "--filter", f"label={label}"])
        return out.stdout.split()


def new_name(prefix: str = "unroot") -> str:
    """A container name unlikely to collide (several callers share one engine)."""
    return f"{prefix}-{secrets.token_hex(6)}"
