"""A service for the launch tests: report what it was handed, as one JSON line, then wait.

    probe.py [--bind-port N] [--activation SRC] [ARG...]

It reports its ids, groups, argv, LISTEN_* and NOTIFY_SOCKET, RLIMIT_NOFILE, what setuid(0)
does, whether it can bind 127.0.0.1:N itself (``--bind-port``), and for each fd from 3 up to
3 + LISTEN_FDS (or the first closed one) the socket's family, type, protocol, address,
listening state, SO_REUSEADDR, IPV6_V6ONLY, blocking mode and FD_CLOEXEC — read from the fd.
With ``--activation SRC`` it also reports what ``unroot.activation.listeners()`` (imported from
SRC) makes of the same fds. Then it waits until stdin closes, so /proc/PID can be inspected.
Standard library only: it runs as nobody under any Python 3.
"""

import errno
import fcntl
import json
import os
import resource
import socket
import sys


def describe(fd):
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        return {"fd": fd, "error": errno.errorcode.get(exc.errno, str(exc.errno))}
    try:
        info = {
            "fd": fd,
            "family": socket.AddressFamily(sock.family).name,
            "type": socket.SocketKind(sock.type).name,
            "proto": sock.proto,
            "sockname": repr(sock.getsockname()),
            "listening": sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN),
            "reuseaddr": sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR),
            "blocking": not fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK,
            "cloexec": bool(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC),
        }
        if sock.family == socket.AF_INET6:
            info["v6only"] = sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)
        return info
    finally:
        sock.detach()


def main(argv):
    bind_port = None
    activation = None
    if argv[:1] == ["--bind-port"]:
        bind_port, argv = int(argv[1]), argv[2:]
    if argv[:1] == ["--activation"]:
        activation, argv = argv[1], argv[2:]
    report = {
        "pid": os.getpid(),
        "argv": argv,
        "uid": os.getresuid(),
        "gid": os.getresgid(),
        "groups": sorted(os.getgroups()),
        "env": {k: v for k, v in os.environ.items() if k.startswith(("LISTEN_", "NOTIFY_"))},
        "nofile": resource.getrlimit(resource.RLIMIT_NOFILE),
    }
    count = int(os.environ.get("LISTEN_FDS", "0") or 0)
    report["fds"] = [describe(fd) for fd in range(3, 3 + count)]
    try:
        os.setuid(0)
        report["setuid0"] = "ok"
    except OSError as exc:
        report["setuid0"] = errno.errorcode.get(exc.errno, str(exc.errno))
    if bind_port is not None:
        with socket.socket() as own:
            try:
                own.bind(("127.0.0.1", bind_port))
                report["own_bind"] = "ok"
            except OSError as exc:
                report["own_bind"] = errno.errorcode.get(exc.errno, str(exc.errno))
    if activation is not None:
        sys.path.insert(0, activation)
        from unroot.activation import listeners

        found = listeners()
        report["listeners"] = {
            name: [
                [socket.AddressFamily(s.family).name, socket.SocketKind(s.type).name, s.fileno()]
                for s in socks
            ]
            for name, socks in found.items()
        }
        report["env_after"] = sorted(k for k in os.environ if k.startswith("LISTEN_"))
        for socks in found.values():
            for sock in socks:
                sock.detach()
    print(json.dumps(report), flush=True)
    sys.stdin.read()


if __name__ == "__main__":
    main(sys.argv[1:])
