"""``unroot lint`` at the edges of the process: ``--output`` onto devices, FIFOs, symlinks and
its own inputs; closed or full standard streams; control characters and bytes that are not
UTF-8 in file names and contents; ``--config`` naming something that is not a file.

Device nodes are this test's own (``mknod`` in a scratch directory, as root): the machine's
/dev/null, /dev/full and /dev/stdout are never a target.  The unprivileged runs use
``setpriv`` to become nobody, with the venv's interpreter.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import unroot as _package
from unroot.commands.lint import run_lint
from unroot.lint.findings import Finding
from unroot.lint.formatters import json as json_format
from unroot.lint.formatters import text

SEED = Path(__file__).parents[2] / "examples" / "lint" / "seed-002"
ROOT = os.geteuid() == 0
SOURCE = str(Path(_package.__file__).resolve().parents[1])
NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
as_root = pytest.mark.skipif(not ROOT, reason="needs root (mknod, chown, setpriv)")
with_setpriv = pytest.mark.skipif(
    not ROOT or shutil.which("setpriv") is None, reason="needs root and setpriv"
)


@pytest.fixture(autouse=True)
def checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("UNROOT_") or name in ("NO_COLOR", "FORCE_COLOR", "COLUMNS"):
            monkeypatch.delenv(name)
    (tmp_path / ".git").mkdir()
    shutil.copytree(SEED, tmp_path / "seed")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def lint(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    out = io.StringIO()
    code = run_lint(list(argv), stdout=out)
    return code, out.getvalue(), capsys.readouterr().err


def one_error_line(err: str, *needles: str) -> None:
    assert err.count("\n") == 1, err
    assert err.startswith("unroot: "), err
    for needle in needles:
        assert needle in err, err


def unroot(
    *argv: str, shell: str | None = None, user: list[str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``unroot ARGV`` as a process (``shell``: a bash command line where ``UNROOT`` is it)."""
    command = [sys.executable, "-m", "unroot", *argv]
    if shell is not None:
        command = ["bash", "-c", shell.replace("UNROOT", f"{sys.executable} -m unroot")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("UNROOT_")}
    # the code under test, wherever the process starts (a relative PYTHONPATH=src would not
    # reach it from the checkout's temporary directory: the installed unroot would run)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [SOURCE, env.get("PYTHONPATH")]))
    return subprocess.run(
        [*(user or []), *command],
        capture_output=True,
        text=True,
        errors="surrogateescape",
        env=env,
        cwd=cwd,
        timeout=60,
        check=False,
    )


def mknod(path: Path, minor: int) -> Path:
    """A character device of this test: 1,3 is what /dev/null is, 1,7 /dev/full."""
    os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, minor))
    path.chmod(0o666)
    return path


# -- --output onto what is not a regular file ----------------------------------------------
@as_root
def test_output_writes_through_a_device_never_replacing_it(
    capsys: pytest.CaptureFixture[str], checkout: Path
) -> None:
    null = mknod(checkout / "mynull", 3)
    code, out, err = lint(capsys, "seed", "-f", "gnu", "-o", "mynull")
    assert (code, out, err) == (1, "", "")
    assert stat.S_ISCHR(null.lstat().st_mode)
    assert [p.name for p in checkout.iterdir() if p.name.startswith(".mynull")] == []


@as_root
def test_output_onto_a_full_device_is_one_line_and_the_device_stays(
    capsys: pytest.CaptureFixture[str], checkout: Path
) -> None:
    full = mknod(checkout / "myfull", 7)
    code, out, err = lint(capsys, "seed", "-o", "myfull")
    assert (code, out) == (2, "")
    one_error_line(err, "--output myfull: cannot write: No space left on device")
    assert stat.S_ISCHR(full.lstat().st_mode)


def test_output_through_a_symlink_replaces_its_target(
    capsys: pytest.CaptureFixture[str], checkout: Path
) -> None:
    (checkout / "real.txt").write_text("old\n")
    (checkout / "link.txt").symlink_to("real.txt")
    code, _, err = lint(capsys, "seed", "-f", "gnu", "-o", "link.txt")
    assert (code, err) == (1, "")
    assert (checkout / "link.txt").is_symlink()
    assert (checkout / "real.txt").read_text().startswith("seed/compose.yaml:6:5: error:")


def test_output_through_a_dangling_symlink_creates_its_target(
    capsys: pytest.CaptureFixture[str], checkout: Path
) -> None:
    (checkout / "link.txt").symlink_to("new.txt")
    assert lint(capsys, "seed", "-o", "link.txt")[0] == 1
    assert (checkout / "link.txt").is_symlink()
    assert "UR103" in (checkout / "new.txt").read_text()


def test_output_onto_a_socket_is_refused(
    capsys: pytest.CaptureFixture[str], checkout: Path
) -> None:
    import socket

    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(checkout / "sock"))
        code, _, err = lint(capsys, "seed", "-o", "sock")
    assert code == 2
    one_error_line(err, "--output sock: a socket, not a file")
    assert stat.S_ISSOCK((checkout / "sock").lstat().st_mode)


def test_output_through_a_pipe_by_proc_self_fd(checkout: Path) -> None:
    """``-o /proc/self/fd/1`` with standard output a pipe: written through, no temporary
    file in /proc/self/fd (which nobody can create one in)."""
    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("no /proc")
    done = unroot("lint", "-f", "gnu", "-o", "/proc/self/fd/1", "seed", cwd=checkout)
    assert (done.returncode, done.stderr) == (1, "")
    assert done.stdout.startswith("seed/compose.yaml:6:5: error:")


@as_root
def test_output_keeps_the_owner_of_the_file_it_replaces(
    capsys: pytest.CaptureFixture[str], checkout: Path
) -> None:
    target = checkout / "report.txt"
    target.write_text("old\n")
    os.chown(target, 65534, 65534)
    target.chmod(0o640)
    assert lint(capsys, "seed", "-o", "report.txt")[0] == 1
    info = target.stat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (65534, 65534, 0o640)
    assert "UR103" in target.read_text()


@with_setpriv
@pytest.mark.unprivileged_reads_checkout  # nobody runs this checkout's code
def test_output_as_nobody_onto_devices_and_pipes(checkout: Path) -> None:
    """As nobody, in a directory nobody cannot write: a device (this test's own null) and
    standard output by /proc/self/fd/1 are written through, not replaced by a temporary file
    in the directory."""
    checkout.chmod(0o755)
    checkout.parent.chmod(0o755)
    mknod(checkout / "mynull", 3)
    done = unroot("lint", "-o", "mynull", "seed", user=NOBODY, cwd=checkout)
    assert (done.returncode, done.stderr) == (1, "")
    assert stat.S_ISCHR((checkout / "mynull").lstat().st_mode)
    done = unroot("lint", "-f", "gnu", "-o", "/proc/self/fd/1", "seed", user=NOBODY, cwd=checkout)
    assert (done.returncode, done.stderr) == (1, "")
    assert done.stdout.startswith("seed/compose.yaml:6:5: error:")
    done = unroot("lint", "-o", "report.txt", "seed", user=NOBODY, cwd=checkout)
    assert done.returncode == 2
    one_error_line(done.stderr, "--output report.txt: cannot write: Permission denied")


# -- --output onto an input ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "target"),
    [
        (["seed"], "seed/compose.yaml"),
        (["seed/compose.yaml"], "seed/compose.yaml"),
        (["-f", "json", "seed/compose.yaml"], "seed/Dockerfile"),  # through compose build:
        (["seed", "-c", "my.toml"], "my.toml"),  # the config named
        (["seed"], ".unroot.toml"),  # the config found
        (["seed"], "hard.yaml"),  # a hard link to an input
        (["seed"], "sym.yaml"),  # a symlink to an input
    ],
)
def test_output_never_overwrites_an_input(
    capsys: pytest.CaptureFixture[str], checkout: Path, argv: list[str], target: str
) -> None:
    (checkout / "my.toml").write_text('failure-threshold = "error"\n')
    (checkout / ".unroot.toml").write_text('failure-threshold = "error"\n')
    os.link(checkout / "seed" / "compose.yaml", checkout / "hard.yaml")
    (checkout / "sym.yaml").symlink_to("seed/compose.yaml")
    before = {p: p.read_bytes() for p in checkout.rglob("*") if p.is_file()}
    code, out, err = lint(capsys, *argv, "-o", target)
    assert (code, out) == (2, "")
    one_error_line(err, f"--output {target} is one of the inputs")
    assert {p: p.read_bytes() for p in checkout.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize(
    ("argv", "target"),
    [
        (["--stdin-filename", "seed/compose.yaml"], "seed/compose.yaml"),
        (["--stdin-filename", "seed/compose.yaml", "-"], "sym.yaml"),  # a link to that file
        (["--stdin-filename", "./seed/Dockerfile"], "seed/Dockerfile"),
    ],
)
def test_output_never_overwrites_the_file_standard_input_is_named_after(
    capsys: pytest.CaptureFixture[str], checkout: Path, argv: list[str], target: str
) -> None:
    """An editor or a hook pipes a buffer and names its file: that file is the input, which a
    report written over it would destroy (as ``-o`` naming the file itself)."""
    (checkout / "sym.yaml").symlink_to("seed/compose.yaml")
    before = {p: p.read_bytes() for p in checkout.rglob("*") if p.is_file()}
    buffer = io.StringIO((checkout / "seed" / "compose.yaml").read_text())
    out = io.StringIO()
    code = run_lint([*argv, "-o", target], stdout=out, stdin=buffer)
    err = capsys.readouterr().err
    assert (code, out.getvalue()) == (2, "")
    one_error_line(err, f"--output {target} is one of the inputs")
    assert {p: p.read_bytes() for p in checkout.rglob("*") if p.is_file()} == before


# -- standard streams ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("shell", "needle"),
    [
        ("UNROOT lint seed >&-", "unroot: standard output is closed"),
        ("UNROOT lint - <&-", "unroot: standard input is closed"),
        ("UNROOT rules >&-", "unroot: standard output is closed"),
        ("UNROOT lint -f json seed > myfull", "cannot write standard output: No space left"),
        ("UNROOT lint --select UR110 seed > myfull", "cannot write standard output: No space"),
        ("UNROOT rules > myfull", "cannot write standard output: No space left on device"),
    ],
)
def test_a_standard_stream_closed_or_full_is_one_line_and_exit_2(
    checkout: Path, shell: str, needle: str
) -> None:
    if "myfull" in shell:
        if not ROOT:
            pytest.skip("needs root (mknod)")
        mknod(checkout / "myfull", 7)
    done = unroot(shell=shell, cwd=checkout)
    assert done.returncode == 2, done.stderr
    one_error_line(done.stderr, needle)


@pytest.mark.parametrize(
    ("shell", "code"),
    [
        ("mkdir empty; UNROOT lint --no-fail empty 2> myfull", 2),  # nothing found
        ("UNROOT lint nonexistent 2> myfull", 2),
        ("UNROOT lint --no-fail --ignore UR999 seed 2> myfull > out", 0),  # a warning
        ("UNROOT lint --no-fail --ignore UR999 seed 2>&- > out", 0),
        ("UNROOT lint -t error --severity UR103=warning,UR104=warning seed 2> myfull > out", 0),
        ("UNROOT lint --ignore UR999 seed 2> myfull > out", 1),
    ],
)
def test_a_full_standard_error_does_not_change_the_exit_code(
    checkout: Path, shell: str, code: int
) -> None:
    """Nothing can be said when standard error is full or closed, but the exit code still
    tells: 2 stays 2 and a warning never turns 0 into 1 (an uncaught write error did)."""
    if not ROOT:
        pytest.skip("needs root (mknod)")
    mknod(checkout / "myfull", 7)
    done = unroot(shell=shell, cwd=checkout)
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    if "> out" in shell and code != 2:
        assert (checkout / "out").read_text().strip()


@pytest.mark.parametrize("reader", ["head -c 1", "true"])
def test_a_reader_gone_away_is_quiet(checkout: Path, reader: str) -> None:
    """``| true`` is gone before unroot writes (EPIPE); ``| head -c 1`` may be."""
    done = unroot(shell=f"UNROOT lint -f gnu seed | {reader}; echo $PIPESTATUS", cwd=checkout)
    assert done.stderr == ""
    assert done.stdout.endswith("0\n" if reader == "true" else "\n")


# -- control characters and non-UTF-8 names ------------------------------------------------
ODD = Finding(
    file="x\x1bc\x08\x08\udcff.yaml",
    line=3,
    column=1,
    rule="UR105",
    topic="bind-fails",
    severity="warning",
    message="bind /usr/bin/x\x1b[2J\x07 fails",
    fix="setcap \x1b]0;owned\x07 x",
    assumptions=("a \x1b[31m red",),
)


def test_text_escapes_control_characters_from_names_and_contents() -> None:
    shown = text.render([ODD], [ODD.file], {}, width=100)
    for raw in "\x1b\x07\x08":
        assert raw not in shown
    assert "\udcff" not in shown
    assert shown.startswith("x\\x1bc\\x08\\x08\\xff.yaml\n")
    assert "bind /usr/bin/x\\x1b[2J\\x07 fails" in shown
    assert "a \\x1b[31m red" in shown


def test_skipped_line_escapes_control_characters(
    capsys: pytest.CaptureFixture[str], checkout: Path
) -> None:
    name = "x\x1b[31mred.yaml"
    (checkout / name).write_text("a: 1\n")
    code, _, err = lint(capsys, name)
    assert code == 0
    assert "\x1b" not in err
    assert err.startswith("unroot: skipped x\\x1b[31mred.yaml: ")


def test_json_is_utf8_for_a_name_that_is_not() -> None:
    document = json_format.render([ODD], [ODD.file], {}, skipped=[("a\udcfe", "why")])
    data = json.loads(document.encode("utf-8", "strict"))
    assert data["files"] == ["x\x1bc\x08\x08\\xff.yaml"]
    assert data["findings"][0]["file"] == "x\x1bc\x08\x08\\xff.yaml"
    assert data["skipped"] == [{"path": "a\\xfe", "reason": "why"}]


def test_json_of_a_file_named_in_latin1_is_valid_utf8(checkout: Path) -> None:
    name = os.fsdecode(b"Dockerfile.\xff")
    (checkout / name).write_text("FROM debian\n")
    done = subprocess.run(
        [sys.executable, "-m", "unroot", "lint", "-f", "json", name],
        capture_output=True,
        cwd=checkout,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.decode("utf-8"))["files"] == ["Dockerfile.\\xff"]


# -- --config that is not a readable file --------------------------------------------------
@pytest.mark.parametrize(
    ("make", "needle"),
    [
        ("dir", "cfg: config file: is a directory"),
        ("fifo", "cfg: config file: a FIFO, not a regular file"),
        ("missing", "cfg: no such config file"),
    ],
)
def test_config_that_is_no_file_says_what_it_is(
    capsys: pytest.CaptureFixture[str],
    checkout: Path,
    monkeypatch: pytest.MonkeyPatch,
    make: str,
    needle: str,
) -> None:
    if make == "dir":
        (checkout / "cfg").mkdir()
    elif make == "fifo":
        os.mkfifo(checkout / "cfg")
    code, _, err = lint(capsys, "seed", "-c", "cfg")
    assert code == 2
    one_error_line(err, needle)
    monkeypatch.setenv("UNROOT_CONFIG", "cfg")
    code, _, err = lint(capsys, "seed")
    assert code == 2
    one_error_line(err, needle)


@with_setpriv
@pytest.mark.unprivileged_reads_checkout  # nobody runs this checkout's code
def test_as_nobody_a_file_in_a_closed_directory_is_permission_denied(checkout: Path) -> None:
    checkout.chmod(0o755)
    checkout.parent.chmod(0o755)
    secrets = checkout / "secrets"
    secrets.mkdir(mode=0o700)
    (secrets / "Dockerfile").write_text("FROM debian\n")
    (secrets / "c.toml").write_text("")
    (checkout / "locked.toml").write_text("")
    (checkout / "locked.toml").chmod(0o600)
    for argv, needle in (
        (["secrets/Dockerfile"], "unroot: secrets/Dockerfile: permission denied"),
        (
            ["-c", "secrets/c.toml", "seed"],
            "unroot: secrets/c.toml: config file: permission denied",
        ),
        (["-c", "locked.toml", "seed"], "unroot: locked.toml: config file: permission denied"),
    ):
        done = unroot("lint", *argv, user=NOBODY, cwd=checkout)
        assert done.returncode == 2, done.stderr
        assert done.stderr == needle + "\n"
