"""Differential test: every question a user can ask ``unroot explain`` (issue 13), asked through
the command line and the batch keys, against the live kernel.

The other differential tests feed the model directly; these go through the front end
(:func:`unroot.cli.main` with the flags, and :func:`unroot.sources.questions.answer` with the
batch keys, which must agree), so a question the flags cannot express fails here.  Areas:

* ``exec``: random securebits, uids, ambient capabilities and files (set-user-ID root,
  set-group-ID with and without group x, file capabilities, a ``noexec`` bind mount, a file
  without any x bit), the kernel left to the running one: errno, ids, the five sets, AT_SECURE
  and the securebits after exec (a probe prints ``prctl(PR_GET_SECUREBITS)``).
* ``setid-userns``: set-id files whose owner or group has no mapping in the caller's user
  namespace (``--file-ids-unmapped``; fs/exec.c bprm_fill_uid).
* ``rootid``: nested user namespaces (roots host 100000 and 101000); v3 file capabilities given
  as ``setcap`` text with ``rootid=``, ``--userns-root-uid`` listing the chain.
* ``bind-owner``: a socket of a netns whose user namespace the binder's euid created, passed to
  the binder (``--caller-owns-netns-userns``).
* ``sysctl``: writes of ``ip_unprivileged_port_start`` in a fresh netns against
  ``--unprivileged-port-start`` (EINVAL ↔ one line, exit 2).
* ``access-userns``: faccessat by root of a user namespace with DAC capabilities on inodes
  whose owner/group are or are not mapped (``--uid-map``/``--gid-map``).
* ``append``: open(2) with O_APPEND/O_TRUNC of append-only (chattr +a) and ordinary files,
  through a read-only bind mount too (``--open-flags``).

The mutation check breaks each new rule once and requires the same comparison to catch it.
Seed: UNROOT_DIFF_SEED; cases per area: UNROOT_ORACLE_CASES (default 200).  Needs root, gcc,
an ext4 (chattr +a capable) /var/tmp.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import io
import json
import os
import random
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from _forking import run_in_child
from test_access_differential import Identity, _ask
from test_bind_differential import _session_fd_passing

from unroot import SCHEMA_VERSION, cli, syscalls
from unroot.facts.proc import parse_status
from unroot.facts.questions import LIVE
from unroot.model.caps import NET_BIND_SERVICE
from unroot.model.filecaps import XATTR_NAME_CAPS, FileCaps
from unroot.sources.questions import answer

pytestmark = [pytest.mark.root, pytest.mark.slow]

PROBE_C = r"""
#include <fcntl.h>
#include <stdio.h>
#include <sys/auxv.h>
#include <sys/prctl.h>
#include <unistd.h>
int main(void) {
    char buf[16384];
    size_t used = 0;
    ssize_t n;
    int fd = open("/proc/self/status", O_RDONLY);
    while (fd >= 0 && used < sizeof buf && (n = read(fd, buf + used, sizeof buf - used)) > 0)
        used += (size_t)n;
    if (used) write(1, buf, used);
    n = snprintf(buf, sizeof buf, "Secbits:\t%d\nAT_SECURE:\t%lu\n", prctl(PR_GET_SECUREBITS),
                 getauxval(AT_SECURE));
    write(1, buf, (size_t)n);
    return 0;
}
"""

CLONE_NEWUSER, CLONE_NEWNET = 0x10000000, 0x40000000
PR_SET_DUMPABLE, PR_SET_SECUREBITS, PR_GET_SECUREBITS = 4, 28, 27
PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE = 47, 2
FS_IOC_GETFLAGS, FS_IOC_SETFLAGS, FS_APPEND_FL = 0x80086601, 0x40086602, 0x20
NBS = 10
_libc = ctypes.CDLL(None, use_errno=True)
_libc.prctl.argtypes = [
    ctypes.c_int,
    ctypes.c_ulong,
    ctypes.c_ulong,
    ctypes.c_ulong,
    ctypes.c_ulong,
]


def _cases() -> int:
    return int(os.environ.get("UNROOT_ORACLE_CASES", "200"))


def _seed() -> int:
    return int(os.environ.get("UNROOT_DIFF_SEED") or random.SystemRandom().randrange(1 << 32))


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


# -- asking unroot: flags and batch keys --------------------------------------------------------
def _argv(kind: str, question: dict[str, Any]) -> list[str]:
    argv = ["explain", kind, "--json"]
    for key, value in question.items():
        if key == "path" and kind == "access":
            argv.insert(2, value)
        elif key == "group_executable":
            argv += [] if value else ["--no-group-exec"]
        elif value is True:
            argv.append("--" + key.replace("_", "-"))
        elif value is not False:
            argv.append(f"--{key.replace('_', '-')}={value}")
    return argv


def ask(kind: str, question: dict[str, Any]) -> tuple[int, dict[str, Any] | str]:
    """(exit code, JSON answer or the error text) from the flags; the batch keys must agree."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(_argv(kind, question))
    try:
        batch: dict[str, Any] | str = answer({"kind": kind, **question}, LIVE)
    except Exception as exc:  # compared with the flags' error below
        batch = f"error: {exc}"
    if code == 2:
        assert isinstance(batch, str), (question, batch)
        return code, err.getvalue()
    result = json.loads(out.getvalue())
    assert result.pop("schema_version") == SCHEMA_VERSION  # the document's, not the answer's
    assert result == batch, (question, result, batch)
    return code, result


# -- exec through a probe that reports its securebits -------------------------------------------
@dataclass(frozen=True)
class Lab:
    root: Path
    probe: Path


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("needs gcc to build the probe")
    root = Path(tempfile.mkdtemp(prefix="unroot-oracle-", dir="/var/tmp"))
    mounted = []
    try:
        root.chmod(0o755)
        (root / "probe.c").write_text(PROBE_C)
        _run(gcc, "-Os", "-o", str(root / "probe"), str(root / "probe.c"))
        for name in ("bin", "noexec", "ro", "acc"):
            (root / name).mkdir(mode=0o755)
            (root / name).chmod(0o755)
        _run("mount", "--bind", str(root / "bin"), str(root / "noexec"))
        mounted.append(root / "noexec")
        _run("mount", "-o", "remount,bind,noexec", str(root / "noexec"))
        yield Lab(root, root / "probe")
    finally:
        for path in mounted:
            subprocess.run(["umount", "-l", str(path)], check=False)
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                with contextlib.suppress(OSError):
                    _set_append(os.path.join(dirpath, name), on=False)
        shutil.rmtree(root, ignore_errors=True)


def _exec_observed(path: str) -> dict[str, Any]:
    """In this (child) process: read the state, fork, exec ``path``; the probe's report."""
    before = Path("/proc/self/status").read_text()
    secbits = _libc.prctl(PR_GET_SECUREBITS, 0, 0, 0, 0)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the grandchild
        try:
            os.dup2(out_w, 1)
            os.execv(path, [path])
        except OSError as exc:
            os.write(err_w, errno.errorcode[exc.errno or 0].encode())
        finally:
            os._exit(127)
    os.close(out_w)
    os.close(err_w)
    with os.fdopen(out_r, "rb") as fh:
        after = fh.read().decode()
    with os.fdopen(err_r, "rb") as fh:
        failed = fh.read().decode()
    os.waitpid(pid, 0)
    return {"before": before, "secbits": secbits, "errno": failed or None, "after": after}


def _field(text: str, key: str) -> str:
    return next(line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith(key))


def _state_question(seen: dict[str, Any]) -> dict[str, Any]:
    """The pre-exec state as flags: ids, groups, the five sets (hex), securebits, nnp."""
    status = parse_status(seen["before"])
    question: dict[str, Any] = {
        "uid": ",".join(map(str, status.uid.triple())),
        "gid": ",".join(map(str, status.gid.triple())),
        "groups": ",".join(map(str, status.groups)) or None,
        "secbits": str(seen["secbits"]),
        "nnp": bool(status.no_new_privs),
    }
    for key in ("bounding", "inheritable", "permitted", "effective", "ambient"):
        question[key] = hex(getattr(status, key).mask)
    return {k: v for k, v in question.items() if v is not None}


def _exec_diffs(result: dict[str, Any] | str, seen: dict[str, Any]) -> list[str]:
    if isinstance(result, str):
        return [f"unroot refused the question: {result.strip()}"]
    if seen["errno"] is not None or result["exec"] != "ok":
        kernel = seen["errno"] or "ok"
        return [] if result["exec"] == kernel else [f"exec: unroot {result['exec']} / {kernel}"]
    after = parse_status(seen["after"])
    diffs = []
    observed = {
        "uid": list(after.uid.triple()),
        "gid": list(after.gid.triple()),
        "secure_exec": _field(seen["after"], "AT_SECURE") == "1",
        "securebits": int(_field(seen["after"], "Secbits")),
        **{k: getattr(after, k).names() for k in ("permitted", "effective", "inheritable")},
        **{k: getattr(after, k).names() for k in ("bounding", "ambient")},
    }
    for key, value in observed.items():
        if result.get(key) != value:
            diffs.append(f"{key}: unroot {result.get(key)} / kernel {value}")
    return diffs


@dataclass(frozen=True)
class ExecCase:
    name: str
    mode: int
    uid: int
    gid: int
    where: str = "bin"  # or "noexec"
    caps: str | None = None
    keys: tuple[tuple[str, Any], ...] = ()


EXEC_FILES = (
    ExecCase("plain", 0o755, 0, 0),
    ExecCase("setuid-root", 0o4755, 0, 0, keys=(("setuid_owner", 0),)),
    ExecCase("setgid", 0o2755, 0, 1000, keys=(("setgid_owner", 1000),)),
    ExecCase(
        "setgid-no-gx",
        0o2745,
        0,
        2000,
        keys=(("setgid_owner", 2000), ("group_executable", False)),
    ),
    ExecCase("noexec", 0o755, 0, 0, where="noexec", keys=(("noexec", True),)),
    ExecCase("no-x", 0o644, 0, 0, keys=(("no_exec_bit", True),)),
    ExecCase(
        "file-caps",
        0o755,
        0,
        0,
        caps="cap_net_bind_service=+ep",
        keys=(("file_caps", "cap_net_bind_service=+ep"),),
    ),
)


def _prepare(lab: Lab, case: ExecCase) -> str:
    path = lab.root / "bin" / case.name
    if not path.exists():
        shutil.copyfile(lab.probe, path)
        os.chown(path, case.uid, case.gid)
        os.chmod(path, case.mode)
        if case.caps:
            os.setxattr(path, XATTR_NAME_CAPS, FileCaps.from_text(case.caps).encode())
    return str(lab.root / case.where / case.name)


def _walk_state(rng: random.Random) -> None:
    """Securebits, ambient, then a uid change: each attempt may fail; the state is observed."""
    os.setgroups(rng.sample([0, 1000, 3000], rng.randrange(3)))
    if rng.random() < 0.5:
        syscalls.capset(syscalls.capget()[0], syscalls.capget()[1], 1 << NBS)
        _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, NBS, 0, 0)
    _libc.prctl(PR_SET_SECUREBITS, rng.getrandbits(8) & rng.getrandbits(8), 0, 0, 0)
    gid = rng.choice([0, 1000])
    with contextlib.suppress(OSError):
        os.setresgid(gid, rng.choice([0, gid]), gid)
    uids = rng.choice([(0, 0, 0), (1000, 1000, 1000), (1000, 0, 0), (0, 1000, 1000)])
    with contextlib.suppress(OSError):
        os.setresuid(*uids)


def exec_area(lab: Lab, rng: random.Random, count: int) -> tuple[int, list[str]]:
    """Random states x EXEC_FILES, the kernel version left to unroot (the running one)."""
    failures = []
    for _ in range(count):
        case_seed = rng.randrange(1 << 62)
        case = random.Random(case_seed).choice(EXEC_FILES)
        path = _prepare(lab, case)

        def child(seed: int = case_seed, path: str = path) -> dict[str, Any]:
            _walk_state(random.Random(seed))
            return _exec_observed(path)

        seen = run_in_child(child)
        question = {**_state_question(seen), "path": path, **dict(case.keys)}
        _code, result = ask("exec", question)
        diffs = _exec_diffs(result, seen)
        if diffs:
            failures.append(f"case {case_seed} ({case.name}): {'; '.join(diffs)}")
    return count, failures


# -- user namespaces: a chain of them, each level's maps written by this (root) process ----------
def _userns_chain(
    levels: list[tuple[int, str, str, int]], then: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """In a child: for each level (pre, uid_map, gid_map, become) become uid/gid ``pre`` where
    it is, unshare a user namespace, have the process one level up write its maps (ids of that
    level), become ``become`` inside; then ``then()`` at the innermost level."""
    pre, uid_map, gid_map, become = levels[0]
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()

    def child() -> dict[str, Any]:
        os.setgroups([])
        if pre:
            os.setresgid(pre, pre, pre)
            os.setresuid(pre, pre, pre)
            _libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)  # its /proc files owned by it, not root
        _check(_libc.unshare(CLONE_NEWUSER), "unshare")
        os.write(ready_w, b"u")
        assert os.read(go_r, 1) == b"g"
        os.setresgid(become, become, become)
        os.setresuid(become, become, become)
        return _userns_chain(levels[1:], then) if levels[1:] else then()

    def parent(pid: int) -> None:
        os.close(ready_w)
        os.close(go_r)
        try:
            assert os.read(ready_r, 1) == b"u", "the child could not unshare"
            Path(f"/proc/{pid}/uid_map").write_text(uid_map)
            Path(f"/proc/{pid}/gid_map").write_text(gid_map)
            os.write(go_w, b"g")
        finally:
            os.close(ready_r)
            os.close(go_w)

    return run_in_child(child, parent=parent)


SETID_OWNERS = (0, 1000, 1001, 2000)  # the namespace maps host 1000-1001 as 0-1


def setid_userns_area(lab: Lab, rng: random.Random, count: int) -> tuple[int, list[str]]:
    failures = []
    for index in range(count):
        owner, group = rng.choice(SETID_OWNERS), rng.choice(SETID_OWNERS)
        bits = rng.choice([0o4000, 0o2000, 0o6000])
        inside = rng.choice([0, 1, 1])
        path = lab.root / "bin" / f"setid-{index}"
        shutil.copyfile(lab.probe, path)
        os.chown(path, owner, group)
        os.chmod(path, 0o755 | bits)
        seen = _userns_chain(
            [(0, "0 1000 2\n", "0 1000 2\n", inside)], lambda p=str(path): _exec_observed(p)
        )
        path.unlink()

        def shown(host: int) -> int:
            return host - 1000 if host in (1000, 1001) else 65534

        question = _state_question(seen)
        question["path"] = str(path)
        if bits & 0o4000:
            question["setuid_owner"] = shown(owner)
        if bits & 0o2000:
            question["setgid_owner"] = shown(group)
        if owner not in (1000, 1001) or group not in (1000, 1001):
            question["file_ids_unmapped"] = True
        _code, result = ask("exec", question)
        diffs = _exec_diffs(result, seen)
        if diffs:
            failures.append(f"owner {owner}:{group} mode {bits:o} as {inside}: {diffs}")
    return count, failures


ROOTIDS = (100000, 101000, 0, 2000, 101001, 100001)


def rootid_area(lab: Lab, rng: random.Random, count: int) -> tuple[int, list[str]]:
    """Outer namespace: 0 → host 100000; its uid 1000 (host 101000) creates the inner one,
    where uid 1 (host 101001) runs a file with v3 capabilities for a random rootid."""
    failures = []
    chain = [
        (0, "0 100000 65536\n", "0 100000 65536\n", 0),
        (1000, "0 1000 1\n1 1001 1\n", "0 1000 1\n1 1001 1\n", 1),
    ]
    for index in range(count):
        rootid = ROOTIDS[index % len(ROOTIDS)] if index < len(ROOTIDS) else rng.choice(ROOTIDS)
        text = f"cap_net_bind_service=+ep rootid={rootid}"
        path = lab.root / "bin" / f"rootid-{index}"
        shutil.copyfile(lab.probe, path)
        os.chmod(path, 0o755)
        fcaps = FileCaps(NET_BIND_SERVICE, effective=True, revision=3, rootid=rootid)
        os.setxattr(path, XATTR_NAME_CAPS, fcaps.encode())
        seen = _userns_chain(chain, lambda p=str(path): _exec_observed(p))
        path.unlink()
        question = {
            **_state_question(seen),
            "path": str(path),
            "file_caps": text,
            "userns_root_uid": "101000,100000",
        }
        _code, result = ask("exec", question)
        diffs = _exec_diffs(result, seen)
        if diffs:
            failures.append(f"rootid {rootid}: {diffs}")
    return count, failures


# -- bind ----------------------------------------------------------------------------------------
def bind_owner_area(rng: random.Random, count: int) -> tuple[int, list[str]]:
    failures = []
    cases = 0
    covered = False  # a probe only the owner rule allows: the binder created the namespace,
    # has no cap_net_bind_service and asks below the threshold (the mutation check needs one)
    while (cases < count or not covered) and cases < 10 * count:
        session = _session_fd_passing(rng, 20, ["tcp", "udp"])
        for probe, seen in zip(session["probes"], session["results"], strict=True):
            covered = covered or (
                session["owner"]
                and 0 < probe["port"] < session["start"]
                and not probe["effective"] & (1 << NBS)
            )
            question = {
                "port": probe["port"],
                "proto": probe["proto"],
                "family": probe["family"],
                "effective": hex(probe["effective"]),
                "unprivileged_port_start": session["start"],
                "caller_owns_netns_userns": session["owner"],
            }
            _code, result = ask("bind", question)
            said = (
                result
                if isinstance(result, str)
                else ("ok" if result["allowed"] else result["errno"])
            )
            cases += 1
            if said != seen:
                failures.append(f"{question} (creator {session['creator']}): {said} / {seen}")
    return cases, failures


SYSCTL = "/proc/sys/net/ipv4/ip_unprivileged_port_start"


def sysctl_area(rng: random.Random, count: int) -> tuple[int, list[str]]:
    values = [rng.choice([-1, 0, 1024, 65535, 65536, 65537, 70000, 1 << 20]) for _ in range(count)]
    values[:3] = [65535, 65536, -1]

    def child() -> list[str | None]:
        _check(_libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
        Path("/proc/sys/net/ipv4/ip_local_port_range").write_text("65535 65535")
        out = []
        for value in values:
            try:
                Path(SYSCTL).write_text(str(value))
                out.append(None)
            except OSError as err:
                out.append(errno.errorcode[err.errno or 0])
        return out

    failures = []
    for value, refused in zip(values, run_in_child(child), strict=True):
        code, result = ask("bind", {"port": 80, "unprivileged_port_start": value})
        one_line = isinstance(result, str) and result.count("\n") == 1
        if (refused == "EINVAL") != (code == 2) or (code == 2 and not one_line):
            failures.append(f"{value}: kernel {refused or 'ok'} / unroot exit {code} {result!r}")
    return count, failures


# -- access ---------------------------------------------------------------------------------------
ACC_OWNERS = (0, 1000, 100000, 100001, 2000)
ACC_MODES = (0o600, 0o640, 0o644, 0o700, 0o000, 0o755, 0o604)


def _acc_tree(lab: Lab, rng: random.Random) -> list[str]:
    base = Path(tempfile.mkdtemp(dir=lab.root / "acc"))
    base.chmod(0o755)
    paths = []
    for index in range(12):
        path = base / f"f{index}"
        path.write_text("x")
        os.chown(path, rng.choice(ACC_OWNERS), rng.choice(ACC_OWNERS))
        os.chmod(path, rng.choice(ACC_MODES))
        paths.append(str(path))
    return paths


def _uid_maps(rng: random.Random) -> tuple[tuple[int, int, int], ...]:
    first = (0, rng.choice([100000, 1000]), 1)
    second = rng.choice([(), ((1, 0, 1),), ((1, 100001, 1),), ((1, 2000, 1),)])
    return (first, *second)


def _map_text(lines: tuple[tuple[int, int, int], ...]) -> str:
    return ";".join(f"{a} {b} {c}" for a, b, c in lines)


def access_userns_area(lab: Lab, rng: random.Random, count: int) -> tuple[int, list[str]]:
    paths = _acc_tree(lab, rng)
    failures = []
    cases = 0
    while cases < count:
        uid_map, gid_map = _uid_maps(rng), _uid_maps(rng)
        ident = Identity(
            uid_map[0][1],
            uid_map[0][1],
            gid_map[0][1],
            gid_map[0][1],
            (),
            rng.choice([1, 2, 3]),
            uid_map,
            gid_map,
        )
        questions = [(rng.choice(paths), rng.choice(["r", "w", "x", "rw"])) for _ in range(12)]
        for (path, want), (kernel, _opened) in zip(questions, _ask(ident, questions), strict=True):
            effective = ["", "cap_dac_override", "cap_dac_read_search"][ident.effective % 3]
            if ident.effective == 3:
                effective = "cap_dac_override,cap_dac_read_search"
            question = {
                "path": path,
                "uid": 0,
                "gid": 0,
                "want": want,
                "effective": effective or "none",
                "uid_map": _map_text(uid_map),
                "gid_map": _map_text(gid_map),
            }
            _code, result = ask("access", question)
            said = (
                result
                if isinstance(result, str)
                else ("ok" if result["allowed"] else result["errno"])
            )
            cases += 1
            if said != kernel:
                failures.append(f"{question}: unroot {said} / kernel {kernel}")
    return cases, failures


def _set_append(path: str, *, on: bool) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        buf = bytearray(4)
        fcntl.ioctl(fd, FS_IOC_GETFLAGS, buf)
        flags = int.from_bytes(buf, "little")
        flags = flags | FS_APPEND_FL if on else flags & ~FS_APPEND_FL
        fcntl.ioctl(fd, FS_IOC_SETFLAGS, flags.to_bytes(4, "little"))
    finally:
        os.close(fd)


def _append_tree(lab: Lab, rng: random.Random) -> tuple[list[str], Callable[[], None]]:
    base = Path(tempfile.mkdtemp(dir=lab.root / "acc"))
    base.chmod(0o755)
    (base / "rw").mkdir(mode=0o755)
    (base / "ro").mkdir(mode=0o755)
    files = []
    for index in range(8):
        path = base / "rw" / f"f{index}"
        path.write_text("")
        os.chown(path, rng.choice([0, 1000]), rng.choice([0, 1000]))
        os.chmod(path, rng.choice([0o644, 0o666, 0o600, 0o444, 0o664]))
        if index % 4 != 3:
            _set_append(str(path), on=True)
        files.append(path.name)
    _run("mount", "--bind", str(base / "rw"), str(base / "ro"))
    _run("mount", "-o", "remount,bind,ro", str(base / "ro"))
    paths = [str(base / where / name) for where in ("rw", "ro") for name in files]
    return paths, lambda: _run("umount", "-l", str(base / "ro"))


OPEN_MODES = {"r": os.O_RDONLY, "w": os.O_WRONLY, "rw": os.O_RDWR}


def append_area(lab: Lab, rng: random.Random, count: int) -> tuple[int, list[str]]:
    paths, cleanup = _append_tree(lab, rng)
    failures = []
    cases = 0
    try:
        while cases < count:
            uid = rng.choice([0, 0, 1000])
            effective = rng.choice([0, 1, 3]) if uid else rng.choice([0, 1, 3, 3])
            ident = Identity(uid, uid, uid, uid, (), effective)
            asks = [
                (
                    rng.choice(paths),
                    rng.choice(list(OPEN_MODES)),
                    rng.random() < 0.5,
                    rng.random() < 0.4,
                )
                for _ in range(20)
            ]

            def child(ident: Identity = ident, asks: list[Any] = asks) -> list[str]:
                _ask_become(ident)
                out = []
                for path, want, append, trunc in asks:
                    flags = OPEN_MODES[want] | os.O_NONBLOCK
                    flags |= (os.O_APPEND if append else 0) | (os.O_TRUNC if trunc else 0)
                    try:
                        os.close(os.open(path, flags))
                        out.append("ok")
                    except OSError as err:
                        out.append(errno.errorcode[err.errno or 0])
                return out

            for (path, want, append, trunc), kernel in zip(asks, run_in_child(child), strict=True):
                flags = ",".join(f for f, on in (("append", append), ("trunc", trunc)) if on)
                question = {
                    "path": path,
                    "uid": uid,
                    "gid": uid,
                    "want": want,
                    "effective": hex(ident.effective << 1),
                    "open_flags": flags,
                }
                _code, result = ask("access", question)
                said = (
                    result
                    if isinstance(result, str)
                    else ("ok" if result["allowed"] else result["errno"])
                )
                cases += 1
                if said != kernel:
                    failures.append(f"{question}: unroot {said} / kernel {kernel}")
    finally:
        cleanup()
    return cases, failures


def _ask_become(ident: Identity) -> None:
    from test_access_differential import _become

    _become(ident)


# -- the tests ------------------------------------------------------------------------------------
AREAS: dict[str, Callable[[Lab, random.Random, int], tuple[int, list[str]]]] = {
    "exec": exec_area,
    "setid-userns": lambda lab, rng, n: setid_userns_area(lab, rng, max(12, n // 5)),
    "rootid": lambda lab, rng, n: rootid_area(lab, rng, max(12, n // 10)),
    "bind-owner": lambda _lab, rng, n: bind_owner_area(rng, n),
    "sysctl": lambda _lab, rng, n: sysctl_area(rng, max(10, n // 10)),
    "access-userns": access_userns_area,
    "append": append_area,
}


@pytest.mark.parametrize("area", list(AREAS))
def test_oracle_area_matches_the_kernel(
    lab: Lab, area: str, differential: Callable[..., None]
) -> None:
    seed = _seed()
    print(f"\n{area}: UNROOT_DIFF_SEED={seed}")
    cases, failures = AREAS[area](lab, random.Random(seed), _cases())
    differential(f"oracle:{area}", seed, cases, len(failures))
    assert not failures, f"{len(failures)} of {cases} (seed {seed}):\n" + "\n".join(failures[:5])


# -- the mutation check: each new rule broken once must be caught ----------------------------------
def _wrap(
    monkeypatch: pytest.MonkeyPatch, module: Any, name: str, change: Callable[..., Any]
) -> None:
    original = getattr(module, name)
    monkeypatch.setattr(module, name, lambda *a, **k: change(original, *a, **k))


def _mutate(mutant: str, monkeypatch: pytest.MonkeyPatch) -> str:
    from unroot.model import access, bind, execve, filecaps

    def exec_file(change: Callable[[Any], Any]) -> None:
        _wrap(monkeypatch, execve, "execve", lambda f, c, file, **k: f(c, change(file), **k))

    if mutant == "setid-unmapped-ignored":
        exec_file(lambda file: replace(file, ids_mapped=True))
        return "setid-userns"
    if mutant == "rootid-only-innermost":
        _wrap(
            monkeypatch,
            execve,
            "execve",
            lambda f, c, file, userns_root_uids, **k: f(
                c, file, userns_root_uids=userns_root_uids[:1], **k
            ),
        )
        return "rootid"
    if mutant == "rootid-text-dropped":
        monkeypatch.setattr(filecaps, "_ROOTID", __import__("re").compile(r"(?!x)x"))
        return "rootid"
    if mutant == "keep-caps-kept":

        def keep(f: Callable[..., Any], c: Any, file: Any, **k: Any) -> Any:
            result = f(c, file, **k)
            creds = result.creds.with_(securebits=c.securebits)
            return replace(result, creds=creds)

        _wrap(monkeypatch, execve, "execve", keep)
        return "exec"
    if mutant == "setgid-always-group-x":
        exec_file(lambda file: replace(file, group_executable=True))
        return "exec"
    if mutant == "noexec-ignored":
        exec_file(lambda file: replace(file, noexec=False, executable=True))
        return "exec"
    if mutant == "owner-caps-ignored":
        _wrap(
            monkeypatch,
            bind,
            "bind_verdict",
            lambda f, *a, **k: f(*a, **{**k, "caller_owns_netns_userns": False}),
        )
        return "bind-owner"
    if mutant == "sysctl-max-65536":
        monkeypatch.setattr(bind, "SYSCTL_MAX", 65536)
        return "sysctl"
    if mutant == "access-userns-ignored":
        _wrap(
            monkeypatch, access, "access_verdict", lambda f, *a, **k: f(*a, **{**k, "userns": None})
        )
        return "access-userns"
    if mutant == "append-only-ignored":
        _wrap(
            monkeypatch,
            access,
            "access_verdict",
            lambda f, tree, *a, **k: f(
                {p: replace(i, append_only=False) for p, i in tree.items()}, *a, **k
            ),
        )
        return "append"
    raise AssertionError(mutant)


MUTANTS = (
    "setid-unmapped-ignored",
    "rootid-only-innermost",
    "rootid-text-dropped",
    "keep-caps-kept",
    "setgid-always-group-x",
    "noexec-ignored",
    "owner-caps-ignored",
    "sysctl-max-65536",
    "access-userns-ignored",
    "append-only-ignored",
)


@pytest.mark.parametrize("mutant", MUTANTS)
def test_each_broken_rule_is_caught(lab: Lab, mutant: str, monkeypatch: pytest.MonkeyPatch) -> None:
    area = _mutate(mutant, monkeypatch)
    seed = _seed()
    cases, failures = AREAS[area](lab, random.Random(seed), min(_cases(), 120))
    assert failures, f"{mutant}: {cases} {area} cases (seed {seed}) did not notice the mutation"
