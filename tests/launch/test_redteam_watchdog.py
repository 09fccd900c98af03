"""Red team: SIGKILL to unroot's process group (``kill -9 %1`` in root's shell, ``kill -9 -PGID``).

The watchdog exists so that "a service's workers never outlive the supervisor" even when the
supervisor is killed with SIGKILL (supervise.py, ``_spawn_watchdog``). It ignores the terminal's
signals but stays in the supervisor's process group, so SIGKILL to that group — what the shell's
``kill -9 %1`` sends to a job — kills it together with the supervisor (or the relay): the
workers of the service then survive, holding the privileged port.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from launchutil import Service, free_port, port_is_free, private_dir

pytestmark = pytest.mark.root


def sleepers(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmdline[:2] == [b"sleep", marker.encode()]:
            found.append(int(entry.name))
    return found


@pytest.mark.parametrize("mode", [[], ["--supervise"]], ids=["relay", "supervise"])
def test_sigkill_to_unroots_process_group_takes_the_workers_down(mode: list[str]) -> None:
    marker = f"1003.{os.getpid() % 1000:03d}"
    port = free_port()
    with private_dir() as base:
        master = base / "master.sh"
        master.write_text(f"#!/bin/sh\nsleep {marker} &\nsleep {marker} &\necho up\nwait\n")
        master.chmod(0o755)
        # A terminal on stdin makes the relay (launch/terminal.py); --supervise needs none.
        terminal = os.openpty() if not mode else None
        stdin = terminal[1] if terminal is not None else subprocess.PIPE
        args = ["-l", f"127.0.0.1:{port}", *mode, "--user", "nobody", "--", str(master)]
        service = Service(args, stdin=stdin)
        try:
            assert service.proc.stdout is not None
            assert service.proc.stdout.readline().strip() == "up"
            time.sleep(0.3)
            assert len(sleepers(marker)) == 2
            os.killpg(service.pid, signal.SIGKILL)  # kill -9 %1
            service.proc.wait(timeout=10)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and sleepers(marker):
                time.sleep(0.1)
            left = sleepers(marker)
            assert not left, f"workers outlived the supervisor: {left}"
            assert port_is_free(port), f"127.0.0.1:{port} still bound"
        finally:
            for pid in sleepers(marker):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            service.stop()
            if terminal is not None:
                os.close(terminal[0])
                os.close(terminal[1])
