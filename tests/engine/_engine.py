"""Helpers for the engine tests: the engine handle, a per-scope lab that cleans up after itself,
free ports, host listeners and a tiny HTTP probe. Fixtures live in conftest.py."""

from __future__ import annotations

import dataclasses
import fcntl
import http.client
import os
import random
import re
import secrets
import socket
import subprocess
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from unroot.engine.docker import Completed, Docker, RunOptions

REPO = Path(__file__).resolve().parents[2]
IMAGES = Path(__file__).resolve().parent / "images"
SCRIPTS = REPO / "scripts"
BASE_IMAGE = os.environ.get("UNROOT_BASE_IMAGE", "unroot-base:bookworm")
#: Every container and image the tests create carries this label (value: the session id).
LABEL = "org.unroot.test"
HOST_PORT_START = "/proc/sys/net/ipv4/ip_unprivileged_port_start"
PORT80_LOCK = "/var/lock/unroot-host-privileged-port.lock"
#: Tests that use the rootless engines of scripts/rootless-engines.sh hold it shared; a test that
#: restarts one of them (or changes rootlesskit's file capability) holds it exclusively.
ROOTLESS_LOCK = "/var/lock/unroot-rootless-engines-tests.lock"
Builder = Literal["classic", "buildkit"]
BUILDERS: tuple[Builder, ...] = ("classic", "buildkit")


@dataclass(frozen=True)
class Engine:
    """The engine the session got, with what the reports cite."""

    docker: Docker
    base: str
    session: str
    server_version: str
    components: Mapping[str, str]
    storage_driver: str

    def describe(self, builder: Builder | None = None) -> str:
        """The engine (and ``builder``) as failure messages cite them."""
        parts = ", ".join(f"{k} {v}" for k, v in self.components.items() if k != "Engine")
        text = f"Docker {self.server_version} ({parts}; storage {self.storage_driver})"
        if builder == "classic":
            return f"the classic builder of {text}"
        if builder == "buildkit":
            version = buildkit_version(self.server_version) or "version not known to the tests"
            return f"the BuildKit embedded in {text} (BuildKit {version})"
        return text


def buildkit_version(server_version: str) -> str | None:
    """The BuildKit a Docker engine vendors, where the tests know it: moby's 20.10 branch pinned
    v0.8.3-31-gc0149372 from 20.10.20 on (release notes of 20.10.20: "updated BuildKit to
    v0.8.3-31-gc0149372"; no later 20.10 release changed it). The API does not report it."""
    if re.match(r"20\.10\.(2[0-9])\b", server_version):
        return "v0.8.3-31-gc0149372"
    return None


@dataclass
class Lab:
    """Builds images and runs containers for one test scope; :meth:`cleanup` removes them all."""

    engine: Engine
    containers: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)

    @property
    def docker(self) -> Docker:
        return self.engine.docker

    def _label(self, options: RunOptions | None) -> RunOptions:
        options = options or RunOptions()
        labels = {**options.labels, LABEL: self.engine.session}
        return dataclasses.replace(options, labels=labels)

    def build(
        self,
        context: Path,
        name: str,
        *,
        dockerfile: Path | None = None,
        build_args: Mapping[str, str] | None = None,
        stages: Iterable[str] = (),
        builder: Builder = "classic",
    ) -> str:
        """Build from ``context`` with ``builder`` ("classic": DOCKER_BUILDKIT=0, "buildkit":
        DOCKER_BUILDKIT=1, the daemon's embedded BuildKit); the base image name is passed as
        build arg BASE. Returns the tag (removed again by cleanup). Under the classic builder,
        name the earlier ``stages`` of a multi-stage Dockerfile: they are tagged too (a cached
        rebuild with ``--target``), else their images stay behind untagged; BuildKit makes no
        stage images, so ``stages`` is ignored there."""
        if builder not in BUILDERS:
            raise ValueError(f"builder must be one of {BUILDERS}, not {builder!r}")
        suffix = "" if builder == "classic" else "-bk"
        tag = f"unroot-test-{name}{suffix}:{self.engine.session}"
        args = {"BASE": self.engine.base, **(build_args or {})}
        earlier = tuple(stages) if builder == "classic" else ()
        for stage in (*earlier, None):
            stage_tag = (
                tag if stage is None else f"unroot-test-{name}-{stage}:{self.engine.session}"
            )
            self.images.append(stage_tag)
            self.docker.build(
                context,
                dockerfile,
                stage_tag,
                buildkit=builder == "buildkit",
                target=stage,
                build_args=args,
                labels={LABEL: self.engine.session},
                timeout=300,
            )
        return tag

    def run(
        self,
        image: str,
        command: Iterable[str] = (),
        options: RunOptions | None = None,
        timeout: float = 60,
    ) -> Completed:
        """Foreground ``docker run --rm`` (removed on timeout too)."""
        return self.docker.run(image, command, self._label(options), timeout=timeout)

    def start(
        self, image: str, command: Iterable[str] = (), options: RunOptions | None = None
    ) -> Completed:
        """Detached ``docker run``; the container is removed by :meth:`cleanup`."""
        done = self.docker.start(image, command, self._label(options))
        if done.ok:
            self.containers.append(done.stdout)
        return done

    def remove(self, container: str) -> None:
        self.docker.remove(container)
        if container in self.containers:
            self.containers.remove(container)

    def cleanup(self) -> None:
        for container in self.containers:
            self.docker.remove(container)
        for image in reversed(self.images):
            self.docker.remove_image(image)
        self.containers.clear()
        self.images.clear()


def run_script(name: str, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPTS / name), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def new_session() -> str:
    return secrets.token_hex(4)


def host_port_start() -> int:
    return int(Path(HOST_PORT_START).read_text().strip())


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (racy by nature; the range is large)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def host_listeners(port: int) -> list[str]:
    """The host's TCP sockets listening on ``port`` (``/proc/net/tcp{,6}``, state 0A)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            local, state = fields[1], fields[3]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                found.append(f"{table}: {local}")
    return found


_HELD_ELSEWHERE: set[int] = set()


@contextmanager
def host_privileged_port(preferred: int = 80, wait: float = 5.0) -> Iterator[int]:
    """A free port below 1024 on the host's network for one host-network cell, held under an
    advisory lock that other unroot engine sessions on this machine take too.

    ``preferred`` (:80, seed 002's port) when nothing listens there; other work on the same
    machine (a launcher test, a benchmark) may hold it, so after ``wait`` seconds another free
    port in 600..1023 is used instead — the bind rule is the same for any port below
    ip_unprivileged_port_start.
    """
    with open(PORT80_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        deadline = time.monotonic() + (0 if preferred in _HELD_ELSEWHERE else wait)
        while host_listeners(preferred) and time.monotonic() < deadline:
            time.sleep(0.5)
        if not host_listeners(preferred):
            _HELD_ELSEWHERE.discard(preferred)
            yield preferred
            return
        _HELD_ELSEWHERE.add(preferred)  # waited in vain once: do not wait again this session
        for port in random.sample(range(600, 1024), 424):
            if not host_listeners(port):
                yield port
                return
        raise AssertionError("no free port below 1024 on the host")


@contextmanager
def host_privileged_ports(
    count: int, preferred: int = 80, wait: float = 5.0
) -> Iterator[list[int]]:
    """``count`` distinct free ports below 1024 on the host's network, held together under the
    same advisory lock as :func:`host_privileged_port` (so that host-network containers can run
    side by side): ``preferred`` first when nothing listens there within ``wait`` seconds, the
    rest drawn from 600..1023."""
    with host_privileged_port(preferred, wait) as first:
        ports = [first]
        for port in random.sample(range(600, 1024), 424):
            if len(ports) == count:
                break
            if port not in ports and not host_listeners(port):
                ports.append(port)
        if len(ports) < count:
            raise AssertionError(f"fewer than {count} free ports below 1024 on the host")
        yield ports[:count]


@contextmanager
def rootless_engines_lock(exclusive: bool = False) -> Iterator[None]:
    """Hold :data:`ROOTLESS_LOCK`: shared to use the rootless engines, exclusive to restart them
    (other sessions on this machine may be running containers on them)."""
    with open(ROOTLESS_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield


def image_file(engine: Engine, image: str, path: str) -> bytes:
    """The bytes of ``path`` in ``image`` (``docker run --rm IMAGE cat PATH``)."""
    done = subprocess.run(
        [
            engine.docker.cli,
            "run",
            "--rm",
            "--label",
            f"{LABEL}={engine.session}",
            image,
            "cat",
            path,
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"cat {path} in {image}: {done.stderr.decode(errors='replace')}")
    return done.stdout


def http_get(port: int, path: str = "/", timeout: float = 1.0) -> str | None:
    """The body of a 200 answer from 127.0.0.1:port, or None (refused, reset, not HTTP)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read().decode(errors="replace")
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()
    return body if response.status == 200 else None


_GETCAP = re.compile(r"^(\S+)\s+(?:=\s+)?(\S.*)$")


def parse_getcap(text: str) -> dict[str, str]:
    """``getcap`` lines (``/x cap_net_bind_service=ep``, libcap 2.66) → {path: caps text}."""
    out = {}
    for line in text.splitlines():
        match = _GETCAP.match(line.strip())
        if match:
            out[match.group(1)] = match.group(2)
    return out


def classify(text: str) -> str:
    """The outcome a failed container's error or log shows: exec-eperm, bind-eacces, crashed."""
    lowered = text.lower()
    if "operation not permitted" in lowered and "exec" in lowered:
        return "exec-eperm"
    if "bind" in lowered and "permission denied" in lowered:
        return "bind-eacces"
    return "crashed"


def run_and_observe(
    lab: Lab,
    tag: str,
    command: tuple[str, ...],
    options: RunOptions,
    *,
    port: int,
    page: str,
    wait: float = 15.0,
) -> tuple[str, str]:
    """Start the container and watch it: (outcome, evidence) — ``serving`` once
    127.0.0.1:``port`` answers with ``page``, else what made it stop, or ``timeout``."""
    started = lab.start(tag, command, options)
    if not started.ok:  # the engine refused to start it (older runc: exec errors land here)
        return classify(started.stderr), started.stderr.strip()
    container = started.stdout
    deadline = time.monotonic() + wait
    try:
        while time.monotonic() < deadline:
            body = http_get(port)
            if body is not None and page in body:
                return "serving", f"HTTP 200 on 127.0.0.1:{port}"
            state = lab.docker.inspect(container)["State"]
            if not state["Running"]:
                out, err = lab.docker.logs(container)
                evidence = f"exit {state['ExitCode']}: {(err + out + state['Error']).strip()}"
                return classify(evidence), evidence
            time.sleep(0.1)
        return "timeout", f"neither served nor exited within {wait} s"
    finally:
        lab.remove(container)
