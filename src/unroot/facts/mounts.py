"""The mount table: ``/proc/PID/mountinfo`` (proc(5)) and the mount a path is reached through.

:func:`parse_mountinfo` is pure; :func:`read_mountinfo` reads the file (the procfs root is
injectable, like psutil's ``PROCFS_PATH``) and translates ``OSError`` into unroot's errors, here
and nowhere else.

Which mount a path is on is found by walking the mount tree (mount and parent ids) the way the
kernel's lookup crosses mount points, not by the longest matching mount point: a mount hidden
under a later mount of one of its ancestors (a non-recursive bind mount over its parent) is never
reached, and stacked mounts are crossed to the one on top.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from unroot.errors import ParseError
from unroot.facts import PROCFS_PATH, cannot

_NUMBER = re.compile(r"[0-9]{1,10}")
_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True, slots=True)
class Mount:
    """One line of mountinfo: ``id parent maj:min root mountpoint options [optional…] - fstype
    source superoptions``."""

    mount_id: int
    parent_id: int
    dev: int  # os.makedev(major, minor): what st_dev of a file on it is
    root: str  # the directory of the filesystem that is mounted here ("/" unless a bind mount)
    mount_point: str  # relative to the reading process's root
    options: tuple[str, ...]  # per-mount options (ro, nosuid, nodev, noexec, relatime, ...)
    fstype: str
    source: str  # "" when the filesystem shows none
    super_options: tuple[str, ...]  # the superblock's options

    @property
    def readonly(self) -> bool:
        """This mount is read-only (``mount -o remount,bind,ro``)."""
        return "ro" in self.options

    @property
    def readonly_fs(self) -> bool:
        """The filesystem itself is read-only, on every mount of it."""
        return "ro" in self.super_options

    @property
    def noexec(self) -> bool:
        return "noexec" in self.options

    @property
    def nosuid(self) -> bool:
        return "nosuid" in self.options


def parse_mountinfo(text: str, where: str = "mountinfo") -> list[Mount]:
    """Parse mountinfo text; ParseError names ``where`` and the line on bad input."""
    mounts = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            mounts.append(_parse_line(line))
        except ParseError as err:
            raise ParseError(str(err), f"{where}:{number}") from None
    return mounts


def _parse_line(line: str) -> Mount:
    fields = line.split()
    try:
        dash = fields.index("-", 6)  # optional fields (shared:N ...) may stand before it
    except ValueError:
        raise ParseError("not a mountinfo line (no ' - ' separator)") from None
    tail = fields[dash + 1 :]  # fstype, source (absent when empty), super options
    if len(tail) < 2:
        raise ParseError("not a mountinfo line (no filesystem type and options after ' - ')")
    if not (_NUMBER.fullmatch(fields[0]) and _NUMBER.fullmatch(fields[1])):
        raise ParseError(f"bad mount ids {fields[0]!r} {fields[1]!r}")
    major, _, minor = fields[2].partition(":")
    if not (_NUMBER.fullmatch(major) and _NUMBER.fullmatch(minor)):
        raise ParseError(f"bad major:minor {fields[2]!r}")
    try:
        dev = os.makedev(int(major), int(minor))
    except (OverflowError, ValueError):
        raise ParseError(f"bad major:minor {fields[2]!r}") from None
    return Mount(
        mount_id=int(fields[0]),
        parent_id=int(fields[1]),
        dev=dev,
        root=_unescape(fields[3]),
        mount_point=_unescape(fields[4]),
        options=tuple(fields[5].split(",")),
        fstype=tail[0],
        source=_unescape(tail[1]) if len(tail) > 2 else "",
        super_options=tuple(tail[2 if len(tail) > 2 else 1].split(",")),
    )


def _unescape(text: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as ``\\ooo``."""
    return _OCTAL_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), text)


def read_mountinfo(procfs: str = PROCFS_PATH, pid: int | str = "self") -> list[Mount]:
    """``{procfs}/{pid}/mountinfo``, parsed; EnvironmentProblem when it cannot be read."""
    path = os.path.join(procfs, str(pid), "mountinfo")
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as file:
            text = file.read()
    except OSError as err:
        raise cannot(
            err, "read the mount table", path, "run as root for other users' processes"
        ) from None
    return parse_mountinfo(text, path)


class MountTree:
    """A mount table indexed for lookups (build it once, ask many paths)."""

    def __init__(self, mounts: Sequence[Mount]) -> None:
        self.mounts = tuple(mounts)
        ids = {m.mount_id for m in self.mounts}
        # (parent id, mount point) -> the mount there; None is the parent of the mounts whose
        # parent is not in the table: the root mount, or in a chroot the mounts inside it.
        self._children: dict[tuple[int | None, str], Mount] = {}
        for mount in self.mounts:
            if mount.parent_id in ids:
                self._children[(mount.parent_id, mount.mount_point)] = mount  # later on top
            else:
                self._children.setdefault((None, mount.mount_point), mount)
        self._start: Mount | None = None
        if (None, "/") not in self._children:  # no orphan root: start from a mount on "/"
            self._start = next((m for m in self.mounts if m.mount_point == "/"), None)

    def mount_for(self, path: str) -> Mount | None:
        """The mount a canonical ``path`` is reached through; None when no mount holds it.

        From the root, at each prefix of ``path`` step onto the mount whose mount point is that
        prefix *and whose parent is the mount we are on* (repeatedly: mounts stack).
        """
        current = self._start
        seen = {current.mount_id} if current else set()  # a malformed table may have cycles
        for prefix in _prefixes(path):
            while True:
                above = self._children.get((current.mount_id if current else None, prefix))
                if above is None or above.mount_id in seen:
                    break
                seen.add(above.mount_id)
                current = above
        return current

    def mounts_below(self, directory: str) -> dict[str, Mount]:
        """The mount points strictly below a canonical ``directory`` that a walk of it meets,
        each with the mount on top there; hidden mounts are left out."""
        prefix = directory.rstrip("/") + "/"
        below: dict[str, Mount] = {}
        for mount in self.mounts:
            point = mount.mount_point
            if point.startswith(prefix) and len(point) > len(prefix) and point not in below:
                top = self.mount_for(point)
                if top is not None and top.mount_point == point:
                    below[point] = top
        return below


def mount_for(mounts: Sequence[Mount], path: str) -> Mount | None:
    """The mount a canonical ``path`` is reached through (see :meth:`MountTree.mount_for`)."""
    return MountTree(mounts).mount_for(path)


def _prefixes(path: str) -> Iterator[str]:
    prefix = "/"
    yield prefix
    for part in path.split("/"):
        if part:
            prefix = prefix.rstrip("/") + "/" + part
            yield prefix
