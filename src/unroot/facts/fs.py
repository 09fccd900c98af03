"""Adapter: the live filesystem → the :mod:`unroot.model.access` tree for one path.

:func:`gather_tree` lets the model's own walk (:func:`unroot.model.access.resolve`) drive the
reads, so it collects exactly the inodes the kernel's lookup touches — every component, the
symlinks and what they point to, in the order the kernel follows them — and nothing else;
components that do not exist are simply absent.  For each inode: ``lstat`` (type, mode, owner,
group), the ``system.posix_acl_access`` xattr (none when the filesystem has no ACLs), the
immutable attribute (statx), and the flags of the mount it sits on, from
``/proc/self/mountinfo``: per-mount ``ro`` and ``noexec`` from the mount options,
a read-only superblock from the super options.  The mount is found by walking the mount tree
(mount and parent ids), so mounts hidden under a later bind mount are not mistaken for the one
a path crosses.

The /proc root is injectable (``procfs=``, like psutil's ``PROCFS_PATH``).  OSError is
translated into :class:`~unroot.errors.EnvironmentProblem` here and nowhere else.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from unroot.errors import EnvironmentProblem, ParseError
from unroot.model.access import Inode, resolve
from unroot.model.acl import XATTR_NAME_ACL_ACCESS, Acl

PROCFS_PATH = "/proc"
_ABSENT = (errno.ENOENT, errno.ENOTDIR)
_NO_ACL = (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP)
_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")
_KINDS = {
    stat.S_IFDIR: "dir",
    stat.S_IFREG: "file",
    stat.S_IFLNK: "symlink",
    stat.S_IFIFO: "fifo",
    stat.S_IFCHR: "chr",
    stat.S_IFBLK: "blk",
    stat.S_IFSOCK: "sock",
}


# -- /proc/PID/mountinfo (pure) ------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class MountEntry:
    """One line of mountinfo, as far as access checks need it."""

    mount_id: int
    parent_id: int
    mount_point: str
    readonly: bool
    readonly_fs: bool
    noexec: bool


def parse_mountinfo(text: str, where: str = "mountinfo") -> tuple[MountEntry, ...]:
    """proc(5) mountinfo: ``id parent maj:min root mountpoint options [optional…] - fstype
    source superoptions``; octal escapes (``\\040``) in the mount point are decoded."""
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        try:
            dash = fields.index("-", 6)
        except ValueError:
            raise ParseError("no ' - ' separator", f"{where}:{number}") from None
        tail = fields[dash + 1 :]  # fstype, source (may be empty), super options
        if len(tail) < 2 or not fields[0].isdigit() or not fields[1].isdigit():
            raise ParseError("not a mountinfo line", f"{where}:{number}")
        mount_point = _OCTAL_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), fields[4])
        options = fields[5].split(",")
        super_options = tail[-1].split(",")
        entries.append(
            MountEntry(
                int(fields[0]),
                int(fields[1]),
                mount_point,
                "ro" in options,
                "ro" in super_options,
                "noexec" in options,
            )
        )
    return tuple(entries)


def mount_for(mounts: tuple[MountEntry, ...], path: str) -> MountEntry | None:
    """The mount a canonical ``path`` is reached through.

    Walks the mount tree the way the lookup crosses mount points: from the root mount, at each
    prefix of ``path`` step onto a mount whose mount point is that prefix *and whose parent is
    the mount we are on* (repeatedly: mounts stack). A mount hidden under a later mount of one of
    its ancestors (a non-recursive bind mount over its parent) is never reached.
    """
    ids = {m.mount_id for m in mounts}
    roots = [m for m in mounts if m.mount_point == "/" and m.parent_id not in ids]
    current = roots[0] if roots else next((m for m in mounts if m.mount_point == "/"), None)
    if current is None:
        return None
    prefixes = ["/"]
    for part in (p for p in path.split("/") if p):
        prefixes.append(prefixes[-1].rstrip("/") + "/" + part)
    for prefix in prefixes:
        while True:
            above = [
                m for m in mounts if m.mount_point == prefix and m.parent_id == current.mount_id
            ]
            if not above:
                break
            current = above[-1]
    return current


# -- live reads ----------------------------------------------------------------------------
class _Statx(ctypes.Structure):
    _fields_ = (
        ("stx_mask", ctypes.c_uint32),
        ("stx_blksize", ctypes.c_uint32),
        ("stx_attributes", ctypes.c_uint64),
        ("_rest", ctypes.c_uint8 * 240),
    )


_AT_FDCWD = -100
_AT_SYMLINK_NOFOLLOW = 0x100
_STATX_ATTR_IMMUTABLE = 0x10


_libc: ctypes.CDLL | None = None


def _immutable(path: str) -> bool:
    """statx(2)'s STATX_ATTR_IMMUTABLE; False when the C library has no statx."""
    global _libc  # noqa: PLW0603 - loaded once, on first use
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    statx = getattr(_libc, "statx", None)
    if statx is None:  # pragma: no cover - glibc >= 2.28 has it
        return False
    buf = _Statx()
    if statx(_AT_FDCWD, os.fsencode(path), _AT_SYMLINK_NOFOLLOW, 0, ctypes.byref(buf)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), path)
    return bool(buf.stx_attributes & _STATX_ATTR_IMMUTABLE)


def _read_acl(path: str) -> Acl | None:
    try:
        data = os.getxattr(path, XATTR_NAME_ACL_ACCESS, follow_symlinks=False)
    except OSError as err:
        if err.errno in _NO_ACL:
            return None
        raise
    try:
        return Acl.decode(data)
    except ParseError as err:
        raise ParseError(str(err), path) from None


class _LiveTree(Mapping[str, Inode]):
    """A read-through view of the filesystem that remembers every inode it was asked for."""

    def __init__(self, mounts: tuple[MountEntry, ...]) -> None:
        self.mounts = mounts
        self.cache: dict[str, Inode | None] = {}

    def _load(self, path: str) -> Inode | None:
        try:
            st = os.lstat(path)
        except OSError as err:
            if err.errno in _ABSENT:
                return None
            raise
        kind = _KINDS.get(stat.S_IFMT(st.st_mode))
        if kind is None:  # pragma: no cover - whiteouts and other oddities
            return None
        mount = mount_for(self.mounts, path)
        return Inode(
            kind=kind,
            mode=stat.S_IMODE(st.st_mode),
            uid=st.st_uid,
            gid=st.st_gid,
            acl=None if kind == "symlink" else _read_acl(path),
            target=os.readlink(path) if kind == "symlink" else None,
            readonly_mount=bool(mount and mount.readonly),
            readonly_fs=bool(mount and mount.readonly_fs),
            noexec_mount=bool(mount and mount.noexec),
            immutable=kind != "symlink" and _immutable(path),
        )

    def __getitem__(self, path: str) -> Inode:
        if path not in self.cache:
            self.cache[path] = self._load(path)
        inode = self.cache[path]
        if inode is None:
            raise KeyError(path)
        return inode

    def __iter__(self) -> Iterator[str]:
        return (path for path, inode in self.cache.items() if inode is not None)

    def __len__(self) -> int:
        return sum(1 for inode in self.cache.values() if inode is not None)


def _problem(err: OSError, what: str) -> EnvironmentProblem:
    name = f" {err.filename}" if err.filename else ""
    hint = " (run as root to inspect paths you cannot search)" if err.errno == errno.EACCES else ""
    return EnvironmentProblem(f"cannot {what}{name}: {err.strerror or err}{hint}")


def absolute_path(path: str, cwd: str | None = None) -> str:
    """Make ``path`` absolute the way the kernel starts a relative lookup: from the working
    directory, keeping ``..`` and symlinks for the walk to resolve (no normalisation)."""
    if path.startswith("/"):
        return path
    try:
        base = cwd if cwd is not None else os.getcwd()
    except OSError as err:
        raise _problem(err, "read the working directory") from None
    return base.rstrip("/") + "/" + path


def read_mounts(procfs: str = PROCFS_PATH, pid: int | str = "self") -> tuple[MountEntry, ...]:
    where = f"{procfs}/{pid}/mountinfo"
    try:
        with open(where, encoding="utf-8", errors="surrogateescape") as fh:
            return parse_mountinfo(fh.read(), where)
    except OSError as err:
        raise _problem(err, "read the mount table") from None


def gather_tree(
    path: str, *, procfs: str = PROCFS_PATH, pid: int | str = "self"
) -> dict[str, Inode]:
    """The inodes the kernel's lookup of ``path`` reaches (see the module doc).

    ``pid`` picks whose mount table describes the mounts; the paths themselves are looked up
    in this process's view of the filesystem.
    """
    mounts = read_mounts(procfs, pid)
    live = _LiveTree(mounts)
    try:
        resolve(live, absolute_path(path))
    except OSError as err:
        raise _problem(err, "read the metadata of") from None
    return dict(live)


def protected_symlinks(procfs: str = PROCFS_PATH) -> bool:
    """The ``fs.protected_symlinks`` sysctl (False when it cannot be read)."""
    try:
        with open(f"{procfs}/sys/fs/protected_symlinks", encoding="ascii") as fh:
            return fh.read().strip() not in ("", "0")
    except OSError:
        return False
