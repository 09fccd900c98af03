"""Red team 2: the probe that proves the socket file is ours (sockets.py ``_pin_own_socket``).

After ``listen()`` root connects a *blocking* probe socket to its own listener through
``/proc/self/fd/N`` and only then ``accept()``s. A unix stream ``connect()`` to a listener whose
accept queue is full does not fail: it sleeps (``unix_wait_for_peer``) until the listener
accepts — and the only one who would accept is root itself, after the connect returns. So a
client that connects between ``listen()`` and the probe fills a ``backlog=0`` queue (one
connection; ``backlog=N``: N+1) and root waits forever, with the socket bound, before the drop.
The default mode is 0666: any local user may be that client (here: nobody, spinning on
``connect()`` until the file accepts), and so may an ordinary client that retries until the
socket appears. ``unroot run`` never starts the service and never exits; SIGINT does not help
either when it was started in the background (ignored).
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from launchutil import NOBODY, UNROOT, need_service_python, private_dir, service_env

pytestmark = pytest.mark.root

AS_NOBODY_TRUE = ("--user", "nobody", "--", "/bin/true")

#: Any local user: connect to PATH as soon as it accepts, hold the connection.
CLIENT = r"""
import socket, sys, time
path = sys.argv[1]
s = socket.socket(socket.AF_UNIX)
s.setblocking(False)
print("spinning", flush=True)
end = time.monotonic() + 10
while time.monotonic() < end:
    if s.connect_ex(path) == 0:
        time.sleep(10)
        break
"""


def test_a_client_connecting_during_the_probe_does_not_hang_root() -> None:
    python = need_service_python()
    with private_dir() as base:
        client_py = base / "client.py"
        client_py.write_text(CLIENT)
        client_py.chmod(0o644)
        sock = base / "app.sock"
        hangs = []
        for _ in range(60):
            if sock.exists():
                sock.unlink()
            client = subprocess.Popen(
                [python, "-I", "-S", str(client_py), str(sock)],
                user=NOBODY,
                group=NOBODY,
                extra_groups=[],
                stdout=subprocess.PIPE,
                text=True,
            )
            try:
                assert client.stdout is not None
                assert client.stdout.readline().strip() == "spinning"
                try:
                    subprocess.run(
                        [*UNROOT, "run", "-l", f"unix:{sock},backlog=0", *AS_NOBODY_TRUE],
                        env=service_env(),
                        capture_output=True,
                        timeout=8,
                        check=False,
                    )
                except subprocess.TimeoutExpired:  # run() has killed it
                    hangs.append(sock.name)
                    break
            finally:
                client.kill()
                client.wait(timeout=10)
                if client.stdout is not None:
                    client.stdout.close()
        assert not hangs, (
            "unroot run (still root, socket bound) hung for 8s in the probe's connect(): a "
            "client of uid nobody had filled the backlog=0 accept queue between listen() and "
            "the probe"
        )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-v"]))
