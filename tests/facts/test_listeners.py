"""facts/listeners.py: socket tables from a fixture /proc tree and from the live kernel."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from unroot.errors import ParseError, UsageError
from unroot.facts.listeners import (
    Listener,
    listeners_below,
    parse_address,
    parse_net,
    read_listeners,
)

HEADER = (
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt"
    "   uid  timeout inode\n"
)


def row(local: str, remote: str, state: str, uid: int, inode: int) -> str:
    return (
        f"   0: {local} {remote} {state} 00000000:00000000 00:00000000 00000000"
        f" {uid:5d}        0 {inode} 1 0000000000000000 100 0 0 10 0\n"
    )


@pytest.mark.parametrize(
    ("text", "byteorder", "expected"),
    [
        ("0100007F", "little", "127.0.0.1"),
        ("7F000001", "big", "127.0.0.1"),
        ("00000000", "little", "0.0.0.0"),
        ("00000000000000000000000000000000", "little", "::"),
        ("00000000000000000000000001000000", "little", "::1"),
        ("0000000000000000FFFF00000100007F", "little", "::ffff:127.0.0.1"),
        ("0000000000000000FFFF0000B80AA8C0", "little", "::ffff:192.168.10.184"),
        ("000080FE00000000FF565002AB1C84FE", "little", "fe80::250:56ff:fe84:1cab"),
        ("00000000000000000000000000000001", "big", "::1"),
    ],
)
def test_parse_address(text: str, byteorder: str, expected: str) -> None:
    assert parse_address(text, byteorder) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["", "0100007", "XYZ0007F", "0" * 16])
def test_parse_address_refuses(text: str) -> None:
    with pytest.raises(ParseError):
        parse_address(text)


def test_parse_net_refuses_a_short_row() -> None:
    with pytest.raises(ParseError, match="tcp line 2"):
        parse_net(HEADER + "   0: 0100007F:0050\n", "tcp")


def fixture_proc(tmp_path: Path) -> str:
    """Process 100 (uid 0) listens on 127.0.0.1:80/tcp and [::ffff:127.0.0.1]:8080/tcp6; 200
    (uid 65534) shares the first socket and holds udp6 [::]:53; a connected tcp socket and a
    connected udp socket are not listeners; 300's fd directory cannot be read."""
    procfs = tmp_path / "proc"
    net = procfs / "100" / "net"
    net.mkdir(parents=True)
    (net / "tcp").write_text(
        HEADER
        + row("0100007F:0050", "00000000:0000", "0A", 0, 1001)
        + row("0100007F:0050", "0100007F:D431", "01", 0, 1002)
    )
    (net / "tcp6").write_text(
        HEADER + row("0000000000000000FFFF00000100007F:1F90", "0" * 32 + ":0000", "0A", 0, 1003)
    )
    (net / "udp").write_text(HEADER + row("0100007F:A000", "08080808:0035", "01", 0, 1004))
    (net / "udp6").write_text(HEADER + row("0" * 32 + ":0035", "0" * 32 + ":0000", "07", 0, 1005))
    links = {100: {"3": "socket:[1001]", "4": "socket:[1003]", "5": "/dev/null"}, 200: {}}
    links[200] = {"7": "socket:[1001]", "8": "socket:[1005]", "9": "pipe:[9]"}
    for pid, uid in ((100, 0), (200, 65534)):
        (procfs / str(pid) / "fd").mkdir(parents=True, exist_ok=True)
        for fd, target in links[pid].items():
            os.symlink(target, procfs / str(pid) / "fd" / fd)
        (procfs / str(pid) / "status").write_text(f"Name:\tx\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n")
    (procfs / "300").mkdir()
    (procfs / "300" / "fd").write_text("not a directory")  # ENOTDIR: skipped like a race
    (procfs / "self").symlink_to("100")
    return str(procfs)


def test_fixture_tree(tmp_path: Path) -> None:
    procfs = fixture_proc(tmp_path)
    assert read_listeners(100, procfs) == (
        Listener("udp6", "::", 53, 1005, (200,), (65534,)),
        Listener("tcp", "127.0.0.1", 80, 1001, (100, 200), (0, 65534)),
        Listener("tcp6", "::ffff:127.0.0.1", 8080, 1003, (100,), (0,)),
    )
    assert read_listeners("self", procfs, protos=("tcp",)) == (
        Listener("tcp", "127.0.0.1", 80, 1001, (100, 200), (0, 65534)),
    )
    assert [x.port for x in listeners_below(read_listeners(100, procfs), 1024)] == [53, 80]


def test_fixture_tree_without_ipv6(tmp_path: Path) -> None:
    procfs = fixture_proc(tmp_path)
    os.unlink(os.path.join(procfs, "100", "net", "tcp6"))
    os.unlink(os.path.join(procfs, "100", "net", "udp6"))
    assert [x.proto for x in read_listeners(100, procfs)] == ["tcp"]


def test_no_such_process(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such process: 999"):
        read_listeners(999, fixture_proc(tmp_path))


# -- the live kernel --------------------------------------------------------------------------
def find(listeners: tuple[Listener, ...], proto: str, port: int) -> Listener:
    found = [x for x in listeners if x.proto == proto and x.port == port]
    assert len(found) == 1, (proto, port, listeners)
    return found[0]


def test_live_sockets_of_this_process() -> None:
    with (
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp,
        socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as tcp6,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp,
        socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as udp6,
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as bound_only,
    ):
        tcp.bind(("127.0.0.1", 0))
        tcp.listen()
        tcp6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        tcp6.bind(("::ffff:127.0.0.1", 0))
        tcp6.listen()
        udp.bind(("127.0.0.1", 0))
        udp6.bind(("::1", 0))
        bound_only.bind(("127.0.0.1", 0))  # bound, not listening: not a listener
        listeners = read_listeners()
        me = os.getpid()
        for sock, proto, address in (
            (tcp, "tcp", "127.0.0.1"),
            (tcp6, "tcp6", "::ffff:127.0.0.1"),
            (udp, "udp", "127.0.0.1"),
            (udp6, "udp6", "::1"),
        ):
            found = find(listeners, proto, sock.getsockname()[1])
            assert found.address == address
            assert found.inode == os.fstat(sock.fileno()).st_ino
            assert me in found.pids
            assert os.geteuid() in found.uids
        port = bound_only.getsockname()[1]
        assert not [x for x in listeners if x.port == port and x.proto == "tcp"]
        assert me in find(read_listeners(me), "tcp", tcp.getsockname()[1]).pids


LISTEN_AS_NOBODY = """
import socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen()
print(s.getsockname()[1], flush=True)
sys.stdin.read()
"""


@pytest.mark.root
def test_live_socket_of_another_user() -> None:
    child = subprocess.Popen(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", sys.executable, "-I",
         "-S", "-c", LISTEN_AS_NOBODY],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert child.stdout is not None
        port = int(child.stdout.readline())
        found = find(read_listeners(), "tcp", port)
        assert found.pids == (child.pid,)
        assert found.uids == (65534,)
        assert found.address == "127.0.0.1"
        assert listeners_below((found,), port) == ()
        assert listeners_below((found,), port + 1) == (found,)
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=10)
        assert child.stdout is not None
        child.stdout.close()
