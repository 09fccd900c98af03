"""``unroot.activation``: the receiving side, with real fds in a real child process.

A forked child puts real sockets (TCP, UDP, TCP6, unix stream, unix datagram, and a pipe that
is no socket) on fds 3.., sets LISTEN_* as the launcher would, and execs Python, which calls
``listeners()`` and reports. sd_notify is checked with real unix datagram sockets, by path and
in the abstract namespace. Errors in LISTEN_* are checked in-process (they fail before any fd
is touched).
"""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from launchutil import SRC, ipv6_loopback, private_dir

from unroot.activation import (
    SD_LISTEN_FDS_START,
    ActivationError,
    listen_fds,
    listeners,
    notify,
    notify_ready,
)

CHILD = """
import fcntl, json, os, socket, sys
from unroot.activation import listeners
keep = os.environ.get("KEEP") == "1"
env_before = {k: v for k, v in os.environ.items() if k.startswith("LISTEN_")}
found = listeners(unset_environment=not keep)
report = {"names": {}, "env_before": env_before,
          "env_after": sorted(k for k in os.environ if k.startswith("LISTEN_")),
          "open": sorted(int(fd) for fd in os.listdir("/proc/self/fd"))}
for name, socks in found.items():
    report["names"][name] = [
        {"fd": s.fileno(), "family": socket.AddressFamily(s.family).name,
         "type": socket.SocketKind(s.type).name, "proto": s.proto,
         "cloexec": bool(fcntl.fcntl(s.fileno(), fcntl.F_GETFD) & fcntl.FD_CLOEXEC),
         "sockname": repr(s.getsockname())}
        for s in socks]
report["pipe_cloexec"] = [
    bool(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC)
    for fd in range(3, 3 + int(env_before.get("LISTEN_FDS", "0")))
    if not any(fd == e["fd"] for v in report["names"].values() for e in v)]
print(json.dumps(report))
"""


def run_child(fds: list[int], env: dict[str, str], *, pid_offset: int = 0) -> dict[str, Any]:
    """Fork; in the child move ``fds`` to 3.., set LISTEN_PID to its pid (+ offset) and exec
    Python running CHILD. Returns the child's report."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.dup2(write_end, 1)
            top = SD_LISTEN_FDS_START + len(fds)
            parked = [os.dup(fd) for fd in fds]
            parked = [_above(fd, top) for fd in parked]
            for index, fd in enumerate(parked):
                os.dup2(fd, SD_LISTEN_FDS_START + index, inheritable=True)
            os.closerange(top, 65536)
            child_env = {
                "PYTHONPATH": str(SRC),
                "PATH": "/usr/bin:/bin",
                "LISTEN_PID": str(os.getpid() + pid_offset),
                **env,
            }
            os.execve(sys.executable, [sys.executable, "-c", CHILD], child_env)
        finally:
            os._exit(127)
    os.close(write_end)
    with os.fdopen(read_end) as out:
        text = out.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, text
    return dict(json.loads(text))


def _above(fd: int, floor: int) -> int:
    import fcntl

    moved = fcntl.fcntl(fd, fcntl.F_DUPFD, floor)
    os.close(fd)
    return moved


@pytest.fixture
def sockets() -> Iterator[dict[str, socket.socket]]:
    with private_dir() as directory:
        made = {
            "web": socket.create_server(("127.0.0.1", 0)),
            "dns": socket.socket(socket.AF_INET, socket.SOCK_DGRAM),
            "uds": socket.socket(socket.AF_UNIX, socket.SOCK_STREAM),
            "dgram": socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM),
        }
        made["dns"].bind(("127.0.0.1", 0))
        made["uds"].bind(str(directory / "uds.sock"))
        made["uds"].listen()
        made["dgram"].bind(b"\0unroot-test-dgram-" + str(os.getpid()).encode())
        if ipv6_loopback():
            made["v6"] = socket.create_server(("::1", 0), family=socket.AF_INET6)
        try:
            yield made
        finally:
            for sock in made.values():
                sock.close()


def test_names_types_cloexec_and_environment(sockets: dict[str, socket.socket]) -> None:
    names = list(sockets)
    fds = [sockets[name].fileno() for name in names]
    report = run_child(fds, {"LISTEN_FDS": str(len(fds)), "LISTEN_FDNAMES": ":".join(names)})
    expected = {
        "web": ("AF_INET", "SOCK_STREAM", socket.IPPROTO_TCP),
        "dns": ("AF_INET", "SOCK_DGRAM", socket.IPPROTO_UDP),
        "uds": ("AF_UNIX", "SOCK_STREAM", 0),
        "dgram": ("AF_UNIX", "SOCK_DGRAM", 0),
        "v6": ("AF_INET6", "SOCK_STREAM", socket.IPPROTO_TCP),
    }
    assert set(report["names"]) == set(names)
    for index, name in enumerate(names):
        (entry,) = report["names"][name]
        assert (entry["family"], entry["type"], entry["proto"]) == expected[name]
        assert entry["fd"] == SD_LISTEN_FDS_START + index
        assert entry["cloexec"] is True
        assert entry["sockname"] == repr(sockets[name].getsockname())
    assert report["env_after"] == []


def test_without_names_everything_is_unknown(sockets: dict[str, socket.socket]) -> None:
    fds = [sockets["web"].fileno(), sockets["dns"].fileno()]
    report = run_child(fds, {"LISTEN_FDS": "2"})
    assert list(report["names"]) == ["unknown"]
    assert [e["fd"] for e in report["names"]["unknown"]] == [3, 4]


def test_pid_mismatch_gives_nothing_but_still_unsets(sockets: dict[str, socket.socket]) -> None:
    report = run_child([sockets["web"].fileno()], {"LISTEN_FDS": "1"}, pid_offset=1)
    assert report["names"] == {}
    assert report["env_after"] == []
    assert 3 in report["open"]  # not ours: left alone


def test_keep_environment_and_skip_non_sockets(sockets: dict[str, socket.socket]) -> None:
    read_end, write_end = os.pipe()
    try:
        fds = [sockets["web"].fileno(), read_end]
        report = run_child(fds, {"LISTEN_FDS": "2", "LISTEN_FDNAMES": "web:fifo", "KEEP": "1"})
    finally:
        os.close(read_end)
        os.close(write_end)
    assert list(report["names"]) == ["web"]
    assert report["pipe_cloexec"] == [True]  # left out, but closed on exec like the others
    assert report["env_after"] == ["LISTEN_FDNAMES", "LISTEN_FDS", "LISTEN_PID"]


# -- in-process: malformed LISTEN_* never touch an fd ----------------------------------------
@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for key in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "NOTIFY_SOCKET"):
        monkeypatch.delenv(key, raising=False)
    return monkeypatch


def test_nothing_passed(clean_env: pytest.MonkeyPatch) -> None:
    assert listeners() == {}
    assert listen_fds() == []
    clean_env.setenv("LISTEN_FDS", "1")
    assert listen_fds() == []  # no LISTEN_PID: not for us
    clean_env.setenv("LISTEN_PID", str(os.getpid()))
    clean_env.setenv("LISTEN_FDS", "0")
    assert listen_fds() == []
    assert "LISTEN_PID" not in os.environ


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"LISTEN_PID": "abc", "LISTEN_FDS": "1"}, "LISTEN_PID='abc'"),
        ({"LISTEN_PID": "0", "LISTEN_FDS": "1"}, "not a pid"),
        ({"LISTEN_PID": "SELF", "LISTEN_FDS": "-1"}, "LISTEN_FDS='-1'"),
        ({"LISTEN_PID": "SELF", "LISTEN_FDS": "2", "LISTEN_FDNAMES": "a"}, "1 names for"),
        ({"LISTEN_PID": "SELF", "LISTEN_FDS": "1", "LISTEN_FDNAMES": "a:b"}, "2 names for"),
    ],
)
def test_malformed(clean_env: pytest.MonkeyPatch, env: dict[str, str], fragment: str) -> None:
    for key, value in env.items():
        clean_env.setenv(key, str(os.getpid()) if value == "SELF" else value)
    with pytest.raises(ActivationError) as info:
        listeners()
    assert fragment in str(info.value)
    assert not any(key.startswith("LISTEN_") for key in os.environ)


# -- sd_notify -----------------------------------------------------------------------------------
def test_notify_by_path_and_abstract(clean_env: pytest.MonkeyPatch) -> None:
    assert notify_ready() is False  # no NOTIFY_SOCKET: nothing to do
    with private_dir() as directory:
        path = directory / "notify"
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
            receiver.bind(str(path))
            receiver.settimeout(5)
            clean_env.setenv("NOTIFY_SOCKET", str(path))
            assert notify_ready() is True
            assert receiver.recv(4096) == b"READY=1"
            assert notify("STATUS=serving\nMAINPID=42", unset_environment=True) is True
            assert receiver.recv(4096) == b"STATUS=serving\nMAINPID=42"
            assert "NOTIFY_SOCKET" not in os.environ
    name = f"unroot-test-notify-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.bind("\0" + name)
        receiver.settimeout(5)
        clean_env.setenv("NOTIFY_SOCKET", "@" + name)
        assert notify_ready() is True
        assert receiver.recv(4096) == b"READY=1"


def test_notify_errors(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("NOTIFY_SOCKET", "relative/path")
    with pytest.raises(ActivationError, match="not a socket path"):
        notify_ready()
    clean_env.setenv("NOTIFY_SOCKET", "/nonexistent/notify.sock")
    with pytest.raises(ActivationError, match=r"cannot notify /nonexistent/notify\.sock"):
        notify_ready()
    clean_env.setenv("NOTIFY_SOCKET", "")
    assert notify_ready() is False


def test_the_module_is_light() -> None:
    """`import unroot.activation` pulls in nothing heavy (servers import it at start-up); of
    the model only its error classes (``model/errors.py``, re-exported by ``unroot.errors``)."""
    import subprocess

    code = (
        "import sys, unroot.activation\n"
        "print([m for m in ('argparse', 'dataclasses', 'typing', 'json') if m in sys.modules]"
        " + sorted(m for m in sys.modules if m.startswith('unroot.model.')"
        " and m != 'unroot.model.errors'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
    assert Path(SRC, "unroot", "activation.py").exists()
