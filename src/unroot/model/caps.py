"""Capability names and sets, as capabilities(7) and include/uapi/linux/capability.h define them.

A :class:`CapSet` is an immutable bit mask (bit n = capability n).  Parsing accepts every
spelling people use — ``cap_net_bind_service``, ``CAP_NET_BIND_SERVICE``, ``NET_BIND_SERVICE``,
``net_bind_service``, ``all``, ``none`` or empty, a ``0x…`` mask, a bare number — and libcap's
text form (cap_from_text(3): ``cap_net_bind_service,cap_net_raw=+ep``).  Output is always the
lowercase libcap name, sorted by bit number.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from unroot.model.errors import ParseError

#: include/uapi/linux/capability.h, CAP_CHOWN (0) … CAP_CHECKPOINT_RESTORE (40).
CAP_NAMES: tuple[str, ...] = (
    "cap_chown",
    "cap_dac_override",
    "cap_dac_read_search",
    "cap_fowner",
    "cap_fsetid",
    "cap_kill",
    "cap_setgid",
    "cap_setuid",
    "cap_setpcap",
    "cap_linux_immutable",
    "cap_net_bind_service",
    "cap_net_broadcast",
    "cap_net_admin",
    "cap_net_raw",
    "cap_ipc_lock",
    "cap_ipc_owner",
    "cap_sys_module",
    "cap_sys_rawio",
    "cap_sys_chroot",
    "cap_sys_ptrace",
    "cap_sys_pacct",
    "cap_sys_admin",
    "cap_sys_boot",
    "cap_sys_nice",
    "cap_sys_resource",
    "cap_sys_time",
    "cap_sys_tty_config",
    "cap_mknod",
    "cap_lease",
    "cap_audit_write",
    "cap_audit_control",
    "cap_setfcap",
    "cap_mac_override",
    "cap_mac_admin",
    "cap_syslog",
    "cap_wake_alarm",
    "cap_block_suspend",
    "cap_audit_read",
    "cap_perfmon",
    "cap_bpf",
    "cap_checkpoint_restore",
)
CAP_LAST_CAP = len(CAP_NAMES) - 1  # 40, what /proc/sys/kernel/cap_last_cap says on Linux >= 5.9
#: Capability masks are two u32 words in the kernel ABI (_LINUX_CAPABILITY_U32S_3).
MASK_BITS = 64
_BY_NAME = {name: bit for bit, name in enumerate(CAP_NAMES)}

#: Capabilities that are root by another name: a process that holds one (in the initial user
#: namespace) can make itself uid 0 with every capability, or write what only root may write.
#: capabilities(7) says of CAP_SYS_ADMIN "overloaded" and lists under each of these the
#: operations that reach the same end; Brad Spengler's "False Boundaries and Arbitrary Code
#: Execution" (grsecurity, 2011) showed the path from each to full root. The reason is one
#: clause: what the holder can do. CAP_NET_ADMIN, CAP_SYS_TTY_CONFIG and CAP_PERFMON are left
#: out: they widen what a compromise reaches, but none is a known one-step way to uid 0 on a
#: current kernel. CAP_SETPCAP and CAP_SYS_CHROOT are left out for a process whose bounding set
#: holds only what it keeps and that has no_new_privs, as ``unroot run`` leaves it: capset(2)
#: lets CAP_SETPCAP raise into the inheritable set only what the bounding set holds
#: (cap_capset() in security/commoncap.c), and the chroot-plus-setuid-binary trick needs an
#: execve that gains privileges.
ROOT_EQUIVALENT: dict[str, str] = {
    "cap_chown": "chown(2) any file: take /etc/shadow or a root-run script",
    "cap_dac_override": "write any file: /etc/passwd, /etc/shadow, root's crontab",
    "cap_dac_read_search": "read any file (/etc/shadow, private keys) and open_by_handle_at(2) "
    "out of any mount",
    "cap_fowner": "chmod(2) any file: make /etc/shadow writable",
    "cap_setgid": "setgid(0) and setgroups(2): the root, shadow and disk groups",
    "cap_setuid": "setuid(0)",
    "cap_sys_module": "load a kernel module",
    "cap_sys_rawio": "/dev/mem, /dev/port, ioperm(2) and raw disk I/O",
    "cap_sys_ptrace": "ptrace(2) root's processes and run code in them",
    "cap_sys_admin": "mount(2), and most of what root does (capabilities(7): overloaded)",
    "cap_sys_boot": "kexec_load(2) a kernel of its own",
    "cap_mknod": "mknod(2) a device node of the root disk and write to it",
    "cap_setfcap": "give any program file capabilities, and map uid 0 into a user namespace",
    "cap_mac_override": "override the MAC policy (Smack) that confines it",
    "cap_mac_admin": "rewrite the MAC policy (Smack) that confines it",
    "cap_bpf": "load BPF programs (with CAP_PERFMON: read and write kernel memory)",
}
_NUMBERED = re.compile(r"(?:cap_)?(\d{1,2})")
_HEX = re.compile(r"0x[0-9a-f]{1,16}")


def cap_number(name: str) -> int:
    """The bit number of one capability name, in any common spelling; ParseError if unknown."""
    key = name.strip().lower()
    if not key.startswith("cap_"):
        key = "cap_" + key
    bit = _BY_NAME.get(key)
    if bit is not None:
        return bit
    numbered = _NUMBERED.fullmatch(name.strip().lower())
    if numbered and int(numbered.group(1)) < MASK_BITS:
        return int(numbered.group(1))
    raise ParseError(
        f"unknown capability {name.strip()!r} (known: cap_chown … cap_checkpoint_restore)"
    )


def libcap_name(bit: int) -> str:
    """cap_to_name(3): the lowercase name, or the bare number for bits libcap has no name for."""
    return CAP_NAMES[bit] if 0 <= bit <= CAP_LAST_CAP else str(bit)


def cap_name(bit: int) -> str:
    """The lowercase libcap name of bit ``bit`` (``cap_41`` for bits this table does not know)."""
    return CAP_NAMES[bit] if 0 <= bit <= CAP_LAST_CAP else f"cap_{bit}"


@dataclass(frozen=True, slots=True)
class CapSet:
    """An immutable set of capabilities, stored as the kernel stores it: a bit mask."""

    mask: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.mask < (1 << MASK_BITS):
            raise ParseError(f"capability mask {self.mask:#x} does not fit in {MASK_BITS} bits")

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def of(cls, *caps: int | str) -> CapSet:
        mask = 0
        for cap in caps:
            mask |= 1 << (cap if isinstance(cap, int) else cap_number(cap))
        return cls(mask)

    @classmethod
    def all(cls, last_cap: int = CAP_LAST_CAP) -> CapSet:
        return cls((1 << (last_cap + 1)) - 1)

    @classmethod
    def parse(cls, text: str | Iterable[str] | None, last_cap: int = CAP_LAST_CAP) -> CapSet:
        """Parse any common spelling of a capability set (see module doc)."""
        if text is None:
            return cls()
        if isinstance(text, str):
            return _parse_text(text, last_cap)
        mask = 0
        for item in text:
            if not isinstance(item, str):
                raise ParseError(f"capability names must be strings, not {item!r}")
            mask |= _parse_text(item, last_cap).mask
        return cls(mask)

    # -- set algebra ----------------------------------------------------------------------
    def __or__(self, other: CapSet) -> CapSet:
        return CapSet(self.mask | other.mask)

    def __and__(self, other: CapSet) -> CapSet:
        return CapSet(self.mask & other.mask)

    def __sub__(self, other: CapSet) -> CapSet:
        return CapSet(self.mask & ~other.mask)

    def __contains__(self, cap: object) -> bool:
        if isinstance(cap, str):
            cap = cap_number(cap)
        return isinstance(cap, int) and bool(self.mask >> cap & 1)

    def __iter__(self) -> Iterator[int]:
        mask, bit = self.mask & ((1 << MASK_BITS) - 1), 0  # bounded even if __post_init__ failed
        while mask:
            if mask & 1:
                yield bit
            mask >>= 1
            bit += 1

    def __len__(self) -> int:
        return self.mask.bit_count()

    def __bool__(self) -> bool:
        return self.mask != 0

    def issubset(self, other: CapSet) -> bool:
        return self.mask & ~other.mask == 0

    # -- output ---------------------------------------------------------------------------
    def names(self) -> list[str]:
        """Lowercase libcap names sorted by bit number: the canonical output."""
        return [cap_name(bit) for bit in self]

    def hex(self) -> str:
        """The 16-digit form /proc/PID/status uses (``CapBnd: 000001ffffffffff``)."""
        return f"{self.mask:016x}"

    def __str__(self) -> str:
        return ",".join(self.names()) or "none"

    def __repr__(self) -> str:
        return f"CapSet({self})"


EMPTY = CapSet()


@functools.lru_cache(maxsize=1024)
def _parse_text(text: str, last_cap: int) -> CapSet:
    """CapSet.parse for one string; cached, since a CapSet is immutable and spellings repeat."""
    value = text.strip()
    low = value.lower()
    if low in ("", "none", "-", "[]"):
        return EMPTY
    bit = _BY_NAME.get(low if low.startswith("cap_") else "cap_" + low)
    if bit is not None:
        return CapSet(1 << bit)
    if _HEX.fullmatch(low):
        return CapSet(int(low, 16))
    if any(op in value for op in "=+") or re.search(r"[a-z]-[eip]", low):
        # libcap text ("cap_net_bind_service=+ep"): the set is every capability it raises.
        text_caps = FileCapText.parse(value, last_cap)
        return text_caps.permitted | text_caps.inheritable | text_caps.effective
    result = 0
    for token in re.split(r"[,\s]+", value):
        if not token:
            continue
        if token.lower() == "all":
            result |= CapSet.all(last_cap).mask
        else:
            result |= 1 << cap_number(token)
    return CapSet(result)


NET_BIND_SERVICE = CapSet.of("cap_net_bind_service")


@dataclass(frozen=True, slots=True)
class FileCapText:
    """The three sets libcap's text form describes: cap_from_text(3)."""

    permitted: CapSet = EMPTY
    inheritable: CapSet = EMPTY
    effective: CapSet = EMPTY

    @classmethod
    def parse(cls, text: str, last_cap: int = CAP_LAST_CAP) -> FileCapText:
        """cap_from_text(3): whitespace-separated clauses ``caps[op flags]...``.

        ``caps`` is a comma list or ``all`` (empty before ``=`` also means all); ``op`` is ``=``
        (clear the listed caps in all three sets, then raise the flags), ``+`` or ``-``; flags
        are any of ``e``, ``i``, ``p``.
        """
        sets = {"p": 0, "i": 0, "e": 0}
        clause_re = re.compile(r"([^=+\-]*)((?:[=+\-][eip]*)+)")
        op_re = re.compile(r"([=+\-])([eip]*)")
        clauses = text.split()
        if not clauses:
            return cls()
        for clause in clauses:
            match = clause_re.fullmatch(clause.lower())
            if not match:
                raise ParseError(
                    f"not libcap capability text: {clause!r} "
                    "(expected e.g. cap_net_bind_service=+ep)"
                )
            names, ops = match.group(1), match.group(2)
            if names in ("", "all"):
                caps = CapSet.all(last_cap).mask
            else:
                caps = CapSet.parse(names.replace(",", " "), last_cap).mask if names else 0
                if any(not n for n in names.split(",")):
                    raise ParseError(f"empty capability name in {clause!r}")
            first = True
            for op, flags in op_re.findall(ops):
                if op == "=":
                    if not first:
                        raise ParseError(f"'=' must come first in a clause: {clause!r}")
                    for key in sets:
                        sets[key] &= ~caps
                elif not flags:
                    raise ParseError(f"{op!r} needs flags (e, i, p) in {clause!r}")
                for flag in flags:
                    sets[flag] = sets[flag] | caps if op in "=+" else sets[flag] & ~caps
                first = False
        return cls(CapSet(sets["p"]), CapSet(sets["i"]), CapSet(sets["e"]))

    def to_text(self, last_cap: int = CAP_LAST_CAP) -> str:
        """libcap's cap_to_text(3), byte for byte: the text getcap(8) and getpcaps(1) print.

        libcap/cap_text.c: the flag combination most capabilities share becomes the base
        (``=ep`` when most are ``ep``; ``=`` when most are clear, shortened as
        ``cap_x=ep`` when only one other group exists); every other combination follows, most
        flags first, as ``names+flags-flags``.  Bits above ``last_cap`` (the kernel's
        cap_max_bits() - 1) come last, by number, always with ``+``.
        """
        eff, per, inh = self.effective.mask, self.permitted.mask, self.inheritable.mask

        def state(bit: int) -> int:  # LIBCAP_EFF = 1, LIBCAP_PER = 2, LIBCAP_INH = 4
            return (eff >> bit & 1) | (per >> bit & 1) << 1 | (inh >> bit & 1) << 2

        def flags(combo: int) -> str:
            return "e" * (combo & 1) + "i" * (combo >> 2 & 1) + "p" * (combo >> 1 & 1)

        named = range(last_cap + 1)
        histo = [0] * 8
        for bit in named:
            histo[state(bit)] += 1
        base = 7
        for combo in range(6, -1, -1):  # a tie goes to the lower combination (libcap: to none)
            if histo[combo] >= histo[base]:
                base = combo
        clauses = ["=" + flags(base)]
        for combo in range(7, -1, -1):
            if combo == base or not histo[combo]:
                continue
            clause = ",".join(libcap_name(bit) for bit in named if state(bit) == combo)
            if raised := combo & ~base:
                if clauses == ["="]:
                    clauses, clause = [], clause + "=" + flags(raised)
                else:
                    clause += "+" + flags(raised)
            if lowered := ~combo & base:
                clause += "-" + flags(lowered)
            clauses.append(clause)
        unnamed = range(last_cap + 1, MASK_BITS)
        for combo in range(7, 0, -1):
            bits = [libcap_name(bit) for bit in unnamed if state(bit) == combo]
            if bits:
                clauses.append(",".join(bits) + "+" + flags(combo))
        return " ".join(clauses)
