"""Who doctor's questions are about, and what they are: plain facts, no I/O.

A :class:`Subject` holds *host* ids (what the kernel compares with inode owners), the effective
capabilities the service has when it binds or opens, the network namespace it binds in, and the
questions: ports it binds itself, host ports an engine publishes for it, paths it reads or
writes, the program it executes.  Every builder (flags, a container, a compose service, a unit)
records where each fact came from in ``evidence``, which the text view prints next to the checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from unroot.model.caps import EMPTY, CapSet

Engine = Literal["docker", "podman"]


@dataclass(frozen=True, slots=True)
class RootlessRef:
    """A rootless engine of ``owner`` (container 0 → ``uid``; n ≥ 1 → its n-th subordinate id)."""

    owner: str
    uid: int
    engine: Engine


@dataclass(frozen=True, slots=True)
class PortAsk:
    """A port to bind (by the service) or to publish (by its engine), and why it is asked."""

    port: int
    proto: str = "tcp"
    origin: str = "--port"


@dataclass(frozen=True, slots=True)
class PathAsk:
    """A host path the service opens with ``want`` (``r``, ``w``, ``x`` or a combination)."""

    path: str
    want: str = "r"
    origin: str = "--read"


@dataclass(frozen=True, slots=True)
class ExeAsk:
    """The program the service executes.

    ``path`` is where the host reads it (for a running container: through
    ``/proc/PID/root``); ``shown`` is the path the service sees.  ``nosuid`` None: read from
    the mount ``path`` is on.
    """

    path: str
    shown: str
    no_new_privs: bool = False
    bounding: CapSet | None = None
    nosuid: bool | None = None
    origin: str = "--exe"


@dataclass(frozen=True, slots=True)
class Subject:
    """The identity the questions are about, in host ids, with the questions themselves.

    ``container_uid``/``container_gid``: the ids inside its user namespace when they differ
    from the host's (rootless engines).  ``netns_pid``: a process in the network namespace it
    binds in (None: the host's, or ``unprivileged_port_start`` when the runtime's value is
    known without a running process).
    """

    label: str
    uid: int
    gid: int
    groups: tuple[int, ...] = ()
    effective: CapSet = EMPTY
    name: str | None = None
    container_uid: int | None = None
    container_gid: int | None = None
    netns_pid: int | None = None
    unprivileged_port_start: int | None = None
    host_network: bool = True
    rootless: RootlessRef | None = None
    binds: tuple[PortAsk, ...] = ()
    publishes: tuple[PortAsk, ...] = ()
    paths: tuple[PathAsk, ...] = ()
    exe: ExeAsk | None = None
    evidence: tuple[str, ...] = ()
