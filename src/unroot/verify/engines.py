"""The engine a verify run talks to: its CLI, what it says about itself, and its facts.

How the user names it: ``--engine docker|podman`` picks the CLI; ``--host URL`` the daemon
(``unix:///run/user/1001/docker.sock``), else ``DOCKER_HOST`` (docker) or ``CONTAINER_HOST``
(podman, used with ``--remote``), else the CLI's default (rootful Docker's socket, or a local
``podman``).  The engine says whether it is rootless (``docker info``'s ``name=rootless``,
``podman info``'s ``host.security.rootless``); for a rootless engine behind a unix socket the
owner of the socket is the user whose user namespace the containers live in (rootid of the
file capabilities the store keeps, root of the container's user namespace).  Rootless Docker's
``--network host`` is rootlesskit's namespace: its sysctl is read in the daemon's namespace.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from unroot.engine.docker import Completed
from unroot.engine.rootless import (
    Owner,
    inspect_engine,
    parse_docker_info,
    parse_podman_info,
)
from unroot.errors import EnvironmentProblem, UnrootError, UsageError
from unroot.facts.processes import processes
from unroot.model.runtimes import (
    DOCKER,
    DOCKER_ROOTLESS,
    PODMAN_ROOTLESS,
    RuntimeProfile,
)
from unroot.situation.image import EngineNetns
from unroot.verify.netns import Netns

EngineName = Literal["docker", "podman"]
ENGINES: tuple[EngineName, ...] = ("docker", "podman")
_INFO_TIMEOUT = 30.0


@dataclass(frozen=True)
class ContainerEngine:
    """One engine, as ``info`` described it."""

    name: EngineName
    argv: tuple[str, ...]  # the CLI and its connection flags
    host: str | None
    version: str
    rootless: bool
    owner_uid: int | None  # rootless: the user running the engine
    daemon_pid: int | None

    @property
    def title(self) -> str:
        kind = "rootless " if self.rootless else ""
        return f"{kind}{'Docker' if self.name == 'docker' else 'Podman'} {self.version}"

    @property
    def profile(self) -> RuntimeProfile:
        if self.name == "docker":
            return DOCKER_ROOTLESS if self.rootless else DOCKER
        if self.rootless:
            return PODMAN_ROOTLESS
        raise UsageError("rootful Podman has no runtime profile in unroot yet (use rootless)")

    @property
    def userns_root_uids(self) -> tuple[int, ...]:
        """Host uids that are root of the containers' user namespace and its ancestors."""
        if self.rootless and self.owner_uid is not None:
            return (self.owner_uid, 0)
        return (0,)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "rootless": self.rootless}

    # -- commands ------------------------------------------------------------------------
    def call(self, args: Sequence[str], timeout: float = 60.0, check: bool = False) -> Completed:
        try:
            proc = subprocess.run(
                [*self.argv, *args],
                capture_output=True,
                text=True,
                errors="replace",
                timeout=timeout,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except FileNotFoundError:
            raise EnvironmentProblem(f"no {self.name} CLI at {self.argv[0]}") from None
        except subprocess.TimeoutExpired:
            raise EnvironmentProblem(
                f"{self.name} {' '.join(args[:2])} did not finish in {timeout:g}s"
            ) from None
        done = Completed(tuple(args), proc.returncode, proc.stdout, proc.stderr)
        if check and not done.ok:
            last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise EnvironmentProblem(f"{self.name} {args[0]} failed ({proc.returncode}): {last}")
        return done

    def inspect(self, ref: str, kind: str = "container") -> dict[str, Any] | None:
        """``KIND inspect REF`` as a dict; None when there is no such object."""
        done = self.call([kind, "inspect", ref], timeout=30)
        if not done.ok:
            return None
        data = json.loads(done.stdout or "null")
        if isinstance(data, list) and len(data) == 1 and isinstance(data[0], dict):
            return data[0]
        return None

    def logs(self, container: str) -> str:
        done = self.call(["logs", container], timeout=30)
        return (done.stdout + done.stderr).strip()

    def remove(self, *containers: str) -> None:
        """Remove containers, running or not, without a grace period; never raises."""
        if not containers:
            return
        grace = ["--time", "0"] if self.name == "podman" else []
        with contextlib.suppress(UnrootError):
            self.call(["rm", "--force", *grace, *containers], timeout=60)

    def labelled(self, label: str) -> list[str]:
        args = ["ps", "--all", "--filter", f"label={label}", "--format", "{{.Names}}"]
        done = self.call(args, timeout=30)
        return done.stdout.split() if done.ok else []

    # -- facts ---------------------------------------------------------------------------
    def netns(self, host_port_start: int) -> EngineNetns:
        """The namespace ``--network host`` joins: the host's (``host_port_start``), or
        rootlesskit's for rootless Docker."""
        if self.name == "docker" and self.rootless:
            if self.daemon_pid is None:
                raise EnvironmentProblem("cannot find the rootless dockerd's process")
            with Netns(self.daemon_pid) as kit:
                value = kit.port_start()
            return EngineNetns(
                value,
                "--network host of rootless Docker is rootlesskit's network namespace "
                f"(ip_unprivileged_port_start={value}, owned by the containers' user namespace), "
                "not the host's: a server there is not reachable from the host",
                "in rootlesskit's netns, not reachable from the host",
            )
        if self.rootless:
            return EngineNetns(
                host_port_start,
                "--network host of rootless Podman is the host's own network namespace, owned "
                "by the initial user namespace: capabilities of the container's user namespace "
                "do not count there",
            )
        return EngineNetns(host_port_start)

    def host_netns(self) -> Netns:
        """The namespace ``--network host`` joins, opened."""
        if self.name == "docker" and self.rootless and self.daemon_pid is not None:
            return Netns(self.daemon_pid)
        return Netns()


def _host_for(name: EngineName, host: str | None, env: Mapping[str, str]) -> str | None:
    if host:
        return host
    return env.get("DOCKER_HOST" if name == "docker" else "CONTAINER_HOST") or None


def _cli(name: EngineName, env: Mapping[str, str]) -> str:
    if name == "docker":
        chosen = env.get("UNROOT_DOCKER")
        if chosen:
            return chosen
        return "/usr/bin/docker" if os.access("/usr/bin/docker", os.X_OK) else "docker"
    return env.get("UNROOT_PODMAN") or "podman"


def _socket_owner(host: str | None) -> Owner | None:
    if not host or not host.startswith("unix://"):
        return None
    path = host.removeprefix("unix://")
    try:
        uid = os.stat(path).st_uid
    except OSError:
        return None
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = str(uid)
    return Owner(name, uid, os.path.dirname(path))


def connect(
    name: str, host: str | None = None, env: Mapping[str, str] | None = None
) -> ContainerEngine:
    """The engine ``name`` behind ``host`` (see the module doc); exit 3 when it does not
    answer."""
    if name not in ENGINES:
        raise UsageError(f"--engine must be docker or podman, not {name!r}")
    kind: EngineName = "docker" if name == "docker" else "podman"
    env = os.environ if env is None else env
    url = _host_for(kind, host, env)
    cli = _cli(kind, env)
    if kind == "docker":
        argv: tuple[str, ...] = (cli, "-H", url) if url else (cli,)
        info_args = ["info", "--format", "{{json .}}"]
    else:
        argv = (cli, "--remote", "--url", url) if url else (cli,)
        info_args = ["info", "--format", "json"]
    probe = ContainerEngine(kind, argv, url, "", rootless=False, owner_uid=None, daemon_pid=None)
    done = probe.call(info_args, timeout=_INFO_TIMEOUT)
    if not done.ok:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        where = f" at {url}" if url else ""
        raise EnvironmentProblem(f"the {kind} engine{where} does not answer: {last}")
    if kind == "docker":  # docker 20.10's info exits 0 when the daemon does not answer
        with contextlib.suppress(ValueError):
            errors = json.loads(done.stdout).get("ServerErrors") or []
            if errors:
                where = f" at {url}" if url else ""
                raise EnvironmentProblem(f"the docker engine{where} does not answer: {errors[0]}")
    parse = parse_docker_info if kind == "docker" else parse_podman_info
    try:
        report = parse(done.stdout)
    except UnrootError as exc:
        raise EnvironmentProblem(f"{kind} info: {exc}") from None
    if not report.version:
        raise EnvironmentProblem(f"the {kind} engine did not say its version: is it running?")
    owner_uid = daemon_pid = None
    if report.rootless:
        owner = _socket_owner(url)
        if owner is None:
            raise UsageError(
                f"a rootless {kind} engine must be named by its unix socket (--host unix://…)"
            )
        owner_uid = owner.uid
        if kind == "docker":
            socket_path = (url or "").removeprefix("unix://")
            found = inspect_engine(kind, owner, socket_path, processes(uid=owner.uid), cli=cli)
            daemon_pid = found.daemon_pid
    return ContainerEngine(kind, argv, url, report.version, report.rootless, owner_uid, daemon_pid)
