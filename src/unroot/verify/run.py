"""A verify run: the cells, predicted and observed, and what the exit status says.

``--matrix`` is {bridge, host} x {default capabilities, drop ALL, drop ALL + add
NET_BIND_SERVICE, no-new-privileges (with the default capabilities)}, plus the requested cell
when the flags name another one.  Cells run concurrently on a small pool (bridge cells each
have a network namespace of their own; host-network cells share one, so they run one at a
time), every container is removed as soon as it is observed, and on Ctrl-C (or SIGTERM) the
run stops starting cells and removes everything it started (:class:`Janitor`).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from threading import Lock
from typing import Any, TextIO

from unroot.errors import EnvironmentProblem, UsageError
from unroot.facts.sysctl import unprivileged_port_start as host_sysctl
from unroot.model.execve import Kernel
from unroot.model.runtimes import bounding_set
from unroot.situation.image import CellPrediction, EngineNetns, RunCell
from unroot.verify.engines import ContainerEngine, connect
from unroot.verify.image import ImageFacts, read_image
from unroot.verify.observe import Interrupted, Janitor, Observation, Probe, observe_cell
from unroot.verify.predict import Identity, predict, resolve_user

NETWORKS = ("bridge", "host")
GRID: tuple[tuple[str, RunCell], ...] = (
    ("default", RunCell("bridge")),
    ("drop ALL", RunCell("bridge", cap_drop=("ALL",))),
    ("drop ALL + NET_BIND_SERVICE", RunCell("bridge", ("ALL",), ("NET_BIND_SERVICE",))),
    ("no-new-privileges", RunCell("bridge", no_new_privileges=True)),
)
MAX_WORKERS = max(2, min(4, 2 * (os.cpu_count() or 1)))


@dataclass(frozen=True)
class Request:
    image: str
    engine: str = "docker"
    host: str | None = None
    user: str | None = None
    cell: RunCell = field(default_factory=lambda: RunCell("bridge"))
    port: int | None = None
    probe_path: str | None = "/"
    status: int = 200
    timeout: float = 60.0
    matrix: bool = False
    predict_only: bool = False
    keep_on_failure: bool = False
    command: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()


@dataclass
class CellReport:
    name: str
    cell: RunCell
    user: str
    predicted: CellPrediction
    observed: Observation | None = None
    requested: bool = False

    @property
    def agrees(self) -> bool:
        return self.observed is None or self.observed.outcome == self.predicted.outcome


@dataclass
class Report:
    image: str | None
    digest: str
    engine: dict[str, Any]
    port: int
    probe: str
    cells: list[CellReport]
    predict_only: bool
    matrix: bool
    notes: list[str] = field(default_factory=list)
    exec_path: str | None = None
    interrupted: bool = False

    @property
    def requested(self) -> CellReport:
        return next(c for c in self.cells if c.requested)

    def exit_code(self) -> int:
        if self.predict_only:
            if self.matrix:
                return 0
            return 0 if self.requested.predicted.outcome == "serving" else 1
        served = self.requested.observed is not None and self.requested.observed.outcome == (
            "serving"
        )
        return 0 if served and all(c.agrees for c in self.cells) else 1


def cell_name(cell: RunCell) -> str:
    for name, grid_cell in GRID:
        if (grid_cell.cap_drop, grid_cell.cap_add, grid_cell.no_new_privileges) == (
            cell.cap_drop,
            cell.cap_add,
            cell.no_new_privileges,
        ):
            return name
    parts = [f"drop {','.join(cell.cap_drop)}" if cell.cap_drop else ""]
    parts.append(f"add {','.join(cell.cap_add)}" if cell.cap_add else "")
    parts.append("no-new-privileges" if cell.no_new_privileges else "")
    return " + ".join(p for p in parts if p) or "default"


def cells_for(request: Request) -> list[tuple[str, RunCell, bool]]:
    wanted = request.cell
    if not request.matrix:
        return [(cell_name(wanted), wanted, True)]
    out: list[tuple[str, RunCell, bool]] = []
    for network in NETWORKS:
        for name, grid_cell in GRID:
            cell = RunCell(
                network, grid_cell.cap_drop, grid_cell.cap_add, grid_cell.no_new_privileges
            )
            out.append((name, cell, cell == wanted))
    if not any(requested for _, _, requested in out):
        out.append((cell_name(wanted), wanted, True))
    return out


def check_caps(engine: ContainerEngine, cell: RunCell) -> None:
    """Bad capability names are bad input (exit 2), before anything runs."""
    try:
        bounding_set(engine.profile, cell.cap_add, cell.cap_drop)
    except UsageError as exc:
        raise UsageError(f"--cap-add/--cap-drop: {exc}") from None


def choose_port(request: Request, image: ImageFacts) -> int:
    if request.port is not None:
        return request.port
    if len(image.exposed) == 1:
        return image.exposed[0]
    shown = ", ".join(map(str, image.exposed)) or "none"
    raise UsageError(f"--port is needed: {image.ref} exposes {shown}")


def verify(
    request: Request,
    progress: TextIO | None = None,
    on_engine: Callable[[ContainerEngine], None] | None = None,
) -> Report:
    engine = connect(request.engine, request.host)
    if on_engine is not None:
        on_engine(engine)
    check_caps(engine, request.cell)
    image = read_image(engine, request.image)
    port = choose_port(request, image)
    identity = resolve_user(image, request.user)
    programs, chain = image.chain(request.command or None, engine.owner_uid)
    kernel = Kernel.parse(os.uname().release)
    netns = engine.netns(host_sysctl())
    probe = Probe(port, request.probe_path, request.status)
    cells = [
        CellReport(
            name,
            cell,
            identity.text or "root",
            predict(engine, cell, identity, chain, port, netns, kernel),
            requested=requested,
        )
        for name, cell, requested in cells_for(request)
    ]
    report = Report(
        request.image,
        image.digest,
        engine.to_json(),
        port,
        probe.text,
        cells,
        request.predict_only,
        request.matrix,
        notes=_notes(engine, image, identity, programs, chain, netns),
    )
    if request.predict_only:
        return report
    if any(c.cell.network == "host" for c in cells):
        with engine.host_netns() as host:
            if host.accepts(port):
                raise EnvironmentProblem(
                    f"port {port} already accepts connections in the network namespace "
                    "--network host joins: another server holds it (stop it, or use --port)"
                )
    _observe_all(engine, request, report, probe, progress)
    return report


def _notes(  # noqa: PLR0917 - the facts the table rests on
    engine: ContainerEngine,
    image: ImageFacts,
    identity: Identity,
    programs: list[str],
    chain: list[Any],
    netns: EngineNetns,
) -> list[str]:
    notes = [f"engine: {engine.title} ({engine.profile.title} profile)"]
    notes.append(f"image: {image.ref} ({image.digest}), files read from the {image.layers_from}")
    notes.append(f"user: {identity.text or 'root'} (uid {identity.uid}, gid {identity.gid})")
    for program, file in zip(programs, chain, strict=True):
        caps = file.file_caps
        text = "no file capabilities"
        if caps is not None:
            text = f"file capabilities {caps.to_text()} (v{caps.revision}"
            text += f", rootid {caps.rootid})" if caps.rootid is not None else ")"
        notes.append(f"exec: {program} → {file.path}: {text}")
    notes.append(f"--network host: ip_unprivileged_port_start={netns.host_port_start}")
    if netns.note:
        notes.append(netns.note)
    return notes


def _observe_all(
    engine: ContainerEngine,
    request: Request,
    report: Report,
    probe: Probe,
    progress: TextIO | None,
) -> None:
    janitor = Janitor(engine, labels=request.labels)
    host_lock = Lock()
    began = time.monotonic()

    def one(entry: CellReport) -> Observation:
        def go() -> Observation:
            return observe_cell(
                engine,
                janitor,
                request.image,
                entry.cell,
                request.user,
                probe,
                request.command,
                request.timeout,
                request.keep_on_failure,
            )

        if entry.cell.network == "host":
            with host_lock:
                return go()
        return go()

    pool = ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(report.cells)))
    futures: dict[Future[Observation], CellReport] = {}
    try:
        futures = {pool.submit(one, entry): entry for entry in report.cells}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
            for future in done:
                futures[future].observed = future.result()
            _progress(progress, len(futures) - len(pending), len(futures), began)
        _progress(progress, len(futures), len(futures), began, final=True)
    except BaseException:
        janitor.stopping.set()
        report.interrupted = True
        pool.shutdown(wait=True, cancel_futures=True)
        janitor.sweep()
        _progress(progress, 0, 0, began, final=True)
        raise
    finally:
        pool.shutdown(wait=True)
    janitor.sweep()
    for future, entry in futures.items():
        if entry.observed is None and isinstance(future.exception(), Interrupted):
            raise KeyboardInterrupt


def _progress(
    stream: TextIO | None, done: int, total: int, began: float, final: bool = False
) -> None:
    if stream is None:
        return
    if final:
        stream.write("\r\033[K")
    else:
        stream.write(f"\r\033[Kverify: {done}/{total} cells, {time.monotonic() - began:.1f} s")
    stream.flush()


def terminal_progress() -> TextIO | None:
    return sys.stderr if sys.stderr.isatty() else None
