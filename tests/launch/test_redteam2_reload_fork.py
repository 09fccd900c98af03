"""Red team 2: a reload that cannot fork (or open a pipe) takes the serving generation down.

``Supervisor._start`` calls ``os.pipe2`` and ``os.fork`` (and, with ``--ready notify``, opens a
socket) without catching their errors. On a reload, EAGAIN from fork(2) — the service's uid at
its RLIMIT_NPROC (it counts every process of that uid on the host: nobody is shared), a cgroup's
``pids.max`` (systemd ``TasksMax=``, ``docker run --pids-limit``) reached under load — or EMFILE
escapes ``run()``: the supervisor dies with a traceback, its ``finally`` closes the watchdog's
pipe, and the watchdog SIGKILLs the generation that was serving. docs/supervise.md: "On a
reload, the old generation keeps serving"; "A lowered RLIMIT_NOFILE ... makes the next reload
fail". The limit is lowered here with prlimit(1) by a process of the supervisor's uid (which
docs/supervise.md says may do that) — standing for a host where the uid's processes are at the
limit.
"""

from __future__ import annotations

import socket
import sys
import time

import pytest
from launchutil import as_nobody, free_port
from test_supervise import PYTHON, Supervised, scratch, script

pytestmark = pytest.mark.root

SERVER = """\
import socket
listener = socket.socket(fileno=3)
while True:
    conn, _ = listener.accept()
    conn.sendall(b"hi\\n")
    conn.close()
"""


def hello(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        return conn.recv(16)


@pytest.mark.parametrize("limit", ["--nproc=1:1", "--nofile=4:4"], ids=["nproc", "nofile"])
def test_a_reload_that_cannot_start_keeps_the_old_generation_serving(limit: str) -> None:
    port = free_port()
    with scratch() as directory:
        server = script(directory, "server.py", SERVER)
        args = ["-l", f"127.0.0.1:{port}", "--ready", "none", "--user", "nobody", "--"]
        with Supervised([*args, PYTHON, "-I", "-S", server]) as sup:
            sup.gen_pid(1)
            deadline = time.monotonic() + 10
            while True:
                try:
                    assert hello(port) == b"hi\n"
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            lowered = as_nobody(["prlimit", "--pid", str(sup.pid), limit], cwd="/")
            assert lowered.returncode == 0, lowered.stderr
            sup.signal(1)  # SIGHUP: reload
            time.sleep(2)
            alive = sup.proc.poll() is None
            try:
                answer = hello(port)
            except OSError as exc:
                answer = repr(exc).encode()
            log = "\n".join(sup.lines[-6:])
            assert alive, f"the supervisor died on a reload it could not start:\n{log}"
            assert answer == b"hi\n", f"generation 1 no longer serves: {answer!r}\n{log}"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-v"]))
