"""An open-loop HTTP/1.1 load at a fixed request rate, latencies without coordinated omission.

    python openloop.py --port 80 --rate 2000 --duration 3 [--close] [--max-conns 256]

Request *i* is due at ``start + i / rate`` whatever happened to the requests before it; its
latency is measured from that due time to the last byte of its response.  When every
connection is busy (or the cap ``--max-conns`` is reached) a due request waits in a queue, and
the wait counts in its latency: a stall of the server shows up as the stall, not as one slow
request among few (what a closed-loop tool like wrk reports: Gil Tene's "coordinated omission").
With keep-alive, idle connections are reused; with ``--close`` every request opens a connection
and sends ``Connection: close``.

Prints one JSON object: counts, the exact maximum and a log-linear histogram (bucket ``k`` holds
latencies in ``[GROWTH**k, GROWTH**(k+1))`` microseconds).  Stdlib only, no import of unroot:
``unroot bench`` runs it by path, also inside a network namespace of its own.
"""

from __future__ import annotations

import argparse
import errno
import json
import math
import select
import socket
import sys
import time
from collections import deque

GROWTH = 1.02  # 2 % wide buckets: p99.9 to within 2 %


class Conn:
    __slots__ = ("buf", "due", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        self.due = 0.0  # due time of the request in flight; 0 when idle


def response_done(buf: bytes) -> bool:
    head, sep, body = buf.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return True


def bucket(latency_s: float) -> int:
    return int(math.log(max(latency_s * 1e6, 1.0)) / math.log(GROWTH))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--duration", type=float, required=True, help="seconds of scheduling")
    parser.add_argument("--close", action="store_true", help="one connection per request")
    parser.add_argument("--max-conns", type=int, default=256)
    parser.add_argument("--timeout", type=float, default=5.0, help="after the last due time")
    args = parser.parse_args()

    close = args.close
    request = (
        f"GET / HTTP/1.1\r\nHost: {args.host}\r\n"
        + ("Connection: close\r\n" if close else "")
        + "\r\n"
    ).encode()
    total = max(1, int(args.rate * args.duration))
    interval = 1.0 / args.rate
    poller = select.epoll()
    conns: dict[int, Conn] = {}
    idle: list[Conn] = []
    waiting: deque[float] = deque()  # due times of requests no connection could take yet
    hist: dict[int, int] = {}
    done = errors = 0
    worst = 0.0

    def send(conn: Conn, due: float) -> None:
        conn.due = due
        conn.buf = b""
        try:
            conn.sock.send(request)  # connected (keep-alive) or connecting: see below
        except BlockingIOError:
            pass
        except OSError:
            fail(conn)

    def open_conn(due: float) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        conn = Conn(sock)
        conn.due = due
        code = sock.connect_ex((args.host, args.port))
        if code not in (0, errno.EINPROGRESS):
            sock.close()
            nonlocal errors
            errors += 1
            return
        conns[sock.fileno()] = conn
        # writable once connected: the request is sent then (EPOLLOUT, one shot)
        poller.register(sock.fileno(), select.EPOLLOUT)

    def fail(conn: Conn) -> None:
        nonlocal errors
        if conn.due:
            errors += 1
        forget(conn)

    def forget(conn: Conn) -> None:
        fd = conn.sock.fileno()
        if fd in conns:
            poller.unregister(fd)
            del conns[fd]
        if conn in idle:
            idle.remove(conn)
        conn.sock.close()

    def dispatch(due: float) -> None:
        if idle:
            conn = idle.pop()
            send(conn, due)
        elif len(conns) < args.max_conns:
            open_conn(due)
        else:
            waiting.append(due)

    start = time.monotonic() + 0.01
    issued = 0
    end_by = start + args.duration + args.timeout
    while (issued < total or done + errors < total) and time.monotonic() < end_by:
        now = time.monotonic()
        while issued < total and start + issued * interval <= now:
            dispatch(start + issued * interval)
            issued += 1
        nxt = start + issued * interval if issued < total else end_by
        timeout = max(0.0, min(nxt, end_by) - time.monotonic())
        for fd, event in poller.poll(timeout):
            conn = conns.get(fd)
            if conn is None:
                continue
            if event & select.EPOLLOUT:
                if conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    fail(conn)
                    continue
                poller.modify(fd, select.EPOLLIN)
                send(conn, conn.due)
                continue
            try:
                chunk = conn.sock.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                fail(conn)
                continue
            conn.buf += chunk
            if not response_done(conn.buf):
                continue
            latency = time.monotonic() - conn.due
            hist[bucket(latency)] = hist.get(bucket(latency), 0) + 1
            worst = max(worst, latency)
            done += 1
            conn.due = 0.0
            if close or b"connection: close" in conn.buf.lower():
                forget(conn)
                if waiting:
                    dispatch(waiting.popleft())
            elif waiting:
                send(conn, waiting.popleft())
            else:
                idle.append(conn)
        if not conns and waiting:  # every connection failed: open anew
            dispatch(waiting.popleft())
    lost = total - done - errors
    for conn in list(conns.values()):
        forget(conn)
    json.dump(
        {
            "requests": total,
            "completed": done,
            "errors": errors + lost,
            "seconds": args.duration,
            "rate": args.rate,
            "max_us": round(worst * 1e6, 1),
            "growth": GROWTH,
            "histogram": {str(k): v for k, v in sorted(hist.items())},
        },
        sys.stdout,
    )
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
