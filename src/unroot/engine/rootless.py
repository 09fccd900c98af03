"""Rootless container engines of the users of this host, from each engine's own report.

An engine is rootless when it says so — Docker: ``docker -H unix:///run/user/UID/docker.sock
info --format '{{json .}}'`` lists ``name=rootless`` in ``SecurityOptions``; Podman: ``podman
--remote --url unix:///run/user/UID/podman/podman.sock info --format json`` sets
``host.security.rootless`` — never from a text search.  The users are those of ``/etc/passwd``
with a ``/run/user/UID`` (XDG_RUNTIME_DIR, where both engines put their sockets).

The daemon is the process of that user holding the socket's listening end (read in its own
network namespace: rootless dockerd lives in rootlesskit's).  Docker's rootlesskit is the
nearest ancestor of dockerd named ``rootlesskit``; its binary's file capability and the running
process's CapEff differ after ``setcap cap_net_bind_service=ep`` until a restart
(``restart_needed``); its ``--port-driver`` decides whether a published port is bound by
rootlesskit in the host's namespace (``builtin``) or inside (``slirp4netns``).  Rootless Podman
has no rootlesskit process: its ports go through rootlessport, inside the user namespace.

Parsing is pure (:func:`parse_docker_info`, :func:`parse_podman_info`, :func:`port_driver`);
:func:`rootless_engines` gathers, and an engine that does not answer is a fact (``problem``),
not an exception.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from unroot.errors import EnvironmentProblem, ParseError, UnrootError
from unroot.facts import PROCFS_PATH, cannot
from unroot.facts.filecaps import read_file_caps
from unroot.facts.limits import NOFILE, Limit, read_limits
from unroot.facts.listeners import unix_socket_servers
from unroot.facts.proc import read_status
from unroot.facts.processes import Process, ancestors, processes
from unroot.model.caps import NET_BIND_SERVICE, CapSet
from unroot.model.filecaps import FileCaps

Engine = Literal["docker", "podman"]
RUN_USER = "/run/user"
PASSWD = "/etc/passwd"  # noqa: S105 - the account database, not a password
DOCKER_CLI = "docker"
PODMAN_CLI = "podman"
ROOTLESSKIT_DEFAULT_PORT_DRIVER = "none"  # rootlesskit --help: "--port-driver ... (default: none)"
_TIMEOUT = 20.0
_SOCKETS: tuple[tuple[Engine, str], ...] = (
    ("docker", "docker.sock"),
    ("podman", "podman/podman.sock"),
)


@dataclass(frozen=True, slots=True)
class Owner:
    """A user with a runtime directory (``/run/user/UID``)."""

    name: str
    uid: int
    runtime_dir: str


@dataclass(frozen=True, slots=True)
class EngineReport:
    """What the engine says about itself."""

    version: str
    rootless: bool


@dataclass(frozen=True, slots=True)
class RootlessKit:
    """The rootlesskit process in front of a rootless dockerd.

    ``restart_needed``: the binary now carries cap_net_bind_service (permitted) but the running
    process does not have it in CapEff — it was started before ``setcap``.
    """

    pid: int
    binary: str
    file_caps: FileCaps | None
    effective: CapSet
    port_driver: str
    nofile: Limit | None
    restart_needed: bool


@dataclass(frozen=True, slots=True)
class RootlessEngine:
    """One engine of one user, as its socket answered."""

    engine: Engine
    user: str
    uid: int
    socket: str
    version: str
    rootless: bool
    daemon_pid: int | None
    daemon_nofile: Limit | None
    rootlesskit: RootlessKit | None
    problem: str = ""  # why the engine did not answer ("" when it did)


# -- pure ---------------------------------------------------------------------------------------
def parse_docker_info(text: str) -> EngineReport:
    """``docker info --format '{{json .}}'`` → version and the ``name=rootless`` option."""
    info = _json_object(text, "docker info")
    options = info.get("SecurityOptions") or []
    if not isinstance(options, list):
        raise ParseError("docker info: SecurityOptions is not a list")
    rootless = any(
        "name=rootless" in str(option).split(",") for option in options
    )  # "name=seccomp,profile=default", "name=rootless"
    return EngineReport(str(info.get("ServerVersion", "")), rootless)


def parse_podman_info(text: str) -> EngineReport:
    """``podman info --format json`` → version and ``host.security.rootless``."""
    info = _json_object(text, "podman info")
    host, version = info.get("host"), info.get("version")
    security = host.get("security") if isinstance(host, dict) else None
    if not isinstance(security, dict) or not isinstance(security.get("rootless"), bool):
        raise ParseError("podman info: no host.security.rootless")
    number = version.get("Version", "") if isinstance(version, dict) else ""
    return EngineReport(str(number), security["rootless"])


def port_driver(argv: Sequence[str]) -> str:
    """rootlesskit's ``--port-driver`` (``--port-driver=X`` or ``--port-driver X``), up to the
    command it runs (the first argument that is not an option)."""
    driver = ROOTLESSKIT_DEFAULT_PORT_DRIVER
    args = list(argv[1:])
    for index, arg in enumerate(args):
        if arg == "--":
            break
        if arg.startswith("--port-driver="):
            driver = arg.split("=", 1)[1]
        elif arg == "--port-driver" and index + 1 < len(args):
            driver = args[index + 1]
    return driver


def needs_restart(file_caps: FileCaps | None, effective: CapSet) -> bool:
    binds = file_caps is not None and NET_BIND_SERVICE.issubset(file_caps.permitted)
    return binds and not NET_BIND_SERVICE.issubset(effective)


def parse_passwd(text: str) -> tuple[tuple[str, int], ...]:
    """(name, uid) of every well-formed ``/etc/passwd`` line."""
    users = []
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) >= 3 and fields[2].isdigit():
            users.append((fields[0], int(fields[2])))
    return tuple(users)


# -- gathering ----------------------------------------------------------------------------------
def owners(passwd: str = PASSWD, run_user: str = RUN_USER) -> tuple[Owner, ...]:
    """Users of ``passwd`` with a runtime directory under ``run_user``, by uid."""
    try:
        with open(passwd, encoding="utf-8", errors="replace") as file:
            users = parse_passwd(file.read())
    except OSError as exc:
        raise cannot(exc, "read", passwd) from None
    found = {}
    for name, uid in users:
        runtime_dir = os.path.join(run_user, str(uid))
        if uid not in found and os.path.isdir(runtime_dir):
            found[uid] = Owner(name, uid, runtime_dir)
    return tuple(found[uid] for uid in sorted(found))


def rootless_engines(
    passwd: str = PASSWD,
    run_user: str = RUN_USER,
    procfs: str = PROCFS_PATH,
    docker: str = DOCKER_CLI,
    podman: str = PODMAN_CLI,
) -> tuple[RootlessEngine, ...]:
    """Every engine socket in every user's runtime directory, asked what it is."""
    found = []
    for owner in owners(passwd, run_user):
        user_processes: tuple[Process, ...] | None = None
        for engine, relative in _SOCKETS:
            socket = os.path.join(owner.runtime_dir, relative)
            if not os.path.exists(socket):
                continue
            if user_processes is None:
                user_processes = processes(procfs, uid=owner.uid)
            found.append(
                inspect_engine(
                    engine,
                    owner,
                    socket,
                    user_processes,
                    procfs,
                    docker if engine == "docker" else podman,
                )
            )
    return tuple(found)


def inspect_engine(  # noqa: PLR0917 - the facts one engine needs
    engine: Engine,
    owner: Owner,
    socket: str,
    user_processes: Sequence[Process],
    procfs: str = PROCFS_PATH,
    cli: str | None = None,
) -> RootlessEngine:
    """One engine behind ``socket``: its report, its daemon and (Docker) its rootlesskit."""
    url = f"unix://{socket}"
    if engine == "docker":
        argv = [cli or DOCKER_CLI, "-H", url, "info", "--format", "{{json .}}"]
    else:
        argv = [cli or PODMAN_CLI, "--remote", "--url", url, "info", "--format", "json"]
    report, problem = EngineReport("", rootless=False), ""
    try:
        report = (parse_docker_info if engine == "docker" else parse_podman_info)(_run(argv))
    except UnrootError as exc:
        problem = str(exc)
    servers = unix_socket_servers(socket, (p.pid for p in user_processes), procfs)
    daemon = servers[0] if servers else None
    kit = None
    if daemon is not None and engine == "docker":
        kit = _rootlesskit(daemon, procfs)
    return RootlessEngine(
        engine=engine,
        user=owner.name,
        uid=owner.uid,
        socket=socket,
        version=report.version,
        rootless=report.rootless,
        daemon_pid=daemon,
        daemon_nofile=_nofile(daemon, procfs) if daemon is not None else None,
        rootlesskit=kit,
        problem=problem,
    )


def _rootlesskit(daemon: int, procfs: str) -> RootlessKit | None:
    kit = next((p for p in ancestors(daemon, procfs) if p.comm == "rootlesskit"), None)
    if kit is None:
        return None
    binary = kit.exe.removesuffix(" (deleted)")
    try:
        file_caps = read_file_caps(binary) if binary else None
    except UnrootError:
        file_caps = None
    try:
        effective = read_status(kit.pid, procfs).effective
    except UnrootError:
        return None  # it exited while we looked
    return RootlessKit(
        pid=kit.pid,
        binary=kit.exe,
        file_caps=file_caps,
        effective=effective,
        port_driver=port_driver(kit.argv),
        nofile=_nofile(kit.pid, procfs),
        restart_needed=needs_restart(file_caps, effective),
    )


def _nofile(pid: int, procfs: str) -> Limit | None:
    try:
        return read_limits(pid, procfs).get(NOFILE)
    except UnrootError:
        return None


def _run(argv: list[str]) -> str:
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, errors="replace", timeout=_TIMEOUT, check=False
        )
    except OSError as exc:
        raise cannot(exc, "run", argv[0]) from None
    except subprocess.TimeoutExpired:
        raise EnvironmentProblem(f"{argv[0]} info did not answer in {_TIMEOUT:g}s") from None
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        raise EnvironmentProblem(
            f"{argv[0]} info: exit {done.returncode}: {lines[-1] if lines else ''}"
        )
    return done.stdout


def _json_object(text: str, what: str) -> dict[str, object]:
    try:
        value = json.loads(text)
    except ValueError:
        raise ParseError(f"{what}: not JSON") from None
    if not isinstance(value, dict):
        raise ParseError(f"{what}: not a JSON object")
    return value
