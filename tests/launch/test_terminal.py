"""``unroot run`` started from root's interactive shell on a real pseudo-terminal.

The service must never act on that terminal: no TIOCSTI (keystrokes root's shell would run),
no TIOCLINUX, no TIOCSPGRP, no ``/dev/tty``, no reading what root types — while Ctrl-C still
stops it and its output still reaches the terminal (launch/terminal.py). Each test runs
``bash -i`` as the session leader of a fresh pty (``pty.fork``), types the command line into it,
and reads the screen. ``dev.tty.legacy_tiocsti`` is set to 1 where the kernel has it (6.2+), so
TIOCSTI is refused for the right reason, not because the host switched it off.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shlex
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest
from launchutil import UNROOT, free_port, need_service_python, service_env

pytestmark = pytest.mark.root

TTY_PROBE = Path(__file__).resolve().parent / "tty_probe.py"
LEGACY_TIOCSTI = Path("/proc/sys/dev/tty/legacy_tiocsti")
NOBODY = 65534


@pytest.fixture(autouse=True)
def tiocsti_allowed() -> Iterator[None]:
    """Allow TIOCSTI system-wide for the test, as on Debian 12's 6.1 and every kernel < 6.2."""
    if not LEGACY_TIOCSTI.exists():
        yield
        return
    before = LEGACY_TIOCSTI.read_text()
    LEGACY_TIOCSTI.write_text("1\n")
    try:
        yield
    finally:
        LEGACY_TIOCSTI.write_text(before)


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A directory nobody can write its report to (and root its injected file, if it ran)."""
    path = Path(tempfile.mkdtemp(prefix="unroot-tty-"))
    path.chmod(0o755)
    report = path / "reports"
    report.mkdir()
    os.chown(report, NOBODY, NOBODY)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class RootShell:
    """``bash -i`` as root on a new pseudo-terminal: type into it, read its screen."""

    def __init__(self) -> None:
        env = service_env(PS1="ROOT$ ", TERM="dumb")
        pid, fd = pty.fork()
        if pid == 0:  # pragma: no cover - the child execs
            os.execve("/bin/bash", ["bash", "--norc", "--noprofile", "-i"], env)
        self.pid, self.fd = pid, fd
        self.screen = ""
        self.expect("ROOT$ ")

    def read(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.fd], [], [], 0.05)
            if ready:
                try:
                    self.screen += os.read(self.fd, 65536).decode(errors="replace")
                except OSError:
                    return

    def expect(self, pattern: str, timeout: float = 20) -> float:
        """Wait until the screen (since the last expect) matches; the seconds it took."""
        start = time.monotonic()
        deadline = start + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern if pattern != "ROOT$ " else r"ROOT\$ ", self.screen)
            if match:
                self.screen = self.screen[match.end() :]
                return time.monotonic() - start
            self.read(0.05)
        raise AssertionError(f"no {pattern!r} on the terminal in {timeout}s: {self.screen!r}")

    def type(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def close(self) -> None:
        with suppress(OSError):
            self.type("exit\n")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if os.waitpid(self.pid, os.WNOHANG)[0]:
                break
            self.read(0.05)
        else:
            with suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        os.close(self.fd)


@pytest.fixture
def shell() -> Iterator[RootShell]:
    root = RootShell()
    try:
        yield root
    finally:
        root.close()


MODES = {
    "exec": [],
    "supervise": ["--supervise", "--stop-timeout", "3"],
}


def command(mode: str, workdir: Path, *probe: str) -> str:
    port = free_port()
    argv = [*UNROOT, "run", "-l", f"127.0.0.1:{port}", *MODES.get(mode, []), "--user", "nobody"]
    argv += ["--", need_service_python(), "-I", "-S", str(TTY_PROBE)]
    argv += [str(workdir / "reports" / "report.json"), str(workdir / "injected"), *probe]
    line = shlex.join(argv)
    if mode == "detach":  # stdio away from the terminal; the session still has it
        line += f" </dev/null >{workdir / 'out.log'} 2>&1"
    return line


def assert_terminal_untouched(workdir: Path) -> dict[str, object]:
    report = json.loads((workdir / "reports" / "report.json").read_text())
    tried = report["tried"]
    assert tried["open /dev/tty"] == "ENXIO", tried
    for key, outcome in tried.items():
        assert outcome != "ok", (key, tried)
    assert {f"TIOCSTI {fd}" for fd in "012"} <= set(tried)
    assert not (workdir / "injected").exists(), "root's shell ran the injected command"
    return dict(report)


@pytest.mark.parametrize("mode", ["exec", "supervise", "detach"])
def test_the_service_cannot_type_into_roots_shell(
    shell: RootShell, workdir: Path, mode: str
) -> None:
    shell.type(command(mode, workdir) + "; echo EXIT=$?\n")
    shell.expect(r"EXIT=0")
    shell.expect("ROOT$ ")
    shell.type("echo CHECKED\n")  # anything injected would have run before this
    shell.expect("CHECKED")
    shell.expect("ROOT$ ")
    assert_terminal_untouched(workdir)


@pytest.mark.parametrize("mode", ["exec", "supervise"])
def test_what_root_types_stays_with_root(shell: RootShell, workdir: Path, mode: str) -> None:
    shell.type(command(mode, workdir, "--read", "3") + "; echo EXIT=$?\n")
    time.sleep(1)
    shell.type("typed-by-root-secret\n")
    shell.expect(r"EXIT=0")
    report = assert_terminal_untouched(workdir)
    assert "secret" not in str(report["read"])


@pytest.mark.parametrize("mode", ["exec", "supervise"])
def test_output_reaches_the_terminal_and_ctrl_c_stops_the_service(
    shell: RootShell, workdir: Path, mode: str
) -> None:
    shell.type(command(mode, workdir, "--tick") + "; echo EXIT=$?\n")
    shell.expect("probe: stdout reaches the terminal")
    shell.expect("probe: stderr reaches the terminal")
    shell.expect("tick 1")
    shell.type("\x03")
    took = shell.expect("ROOT$ ", timeout=10)
    assert took < 5
    shell.type("echo AFTER\n")
    shell.expect("AFTER")
    assert_terminal_untouched(workdir)


def test_without_pseudo_terminals_the_output_still_reaches_the_terminal(
    shell: RootShell, workdir: Path
) -> None:
    """No usable /dev/ptmx (a container without devpts; here /dev/null bound over it in a mount
    namespace of the command's own): the relay carries the output through a pipe instead."""
    inner = command("exec", workdir)
    shell.type(
        "unshare --mount sh -c "
        + shlex.quote(f"mount --bind /dev/null /dev/ptmx && exec {inner}")
        + "; echo EXIT=$?\n"
    )
    shell.expect("probe: stdout reaches the terminal")
    shell.expect(r"EXIT=0")
    assert_terminal_untouched(workdir)
