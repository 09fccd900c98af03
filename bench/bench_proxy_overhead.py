"""Does the proxy matter?  The same HTTP backend served six ways on this machine (seed 000, 004).

    .venv/bin/python bench/bench_proxy_overhead.py [--duration 2] [--rounds 4] [-c 64] [-t 2]

The backend is bench/backend/httpd.py (one epoll loop per worker, ``--workers`` processes, as
nobody), which can bind a port itself or serve an inherited fd:

(a) direct      the backend binds 127.0.0.1:HIGH itself
(a') control    a second, identical copy of (a): its ratio to (a) is the noise floor
(b) unroot run  ``unroot run -l 127.0.0.1:80 --user nobody -- httpd.py --listen-fds``: unroot
                binds :80 and execs the backend, which owns the socket — nothing in between
(b') supervise  the same with ``--supervise``: a parent stays, but off the data path
(c) docker-proxy  Docker's userland proxy (Debian docker.io: /usr/sbin/docker-proxy, run
                standalone as dockerd runs it) in front of (a)'s backend
(d) socat       ``socat TCP-LISTEN:…,fork TCP:127.0.0.1:HIGH`` in front of (a)'s backend
(e) nginx       nginx as a reverse proxy (upstream keepalive) in front of (a)'s backend

Load: wrk, with keep-alive and with ``Connection: close``, ``--duration`` seconds per run after a
1 s warm-up.  In each of ``--rounds`` rounds (the order rotates), every method is measured next
to a fresh run of (a) — (a) first in rounds 1, 3, ..., second in the others, so neither side of
a pair is favoured: the ratio of a pair cancels the load other programs put on the machine at
that moment.  Printed: median requests/s and p99 latency over all runs, the median of the
per-pair ratios to (a), and wrk's error count.  (a') measures the noise floor.  The goal for
(b) is ≥ 0.97 of (a) in requests/s.  No assertion: the numbers are the result.

Debian packages: wrk (required); socat, docker.io, nginx-light (each method is skipped with a
note when its program is missing).  Runs as root (binds :80; the backend runs as nobody).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from unroot.proxybench.methods import nginx_proxy_conf

ROOT = Path(__file__).resolve().parents[1]
HTTPD = ROOT / "bench" / "backend" / "httpd.py"
_SCRIPT = Path(sys.executable).parent / "unroot"
UNROOT = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "unroot"]
PYTHON = shutil.which("python3", path="/usr/bin:/bin") or sys.executable
NOBODY = 65534
ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}


@dataclass
class Method:
    key: str
    label: str
    port: int = 0
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    note: str = ""
    rps: dict[str, list[float]] = field(default_factory=lambda: {"keep-alive": [], "close": []})
    p99: dict[str, list[float]] = field(default_factory=lambda: {"keep-alive": [], "close": []})
    errors: dict[str, int] = field(default_factory=lambda: {"keep-alive": 0, "close": 0})
    rps_ratio: dict[str, list[float]] = field(
        default_factory=lambda: {"keep-alive": [], "close": []}
    )
    p99_ratio: dict[str, list[float]] = field(
        default_factory=lambda: {"keep-alive": [], "close": []}
    )


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def pick_port(preferred: list[int], low: int, high: int) -> int:
    candidates: list[int] = [*preferred, *range(low, high)]
    for port in candidates:
        if port_free(port):
            return port
    raise SystemExit(f"no free port in {low}..{high}")


def wait_http(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if conn.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"nothing answers HTTP on 127.0.0.1:{port}")


def spawn(
    argv: list[str], *, as_nobody: bool = False, stdout: int = subprocess.DEVNULL
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own session (as nobody:nogroup without groups if ``as_nobody``)."""
    who = NOBODY if as_nobody else None
    return subprocess.Popen(
        argv,
        env=ENV,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        user=who,
        group=who,
        extra_groups=[] if as_nobody else None,
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def start_direct(m: Method, workers: int, backend: int) -> None:
    m.port = backend
    m.procs.append(
        spawn(
            [PYTHON, "-I", str(HTTPD), "--port", str(backend), "--workers", str(workers)],
            as_nobody=True,
        )
    )


def start_unroot(m: Method, workers: int, supervise: bool) -> None:
    m.port = pick_port([80] if not supervise else [81], 600, 1024)
    args = ["--supervise"] if supervise else []
    backend = [PYTHON, "-I", str(HTTPD), "--listen-fds", "--workers", str(workers)]
    m.procs.append(
        spawn(
            [*UNROOT, "run", *args, "-l", f"127.0.0.1:{m.port}", "--user", "nobody", "--", *backend]
        )
    )


def start_docker_proxy(m: Method, backend: int) -> None:
    exe = shutil.which("docker-proxy", path=ENV["PATH"])
    if exe is None:
        m.note = "docker-proxy not found (apt-get install docker.io)"
        return
    m.port = pick_port([8081], 20000, 30000)
    # dockerd hands docker-proxy a pipe as fd 3 and reads "0\n" from it once it listens;
    # without an open fd 3 docker-proxy closes its own listener (which landed on fd 3).
    argv = [exe, "-proto", "tcp", "-host-ip", "127.0.0.1", "-host-port", str(m.port)]
    argv += ["-container-ip", "127.0.0.1", "-container-port", str(backend)]
    proc = spawn(["sh", "-c", 'exec "$0" "$@" 3>&1', *argv], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    ready = proc.stdout.readline()
    if ready.strip() != b"0":
        m.note = f"docker-proxy failed: {ready!r}"
    m.procs.append(proc)


def start_socat(m: Method, backend: int) -> None:
    exe = shutil.which("socat", path=ENV["PATH"])
    if exe is None:
        m.note = "socat not found (apt-get install socat)"
        return
    m.port = pick_port([8082], 20000, 30000)
    listen = f"TCP-LISTEN:{m.port},bind=127.0.0.1,fork,reuseaddr,backlog=4096"
    m.procs.append(spawn([exe, listen, f"TCP:127.0.0.1:{backend}"]))


def start_nginx(m: Method, backend: int, workers: int, tmp: Path) -> None:
    exe = shutil.which("nginx", path=ENV["PATH"])
    if exe is None:
        m.note = "nginx not found (apt-get install nginx-light)"
        return
    m.port = pick_port([8083], 20000, 30000)
    conf = tmp / "nginx.conf"
    conf.write_text(nginx_proxy_conf(tmp, workers, backend, m.port))
    m.procs.append(spawn([exe, "-c", str(conf), "-p", str(tmp)]))


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk(
    port: int, seconds: float, threads: int, conns: int, close: bool
) -> tuple[float, float, int]:
    """(requests/s, p99 latency in ms, errors) of one wrk run."""
    argv = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds:g}s", "--latency"]
    if close:
        argv += ["-H", "Connection: close"]
    out = subprocess.run(
        [*argv, f"http://127.0.0.1:{port}/"], capture_output=True, text=True, check=False
    ).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\b", out, re.MULTILINE)
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors += int(non2xx.group(1)) if non2xx else 0
    if rps is None or p99 is None:
        return 0.0, float("nan"), errors or -1
    return float(rps.group(1)), float(p99.group(1)) * _UNITS[p99.group(2)], errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=2.0, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=4, help="paired rounds (median)")
    parser.add_argument("-t", "--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("-c", "--connections", type=int, default=64, help="wrk connections")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="backend procs")
    parser.add_argument("--skip", action="append", default=[], help="method key to leave out")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench_proxy_overhead: run as root (it binds :80)")
    if shutil.which("wrk") is None:
        raise SystemExit("bench_proxy_overhead: needs wrk (apt-get install wrk)")

    backend = pick_port([8080], 20000, 30000)
    methods = [
        Method("a", "(a) direct bind"),
        Method("a'", "(a') direct, 2nd copy (noise)"),
        Method("b", "(b) unroot run"),
        Method("b'", "(b') unroot run --supervise"),
        Method("c", "(c) docker-proxy"),
        Method("d", "(d) socat"),
        Method("e", "(e) nginx reverse proxy"),
    ]
    methods = [m for m in methods if m.key not in args.skip]
    starters: dict[str, Callable[[Method], None]] = {
        "a": lambda m: start_direct(m, args.workers, backend),
        "a'": lambda m: start_direct(m, args.workers, pick_port([8090], 20000, 30000)),
        "b": lambda m: start_unroot(m, args.workers, supervise=False),
        "b'": lambda m: start_unroot(m, args.workers, supervise=True),
        "c": lambda m: start_docker_proxy(m, backend),
        "d": lambda m: start_socat(m, backend),
    }
    with tempfile.TemporaryDirectory(prefix="unroot-bench-") as tmp:
        starters["e"] = lambda m: start_nginx(m, backend, args.workers, Path(tmp))
        if "a" not in {m.key for m in methods}:
            start_direct(Method("a", "backend"), args.workers, backend)
        try:
            for m in methods:
                starters[m.key](m)
            wait_http(backend)
            live = []
            for m in methods:
                if m.note:
                    continue
                wait_http(m.port)
                live.append(m)
            print(
                f"backend: {HTTPD.relative_to(ROOT)} x{args.workers} workers as nobody; "
                f"wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s, "
                f"{args.rounds} round(s); {os.cpu_count()} CPUs",
                flush=True,
            )
            for m in live:
                for close in (False, True):
                    wrk(m.port, 1, args.threads, args.connections, close)  # warm-up
            base = next((m for m in live if m.key == "a"), None)
            others = [m for m in live if m is not base]
            for round_no in range(args.rounds):
                shift = round_no % max(1, len(others))
                for m in others[shift:] + others[:shift]:
                    for mode, close in (("keep-alive", False), ("close", True)):
                        # (a) right before each other method: a same-moment pair, so that
                        # background load hits both alike; the ratio is the pair's
                        pair = [base, m] if base is not None else [m]
                        if round_no % 2:
                            pair.reverse()  # who goes first alternates: no order bias
                        for who in pair:
                            rps, p99, errors = wrk(
                                who.port, args.duration, args.threads, args.connections, close
                            )
                            who.rps[mode].append(rps)
                            who.p99[mode].append(p99)
                            who.errors[mode] += errors
                        if base is not None:
                            m.rps_ratio[mode].append(m.rps[mode][-1] / base.rps[mode][-1])
                            m.p99_ratio[mode].append(m.p99[mode][-1] / base.p99[mode][-1])
                    print(
                        f"  round {round_no + 1}: {m.label:28} req/s vs (a): keep-alive "
                        f"{m.rps_ratio['keep-alive'][-1] if base else 0:5.2f}  close "
                        f"{m.rps_ratio['close'][-1] if base else 0:5.2f}",
                        file=sys.stderr,
                        flush=True,
                    )
        finally:
            for m in methods:
                for proc in m.procs:
                    stop(proc)
    report(methods, live)
    return 0


def report(methods: list[Method], live: list[Method]) -> None:
    base = next((m for m in live if m.key == "a"), None)
    print()
    print("req/s and p99: medians of every run; ratio: median of the per-pair ratios to (a)")
    header = (
        f"{'method':30} {'port':>5} | {'req/s':>9} {'ratio':>5} {'p99 ms':>7} {'ratio':>5} "
        f"{'err':>4}"
    )
    for mode in ("keep-alive", "close"):
        print(f"{mode}:")
        print(header)
        print("-" * len(header))
        for m in methods:
            if m.note:
                print(f"{m.label:30} {'':>5} | skipped: {m.note}")
                continue
            rps, p99 = statistics.median(m.rps[mode]), statistics.median(m.p99[mode])
            if m is base:
                r_rps = r_p99 = " 1.00"
            elif base is not None and m.rps_ratio[mode]:
                r_rps = f"{statistics.median(m.rps_ratio[mode]):5.2f}"
                r_p99 = f"{statistics.median(m.p99_ratio[mode]):5.2f}"
            else:
                r_rps = r_p99 = "  -  "
            print(
                f"{m.label:30} {m.port:>5} | {rps:>9.0f} {r_rps} {p99:>7.2f} {r_p99} "
                f"{m.errors[mode]:>4}"
            )
        print()
    unroot = next((m for m in live if m.key == "b"), None)
    if base and unroot:
        for mode in ("keep-alive", "close"):
            pairs = unroot.rps_ratio[mode]
            print(
                f"(b)/(a) requests/s, {mode}: {statistics.median(pairs):.3f} "
                f"(pairs {min(pairs):.2f}..{max(pairs):.2f}; goal >= 0.97)"
            )


if __name__ == "__main__":
    sys.exit(main())
