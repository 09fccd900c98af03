"""Process credentials: the ids, groups, five capability sets, securebits and no_new_privs.

This is ``struct cred`` (include/linux/cred.h) as far as privilege decisions need it, and what
``/proc/PID/status`` shows (Uid/Gid/Groups/CapInh/CapPrm/CapEff/CapBnd/CapAmb/NoNewPrivs).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from unroot.model.caps import EMPTY, CapSet
from unroot.model.errors import ParseError

# include/uapi/linux/securebits.h
SECBIT_NOROOT = 1 << 0
SECBIT_NOROOT_LOCKED = 1 << 1
SECBIT_NO_SETUID_FIXUP = 1 << 2
SECBIT_NO_SETUID_FIXUP_LOCKED = 1 << 3
SECBIT_KEEP_CAPS = 1 << 4
SECBIT_KEEP_CAPS_LOCKED = 1 << 5
SECBIT_NO_CAP_AMBIENT_RAISE = 1 << 6
SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED = 1 << 7
SECBITS_ALL = (1 << 8) - 1

ID_MAX = (1 << 32) - 2  # (uid_t)-1 means "unchanged" in set*id(2), so it is never a real id


@dataclass(frozen=True, slots=True)
class Ids:
    """Real, effective, saved and filesystem ids (uid or gid), as /proc/PID/status lists them."""

    real: int = 0
    effective: int = 0
    saved: int = 0
    fs: int = 0

    def __post_init__(self) -> None:
        for value in (self.real, self.effective, self.saved, self.fs):
            if not 0 <= value <= ID_MAX:
                raise ParseError(f"id {value} out of range 0..{ID_MAX}")

    @classmethod
    def same(cls, value: int) -> Ids:
        return cls(value, value, value, value)

    @classmethod
    def parse(cls, text: str | list[int] | tuple[int, ...] | int) -> Ids:
        """``R``, ``R,E`` or ``R,E,S`` (fs follows the effective id, as set*id(2) make it)."""
        if isinstance(text, int):
            values = [text]
        elif isinstance(text, str):
            try:
                values = [int(part) for part in text.split(",")]
            except ValueError:
                raise ParseError(f"ids must be numbers: R[,E[,S]], not {text!r}") from None
        else:
            values = list(text)
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
                raise ParseError(f"ids must be integers, not {text!r}")
        if not 1 <= len(values) <= 4:
            raise ParseError(f"expected 1 to 4 ids (real, effective, saved, fs), got {len(values)}")
        real = values[0]
        effective = values[1] if len(values) > 1 else real
        saved = values[2] if len(values) > 2 else effective
        fs = values[3] if len(values) > 3 else effective
        return cls(real, effective, saved, fs)

    def triple(self) -> list[int]:
        return [self.real, self.effective, self.saved]


@dataclass(frozen=True, slots=True)
class Creds:
    """What the kernel consults: ``struct cred`` plus the task's no_new_privs flag."""

    uid: Ids = field(default_factory=Ids)
    gid: Ids = field(default_factory=Ids)
    groups: frozenset[int] = frozenset()
    inheritable: CapSet = EMPTY
    permitted: CapSet = EMPTY
    effective: CapSet = EMPTY
    bounding: CapSet = field(default_factory=CapSet.all)
    ambient: CapSet = EMPTY
    securebits: int = 0
    no_new_privs: bool = False

    def with_(self, **changes: object) -> Creds:
        return replace(self, **changes)  # type: ignore[arg-type]

    def in_group(self, gid: int) -> bool:
        """in_group_p(): the fs gid or one of the supplementary groups."""
        return gid == self.gid.fs or gid in self.groups

    def in_egroup(self, gid: int) -> bool:
        """in_egroup_p(): the effective gid or one of the supplementary groups."""
        return gid == self.gid.effective or gid in self.groups

    def invariant_violations(self) -> list[str]:
        """What capabilities(7) guarantees of any real process; empty for a consistent state."""
        problems = []
        if not self.effective.issubset(self.permitted):
            problems.append("effective must be a subset of permitted")
        if not self.ambient.issubset(self.permitted & self.inheritable):
            problems.append("ambient must be a subset of permitted and inheritable")
        if not 0 <= self.securebits <= SECBITS_ALL:
            problems.append(f"securebits must be within 0..{SECBITS_ALL:#x}")
        return problems


ROOT = Creds(
    permitted=CapSet.all(),
    effective=CapSet.all(),
)
