"""How long does ``unroot run`` take to get a service going, next to starting Python at all?

    sudo .venv/bin/python bench/bench_launch.py [-n 40] [--port 80]

Times, interleaved in random order so that background load hits each alike, after a warm-up:

* ``python3 -I -S -c pass`` — the interpreter's bare start-up (the yardstick; goal: <= 3x)
* ``unroot run -l 127.0.0.1:80 --user nobody -- /bin/true`` — parse, look the command up as
  ``nobody``, bind, drop, verify from /proc, move the fd, exec, and /bin/true runs
* ``/bin/true`` alone — what exec of the service itself costs

and prints the medians (with the 10th and 90th percentiles) and the ratio of medians. Then it
shows where ``unroot run``'s own imports go (``python -X importtime``), top-level modules by
cumulative time, so a new import on the exec path shows up here. Needs root (binds port 80).
The unroot package is byte-compiled first, as an installed wheel is. No timing is asserted.
"""

from __future__ import annotations

import argparse
import compileall
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import unroot

_SCRIPT = Path(sys.executable).parent / "unroot"
UNROOT = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "unroot"]


def free_port(preferred: int) -> int:
    """``preferred`` when nothing listens there, else some free port below 1024."""
    candidates = [preferred, *random.sample(range(600, 1024), 100)]
    for port in candidates:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise SystemExit("bench_launch: no free port below 1024")


class PortTaken(Exception):
    """Someone else bound the port between our check and the launch."""


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    # No terminal and a session of its own, as under systemd or Docker: the exec path unroot
    # takes there (from a terminal it forks a relay instead: docs/run.md, "The terminal").
    result = subprocess.run(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        message = result.stderr.decode().strip()
        if "already in use" in message:
            raise PortTaken(message)
        raise SystemExit(f"bench_launch: {argv} failed: {message}")
    return elapsed


def summary(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    decile = max(1, len(ms) // 10)
    return (
        f"median {statistics.median(ms):7.2f} ms   "
        f"p10 {ms[decile - 1]:6.2f}   p90 {ms[-decile]:6.2f}"
    )


def import_profile(argv: list[str], top: int) -> None:
    """Top-level imports of one ``unroot run`` by cumulative microseconds (-X importtime)."""
    script = argv[0] if argv[0] != sys.executable else None
    command = [sys.executable, "-X", "importtime"]
    command += [script, *argv[1:]] if script else argv[1:]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    rows = []
    for line in result.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2][1:]  # nested imports are indented further
        if not name.startswith(" "):
            rows.append((int(parts[1]), name))
    total = sum(us for us, _ in rows)
    print(f"\n`unroot run` imports at top level: {total / 1000:.1f} ms in all; the largest:")
    for us, name in sorted(rows, reverse=True)[:top]:
        print(f"  {us / 1000:6.2f} ms  {name}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=40, help="rounds (default 40)")
    parser.add_argument("--port", type=int, default=80, help="preferred port (default 80)")
    parser.add_argument("--top", type=int, default=12, help="imports to list (default 12)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench_launch: needs root (binds a port below 1024 and drops to nobody)")
        return 0
    compileall.compile_dir(str(Path(unroot.__file__).parent), quiet=1)
    launch = [*UNROOT, "run", "-l", "", "--user", "nobody", "--", "/bin/true"]
    launch[launch.index("-l") + 1] = f"127.0.0.1:{free_port(args.port)}"
    names = ("python3 -I -S -c pass", "unroot run -l 127.0.0.1:PORT --user nobody -- /bin/true")
    contenders = {
        names[0]: [sys.executable, "-I", "-S", "-c", "pass"],
        names[1]: launch,
        "/bin/true": ["/bin/true"],
    }
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    rounds = -1  # the first round is a warm-up: page cache, pyc files
    while rounds < args.n:
        order = list(contenders.items())
        random.shuffle(order)
        try:
            times = {name: timed(argv) for name, argv in order}
        except PortTaken:  # another test or bench took it: move on, redo the round
            launch[launch.index("-l") + 1] = f"127.0.0.1:{free_port(random.randrange(600, 1024))}"
            continue
        if rounds >= 0:
            for name, elapsed in times.items():
                samples[name].append(elapsed)
        rounds += 1
    print(f"port used: {launch[launch.index('-l') + 1]}")
    print(f"{args.n} interleaved rounds, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    width = max(len(name) for name in contenders)
    for name in contenders:
        print(f"  {name:<{width}}  {summary(samples[name])}")
    base, launch = (statistics.median(samples[name]) for name in list(contenders)[:2])
    print(f"ratio unroot run / python -I -S: {launch / base:.2f}x (goal <= 3x)")
    import_profile(list(contenders.values())[1], args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
