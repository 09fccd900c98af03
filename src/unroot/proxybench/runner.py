"""Start every method, interleave the loads over rounds, stop everything.

In each round every method is measured once per mode (keep-alive, close) with both loads, the
order of the methods rotating from round to round, so that the load other programs put on the
machine spreads over all methods.  Each wrk run of a method is paired with a wrk run of direct
bind right before or after it (the order alternating over the rounds): the pair's ratio cancels
what other programs did to the machine at that moment, and the table shows the median of those
ratios.  A warm-up run of each method and mode comes
first and is not recorded.
"""

from __future__ import annotations

import os
import platform
import shutil
import socket
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from unroot.errors import EnvironmentProblem, UnrootError, UsageError
from unroot.proxybench import loads
from unroot.proxybench.methods import BY_KEY, Endpoint, Lab, userland_proxy_setting

MODES = ("keep-alive", "close")
PERCENTILES = (0.5, 0.9, 0.99, 0.999)


@dataclass(frozen=True)
class Settings:
    methods: tuple[str, ...]
    rounds: int = 5
    seconds: int = 2  # wrk takes whole seconds
    warmup: int = 1
    rate: float = 250.0
    rate_seconds: float = 4.0
    threads: int = 2
    connections: int = 64
    workers: int = 2
    docker_image: str = "unroot-base:bookworm"

    def check(self) -> None:
        bounds = {
            "--rounds": (self.rounds, 1, 20),
            "--duration": (self.seconds, 1, 30),
            "--warmup": (self.warmup, 0, 10),
            "--rate": (self.rate, 10, 20000),
            "--rate-duration": (self.rate_seconds, 0.2, 30),
            "--threads": (self.threads, 1, 64),
            "--connections": (self.connections, 1, 4096),
            "--workers": (self.workers, 1, 64),
        }
        for flag, (value, low, high) in bounds.items():
            if not low <= value <= high:
                raise UsageError(f"bench: {flag} must be in {low:g}..{high:g}, not {value:g}")
        if self.connections < self.threads:
            raise UsageError("bench: --connections must be at least --threads (wrk)")

    def estimate(self) -> float:
        """Seconds the measurements take (start-up and stop not counted)."""
        per = len(self.methods) * len(MODES)
        paired = (len(self.methods) - 1) * len(MODES) * self.rounds * self.seconds
        return paired + per * (self.warmup + self.rounds * (self.seconds + self.rate_seconds + 0.3))


@dataclass
class Series:
    """One method in one mode, over the rounds."""

    rps: list[float] = field(default_factory=list)
    ratio: list[float] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)
    errors: int = 0
    wrk_latency: list[dict[str, float]] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    rate_requests: int = 0
    rate_completed: int = 0
    rate_errors: int = 0
    rate_max_us: float = 0.0
    growth: float = 1.02
    histogram: dict[int, int] = field(default_factory=dict)


@dataclass
class Outcome:
    settings: Settings
    run_id: str
    environment: dict[str, Any]
    endpoints: dict[str, Endpoint]
    series: dict[tuple[str, str], Series]
    elapsed: float


Progress = Callable[[str], None]


def run(settings: Settings, lab: Lab, progress: Progress) -> Outcome:
    """Measure; the caller owns ``lab`` and cleans it up (also on an exception or a signal)."""
    settings.check()
    began = time.monotonic()
    lab.workers = settings.workers
    lab.docker_image = settings.docker_image
    environment = describe_environment(settings)
    progress(f"run {lab.run_id}: starting {len(settings.methods)} methods")
    backend = lab.start_backend()
    endpoints: dict[str, Endpoint] = {}
    for key in settings.methods:
        endpoints[key] = lab.start(key, backend)
    script = lab.workdir() / "openloop.py"
    for ep in endpoints.values():
        wait_http(ep, script)
    if "docker-proxy" in endpoints:
        environment["docker_proxy_processes"] = len(endpoints["docker-proxy"].proxy_pids())
    series = {(k, mode): Series() for k in endpoints for mode in MODES}
    keys = list(endpoints)
    total = len(keys) * len(MODES) * settings.rounds
    done = 0
    if settings.warmup > 0:
        for key in keys:
            for mode in MODES:
                progress(f"warm-up: {key} {mode}")
                measure_wrk(endpoints[key], settings, mode, settings.warmup)
    for round_no in range(settings.rounds):
        shift = round_no % len(keys)
        for key in keys[shift:] + keys[:shift]:
            ep = endpoints[key]
            for mode in MODES:
                progress(
                    f"round {round_no + 1}/{settings.rounds}: {key} {mode} "
                    f"({done}/{total} done, {time.monotonic() - began:.0f} s)"
                )
                # a ratio from a pair of adjacent runs (direct bind right before or after,
                # alternating over the rounds): a burst of other load hits both alike
                pair = [key] if key == "direct" else ["direct", key]
                if round_no % 2:
                    pair.reverse()
                rps = {who: wrk_run(endpoints[who], series[(who, mode)], settings, mode)
                       for who in pair}  # fmt: skip
                s = series[(key, mode)]
                s.ratio.append(rps[key] / rps["direct"] if rps["direct"] else float("nan"))
                rate = loads.fixed_rate(
                    script,
                    ep.port,
                    rate=settings.rate,
                    seconds=settings.rate_seconds,
                    close=mode == "close",
                    netns=ep.netns,
                )
                s.rate_requests += rate.requests
                s.rate_completed += rate.completed
                s.rate_errors += rate.errors
                s.rate_max_us = max(s.rate_max_us, rate.max_us)
                s.growth = rate.growth
                for bucket, count in rate.histogram.items():
                    s.histogram[bucket] = s.histogram.get(bucket, 0) + count
                done += 1
    progress(f"done: {total} measurements in {time.monotonic() - began:.0f} s")
    return Outcome(settings, lab.run_id, environment, endpoints, series, time.monotonic() - began)


def wrk_run(ep: Endpoint, s: Series, settings: Settings, mode: str) -> float:
    """One recorded wrk run of ``ep`` (and its proxy's CPU time): its requests/s."""
    pids = ep.proxy_pids()
    cpu0 = loads.cpu_seconds(pids) if pids else 0.0
    result = measure_wrk(ep, settings, mode, settings.seconds)
    cpu1 = loads.cpu_seconds(ep.proxy_pids()) if pids else 0.0
    s.rps.append(result.rps)
    s.requests.append(result.requests)
    s.errors += result.errors
    s.wrk_latency.append(result.percentiles)
    if pids:
        s.cpu.append(max(0.0, cpu1 - cpu0))
    return result.rps


def measure_wrk(ep: Endpoint, settings: Settings, mode: str, seconds: float) -> loads.WrkResult:
    return loads.throughput(
        ep.port,
        seconds,
        threads=settings.threads,
        conns=settings.connections,
        close=mode == "close",
        netns=ep.netns,
    )


def wait_http(ep: Endpoint, script: object, timeout: float = 20.0) -> None:
    """Until the endpoint answers a request (from its namespace)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ep.netns is None:
            try:
                with socket.create_connection(("127.0.0.1", ep.port), timeout=1) as conn:
                    conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    if conn.recv(64).startswith(b"HTTP/1.1 200"):
                        return
            except OSError:
                pass
        else:
            probe = subprocess.run(
                ["ip", "netns", "exec", ep.netns, "bash", "-c",
                 f"exec 3<>/dev/tcp/127.0.0.1/{ep.port} && "
                 "printf 'GET / HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n' >&3 && "
                 "head -c 12 <&3"],
                capture_output=True, text=True, check=False, timeout=5,
            )  # fmt: skip
            if probe.stdout.startswith("HTTP/1.1 200"):
                return
        time.sleep(0.1)
    raise EnvironmentProblem(
        f"bench: {BY_KEY[ep.key].label} does not answer on 127.0.0.1:{ep.port} within {timeout:g} s"
    )


def _version(argv: list[str], pattern: str = "") -> str:
    if shutil.which(argv[0]) is None:
        return "not installed"
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    text = (done.stdout + done.stderr).strip().splitlines()
    line = next((t for t in text if pattern in t), text[0] if text else "unknown")
    return line.strip()


def describe_environment(settings: Settings) -> dict[str, Any]:
    env: dict[str, Any] = {
        "kernel": platform.release(),
        "cpus": os.cpu_count() or 1,
        "loadavg_at_start": list(os.getloadavg()),
        "python": platform.python_version(),
        "wrk": _version(["wrk", "--version"], "wrk"),
    }
    if {"nft", "nft-direct"} & set(settings.methods):
        env["nft"] = _version(["nft", "--version"])
    if "socat" in settings.methods:
        env["socat"] = _version(["socat", "-V"], "socat version")
    if "nginx" in settings.methods:
        env["nginx"] = _version(["nginx", "-v"])
    if "docker-proxy" in settings.methods:
        from unroot.engine.docker import Docker

        try:
            server = Docker(timeout=20).version()["Server"]
            env["engine"] = f"Docker {server.get('Version', '?')}"
        except UnrootError as exc:  # reported when the method starts
            env["engine"] = f"unknown ({exc})"
        env["userland_proxy"] = userland_proxy_setting()
        env["docker_image"] = settings.docker_image
    return env


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
