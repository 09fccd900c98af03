"""How fast does ``unroot doctor --error`` read a log?  (``unroot.doctor.patterns.recognise``)

    .venv/bin/python bench/bench_patterns.py [-n 5]

Times ``recognise`` (median of ``-n`` runs, after one untimed warm-up) on:

* a quiet log: 100 000 access-log lines, none an error;
* a log of 100 000 lines, one in ten an error of a docker-compose run (colours, CRLF);
* a noisy log: 20 000 lines, every one an error;
* a 16 MiB log (the most ``--error -`` reads from stdin) of the second kind;
* 1 MB lines built against the regexes (a needle repeated, separators repeated).

and prints MB/s for each.  No timing is asserted; tests/doctor/test_patterns.py has a hang guard.
"""

from __future__ import annotations

import argparse
import statistics
import time

from unroot.doctor.patterns import recognise

ROOTLESS = (
    "ERROR: for homer  Cannot start service homer: driver failed programming external "
    "connectivity on endpoint homer (1f2e): Error starting userland proxy: error while calling "
    "PortManager.AddPort(): cannot expose privileged port 80, you can add "
    "'net.ipv4.ip_unprivileged_port_start=80' to /etc/sysctl.conf (currently 1024), or set "
    "CAP_NET_BIND_SERVICE on rootlesskit binary, or choose a larger port number (>= 1024): "
    "listen tcp4 0.0.0.0:80: bind: permission denied\r\n"
)
ERRORS = (
    ROOTLESS,
    "\x1b[36mweb_1  |\x1b[0m nginx: [emerg] bind() to 0.0.0.0:443 failed "
    "(13: Permission denied)\r\n",
    "\x1b[33mapp_1  |\x1b[0m PermissionError: [Errno 13] Permission denied: "
    "'/etc/x/privkey.pem'\r\n",
    "bash: line 1: cd: live: Permission denied\r\n",
    "Error: loading initial config: loading new config: http app module: start: listening on "
    ":80: listen tcp :80: bind: permission denied\r\n",
)


def access(i: int) -> str:
    return f"2024-01-01T00:00:{i % 60:02d}Z web_1 | 10.0.0.{i % 255} - - GET /i HTTP/1.1 200 {i}\n"


def mixed(lines: int) -> str:
    return "".join(
        ERRORS[i // 10 % len(ERRORS)] if i % 10 == 0 else access(i) for i in range(lines)
    )


def cases() -> dict[str, str]:
    sixteen = mixed(100_000)
    sixteen = sixteen * (16 * 2**20 // len(sixteen))
    return {
        "quiet 100k lines": "".join(access(i) for i in range(100_000)),
        "mixed 100k lines": mixed(100_000),
        "noisy 20k lines": "".join(ERRORS[i % len(ERRORS)] for i in range(20_000)),
        "mixed 16 MiB": sixteen,
        "1 MB: needle x35k": "cannot expose privileged port 8" * 35_000,
        "1 MB: 'a: ' x350k": "a: " * 350_000 + "Permission denied",
        "1 MB: open x200k": "open " * 200_000 + ": permission denied",
        "1 MB: ESC[ x500k": "\x1b[" * 500_000,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5, help="timed runs per case (median shown)")
    args = parser.parse_args()
    for name, text in cases().items():
        recognise(text)
        times = []
        for _ in range(args.n):
            start = time.perf_counter()
            found = recognise(text)
            times.append(time.perf_counter() - start)
        median = statistics.median(times)
        size = len(text.encode()) / 1e6
        print(
            f"{name:<20} {size:7.2f} MB  {median * 1000:8.1f} ms  {size / median:7.1f} MB/s"
            f"  {len(found)} matches"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
