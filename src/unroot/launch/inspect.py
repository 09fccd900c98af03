"""Reading /proc for the supervisor: is a process of a generation waiting for connections on a
listener, or holding one accepted from it? And the ``/proc/PID/stat`` fields that say who
belongs to a generation (its session). ``proc`` is injectable, so the tests give fixture trees.
"""

from __future__ import annotations

import os
import platform
import socket
import struct
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from unroot.launch import socktable

# Syscalls whose first argument is the socket a thread blocks on, and the poll/select families
# whose fd sets are read from the thread's memory.  Numbers from the kernel's syscall tables.
_SYSCALLS: dict[str, dict[str, frozenset[int]]] = {
    "x86_64": {
        "fd": frozenset({43, 288, 45, 47, 299}),  # accept accept4 recvfrom recvmsg recvmmsg
        "poll": frozenset({7, 271}),  # poll ppoll
        "select": frozenset({23, 270}),  # select pselect6
    },
    "aarch64": {
        "fd": frozenset({202, 242, 207, 212, 243}),
        "poll": frozenset({73}),
        "select": frozenset({72}),
    },
}
_POLLFD = struct.Struct("ihh")


@dataclass(frozen=True)
class _Fds:
    """What one process's fd table says about a listener."""

    listening: frozenset[int]  # fds that are the listener
    epolls: tuple[str, ...]  # fds that are epoll instances
    sockets: frozenset[int]  # the inodes of every socket it holds


# The tables a stream listener can be in, tried in this order until it is found.
_NET_TABLES = {"tcp": socket.AF_INET, "tcp6": socket.AF_INET6, "unix": socket.AF_UNIX}


class ProcStat(NamedTuple):
    """The fields of ``/proc/PID/stat`` (proc(5)) the supervisor reads."""

    state: str  # R S D Z T …; a zombie keeps its ppid, pgrp and session until it is reaped
    ppid: int
    pgrp: int
    session: int


class ProcInspector:
    """Reads /proc (``proc`` is injectable) to tell whether processes wait on a listener or hold
    connections accepted from it."""

    def __init__(
        self, proc: str = "/proc", machine: str | None = None, *, sock_diag: bool = True
    ) -> None:
        self.proc = proc
        self.sock_diag = sock_diag  # TCP connections from netlink; False: from {proc}/self/net
        self.syscalls = _SYSCALLS.get(machine or platform.machine(), {})
        self._tables: dict[int, str] = {}  # listener inode → the net table it is in

    def stat(self, pid: int) -> ProcStat | None:
        """What ``/proc/PID/stat`` says of ``pid`` (a zombie's too), or None when it is gone."""
        try:
            with open(f"{self.proc}/{pid}/stat", "rb") as f:
                text = f.read().decode(errors="replace")
        except OSError:
            return None
        fields = text[text.rindex(")") + 2 :].split()
        return ProcStat(fields[0], int(fields[1]), int(fields[2]), int(fields[3]))

    def pids(self) -> list[int]:
        try:
            return [int(name) for name in os.listdir(self.proc) if name.isdigit()]
        except OSError:
            return []

    def session(self, sid: int) -> list[int]:
        """The live (non-zombie) members of session ``sid``."""
        members = []
        for pid in self.pids():
            st = self.stat(pid)
            if st is not None and st.session == sid and st.state not in "ZX":
                members.append(pid)
        return members

    def zombies(self) -> list[int]:
        return [
            pid for pid in self.pids() if (st := self.stat(pid)) is not None and st.state == "Z"
        ]

    def serving(self, pids: Iterable[int], inode: int) -> bool:
        """Whether a process of ``pids`` waits for connections on the stream listener ``inode``
        or holds a connection accepted from it.  The net table is read once for all of them,
        and only when no process waits."""
        held: set[int] = set()
        for pid in pids:
            fds = self._fds(pid, inode)
            if self._waits(pid, fds, inode):
                return True
            held |= fds.sockets
        held.discard(inode)
        return bool(held) and not held.isdisjoint(self.accepted(inode))

    def waits_on(self, pid: int, inode: int) -> bool:
        """Whether a thread of ``pid`` waits for connections on the socket with ``inode``."""
        return self._waits(pid, self._fds(pid, inode), inode)

    def accepted(self, inode: int) -> set[int]:
        """The inodes of the connections accepted from the stream listener ``inode``, from the
        socket tables of the supervisor's network namespace (where it bound the listener)."""
        kinds = [self._tables[inode]] if inode in self._tables else list(_NET_TABLES)
        for kind in kinds:
            found = self._accepted(kind, inode)
            if found is not None:
                self._tables[inode] = kind
                return found
        return set()

    def _accepted(self, kind: str, inode: int) -> set[int] | None:
        if kind != "unix" and self.sock_diag:
            try:
                return socktable.accepted(socktable.dump(_NET_TABLES[kind]), inode)
            except OSError:
                self.sock_diag = False  # no netlink here (a sandbox): /proc/net from now on
        try:
            with open(f"{self.proc}/self/net/{kind}") as f:
                table = f.read()
        except OSError:
            return None
        if kind == "unix":
            return socktable.accepted_unix(table, inode)
        return socktable.accepted(socktable.parse_proc_tcp(table), inode)

    def _fds(self, pid: int, inode: int) -> _Fds:
        target = f"socket:[{inode}]"
        fd_dir = f"{self.proc}/{pid}/fd"
        listening: set[int] = set()
        epolls: list[str] = []
        sockets: set[int] = set()
        try:
            names = os.listdir(fd_dir)
        except OSError:
            return _Fds(frozenset(), (), frozenset())
        for name in names:
            try:
                link = os.readlink(f"{fd_dir}/{name}")
            except OSError:
                continue
            if link == target:
                listening.add(int(name))
            elif link == "anon_inode:[eventpoll]":
                epolls.append(name)
            elif link.startswith("socket:["):
                sockets.add(int(link[8:-1]))
        return _Fds(frozenset(listening), tuple(epolls), frozenset(sockets))

    def _waits(self, pid: int, fds: _Fds, inode: int) -> bool:
        if any(self._epoll_watches(pid, name, inode) for name in fds.epolls):
            return True
        if not fds.listening or not self.syscalls:
            return False
        try:
            tids = os.listdir(f"{self.proc}/{pid}/task")
        except OSError:
            return False
        return any(self._blocked_on(pid, tid, fds.listening) for tid in tids)

    def _epoll_watches(self, pid: int, fd: str, inode: int) -> bool:
        try:
            with open(f"{self.proc}/{pid}/fdinfo/{fd}") as f:
                lines = f.read().splitlines()
        except OSError:
            return False
        for line in lines:
            if line.startswith("tfd:"):
                for item in line.split():
                    if item.startswith("ino:") and int(item[4:], 16) == inode:
                        return True
        return False

    def _blocked_on(self, pid: int, tid: str, fds: frozenset[int]) -> bool:
        try:
            with open(f"{self.proc}/{pid}/task/{tid}/syscall") as f:
                words = f.read().split()
        except OSError:
            return False
        if len(words) < 7 or not words[0].isdigit():
            return False  # "running", or "-1 sp pc" (not in a syscall)
        nr = int(words[0])
        args = [int(w, 16) for w in words[1:7]]
        if nr in self.syscalls["fd"]:
            return args[0] in fds
        if nr in self.syscalls["poll"]:
            nfds = min(args[1], 4096)
            raw = self._peek(pid, args[0], nfds * _POLLFD.size)
            return any(
                _POLLFD.unpack_from(raw, i * _POLLFD.size)[0] in fds
                for i in range(len(raw) // _POLLFD.size)
            )
        if nr in self.syscalls["select"]:
            nfds = min(args[0], 65536)
            if not args[1]:
                return False
            raw = self._peek(pid, args[1], (nfds + 63) // 64 * 8)
            bits = int.from_bytes(raw, sys.byteorder)
            return any(fd < nfds and bits >> fd & 1 for fd in fds)
        return False

    def _peek(self, pid: int, address: int, size: int) -> bytes:
        if not address or size <= 0:
            return b""
        try:
            fd = os.open(f"{self.proc}/{pid}/mem", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return b""
        try:
            return os.pread(fd, size, address)
        except OSError:
            return b""
        finally:
            os.close(fd)
