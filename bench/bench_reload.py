"""Zero-downtime reloads: connection errors over N SIGHUP reloads, and how long a switch takes.

    .venv/bin/python bench/bench_reload.py [-n 20] [--ready tcp,notify,none] [--interval 0.3]

For each readiness mode, ``unroot run --supervise --ready MODE -l 127.0.0.1:PORT --user nobody
-- httpd.py --listen-fds --workers 2`` (bench/backend/httpd.py) serves while

* wrk (keep-alive, 2 threads, 32 connections) loads it for the whole run, and
* a probe thread opens a new connection per request as fast as it can, recording which
  generation answered (the ``X-Gen`` header) and every error,

and the supervisor gets ``-n`` SIGHUPs, one every ``--interval`` s after the previous reload
finished.  Reported per mode: failed requests (wrk's socket errors and non-2xx, the probe's
errors, refused connects — the goal is 0), and the median and p95 of

* SIGHUP → new generation serving: the probe's first answer from the new generation;
* SIGHUP → ready: the supervisor's "generation N ready" log line (its readiness check);
* ready → old generation gone: its "stopped" line (the old one drains its connections).

No assertion: the numbers are the result.  Needs root and wrk (apt-get install wrk).
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HTTPD = ROOT / "bench" / "backend" / "httpd.py"
_SCRIPT = Path(sys.executable).parent / "unroot"
UNROOT = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "unroot"]
PYTHON = shutil.which("python3", path="/usr/bin:/bin") or sys.executable
ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}


def free_port() -> int:
    for port in range(700, 1024):
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise SystemExit("no free port in 700..1023")


class Log:
    """The supervisor's stderr lines with their arrival times."""

    def __init__(self, stream: object) -> None:
        self.lines: list[tuple[float, str]] = []
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            with self.cond:
                self.lines.append((time.monotonic(), line.rstrip("\n")))
                self.cond.notify_all()

    def wait(self, pattern: str, timeout: float = 60) -> tuple[float, re.Match[str]]:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for at, line in self.lines:
                    match = regex.search(line)
                    if match:
                        return at, match
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SystemExit(f"bench_reload: no {pattern!r} in the supervisor's log")
                self.cond.wait(left)


class Probe:
    """New connection per request, as fast as it goes; (time, generation) of every answer."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.answers = 0
        self.first: dict[str, float] = {}  # generation → when it first answered
        self.errors: list[str] = []
        self.refused = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                conn.request("GET", "/", headers={"Connection": "close"})
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    self.errors.append(f"status {response.status}")
                self.answers += 1
                self.first.setdefault(str(response.getheader("X-Gen")), time.monotonic())
            except ConnectionRefusedError:
                self.refused += 1
            except (OSError, http.client.HTTPException) as exc:
                self.errors.append(repr(exc))
            finally:
                conn.close()

    def first_from(self, gen: str, timeout: float = 30) -> float:
        """When generation ``gen`` first answered the probe (waits for it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if gen in self.first:
                return self.first[gen]
            time.sleep(0.001)
        raise SystemExit(f"bench_reload: generation {gen} never answered the probe")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run_mode(mode: str, count: int, interval: float) -> dict[str, object]:
    port = free_port()
    backend = [PYTHON, "-I", str(HTTPD), "--listen-fds", "--workers", "2"]
    if mode == "notify":
        backend.append("--notify")
    argv = [*UNROOT, "run", "--supervise", "--ready", mode, "-l", f"127.0.0.1:{port}"]
    sup = subprocess.Popen(
        [*argv, "--user", "nobody", "--", *backend],
        env=ENV,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    log = Log(sup.stderr)
    try:
        _, match = log.wait(r"generation 1 started \(pid (\d+)\)")
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        seconds = count * (interval + 1.5) + 5
        wrk = subprocess.Popen(
            ["wrk", "-t2", "-c32", f"-d{seconds:.0f}s", f"http://127.0.0.1:{port}/"],
            stdout=subprocess.PIPE,
            text=True,
        )
        probe = Probe(port)
        time.sleep(0.5)
        serving, ready, drained = [], [], []
        for number in range(2, count + 2):
            sent = time.monotonic()
            os.kill(sup.pid, signal.SIGHUP)
            at_ready, match = log.wait(rf"generation {number} \(pid (\d+)\) ready")
            first = probe.first_from(match.group(1))
            at_stopped, _ = log.wait(rf"generation {number - 1} \(pid \d+\) stopped")
            serving.append(first - sent)
            ready.append(at_ready - sent)
            drained.append(at_stopped - at_ready)
            time.sleep(interval)
        probe.stop.set()
        probe.thread.join(15)
        wrk.send_signal(signal.SIGINT)  # wrk prints its summary on SIGINT
        out, _ = wrk.communicate(timeout=30)
    finally:
        if sup.poll() is None:
            sup.send_signal(signal.SIGTERM)
            try:
                sup.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(sup.pid, signal.SIGKILL)
                sup.wait()
    wrk_errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    wrk_errors += int(non2xx.group(1)) if non2xx else 0
    total = re.search(r"(\d+) requests in", out)
    return {
        "mode": mode,
        "reloads": count,
        "wrk_requests": int(total.group(1)) if total else 0,
        "wrk_errors": wrk_errors,
        "probe_requests": probe.answers,
        "probe_errors": len(probe.errors),
        "refused": probe.refused,
        "serving": serving,
        "ready": ready,
        "drained": drained,
        "sample_errors": probe.errors[:3],
    }


def ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1e3:7.0f} {pct(values, 0.95) * 1e3:7.0f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--reloads", type=int, default=20)
    parser.add_argument("--ready", default="tcp,notify,none", help="modes, comma-separated")
    parser.add_argument("--interval", type=float, default=0.3, help="pause between reloads (s)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench_reload: run as root (unroot run binds a port below 1024)")
    if shutil.which("wrk") is None:
        raise SystemExit("bench_reload: needs wrk (apt-get install wrk)")
    results = []
    for mode in args.ready.split(","):
        print(f"--ready {mode}: {args.reloads} reloads under load ...", file=sys.stderr)
        results.append(run_mode(mode, args.reloads, args.interval))
    print()
    print(
        f"{'ready':7} {'reloads':>7} | {'wrk req':>8} {'err':>4} | {'probe req':>9} {'err':>4} "
        f"{'refused':>7} | {'HUP->serving ms':>15} | {'HUP->ready ms':>15} | "
        f"{'ready->old gone':>15}"
    )
    print(f"{'':7} {'':>7} | {'':>8} {'':>4} | {'':>9} {'':>4} {'':>7} |" + " median     p95 |" * 3)
    for r in results:
        print(
            f"{r['mode']:7} {r['reloads']:>7} | {r['wrk_requests']:>8} {r['wrk_errors']:>4} | "
            f"{r['probe_requests']:>9} {r['probe_errors']:>4} {r['refused']:>7} | "
            f"{ms(r['serving'])} | {ms(r['ready'])} | {ms(r['drained'])}"  # type: ignore[arg-type]
        )
        if r["sample_errors"]:
            print(f"  errors: {r['sample_errors']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
