"""File capabilities and set-id bits of real files: getcap(8), ``getcap -r``, ``find -perm /6000``.

:func:`read_file_caps` reads one file's ``security.capability`` (following symlinks, as getcap
does).  :func:`scan` walks trees for every regular file that carries file capabilities or a
setuid/setgid bit: no symlink is followed below a root, pseudo filesystems (proc, sysfs, cgroup,
...) met on the way are skipped, and ``one_file_system`` stays on each root's filesystem.

The walk is the hot path (benchmarked against ``getcap -r /usr``): an iterative ``os.scandir``
with the directory's file descriptor, so each regular file costs one ``fstatat`` relative to it
and one ``llistxattr`` — a list is returned even when empty, so the common case raises no
exception — and ``getxattr`` only for the few files that have the attribute.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from unroot.errors import ParseError, UnrootError
from unroot.facts import path_error
from unroot.facts.mounts import Mount, MountTree, read_mountinfo
from unroot.model.filecaps import XATTR_NAME_CAPS, FileCaps

#: Filesystems whose files the kernel makes up: nothing to find there, and walking them is slow
#: (/proc) or has side effects (autofs).  Skipped when met below a root, never when given as one.
PSEUDO_FILESYSTEMS = frozenset(
    {
        "autofs",
        "binfmt_misc",
        "bpf",
        "cgroup",
        "cgroup2",
        "configfs",
        "debugfs",
        "devpts",
        "efivarfs",
        "fusectl",
        "hugetlbfs",
        "mqueue",
        "nfsd",
        "nsfs",
        "proc",
        "pstore",
        "rpc_pipefs",
        "securityfs",
        "selinuxfs",
        "sysfs",
        "tracefs",
    }
)
# ENODATA: no such attribute; ENOTSUP: the filesystem has no xattrs at all.
_NO_XATTR = (errno.ENODATA, errno.ENOTSUP)
_SETID = stat.S_ISUID | stat.S_ISGID
_TOP_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_DIR_FLAGS = _TOP_FLAGS | os.O_NOFOLLOW


def read_xattr(path: str, *, follow_symlinks: bool = True) -> bytes | None:
    """The raw ``security.capability`` value, or None when the file has none."""
    try:
        return os.getxattr(path, XATTR_NAME_CAPS, follow_symlinks=follow_symlinks)
    except OSError as exc:
        if exc.errno in _NO_XATTR:
            return None
        raise path_error(exc, path) from None


def read_file_caps(path: str, *, follow_symlinks: bool = True) -> FileCaps | None:
    """The file's capabilities, None without any; ParseError for bytes the kernel would reject."""
    data = read_xattr(path, follow_symlinks=follow_symlinks)
    return None if data is None else decode_xattr(data, path)


def decode_xattr(data: bytes, path: str) -> FileCaps:
    try:
        return FileCaps.decode(data)
    except ParseError as exc:
        detail = str(exc).removeprefix("security.capability ")
        raise ParseError(f"invalid security.capability ({detail})", where=path) from None


# -- the tree walk ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PrivilegedFile:
    """A regular file that carries file capabilities or a setuid/setgid bit."""

    path: str
    mode: int  # st_mode
    uid: int
    gid: int
    caps: FileCaps | None = None
    caps_error: str | None = None  # the attribute is there but unusable

    @property
    def setuid_owner(self) -> int | None:
        return self.uid if self.mode & stat.S_ISUID else None

    @property
    def setgid_owner(self) -> int | None:
        return self.gid if self.mode & stat.S_ISGID else None


@dataclass(frozen=True, slots=True)
class ScanError:
    """Something the walk could not look at. ``root`` errors mean a whole argument was lost."""

    path: str
    message: str
    root: bool = False
    errno: int | None = None


@dataclass(frozen=True, slots=True)
class ScanResult:
    files: tuple[PrivilegedFile, ...]  # sorted by path
    scanned: int  # regular files examined (what ``getcap -r`` looks at)
    directories: int
    errors: tuple[ScanError, ...]
    skipped: tuple[str, ...]  # mount points not entered (pseudo filesystems, other filesystems)


def scan(
    roots: Iterable[str],
    *,
    one_file_system: bool = False,
    mounts: Sequence[Mount] | None = None,
    on_error: Callable[[ScanError], None] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> ScanResult:
    """Walk ``roots`` for privileged files.

    A root that is a symlink is followed (like ``find -H``); nothing below it is.  ``mounts``
    defaults to this process's mountinfo (if that cannot be read, pseudo filesystems are not
    recognised and ``one_file_system`` compares every directory's device).  ``on_error`` sees
    each error as it happens; ``on_progress(files, directories)`` is called once per directory.
    """
    if mounts is None:
        try:
            mounts = read_mountinfo()
        except UnrootError:
            mounts = None
    walk = _Walk(one_file_system, on_error, on_progress)
    for root in roots:
        walk.root(root, mounts)
    return ScanResult(
        files=tuple(sorted(walk.found, key=lambda f: f.path)),
        scanned=walk.files,
        directories=walk.directories,
        errors=tuple(walk.errors),
        skipped=tuple(walk.skipped),
    )


class _Walk:
    def __init__(
        self,
        one_file_system: bool,
        on_error: Callable[[ScanError], None] | None,
        on_progress: Callable[[int, int], None] | None,
    ) -> None:
        self.one_file_system = one_file_system
        self.on_error = on_error
        self.on_progress = on_progress
        self.found: list[PrivilegedFile] = []
        self.errors: list[ScanError] = []
        self.skipped: list[str] = []
        self.files = 0
        self.directories = 0

    def error(self, path: str, exc: OSError, root: bool = False) -> None:
        err = ScanError(path, exc.strerror or str(exc), root, exc.errno)
        self.errors.append(err)
        if self.on_error:
            self.on_error(err)

    def root(self, root: str, mounts: Sequence[Mount] | None) -> None:
        path = root.rstrip("/") or "/"
        try:
            st = os.stat(path)
        except OSError as exc:
            self.error(path, exc, root=True)
            return
        if stat.S_ISREG(st.st_mode):
            self.files += 1
            self.file(path, st, follow_symlinks=True)
            return
        if not stat.S_ISDIR(st.st_mode):
            return
        self.tree(path, st.st_dev, self.mount_points(path, mounts))

    def mount_points(self, path: str, mounts: Sequence[Mount] | None) -> dict[str, Mount] | None:
        """The mounts the walk of ``path`` meets below it (the one on top where mounts stack;
        none hidden under a later mount), keyed as the walk spells them (None: unknown)."""
        if mounts is None:
            return None
        real = os.path.realpath(path)
        below = MountTree(mounts).mounts_below(real)
        cut, spelled = len(real.rstrip("/")), path.rstrip("/")
        return {spelled + point[cut:]: mount for point, mount in below.items()}

    def tree(self, top: str, top_dev: int, mount_points: dict[str, Mount] | None) -> None:
        check_every_dir = self.one_file_system and mount_points is None
        found = self.found
        listxattr = os.listxattr
        progress = self.on_progress
        files = 0
        stack = [top]
        while stack:
            directory = stack.pop()
            try:  # the top may be a symlink given on the command line; nothing below it is followed
                dir_fd = os.open(directory, _DIR_FLAGS if directory is not top else _TOP_FLAGS)
            except OSError as exc:
                if directory is top:
                    self.error(directory, exc, root=True)
                elif exc.errno != errno.ENOENT:  # gone since its parent was read: not an error
                    self.error(directory, exc)
                continue
            self.directories += 1
            prefix = directory + "/" if directory != "/" else "/"
            try:
                with os.scandir(dir_fd) as entries:
                    for entry in entries:
                        if entry.is_file(follow_symlinks=False):
                            files += 1
                            path = prefix + entry.name
                            try:
                                st = entry.stat(follow_symlinks=False)
                                names = listxattr(path, follow_symlinks=False)
                            except OSError as exc:
                                self.file_error(path, exc)
                                continue
                            if names and XATTR_NAME_CAPS in names:
                                self.file(path, st)
                            elif st.st_mode & _SETID:
                                found.append(PrivilegedFile(path, st.st_mode, st.st_uid, st.st_gid))
                        elif entry.is_dir(follow_symlinks=False):
                            path = prefix + entry.name
                            if mount_points and path in mount_points:
                                if not self.enter_mount(path, mount_points[path], top_dev):
                                    continue
                            elif check_every_dir and not self.same_device(path, top_dev):
                                continue
                            stack.append(path)
            except OSError as exc:
                self.error(directory, exc)
            finally:
                os.close(dir_fd)
            if progress:
                progress(self.files + files, self.directories)
        self.files += files

    def same_device(self, path: str, top_dev: int) -> bool:
        try:
            if os.lstat(path).st_dev == top_dev:
                return True
        except OSError as exc:
            self.error(path, exc)
            return False
        self.skipped.append(path)
        return False

    def enter_mount(self, path: str, mount: Mount, top_dev: int) -> bool:
        if mount.fstype in PSEUDO_FILESYSTEMS:
            self.skipped.append(path)
            return False
        if self.one_file_system:
            try:
                other = os.lstat(path).st_dev != top_dev
            except OSError:
                other = True
            if other:
                self.skipped.append(path)
                return False
        return True

    def file(self, path: str, st: os.stat_result, follow_symlinks: bool = False) -> None:
        """A regular file with some xattr (or a regular file given as a root)."""
        caps = caps_error = None
        try:
            data = os.getxattr(path, XATTR_NAME_CAPS, follow_symlinks=follow_symlinks)
        except OSError as exc:
            if exc.errno not in _NO_XATTR:
                caps_error = str(path_error(exc, path)).removeprefix(f"{path}: ")
        else:
            try:
                caps = decode_xattr(data, path)
            except ParseError as exc:
                caps_error = str(exc).removeprefix(f"{path}: ")
        if caps or caps_error or st.st_mode & _SETID:
            self.found.append(
                PrivilegedFile(path, st.st_mode, st.st_uid, st.st_gid, caps, caps_error)
            )

    def file_error(self, path: str, exc: OSError) -> None:
        if exc.errno in _NO_XATTR:  # a filesystem without xattrs: only the set-id bits matter
            try:
                st = os.lstat(path)
            except OSError:
                return
            if st.st_mode & _SETID:
                self.found.append(PrivilegedFile(path, st.st_mode, st.st_uid, st.st_gid))
        elif exc.errno != errno.ENOENT:  # a file deleted during the walk is not an error
            self.error(path, exc)
