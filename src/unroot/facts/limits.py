"""Resource limits of a process: ``/proc/PID/limits`` (proc(5), fs/proc/base.c ``proc_pid_limits``).

Each line is a name padded to 26 columns, the soft and hard limits (a number or ``unlimited``)
and, for most, a unit.  Parsing is pure (:func:`parse_limits`); :func:`read_limits` translates
``OSError`` here, once.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass

from unroot.errors import ParseError, UsageError
from unroot.facts import PROCFS_PATH, cannot

NOFILE = "Max open files"  # RLIMIT_NOFILE


@dataclass(frozen=True, slots=True)
class Limit:
    """A soft and a hard limit; None is ``unlimited`` (RLIM_INFINITY)."""

    soft: int | None
    hard: int | None


def parse_limits(text: str) -> dict[str, Limit]:
    """``{"Max open files": Limit(1024, 524288), ...}`` from the text of ``/proc/PID/limits``."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith("Limit"):
        raise ParseError("not a /proc/PID/limits text: no header line")
    limits: dict[str, Limit] = {}
    for line in lines[1:]:
        if not line.strip():
            continue
        name, values = line[:26].strip(), line[26:].split()
        if not name or len(values) < 2:
            raise ParseError(f"/proc/PID/limits: not a limit line: {line!r}")
        limits[name] = Limit(_value(values[0], line), _value(values[1], line))
    return limits


def read_limits(pid: int | str, procfs: str = PROCFS_PATH) -> dict[str, Limit]:
    """Read and parse ``{procfs}/{pid}/limits``; no such process: UsageError."""
    path = os.path.join(procfs, str(pid), "limits")
    try:
        with open(path, encoding="ascii", errors="replace") as file:
            text = file.read()
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ESRCH):
            raise UsageError(f"no such process: {pid}") from None
        raise cannot(exc, "read", path) from None
    return parse_limits(text)


def _value(text: str, line: str) -> int | None:
    if text == "unlimited":
        return None
    if not text.isdigit():
        raise ParseError(f"/proc/PID/limits: not a limit: {text!r} in {line!r}")
    return int(text)
