"""What ``--apply`` may change, read and restored exactly: inodes, groups, running sysctls.

A :data:`Ref` names one thing an action touches; :func:`snapshot` reads its state and
:func:`restore` puts a state back.  An inode's state is what the kernel keeps of it that unroot
changes — type, device and inode number, mode (set-id and sticky bits included), owner, the raw
bytes of ``system.posix_acl_access``, ``system.posix_acl_default`` and ``security.capability``
(absent is not empty), and a regular file's content hash — so restoring it is byte for byte and
a node replaced or edited since is noticed.

Paths are never followed into places the journal did not record: a node is opened with
``O_PATH|O_NOFOLLOW``, its device and inode number compared with the snapshot's, and changed
through ``/proc/self/fd/N`` (:class:`Pins`), so a symlink swapped in between cannot redirect a
chmod or setxattr.  ``OSError`` becomes an :class:`~unroot.errors.EnvironmentProblem` here.
"""

from __future__ import annotations

import errno
import grp
import hashlib
import os
import stat
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from unroot.errors import EnvironmentProblem, UsageError

XATTR_ACL_ACCESS = "system.posix_acl_access"
XATTR_ACL_DEFAULT = "system.posix_acl_default"
XATTR_CAPS = "security.capability"
XATTRS = (XATTR_ACL_ACCESS, XATTR_ACL_DEFAULT, XATTR_CAPS)
NODE_TYPES = ("absent", "file", "dir", "symlink", "other")


# -- what is touched -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class NodeRef:
    """An inode by its absolute path (never followed if it is a symlink)."""

    path: str


@dataclass(frozen=True, slots=True)
class GroupRef:
    """A group in /etc/group, by name and gid."""

    name: str
    gid: int


@dataclass(frozen=True, slots=True)
class SysctlRef:
    """A running sysctl, by its file under /proc/sys (of the caller's network namespace)."""

    path: str


Ref = NodeRef | GroupRef | SysctlRef


# -- their states ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class NodeState:
    """One inode as unroot records it; ``type="absent"`` when there is none (other fields 0)."""

    type: str
    dev: int = 0
    ino: int = 0
    mode: int = 0
    uid: int = 0
    gid: int = 0
    xattrs: tuple[tuple[str, str | None], ...] = ()  # (name, hex bytes or None when absent)
    sha256: str | None = None  # a regular file's content

    def xattr(self, name: str) -> bytes | None:
        value = dict(self.xattrs).get(name)
        return None if value is None else bytes.fromhex(value)


@dataclass(frozen=True, slots=True)
class GroupState:
    """Whether the group exists with the ref's name and gid, and its member list."""

    exists: bool
    members: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SysctlState:
    value: str


State = NodeState | GroupState | SysctlState
ABSENT = NodeState("absent")


def cannot(what: str, exc: OSError) -> EnvironmentProblem:
    """The one OSError edge of doctor's apply and undo."""
    return EnvironmentProblem(f"cannot {what}: {exc.strerror or exc}")


def _type_of(st: os.stat_result) -> str:
    if stat.S_ISREG(st.st_mode):
        return "file"
    if stat.S_ISDIR(st.st_mode):
        return "dir"
    if stat.S_ISLNK(st.st_mode):
        return "symlink"
    return "other"


def _get_xattr(at: str, name: str) -> str | None:
    try:
        return os.getxattr(at, name).hex()
    except OSError as exc:
        if exc.errno in (errno.ENODATA, errno.EOPNOTSUPP):
            return None
        raise


def _hash_content(at: str) -> str:
    digest = hashlib.sha256()
    with open(at, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def node_state(path: str) -> NodeState:
    """The inode at ``path`` (not followed), or :data:`ABSENT`."""
    try:
        fd = os.open(path, os.O_PATH | os.O_NOFOLLOW)
    except FileNotFoundError:
        return ABSENT
    except OSError as exc:
        raise cannot(f"open {path}", exc) from None
    try:
        st = os.fstat(fd)
        kind = _type_of(st)
        none = tuple((name, None) for name in XATTRS)
        mode = stat.S_IMODE(st.st_mode)
        base = NodeState(kind, st.st_dev, st.st_ino, mode, st.st_uid, st.st_gid, none)
        if kind not in ("file", "dir"):
            return base
        at = f"/proc/self/fd/{fd}"
        xattrs = tuple((name, _get_xattr(at, name)) for name in XATTRS)
        digest = _hash_content(at) if kind == "file" else None
        return NodeState(kind, base.dev, base.ino, base.mode, base.uid, base.gid, xattrs, digest)
    except OSError as exc:
        raise cannot(f"read {path}", exc) from None
    finally:
        os.close(fd)


def group_state(ref: GroupRef) -> GroupState:
    try:
        entry = grp.getgrnam(ref.name)
    except KeyError:
        return GroupState(False)
    if entry.gr_gid != ref.gid:
        return GroupState(False)
    return GroupState(True, tuple(entry.gr_mem))


def sysctl_state(ref: SysctlRef) -> SysctlState:
    try:
        with open(ref.path, encoding="ascii") as handle:
            return SysctlState(handle.read().strip())
    except OSError as exc:
        raise cannot(f"read {ref.path}", exc) from None


def snapshot(ref: Ref) -> State:
    if isinstance(ref, NodeRef):
        return node_state(ref.path)
    if isinstance(ref, GroupRef):
        return group_state(ref)
    return sysctl_state(ref)


# -- acting on a pinned inode ----------------------------------------------------------------
@dataclass
class Pins:
    """Expected inodes by path: :meth:`at` opens a path without following it, checks that it is
    still the inode the snapshot recorded, and returns ``/proc/self/fd/N`` to act through."""

    expect: dict[str, NodeState] = field(default_factory=dict)

    @contextmanager
    def at(self, path: str) -> Iterator[str]:
        try:
            fd = os.open(path, os.O_PATH | os.O_NOFOLLOW)
        except OSError as exc:
            raise cannot(f"open {path}", exc) from None
        try:
            st = os.fstat(fd)
            if stat.S_ISLNK(st.st_mode):
                raise UsageError(
                    f"{path} is a symlink; unroot acts on the inode it names, not on it"
                )
            expected = self.expect.get(path)
            if (
                expected is not None
                and expected.type != "absent"
                and (expected.dev, expected.ino) != (st.st_dev, st.st_ino)
            ):
                raise UsageError(
                    f"{path} is not the inode recorded a moment ago (replaced, or a symlink "
                    "swapped in above it); nothing is done to it"
                )
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)


def set_xattr(at: str, name: str, value: bytes | None) -> None:
    """Set ``name`` to ``value``, or remove it (None); removing an absent one is no change."""
    if value is not None:
        os.setxattr(at, name, value)
        return
    try:
        os.removexattr(at, name)
    except OSError as exc:
        if exc.errno not in (errno.ENODATA, errno.EOPNOTSUPP):
            raise


# -- restoring -------------------------------------------------------------------------------
def _remove_node(path: str, live: NodeState) -> None:
    """Remove the inode unroot created at ``path``, through its directory's fd and only if the
    name still holds that inode."""
    parent, name = os.path.split(path)
    dfd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
        if (st.st_dev, st.st_ino) != (live.dev, live.ino):
            raise UsageError(f"{path} changed while it was being removed; left as it is")
        if stat.S_ISDIR(st.st_mode):
            os.rmdir(name, dir_fd=dfd)
        else:
            os.unlink(name, dir_fd=dfd)
    finally:
        os.close(dfd)


def _restore_node(path: str, want: NodeState) -> None:
    live = node_state(path)
    if want.type == "absent":
        if live.type != "absent":
            _remove_node(path, live)
        return
    if live.type != want.type or (live.dev, live.ino) != (want.dev, want.ino):
        raise UsageError(f"{path} is no longer the inode recorded; left as it is")
    pins = Pins({path: want})
    with pins.at(path) as at:
        if (live.uid, live.gid) != (want.uid, want.gid):
            os.chown(at, want.uid, want.gid)  # clears set-id bits and file caps: restored below
        set_xattr(at, XATTR_ACL_ACCESS, want.xattr(XATTR_ACL_ACCESS))
        os.chmod(at, want.mode)  # after the access ACL: the mode's group bits are its mask
        if want.type == "dir":
            set_xattr(at, XATTR_ACL_DEFAULT, want.xattr(XATTR_ACL_DEFAULT))
        set_xattr(at, XATTR_CAPS, want.xattr(XATTR_CAPS))


def _run(argv: list[str]) -> None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EnvironmentProblem(f"cannot run {argv[0]}: {exc}") from None
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines() or [f"exit {done.returncode}"]
        raise EnvironmentProblem(f"{' '.join(argv)} failed: {lines[-1]}")


def groupadd(name: str, gid: int) -> None:
    """``groupadd -g GID NAME``: the tool, so /etc/gshadow stays consistent."""
    _run(["groupadd", "-g", str(gid), name])


def groupdel(name: str) -> None:
    _run(["groupdel", name])


def write_sysctl(path: str, value: str) -> None:
    try:
        with open(path, "w", encoding="ascii") as handle:
            handle.write(value)
    except OSError as exc:
        raise cannot(f"write {value} to {path}", exc) from None


def restore(ref: Ref, want: State) -> None:
    """Put ``want`` back (a node: owner, access ACL, mode, default ACL, capability, in that
    order, since chown clears set-id bits and capabilities and an ACL sets the group bits)."""
    if isinstance(ref, NodeRef):
        assert isinstance(want, NodeState)
        try:
            _restore_node(ref.path, want)
        except OSError as exc:
            raise cannot(f"restore {ref.path}", exc) from None
    elif isinstance(ref, GroupRef):
        assert isinstance(want, GroupState)
        live = group_state(ref)
        if live.exists and not want.exists:
            groupdel(ref.name)
    else:
        assert isinstance(want, SysctlState)
        if sysctl_state(ref) != want:
            write_sysctl(ref.path, want.value)


def differs(ref: Ref, want: State, live: State) -> str | None:
    """How ``live`` differs from ``want``, in a few words; None when it does not."""
    if live == want:
        return None
    if isinstance(ref, NodeRef):
        assert isinstance(want, NodeState)
        assert isinstance(live, NodeState)
        return f"{ref.path}: {_node_difference(want, live)}"
    if isinstance(ref, GroupRef):
        assert isinstance(want, GroupState)
        assert isinstance(live, GroupState)
        if want.exists != live.exists:
            return f"group {ref.name} ({ref.gid}) {'is gone' if want.exists else 'exists'}"
        return f"group {ref.name}'s members are now {', '.join(live.members) or 'none'}"
    assert isinstance(want, SysctlState)
    assert isinstance(live, SysctlState)
    return f"{ref.path} is {live.value}, not {want.value}"


def _node_difference(want: NodeState, live: NodeState) -> str:
    if want.type != live.type:
        return f"was {want.type}, now {live.type}"
    if (want.dev, want.ino) != (live.dev, live.ino):
        return f"replaced (inode {want.ino}, now {live.ino})"
    if want.mode != live.mode:
        return f"mode {want.mode:04o}, now {live.mode:04o}"
    if (want.uid, want.gid) != (live.uid, live.gid):
        return f"owner {want.uid}:{want.gid}, now {live.uid}:{live.gid}"
    for (name, value), (_, now) in zip(want.xattrs, live.xattrs, strict=False):
        if value != now:
            return f"{name} changed"
    return "content changed"
