"""Facts from ``/proc``: a process's credentials (proc(5), ``/proc/PID/status``).

The procfs root is injectable (``procfs=``, like psutil's ``PROCFS_PATH``) so tests feed captured
files.  Parsing is pure (:func:`parse_status`); the reader translates ``OSError`` into unroot's
errors, here and nowhere else.  The mount table is in :mod:`unroot.facts.mounts`.
"""

from __future__ import annotations

import errno
import os
import re
from dataclasses import dataclass

from unroot.errors import EnvironmentProblem, ParseError, UsageError
from unroot.facts import PROCFS_PATH, cannot
from unroot.model.caps import CapSet
from unroot.model.creds import Creds, Ids

_HEX_MASK = re.compile(r"[0-9a-fA-F]{1,16}")
_NUMBER = re.compile(r"[0-9]{1,10}")
_REQUIRED = ("Name", "Pid", "Uid", "Gid", "CapInh", "CapPrm", "CapEff", "CapBnd")

#: The Seccomp: field of proc(5) (SECCOMP_MODE_* in include/uapi/linux/seccomp.h).
SECCOMP_MODES = {0: "disabled", 1: "strict", 2: "filter"}


@dataclass(frozen=True, slots=True)
class ProcStatus:
    """What ``/proc/PID/status`` says about a process's privileges.

    ``ambient`` is empty on kernels before 4.3 (no ``CapAmb:`` line); ``no_new_privs`` is None
    before 4.10 and ``seccomp`` None without CONFIG_SECCOMP, because those lines are missing.
    ``name`` is the comm as the kernel shows it (a newline or backslash in it is escaped).
    """

    name: str
    pid: int
    uid: Ids
    gid: Ids
    groups: tuple[int, ...]
    inheritable: CapSet
    permitted: CapSet
    effective: CapSet
    bounding: CapSet
    ambient: CapSet
    no_new_privs: bool | None
    seccomp: int | None

    def to_creds(self, securebits: int = 0) -> Creds:
        """The model's credentials; securebits are not in status (prctl(PR_GET_SECUREBITS))."""
        return Creds(
            uid=self.uid,
            gid=self.gid,
            groups=frozenset(self.groups),
            inheritable=self.inheritable,
            permitted=self.permitted,
            effective=self.effective,
            bounding=self.bounding,
            ambient=self.ambient,
            securebits=securebits,
            no_new_privs=bool(self.no_new_privs),
        )


def status_fields(text: str) -> dict[str, str]:
    """The ``Key:\tvalue`` lines of a ``/proc/PID/status`` text, the first of each key (the
    Name keeps its spaces)."""
    fields: dict[str, str] = {}
    for line in text.split("\n"):
        key, sep, value = line.partition(":")
        if sep and key not in fields:
            fields[key] = value.removeprefix("\t") if key == "Name" else value.strip()
    return fields


def parse_status(text: str) -> ProcStatus:
    """Parse the text of ``/proc/PID/status``; ParseError names the field that is wrong."""
    fields = status_fields(text)
    missing = [key for key in _REQUIRED if key not in fields]
    if missing:
        raise ParseError(f"not a /proc/PID/status text: no {', '.join(missing)} line")
    return ProcStatus(
        name=fields["Name"],
        pid=_number(fields["Pid"], "Pid"),
        uid=_ids(fields["Uid"], "Uid"),
        gid=_ids(fields["Gid"], "Gid"),
        groups=tuple(_number(g, "Groups") for g in fields.get("Groups", "").split()),
        inheritable=_mask(fields["CapInh"], "CapInh"),
        permitted=_mask(fields["CapPrm"], "CapPrm"),
        effective=_mask(fields["CapEff"], "CapEff"),
        bounding=_mask(fields["CapBnd"], "CapBnd"),
        ambient=_mask(fields["CapAmb"], "CapAmb") if "CapAmb" in fields else CapSet(),
        no_new_privs=_flag(fields["NoNewPrivs"]) if "NoNewPrivs" in fields else None,
        seccomp=_number(fields["Seccomp"], "Seccomp") if "Seccomp" in fields else None,
    )


def read_status(pid: int | str, procfs: str = PROCFS_PATH) -> ProcStatus:
    """Read and parse ``{procfs}/{pid}/status``; ``pid`` may be ``"self"``.

    No such process: UsageError (exit 2).  Not allowed to read it, or no procfs at all:
    EnvironmentProblem (exit 3).
    """
    path = os.path.join(procfs, str(pid), "status")
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as file:
            text = file.read()
    except (FileNotFoundError, ProcessLookupError):
        if not os.path.isdir(procfs):
            raise EnvironmentProblem(f"{procfs} is not mounted (no procfs)") from None
        raise UsageError(f"no such process: {pid}") from None
    except PermissionError as exc:
        raise cannot(exc, "read", path) from None
    except OSError as exc:
        if exc.errno == errno.ESRCH:  # the process exited while we read it
            raise UsageError(f"no such process: {pid}") from None
        raise cannot(exc, "read", path) from None
    return parse_status(text)


# -- field parsers ----------------------------------------------------------------------------
def _number(text: str, key: str) -> int:
    if not _NUMBER.fullmatch(text):
        raise ParseError(f"{key}: expected a number, not {text!r}")
    return int(text)


def _ids(text: str, key: str) -> Ids:
    parts = text.split()
    if len(parts) != 4:
        raise ParseError(f"{key}: expected real, effective, saved and fs ids, not {text!r}")
    real, effective, saved, fs = (_number(part, key) for part in parts)
    try:
        return Ids(real, effective, saved, fs)
    except ParseError as exc:
        raise ParseError(f"{key}: {exc}") from None


def _mask(text: str, key: str) -> CapSet:
    if not _HEX_MASK.fullmatch(text):
        raise ParseError(f"{key}: expected a hex capability mask, not {text!r}")
    return CapSet(int(text, 16))


def _flag(text: str) -> bool:
    if text not in ("0", "1"):
        raise ParseError(f"NoNewPrivs: expected 0 or 1, not {text!r}")
    return text == "1"
