"""Differential test: the execve model against the live kernel.

Each case forks this test process; the child walks to a random credential state (groups,
gids, uids, fsgid, bounding drops, securebits, capset, ambient raises, no_new_privs) with the
real syscalls, reads its own /proc/self/status right before execve and sends it up a pipe, then
executes a probe (a tiny static C program printing its /proc/self/status and AT_SECURE).  The
probe file gets random file capabilities (raw rev 2/3 xattrs, random rootid, effective bit, bits
above CAP_LAST_CAP), owner, group, set-user-ID/set-group-ID and group-execute bits, and is run
either directly or through a nosuid bind mount of its directory.  Some children are created with
a raw clone(CLONE_FS) instead of fork, so the kernel treats their exec as unsafe
(LSM_UNSAFE_SHARE).  The model is fed the OBSERVED pre-exec state and the OBSERVED file (stat +
getxattr) and must agree with the kernel on the errno, all four uids and gids, the five capability
sets, no_new_privs and AT_SECURE.  Execs failing with another errno (EACCES: the random state may
lack search or execute permission) are counted but not compared.  Seed: UNROOT_DIFF_SEED
(printed; every failure also prints its case seed); case count: UNROOT_DIFF_CASES (default 1500).

Needs root, gcc (with static libc: Debian libc6-dev) and an xattr-capable /var/tmp.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import random
import re
import select
import shutil
import signal
import stat
import struct
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from unroot import syscalls
from unroot.facts.proc import parse_status
from unroot.model.caps import CapSet
from unroot.model.creds import (
    SECBIT_KEEP_CAPS,
    SECBIT_NO_CAP_AMBIENT_RAISE,
    SECBIT_NO_SETUID_FIXUP,
    SECBIT_NOROOT,
    SECBIT_NOROOT_LOCKED,
    Creds,
)
from unroot.model.execve import ExecFile, ExecResult, Kernel, execve
from unroot.model.filecaps import XATTR_NAME_CAPS, FileCaps

pytestmark = [pytest.mark.root, pytest.mark.slow]

PROBE_C = r"""
#include <fcntl.h>
#include <stdio.h>
#include <sys/auxv.h>
#include <unistd.h>
int main(void) {
    char buf[16384];
    size_t used = 0;
    ssize_t n;
    int fd = open("/proc/self/status", O_RDONLY);
    while (fd >= 0 && used < sizeof buf && (n = read(fd, buf + used, sizeof buf - used)) > 0)
        used += (size_t)n;
    if (used) write(1, buf, used);
    n = snprintf(buf, sizeof buf, "AT_SECURE:\t%lu\n", getauxval(AT_SECURE));
    write(1, buf, (size_t)n);
    return 0;
}
"""

IDS = (0, 0, 1000, 1001, 2000, 65534)
ROOTIDS = (0, 0, 1000, 2000, 65534)
CLONE_NEWUSER = 0x10000000
CLONE_FS = 0x00000200
SYS_CLONE = {"x86_64": 56, "aarch64": 220}
SEPARATOR = b"\n--unroot-exec--\n"
ALWAYS_KEEP = (6, 7, 8)  # setgid, setuid, setpcap: the child needs them to finish its walk


@dataclass(frozen=True)
class Lab:
    root: Path
    probe: Path  # reachable through a normal mount
    probe_nosuid: Path  # the same inode through a nosuid bind mount
    last_cap: int


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("needs gcc to build the probe (apt-get install gcc libc6-dev)")
    root = Path(tempfile.mkdtemp(prefix="unroot-diff-", dir="/var/tmp"))
    mounted = False
    try:
        root.chmod(0o755)
        src, mnt = root / "bin", root / "nosuid"
        src.mkdir(mode=0o755)
        mnt.mkdir(mode=0o755)
        (root / "probe.c").write_text(PROBE_C)
        build = subprocess.run(
            [gcc, "-static", "-Os", "-o", str(src / "probe"), str(root / "probe.c")],
            capture_output=True,
            check=False,
        )
        if build.returncode != 0:  # no static libc: a dynamic probe reads auxv just as well
            _run(gcc, "-Os", "-o", str(src / "probe"), str(root / "probe.c"))
        _run("mount", "--bind", str(src), str(mnt))
        mounted = True
        _run("mount", "-o", "remount,bind,nosuid", str(mnt))
        last_cap = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
        yield Lab(root, src / "probe", mnt / "probe", last_cap)
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(root / "nosuid")], check=False)
        shutil.rmtree(root, ignore_errors=True)


# -- the random scenario --------------------------------------------------------------------------
def _subset(rng: random.Random, mask: int, p: float) -> int:
    out, bit = 0, 0
    while mask >> bit:
        if mask >> bit & 1 and rng.random() < p:
            out |= 1 << bit
        bit += 1
    return out


def _density(rng: random.Random) -> float:
    return rng.choice((0.0, 0.05, 0.3, 0.7, 0.95, 1.0))


@dataclass(frozen=True)
class FileSetup:
    owner: int
    group: int
    mode: int
    xattr: bytes | None
    nosuid: bool


def random_file(rng: random.Random, last_cap: int) -> FileSetup:
    mode = 0o755
    if rng.random() < 0.3:
        mode &= ~stat.S_IXGRP
    if rng.random() < 0.35:
        mode |= stat.S_ISUID
    if rng.random() < 0.35:
        mode |= stat.S_ISGID
    xattr = None
    if rng.random() < 0.7:
        valid = (1 << (last_cap + 1)) - 1
        permitted = _subset(rng, valid, rng.choice((0.0, 0.02, 0.1, 0.5)))
        inheritable = _subset(rng, valid, rng.choice((0.0, 0.0, 0.05, 0.3)))
        if rng.random() < 0.05:  # bits the kernel does not know: masked off when read
            permitted |= 1 << rng.randrange(last_cap + 1, 64)
        magic = (0x03000000 if rng.random() < 0.4 else 0x02000000) | int(rng.random() < 0.6)
        words = [magic, permitted & 0xFFFFFFFF, inheritable & 0xFFFFFFFF]
        words += [permitted >> 32, inheritable >> 32]
        if magic >> 24 == 3:
            words.append(rng.choice(ROOTIDS))
        xattr = struct.pack(f"<{len(words)}I", *words)
    return FileSetup(rng.choice(IDS), rng.choice(IDS), mode, xattr, rng.random() < 0.15)


def prepare_file(lab: Lab, setup: FileSetup) -> ExecFile:
    """Apply the setup (chown strips the caps and the set-ID bits, so: chown, chmod, xattr) and
    return what the file really is afterwards."""
    path = lab.probe
    os.chown(path, setup.owner, setup.group)
    os.chmod(path, setup.mode)
    if setup.xattr is not None:
        os.setxattr(path, XATTR_NAME_CAPS, setup.xattr)
    st = os.stat(path)
    try:
        raw: bytes | None = os.getxattr(path, XATTR_NAME_CAPS)
    except OSError:
        raw = None
    return ExecFile(
        path=str(lab.probe_nosuid if setup.nosuid else lab.probe),
        file_caps=FileCaps.decode(raw) if raw is not None else None,
        setuid_owner=st.st_uid if st.st_mode & stat.S_ISUID else None,
        setgid_owner=st.st_gid if st.st_mode & stat.S_ISGID else None,
        group_executable=bool(st.st_mode & stat.S_IXGRP),
        nosuid=setup.nosuid,
    )


def _attempt(action: Callable[..., object], *args: object) -> None:
    with contextlib.suppress(OSError):  # whatever state the kernel lets us reach is the input
        action(*args)


def walk_to_random_state(rng: random.Random, last_cap: int) -> None:
    """Runs in the forked child: reach a random credential state with the real syscalls."""
    libc = ctypes.CDLL(None, use_errno=True)
    valid = (1 << (last_cap + 1)) - 1
    bits = 0
    for bit, p in (
        (SECBIT_NOROOT, 0.3),
        (SECBIT_NO_SETUID_FIXUP, 0.25),
        (SECBIT_KEEP_CAPS, 0.35),
        (SECBIT_NO_CAP_AMBIENT_RAISE, 0.05),
        (SECBIT_NOROOT_LOCKED, 0.05),
    ):
        if rng.random() < p:
            bits |= bit
    _attempt(syscalls.set_securebits, bits)
    drop = _density(rng) * 0.8
    for cap in range(last_cap + 1):
        if rng.random() < drop:
            _attempt(syscalls.bounding_drop, cap)
    bounding = sum(1 << c for c in range(last_cap + 1) if syscalls.bounding_has(c))
    _, permitted, inheritable = syscalls.capget()
    keep = sum(1 << c for c in ALWAYS_KEEP)
    staged = (_subset(rng, permitted, _density(rng)) | keep) & permitted
    staged_inh = _subset(rng, (inheritable | bounding) & valid, _density(rng))
    _attempt(syscalls.capset, staged, staged, staged_inh)
    if rng.random() < 0.15:  # ambient raised while still root, to see set*id clear it
        _, p_now, i_now = syscalls.capget()
        for cap in range(last_cap + 1):
            if (p_now & i_now) >> cap & 1 and rng.random() < 0.5:
                _attempt(syscalls.ambient_raise, cap)
    if rng.random() < 0.85:
        groups = rng.sample(sorted(set(IDS)), rng.randrange(0, 4))
        _attempt(os.setgroups, groups)
        _attempt(os.setresgid, rng.choice(IDS), rng.choice(IDS), rng.choice(IDS))
        if rng.random() < 0.12:
            libc.setfsgid(rng.choice(IDS))
        _attempt(os.setresuid, rng.choice(IDS), rng.choice(IDS), rng.choice(IDS))
        if rng.random() < 0.08:
            libc.setfsuid(rng.choice(IDS))
    _, permitted, inheritable = syscalls.capget()
    final_p = _subset(rng, permitted, _density(rng))
    final_e = _subset(rng, final_p, _density(rng))
    final_i = _subset(rng, inheritable | (permitted & bounding), _density(rng))
    _attempt(syscalls.capset, final_e, final_p, final_i)
    _, p_now, i_now = syscalls.capget()
    raise_p = _density(rng)
    for cap in range(last_cap + 1):
        if (p_now & i_now) >> cap & 1 and rng.random() < raise_p:
            _attempt(syscalls.ambient_raise, cap)
    if rng.random() < 0.3:
        _attempt(syscalls.set_no_new_privs)


def _report_and_exec(exec_path: str, write_fd: int, extra: bytes = b"") -> None:
    """In a child: send its /proc/self/status (plus ``extra`` lines) and SEPARATOR up the pipe,
    then execute the probe with its stdout on the pipe; a failed execve sends an EXECERR line."""
    with open("/proc/self/status", "rb") as status:
        before = status.read()
    os.write(write_fd, before + extra + SEPARATOR)
    os.dup2(write_fd, 1)
    try:
        os.execve(exec_path, [exec_path], {})
    except OSError as err:
        os.write(write_fd, b"EXECERR:\t%d\n" % err.errno)


def _child(case_seed: int, exec_path: str, write_fd: int, last_cap: int) -> None:
    code = 0
    try:
        walk_to_random_state(random.Random(f"child:{case_seed}"), last_cap)
        _report_and_exec(exec_path, write_fd, b"SecBits:\t%d\n" % syscalls.get_securebits())
    except BaseException:  # a forked child must never return into pytest
        code = 70
    finally:
        os._exit(code)


def _fork(shared_fs: bool) -> int:
    """os.fork(), or a raw clone(CLONE_FS) whose exec the kernel then treats as unsafe
    (LSM_UNSAFE_SHARE: the fs_struct is shared with this process)."""
    if not shared_fs:
        return os.fork()
    libc = ctypes.CDLL(None, use_errno=True)
    pid = int(libc.syscall(SYS_CLONE[platform.machine()], CLONE_FS | signal.SIGCHLD, 0, 0, 0, 0))
    if pid < 0:
        raise OSError(ctypes.get_errno(), "clone(CLONE_FS)")
    return pid


def run_case(
    case_seed: int, exec_path: str, last_cap: int, shared_fs: bool = False
) -> tuple[bytes, bytes]:
    read_fd, write_fd = os.pipe()
    pid = _fork(shared_fs)
    if pid == 0:
        os.close(read_fd)
        _child(case_seed, exec_path, write_fd, last_cap)
    os.close(write_fd)
    chunks = []
    deadline = time.monotonic() + 20
    try:
        while True:
            ready, _, _ = select.select([read_fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                os.kill(pid, signal.SIGKILL)
                raise AssertionError(f"case {case_seed}: the child hung")
            chunk = os.read(read_fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_fd)
        _, status = os.waitpid(pid, 0)
    output = b"".join(chunks)
    assert os.waitstatus_to_exitcode(status) == 0, f"case {case_seed}: child failed: {output!r}"
    before, sep, after = output.partition(SEPARATOR)
    assert sep, f"case {case_seed}: no pre-exec state: {output!r}"
    return before, after


# -- comparing ----------------------------------------------------------------------------------
def extra_field(text: str, key: str) -> str | None:
    """A line the probe or the child adds to the status text (AT_SECURE, SecBits, EXECERR)."""
    match = re.search(rf"^{key}:\t(.*)$", text, re.MULTILINE)
    return match.group(1) if match else None


def status_creds(text: str) -> Creds:
    return parse_status(text).to_creds(int(extra_field(text, "SecBits") or 0))


@dataclass(frozen=True)
class Observed:
    errno: str | None
    creds: Creds | None
    secure_exec: bool


def observe(after: bytes) -> Observed | None:
    """The kernel's answer; None for outcomes the model does not cover (EACCES)."""
    text = after.decode()
    failed = extra_field(text, "EXECERR")
    if failed is not None:
        return Observed("EPERM", None, False) if int(failed) == 1 else None
    return Observed(None, status_creds(text), extra_field(text, "AT_SECURE") == "1")


Diff = tuple[str, object, object]


def differences(model: ExecResult, before: Creds, seen: Observed) -> list[Diff]:
    diffs: list[Diff] = []
    if model.errno != seen.errno:
        diffs.append(("exec", model.errno or "ok", seen.errno or "ok"))
    after = seen.creds if seen.creds is not None else before
    for name in ("uid", "gid"):
        m_ids, k_ids = getattr(model.creds, name), getattr(after, name)
        if m_ids != k_ids:
            diffs.append((name, m_ids, k_ids))
    for name in ("permitted", "effective", "inheritable", "bounding", "ambient"):
        m_set, k_set = getattr(model.creds, name), getattr(after, name)
        if m_set != k_set:
            diffs.append((name, m_set, k_set))
    if model.creds.no_new_privs != after.no_new_privs:
        diffs.append(("no_new_privs", model.creds.no_new_privs, after.no_new_privs))
    if seen.errno is None and model.secure_exec != seen.secure_exec:
        diffs.append(("secure_exec", model.secure_exec, seen.secure_exec))
    return diffs


def _describe(before: Creds, file: ExecFile) -> str:
    fc = file.file_caps
    caps = (
        f"rev{fc.revision} {fc.to_text() or '(empty)'} e={fc.effective} rootid={fc.rootid} "
        f"raw={fc.encode().hex()}"
        if fc
        else "none"
    )
    return (
        f"  before: uid={before.uid} gid={before.gid} groups={sorted(before.groups)}\n"
        f"          pI={before.inheritable.hex()} pP={before.permitted.hex()} "
        f"pE={before.effective.hex()} X={before.bounding.hex()} pA={before.ambient.hex()} "
        f"securebits={before.securebits:#x} nnp={before.no_new_privs}\n"
        f"  file:   setuid_owner={file.setuid_owner} setgid_owner={file.setgid_owner} "
        f"group_executable={file.group_executable} nosuid={file.nosuid} caps: {caps}"
    )


def test_exec_model_agrees_with_the_live_kernel(
    lab: Lab, differential: Callable[..., None]
) -> None:
    seed = int(os.environ.get("UNROOT_DIFF_SEED") or random.SystemRandom().randrange(1 << 32))
    wanted = int(os.environ.get("UNROOT_DIFF_CASES", "1500"))
    kernel = Kernel.parse(os.uname().release)
    print(f"\nexec differential: UNROOT_DIFF_SEED={seed} cases={wanted} kernel={kernel}")
    rng = random.Random(seed)
    compared = skipped = old_rules_wrong = 0
    failures: list[str] = []
    outcomes: Counter[str] = Counter()
    started = time.monotonic()
    while compared < wanted:
        case_seed = rng.randrange(1 << 62)
        case_rng = random.Random(case_seed)
        file = prepare_file(lab, random_file(case_rng, lab.last_cap))
        shared_fs = platform.machine() in SYS_CLONE and case_rng.random() < 0.12
        before_raw, after_raw = run_case(case_seed, file.path, lab.last_cap, shared_fs)
        before = status_creds(before_raw.decode())
        seen = observe(after_raw)
        if seen is None:
            skipped += 1
            assert skipped < wanted, "almost every exec failed with an errno the model lacks"
            continue
        compared += 1
        model = execve(before, file, kernel=kernel, unsafe=shared_fs)
        outcomes.update(reason.code for reason in model.reasons)
        outcomes.update(["shared-fs"] if shared_fs else [])
        outcomes.update(["secure" if seen.secure_exec else "not-secure"])
        old_rules = execve(before, file, kernel=Kernel((6, 16)), unsafe=shared_fs)
        old_rules_wrong += bool(differences(old_rules, before, seen))
        diffs = differences(model, before, seen)
        if diffs:
            lines = "\n".join(f"    {name}: model {m} / kernel {k}" for name, m, k in diffs)
            failures.append(
                f"case seed {case_seed} (shared fs: {shared_fs}):\n"
                f"{_describe(before, file)}\n{lines}"
            )
    elapsed = time.monotonic() - started
    print(f"compared {compared} cases ({skipped} skipped: EACCES) in {elapsed:.1f}s")
    print(f"pre-6.17 rules would disagree with this kernel in {old_rules_wrong} cases")
    if kernel.id_changed_uses_euid and compared >= 300:
        assert old_rules_wrong, "the cases never tell the 6.17 rules from the older ones"
    print("coverage:", ", ".join(f"{code}={n}" for code, n in sorted(outcomes.items())))
    differential(
        "exec", seed, compared, len(failures), f"(pre-6.17 rules: {old_rules_wrong} would differ)"
    )
    assert not failures, (
        f"{len(failures)} disagreements of {compared} (UNROOT_DIFF_SEED={seed}):\n"
        + "\n".join(failures[:5])
    )


# -- v3 rootid inside a user namespace --------------------------------------------------------
def _userns_child(exec_path: str, ready_w: int, go_r: int, write_fd: int) -> None:
    code = 0
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        os.setgroups([])
        os.setresgid(1000, 1000, 1000)
        os.setresuid(1000, 1000, 1000)  # the creator becomes root of the new namespace
        if libc.unshare(CLONE_NEWUSER) != 0:
            raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWUSER)")
        os.write(ready_w, b"1")
        os.read(go_r, 1)
        os.setresgid(1, 1, 1)
        os.setresuid(1, 1, 1)  # root of the namespace -> its uid 1: no capabilities left
        _report_and_exec(exec_path, write_fd)
    except BaseException:  # a forked child must never return into pytest
        code = 70
    finally:
        os._exit(code)


@pytest.mark.parametrize(("rootid", "granted"), [(1000, True), (2000, False), (0, True)])
def test_v3_rootid_counts_only_for_root_of_the_namespace(
    lab: Lab, rootid: int, granted: bool
) -> None:
    """Namespace root = host uid 1000: a v3 entry for rootid 1000 (or 0, the initial
    namespace's root, an ancestor) grants its capabilities, rootid 2000 grants nothing."""
    os.chown(lab.probe, 0, 0)
    os.chmod(lab.probe, 0o755)
    fcaps = FileCaps(CapSet.of("cap_net_bind_service"), effective=True, revision=3, rootid=rootid)
    os.setxattr(lab.probe, XATTR_NAME_CAPS, fcaps.encode())
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        _userns_child(str(lab.probe), ready_w, go_r, write_fd)
    for fd in (ready_w, go_r, write_fd):
        os.close(fd)
    try:
        assert os.read(ready_r, 1) == b"1", "the child could not unshare its user namespace"
        Path(f"/proc/{pid}/uid_map").write_text("0 1000 1\n1 1001 1\n")
        Path(f"/proc/{pid}/gid_map").write_text("0 1000 1\n1 1001 1\n")
        os.write(go_w, b"1")
        chunks = []
        while chunk := os.read(read_fd, 65536):
            chunks.append(chunk)
    finally:
        for fd in (ready_r, go_w, read_fd):
            os.close(fd)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    before_raw, _, after_raw = b"".join(chunks).partition(SEPARATOR)
    before = status_creds(before_raw.decode())
    seen = observe(after_raw)
    assert seen is not None
    assert seen.creds is not None
    assert before.uid.real == 1
    assert not before.permitted
    file = ExecFile(path=str(lab.probe), file_caps=FileCaps.decode(fcaps.encode()))
    kernel = Kernel.parse(os.uname().release)
    model = execve(before, file, userns_root_uids=(1000, 0), kernel=kernel)
    assert differences(model, before, seen) == []
    assert ("cap_net_bind_service" in seen.creds.permitted) is granted
    if not granted:
        assert any(r.code == "v3-rootid-foreign" for r in model.reasons)
