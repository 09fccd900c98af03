"""Adapter: the live filesystem → the :mod:`unroot.model.access` tree for one path.

:func:`gather_tree` lets the model's own walk (:func:`unroot.model.access.resolve`) drive the
reads, so it collects exactly the inodes the kernel's lookup touches — every component, the
symlinks and what they point to, in the order the kernel follows them — and nothing else;
components that do not exist are simply absent.  For each inode: ``lstat`` (type, mode, owner,
group), the ``system.posix_acl_access`` xattr (none when the filesystem has no ACLs), the
immutable and append-only attributes (statx), and the flags of the mount it sits on, from
``/proc/self/mountinfo``: per-mount ``ro`` and ``noexec`` from the mount options,
a read-only superblock from the super options.  The mount is found by walking the mount tree
(:class:`unroot.facts.mounts.MountTree`), so mounts hidden under a later bind mount are not
mistaken for the one a path crosses.

The /proc root is injectable (``procfs=``, like psutil's ``PROCFS_PATH``).  OSError is
translated into :class:`~unroot.errors.EnvironmentProblem` here and nowhere else.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
from collections.abc import Iterator, Mapping, Sequence

from unroot.errors import EnvironmentProblem, ParseError
from unroot.facts import PROCFS_PATH, cannot
from unroot.facts.mounts import Mount, MountTree, read_mountinfo
from unroot.model.access import Inode, resolve
from unroot.model.acl import XATTR_NAME_ACL_ACCESS, Acl

_ABSENT = (errno.ENOENT, errno.ENOTDIR)
_NO_ACL = (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP)
_KINDS = {
    stat.S_IFDIR: "dir",
    stat.S_IFREG: "file",
    stat.S_IFLNK: "symlink",
    stat.S_IFIFO: "fifo",
    stat.S_IFCHR: "chr",
    stat.S_IFBLK: "blk",
    stat.S_IFSOCK: "sock",
}


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
_STATX_ATTR_APPEND = 0x20


_libc: ctypes.CDLL | None = None


def _attributes(path: str) -> int:
    """statx(2)'s ``stx_attributes`` (STATX_ATTR_IMMUTABLE, STATX_ATTR_APPEND…); 0 when the
    C library has no statx."""
    global _libc  # noqa: PLW0603 - loaded once, on first use
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    statx = getattr(_libc, "statx", None)
    if statx is None:  # pragma: no cover - glibc >= 2.28 has it
        return 0
    buf = _Statx()
    if statx(_AT_FDCWD, os.fsencode(path), _AT_SYMLINK_NOFOLLOW, 0, ctypes.byref(buf)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), path)
    return int(buf.stx_attributes)


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

    def __init__(self, mounts: Sequence[Mount]) -> None:
        self.mounts = MountTree(mounts)
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
        mount = self.mounts.mount_for(path)
        attributes = 0 if kind == "symlink" else _attributes(path)
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
            immutable=bool(attributes & _STATX_ATTR_IMMUTABLE),
            append_only=bool(attributes & _STATX_ATTR_APPEND),
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
    return cannot(err, what, err.filename or "", "run as root to inspect paths you cannot search")


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


def gather_tree(
    path: str, *, procfs: str = PROCFS_PATH, pid: int | str = "self"
) -> dict[str, Inode]:
    """The inodes the kernel's lookup of ``path`` reaches (see the module doc).

    ``pid`` picks whose mount table describes the mounts; the paths themselves are looked up
    in this process's view of the filesystem.
    """
    live = _LiveTree(read_mountinfo(procfs, pid))
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
