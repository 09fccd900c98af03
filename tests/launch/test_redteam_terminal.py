"""Red team: job control and a paused terminal with the relay (launch/terminal.py).

Both run ``bash -i`` as root on a fresh pty (test_terminal.RootShell) and ``unroot run`` from it,
so the service's output goes through the relay.

* Ctrl-Z sends SIGTSTP to the foreground job, which holds only the relay: the relay stops, the
  shell says "Stopped" — and the service, in a session of its own, keeps running, unseen, until
  its output fills the pseudo-terminal and it blocks in write(2) with its listeners open. sudo's
  ``use_pty`` and ``su --pty``, which the module doc cites, suspend the command instead.
* Without --supervise the relay still SIGKILLs the service 10s after Ctrl-C (the supervisor's
  stop timeout, which --stop-timeout cannot change without --supervise): started from a terminal,
  a service with a long graceful stop is killed; the same command without a terminal is not.
* While root's terminal is paused (Ctrl-S / XOFF, or an ssh session whose peer stopped reading),
  the relay blocks in write(2) to it; the signal handler only records the signal, and the write is
  retried (PEP 475), so SIGTERM to unroot (``kill``, ``systemctl stop``) is never forwarded: the
  service keeps running until the terminal drains.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from launchutil import UNROOT, free_port, need_service_python
from test_terminal import RootShell

pytestmark = pytest.mark.root

TICKER = (
    "import time\nn = 0\nwhile True:\n    print('tick', n, flush=True); n += 1; time.sleep(0.2)\n"
)


@pytest.fixture
def shell() -> Iterator[RootShell]:
    root = RootShell()
    try:
        yield root
    finally:
        root.close()


@pytest.fixture
def ticker() -> Iterator[Path]:
    base = Path("/tmp") / f"unroot-redteam-ticker-{os.getpid()}"
    base.mkdir(exist_ok=True)
    base.chmod(0o755)
    script = base / "ticker.py"
    script.write_text(TICKER)
    script.chmod(0o644)
    try:
        yield script
    finally:
        script.unlink()
        base.rmdir()


def processes(marker: str) -> dict[int, str]:
    """pid -> state of every service process: its command line holds ``marker``, not unroot's."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if marker in cmdline and "unroot run" not in cmdline:
            found[int(entry.name)] = stat[stat.rindex(")") + 2]
    return found


def relay_pid(port: int) -> int:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        parent = Path(f"/proc/{ppid}/cmdline")
        if f"127.0.0.1:{port}".encode() in cmdline and b"bash" in _read(parent):
            return int(entry.name)
    raise AssertionError("no relay found")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def kill_all(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("mode", [[], ["--supervise"]], ids=["relay", "supervise"])
def test_ctrl_z_suspends_the_service_too(shell: RootShell, ticker: Path, mode: list[str]) -> None:
    port = free_port()
    argv = [*UNROOT, "run", "-l", f"127.0.0.1:{port}", *mode, "--user", "nobody", "--"]
    argv += [need_service_python(), "-I", "-S", str(ticker)]
    shell.type(" ".join(argv) + "\n")
    shell.expect("tick 2")
    try:
        shell.type("\x1a")  # Ctrl-Z
        shell.expect("Stopped")
        time.sleep(0.5)
        states = processes(str(ticker))
        assert states, "the service is gone"
        assert set(states.values()) == {"T"}, (
            f"the shell says Stopped, but the service keeps running: {states}"
        )
    finally:
        kill_all(list(processes(str(ticker))))
        shell.type("kill -9 %1\n")


def test_sigterm_reaches_the_service_while_roots_terminal_is_paused(
    shell: RootShell, ticker: Path
) -> None:
    port = free_port()
    argv = [*UNROOT, "run", "-l", f"127.0.0.1:{port}", "--user", "nobody", "--"]
    argv += [need_service_python(), "-I", "-S", str(ticker)]
    shell.type("stty ixon\n")
    shell.type(" ".join(argv) + "\n")
    shell.expect("tick 1")
    relay = relay_pid(port)
    try:
        shell.type("\x13")  # Ctrl-S: XOFF, the terminal stops taking output
        time.sleep(1)
        os.kill(relay, signal.SIGTERM)  # kill / systemctl stop
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and processes(str(ticker)):
            time.sleep(0.1)
        left = processes(str(ticker))
        assert not left, f"SIGTERM to unroot did not stop the service in 5s: {left}"
    finally:
        kill_all(list(processes(str(ticker))))
        shell.type("\x11")  # Ctrl-Q


SLOW_STOP = """\
import signal, sys, time
def stop(signum, frame):
    print("stopping gracefully", flush=True)
    time.sleep(12)  # a database flushing its buffers
    print("stopped cleanly", flush=True)
    sys.exit(0)
signal.signal(signal.SIGINT, stop)
print("ready", flush=True)
while True:
    time.sleep(1)
"""


def test_the_relay_lets_the_service_finish_its_graceful_stop(shell: RootShell) -> None:
    """Without --supervise there is no --stop-timeout (it needs --supervise), yet the relay
    SIGKILLs the service 10s (Timing.stop_timeout) after Ctrl-C: the same command without a
    terminal lets it finish."""
    base = Path("/tmp") / f"unroot-redteam-slow-{os.getpid()}"
    base.mkdir(exist_ok=True)
    base.chmod(0o755)
    script = base / "slow.py"
    script.write_text(SLOW_STOP)
    script.chmod(0o644)
    port = free_port()
    argv = [*UNROOT, "run", "-l", f"127.0.0.1:{port}", "--user", "nobody", "--"]
    argv += [need_service_python(), "-I", "-S", str(script)]
    try:
        shell.type(" ".join(argv) + "; echo EXIT=$?\n")
        shell.expect("ready")
        shell.type("\x03")
        shell.expect("stopping gracefully")
        shell.expect("stopped cleanly", timeout=20)  # not "SIGKILL" and "Killed" after 10s
        shell.expect("EXIT=0")
    finally:
        kill_all(list(processes(str(script))))
        script.unlink()
        base.rmdir()
