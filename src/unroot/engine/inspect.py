"""A container or an image as its engine describes it: ``docker``/``podman`` ``inspect``.

Four engines, one shape: rootful Docker (``docker``), rootless Docker (``docker -H
unix:///run/user/UID/docker.sock``), rootful Podman (``podman``) and rootless Podman
(``podman --remote --url unix:///run/user/UID/podman/podman.sock``) — the sockets
:mod:`unroot.engine.rootless` finds.  Parsing is pure (:func:`parse_container`,
:func:`parse_image`); :func:`inspect_container` and :func:`inspect_image` run the CLI.

Where the engines differ (observed on Docker 20.10.24 and Podman 4.3.1):

* ``HostConfig.CapAdd``/``CapDrop``: Docker keeps the flags as given; Podman rewrites them
  relative to Docker's default set (``--cap-add NET_BIND_SERVICE`` shows no CapAdd, since it is
  in Podman's defaults), so Podman's own ``BoundingCaps`` and ``EffectiveCaps`` are kept too;
* ``Config.Entrypoint``: a list for Docker, one space-joined string for Podman 4;
* ``NetworkMode``: Docker's ``default`` is its bridge; rootless Podman's is ``slirp4netns``
  or ``pasta``;
* ``Config.ExposedPorts``: Docker only; both give ``HostConfig.PortBindings``.

A name the engine does not know is bad input (:class:`~unroot.errors.UsageError`, exit 2); an
engine that does not answer is :class:`~unroot.errors.EnvironmentProblem` (exit 3).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from unroot.engine.docker import find_cli
from unroot.errors import EnvironmentProblem, UsageError
from unroot.facts import cannot
from unroot.facts.rootfs import overlay_layers

Engine = Literal["docker", "podman"]
PODMAN_CLI = "podman"
_TIMEOUT = 30.0
_UNREACHABLE = ("cannot connect", "unable to connect", "connection refused", "is the docker daemon")
_NOT_FOUND = ("no such container", "no such object", "no such image", "image not known",
              "failed to find image")  # fmt: skip


@dataclass(frozen=True, slots=True)
class EngineCli:
    """How to reach one engine: ``argv`` before the command, and how messages name it."""

    engine: Engine
    argv: tuple[str, ...]
    rootless_uid: int | None = None

    @property
    def title(self) -> str:
        if self.rootless_uid is None:
            return self.engine
        return f"rootless {self.engine} of uid {self.rootless_uid}"


def engine_cli(
    engine: Engine = "docker", rootless_uid: int | None = None, cli: str | None = None
) -> EngineCli:
    """The CLI of rootful ``engine``, or of the rootless one of user ``rootless_uid``."""
    if engine == "docker":
        program = cli or find_cli()
        if rootless_uid is None:
            return EngineCli(engine, (program,))
        url = f"unix:///run/user/{rootless_uid}/docker.sock"
        return EngineCli(engine, (program, "-H", url), rootless_uid)
    program = cli or shutil.which(PODMAN_CLI) or PODMAN_CLI
    if rootless_uid is None:
        return EngineCli(engine, (program,))
    url = f"unix:///run/user/{rootless_uid}/podman/podman.sock"
    return EngineCli(engine, (program, "--remote", "--url", url), rootless_uid)


@dataclass(frozen=True, slots=True)
class MountInfo:
    """One entry of ``Mounts``: ``kind`` bind, volume or tmpfs; ``source`` a host path."""

    kind: str
    source: str
    destination: str
    rw: bool


@dataclass(frozen=True, slots=True)
class PortBinding:
    """A container port, and the host port the engine publishes it on (None: not published,
    or a port the engine picks at start)."""

    port: int
    proto: str
    host_port: int | None = None
    host_ip: str = ""


@dataclass(frozen=True, slots=True)
class ContainerFacts:
    """What ``inspect`` says about a container (see the module doc for the engines' forms)."""

    name: str
    id: str
    image: str
    running: bool
    pid: int | None  # the init process on the host, None when not running
    user: str  # Config.User as given ("2200:2200", "www", "" for the image's default)
    cap_add: tuple[str, ...]
    cap_drop: tuple[str, ...]
    privileged: bool
    security_opt: tuple[str, ...]
    network_mode: str
    sysctls: tuple[tuple[str, str], ...]
    group_add: tuple[str, ...]
    mounts: tuple[MountInfo, ...]
    entrypoint: tuple[str, ...] | None
    cmd: tuple[str, ...] | None
    env: tuple[tuple[str, str], ...]
    working_dir: str
    exposed: tuple[PortBinding, ...]
    bindings: tuple[PortBinding, ...]
    #: Podman's own view (None for Docker): the bounding set and what the process starts with
    bounding_caps: tuple[str, ...] | None = None
    effective_caps: tuple[str, ...] | None = None
    #: overlay layer directories, top (the container's own) first; () for other drivers
    layers: tuple[str, ...] = ()

    @property
    def no_new_privileges(self) -> bool:
        """``--security-opt no-new-privileges`` (``:true``/``=true``; ``:false`` is off)."""
        on = False
        for option in self.security_opt:
            key, _, value = option.replace("=", ":").partition(":")
            if key.strip() == "no-new-privileges":
                on = value.strip().lower() in ("", "true", "1")
        return on

    @property
    def host_network(self) -> bool:
        return self.network_mode == "host"

    def env_value(self, key: str) -> str | None:
        """The value of ``key`` in ``Config.Env`` (the last one wins)."""
        return next((v for k, v in reversed(self.env) if k == key), None)


@dataclass(frozen=True, slots=True)
class ImageFacts:
    """What ``image inspect`` says: the image's USER, ENTRYPOINT, CMD, ENV, EXPOSE."""

    ref: str
    id: str
    user: str
    entrypoint: tuple[str, ...] | None
    cmd: tuple[str, ...] | None
    env: tuple[tuple[str, str], ...]
    working_dir: str
    exposed: tuple[PortBinding, ...]
    layers: tuple[str, ...] = ()  # overlay layer directories, top first


# -- pure ---------------------------------------------------------------------------------------
def _strings(value: object) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    return ()


def _argv(value: object) -> tuple[str, ...] | None:
    if isinstance(value, list):
        return tuple(str(v) for v in value) if value else None
    if isinstance(value, str):  # Podman 4: the entrypoint joined with spaces
        return tuple(value.split()) or None
    return None


def _env(value: object) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in _strings(value):
        key, _, val = item.partition("=")
        pairs.append((key, val))
    return tuple(pairs)


def _port_key(key: str) -> tuple[int, str] | None:
    port, _, proto = key.partition("/")
    return (int(port), proto or "tcp") if port.isdigit() else None


def _exposed(value: object) -> tuple[PortBinding, ...]:
    found = []
    for key in value if isinstance(value, dict) else ():
        parsed = _port_key(str(key))
        if parsed is not None:
            found.append(PortBinding(*parsed))
    return tuple(sorted(found, key=lambda b: (b.port, b.proto)))


def _bindings(value: object) -> tuple[PortBinding, ...]:
    found: list[PortBinding] = []
    for key, hosts in (value if isinstance(value, dict) else {}).items():
        parsed = _port_key(str(key))
        if parsed is None:
            continue
        entries = hosts if isinstance(hosts, list) and hosts else [{}]
        for entry in entries:
            host = entry if isinstance(entry, dict) else {}
            text = str(host.get("HostPort") or "")
            binding = PortBinding(
                *parsed, int(text) if text.isdigit() else None, str(host.get("HostIp") or "")
            )
            if binding not in found:
                found.append(binding)
    return tuple(sorted(found, key=lambda b: (b.port, b.proto, b.host_port or 0)))


def _section(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def parse_container(data: Mapping[str, Any]) -> ContainerFacts:
    """One element of ``docker container inspect`` / ``podman container inspect``."""
    config, host = _section(data, "Config"), _section(data, "HostConfig")
    state = _section(data, "State")
    running = bool(state.get("Running"))
    pid = state.get("Pid")
    listed = data.get("Mounts")
    mounts = tuple(
        MountInfo(
            str(m.get("Type", "")),
            str(m.get("Source", "")),
            str(m.get("Destination", "")),
            bool(m.get("RW", True)),
        )
        for m in (listed if isinstance(listed, list) else ())
        if isinstance(m, dict)
    )
    sysctls = host.get("Sysctls")
    sysctls = sysctls if isinstance(sysctls, dict) else {}
    return ContainerFacts(
        name=str(data.get("Name", "")).lstrip("/"),
        id=str(data.get("Id", "")),
        image=str(config.get("Image") or data.get("ImageName") or data.get("Image") or ""),
        running=running,
        pid=pid if running and type(pid) is int and pid > 0 else None,
        user=str(config.get("User") or ""),
        cap_add=_strings(host.get("CapAdd")),
        cap_drop=_strings(host.get("CapDrop")),
        privileged=bool(host.get("Privileged")),
        security_opt=_strings(host.get("SecurityOpt")),
        network_mode=str(host.get("NetworkMode") or "default"),
        sysctls=tuple(sorted((str(k), str(v)) for k, v in sysctls.items())),
        group_add=_strings(host.get("GroupAdd")),
        mounts=mounts,
        entrypoint=_argv(config.get("Entrypoint")),
        cmd=_argv(config.get("Cmd")),
        env=_env(config.get("Env")),
        working_dir=str(config.get("WorkingDir") or "/"),
        exposed=_exposed(config.get("ExposedPorts")),
        bindings=_bindings(host.get("PortBindings")),
        bounding_caps=_strings(data["BoundingCaps"]) if "BoundingCaps" in data else None,
        effective_caps=_strings(data["EffectiveCaps"]) if "EffectiveCaps" in data else None,
        layers=overlay_layers(data.get("GraphDriver")),
    )


def parse_image(data: Mapping[str, Any], ref: str) -> ImageFacts:
    """One element of ``docker image inspect`` / ``podman image inspect``."""
    config = _section(data, "Config")
    return ImageFacts(
        ref=ref,
        id=str(data.get("Id", "")),
        user=str(config.get("User") or ""),
        entrypoint=_argv(config.get("Entrypoint")),
        cmd=_argv(config.get("Cmd")),
        env=_env(config.get("Env")),
        working_dir=str(config.get("WorkingDir") or "/"),
        exposed=_exposed(config.get("ExposedPorts")),
        layers=overlay_layers(data.get("GraphDriver")),
    )


# -- the CLI ------------------------------------------------------------------------------------
def _inspect(cli: EngineCli, kind: str, ref: str) -> dict[str, Any] | None:
    """``inspect`` of one object; None when the engine does not know it."""
    argv = [*cli.argv, kind, "inspect", ref]
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, errors="replace", timeout=_TIMEOUT, check=False
        )
    except OSError as exc:
        raise cannot(exc, "run", cli.argv[0]) from None
    except subprocess.TimeoutExpired:
        raise EnvironmentProblem(f"{cli.title} did not answer in {_TIMEOUT:g}s") from None
    lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
    said = lines[-1] if lines else ""
    if done.returncode != 0 or "".join(done.stdout.split())[:2] != "[{":
        lowered = said.lower()
        if any(text in lowered for text in _UNREACHABLE):
            raise EnvironmentProblem(f"{cli.title} does not answer: {said}")
        if any(text in lowered for text in _NOT_FOUND) or done.stdout.strip() == "[]":
            return None
        raise EnvironmentProblem(f"{' '.join(argv[-3:])} failed: {said or 'no output'}")
    try:
        data = json.loads(done.stdout)
    except ValueError:
        raise EnvironmentProblem(f"{cli.title} {kind} inspect {ref}: not JSON") from None
    if not isinstance(data, list) or len(data) != 1 or not isinstance(data[0], dict):
        raise EnvironmentProblem(f"{cli.title} {kind} inspect {ref}: unexpected output")
    return data[0]


def inspect_container(cli: EngineCli, name: str) -> ContainerFacts:
    """The container ``name`` (or id); UsageError when the engine has none."""
    if not name or name.startswith("-"):
        raise UsageError(f"not a container name: {name!r}")
    data = _inspect(cli, "container", name)
    if data is None:
        raise UsageError(f"{cli.title} has no container {name!r}")
    return parse_container(data)


def inspect_image(cli: EngineCli, ref: str) -> ImageFacts | None:
    """The image ``ref`` from the engine's local store; None when it is not there."""
    if not ref or ref.startswith("-"):
        return None
    data = _inspect(cli, "image", ref)
    return None if data is None else parse_image(data, ref)
