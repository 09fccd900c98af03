"""``--ready tcp`` evidence: who waits on the listener, and who holds a connection accepted
from it.

The socket tables are parsed from proc(5) texts and sock_diag(7) bytes written here; the
``ProcInspector`` reads fixture /proc trees (its root is injectable), and then the live kernel,
where both sources of the TCP table must agree.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from unroot.launch import socktable
from unroot.launch.inspect import ProcInspector
from unroot.launch.socktable import (
    InetSocket,
    accepted,
    accepted_unix,
    parse_diag,
    parse_proc_tcp,
)

LOOP = bytes([127, 0, 0, 1])
TCP_HEAD = (
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
    "timeout inode\n"
)


def tcp_row(n: int, local: str, remote: str, state: str, inode: int) -> str:
    return (
        f"{n:4d}: {local} {remote} {state} 00000000:00000000 00:00000000 00000000 65534 "
        f"0 {inode} 1 0000000000000000 100 0 0 10 0\n"
    )


# 127.0.0.1:80 listening (500); a connection it accepted (501) and the client's end (502); a
# TIME_WAIT left by an earlier one (no inode); another service's connection on port 8080 (503).
TCP = TCP_HEAD + "".join(
    [
        tcp_row(0, "0100007F:0050", "00000000:0000", "0A", 500),
        tcp_row(1, "0100007F:0050", "0100007F:D431", "01", 501),
        tcp_row(2, "0100007F:D431", "0100007F:0050", "01", 502),
        tcp_row(3, "0100007F:0050", "0100007F:D000", "06", 0),
        tcp_row(4, "0100007F:1F90", "0100007F:D432", "01", 503),
    ]
)
# [::]:80, dual-stack (600): an IPv4 client arrives as ::ffff:127.0.0.1 (601); CLOSE_WAIT (602)
# is still held; a connection on another port (603) is not the listener's.
V4MAPPED = "0000000000000000FFFF00000100007F"
TCP6 = TCP_HEAD + "".join(
    [
        tcp_row(0, "00000000000000000000000000000000:0050", "0" * 32 + ":0000", "0A", 600),
        tcp_row(1, f"{V4MAPPED}:0050", f"{V4MAPPED}:9C40", "01", 601),
        tcp_row(2, f"{V4MAPPED}:0050", f"{V4MAPPED}:9C41", "08", 602),
        tcp_row(3, f"{V4MAPPED}:0051", f"{V4MAPPED}:9C42", "01", 603),
    ]
)
UNIX = (
    "Num       RefCount Protocol Flags    Type St Inode Path\n"
    "0000000000000000: 00000002 00000000 00010000 0001 01 700 /run/app.sock\n"
    "0000000000000000: 00000003 00000000 00000000 0001 03 701 /run/app.sock\n"
    "0000000000000000: 00000003 00000000 00000000 0001 03 702\n"
    "0000000000000000: 00000003 00000000 00000000 0001 03 703 /run/other.sock\n"
    "0000000000000000: 00000002 00000000 00000000 0002 01 704 /run/app.sock.dgram\n"
)


# -- the tables ---------------------------------------------------------------------------------
def test_proc_tcp_rows() -> None:
    rows = parse_proc_tcp(TCP)
    assert rows[0] == InetSocket(socktable.TCP_LISTEN, LOOP, 80, 500)
    assert [row.inode for row in rows] == [500, 501, 502, 503]  # TIME_WAIT has no holder
    six = parse_proc_tcp(TCP6)
    assert six[1].address == bytes(10) + b"\xff\xff" + LOOP


@pytest.mark.parametrize(
    ("table", "listener", "found"),
    [
        (TCP, 500, {501}),  # the same address and port; not the client's end nor port 8080
        (TCP6, 600, {601, 602}),  # wildcard: the port decides; CLOSE_WAIT is still held
        (TCP, 600, None),  # not in this table
        (TCP6, 601, None),  # a connection is no listener
    ],
)
def test_accepted_tcp(table: str, listener: int, found: set[int] | None) -> None:
    assert accepted(parse_proc_tcp(table), listener) == found


@pytest.mark.parametrize(
    ("listener", "found"),
    [(700, {701}), (701, None), (704, None), (999, None)],  # the path, stream, connected
)
def test_accepted_unix(listener: int, found: set[int] | None) -> None:
    assert accepted_unix(UNIX, listener) == found


def diag_message(state: int, address: bytes, port: int, inode: int) -> bytes:
    family = socket.AF_INET if len(address) == 4 else socket.AF_INET6
    body = struct.pack("=BBBB", family, state, 0, 0) + port.to_bytes(2, "big") + bytes(2)
    body += address.ljust(16, b"\0") + bytes(16) + bytes(4 + 8)
    body += struct.pack("=IIIII", 0, 0, 0, 65534, inode)
    return struct.pack("=IHHII", 16 + len(body), socktable.SOCK_DIAG_BY_FAMILY, 2, 1, 0) + body


def test_sock_diag_messages() -> None:
    done = struct.pack("=IHHIIi", 20, socktable.NLMSG_DONE, 2, 1, 0, 0)
    data = diag_message(10, LOOP, 80, 500) + diag_message(1, LOOP, 80, 501)
    assert parse_diag(data) == (
        [InetSocket(10, LOOP, 80, 500), InetSocket(1, LOOP, 80, 501)],
        False,
    )
    assert parse_diag(diag_message(1, LOOP, 80, 501) + done) == (
        [InetSocket(1, LOOP, 80, 501)],
        True,
    )
    error = struct.pack("=IHHIIi", 36, socktable.NLMSG_ERROR, 0, 1, 0, -errno.EINVAL) + bytes(16)
    with pytest.raises(OSError, match="sock_diag") as raised:
        parse_diag(error)
    assert raised.value.errno == errno.EINVAL


def test_sock_diag_request() -> None:
    request = socktable.diag_request(socket.AF_INET6, [socktable.TCP_LISTEN, 1])
    length, kind, flags, _, _ = struct.unpack_from("=IHHII", request)
    assert (length, kind, flags) == (len(request), 20, 0x301)
    assert struct.unpack_from("=BBBBI", request, 16) == (10, 6, 0, 0, 1 << 10 | 1 << 1)


# -- fixture /proc trees ------------------------------------------------------------------------
def fake_proc(tmp_path: Path, fds: dict[int, str], **files: str) -> str:
    """A /proc with process 100 holding ``fds`` and the supervisor's net tables ``files``."""
    proc = tmp_path / "proc"
    (proc / "100" / "fd").mkdir(parents=True)
    (proc / "100" / "fdinfo").mkdir()
    (proc / "100" / "task" / "100").mkdir(parents=True)
    (proc / "100" / "task" / "100" / "syscall").write_text("running\n")
    (proc / "self" / "net").mkdir(parents=True)
    for name, text in files.items():
        (proc / "self" / "net" / name).write_text(text)
    for fd, link in fds.items():
        (proc / "100" / "fd" / str(fd)).symlink_to(link)
    return str(proc)


@pytest.mark.parametrize(
    ("fds", "ready"),
    [
        ({3: "socket:[500]", 7: "socket:[501]"}, True),  # busy: it holds an accepted connection
        ({3: "socket:[500]", 7: "socket:[502]"}, False),  # the client's end is not accepted
        ({3: "socket:[500]", 7: "pipe:[9]"}, False),
        ({7: "socket:[501]"}, True),  # it closed its copy of the listener: still serving
    ],
)
def test_serving_by_accepted_connection(tmp_path: Path, fds: dict[int, str], ready: bool) -> None:
    proc = fake_proc(tmp_path, fds, tcp=TCP, tcp6=TCP_HEAD, unix=UNIX)
    inspector = ProcInspector(proc, "x86_64", sock_diag=False)
    assert inspector.serving([100], 500) is ready
    assert inspector.waits_on(100, 500) is False


def test_serving_finds_the_listeners_table(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, {7: "socket:[601]", 8: "socket:[701]"}, tcp=TCP, tcp6=TCP6)
    (Path(proc) / "self" / "net" / "unix").write_text(UNIX)
    inspector = ProcInspector(proc, "x86_64", sock_diag=False)
    assert inspector.serving([100], 600)
    assert inspector.serving([100], 700)
    assert not inspector.serving([100], 999)
    assert inspector._tables == {600: "tcp6", 700: "unix"}  # then read only that table


def test_serving_by_waiting(tmp_path: Path) -> None:
    """The cheap evidence first: in an epoll set (fdinfo), or blocked in accept(2) on it."""
    proc = fake_proc(tmp_path, {3: "socket:[500]", 5: "anon_inode:[eventpoll]"})
    fdinfo = Path(proc) / "100" / "fdinfo" / "5"
    fdinfo.write_text(
        "pos:\t0\nflags:\t02\ntfd:        3 events:       19 data: 3  pos:0 ino:1f4\n"
    )
    assert ProcInspector(proc, "x86_64", sock_diag=False).serving([100], 500)  # 0x1f4 == 500
    fdinfo.write_text("pos:\t0\nflags:\t02\n")
    syscall = Path(proc) / "100" / "task" / "100" / "syscall"
    syscall.write_text("43 0x3 0x0 0x0 0x0 0x0 0x0 0x7ffc 0x7f00\n")  # accept(3, ...)
    assert ProcInspector(proc, "x86_64", sock_diag=False).serving([100], 500)
    syscall.write_text("43 0x4 0x0 0x0 0x0 0x0 0x0 0x7ffc 0x7f00\n")  # accept on another fd
    assert not ProcInspector(proc, "x86_64", sock_diag=False).serving([100], 500)


# -- the live kernel ----------------------------------------------------------------------------
HOLDER = """\
import socket, sys, time
listener = socket.socket(fileno=int(sys.argv[1]))
conn, _ = listener.accept()
listener.close()
print("accepted", flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0", "::1", "::"])
@pytest.mark.parametrize("sock_diag", [True, False], ids=["sock_diag", "proc"])
def test_live_process_holding_an_accepted_connection(host: str, sock_diag: bool) -> None:
    """A child accepts one connection, closes its listener and sleeps: it waits on nothing, but
    holds a connection accepted from the listener.  The client's end, held here, is not."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as listener:
        try:
            listener.bind((host, 0))
        except OSError:
            pytest.skip(f"cannot bind {host}")
        listener.listen()
        inode = os.fstat(listener.fileno()).st_ino
        child = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(listener.fileno())],
            pass_fds=[listener.fileno()],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            target = "::1" if family == socket.AF_INET6 else "127.0.0.1"
            with socket.create_connection((target, listener.getsockname()[1])):
                assert child.stdout is not None
                assert child.stdout.readline() == "accepted\n"
                inspector = ProcInspector(sock_diag=sock_diag)
                assert inspector.serving([child.pid], inode)
                assert not inspector.waits_on(child.pid, inode)
                assert not inspector.serving([os.getpid()], inode)  # only the client's end
        finally:
            child.kill()
            child.wait()
            if child.stdout is not None:
                child.stdout.close()


def test_live_unix_listener(tmp_path: Path) -> None:
    path = str(tmp_path / "app.sock")
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(path)
        listener.listen()
        inode = os.fstat(listener.fileno()).st_ino
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(path)
            conn, _ = listener.accept()
            with conn:
                inspector = ProcInspector()
                assert os.fstat(conn.fileno()).st_ino in inspector.accepted(inode)
                assert os.fstat(client.fileno()).st_ino not in inspector.accepted(inode)


def test_sock_diag_agrees_with_proc() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        inode = os.fstat(listener.fileno()).st_ino
        with socket.create_connection(listener.getsockname()):
            conn, _ = listener.accept()
            with conn:
                time.sleep(0.01)
                from_diag = ProcInspector().accepted(inode)
                from_proc = ProcInspector(sock_diag=False).accepted(inode)
                assert from_diag == from_proc == {os.fstat(conn.fileno()).st_ino}
