"""``unroot caps`` as a user types it, checked against libcap's own tools.

Each command runs in-process (``unroot.cli.main``) and as a subprocess (the installed
``unroot`` script), and its answers are compared with ``capsh --decode``, ``getcap``,
``getcap -r`` and ``find -perm /6000`` on real files.
"""

from __future__ import annotations

import errno
import json
import os
import pty
import random
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _cliutil import run, validate_schema

from unroot import syscalls
from unroot.model.caps import CapSet
from unroot.model.filecaps import XATTR_NAME_CAPS, FileCaps

ROOT = Path(__file__).parents[2]
MAKE_TREE = ROOT / "examples" / "make-caps-tree.sh"
PROC_DATA = ROOT / "tests" / "facts" / "data"
_SCRIPT = Path(sys.executable).parent / "unroot"
UNROOT = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "unroot"]

needs = {tool: shutil.which(tool) for tool in ("capsh", "getcap", "setcap", "setpriv")}


def requires(tool: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(needs[tool] is None, reason=f"{tool} (libcap2-bin) not installed")


def validate(kind: str, document: Any) -> None:
    validate_schema(f"caps-{kind}", document)


def run_sub(*argv: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*UNROOT, *argv], capture_output=True, text=True, check=False, **kwargs)


def assert_one_line_error(err: str, *fragments: str) -> None:
    assert "Traceback" not in err
    assert err.count("\n") == 1, err
    assert err.startswith("unroot: ")
    for fragment in fragments:
        assert fragment in err


# -- decode ------------------------------------------------------------------------------------
def random_masks(count: int, seed: int = 2024) -> list[str]:
    rng = random.Random(seed)
    masks = ["0", "a80425fb", "0xa80425fb", "000001ffffffffff", "0XFFFFFFFFFFFFFFFF", "0x400"]
    for _ in range(count):
        bits = rng.choice([8, 32, 41, 64])
        value = rng.getrandbits(bits) & rng.getrandbits(bits)
        masks.append(rng.choice([f"{value:x}", f"0x{value:x}", f"{value:016x}"]))
    return masks


@requires("capsh")
def test_decode_matches_capsh(capsys: pytest.CaptureFixture[str]) -> None:
    masks = random_masks(300)
    code, out, err = run(capsys, "caps", "decode", *masks)
    assert (code, err) == (0, "")
    expected = [
        subprocess.run(
            ["capsh", f"--decode={mask}"], capture_output=True, text=True, check=True
        ).stdout.rstrip("\n")
        for mask in masks
    ]
    assert out.splitlines() == expected


@requires("capsh")
def test_decode_as_a_subprocess() -> None:
    result = run_sub("caps", "decode", "a80425fb")
    expected = subprocess.run(
        ["capsh", "--decode=a80425fb"], capture_output=True, text=True, check=True
    ).stdout
    assert (result.returncode, result.stdout, result.stderr) == (0, expected, "")


def test_decode_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "caps", "decode", "--json", "a80425fb")
    assert code == 0
    document = json.loads(out)
    validate("decode", document)
    assert document == {
        "schema_version": 1,
        "mask": "0x00000000a80425fb",
        "caps": CapSet(0xA80425FB).names(),
    }
    _, out, _ = run(capsys, "caps", "decode", "--format", "json", "1", "ffffffffffffffff")
    document = json.loads(out)
    validate("decode", document)
    assert [item["caps"][-1] for item in document] == ["cap_chown", "cap_63"]


@pytest.mark.parametrize("mask", ["zz", "0x", "", "1ffffffffffffffff", "-1", "0x_1", "12 34"])
def test_decode_bad_mask(capsys: pytest.CaptureFixture[str], mask: str) -> None:
    code, out, err = run(capsys, "caps", "decode", "1", mask)
    assert (code, out) == (2, "")
    assert_one_line_error(err, "not a capability mask")


# -- usage errors --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["caps", "frob"], "invalid choice: 'frob'"),
        (["caps", "decode"], "the following arguments are required: MASK"),
        (["caps", "decode", "--yaml", "1"], "unrecognized arguments: --yaml"),
        (["caps", "proc", "self", "--format", "xml"], "invalid choice: 'xml'"),
        (["caps", "scan", "-x"], "the following arguments are required: DIR"),
    ],
)
def test_usage_errors_are_one_line(argv: list[str], fragment: str) -> None:
    result = run_sub(*argv)
    assert (result.returncode, result.stdout) == (2, "")
    assert_one_line_error(result.stderr, fragment)


def test_caps_alone_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "caps")
    assert (code, out) == (2, "")
    assert "decode" in err
    assert "scan" in err


# -- file ----------------------------------------------------------------------------------------
SETCAP_TEXTS = [
    "cap_net_bind_service=ep",
    "cap_net_bind_service,cap_net_raw+p",
    "cap_chown=ip cap_kill=p",
    "cap_chown,cap_kill=p cap_chown+i",
    "all=ep",
    "all=p cap_chown-p",
    "all=p cap_chown+i cap_kill-p",
    "cap_setuid,cap_setgid,cap_sys_admin=eip",
    "=",
]


@pytest.fixture
def capped(tmp_path: Path) -> dict[str, Path]:
    """One file per setcap text, plus a rev 3 file and one with bits above cap_last_cap."""
    files: dict[str, Path] = {}
    for index, text in enumerate(SETCAP_TEXTS):
        path = tmp_path / f"f{index}"
        shutil.copy("/bin/true", path)
        subprocess.run(["setcap", text, str(path)], check=True)
        files[text] = path
    v3 = tmp_path / "v3"
    shutil.copy("/bin/true", v3)
    subprocess.run(["setcap", "-n", "1000", "cap_net_bind_service=ep", str(v3)], check=True)
    files["v3"] = v3
    high = tmp_path / "high"
    shutil.copy("/bin/true", high)
    os.setxattr(
        high, XATTR_NAME_CAPS, FileCaps(CapSet(1 | 0xFFFFFFFF << 32), effective=True).encode()
    )
    files["high"] = high
    return files


def getcap(*paths: Path | str) -> str:
    return subprocess.run(
        ["getcap", *map(str, paths)], capture_output=True, text=True, check=True
    ).stdout


@pytest.mark.root
@requires("setcap")
def test_file_text_matches_getcap(
    capsys: pytest.CaptureFixture[str], capped: dict[str, Path]
) -> None:
    paths = [str(p) for p in capped.values()]
    code, out, err = run(capsys, "caps", "file", *paths)
    assert (code, err) == (0, "")
    ours = [re.sub(r" \[v[123]( rootid=\d+)?\]$", "", line) for line in out.splitlines()]
    assert ours == getcap(*paths).splitlines()
    assert f"{capped['v3']} cap_net_bind_service=ep [v3 rootid=1000]" in out
    assert f"{capped['=']} = [v2]" in out


@pytest.mark.root
@requires("getcap")
def test_file_text_matches_getcap_for_random_caps(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """libcap's text has a base set and +/- clauses: random sets exercise every shape."""
    rng = random.Random(7)
    paths = []
    for index in range(200):
        bits = rng.choice([41, 41, 64])
        density = rng.choice([1, 2, 3])
        permitted = inheritable = (1 << bits) - 1
        for _ in range(density):
            permitted &= rng.getrandbits(bits)
            inheritable &= rng.getrandbits(bits)
        if rng.random() < 0.2:
            permitted = ((1 << 41) - 1) & ~permitted  # mostly set: a "=p cap_x-p" base
        caps = FileCaps(CapSet(permitted), CapSet(inheritable), effective=rng.random() < 0.5)
        path = tmp_path / f"r{index:03}"
        path.write_text("x")
        os.setxattr(path, XATTR_NAME_CAPS, caps.encode())
        paths.append(str(path))
    code, out, _ = run(capsys, "caps", "file", *paths)
    assert code == 0
    ours = [line.removesuffix(" [v2]") for line in out.splitlines()]
    assert ours == getcap(*paths).splitlines()


@pytest.mark.root
@requires("setcap")
def test_file_as_a_subprocess(capped: dict[str, Path]) -> None:
    path = capped["cap_net_bind_service=ep"]
    result = run_sub("caps", "file", str(path))
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == f"{path} cap_net_bind_service=ep [v2]\n"


@pytest.mark.root
@requires("setcap")
def test_file_json(capsys: pytest.CaptureFixture[str], capped: dict[str, Path]) -> None:
    plain = capped["v3"].parent / "plain"
    plain.write_text("no caps\n")
    code, out, _ = run(capsys, "caps", "file", "--json", str(capped["v3"]), str(plain))
    document = json.loads(out)
    validate("file", document)
    assert code == 0
    assert document["files"] == [
        {
            "path": str(capped["v3"]),
            "caps": {
                "text": "cap_net_bind_service=ep",
                "permitted": ["cap_net_bind_service"],
                "inheritable": [],
                "effective": True,
                "revision": 3,
                "rootid": 1000,
                "hex": "0100000300040000000000000000000000000000e8030000",
            },
            "error": None,
        },
        {"path": str(plain), "caps": None, "error": None},
    ]


def test_file_without_caps_prints_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "plain").write_text("x")
    assert run(capsys, "caps", "file", str(tmp_path / "plain")) == (0, "", "")


def test_missing_file_is_reported_and_the_others_still_shown(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "here").write_text("x")
    caps = FileCaps(CapSet.of("cap_net_raw"), effective=True)
    real_getxattr = os.getxattr

    def getxattr(path: str, name: str, **kwargs: bool) -> bytes:
        if path.endswith("here"):
            return caps.encode()
        return real_getxattr(path, name, **kwargs)

    monkeypatch.setattr(os, "getxattr", getxattr)
    missing, here = str(tmp_path / "missing"), str(tmp_path / "here")
    code, out, err = run(capsys, "caps", "file", missing, here)
    assert code == 2
    assert out == f"{here} cap_net_raw=ep [v2]\n"
    assert_one_line_error(err, f"{missing}: No such file or directory")
    code, out, _ = run(capsys, "caps", "file", "--json", missing, here)
    document = json.loads(out)
    validate("file", document)
    assert document["files"][0] == {
        "path": missing,
        "caps": None,
        "error": "No such file or directory",
    }


def test_missing_file_as_a_subprocess(tmp_path: Path) -> None:
    result = run_sub("caps", "file", str(tmp_path / "missing"))
    assert (result.returncode, result.stdout) == (2, "")
    assert_one_line_error(result.stderr, "No such file or directory")


INVALID = b"\x01\x00\x00\x02\x00\x04"  # a revision 2 header with 6 bytes instead of 20


@pytest.fixture
def invalid_caps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A file whose security.capability the kernel would reject.

    setxattr(2) validates the header on current kernels (the kernel tests check that), so
    unless this kernel stores the bytes, os.getxattr is made to return them.
    """
    path = tmp_path / "invalid"
    path.write_text("x")
    try:
        os.setxattr(path, XATTR_NAME_CAPS, INVALID)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.EPERM, errno.ENOTSUP):
            raise
        real_getxattr = os.getxattr

        def getxattr(target: str, name: str, **kwargs: bool) -> bytes:
            if target == str(path) and name == XATTR_NAME_CAPS:
                return INVALID
            return real_getxattr(target, name, **kwargs)

        monkeypatch.setattr(os, "getxattr", getxattr)
    return path


def test_invalid_xattr_bytes(capsys: pytest.CaptureFixture[str], invalid_caps: Path) -> None:
    code, out, err = run(capsys, "caps", "file", str(invalid_caps))
    assert (code, out) == (2, "")
    assert_one_line_error(
        err, f"{invalid_caps}: invalid security.capability (revision 2 must be 20 bytes, not 6"
    )
    code, out, err = run(capsys, "caps", "file", "--json", str(invalid_caps))
    document = json.loads(out)
    validate("file", document)
    assert document["files"][0]["error"].startswith("invalid security.capability (")


# -- proc ----------------------------------------------------------------------------------------
def test_proc_self_json_agrees_with_the_syscalls(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "caps", "proc", "self", "--json")
    assert (code, err) == (0, "")
    document = json.loads(out)
    validate("proc", document)
    effective, permitted, inheritable = syscalls.capget()
    assert document["pid"] == os.getpid()
    assert document["uid"]["effective"] == os.geteuid()
    assert document["effective"] == {
        "mask": f"0x{effective:016x}",
        "caps": CapSet(effective).names(),
    }
    assert document["permitted"]["mask"] == f"0x{permitted:016x}"
    assert document["inheritable"]["mask"] == f"0x{inheritable:016x}"
    bits = syscalls.get_securebits()
    assert document["securebits"]["value"] == bits
    assert document["no_new_privs"] == syscalls.get_no_new_privs()


def test_proc_other_process_has_no_securebits(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "caps", "proc", str(os.getppid()), "--json")
    assert code == 0
    document = json.loads(out)
    validate("proc", document)
    assert document["securebits"] is None
    _, out, _ = run(capsys, "caps", "proc", str(os.getppid()))
    assert "securebits   unavailable" in out


@requires("setpriv")
@pytest.mark.unprivileged_reads_checkout
def test_proc_as_a_subprocess_under_setpriv() -> None:
    """A non-root process with an ambient capability and no_new_privs, read by itself."""
    if os.geteuid() != 0:
        pytest.skip("setpriv needs root to change ids")
    result = subprocess.run(
        [
            "setpriv", "--reuid=1000", "--regid=1000", "--groups=27,100",
            "--inh-caps=-all,+net_bind_service", "--ambient-caps=+net_bind_service",
            "--bounding-set=-all,+net_bind_service", "--no-new-privs",
            "--securebits=+noroot,+no_setuid_fixup_locked",
            *UNROOT, "caps", "proc", "self", "--json",
        ],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert (result.returncode, result.stderr) == (0, "")
    document = json.loads(result.stdout)
    validate("proc", document)
    assert document["uid"] == {"real": 1000, "effective": 1000, "saved": 1000, "fs": 1000}
    assert document["groups"] == [27, 100]
    for name in ("inheritable", "permitted", "effective", "bounding", "ambient"):
        assert document[name] == {"mask": "0x0000000000000400", "caps": ["cap_net_bind_service"]}
    assert document["no_new_privs"] is True
    assert document["securebits"] == {
        "value": 0b1001,
        "names": ["SECBIT_NOROOT", "SECBIT_NO_SETUID_FIXUP_LOCKED"],
    }


def test_proc_text_from_a_captured_procfs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "4242").mkdir()
    shutil.copy(PROC_DATA / "uid1000-ambient-nnp.status", tmp_path / "4242" / "status")
    code, out, err = run(capsys, "caps", "proc", "4242", "--procfs", str(tmp_path))
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[1] == "uid          real 1000  effective 1000  saved 1000  fs 1000"
    assert lines[3] == "groups       27,100"
    assert "ambient      0x0000000000000400 cap_net_bind_service" in lines
    assert "no_new_privs 1" in lines
    assert "seccomp      0 (disabled)" in lines


def test_proc_old_kernel_fields(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "7").mkdir()
    shutil.copy(PROC_DATA / "handmade-linux-3.x.status", tmp_path / "7" / "status")
    _, out, _ = run(capsys, "caps", "proc", "7", "--procfs", str(tmp_path), "--json")
    document = json.loads(out)
    validate("proc", document)
    assert (document["no_new_privs"], document["seccomp"], document["securebits"]) == (None,) * 3


@pytest.mark.parametrize("pid", ["abc", "-1", "0", "1.5", "٣"])
def test_proc_bad_pid(capsys: pytest.CaptureFixture[str], pid: str) -> None:
    code, out, err = run(capsys, "caps", "proc", pid)
    assert (code, out) == (2, "")
    assert_one_line_error(err, "PID must be a process id or 'self'")


def test_proc_no_such_process() -> None:
    pid = str(2**22 + 1)  # above the largest pid_max
    result = run_sub("caps", "proc", pid)
    assert (result.returncode, result.stdout) == (2, "")
    assert_one_line_error(result.stderr, f"no such process: {pid}")


def test_proc_unreadable_status_is_an_environment_problem(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "5" / "status").mkdir(parents=True)
    code, _, err = run(capsys, "caps", "proc", "5", "--procfs", str(tmp_path))
    assert code == 3
    assert_one_line_error(err, "cannot read")


def test_proc_garbage_status_is_a_parse_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "5").mkdir()
    (tmp_path / "5" / "status").write_text("Name:\tx\nUid:\tnope\n")
    code, _, err = run(capsys, "caps", "proc", "5", "--procfs", str(tmp_path))
    assert code == 2
    assert_one_line_error(err, "not a /proc/PID/status text")


# -- scan ----------------------------------------------------------------------------------------
@pytest.fixture
def example_tree() -> Iterator[Path]:
    """examples/make-caps-tree.sh's tree, plus more depth, in a directory anyone can enter."""
    if os.geteuid() != 0 or needs["setcap"] is None:
        pytest.skip("needs root and setcap")
    top = Path(tempfile.mkdtemp(prefix="unroot-scan-"))
    try:
        top.chmod(0o755)
        tree = top / "tree"
        subprocess.run(["sh", str(MAKE_TREE), str(tree)], check=True, capture_output=True)
        for depth in range(1, 4):
            nested = tree / "/".join(f"d{i}" for i in range(depth))
            nested.mkdir(parents=True)
            shutil.copy("/bin/true", nested / "svc")
            subprocess.run(["setcap", "cap_net_raw+ep", str(nested / "svc")], check=True)
            (nested / "sgid").write_text("x")
            (nested / "sgid").chmod(0o2755)
        yield tree
    finally:
        shutil.rmtree(top)


def getcap_r_and_find(tree: Path) -> dict[str, str]:
    """What getcap -r and find -type f -perm /6000 say, keyed by path."""
    expected: dict[str, str] = {}
    for line in subprocess.run(
        ["getcap", "-r", str(tree)], capture_output=True, text=True, check=True
    ).stdout.splitlines():
        path, _, text = line.partition(" ")
        expected[path] = text
    for line in subprocess.run(
        ["find", str(tree), "-type", "f", "-perm", "/6000", "-printf", "%p %m\n"],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines():  # fmt: skip
        path, _, mode = line.rpartition(" ")
        expected[path] = (expected.get(path, "") + f" {int(mode, 8):04o}").strip()
    return expected


@pytest.mark.root
def test_scan_agrees_with_getcap_and_find(
    capsys: pytest.CaptureFixture[str], example_tree: Path
) -> None:
    code, out, err = run(capsys, "caps", "scan", "--json", str(example_tree))
    assert (code, err) == (0, "")
    document = json.loads(out)
    validate("scan", document)
    ours = {}
    for item in document["files"]:
        parts = [item["caps"]["text"]] if item["caps"] else []
        if item["setuid_owner"] is not None or item["setgid_owner"] is not None:
            parts.append(item["mode"])
        ours[item["path"]] = " ".join(parts)
    assert ours == getcap_r_and_find(example_tree)
    find = subprocess.run(
        ["find", str(example_tree), "-type", "f"], capture_output=True, text=True, check=True
    )
    assert document["scanned"] == len(find.stdout.splitlines())
    by_name = {Path(item["path"]).name: item for item in document["files"]}
    assert by_name["rootless-web"]["caps"]["rootid"] == 1000
    assert by_name["pinger"]["caps"]["effective"] is False
    assert by_name["suid-helper"]["setuid_owner"] == 0
    assert by_name["suid-helper"]["mode"] == "4755"


@pytest.mark.root
def test_scan_text_as_a_subprocess(example_tree: Path) -> None:
    result = run_sub("caps", "scan", str(example_tree / "bin"))
    assert (result.returncode, result.stderr) == (0, "")
    bin_ = example_tree / "bin"
    assert result.stdout.splitlines() == [
        f"{bin_}/pinger  cap_net_raw=p  [v2]",
        f"{bin_}/rootless-web  cap_net_bind_service=ep  [v3 rootid=1000]",
        f"{bin_}/sgid-helper  setgid tty (2755 root:tty)",
        f"{bin_}/suid-helper  setuid root (4755 root:root)",
        f"{bin_}/web  cap_net_bind_service=ep  [v2]",
    ]


@pytest.mark.root
@requires("setpriv")
@pytest.mark.unprivileged_reads_checkout
def test_scan_unreadable_directory_is_a_warning(example_tree: Path) -> None:
    secret = example_tree / "secret"
    secret.mkdir(mode=0o700)
    result = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
         *UNROOT, "caps", "scan", str(example_tree), "--json"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0
    assert_one_line_error(result.stderr, f"warning: {secret}: Permission denied")
    document = json.loads(result.stdout)
    assert document["errors"] == [{"path": str(secret), "error": "Permission denied"}]
    assert len(document["files"]) == 11
    as_root_dir = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
         *UNROOT, "caps", "scan", str(secret)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert (as_root_dir.returncode, as_root_dir.stdout) == (3, "")
    assert_one_line_error(as_root_dir.stderr, f"{secret}: Permission denied")


def test_control_characters_in_names_are_escaped(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A file name must not add lines or repaint the terminal (think of a scan of /tmp)."""
    name = "evil\nfake-line\x1b[2J"
    (tmp_path / name).write_text("x")
    (tmp_path / name).chmod(0o4755)
    code, out, _ = run(capsys, "caps", "scan", str(tmp_path))
    assert code == 0
    assert out.startswith(f"{tmp_path}/evil\\nfake-line\\x1b[2J  setuid ")
    assert out.count("\n") == 1
    code, _, err = run(capsys, "caps", "file", str(tmp_path / "gone\nline"))
    assert code == 2
    assert_one_line_error(err, "gone\\nline")
    _, out, _ = run(capsys, "caps", "scan", "--json", str(tmp_path))
    assert json.loads(out)["files"][0]["path"] == str(tmp_path / name)


def test_scan_missing_root(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = run(capsys, "caps", "scan", str(tmp_path / "nothing"), str(tmp_path))
    assert (code, out) == (2, "")
    assert_one_line_error(err, "nothing: No such file or directory")


@requires("getcap")
def test_scan_usr_bin_agrees_with_getcap() -> None:
    """A real system directory, as a subprocess: the capability lines getcap -r prints."""
    result = run_sub("caps", "scan", "/usr/bin", "--json")
    assert result.returncode == 0
    document = json.loads(result.stdout)
    ours = sorted(f"{f['path']} {f['caps']['text']}" for f in document["files"] if f["caps"])
    expected = subprocess.run(
        ["getcap", "-r", "/usr/bin"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert ours == sorted(expected)


def run_with_tty_stderr(*argv: str) -> tuple[int, str, str]:
    """Run unroot with stderr on a pseudo-terminal; returns (status, stdout, terminal text)."""
    master, slave = pty.openpty()
    with subprocess.Popen(
        [*UNROOT, *argv], stdout=subprocess.PIPE, stderr=slave, text=True
    ) as child:
        os.close(slave)
        stdout = child.stdout.read() if child.stdout else ""
        chunks = []
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        status = child.wait()
    os.close(master)
    return status, stdout, b"".join(chunks).decode()


def test_progress_only_on_a_terminal_and_only_for_text(tmp_path: Path) -> None:
    for index in range(50):
        (tmp_path / f"d{index}").mkdir()
        (tmp_path / f"d{index}" / "f").write_text("x")
    status, stdout, terminal = run_with_tty_stderr("caps", "scan", str(tmp_path))
    assert (status, stdout) == (0, "")
    assert "\rscanning: " in terminal
    assert "0 privileged of 50 files scanned" in terminal
    status, stdout, terminal = run_with_tty_stderr("caps", "scan", "--json", str(tmp_path))
    assert status == 0
    assert terminal == ""
    assert json.loads(stdout)["scanned"] == 50
    piped = run_sub("caps", "scan", str(tmp_path))
    assert (piped.returncode, piped.stdout, piped.stderr) == (0, "", "")


def test_scan_output_into_a_closed_pipe_is_quiet() -> None:
    result = subprocess.run(
        f"{' '.join(UNROOT)} caps scan /usr | head -c 1 >/dev/null",
        shell=True, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert "Traceback" not in result.stderr
    assert "Exception" not in result.stderr
