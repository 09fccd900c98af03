"""Red team: what the dropped supervisor (``--supervise``, and the terminal relay) keeps open.

The exec path closes every fd above 2 that unroot inherited (docs/run.md, step 11: "so nothing
unroot inherited leaks into the service"), and each generation does the same before its exec.
The supervisor itself never does: it runs for the service's whole life as the service's user and
keeps whatever root handed to unroot — here a read fd on a root-only file and a write fd on a
root-owned log. Non-dumpable, it does not give them away to ptrace, /proc/PID/fd or
pidfd_getfd, so this is defence in depth: a process of the service's user holds root's files
open (the watchdog and the janitor close everything; the supervisor should too).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from launchutil import Service, free_port, need_service_python, private_dir

pytestmark = pytest.mark.root


def test_the_supervisor_holds_no_fd_unroot_inherited() -> None:
    with private_dir() as base:
        secret = base / "secret"
        secret.write_text("root only\n")
        secret.chmod(0o600)
        log = base / "root.log"
        log.touch(mode=0o600)
        read_fd = os.open(secret, os.O_RDONLY)
        write_fd = os.open(log, os.O_WRONLY | os.O_APPEND)
        os.set_inheritable(read_fd, True)
        os.set_inheritable(write_fd, True)
        port = free_port()
        args = ["-l", f"127.0.0.1:{port}", "--supervise", "--user", "nobody", "--"]
        args += [need_service_python(), "-I", "-S", "-c", "import time; time.sleep(30)"]
        try:
            with Service(args, pass_fds=(read_fd, write_fd)) as service:
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline:
                    uids = Path(f"/proc/{service.pid}/status").read_text().split("Uid:")[1]
                    if uids.split()[:4] == ["65534"] * 4:
                        break  # dropped: the supervisor runs as nobody
                    time.sleep(0.05)
                time.sleep(0.5)
                held = service.fds()
                leaked = {fd: target for fd, target in held.items() if str(base) in target}
                assert not leaked, f"the supervisor (uid nobody) holds root's files: {leaked}"
        finally:
            os.close(read_fd)
            os.close(write_fd)
