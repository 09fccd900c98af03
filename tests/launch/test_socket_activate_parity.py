"""Protocol parity: the same probe under `systemd-socket-activate` and under `unroot run`.

systemd-socket-activate (Debian package ``systemd``) binds, waits for the first connection (or
datagram), then forks and execs the service; unroot run binds, drops and execs at once. Both
must hand over the same thing: LISTEN_FDS, LISTEN_PID equal to the service's own pid,
LISTEN_FDNAMES, and fds 3.. with the same family, type, protocol, address, listening state,
SO_REUSEADDR, blocking mode and FD_CLOEXEC cleared — and unroot.activation.listeners() must make
the same of both. Two documented differences: without names, systemd-socket-activate sets no
LISTEN_FDNAMES and unroot sets ``unknown`` for each (as systemd's socket units do; both read
as ``unknown`` through sd_listen_fds_with_names(3) and listeners()); and unroot sets
SO_REUSEADDR on TCP sockets only, not on UDP ones.
"""

from __future__ import annotations

import json
import select
import shutil
import socket
import subprocess
import time
from typing import Any

import pytest
from launchutil import (
    PROBE,
    SRC,
    Service,
    free_port,
    need_service_python,
    service_env,
)

pytestmark = pytest.mark.root

SSA = shutil.which("systemd-socket-activate")


def probe(*extra: str) -> list[str]:
    return [need_service_python(), "-I", "-S", str(PROBE), "--activation", str(SRC), *extra]


def under_systemd(listens: list[str], options: list[str], *, datagram: bool) -> dict[str, Any]:
    argv = [str(SSA)]
    for listen in listens:
        argv += ["-l", listen]
    argv += options + probe()
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env=service_env(),
    )
    try:
        host, _, port = listens[0].rpartition(":")
        assert proc.stdout is not None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            # The first connection (or datagram) makes systemd-socket-activate exec the probe;
            # a datagram sent before it has bound is lost, so keep knocking until it answers.
            try:
                if datagram:
                    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
                        client.sendto(b"x", (host, int(port)))
                else:
                    socket.create_connection((host, int(port)), timeout=2).close()
            except OSError:
                pass
            if select.select([proc.stdout], [], [], 0.2)[0]:
                break
        line = proc.stdout.readline()
        assert line.startswith("{"), (line, proc.stderr.read() if proc.stderr else "")
        return dict(json.loads(line))
    finally:
        proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def under_unroot(specs: list[str]) -> dict[str, Any]:
    argv = []
    for spec in specs:
        argv += ["-l", spec]
    with Service([*argv, "--user", "nobody", "--", *probe()]) as service:
        report = service.report()
        assert report["pid"] == service.pid
        return report


def comparable(report: dict[str, Any]) -> dict[str, Any]:
    fds = [{k: v for k, v in fd.items() if k != "sockname"} for fd in report["fds"]]
    return {
        "LISTEN_FDS": report["env"].get("LISTEN_FDS"),
        "pid_matches": report["env"].get("LISTEN_PID") == str(report["pid"]),
        "fds": fds,
        "listeners": report["listeners"],
        "env_after": report["env_after"],
    }


@pytest.mark.skipif(SSA is None, reason="systemd-socket-activate (package systemd) not installed")
@pytest.mark.parametrize("named", [True, False])
def test_stream_sockets_match(named: bool) -> None:
    a, b, c, d = (free_port(2000, 60000) for _ in range(4))
    options = ["--fdname=web:admin"] if named else []
    theirs = under_systemd([f"127.0.0.1:{a}", f"127.0.0.1:{b}"], options, datagram=False)
    prefix = ("web=", "admin=") if named else ("", "")
    ours = under_unroot([f"{prefix[0]}127.0.0.1:{c}", f"{prefix[1]}127.0.0.1:{d}"])
    assert comparable(ours) == comparable(theirs)
    assert [fd["sockname"] for fd in theirs["fds"]] == [
        repr(("127.0.0.1", a)),
        repr(("127.0.0.1", b)),
    ]
    assert [fd["sockname"] for fd in ours["fds"]] == [
        repr(("127.0.0.1", c)),
        repr(("127.0.0.1", d)),
    ]
    assert theirs["fds"][0]["cloexec"] is False
    assert theirs["fds"][0]["reuseaddr"] == 1
    if named:
        assert ours["env"]["LISTEN_FDNAMES"] == theirs["env"]["LISTEN_FDNAMES"] == "web:admin"
        assert set(ours["listeners"]) == {"web", "admin"}
    else:
        assert "LISTEN_FDNAMES" not in theirs["env"]
        assert ours["env"]["LISTEN_FDNAMES"] == "unknown:unknown"
        assert list(ours["listeners"]) == ["unknown"]


@pytest.mark.skipif(SSA is None, reason="systemd-socket-activate (package systemd) not installed")
def test_datagram_sockets_match() -> None:
    a, b = free_port(2000, 60000, udp=True), free_port(2000, 60000, udp=True)
    theirs = under_systemd([f"127.0.0.1:{a}"], ["--datagram", "--fdname=dns"], datagram=True)
    ours = under_unroot([f"dns=udp://127.0.0.1:{b}"])
    # The one deliberate difference: systemd sets SO_REUSEADDR on UDP sockets too, unroot only
    # on TCP — on a UDP socket it lets any other socket with it bind the same port and share
    # (or take) its datagrams, and a datagram socket has no TIME_WAIT to get past.
    assert (ours["fds"][0].pop("reuseaddr"), theirs["fds"][0].pop("reuseaddr")) == (0, 1)
    assert comparable(ours) == comparable(theirs)
    assert ours["fds"][0]["type"] == "SOCK_DGRAM"
