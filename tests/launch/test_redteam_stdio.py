"""Red team: ``unroot run`` started with fd 1 or fd 2 closed.

Python sets ``sys.stdout`` / ``sys.stderr`` to None when it starts with that fd closed. The exec
path checks for that (``drop.exec_service``: "None when unroot started with that fd closed"), but
``supervise()`` — used by ``--supervise`` and by the terminal relay — calls
``sys.stdout.flush()`` and ``sys.stderr.flush()`` unconditionally: after the sockets are bound and
the privileges dropped, unroot dies with ``AttributeError: 'NoneType' object has no attribute
'flush'`` (a traceback, exit 1, the service never started). From root's terminal that is simply
``unroot run ... >&-`` (a terminal on fds 0 and 2: the relay). With fd 2 closed it exits 1
without a word.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time
from collections.abc import Callable

import pytest
from launchutil import UNROOT, free_port, service_env

pytestmark = pytest.mark.root


def close_fd(fd: int) -> Callable[[], None]:
    """A preexec_fn: start the child with ``fd`` closed."""

    def close() -> None:
        os.close(fd)

    return close


@pytest.mark.parametrize("closed", [1, 2])
def test_supervise_with_a_closed_standard_fd_runs_the_service(closed: int) -> None:
    port = free_port()
    marker = f"/tmp/unroot-redteam-ran-{os.getpid()}-{closed}"
    args = [*UNROOT, "run", "-l", f"127.0.0.1:{port}", "--supervise", "--restart", "never"]
    args += ["--user", "nobody", "--", "/bin/sh", "-c", f"echo ran > {marker}"]
    try:
        result = subprocess.run(
            args,
            env=service_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL if closed == 2 else None,
            stderr=subprocess.PIPE if closed == 1 else None,
            preexec_fn=close_fd(closed),
            timeout=30,
            check=False,
        )
        stderr = (result.stderr or b"").decode(errors="replace")
        assert "Traceback" not in stderr, stderr
        assert result.returncode == 0, (result.returncode, stderr)
        assert os.path.exists(marker), "the service never ran"
    finally:
        if os.path.exists(marker):
            os.unlink(marker)


def test_relay_from_a_terminal_with_stdout_closed_runs_the_service() -> None:
    """``unroot run ... >&-`` typed at root's terminal: fds 0 and 2 are the terminal."""
    port = free_port()
    master, slave = pty.openpty()
    args = [*UNROOT, "run", "-l", f"127.0.0.1:{port}", "--user", "nobody", "--"]
    args += ["/bin/sh", "-c", "echo service-ran >&2"]
    try:
        proc = subprocess.Popen(
            args,
            env=service_env(),
            stdin=slave,
            stdout=subprocess.DEVNULL,
            stderr=slave,
            preexec_fn=close_fd(1),  # noqa: PLW1509 - start with fd 1 closed
            start_new_session=True,
        )
        os.close(slave)
        screen = b""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    chunk = b""
                screen += chunk
                if not chunk and proc.poll() is not None:
                    break
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=10)
        text = screen.decode(errors="replace")
        assert "Traceback" not in text, text
        assert "service-ran" in text, text
        assert code == 0, (code, text)
    finally:
        os.close(master)


@pytest.mark.parametrize("stderr", ["closed", "/dev/full"])
def test_a_warning_on_an_unwritable_stderr_does_not_stop_the_launch(stderr: str) -> None:
    """``--keep-cap`` of a root-equivalent capability warns with a bare os.write(2, ...): with
    fd 2 closed (EBADF) or full (ENOSPC) that raises out of handle() and unroot exits 1 before
    anything is bound — the service never runs, and nothing says why."""
    marker = f"/tmp/unroot-redteam-warned-{os.getpid()}-{stderr.strip('/').replace('/', '-')}"
    args = [*UNROOT, "run", "--keep-cap", "sys_admin", "--user", "nobody", "--"]
    args += ["/bin/sh", "-c", f"echo ran > {marker}"]
    with open(os.devnull if stderr == "closed" else stderr, "wb") as err:
        try:
            result = subprocess.run(
                args,
                env=service_env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                preexec_fn=close_fd(2) if stderr == "closed" else None,
                timeout=30,
                check=False,
            )
            assert result.returncode == 0, result.returncode
            assert os.path.exists(marker), "the service never ran"
        finally:
            if os.path.exists(marker):
                os.unlink(marker)
