"""Who listens on which port: ``/proc/PID/net/{tcp,tcp6,udp,udp6}`` joined with ``/proc/*/fd``.

The socket tables are those of the network namespace of the process named (``/proc/PID/net`` is
its namespace's view, proc(5)); a TCP socket listens in state ``0A`` (TCP_LISTEN), a UDP socket
is bound when its local port is not 0 and it is unconnected (state ``07``, TCP_CLOSE; a
connected UDP socket is a client).  Addresses are printed by the kernel as 32-bit words in host
byte order (``%08X`` of each ``__be32``, net/ipv4/tcp_ipv4.c ``get_tcp4_sock``), ports in
network order.

Owners are found as ss(8) -p and psutil do: every ``/proc/PID/fd/N`` whose link reads
``socket:[INODE]``.  Processes that exit or refuse us while we look are skipped (a race, not an
error).  Parsing is pure (:func:`parse_net`); reading translates ``OSError`` here, once.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from unroot.errors import EnvironmentProblem, ParseError, UsageError
from unroot.facts import PROCESS_GONE, PROCFS_PATH, cannot
from unroot.facts.proc import status_fields

Proto = Literal["tcp", "tcp6", "udp", "udp6"]
PROTOS: tuple[Proto, ...] = ("tcp", "tcp6", "udp", "udp6")
TCP_LISTEN = 0x0A
TCP_CLOSE = 0x07  # an unconnected UDP socket


@dataclass(frozen=True, slots=True)
class NetSocket:
    """One row of a ``/proc/net`` socket table."""

    proto: Proto
    address: str
    port: int
    state: int
    uid: int  # the socket's owner as the table says (sock_i_uid: its creator's fsuid)
    inode: int

    @property
    def listening(self) -> bool:
        if self.proto.startswith("tcp"):
            return self.state == TCP_LISTEN
        return self.state == TCP_CLOSE and self.port != 0


@dataclass(frozen=True, slots=True)
class Listener:
    """A listening TCP or bound UDP socket and the processes that hold it (pids, their euids)."""

    proto: Proto
    address: str
    port: int
    inode: int
    pids: tuple[int, ...]
    uids: tuple[int, ...]


def parse_address(text: str, byteorder: Literal["little", "big"] = sys.byteorder) -> str:
    """``0100007F`` → ``127.0.0.1``; 32 hex digits → an IPv6 address (``::ffff:a.b.c.d`` kept
    in that form, as ss(8) shows it)."""
    if len(text) not in (8, 32):
        raise ParseError(f"not a /proc/net address: {text!r}")
    try:
        raw = b"".join(
            int(text[i : i + 8], 16).to_bytes(4, byteorder) for i in range(0, len(text), 8)
        )
    except ValueError:
        raise ParseError(f"not a /proc/net address: {text!r}") from None
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw))
    address = ipaddress.IPv6Address(raw)
    mapped = address.ipv4_mapped
    return f"::ffff:{mapped}" if mapped is not None else str(address)


def parse_net(
    text: str, proto: Proto, byteorder: Literal["little", "big"] = sys.byteorder
) -> tuple[NetSocket, ...]:
    """Every row of a ``/proc/net/{tcp,tcp6,udp,udp6}`` text (the header line is skipped)."""
    rows = []
    for number, line in enumerate(text.splitlines()[1:], start=2):
        fields = line.split()
        if not fields:
            continue
        if len(fields) < 10 or ":" not in fields[1]:
            raise ParseError(f"{proto} line {number}: not a socket row: {line.strip()!r}")
        address, _, port = fields[1].rpartition(":")
        try:
            rows.append(
                NetSocket(
                    proto=proto,
                    address=parse_address(address, byteorder),
                    port=int(port, 16),
                    state=int(fields[3], 16),
                    uid=int(fields[7]),
                    inode=int(fields[9]),
                )
            )
        except ValueError:
            raise ParseError(f"{proto} line {number}: not a socket row: {line.strip()!r}") from None
    return tuple(rows)


def read_sockets(
    pid: int | str = "self", procfs: str = PROCFS_PATH, protos: Iterable[Proto] = PROTOS
) -> tuple[NetSocket, ...]:
    """The socket tables of ``pid``'s network namespace; a table the kernel lacks (no IPv6) is
    empty.  No such process: UsageError; not allowed: EnvironmentProblem."""
    rows: list[NetSocket] = []
    for proto in protos:
        path = os.path.join(procfs, str(pid), "net", proto)
        try:
            with open(path, encoding="ascii", errors="replace") as file:
                text = file.read()
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ESRCH):
                if not os.path.isdir(procfs):
                    raise EnvironmentProblem(f"{procfs} is not mounted (no procfs)") from None
                if not os.path.isdir(os.path.join(procfs, str(pid))):
                    raise UsageError(f"no such process: {pid}") from None
                continue  # the protocol is not compiled in (ipv6.disable=1)
            raise cannot(exc, "read", path) from None
        rows.extend(parse_net(text, proto))
    return tuple(rows)


def socket_owners(procfs: str = PROCFS_PATH) -> dict[int, tuple[int, ...]]:
    """Socket inode → the pids holding it open (each pid once, sorted)."""
    owners: dict[int, set[int]] = {}
    try:
        entries = os.listdir(procfs)
    except OSError as exc:
        raise cannot(exc, "list", procfs) from None
    for entry in entries:
        if not entry.isdigit():
            continue
        fd_dir = os.path.join(procfs, entry, "fd")
        try:
            fds = os.listdir(fd_dir)
        except OSError as exc:
            if exc.errno in PROCESS_GONE:
                continue
            raise cannot(exc, "list", fd_dir) from None
        for fd in fds:
            try:
                target = os.readlink(os.path.join(fd_dir, fd))
            except OSError as exc:
                if exc.errno in PROCESS_GONE:
                    continue
                raise cannot(exc, "read", os.path.join(fd_dir, fd)) from None
            if target.startswith("socket:[") and target.endswith("]"):
                owners.setdefault(int(target[8:-1]), set()).add(int(entry))
    return {inode: tuple(sorted(pids)) for inode, pids in owners.items()}


def process_euid(pid: int, procfs: str = PROCFS_PATH) -> int | None:
    """The effective uid on the ``Uid:`` line of ``/proc/PID/status``; None once it is gone."""
    path = os.path.join(procfs, str(pid), "status")
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            uids = status_fields(f.read()).get("Uid", "").split()
    except OSError as exc:
        if exc.errno in PROCESS_GONE:
            return None
        raise cannot(exc, "read", path) from None
    return int(uids[1]) if len(uids) > 1 and uids[1].isdigit() else None


def read_listeners(
    pid: int | str = "self", procfs: str = PROCFS_PATH, protos: Iterable[Proto] = PROTOS
) -> tuple[Listener, ...]:
    """The listening TCP and bound UDP sockets of ``pid``'s network namespace with their owners,
    sorted by port, protocol and address."""
    sockets = [row for row in read_sockets(pid, procfs, protos) if row.listening]
    owners = socket_owners(procfs) if sockets else {}
    euids: dict[int, int | None] = {}
    listeners = []
    for row in sockets:
        pids = owners.get(row.inode, ())
        for owner in pids:
            if owner not in euids:
                euids[owner] = process_euid(owner, procfs)
        uids = tuple(sorted({uid for p in pids if (uid := euids[p]) is not None}))
        listeners.append(Listener(row.proto, row.address, row.port, row.inode, pids, uids))
    return tuple(sorted(listeners, key=lambda x: (x.port, x.proto, x.address, x.inode)))


def listeners_below(listeners: Iterable[Listener], port_start: int) -> tuple[Listener, ...]:
    """The listeners on a port below ``port_start`` (``ip_unprivileged_port_start``)."""
    return tuple(x for x in listeners if x.port < port_start)


# -- unix sockets -----------------------------------------------------------------------------
SO_ACCEPTCON = 0x10000  # the Flags column of /proc/net/unix for a listening socket


def parse_unix(text: str) -> dict[str, tuple[int, ...]]:
    """Path → inodes of the listening sockets bound to it in a ``/proc/net/unix`` text."""
    bound: dict[str, list[int]] = {}
    for line in text.splitlines()[1:]:
        fields = line.split(maxsplit=7)
        if len(fields) < 8 or not fields[6].isdigit():
            continue  # unbound (no path) or not a row
        try:
            flags = int(fields[3], 16)
        except ValueError:
            continue
        if flags & SO_ACCEPTCON:
            bound.setdefault(fields[7], []).append(int(fields[6]))
    return {path: tuple(inodes) for path, inodes in bound.items()}


def unix_socket_servers(
    path: str, candidates: Iterable[int], procfs: str = PROCFS_PATH
) -> tuple[int, ...]:
    """The pids among ``candidates`` holding the listening unix socket bound to ``path``, read
    in each candidate's own network namespace (``/proc/PID/net/unix``); gone ones are skipped."""
    servers = []
    for pid in candidates:
        base = os.path.join(procfs, str(pid))
        try:
            with open(os.path.join(base, "net", "unix"), encoding="utf-8", errors="replace") as f:
                inodes = parse_unix(f.read()).get(path, ())
            held = (
                {os.readlink(os.path.join(base, "fd", fd)) for fd in _fds(base)}
                if inodes
                else set()
            )
        except OSError as exc:
            if exc.errno in PROCESS_GONE:
                continue
            raise cannot(exc, "read", base) from None
        if any(f"socket:[{inode}]" in held for inode in inodes):
            servers.append(pid)
    return tuple(servers)


def _fds(base: str) -> list[str]:
    return os.listdir(os.path.join(base, "fd"))
