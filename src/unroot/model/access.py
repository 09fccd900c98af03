"""Path access: may these credentials read, write or execute PATH? — path_resolution(7), acl(5).

The walk is fs/namei.c link_path_walk(): before each component the current directory must
grant search (``may_lookup`` = inode_permission(MAY_EXEC)); ``.`` stays, ``..`` goes to the
parent (``/..`` is ``/``); a missing name is ENOENT; a symlink in the middle is followed
(relative to the directory holding it, or from ``/``), its last component too; a component used
as a directory that is not one is ENOTDIR; the 41st symlink of one lookup is ELOOP
(MAXSYMLINKS = 40).  A trailing symlink is followed (faccessat(2) follows), and when
``fs.protected_symlinks`` is set, only if the follower owns it, or its directory is not sticky
and world-writable, or the directory's owner owns it (may_follow_link).  A trailing ``/``
requires a directory.

Each permission check is inode_permission() → generic_permission():

1. a write on a read-only *filesystem* (superblock) is EROFS first, for files, directories and
   symlinks; a write to an immutable inode (chattr +i) is EPERM;
2. acl_permission_check(): if the fsuid owns the inode the owner bits decide alone; else, if
   the inode has an access ACL and the mode's group bits (the mask) are non-zero, the ACL
   decides (posix_acl_permission: a named user entry ANDed with the mask; the owning group and
   named groups that match and grant every wanted bit, ANDed with the mask; groups that matched
   but granted too little deny without looking at ``other``); else the group bits when the
   file's group is the fsgid or a supplementary group (and the group bits differ from
   ``other``'s in the wanted bits), else ``other``;
3. if that denies, capabilities (capable_wrt_inode_uidgid: in the caller's user namespace, and
   only when the inode's owner and group are both mapped there): for a directory
   CAP_DAC_READ_SEARCH allows read and search, CAP_DAC_OVERRIDE everything; for anything else
   CAP_DAC_READ_SEARCH allows a plain read, CAP_DAC_OVERRIDE everything except executing a
   file that has no x bit at all.

faccessat(2) (fs/open.c do_faccessat, with AT_EACCESS: the fsuid, fsgid and effective set) adds:
X on a regular file of a ``noexec`` mount is EACCES before anything else, and a write that
passed the checks above is EROFS on a read-only *mount* (bind mount ``ro``, a ``:ro`` volume) —
except for devices, FIFOs and sockets.  Asked with open flags (``open_flags``: ``append``,
``trunc``; even none), the answer is open(2)'s (fs/namei.c do_open() and may_open()) for a
regular file: ``O_TRUNC`` asks for write permission too and makes a read-only mount or
filesystem EROFS before any permission check (mnt_want_write()); after the permission check,
an append-only inode (chattr +a) refuses with EPERM an open for writing without ``O_APPEND``
and any ``O_TRUNC`` (``IS_APPEND``, before the write access to the mount: EPERM, not EROFS, on
a read-only mount); then a write on a read-only mount is EROFS.  faccessat(2) does not look at
the append-only flag.  Fixes are simulated on the tree and only ever widen access for the
identity asked about — never for "other" — and never on a path :mod:`unroot.model.protected`
protects (credentials, root-equivalents: the fix says why and what to do instead; in a key
store, only ACL entries naming the identity).

Reason codes (stable): ``searched``, ``symlink`` (the walk); ``missing`` (ENOENT),
``not-a-directory`` (ENOTDIR), ``symlink-loop`` (ELOOP), ``protected-symlink``,
``search-denied``, ``access-denied``, ``noexec-mount`` (EACCES), ``read-only-fs``,
``read-only-mount`` (EROFS), ``immutable``, ``append-only`` (EPERM); and for an allowed
access the rule that allowed it: ``owner``, ``group``, ``other``, ``acl-user``, ``acl-group``,
``cap-dac-read-search``, ``cap-dac-override``.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace

from unroot.model.acl import ACL_GROUP, ACL_GROUP_OBJ, ACL_USER, Acl, perm_text
from unroot.model.caps import CapSet
from unroot.model.creds import Creds
from unroot.model.errors import ParseError
from unroot.model.protected import Protection, protection
from unroot.model.userns import INIT_USERNS, UserNs
from unroot.model.verdict import Fix, Reason, Verdict

KINDS = ("dir", "file", "symlink", "fifo", "chr", "blk", "sock")
SPECIAL_KINDS = ("fifo", "chr", "blk", "sock")
MAXSYMLINKS = 40
MAY_EXEC, MAY_WRITE, MAY_READ = 1, 2, 4
CAP_DAC_OVERRIDE = CapSet.of("cap_dac_override")
CAP_DAC_READ_SEARCH = CapSet.of("cap_dac_read_search")
_KIND_CHAR = {
    "dir": "d",
    "file": "-",
    "symlink": "l",
    "fifo": "p",
    "chr": "c",
    "blk": "b",
    "sock": "s",
}


@dataclass(frozen=True, slots=True)
class Inode:
    """What the walk needs to know of one inode, and of the mount it was reached through.

    ``mode`` holds the permission bits including setuid/setgid/sticky (0o7777).  When ``acl``
    is set, the rwx bits of ``mode`` are those the ACL implies (owner = ``user::``, group =
    ``mask::``, other = ``other::``), as the kernel keeps them.  ``readonly_mount`` is the
    per-mount ``ro`` flag (EROFS after the DAC check), ``readonly_fs`` a read-only superblock
    (EROFS before it).  ``append_only``: chattr +a (only open(2) looks at it).
    """

    kind: str
    mode: int = 0o755
    uid: int = 0
    gid: int = 0
    acl: Acl | None = None
    target: str | None = None
    readonly_mount: bool = False
    readonly_fs: bool = False
    noexec_mount: bool = False
    immutable: bool = False
    append_only: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ParseError(f"inode type must be one of {', '.join(KINDS)}, not {self.kind!r}")
        if isinstance(self.mode, bool) or not 0 <= self.mode <= 0o7777:
            raise ParseError(f"mode {self.mode!r} is not within 0..0o7777")
        for name in ("uid", "gid"):
            value = getattr(self, name)
            if isinstance(value, bool) or not 0 <= value <= 0xFFFFFFFE:
                raise ParseError(f"{name} {value!r} is not within 0..4294967294")
        if (self.kind == "symlink") != (self.target is not None):
            raise ParseError("a symlink needs a target, and only a symlink has one")
        if self.target is not None and (not self.target or "\0" in self.target):
            raise ParseError("a symlink target must be a non-empty path without NUL")
        if self.acl is not None and self.kind == "symlink":
            raise ParseError("symlinks carry no ACL")


FsTree = Mapping[str, Inode]
"""Absolute, normalised paths (no ``.``/``..``, no trailing ``/``) to inodes."""


def mode_string(inode: Inode) -> str:
    """``ls -l``'s first column: ``drwxr-x---+`` (``+`` when an ACL is present)."""
    mode = inode.mode
    chars = []
    for shift, special, letter in ((6, 0o4000, "s"), (3, 0o2000, "s"), (0, 0o1000, "t")):
        bits = (mode >> shift) & 7
        x = bits & 1
        chars.append("r" if bits & 4 else "-")
        chars.append("w" if bits & 2 else "-")
        if mode & special:
            chars.append(letter if x else letter.upper())
        else:
            chars.append("x" if x else "-")
    return _KIND_CHAR[inode.kind] + "".join(chars) + ("+" if inode.acl is not None else "")


def _id(value: int) -> str:
    return "root" if value == 0 else str(value)


def _describe(path: str, inode: Inode) -> str:
    return f"{path} is {mode_string(inode)} {_id(inode.uid)}:{_id(inode.gid)}"


def parse_want(want: str) -> int:
    """``r``, ``w``, ``x`` in any combination (``rw``, ``rx``…), or empty for existence only."""
    if (
        not isinstance(want, str)
        or any(ch not in "rwx" for ch in want)
        or len(set(want)) != len(want)
    ):
        raise ParseError(f"want must be a combination of r, w and x, not {want!r}")
    return (
        (MAY_READ if "r" in want else 0)
        | (MAY_WRITE if "w" in want else 0)
        | (MAY_EXEC if "x" in want else 0)
    )


OPEN_FLAGS = ("append", "trunc")


def parse_open_flags(flags: object) -> frozenset[str]:
    """``append``, ``trunc`` (O_APPEND, O_TRUNC), as a list; empty names are skipped."""
    if not isinstance(flags, list | tuple | frozenset | set):
        raise ParseError(f"open flags must be a list of {', '.join(OPEN_FLAGS)}")
    names = {str(flag).strip().lower().removeprefix("o_") for flag in flags} - {""}
    unknown = sorted(names - set(OPEN_FLAGS))
    if unknown:
        raise ParseError(
            f"open flags are {', '.join(OPEN_FLAGS)}, not {', '.join(unknown)}", "open_flags"
        )
    return frozenset(names)


def _bits(mask: int) -> str:
    return "".join(ch for ch, bit in (("r", 4), ("w", 2), ("x", 1)) if mask & bit) or "nothing"


def _split(path: str) -> list[str]:
    return [part for part in path.split("/") if part]


def _join(directory: str, name: str) -> str:
    return "/" + name if directory == "/" else f"{directory}/{name}"


def _parent(directory: str) -> str:
    return directory.rsplit("/", 1)[0] or "/"


# -- generic_permission --------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Decision:
    allowed: bool
    code: str
    text: str


def _acl_check(inode: Inode, acl: Acl, creds: Creds, want: int) -> tuple[bool, str, str] | None:
    """posix_acl_permission(); None when it falls through to other:: (no group matched)."""
    mask = acl.mask
    masked = "" if mask is None else f" & mask::{perm_text(mask)}"
    fsuid = creds.uid.fs
    matched: list[str] = []
    for entry in acl.entries:
        if entry.tag == ACL_USER and entry.id == fsuid:
            effective = entry.perm & (7 if mask is None else mask)
            ok = effective & want == want
            verb = "grants" if ok else "does not grant"
            return (
                ok,
                "acl-user",
                (f"ACL entry {entry.to_text()}{masked} {verb} {_bits(want)} to uid {fsuid}"),
            )
        if entry.tag in (ACL_GROUP_OBJ, ACL_GROUP):
            gid = inode.gid if entry.tag == ACL_GROUP_OBJ else entry.id
            if gid is None or not creds.in_group(gid):
                continue
            label = (
                f"group::{perm_text(entry.perm)} (gid {gid})"
                if entry.tag == ACL_GROUP_OBJ
                else entry.to_text()
            )
            if entry.perm & want == want:
                ok = mask is None or entry.perm & mask & want == want
                verb = "grants" if ok else "is cut by the mask and does not grant"
                return ok, "acl-group", f"ACL entry {label}{masked} {verb} {_bits(want)}"
            matched.append(label)
    if matched:
        return (
            False,
            "acl-group-no-grant",
            (
                f"the caller's groups match ACL entries {', '.join(matched)}, none of which grants "
                f"{_bits(want)}; a matching group that grants too little denies without looking at "
                f"other::{perm_text(acl.other)}"
            ),
        )
    return None


def _dac(path: str, inode: Inode, creds: Creds, mask: int, userns: UserNs) -> _Decision:
    """generic_permission() with the reason in people's words."""
    want = mask & 7
    mode = inode.mode
    fsuid, fsgid = creds.uid.fs, creds.gid.fs
    head = _describe(path, inode)
    ok: bool
    if inode.uid == fsuid:
        ok = want & ~(mode >> 6) & 7 == 0
        verb = "grant" if ok else "lack"
        code, text = (
            "owner",
            (
                f"{head}: uid {fsuid} owns it, so the owner bits {perm_text((mode >> 6) & 7)} "
                f"decide alone and {verb} {_bits(want)}"
            ),
        )
    else:
        acl_result = None
        if inode.acl is not None and mode & 0o070:
            acl_result = _acl_check(inode, inode.acl, creds, want)
        if acl_result is not None:
            ok, code, detail = acl_result
            text = f"{head}: {detail}"
        elif inode.acl is not None and mode & 0o070:
            ok = want & ~(inode.acl.other) == 0
            code = "other"
            text = (
                f"{head}: uid {fsuid} is not the owner and matches no ACL user or group entry; "
                f"other::{perm_text(inode.acl.other)} {'grants' if ok else 'lacks'} {_bits(want)}"
            )
        else:
            in_group = creds.in_group(inode.gid)
            bits = (mode >> 3) & 7 if want & (mode ^ (mode >> 3)) and in_group else mode & 7
            ok = want & ~bits & 7 == 0
            missing = _bits(want & ~bits & 7)
            if in_group:
                code = "group"
                text = (
                    f"{head}: uid {fsuid} is not the owner but is in group {inode.gid}, whose "
                    f"bits {perm_text((mode >> 3) & 7)} "
                    + (f"grant {_bits(want)}" if ok else f"lack {missing}")
                )
            else:
                groups = sorted({fsgid} | set(creds.groups))
                code = "other"
                text = (
                    f"{head}: uid {fsuid} is not the owner, not in group {inode.gid} "
                    f"(its groups: {', '.join(map(str, groups))}), and 'other' "
                    + (f"grants {_bits(want)}" if ok else f"has no {missing}")
                )
            if inode.acl is not None and not mode & 0o070:
                text += " (the ACL is not consulted: its mask is ---)"
    if ok:
        return _Decision(True, code, text)
    return _capabilities(inode, creds, mask, userns, code=code, text=text)


def _capabilities(
    inode: Inode, creds: Creds, mask: int, userns: UserNs, *, code: str, text: str
) -> _Decision:
    want = mask & 7
    effective = creds.effective
    has_rs = CAP_DAC_READ_SEARCH.issubset(effective)
    has_ov = CAP_DAC_OVERRIDE.issubset(effective)
    mapped = userns.maps_inode(inode.uid, inode.gid)
    if inode.kind == "dir":
        rs_applies = not want & MAY_WRITE
        ov_applies = True
    else:
        rs_applies = want == MAY_READ
        ov_applies = not want & MAY_EXEC or bool(inode.mode & 0o111)
    if mapped and has_rs and rs_applies:
        return _Decision(
            True, "cap-dac-read-search", f"{text}; CAP_DAC_READ_SEARCH allows {_bits(want)}"
        )
    if mapped and has_ov and ov_applies:
        return _Decision(True, "cap-dac-override", f"{text}; CAP_DAC_OVERRIDE allows {_bits(want)}")
    notes = []
    if (has_rs and rs_applies) or (has_ov and ov_applies):
        notes.append(
            f"the caller's capabilities do not count: owner {inode.uid} or group {inode.gid} "
            "is not mapped in its user namespace"
        )
    if has_ov and not ov_applies:
        notes.append("CAP_DAC_OVERRIDE cannot execute a file that has no x bit at all")
    if has_rs and not rs_applies and not has_ov:
        notes.append("CAP_DAC_READ_SEARCH covers only reading (and searching directories)")
    if not has_rs and not has_ov:
        notes.append("the process has neither CAP_DAC_READ_SEARCH nor CAP_DAC_OVERRIDE")
    return _Decision(False, code, f"{text}; " + "; ".join(notes))


# -- the walk ------------------------------------------------------------------------------
class _Stop(Exception):  # control flow inside the walk; never escapes this module
    def __init__(self, errno: str, at: str, reason: Reason, need: int = 0) -> None:
        super().__init__(errno)
        self.errno = errno
        self.at = at
        self.reason = reason
        self.need = need  # the DAC bits to grant at ``at`` (0: not a DAC denial)


@dataclass(slots=True)
class _Walker:
    tree: FsTree
    creds: Creds
    userns: UserNs
    protected_symlinks: bool
    links: int = 0
    must_be_dir: bool = False
    searched: list[str] = field(default_factory=list)
    followed: list[str] = field(default_factory=list)

    def inode(self, path: str) -> Inode:
        inode = self.tree.get(path)
        if inode is None:
            raise _Stop("ENOENT", path, Reason("missing", f"{path} does not exist"))
        return inode

    def permission(self, path: str, inode: Inode, mask: int) -> _Decision:
        """inode_permission(): read-only superblock, immutable, then generic_permission()."""
        if mask & MAY_WRITE:
            if inode.readonly_fs and inode.kind in ("file", "dir", "symlink"):
                raise _Stop(
                    "EROFS",
                    path,
                    Reason(
                        "read-only-fs",
                        f"{path} is on a read-only filesystem: no write, not even "
                        "for root, and before any permission check",
                    ),
                )
            if inode.immutable:
                raise _Stop(
                    "EPERM",
                    path,
                    Reason("immutable", f"{path} is immutable (chattr +i): nobody may write it"),
                )
        return _dac(path, inode, self.creds, mask, self.userns)

    def may_lookup(self, directory: str) -> None:
        inode = self.inode(directory)
        decision = self.permission(directory, inode, MAY_EXEC)
        if not decision.allowed:
            raise _Stop(
                "EACCES",
                directory,
                Reason("search-denied", f"search (x) denied: {decision.text}"),
                MAY_EXEC,
            )
        self.searched.append(directory)

    def follow(self, link: str, inode: Inode, directory: str, trailing: bool) -> str:
        if self.links >= MAXSYMLINKS:
            raise _Stop(
                "ELOOP",
                link,
                Reason(
                    "symlink-loop",
                    f"{link} would be the {MAXSYMLINKS + 1}st symlink of this "
                    "lookup (more than 40 symlinks: ELOOP)",
                ),
            )
        self.links += 1
        if trailing and self.protected_symlinks:
            dir_inode = self.inode(directory)
            if (
                inode.uid != self.creds.uid.fs
                and dir_inode.mode & 0o1002 == 0o1002
                and dir_inode.uid != inode.uid
            ):
                raise _Stop(
                    "EACCES",
                    link,
                    Reason(
                        "protected-symlink",
                        f"fs.protected_symlinks: {link} is owned by {_id(inode.uid)}, sits in "
                        f"the sticky world-writable {directory} (owned by "
                        f"{_id(dir_inode.uid)}) and the follower is uid {self.creds.uid.fs}",
                    ),
                )
        assert inode.target is not None
        self.followed.append(f"{link} → {inode.target}")
        return inode.target

    def walk(self, directory: str, text: str, trailing: bool) -> str:
        """Resolve ``text`` from ``directory``; return the canonical path it names."""
        current = "/" if text.startswith("/") else directory
        parts = _split(text)
        if not parts:
            return current
        slash = text.endswith("/")
        for index, name in enumerate(parts):
            last = index == len(parts) - 1
            self.may_lookup(current)
            if name == ".":
                found = current
            elif name == "..":
                found = _parent(current)
            else:
                found = _join(current, name)
                inode = self.inode(found)
                if inode.kind == "symlink":
                    target = self.follow(found, inode, current, trailing and last)
                    if last and trailing:
                        self.must_be_dir |= slash
                        return self.walk(current, target, trailing=True)
                    found = self.walk(current, target, trailing=False)
            if last:
                self.must_be_dir |= slash and trailing
                return found
            if self.inode(found).kind != "dir":
                raise _Stop(
                    "ENOTDIR",
                    found,
                    Reason(
                        "not-a-directory",
                        f"{found} is a {self.inode(found).kind}, not a directory, "
                        "but the path continues below it",
                    ),
                )
            current = found
        raise AssertionError("unreachable")  # pragma: no cover


@dataclass(frozen=True, slots=True)
class Resolution:
    """Where a lookup ends (``path`` of the final inode) or the error that stops it."""

    path: str | None
    errno: str | None
    at: str | None
    followed: tuple[str, ...] = ()


def _check_path(path: str) -> None:
    if not isinstance(path, str) or not path.startswith("/") or "\0" in path:
        raise ParseError(f"path must be absolute (start with '/'), not {path!r}")


def resolve(tree: FsTree, path: str, creds: Creds | None = None) -> Resolution:
    """Follow ``path`` through ``tree`` as the kernel would; with ``creds=None`` ignore
    permissions (what inodes does the lookup reach?)."""
    _check_path(path)
    walker = _Walker(tree, creds or _ALL_POWERFUL, INIT_USERNS, protected_symlinks=False)
    try:
        final = walker.walk("/", path, trailing=True)
        inode = walker.inode(final)
        if walker.must_be_dir and inode.kind != "dir":
            raise _Stop("ENOTDIR", final, Reason("not-a-directory", f"{final}: not a directory"))
    except _Stop as stop:
        return Resolution(None, stop.errno, stop.at, tuple(walker.followed))
    return Resolution(final, None, None, tuple(walker.followed))


_ALL_POWERFUL = Creds(effective=CapSet.all(), permitted=CapSet.all())


@dataclass(frozen=True, slots=True)
class _Question:
    path: str
    creds: Creds
    mask: int
    userns: UserNs
    protected: bool
    fix_group: int | None
    open_flags: frozenset[str] | None = None
    write_mode: bool = False  # open(2): O_WRONLY or O_RDWR


def _evaluate(tree: FsTree, q: _Question) -> tuple[Verdict, _Stop | None]:
    path, mask = q.path, q.mask
    walker = _Walker(tree, q.creds, q.userns, q.protected)
    try:
        final = walker.walk("/", path, trailing=True)
        inode = walker.inode(final)
        if walker.must_be_dir and inode.kind != "dir":
            raise _Stop(
                "ENOTDIR",
                final,
                Reason("not-a-directory", f"{path} ends with '/' but {final} is a {inode.kind}"),
            )
        if mask & MAY_EXEC and inode.kind == "file" and inode.noexec_mount:
            raise _Stop(
                "EACCES",
                final,
                Reason("noexec-mount", f"{final} is on a noexec mount: nobody may execute it"),
            )
        flags = q.open_flags
        trunc = flags is not None and "trunc" in flags and inode.kind == "file"
        if trunc and (inode.readonly_mount or inode.readonly_fs):
            raise _Stop(
                "EROFS",
                final,
                Reason(
                    "read-only-mount",
                    f"{final} is on a read-only mount: open(O_TRUNC) fails with EROFS before "
                    "any permission check",
                ),
            )
        decision = walker.permission(final, inode, mask)
        if not decision.allowed:
            raise _Stop(
                "EACCES",
                final,
                Reason("access-denied", f"{_bits(mask)} denied: {decision.text}"),
                mask & 7,
            )
        if (
            flags is not None
            and inode.append_only
            and inode.kind != "dir"
            and ((q.write_mode and "append" not in flags) or trunc)
        ):
            raise _Stop(
                "EPERM",
                final,
                Reason(
                    "append-only",
                    f"{final} is append-only (chattr +a): open(2) for writing needs O_APPEND "
                    "and O_TRUNC is refused, for root too",
                ),
            )
        if (
            mask & MAY_WRITE
            and inode.kind not in SPECIAL_KINDS
            and (inode.readonly_mount or inode.readonly_fs)
        ):
            raise _Stop(
                "EROFS",
                final,
                Reason(
                    "read-only-mount",
                    f"{final} passes the permission check but is on a read-only "
                    "mount: a write fails with EROFS",
                ),
            )
    except _Stop as stop:
        reasons = (*_walk_notes(walker), stop.reason)
        return Verdict(False, stop.errno, reasons, (), {"denied_at": stop.at}), stop
    reasons = (*_walk_notes(walker), Reason(decision.code, decision.text))
    return Verdict(True, None, reasons, (), {"denied_at": None}), None


def _walk_notes(walker: _Walker) -> list[Reason]:
    notes = []
    if walker.searched:
        dirs = list(dict.fromkeys(walker.searched))
        notes.append(Reason("searched", f"search (x) allowed on {', '.join(dirs)}"))
    notes.extend(Reason("symlink", f"followed {hop}") for hop in walker.followed)
    return notes


def access_verdict(
    tree: FsTree,
    path: str,
    creds: Creds,
    want: str = "r",
    *,
    userns: UserNs | None = None,
    protected_symlinks: bool = True,
    fix_group: int | None = None,
    open_flags: frozenset[str] | None = None,
) -> Verdict:
    """faccessat(path, want, AT_EACCESS) for ``creds`` (fsuid, fsgid, groups, effective set).

    ``open_flags`` (``append``, ``trunc``; an empty set counts): answer open(2) with ``want``
    as the access mode (``w``: O_WRONLY, ``rw``: O_RDWR) instead of faccessat.

    ``userns``: the caller's user namespace (None: the initial one, where every id is mapped);
    ``protected_symlinks``: the ``fs.protected_symlinks`` sysctl (systemd sets 1);
    ``fix_group``: phrase the fixes for this group (``g:GID``) instead of the fsuid.
    ``extra["denied_at"]`` is the path of the first inode that refuses (or is missing).
    """
    _check_path(path)
    mask = parse_want(want)
    if open_flags is not None:
        open_flags = parse_open_flags(open_flags)
    q = _Question(
        path,
        creds,
        mask | (MAY_WRITE if open_flags and "trunc" in open_flags else 0),
        userns or INIT_USERNS,
        protected_symlinks,
        fix_group,
        open_flags,
        bool(mask & MAY_WRITE),
    )
    verdict, stop = _evaluate(tree, q)
    if stop is None:
        return verdict
    target = _target_protection(tree, q)
    if target is not None and not target.narrow:
        return replace(verdict, fixes=(_refusal(target),))
    fixes = _dac_fixes(tree, q) if stop.errno == "EACCES" and stop.need else _other_fixes(stop)
    if target is not None and fixes:
        fixes = (*fixes, _refusal(target))
    return replace(verdict, fixes=fixes)


def _target_protection(tree: FsTree, q: _Question) -> Protection | None:
    """The protection of the path asked about, as written and where the lookup ends (a
    symlink to /etc/shadow is /etc/shadow); a refusal before a key store's narrow grant."""
    final = resolve(tree, q.path).path
    found = [
        p
        for path in dict.fromkeys((final or q.path, q.path))
        if (p := protection(path, write=bool(q.mask & MAY_WRITE))) is not None
    ]
    return min(found, key=lambda p: p.narrow, default=None)


def _refusal(guard: Protection) -> Fix:
    return Fix(guard.text(), None, guard)


# -- fixes ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Step:
    path: str
    argv: tuple[str, ...]  # the command without the path


Strategy = Callable[[str, Inode, int], tuple[Inode, tuple[str, ...]] | None]


def _with_mode(inode: Inode, mode: int) -> Inode:
    acl = inode.acl.with_chmod(mode) if inode.acl is not None else None
    return replace(inode, mode=mode, acl=acl)


def _acl_strategy(tag: int, ident: int, creds: Creds) -> Strategy:
    letter = "u" if tag == ACL_USER else "g"

    def grant(path: str, inode: Inode, need: int) -> tuple[Inode, tuple[str, ...]] | None:
        if tag == ACL_USER and inode.uid == creds.uid.fs:
            return _with_mode(inode, inode.mode | need << 6), ("chmod", f"u+{_bits(need)}")
        acl = inode.acl or Acl.from_mode(inode.mode)
        existing = (acl.users if tag == ACL_USER else acl.groups).get(ident, 0)
        perm = existing | need
        new_acl = acl.with_entry(tag, ident, perm)
        mode = inode.mode & ~0o777 | new_acl.mode_bits()
        return replace(inode, mode=mode, acl=new_acl), (
            "setfacl",
            "-m",
            f"{letter}:{ident}:{perm_text(perm).replace('-', '')}",
        )

    return grant


def _group_strategy(gid: int, creds: Creds, is_group_question: bool) -> Strategy:
    def grant(path: str, inode: Inode, need: int) -> tuple[Inode, tuple[str, ...]] | None:
        if not is_group_question and inode.uid == creds.uid.fs:
            return _with_mode(inode, inode.mode | need << 6), ("chmod", f"u+{_bits(need)}")
        if inode.acl is not None:
            return _acl_strategy(ACL_GROUP, gid, creds)(path, inode, need)
        chmod = ("chmod", f"g+{_bits(need)}")
        if inode.gid == gid or (not is_group_question and creds.in_group(inode.gid)):
            return _with_mode(inode, inode.mode | need << 3), chmod
        mode = inode.mode | need << 3
        if inode.kind != "dir":  # chown clears setuid, and setgid when group-executable
            mode &= ~0o4000
            if mode & 0o010:
                mode &= ~0o2000
        return replace(_with_mode(inode, mode), gid=gid), ("chgrp", str(gid), "&&", *chmod)

    return grant


class _Overlay(Mapping[str, Inode]):
    """The tree with the simulated fixes laid over it."""

    def __init__(self, changes: dict[str, Inode], base: FsTree) -> None:
        self.changes = changes
        self.base = base

    def __getitem__(self, key: str) -> Inode:
        if key in self.changes:
            return self.changes[key]
        return self.base[key]

    def __iter__(self) -> Iterator[str]:
        yield from self.changes
        yield from (key for key in self.base if key not in self.changes)

    def __len__(self) -> int:
        return len(self.changes) + sum(1 for key in self.base if key not in self.changes)


def _plan(
    tree: FsTree, q: _Question, strategy: Strategy
) -> tuple[list[_Step], _Stop | None] | Protection | None:
    """Apply ``strategy`` at each DAC denial in turn until the lookup passes or fails for
    another reason; None when the strategy cannot make progress, the protection when a step
    would widen access to a protected path (in a key store: anything but an ACL entry or a
    chmod for the identity, i.e. a chgrp)."""
    changes: dict[str, Inode] = {}
    overlay = _Overlay(changes, tree)
    steps: list[_Step] = []
    seen: set[tuple[str, int]] = set()
    for _ in range(4 * MAXSYMLINKS):
        _verdict, stop = _evaluate(overlay, q)
        if stop is None:
            return steps, None
        if stop.errno != "EACCES" or not stop.need:
            return (steps, stop) if steps else None
        if (stop.at, stop.need) in seen:
            return None
        seen.add((stop.at, stop.need))
        granted = strategy(stop.at, overlay[stop.at], stop.need)
        if granted is None:
            return None
        guard = protection(stop.at, write=bool(stop.need & MAY_WRITE))
        if guard is not None and (not guard.narrow or granted[1][0] == "chgrp"):
            return guard
        changes[stop.at], argv = granted
        steps.append(_Step(stop.at, argv))
    return None


def _argvs(steps: list[_Step]) -> tuple[tuple[str, ...], ...]:
    """Each step as the simple commands it is made of, with its path (``chgrp G && chmod``
    is two)."""
    argvs: list[tuple[str, ...]] = []
    for step in steps:
        argv = step.argv
        while "&&" in argv:
            cut = argv.index("&&")
            argvs.append((*argv[:cut], step.path))
            argv = argv[cut + 1 :]
        argvs.append((*argv, step.path))
    return tuple(argvs)


def _command(steps: list[_Step]) -> str:
    groups: list[tuple[tuple[str, ...], list[str]]] = []
    for step in steps:
        if groups and groups[-1][0] == step.argv:
            groups[-1][1].append(step.path)
        else:
            groups.append((step.argv, [step.path]))
    commands = []
    for argv, paths in groups:
        quoted = " ".join(shlex.quote(p) for p in paths)
        if "&&" in argv:
            cut = argv.index("&&")
            first, second = argv[:cut], argv[cut + 1 :]
            commands.append(f"{' '.join(first)} {quoted} && {' '.join(second)} {quoted}")
        else:
            commands.append(f"{' '.join(argv)} {quoted}")
    return " && ".join(commands)


def _dac_fixes(tree: FsTree, q: _Question) -> tuple[Fix, ...]:
    creds, fix_group = q.creds, q.fix_group
    uid = creds.uid.fs
    if fix_group is None:
        who = f"uid {uid}"
        acl = _acl_strategy(ACL_USER, uid, creds)
        group_gid = creds.gid.fs
    else:
        who = f"group {fix_group}"
        acl = _acl_strategy(ACL_GROUP, fix_group, creds)
        group_gid = fix_group
    options: list[tuple[str, Strategy]] = [
        (
            f"grant {who} exactly what the lookup needs with ACL entries (search on each "
            "blocking directory, the wanted bits on the target); nobody else gains anything",
            acl,
        ),
    ]
    if group_gid != 0:
        options.append(
            (
                f"or give the blocking inodes to group {group_gid} and widen the group bits: every "
                f"member of group {group_gid} gains the same access, the previous group loses its "
                "group access, and chgrp clears setuid/setgid bits and file capabilities of "
                "regular files",
                _group_strategy(group_gid, creds, fix_group is not None),
            )
        )
    fixes: list[Fix] = []
    seen: set[str] = set()
    for why, strategy in options:
        plan = _plan(tree, q, strategy)
        if isinstance(plan, Protection):
            if not plan.narrow and _refusal(plan) not in fixes:
                fixes.append(_refusal(plan))
            continue
        if plan is None or not plan[0]:
            continue
        steps, remaining = plan
        if remaining is not None and remaining.errno in ("ENOENT", "ENOTDIR", "ELOOP"):
            unfixable = Fix(
                f"even with the permissions granted the lookup fails: {remaining.reason.text}"
            )
            return (unfixable,)
        command = _command(steps)
        if command in seen:
            continue
        seen.add(command)
        tail = "".join(_apply_note(step.path, tree[step.path]) for step in steps)
        if remaining is not None:
            tail += f" (then: {remaining.reason.text})"
        fixes.append(Fix(why + tail, command, steps=_argvs(steps)))
        if remaining is not None:
            fixes.extend(f for f in _other_fixes(remaining) if f not in fixes)
    return tuple(fixes)


def _apply_note(path: str, inode: Inode) -> str:
    """Why a command might not apply as is: the inode cannot be changed where it is seen."""
    if inode.readonly_mount or inode.readonly_fs:
        return (
            f" ({path} is on a read-only mount: make the change where it is mounted read-write, "
            "e.g. on the host side of a ':ro' volume)"
        )
    if inode.immutable:
        return f" ({path} is immutable: `chattr -i` it first and `chattr +i` it after)"
    return ""


def _other_fixes(stop: _Stop) -> tuple[Fix, ...]:
    at = shlex.quote(stop.at)
    code = stop.reason.code
    if code == "immutable":
        return (
            Fix(
                f"{stop.at} is immutable; clear the flag if it is meant to change",
                f"chattr -i {at}",
            ),
        )
    if code == "append-only":
        return (
            Fix(
                f"{stop.at} is append-only: open it with O_APPEND (shell `>>`), or clear the "
                "flag if it is meant to be rewritten",
                f"chattr -a {at}",
            ),
        )
    if code == "read-only-mount":
        return (
            Fix(
                f"{stop.at} is reached through a read-only mount (`mount -o ro`, a `:ro` "
                "volume): mount it read-write, or write somewhere else"
            ),
        )
    if code == "read-only-fs":
        return (
            Fix(
                f"the filesystem holding {stop.at} is read-only itself: remount it "
                "read-write (`mount -o remount,rw`) or write elsewhere"
            ),
        )
    if code == "noexec-mount":
        return (
            Fix(
                f"{stop.at} is on a noexec mount: mount it without noexec, or run the "
                "program from another filesystem"
            ),
        )
    if code == "protected-symlink":
        return (
            Fix(
                "give the symlink to the owner of its sticky directory, or point at the "
                "target directly",
                None,
            ),
        )
    return ()
