"""PURE: an image run on an engine under one cell of verify's grid → the model's outcome.

The facts come from elsewhere (the image's USER, its exec chain with each program's file
capabilities as the engine stores them, the engine's profile and the sysctl of the namespace
``--network host`` joins); this module only asks the model, in the order the kernel does:
the runtime's start credentials (:func:`unroot.model.runtimes.start_creds`), each execve of
the chain (:func:`unroot.model.chain.exec_chain`), then the bind of the port in the network
namespace the process ends up in (:func:`unroot.model.bind.bind_verdict`, with
:func:`unroot.model.runtimes.unprivileged_port_start` and
:func:`unroot.model.runtimes.host_netns_owned`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from unroot.model.bind import bind_verdict
from unroot.model.caps import CapSet
from unroot.model.chain import exec_chain
from unroot.model.execve import RUNNING, ExecFile, Kernel
from unroot.model.runtimes import (
    RuntimeProfile,
    host_netns_owned,
    start_creds,
    unprivileged_port_start,
)

Predicted = Literal["serving", "exec-eperm", "bind-eacces"]


@dataclass(frozen=True, slots=True)
class RunCell:
    """One way to run the image: the network and the capability settings."""

    network: str  # "bridge" | "host"
    cap_drop: tuple[str, ...] = ()
    cap_add: tuple[str, ...] = ()
    no_new_privileges: bool = False


@dataclass(frozen=True, slots=True)
class EngineNetns:
    """The namespace ``--network host`` joins on this engine: its sysctl, and a note."""

    host_port_start: int
    note: str = ""
    #: A short caveat for the table's host cells that serve ("in rootlesskit's netns").
    serving_caveat: str = ""


@dataclass(frozen=True, slots=True)
class CellPrediction:
    outcome: Predicted
    effective: CapSet | None  # the service's effective set (None: the exec fails)
    port_start: int
    reasons: tuple[str, ...]
    caveat: str = ""  # where "serving" holds, when not the obvious place

    @property
    def explanation(self) -> str:
        return "; ".join(self.reasons)


def predict_cell(  # noqa: PLR0917 - the facts of one run, each used once
    runtime: RuntimeProfile,
    cell: RunCell,
    uid: int,
    gid: int,
    groups: Iterable[int],
    chain: Sequence[ExecFile],
    port: int,
    netns: EngineNetns,
    *,
    userns_root_uids: tuple[int, ...] = (0,),
    kernel: Kernel = RUNNING,
) -> CellPrediction:
    """The outcome the model predicts for ``chain`` started by ``runtime`` under ``cell``."""
    host = cell.network in ("host", "own")  # "own": a namespace of its own (--exec)
    creds = start_creds(
        runtime,
        uid,
        gid,
        groups,
        cell.cap_add,
        cell.cap_drop,
        cell.no_new_privileges,
        host,
        last_cap=kernel.last_cap,
    )
    result = exec_chain(creds, chain, userns_root_uids=userns_root_uids, kernel=kernel)
    bounding = creds.bounding
    shown = "every capability" if bounding == CapSet.all(kernel.last_cap) else str(bounding)
    reasons = [f"{runtime.title} starts uid {uid} with the bounding set {shown}"]
    if creds.ambient:
        reasons.append(f"ambient {creds.ambient}")
    for step in result.steps:
        reasons += [r.text for r in step.result.reasons]
    start = unprivileged_port_start(runtime, host, netns.host_port_start)
    if not result.ok:
        if host and netns.note:
            reasons.append(netns.note)
        return CellPrediction("exec-eperm", None, start, tuple(reasons))
    effective = result.final.effective
    owned = host_netns_owned(runtime) if host else True
    verdict = bind_verdict(
        port,
        effective=effective,
        unprivileged_port_start=start,
        netns_owned_by_caller_userns=owned,
    )
    reasons += [r.text for r in verdict.reasons]
    if host and netns.note:
        reasons.append(netns.note)
    caveat = netns.serving_caveat if host and verdict.allowed else ""
    return CellPrediction(
        "serving" if verdict.allowed else "bind-eacces", effective, start, tuple(reasons), caveat
    )
