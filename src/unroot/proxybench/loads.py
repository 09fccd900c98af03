"""The two loads and the CPU meter.

- :func:`throughput`: wrk, closed loop (``-t`` threads keep ``-c`` connections busy): the most
  requests per second the path gives, and wrk's own latency percentiles of that saturated load.
- :func:`fixed_rate`: ``openloop.py`` at a fixed request rate, latencies from each request's due
  time (no coordinated omission), as a histogram.
- :func:`cpu_seconds`: user + system time of a process tree from /proc/PID/stat (the root's
  reaped children included: socat forks a child per connection).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from unroot.errors import EnvironmentProblem

_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0}
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class WrkResult:
    rps: float
    requests: int
    errors: int
    #: wrk's latency distribution (50, 75, 90, 99 %), seconds.
    percentiles: dict[str, float]


def throughput(
    port: int, seconds: float, *, threads: int, conns: int, close: bool, netns: str | None
) -> WrkResult:
    argv = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds:g}s", "--latency", "--timeout", "5s"]
    if close:
        argv += ["-H", "Connection: close"]
    argv.append(f"http://127.0.0.1:{port}/")
    if netns is not None:
        argv = ["ip", "netns", "exec", netns, *argv]
    done = subprocess.run(
        argv, capture_output=True, text=True, check=False, timeout=seconds + 30, cwd="/"
    )
    out = done.stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"^\s*(\d+) requests in", out, re.MULTILINE)
    if done.returncode != 0 or rps is None or total is None:
        why = (done.stderr.strip().splitlines() or out.strip().splitlines() or ["?"])[-1]
        raise EnvironmentProblem(f"bench: wrk on port {port} failed: {why}")
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors += int(non2xx.group(1)) if non2xx else 0
    pcts = {
        p: float(v) * _UNITS[u]
        for p, v, u in re.findall(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s)\b", out, re.MULTILINE)
    }
    return WrkResult(float(rps.group(1)), int(total.group(1)), errors, pcts)


@dataclass(frozen=True)
class RateResult:
    requests: int
    completed: int
    errors: int
    max_us: float
    growth: float
    histogram: dict[int, int]


def fixed_rate(
    script: Path,
    port: int,
    *,
    rate: float,
    seconds: float,
    close: bool,
    netns: str | None,
    max_conns: int = 256,
) -> RateResult:
    argv = [sys.executable, "-I", str(script), "--port", str(port), "--rate", f"{rate:g}"]
    argv += ["--duration", f"{seconds:g}", "--max-conns", str(max_conns)]
    if close:
        argv.append("--close")
    if netns is not None:
        argv = ["ip", "netns", "exec", netns, *argv]
    done = subprocess.run(
        argv, capture_output=True, text=True, check=False, timeout=seconds + 30, cwd="/"
    )
    try:
        data = json.loads(done.stdout)
    except ValueError:
        why = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise EnvironmentProblem(f"bench: open-loop load on port {port} failed: {why}") from None
    return RateResult(
        requests=int(data["requests"]),
        completed=int(data["completed"]),
        errors=int(data["errors"]),
        max_us=float(data["max_us"]),
        growth=float(data["growth"]),
        histogram={int(k): int(v) for k, v in data["histogram"].items()},
    )


def cpu_seconds(roots: list[int], proc: Path = Path("/proc")) -> float:
    """User + system CPU of the processes under ``roots`` (descendants found through ppid) plus
    the reaped children of each root."""
    stats: dict[int, list[str]] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        stats[int(entry.name)] = text[text.rindex(")") + 2 :].split()
    children: dict[int, list[int]] = {}
    for pid, fields in stats.items():
        children.setdefault(int(fields[1]), []).append(pid)
    ticks = 0
    todo = [pid for pid in roots if pid in stats]
    for pid in todo:
        fields = stats[pid]
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (stat fields 14, 15)
        if pid in roots:
            ticks += int(fields[13]) + int(fields[14])  # cutime, cstime (16, 17)
        todo.extend(children.get(pid, []))
    return ticks / CLK_TCK


def percentile(histogram: dict[int, int], growth: float, fraction: float, max_us: float) -> float:
    """The latency (µs) below which ``fraction`` of the recorded requests fall: the upper edge
    of the bucket that holds that rank, never above the exact maximum."""
    total = sum(histogram.values())
    if total == 0:
        return float("nan")
    rank = fraction * total
    seen = 0
    for k in sorted(histogram):
        seen += histogram[k]
        if seen >= rank:
            return min(growth ** (k + 1), max_us)
    return max_us
