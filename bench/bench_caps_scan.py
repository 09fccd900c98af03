"""How fast is ``unroot caps scan`` next to ``getcap -r``?

    .venv/bin/python bench/bench_caps_scan.py [DIR] [-n 5]

Times, on a warm cache (one untimed warm-up of each first), interleaved so that background
load hits every contender alike:

* ``getcap -r DIR > /dev/null``
* ``unroot caps scan DIR --json > /dev/null`` as a subprocess (interpreter start-up counts)
* the in-process walk, ``unroot.facts.filecaps.scan([DIR])``

and prints each median, the ratio of medians against getcap, and files per second.  It also
checks that the scan sees what getcap sees: the same files with capabilities, and as many
regular files as ``find DIR -type f`` (what getcap -r examines).  No timing is asserted.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from unroot.facts.filecaps import ScanResult, scan

_SCRIPT = Path(sys.executable).parent / "unroot"
UNROOT = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "unroot"]


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def run_quiet(argv: list[str]) -> None:
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)


def getcap_view(directory: str) -> tuple[set[str], int]:
    """The lines getcap -r prints, and the number of regular files it looks at."""
    lines = subprocess.run(
        ["getcap", "-r", directory], capture_output=True, text=True, check=False
    ).stdout.splitlines()
    regular = subprocess.run(
        ["find", directory, "-type", "f"], capture_output=True, check=False
    ).stdout.count(b"\n")
    return set(lines), regular


def agreement(directory: str, result: ScanResult) -> list[str]:
    lines, regular = getcap_view(directory)
    ours = {f"{f.path} {f.caps.to_text()}" for f in result.files if f.caps is not None}
    report = []
    if ours == lines:
        report.append(f"capability files: identical to getcap -r ({len(ours)})")
    else:
        report.append(f"capability files DIFFER: only unroot {sorted(ours - lines)}")
        report.append(f"                         only getcap {sorted(lines - ours)}")
    relation = "=" if regular == result.scanned else "!="
    report.append(f"regular files: unroot {result.scanned} {relation} find -type f {regular}")
    if result.skipped:
        report.append(f"not entered (pseudo filesystems): {', '.join(result.skipped)}")
    if result.errors:
        report.append(f"errors: {len(result.errors)} (first: {result.errors[0]})")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("directory", nargs="?", default="/usr")
    parser.add_argument("-n", "--repetitions", type=int, default=5)
    args = parser.parse_args(argv)
    if shutil.which("getcap") is None:
        print("getcap not found (apt install libcap2-bin)", file=sys.stderr)
        return 3
    directory = args.directory

    contenders: dict[str, Callable[[], object]] = {
        "getcap -r": lambda: run_quiet(["getcap", "-r", directory]),
        "unroot caps scan --json (process)": lambda: run_quiet(
            [*UNROOT, "caps", "scan", directory, "--json"]
        ),
        "scan() in-process": lambda: scan([directory]),
    }
    for action in contenders.values():  # warm the dentry/inode caches and the page cache
        action()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(args.repetitions):
        for name, action in contenders.items():
            times[name].append(timed(action))

    result = scan([directory])
    print(
        f"tree: {directory}: {result.scanned} regular files, {result.directories} directories, "
        f"{len(result.files)} privileged; {args.repetitions} interleaved runs after a warm-up"
    )
    for line in agreement(directory, result):
        print(f"  {line}")
    print(f"\n{'':36}{'median s':>10}{'min s':>10}{'files/s':>12}")
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, values in times.items():
        rate = result.scanned / medians[name]
        print(f"{name:36}{medians[name]:>10.3f}{min(values):>10.3f}{rate:>12,.0f}")
    base = medians["getcap -r"]
    print("\nratio of medians (unroot / getcap):")
    for name in list(contenders)[1:]:
        print(f"  {name:34}{medians[name] / base:>6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
