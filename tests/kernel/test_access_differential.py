"""Differential test: the path-access model (unroot.model.access) and its adapter
(unroot.facts.fs) against the live kernel.

A forked *lab* process enters a private mount namespace (so its mounts vanish with it) and
builds random trees under a fresh directory in /tmp: directories, files, FIFOs, a character
device, symlinks (relative and absolute, dangling, loops, chains longer than 40), random modes
(0 and setuid/setgid/sticky included), owners and groups from a small pool, random access ACLs
written as raw ``system.posix_acl_access`` bytes (Acl.encode), immutable files, a read-only
and/or noexec bind mount of a subtree, and a tmpfs whose superblock is remounted read-only (seen
through its own mount and through a read-write bind mount of it).  For random paths (through
symlinks, with ``.``, ``..``, trailing ``/``, missing names) the lab gathers the tree with
facts/fs.py, then forked children with random fsuid/fsgid (sometimes different from the
euid), supplementary groups and effective capabilities (DAC_OVERRIDE, DAC_READ_SEARCH) ask the
kernel: faccessat(AT_EACCESS) for a random want, and open(2) for regular files.  The model must
give the same allowed/errno.  Seed: UNROOT_DIFF_SEED (printed); cases: UNROOT_DIFF_CASES
(default 1500).  With UNROOT_DIFF_PROTECTED_SYMLINKS=1 the run sets fs.protected_symlinks=1
for its duration (and restores it).  Needs root and an xattr/ACL-capable /tmp; the ``chattr``
binary (e2fsprogs) for cleanup.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import random
import shutil
import stat
import struct
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import astuple, dataclass

import pytest
from _forking import run_in_child

from unroot import syscalls
from unroot.facts.fs import gather_tree, protected_symlinks
from unroot.facts.proc import read_status
from unroot.model.access import Inode, access_verdict, resolve
from unroot.model.acl import (
    ACL_GROUP,
    ACL_GROUP_OBJ,
    ACL_MASK,
    ACL_OTHER,
    ACL_USER,
    ACL_USER_OBJ,
    XATTR_NAME_ACL_ACCESS,
    Acl,
    AclEntry,
)
from unroot.model.caps import CapSet
from unroot.model.creds import Creds, Ids
from unroot.model.userns import IdMap, UserNs
from unroot.model.verdict import Verdict

pytestmark = [pytest.mark.root, pytest.mark.slow]

UIDS = (0, 1000, 1001, 2200)
GIDS = (0, 1000, 2200, 3000)
DAC_OVERRIDE, DAC_READ_SEARCH = 1, 2
CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
MS_RDONLY, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 8, 32, 4096, 16384, 1 << 18
AT_FDCWD, AT_EACCESS = -100, 0x200
FS_IOC_GETFLAGS, FS_IOC_SETFLAGS, FS_IMMUTABLE_FL = 0x80086601, 0x40086602, 0x10
WANTS = ("", "r", "w", "x", "rw", "rx", "wx", "rwx")
MODES = (
    0o755,
    0o700,
    0o711,
    0o750,
    0o705,
    0o644,
    0o640,
    0o600,
    0o604,
    0o000,
    0o777,
    0o1777,
    0o1733,
    0o070,
    0o007,
    0o4755,
    0o2750,
    0o310,
    0o055,
)
_libc = ctypes.CDLL(None, use_errno=True)
QUIRKS = {  # phrases of the model's reasons, counted to show which kernel quirks the run hit
    "quirk:group-matched-but-granted-nothing": "none of which grants",
    "quirk:acl-mask-cut": "is cut by the mask",
    "quirk:acl-ignored-mask-empty": "its mask is ---",
    "quirk:override-needs-an-x-bit": "no x bit at all",
    "quirk:owner-decides-alone": "decide alone and lack",
    "quirk:caps-ignored-unmapped-inode": "is not mapped in its user namespace",
}


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int) -> None:
    enc = [None if s is None else os.fsencode(s) for s in (source, target, fstype)]
    _check(_libc.mount(enc[0], enc[1], enc[2], ctypes.c_ulong(flags), None), f"mount {target}")


def _set_immutable(path: str, on: bool) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    try:
        buf = bytearray(struct.pack("i", 0))
        fcntl.ioctl(fd, FS_IOC_GETFLAGS, buf)
        flags = struct.unpack("i", buf)[0]
        flags = flags | FS_IMMUTABLE_FL if on else flags & ~FS_IMMUTABLE_FL
        fcntl.ioctl(fd, FS_IOC_SETFLAGS, struct.pack("i", flags))
    finally:
        os.close(fd)


def _errno_name(code: int) -> str:
    return errno.errorcode[code]


# -- random trees ----------------------------------------------------------------------------
@dataclass
class Node:
    path: str
    kind: str  # dir file fifo chr symlink


def _random_acl(rng: random.Random) -> Acl:
    entries = [
        AclEntry(ACL_USER_OBJ, None, rng.randrange(8)),
        AclEntry(ACL_GROUP_OBJ, None, rng.randrange(8)),
        AclEntry(ACL_OTHER, None, rng.randrange(8)),
    ]
    named = 0
    for uid in rng.sample(UIDS, rng.randrange(3)):
        entries.append(AclEntry(ACL_USER, uid, rng.choice([0, 1, 4, 5, 7, rng.randrange(8)])))
        named += 1
    for gid in rng.sample(GIDS, rng.randrange(3)):
        entries.append(AclEntry(ACL_GROUP, gid, rng.choice([0, 1, 4, 5, 7, rng.randrange(8)])))
        named += 1
    if named or rng.random() < 0.2:
        entries.append(AclEntry(ACL_MASK, None, rng.choice([7, 5, 4, 1, 0, rng.randrange(8)])))
    return Acl.of(entries)


class TreeBuilder:
    def __init__(self, rng: random.Random, root: str) -> None:
        self.rng = rng
        self.root = root
        self.nodes: list[Node] = []
        self.dirs: list[str] = [root]
        self.immutable: list[str] = []

    def build(self) -> None:
        rng = self.rng
        os.mkdir(self.root)
        self._fill(self.root, depth=0)
        if rng.random() < 0.6:
            self._tmpfs()
        for _ in range(rng.randrange(3, 9)):
            self._symlink()
        if rng.random() < 0.3:
            self._chain()
        self._metadata()
        if rng.random() < 0.6 and len(self.dirs) > 1:
            self._bind_ro()

    def _name(self) -> str:
        return self.rng.choice("abcdefgh") + str(self.rng.randrange(10))

    def _fill(self, directory: str, depth: int) -> None:
        rng = self.rng
        for _ in range(rng.randrange(1, 4)):
            path = os.path.join(directory, self._name())
            if os.path.lexists(path):
                continue
            roll = rng.random()
            if roll < 0.4 and depth < 3:
                os.mkdir(path)
                self.nodes.append(Node(path, "dir"))
                self.dirs.append(path)
                self._fill(path, depth + 1)
            elif roll < 0.9:
                with open(path, "w") as fh:
                    fh.write("x")
                self.nodes.append(Node(path, "file"))
            elif roll < 0.95:
                os.mkfifo(path)
                self.nodes.append(Node(path, "fifo"))
            else:
                os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # /dev/null's numbers
                self.nodes.append(Node(path, "chr"))

    def _tmpfs(self) -> None:
        mountpoint = os.path.join(self.root, "tmpfs")
        alias = os.path.join(self.root, "tmpfs-rw-view")
        os.mkdir(mountpoint)
        os.mkdir(alias)
        _mount("tmpfs", mountpoint, "tmpfs", 0)
        self.nodes.append(Node(mountpoint, "dir"))
        self.dirs.append(mountpoint)
        self._fill(mountpoint, depth=1)
        self._pending_tmpfs = (mountpoint, alias)

    def _target(self) -> str:
        rng = self.rng
        pool = [n.path for n in self.nodes] + self.dirs
        target = rng.choice(pool)
        roll = rng.random()
        if roll < 0.15:
            target += "/missing"
        elif roll < 0.25:
            target += "/"
        return target

    def _symlink(self) -> None:
        rng = self.rng
        where = rng.choice(self.dirs)
        path = os.path.join(where, "l" + self._name())
        if os.path.lexists(path):
            return
        target = self._target()
        if rng.random() < 0.5:
            target = os.path.relpath(target.rstrip("/") or "/", where) + (
                "/" if target.endswith("/") else ""
            )
        if rng.random() < 0.1:  # a loop
            target = os.path.basename(path)
        os.symlink(target, path)
        self.nodes.append(Node(path, "symlink"))

    def _chain(self) -> None:
        where = self.rng.choice(self.dirs)
        length = self.rng.choice([39, 40, 41, 42])
        end = self.rng.choice([n.path for n in self.nodes] + [where])
        names = [os.path.join(where, f"chain{i}") for i in range(length)]
        for i, name in enumerate(names):
            os.symlink(names[i + 1] if i + 1 < length else end, name)
        self.nodes.append(Node(names[0], "symlink"))

    def _metadata(self) -> None:
        rng = self.rng
        for node in [Node(self.root, "dir"), *self.nodes]:
            path = node.path
            if node.kind == "symlink":
                os.lchown(path, rng.choice(UIDS), rng.choice(GIDS))
                continue
            if path == self.root:
                continue  # keep the tree's root searchable: 0755 root:root
            os.chown(path, rng.choice(UIDS), rng.choice(GIDS))
            mode = rng.choice(MODES) if rng.random() < 0.8 else rng.randrange(0o10000)
            os.chmod(path, mode)
            if rng.random() < 0.35:
                os.setxattr(path, XATTR_NAME_ACL_ACCESS, _random_acl(rng).encode())
        for node in self.nodes:
            if node.kind in ("file", "dir") and rng.random() < 0.06 and not self._on_tmpfs(node):
                _set_immutable(node.path, True)
                self.immutable.append(node.path)
        pending = getattr(self, "_pending_tmpfs", None)
        if pending:
            mountpoint, alias = pending
            _mount(mountpoint, alias, None, MS_BIND)  # a read-write view of the same superblock
            _mount(None, mountpoint, None, MS_REMOUNT | MS_RDONLY)  # superblock read-only
            self.dirs.append(alias)

    def _on_tmpfs(self, node: Node) -> bool:
        return "/tmpfs" in node.path

    def _bind_ro(self) -> None:
        rng = self.rng
        target = rng.choice([d for d in self.dirs[1:] if "tmpfs" not in d] or [self.root])
        flags = rng.choice([MS_RDONLY, MS_RDONLY, MS_NOEXEC, MS_RDONLY | MS_NOEXEC])
        _mount(target, target, None, MS_BIND)
        _mount(None, target, None, MS_REMOUNT | MS_BIND | flags)

    def paths(self, count: int) -> Iterator[str]:
        rng = self.rng
        pool = [n.path for n in self.nodes] + self.dirs
        for _ in range(count):
            path = rng.choice(pool)
            roll = rng.random()
            if roll < 0.08:
                path += "/"
            elif roll < 0.13:
                path += "/."
            elif roll < 0.18:
                path += "/.."
            elif roll < 0.26:
                path += "/nope"
            elif roll < 0.32:
                parent, name = path.rsplit("/", 1)
                path = f"{parent}/../{os.path.basename(parent)}/{name}"
            elif roll < 0.36:
                path = path.replace("/", "//", 1)
            yield path


# -- asking the kernel -----------------------------------------------------------------------
@dataclass(frozen=True)
class Identity:
    """Kernel (initial-namespace) ids. With ``uid_map`` the child runs as root of a new user
    namespace mapped ``0 → uid`` (plus the extra lines), so its capabilities only count for
    inodes whose owner and group are mapped there (capable_wrt_inode_uidgid)."""

    uid: int
    fsuid: int
    gid: int
    fsgid: int
    groups: tuple[int, ...]
    effective: int  # bits among DAC_OVERRIDE (1) and DAC_READ_SEARCH (2)
    uid_map: tuple[tuple[int, int, int], ...] = ()
    gid_map: tuple[tuple[int, int, int], ...] = ()

    def creds(self) -> Creds:
        return Creds(
            uid=Ids(self.uid, self.uid, self.uid, self.fsuid),
            gid=Ids(self.gid, self.gid, self.gid, self.fsgid),
            groups=frozenset(self.groups),
            effective=CapSet(self.effective << 1),
            permitted=CapSet(self.effective << 1),
        )

    def userns(self) -> UserNs | None:
        if not self.uid_map:
            return None
        return UserNs(IdMap.parse(_map_text(self.uid_map)), IdMap.parse(_map_text(self.gid_map)))


def _map_text(lines: tuple[tuple[int, int, int], ...]) -> str:
    return "".join(f"{a} {b} {c}\n" for a, b, c in lines)


def _random_identity(rng: random.Random) -> Identity:
    uid, gid = rng.choice(UIDS), rng.choice(GIDS)
    groups = tuple(sorted(rng.sample(GIDS, rng.randrange(3))))
    effective = rng.choice([0, 0, 0, 1, 2, 3])
    if rng.random() < 0.2:  # root of a child user namespace
        extra_uid = [u for u in UIDS if u != uid]
        extra_gid = [g for g in GIDS if g != gid]
        uid_map = ((0, uid, 1),) + (((1, rng.choice(extra_uid), 1),) if rng.random() < 0.5 else ())
        gid_map = ((0, gid, 1),) + (((1, rng.choice(extra_gid), 1),) if rng.random() < 0.5 else ())
        effective = rng.choice([1, 2, 3, 3])
        return Identity(uid, uid, gid, gid, groups, effective, uid_map, gid_map)
    fsuid = uid if rng.random() < 0.8 else rng.choice(UIDS)
    fsgid = gid if rng.random() < 0.8 else rng.choice(GIDS)
    return Identity(uid, fsuid, gid, fsgid, groups, effective)


def _become(ident: Identity) -> None:
    os.setgroups(list(ident.groups))
    os.setresgid(ident.gid, ident.gid, ident.gid)
    syscalls.set_keepcaps(True)
    os.setresuid(ident.uid, ident.uid, ident.uid)
    permitted = syscalls.capget()[1]
    syscalls.capset(permitted, permitted, 0)  # CAP_SETUID/SETGID again, for setfs[ug]id
    _libc.setfsgid(ident.fsgid)
    _libc.setfsuid(ident.fsuid)
    mask = ident.effective << 1
    syscalls.capset(mask, mask, 0)
    status = read_status("self")
    uids = list(astuple(status.uid))
    gids = list(astuple(status.gid))
    groups = sorted(status.groups)
    got = (uids, gids, groups, status.effective.mask)
    expected = (
        [ident.uid] * 3 + [ident.fsuid],
        [ident.gid] * 3 + [ident.fsgid],
        sorted(ident.groups),
        mask,
    )
    assert got == expected, (got, expected)


def _become_in_userns(ident: Identity, ready: int, mapped: int) -> None:
    """Unshare a user namespace, let the parent write the maps, become its root."""
    os.setgroups(list(ident.groups))  # supplementary groups survive unshare as kernel gids
    _check(_libc.unshare(CLONE_NEWUSER), "unshare(CLONE_NEWUSER)")
    os.write(ready, b"u")
    assert os.read(mapped, 1) == b"m"
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)
    mask = ident.effective << 1
    syscalls.capset(mask, mask, 0)
    status = read_status("self")
    assert list(astuple(status.uid)) == [0, 0, 0, 0], status.uid
    assert status.effective.mask == mask


def _write_maps(pid: int, ident: Identity) -> None:
    for name, lines in (("uid_map", ident.uid_map), ("gid_map", ident.gid_map)):
        with open(f"/proc/{pid}/{name}", "w") as fh:
            fh.write(_map_text(lines))


def _faccess(path: str, want: str) -> str:
    mode = (4 if "r" in want else 0) | (2 if "w" in want else 0) | (1 if "x" in want else 0)
    if _libc.faccessat(AT_FDCWD, os.fsencode(path), mode, AT_EACCESS) == 0:
        return "ok"
    return _errno_name(ctypes.get_errno())


def _open(path: str, want: str) -> str:
    flags = {"r": os.O_RDONLY, "w": os.O_WRONLY, "rw": os.O_RDWR}[want]
    try:
        fd = os.open(path, flags | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as err:
        return _errno_name(err.errno)
    os.close(fd)
    return "ok"


def _ask(ident: Identity, questions: list[tuple[str, str]]) -> list[tuple[str, str | None]]:
    """In a forked child with ``ident``'s credentials: faccessat, and open() for files."""
    ready_r, ready_w = os.pipe()
    mapped_r, mapped_w = os.pipe()

    def child() -> list[tuple[str, str | None]]:
        if ident.uid_map:
            _become_in_userns(ident, ready_w, mapped_r)
        else:
            _become(ident)
        answers = []
        for path, want in questions:
            opened = None
            try:
                is_file = stat.S_ISREG(os.stat(path).st_mode)
            except OSError:
                is_file = False
            if is_file and want in ("r", "w", "rw"):
                opened = _open(path, want)
            answers.append((_faccess(path, want), opened))
        return answers

    def write_maps(pid: int) -> None:
        os.close(ready_w)  # the child's ends: a child that dies before "u" is seen as EOF
        os.close(mapped_r)
        try:
            if ident.uid_map and os.read(ready_r, 1) == b"u":
                _write_maps(pid, ident)
                os.write(mapped_w, b"m")
        finally:
            os.close(ready_r)
            os.close(mapped_w)

    return run_in_child(child, parent=write_maps)


# -- the lab ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    tree: dict[str, Inode]
    path: str
    identity: Identity
    want: str
    kernel: str
    opened: str | None
    protected: bool


def _cleanup(base: str) -> None:
    if os.path.exists(base):
        subprocess.run(["chattr", "-R", "-f", "-i", base], check=False, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@dataclass(frozen=True)
class FixCheck:
    """A fix command run for real on the live tree, and the kernel's answer afterwards."""

    path: str
    identity: Identity
    want: str
    command: str
    exit_status: int
    kernel_after: str
    model_after: str


def _verdict(
    tree: dict[str, Inode], path: str, ident: Identity, want: str, protected: bool
) -> Verdict:
    """The model's answer for ``ident`` (its credentials and user namespace)."""
    return access_verdict(
        tree, path, ident.creds(), want, userns=ident.userns(), protected_symlinks=protected
    )


def _model_answer(
    tree: dict[str, Inode], path: str, ident: Identity, want: str, protected: bool
) -> tuple[str, tuple[str | None, ...], tuple[str, ...]]:
    verdict = _verdict(tree, path, ident, want, protected)
    commands = tuple(fix.command for fix in verdict.fixes)
    whys = tuple(fix.why for fix in verdict.fixes)
    return ("ok" if verdict.allowed else str(verdict.errno)), commands, whys


def _check_fixes(cases: list[Case], rng: random.Random, protected: bool) -> list[FixCheck]:
    """Apply the model's fixes for a few denials with the real setfacl/chmod/chgrp."""
    checks = []
    denied = [c for c in cases if c.kernel == "EACCES"]
    for case in rng.sample(denied, min(3, len(denied))):
        tree = gather_tree(case.path)
        _, commands, whys = _model_answer(tree, case.path, case.identity, case.want, protected)
        usable = [
            command
            for command, why in zip(commands, whys, strict=True)
            if command
            and not command.startswith("chattr")
            and "(then:" not in why
            and "read-only mount" not in why
            and "immutable" not in why
            and (shutil.which("setfacl") or "setfacl" not in command)  # Debian package: acl
        ]
        if not usable:
            continue
        command = rng.choice(usable)
        done = subprocess.run(command, shell=True, check=False, capture_output=True)
        after = gather_tree(case.path)
        model_after, _, _ = _model_answer(after, case.path, case.identity, case.want, protected)
        kernel_after = _ask(case.identity, [(case.path, case.want)])[0][0]
        checks.append(
            FixCheck(
                case.path,
                case.identity,
                case.want,
                command,
                done.returncode,
                kernel_after,
                model_after,
            )
        )
    return checks


def _lab(seed: int, target: int, base: str) -> tuple[list[Case], list[FixCheck]]:
    _check(_libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    rng = random.Random(seed)
    protected = protected_symlinks()
    cases: list[Case] = []
    fix_checks: list[FixCheck] = []
    number = 0
    try:
        while len(cases) < target:
            builder = TreeBuilder(rng, os.path.join(base, f"t{number}"))
            number += 1
            builder.build()
            paths = list(builder.paths(rng.randrange(8, 16)))
            trees = {path: gather_tree(path) for path in paths}
            these: list[Case] = []
            for _ in range(rng.randrange(4, 9)):
                ident = _random_identity(rng)
                questions = [(rng.choice(paths), rng.choice(WANTS)) for _ in range(12)]
                for (path, want), (kernel, opened) in zip(
                    questions, _ask(ident, questions), strict=True
                ):
                    these.append(Case(trees[path], path, ident, want, kernel, opened, protected))
            if builder.immutable:  # every run meets EPERM, whatever the seed draws
                ident = Identity(0, 0, 0, 0, (), 3)
                questions = [(path, "w") for path in builder.immutable]
                for path in builder.immutable:
                    trees.setdefault(path, gather_tree(path))
                for (path, want), (kernel, opened) in zip(
                    questions, _ask(ident, questions), strict=True
                ):
                    these.append(Case(trees[path], path, ident, want, kernel, opened, protected))
            cases += these
            fix_checks += _check_fixes(these, rng, protected)
    finally:
        for path in sorted(_mounts_under(base), reverse=True):
            _libc.umount2(os.fsencode(path), 2)  # MNT_DETACH
        _cleanup(base)
    return cases, fix_checks


def _mounts_under(base: str) -> list[str]:
    with open("/proc/self/mountinfo") as fh:
        points = [line.split()[4] for line in fh]
    return [p for p in points if p.startswith(base + "/")]


def _run_lab(seed: int, target: int, base: str) -> tuple[list[Case], list[FixCheck]]:
    return run_in_child(lambda: _lab(seed, target, base), f"lab failed (seed {seed}):\n")


@pytest.fixture
def lab_base() -> Iterator[str]:
    base = tempfile.mkdtemp(prefix="unroot-access-", dir="/tmp")
    os.chmod(base, 0o755)
    try:
        yield base
    finally:
        _cleanup(base)


@pytest.fixture
def symlink_protection() -> Iterator[None]:
    if os.environ.get("UNROOT_DIFF_PROTECTED_SYMLINKS") != "1":
        yield
        return
    knob = "/proc/sys/fs/protected_symlinks"
    with open(knob) as fh:
        before = fh.read().strip()
    with open(knob, "w") as fh:
        fh.write("1")
    try:
        yield
    finally:
        with open(knob, "w") as fh:
            fh.write(before)


def test_access_model_matches_the_kernel(
    lab_base: str, symlink_protection: None, differential: Callable[..., None]
) -> None:
    seed = int(os.environ.get("UNROOT_DIFF_SEED", random.randrange(2**32)))
    target = int(os.environ.get("UNROOT_DIFF_CASES", "1500"))
    print(f"access differential: UNROOT_DIFF_SEED={seed} UNROOT_DIFF_CASES={target}")
    began = time.monotonic()
    cases, fix_checks = _run_lab(seed, target, lab_base)
    lab_time = time.monotonic() - began
    tally: Counter[str] = Counter()
    disagreements = []
    opens = 0
    codes: Counter[str] = Counter()
    for case in cases:
        verdict = _verdict(case.tree, case.path, case.identity, case.want, case.protected)
        model = "ok" if verdict.allowed else str(verdict.errno)
        codes[verdict.reasons[-1].code] += 1
        text = verdict.reasons[-1].text
        for quirk, marker in QUIRKS.items():
            codes[quirk] += marker in text
        tally[case.kernel] += 1
        if model != case.kernel:
            disagreements.append(_explain(case, model, case.kernel, "faccessat"))
        if case.opened is not None and resolve(case.tree, case.path).path is not None:
            opens += 1
            final = resolve(case.tree, case.path).path
            if final is not None and case.tree[final].kind == "file" and model != case.opened:
                disagreements.append(_explain(case, model, case.opened, "open"))
    print(
        f"{len(cases)} faccessat cases + {opens} open() cases in {lab_time:.1f}s "
        f"(protected_symlinks={cases[0].protected}): {dict(tally)}; deciding rules: "
        f"{dict(codes)}"
    )
    for check in fix_checks:
        if (check.exit_status, check.kernel_after, check.model_after) != (0, "ok", "ok"):
            disagreements.append(f"fix did not work: {check}")
    print(f"{len(fix_checks)} fixes applied with the real tools and re-checked")
    differential(
        "access",
        seed,
        len(cases) + opens,
        len(disagreements),
        f"({len(cases)} faccessat + {opens} open; {len(fix_checks)} fixes applied for real)",
    )
    assert not disagreements, f"seed {seed}: {len(disagreements)} disagreements:\n" + "\n\n".join(
        disagreements[:10]
    )
    assert {"ok", "EACCES", "ENOENT", "ENOTDIR", "EROFS", "ELOOP", "EPERM"} <= set(tally)


def _explain(case: Case, model: str, kernel: str, how: str) -> str:
    verdict = _verdict(case.tree, case.path, case.identity, case.want, case.protected)
    lines = [
        f"{how} {case.path!r} want={case.want!r} {case.identity}: kernel {kernel}, model "
        f"{model} (denied_at {verdict.extra.get('denied_at')})"
    ]
    lines += [f"  {r.code}: {r.text}" for r in verdict.reasons]
    lines += [f"  {p}: {i}" for p, i in sorted(case.tree.items())]
    return "\n".join(lines)
