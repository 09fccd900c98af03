"""A network namespace held open by a file descriptor, and what verify does inside it.

A container's network namespace is entered by one short-lived thread (``setns(2)`` with
``CLONE_NEWNET`` changes the calling thread only, and a multithreaded process may do it): the
sockets it creates and the sysctl file it opens belong to that namespace and keep working from
any thread afterwards.  Readiness is probed from inside — publishing a privileged port is
itself refused on rootless engines, and the host network of rootless Docker is rootlesskit's
namespace, which the host cannot reach.  The descriptor keeps the namespace alive after the
container's process is gone, so the sysctl can still be read.
"""

from __future__ import annotations

import ctypes
import errno as errno_names
import http.client
import os
import socket
import threading
from collections.abc import Callable
from typing import TypeVar

from unroot.errors import EnvironmentProblem

CLONE_NEWNET = 0x40000000
PORT_START = "/proc/sys/net/ipv4/ip_unprivileged_port_start"
T = TypeVar("T")

_libc = ctypes.CDLL(None, use_errno=True)


class Netns:
    """``/proc/PID/ns/net`` opened once (``pid`` None: this process's own namespace)."""

    def __init__(self, pid: int | None = None, path: str | None = None) -> None:
        where = path or (f"/proc/{pid}/ns/net" if pid is not None else "/proc/self/ns/net")
        try:
            self.fd: int | None = os.open(where, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise EnvironmentProblem(f"cannot open {where}: {exc.strerror}") from None
        self.inode = os.fstat(self.fd).st_ino

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> Netns:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def inside(self, work: Callable[[], T]) -> T:
        """``work()`` in a thread that has entered the namespace."""
        box: dict[str, object] = {}

        def run() -> None:
            try:
                if _libc.setns(self.fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise EnvironmentProblem(
                        f"setns into net:[{self.inode}]: {os.strerror(err)}"
                        + (" (needs root)" if err == errno_names.EPERM else "")
                    )
                box["value"] = work()
            except BaseException as exc:
                box["error"] = exc

        thread = threading.Thread(target=run, name="unroot-netns", daemon=True)
        thread.start()
        thread.join()
        if "error" in box:
            raise box["error"]  # type: ignore[misc]
        return box["value"]  # type: ignore[return-value]

    def port_start(self) -> int:
        """``net.ipv4.ip_unprivileged_port_start`` of this namespace."""

        def read() -> int:
            with open(PORT_START, encoding="ascii") as file:
                return int(file.read().strip())

        return self.inside(read)

    def socket(self, family: int = socket.AF_INET) -> socket.socket:
        """A TCP socket that belongs to this namespace."""
        return self.inside(lambda: socket.socket(family, socket.SOCK_STREAM))

    def accepts(self, port: int, timeout: float = 1.0) -> bool:
        """Does 127.0.0.1:port accept a TCP connection in this namespace?"""
        with self.socket() as sock:
            sock.settimeout(timeout)
            return sock.connect_ex(("127.0.0.1", port)) == 0

    def http_status(self, port: int, path: str, timeout: float = 2.0) -> int | None:
        """The status of ``GET path`` on 127.0.0.1:port in this namespace (None: no answer)."""
        sock = self.socket()
        sock.settimeout(timeout)
        try:
            sock.connect(("127.0.0.1", port))
        except OSError:
            sock.close()
            return None
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        conn.sock = sock
        try:
            conn.request("GET", path, headers={"Connection": "close"})
            response = conn.getresponse()
            response.read()
        except (OSError, http.client.HTTPException):
            return None
        finally:
            conn.close()
        return response.status
