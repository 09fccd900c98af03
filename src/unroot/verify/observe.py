"""Run one cell on the engine and watch it: serving, exec-eperm, bind-eacces, crashed, timeout.

The container is started detached with a name and a label chosen beforehand (so that it can be
removed even when ``run`` is interrupted), its process's network namespace is opened as soon as
the engine reports the pid, and readiness is probed from inside that namespace: the port must
accept, then ``GET PATH`` must answer with the expected status (``--tcp``: accepting is
enough).  A container that stops is classified from its log and the engine's error
(:func:`unroot.verify.outcomes.classify`).  The observed CapEff is the process's when it
serves (or when first seen), the sysctl that of its namespace.
"""

from __future__ import annotations

import dataclasses
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from unroot.errors import UnrootError
from unroot.facts.proc import read_status
from unroot.situation.image import RunCell
from unroot.verify.engines import ContainerEngine
from unroot.verify.netns import Netns
from unroot.verify.outcomes import Outcome, classify, last_lines

LABEL = "org.unroot.verify"
_POLL = 0.2
_STOPPED = ("exited", "dead", "stopped", "removing")


class Interrupted(Exception):
    """The run is being stopped (Ctrl-C): the cell's container is removed, not observed."""


@dataclass(frozen=True, slots=True)
class Probe:
    port: int
    http_path: str | None = "/"  # None: --tcp
    status: int = 200

    @property
    def text(self) -> str:
        if self.http_path is None:
            return f"TCP connect to 127.0.0.1:{self.port}"
        return f"GET {self.http_path} on 127.0.0.1:{self.port} → {self.status}"


@dataclass(frozen=True, slots=True)
class Observation:
    outcome: Outcome
    detail: str
    logs: tuple[str, ...] = ()
    cap_eff: str | None = None
    port_start: int | None = None
    container: str | None = None  # kept with --keep-on-failure
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "detail": self.detail,
            "logs": list(self.logs),
            "cap_eff": self.cap_eff,
            "ip_unprivileged_port_start": self.port_start,
            "container": self.container,
            "seconds": round(self.seconds, 2),
        }


@dataclass
class Janitor:
    """Every container this run started (by name, known before ``run``); Ctrl-C sets
    ``stopping`` and :meth:`sweep` removes them all, plus anything carrying the run's label."""

    engine: ContainerEngine
    labels: tuple[str, ...] = ()  # the user's own (--label), beside the run's
    run_id: str = field(default_factory=lambda: secrets.token_hex(6))
    names: set[str] = field(default_factory=set)
    kept: set[str] = field(default_factory=set)
    stopping: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def new_name(self) -> str:
        name = f"unroot-verify-{self.run_id}-{secrets.token_hex(3)}"
        with self.lock:
            self.names.add(name)
        return name

    def remove(self, name: str) -> None:
        self.engine.remove(name)
        with self.lock:
            self.names.discard(name)

    def keep(self, name: str) -> None:
        with self.lock:
            self.names.discard(name)
            self.kept.add(name)

    def sweep(self) -> None:
        with self.lock:
            names = set(self.names)
            kept = set(self.kept)
        names |= set(self.engine.labelled(f"{LABEL}={self.run_id}"))
        self.engine.remove(*sorted(names - kept))
        with self.lock:
            self.names.clear()


def run_flags(engine: ContainerEngine, cell: RunCell, user: str | None) -> list[str]:
    flags = []
    if user is not None:
        flags += ["--user", user]
    if cell.network == "host" or engine.name == "docker":
        flags += ["--network", cell.network]  # "bridge" on rootless Podman: its default
    for cap in cell.cap_drop:
        flags += ["--cap-drop", cap]
    for cap in cell.cap_add:
        flags += ["--cap-add", cap]
    if cell.no_new_privileges:
        flags += ["--security-opt", "no-new-privileges"]
    return flags


def _cap_eff(pid: int) -> str | None:
    try:
        return f"0x{read_status(pid).effective.mask:016x}"
    except UnrootError:
        return None


def observe_cell(  # noqa: PLR0917 - one run's settings
    engine: ContainerEngine,
    janitor: Janitor,
    image: str,
    cell: RunCell,
    user: str | None,
    probe: Probe,
    command: tuple[str, ...],
    timeout: float,
    keep_on_failure: bool = False,
) -> Observation:
    """Start ``image`` under ``cell``, watch it, remove it (unless kept after a failure)."""
    if janitor.stopping.is_set():
        raise Interrupted
    began = time.monotonic()
    name = janitor.new_name()
    label = f"{LABEL}={janitor.run_id}"
    args = ["run", "--detach", "--name", name, "--label", label]
    for extra in janitor.labels:
        args += ["--label", extra]
    args += run_flags(engine, cell, user)
    try:
        started = engine.call([*args, image, *command], timeout=max(timeout, 60))
        if janitor.stopping.is_set():
            raise Interrupted
        if not started.ok:  # the engine refused to start it (older runc: the exec error)
            text = started.stderr.strip()
            janitor.remove(name)
            return Observation(
                classify(text),
                f"{engine.name} run exited {started.returncode}",
                last_lines(text),
                seconds=time.monotonic() - began,
            )
        result = _watch(engine, janitor, name, probe, began + timeout, began)
    except BaseException:
        janitor.remove(name)
        raise
    if keep_on_failure and result.outcome != "serving":
        janitor.keep(name)
        return dataclasses.replace(result, container=name)
    janitor.remove(name)
    return result


def _watch(  # noqa: PLR0917 - the watch loop's state
    engine: ContainerEngine,
    janitor: Janitor,
    name: str,
    probe: Probe,
    deadline: float,
    began: float,
) -> Observation:
    netns: Netns | None = None
    pid = 0
    cap_eff: str | None = None
    port_start: int | None = None
    last_answer = "the port never accepted"
    try:
        while True:
            if janitor.stopping.is_set():
                raise Interrupted
            info = engine.inspect(name) or {}
            state = info.get("State") or {}
            status = str(state.get("Status", "")).lower()
            running = bool(state.get("Running")) and status not in _STOPPED
            if running and netns is None and int(state.get("Pid") or 0) > 0:
                pid = int(state["Pid"])
                try:
                    netns = Netns(pid)
                    port_start = netns.port_start()
                    cap_eff = _cap_eff(pid)
                except UnrootError:
                    netns = None
            if running and netns is not None:
                answer = _probe(netns, probe)
                if answer is None:
                    return Observation(
                        "serving",
                        f"{probe.text} inside net:[{netns.inode}]",
                        last_lines(engine.logs(name)),
                        _cap_eff(pid) or cap_eff,
                        port_start,
                        seconds=time.monotonic() - began,
                    )
                last_answer = answer
            if status in _STOPPED:
                logs = engine.logs(name)
                error = str(state.get("Error") or "")
                code = state.get("ExitCode")
                evidence = "\n".join(x for x in (logs, error) if x)
                return Observation(
                    classify(evidence),
                    f"exit status {code}" + (f": {error}" if error else ""),
                    last_lines(evidence),
                    cap_eff,
                    port_start,
                    seconds=time.monotonic() - began,
                )
            if time.monotonic() > deadline:
                return Observation(
                    "timeout",
                    f"neither served nor stopped in time ({last_answer})",
                    last_lines(engine.logs(name)),
                    cap_eff,
                    port_start,
                    seconds=time.monotonic() - began,
                )
            time.sleep(_POLL)
    finally:
        if netns is not None:
            netns.close()


def _probe(netns: Netns, probe: Probe) -> str | None:
    """None when ready, else what was seen."""
    try:
        if probe.http_path is None:
            return None if netns.accepts(probe.port) else "the port never accepted"
        status = netns.http_status(probe.port, probe.http_path)
    except OSError as exc:
        return f"probe failed: {exc.strerror or exc}"
    if status is None:
        return "the port never answered HTTP"
    if status == probe.status:
        return None
    return f"last HTTP status {status}, expected {probe.status}"
