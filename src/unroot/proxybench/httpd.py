"""A tiny HTTP/1.1 responder for the benchmarks and the supervise tests (stdlib only).

    python bench/backend/httpd.py --port 8080 [--host 127.0.0.1]   # binds the port itself
    python bench/backend/httpd.py --fd 3                           # serves an inherited socket
    python bench/backend/httpd.py --listen-fds                     # LISTEN_FDS / LISTEN_PID
      [--workers N] [--notify] [--exit-after N] [--exit-code C] [--drain-idle S]
      [--start-delay S]

Every response is ``200 ok`` with a 3-byte body and ``X-Gen: <pid of the main process>`` (the
generation that answered).  Keep-alive per HTTP/1.1 (``Connection: close`` honoured), pipelined
requests answered in order.  One epoll loop per process; ``--workers N`` forks N processes that
share the listener.

Graceful stop on SIGTERM (what ``unroot run --supervise`` sends the old generation on a reload):
stop accepting (the socket stays open in the supervisor and the new generation), answer the next
request on every open connection with ``Connection: close``, close connections idle for
``--drain-idle`` seconds, then exit 0 — so no request is lost.  ``--notify`` sends ``READY=1``
to ``NOTIFY_SOCKET`` once every worker is in its loop.  ``--exit-after N`` serves N requests,
then closes like a drain and exits with ``--exit-code`` (a crash the supervisor restarts).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import signal
import socket
import sys
import time
from collections.abc import Callable

BODY = b"ok\n"


def response(gen: bytes, close: bool) -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nX-Gen: "
        + gen
        + (b"\r\nConnection: close\r\n\r\n" if close else b"\r\n\r\n")
        + BODY
    )


class Conn:
    __slots__ = ("closing", "inbuf", "last", "outbuf", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.inbuf = b""
        self.outbuf = b""
        self.last = time.monotonic()
        self.closing = False  # the last response is queued: shut down after sending


def wants_close(head: bytes) -> bool:
    lines = head.split(b"\r\n")
    version = lines[0].rsplit(b" ", 1)[-1]
    connection = b""
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"connection":
            connection = value.strip().lower()
    if version == b"HTTP/1.0":
        return connection != b"keep-alive"
    return connection == b"close"


def serve(
    listener: socket.socket, gen: bytes, args: argparse.Namespace, on_ready: Callable[[], None]
) -> int:
    """One epoll loop until drained; the exit code."""
    stopping = False
    served = 0

    def on_term(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    # epoll.poll() resumes after a Python signal handler (PEP 475): wake it through a pipe
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    listener.setblocking(False)
    ep = select.epoll()
    ep.register(wake_r, select.EPOLLIN)
    lfd = listener.fileno()
    ep.register(lfd, select.EPOLLIN)
    conns: dict[int, Conn] = {}
    listening = True
    inet = listener.family in (socket.AF_INET, socket.AF_INET6)
    on_ready()

    def stop_listening() -> None:
        nonlocal listening
        if listening:
            ep.unregister(lfd)
            listener.close()
            listening = False

    def close(fd: int) -> None:
        conn = conns.pop(fd)
        with contextlib.suppress(OSError):
            ep.unregister(fd)
        conn.sock.close()

    def flush(fd: int, conn: Conn) -> None:
        try:
            sent = conn.sock.send(conn.outbuf)
        except BlockingIOError:
            sent = 0
        except OSError:
            close(fd)
            return
        conn.outbuf = conn.outbuf[sent:]
        if conn.outbuf:
            ep.modify(fd, select.EPOLLIN | select.EPOLLOUT)
            return
        ep.modify(fd, select.EPOLLIN)
        if conn.closing:
            # lingering close: FIN now, read until the peer closes so no RST eats the response
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_WR)

    def handle(fd: int, conn: Conn) -> None:
        nonlocal served, stopping
        while not conn.closing:
            end = conn.inbuf.find(b"\r\n\r\n")
            if end < 0:
                break
            head, conn.inbuf = conn.inbuf[:end], conn.inbuf[end + 4 :]
            served += 1
            last = args.exit_after and served >= args.exit_after
            conn.closing = bool(wants_close(head) or stopping or last)
            conn.outbuf += response(gen, conn.closing)
            if last:
                stopping = True
        flush(fd, conn)

    while True:
        if stopping:
            stop_listening()
            now = time.monotonic()
            for fd, conn in list(conns.items()):
                if not conn.outbuf and not conn.inbuf and now - conn.last > args.drain_idle:
                    close(fd)
            if not conns:
                break
        try:
            events = ep.poll(0.1 if stopping else -1)
        except InterruptedError:
            continue
        for fd, mask in events:
            if fd == wake_r:
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_r, 512)
                continue
            if fd == lfd:
                if not listening:
                    continue
                while True:
                    try:
                        sock, _ = listener.accept()
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:
                        break
                    sock.setblocking(False)
                    if inet:
                        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    conns[sock.fileno()] = Conn(sock)
                    ep.register(sock.fileno(), select.EPOLLIN)
                continue
            found = conns.get(fd)
            if found is None:
                continue
            conn = found
            conn.last = time.monotonic()
            if mask & select.EPOLLOUT:
                flush(fd, conn)
                if fd not in conns:
                    continue
            if mask & (select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR):
                try:
                    data = conn.sock.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    close(fd)
                    continue
                if conn.closing:
                    continue  # lingering: discard
                conn.inbuf += data
                handle(fd, conn)
    ep.close()
    if args.exit_after and served >= args.exit_after:
        return int(args.exit_code)
    return 0


def inherited() -> socket.socket:
    if os.environ.get("LISTEN_PID") != str(os.getpid()):
        sys.exit("httpd: LISTEN_PID is not this process")
    if int(os.environ.get("LISTEN_FDS", "0")) < 1:
        sys.exit("httpd: no LISTEN_FDS")
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(name, None)
    return socket.socket(fileno=3)


def notify_ready() -> None:
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(b"READY=1", address)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", type=int)
    where.add_argument("--fd", type=int)
    where.add_argument("--listen-fds", action="store_true")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--notify", action="store_true")
    parser.add_argument("--exit-after", type=int, default=0)
    parser.add_argument("--exit-code", type=int, default=1)
    parser.add_argument("--drain-idle", type=float, default=1.0)
    parser.add_argument("--start-delay", type=float, default=0.0)
    args = parser.parse_args(argv)
    time.sleep(args.start_delay)  # a slow start: the supervisor must wait before switching

    if args.port is not None:
        family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((args.host, args.port))
        listener.listen(4096)
    elif args.fd is not None:
        listener = socket.socket(fileno=args.fd)
    else:
        listener = inherited()
    gen = str(os.getpid()).encode()

    if args.workers <= 1:
        return serve(listener, gen, args, notify_ready if args.notify else lambda: None)

    ready_r, ready_w = os.pipe()

    def worker_ready() -> None:
        os.write(ready_w, b"r")

    children = []
    for _ in range(args.workers):
        pid = os.fork()
        if pid == 0:
            os.close(ready_r)
            os._exit(serve(listener, gen, args, worker_ready))
        children.append(pid)
    os.close(ready_w)
    listener.close()
    stop = False

    def forward(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    got = 0
    while got < args.workers:
        chunk = os.read(ready_r, args.workers)
        if not chunk:
            break
        got += len(chunk)
    os.close(ready_r)
    if args.notify:
        notify_ready()
    code = 0
    for _ in children:
        _, status = os.wait()
        code = code or os.waitstatus_to_exitcode(status)
    return code


if __name__ == "__main__":
    sys.exit(main())
