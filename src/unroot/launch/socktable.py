"""The kernel's socket tables: which connections were accepted from a listener.

``--ready tcp`` counts a generation as serving when one of its processes holds a connection
accepted from the listener.  For TCP, /proc/net/tcp (proc(5)) answers, but it also lists every
TIME_WAIT socket: after a busy minute of ``Connection: close`` traffic that is tens of
thousands of lines, and reading them (tens of milliseconds) takes longer than a short request
lives, so the connection seen in a process's fds is gone by the time its line is read.  A
sock_diag(7) dump (what ``ss`` uses; no privilege needed) has the kernel skip the states
nobody asked for and returns only the connected sockets.  /proc/net/tcp is the fallback where
netlink is not available.  Unix stream sockets have no TIME_WAIT: /proc/net/unix is read.

The parsers are pure; :func:`dump` is the one function that talks to the kernel.
"""

from __future__ import annotations

import os
import socket
import struct
import sys
from collections.abc import Iterable
from typing import NamedTuple

NETLINK_SOCK_DIAG = 4  # include/uapi/linux/netlink.h
SOCK_DIAG_BY_FAMILY = 20  # include/uapi/linux/sock_diag.h
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300

# include/net/tcp_states.h
TCP_ESTABLISHED = 1
TCP_FIN_WAIT1 = 4
TCP_FIN_WAIT2 = 5
TCP_TIME_WAIT = 6
TCP_CLOSE_WAIT = 8
TCP_LAST_ACK = 9
TCP_LISTEN = 10
TCP_CLOSING = 11

#: The states of a connection a process still holds (after close() it has no inode), and LISTEN
#: for the listener itself.
HELD = frozenset(
    {TCP_ESTABLISHED, TCP_FIN_WAIT1, TCP_FIN_WAIT2, TCP_CLOSE_WAIT, TCP_LAST_ACK, TCP_CLOSING}
)
WANTED = HELD | {TCP_LISTEN}

_SO_ACCEPTCON = 1 << 16  # /proc/net/unix Flags of a listening socket (include/linux/net.h)

_NLMSGHDR = struct.Struct("=IHHII")  # len type flags seq pid
_REQ_V2 = struct.Struct("=BBBBI48x")  # inet_diag_req_v2: family protocol ext pad states, id=0
# inet_diag_msg: family state timer retrans; id: sport dport src[16] dst[16] if cookie[8];
# expires rqueue wqueue uid inode
_DIAG_MSG = struct.Struct("=BB2x2s2x16s16x4x8x16xI")


class InetSocket(NamedTuple):
    """One row of the TCP table: the local end of a socket."""

    state: int  # TCP_* (include/net/tcp_states.h)
    address: bytes  # the local address as the kernel stores it: 4 bytes (IPv4) or 16
    port: int
    inode: int  # 0 when no process holds it (TIME_WAIT, closed, not yet accepted)


def accepted(rows: Iterable[InetSocket], listener: int) -> set[int] | None:
    """The inodes of the connections accepted from the listener with inode ``listener``; None
    when it is not a listening socket in ``rows``.

    An accepted connection has the listener's local address and port; under a wildcard
    listener (0.0.0.0, ::) only its port, as its address is the one the client connected to.
    """
    local: InetSocket | None = None
    held: list[InetSocket] = []
    for row in rows:
        if row.inode == listener:
            local = row if row.state == TCP_LISTEN else None
        elif row.inode and row.state in HELD:
            held.append(row)
    if local is None:
        return None
    wildcard = not any(local.address)
    return {
        row.inode
        for row in held
        if row.port == local.port and (wildcard or row.address == local.address)
    }


# --- sock_diag(7) ------------------------------------------------------------------------------


def diag_request(family: int, states: Iterable[int], seq: int = 1) -> bytes:
    """A SOCK_DIAG_BY_FAMILY dump request for the TCP sockets of ``family`` in ``states``."""
    body = _REQ_V2.pack(family, socket.IPPROTO_TCP, 0, 0, sum(1 << s for s in set(states)))
    header = _NLMSGHDR.pack(
        _NLMSGHDR.size + len(body), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, seq, 0
    )
    return header + body


def parse_diag(data: bytes) -> tuple[list[InetSocket], bool]:
    """The rows in one netlink read of a dump, and whether it ended (NLMSG_DONE).

    An NLMSG_ERROR message raises the OSError it carries.
    """
    rows: list[InetSocket] = []
    offset = 0
    while offset + _NLMSGHDR.size <= len(data):
        length, kind, _flags, _seq, _pid = _NLMSGHDR.unpack_from(data, offset)
        if length < _NLMSGHDR.size:
            break
        body = offset + _NLMSGHDR.size
        if kind == NLMSG_DONE:
            return rows, True
        if kind == NLMSG_ERROR:
            err = -struct.unpack_from("=i", data, body)[0]
            raise OSError(err, f"sock_diag: {os.strerror(err)}")
        if kind == SOCK_DIAG_BY_FAMILY and length - _NLMSGHDR.size >= _DIAG_MSG.size:
            family, state, sport, src, inode = _DIAG_MSG.unpack_from(data, body)
            size = 4 if family == socket.AF_INET else 16
            rows.append(InetSocket(state, src[:size], int.from_bytes(sport, "big"), inode))
        offset += (length + 3) & ~3
    return rows, False


def dump(family: int, states: Iterable[int] = WANTED, timeout: float = 1.0) -> list[InetSocket]:
    """The TCP sockets of ``family`` in ``states`` in this network namespace (OSError when
    netlink or sock_diag is not there)."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as nl:
        nl.settimeout(timeout)
        nl.sendall(diag_request(family, states))
        rows: list[InetSocket] = []
        while True:
            data = nl.recv(1 << 16)
            if not data:
                return rows
            found, done = parse_diag(data)
            rows += found
            if done:
                return rows


# --- /proc/net/tcp, tcp6 ---------------------------------------------------------------------


def parse_proc_tcp(table: str) -> list[InetSocket]:
    """The rows of a ``/proc/net/tcp`` or ``tcp6`` text that a process holds (inode not 0).

    Addresses are printed as the kernel's 32-bit words in host order (``%08X``), the port as
    a number.
    """
    rows: list[InetSocket] = []
    for line in table.splitlines()[1:]:
        fields = line.split(None, 10)  # sl local rem st tx:rx tr:when retrnsmt uid timeout inode
        if len(fields) < 10 or fields[9] == "0":
            continue
        address, _, port = fields[1].partition(":")
        packed = b"".join(
            int(address[i : i + 8], 16).to_bytes(4, sys.byteorder)
            for i in range(0, len(address), 8)
        )
        rows.append(InetSocket(int(fields[3], 16), packed, int(port, 16), int(fields[9])))
    return rows


# --- /proc/net/unix -----------------------------------------------------------------------


def accepted_unix(table: str, listener: int) -> set[int] | None:
    """The inodes of the connections accepted from ``listener`` in a ``/proc/net/unix`` text
    (proc(5)); None when it is not a listening socket there (``Flags`` __SO_ACCEPTCON).  An
    accepted stream socket is connected (``St`` 03) and shows the listener's path."""
    want = str(listener)
    path = ""
    rows: list[tuple[str, str]] = []
    for line in table.splitlines()[1:]:
        fields = line.split(None, 7)  # Num RefCount Protocol Flags Type St Inode Path
        if len(fields) < 8:  # unnamed
            continue
        if fields[6] == want:
            path = fields[7] if int(fields[3], 16) & _SO_ACCEPTCON else ""
        elif fields[4] == "0001" and fields[5] == "03":  # SOCK_STREAM, SS_CONNECTED
            rows.append((fields[7], fields[6]))
    if not path:
        return None
    return {int(inode) for mine, inode in rows if mine == path}
