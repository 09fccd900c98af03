"""The process table as ps(1) sees it: pid, parent, real uid, comm, argv and executable.

Processes come and go while we look: one that is gone (or refuses us) is None, not an error,
so a scan of ``/proc`` tolerates the races.  ``OSError`` is translated here, once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from unroot.facts import PROCESS_GONE, PROCFS_PATH, cannot
from unroot.facts.proc import status_fields


@dataclass(frozen=True, slots=True)
class Process:
    """``exe`` is the link ``/proc/PID/exe`` reads ("" when refused: a kernel thread, or not
    ours to read); it ends in `` (deleted)`` when the binary was replaced since the exec."""

    pid: int
    ppid: int
    uid: int
    comm: str
    argv: tuple[str, ...]
    exe: str


def read_process(pid: int, procfs: str = PROCFS_PATH) -> Process | None:
    """The process ``pid``, or None once it is gone."""
    base = os.path.join(procfs, str(pid))
    try:
        with open(os.path.join(base, "status"), encoding="utf-8", errors="replace") as file:
            fields = status_fields(file.read())
        with open(os.path.join(base, "cmdline"), "rb") as binary:
            raw = binary.read()
    except OSError as exc:
        if exc.errno in PROCESS_GONE:
            return None
        raise cannot(exc, "read", base) from None
    try:
        exe = os.readlink(os.path.join(base, "exe"))
    except OSError:
        exe = ""
    uids, ppid = fields.get("Uid", "").split(), fields.get("PPid", "")
    if not uids or not uids[0].isdigit() or not ppid.isdigit():
        return None
    argv = tuple(arg.decode(errors="surrogateescape") for arg in raw.split(b"\0")[:-1])
    return Process(pid, int(ppid), int(uids[0]), fields.get("Name", ""), argv, exe)


def processes(procfs: str = PROCFS_PATH, uid: int | None = None) -> tuple[Process, ...]:
    """Every process (of real uid ``uid`` when given), by pid."""
    try:
        entries = os.listdir(procfs)
    except OSError as exc:
        raise cannot(exc, "list", procfs) from None
    found = []
    for entry in sorted((e for e in entries if e.isdigit()), key=int):
        process = read_process(int(entry), procfs)
        if process is not None and (uid is None or process.uid == uid):
            found.append(process)
    return tuple(found)


def ancestors(pid: int, procfs: str = PROCFS_PATH) -> tuple[Process, ...]:
    """The parent chain of ``pid`` up to (not including) pid 1, nearest first."""
    chain: list[Process] = []
    current = read_process(pid, procfs)
    while current is not None and current.ppid > 1 and len(chain) < 256:
        current = read_process(current.ppid, procfs)
        if current is not None:
            chain.append(current)
    return tuple(chain)
