"""The supervisor's watchdog: nothing of a generation outlives the supervisor.

Each generation is a session of its own, so nothing outside it can join it. The watchdog is
told each generation's session id (and ``-SID`` once that session is empty); when its pipe
reaches end of file — the supervisor exited, or was killed with SIGKILL — it kills every process
still in those sessions, which PR_SET_PDEATHSIG (the generation's first process only) does not.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

from unroot.launch.drop import close_from
from unroot.launch.inspect import ProcInspector


def spawn(handled: tuple[int, ...]) -> int:
    """Fork the watchdog (the module doc says what it does); our end of its pipe
    (close-on-exec), or -1 if it cannot be had. ``handled``: the supervisor's signals, which
    the watchdog ignores (a session of its own and no terminal: only end of file ends it)."""
    try:
        read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
    except OSError:
        return -1
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, handled)
    try:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the watchdog never returns
            try:
                _watch(read_fd, handled)
            finally:
                os._exit(0)
    except OSError:
        os.close(read_fd)
        os.close(write_fd)
        return -1
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    os.close(read_fd)
    return write_fd


def _watch(
    read_fd: int, handled: tuple[int, ...]
) -> None:  # pragma: no cover - runs in the forked watchdog
    os.setsid()  # out of the job's process group: a kill of the whole job must not reach it
    signal.set_wakeup_fd(-1)
    for sig in (*handled, signal.SIGTSTP):
        signal.signal(sig, signal.SIG_IGN if sig != signal.SIGCHLD else signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, ())
    os.dup2(read_fd, 0)
    close_from(1)
    sessions: set[int] = set()
    pending = b""
    while True:
        try:
            chunk = os.read(0, 4096)
        except InterruptedError:
            continue
        except OSError:
            break
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if line.isdigit():
                sessions.add(int(line))
            elif line[:1] == b"-" and line[1:].isdigit():
                sessions.discard(int(line[1:]))
    inspector = ProcInspector()
    for _ in range(50):  # until a scan finds no one (a process may fork while we look)
        found = [
            pid
            for pid in inspector.pids()
            if (st := inspector.stat(pid)) is not None and st.session in sessions
        ]
        if not found:
            return
        for pid in found:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)
