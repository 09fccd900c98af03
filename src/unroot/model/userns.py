"""User-namespace id maps, /etc/subuid, and the rootless runtimes' mapping — user_namespaces(7).

``/proc/PID/uid_map`` (and ``gid_map``) holds lines ``inside outside count``: ids
``inside … inside+count-1`` of the namespace are ``outside …`` of the parent namespace.  The
kernel (kernel/user_namespace.c map_write) refuses a count of 0, ranges that run past 2**32 - 1,
ranges that overlap on either side, and more than 340 lines.  An id with no mapping is shown
inside the namespace as the overflow id, 65534 (``/proc/sys/kernel/overflowuid``).

``/etc/subuid`` and ``/etc/subgid`` (subuid(5)) hold ``owner:start:count`` lines, where the owner
is a login name or a numeric uid.  Rootless Docker (rootlesskit) and Podman build the
container's map from them: container uid 0 is the invoking user, and uids 1, 2, … are the
subordinate ids of that user, ranges concatenated in file order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from unroot.model.errors import ParseError

OVERFLOW_ID = 65534
UID_GID_MAP_MAX_EXTENTS = 340
_U32_MAX = 0xFFFFFFFF
_NUMBER = re.compile(r"[0-9]+")


@dataclass(frozen=True, slots=True)
class IdMapRange:
    """One line of a uid_map/gid_map: ``count`` ids starting at ``inside`` ↔ ``outside``."""

    inside: int
    outside: int
    count: int

    def __post_init__(self) -> None:
        for name in ("inside", "outside", "count"):
            value = getattr(self, name)
            if not 0 <= value <= _U32_MAX:
                raise ParseError(f"id map {name} {value} is not a u32")
        if _U32_MAX in (self.inside, self.outside):
            raise ParseError("id map ranges cannot start at 4294967295 (the invalid id)")
        if self.count == 0:
            raise ParseError("id map range with a count of 0")
        if self.inside + self.count > _U32_MAX or self.outside + self.count > _U32_MAX:
            raise ParseError(
                f"id map range {self.inside} {self.outside} {self.count} runs past 4294967294"
            )

    def _overlaps(self, other: IdMapRange) -> bool:
        def hit(a: int, b: int) -> bool:
            return a < b + other.count and b < a + self.count

        return hit(self.inside, other.inside) or hit(self.outside, other.outside)


@dataclass(frozen=True, slots=True)
class IdMap:
    """A uid_map or gid_map. The empty map (nothing written yet) maps no id at all."""

    ranges: tuple[IdMapRange, ...] = ()

    def __post_init__(self) -> None:
        if len(self.ranges) > UID_GID_MAP_MAX_EXTENTS:
            raise ParseError(f"id map has {len(self.ranges)} ranges; the kernel takes at most 340")
        for i, first in enumerate(self.ranges):
            for second in self.ranges[i + 1 :]:
                if first._overlaps(second):
                    raise ParseError(
                        f"id map ranges overlap: '{first.inside} {first.outside} {first.count}' "
                        f"and '{second.inside} {second.outside} {second.count}'"
                    )

    @classmethod
    def identity(cls) -> IdMap:
        """The initial user namespace's map: ``0 0 4294967295``."""
        return cls((IdMapRange(0, 0, _U32_MAX),))

    @classmethod
    def parse(cls, text: str, where: str = "uid_map") -> IdMap:
        """Parse /proc/PID/uid_map text; ParseError names the line."""
        ranges = []
        for number, line in enumerate(text.splitlines(), start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 3 or not all(_NUMBER.fullmatch(f) for f in fields):
                raise ParseError(
                    f"expected 'inside outside count', got {line.strip()!r}", f"{where}:{number}"
                )
            try:
                ranges.append(IdMapRange(*(int(f) for f in fields)))
            except ParseError as err:
                raise ParseError(str(err), f"{where}:{number}") from None
        try:
            return cls(tuple(ranges))
        except ParseError as err:
            raise ParseError(str(err), where) from None

    def to_text(self) -> str:
        """The file's own format (``%10u %10u %10u`` per line)."""
        return "".join(f"{r.inside:>10} {r.outside:>10} {r.count:>10}\n" for r in self.ranges)

    # -- mapping --------------------------------------------------------------------------
    def to_outside(self, inside: int) -> int | None:
        """The parent namespace's id for ``inside``, or None when it is not mapped."""
        for r in self.ranges:
            if r.inside <= inside < r.inside + r.count:
                return r.outside + inside - r.inside
        return None

    def to_inside(self, outside: int) -> int | None:
        """The namespace's id for the parent's ``outside`` id (kuid_has_mapping), or None."""
        for r in self.ranges:
            if r.outside <= outside < r.outside + r.count:
                return r.inside + outside - r.outside
        return None

    def shown_inside(self, outside: int, overflow: int = OVERFLOW_ID) -> int:
        """What stat(2) and ``ls -n`` show inside the namespace: unmapped ids become 65534."""
        inside = self.to_inside(outside)
        return overflow if inside is None else inside

    def maps_outside(self, outside: int) -> bool:
        return self.to_inside(outside) is not None


@dataclass(frozen=True, slots=True)
class UserNs:
    """A caller's user namespace as far as permission checks see it: its two maps (to the
    initial namespace). The initial namespace maps every id to itself."""

    uid_map: IdMap = field(default_factory=IdMap.identity)
    gid_map: IdMap = field(default_factory=IdMap.identity)

    def maps_inode(self, uid: int, gid: int) -> bool:
        """privileged_wrt_inode_uidgid(): both the inode's owner and group are mapped here."""
        return self.uid_map.maps_outside(uid) and self.gid_map.maps_outside(gid)


INIT_USERNS = UserNs()


# -- /etc/subuid, /etc/subgid ------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SubIdRange:
    """One subuid(5)/subgid(5) line: ``owner`` may use ``count`` ids from ``start``."""

    owner: str
    start: int
    count: int

    def __post_init__(self) -> None:
        if not self.owner:
            raise ParseError("subordinate id range without an owner")
        if not 0 <= self.start <= _U32_MAX - 1 or not 1 <= self.count <= _U32_MAX:
            raise ParseError(f"subordinate id range {self.start}:{self.count} is out of range")
        if self.start + self.count > _U32_MAX:
            raise ParseError(f"subordinate id range {self.start}:{self.count} runs past 4294967294")

    def belongs_to(self, name: str | None, uid: int | None) -> bool:
        return (name is not None and self.owner == name) or (
            uid is not None and self.owner == str(uid)
        )


def parse_subid(text: str, where: str = "/etc/subuid") -> tuple[SubIdRange, ...]:
    """Parse /etc/subuid or /etc/subgid; blank lines and ``#`` comments are skipped."""
    ranges = []
    for number, line in enumerate(text.splitlines(), start=1):
        body = line.strip()
        if not body or body.startswith("#"):
            continue
        parts = body.split(":")
        if len(parts) != 3 or not parts[0] or not all(_NUMBER.fullmatch(p) for p in parts[1:]):
            raise ParseError(f"expected 'name:start:count', got {body!r}", f"{where}:{number}")
        try:
            ranges.append(SubIdRange(parts[0], int(parts[1]), int(parts[2])))
        except ParseError as err:
            raise ParseError(str(err), f"{where}:{number}") from None
    return tuple(ranges)


def subids_of(
    ranges: Iterable[SubIdRange], *, name: str | None = None, uid: int | None = None
) -> tuple[SubIdRange, ...]:
    """The ranges of one user (matched by login name or by numeric uid), in file order."""
    if name is None and uid is None:
        raise ParseError("give the user's name or uid to look up subordinate ids")
    return tuple(r for r in ranges if r.belongs_to(name, uid))


def rootless_map(user_id: int, subids: Sequence[SubIdRange]) -> IdMap:
    """The map rootlesskit and Podman write: ``0 → user_id``, then ``1…`` → the subordinate
    ranges, concatenated in file order. ParseError if the result is not a valid map."""
    ranges = [IdMapRange(0, user_id, 1)]
    inside = 1
    for sub in subids:
        ranges.append(IdMapRange(inside, sub.start, sub.count))
        inside += sub.count
    return IdMap(tuple(ranges))


def container_to_host(container_id: int, user_id: int, subids: Sequence[SubIdRange]) -> int | None:
    """The host id a rootless container's id runs as; None when the container cannot use it."""
    return rootless_map(user_id, subids).to_outside(container_id)


def host_to_container(host_id: int, user_id: int, subids: Sequence[SubIdRange]) -> int:
    """What a rootless container sees for a host id (e.g. a bind-mounted file's owner):
    unmapped ids appear as 65534."""
    return rootless_map(user_id, subids).shown_inside(host_id)
