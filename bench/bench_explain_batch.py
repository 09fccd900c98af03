"""How many questions per second does ``unroot explain batch`` answer?

Baseline, measured in the same run: the same interpreter reading the same JSON lines, parsing
and re-serialising each one (``json.loads`` + ``json.dumps``) — the floor any JSON-lines tool
pays. Prints answers/s and the ratio of medians (unroot / baseline). No asserts: numbers only.

    .venv/bin/python bench/bench_explain_batch.py [--questions N] [--repeat R]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CAPS = [
    "net_bind_service",
    "net_raw",
    "setuid",
    "setgid",
    "dac_override",
    "dac_read_search",
    "chown",
    "kill",
    "sys_admin",
    "setpcap",
]

BASELINE = (
    "import json,sys\n"
    "w=sys.stdout.write\n"
    "for line in sys.stdin:\n"
    "    w(json.dumps(json.loads(line),separators=(',',':'))+'\\n')\n"
)

FS = {
    "/": {"type": "dir", "mode": "0755", "uid": 0, "gid": 0},
    "/etc": {"type": "dir", "mode": "0755", "uid": 0, "gid": 0},
    "/etc/letsencrypt": {"type": "dir", "mode": "0755", "uid": 0, "gid": 0},
    "/etc/letsencrypt/live": {"type": "dir", "mode": "0700", "uid": 0, "gid": 0},
    "/etc/letsencrypt/live/key.pem": {"type": "file", "mode": "0600", "uid": 0, "gid": 0},
}


def question(rng: random.Random) -> dict[str, object]:
    kind = rng.choice(["exec", "exec", "bind", "access"])
    some = lambda: rng.sample(CAPS, rng.randint(0, 3))  # noqa: E731
    if kind == "exec":
        uid = rng.choice([0, 1000, 10001])
        q: dict[str, object] = {
            "kind": "exec",
            "uid": [uid, uid, uid],
            "bounding": some() or "all",
            "nnp": rng.random() < 0.3,
        }
        if uid:
            perm = some()
            q |= {"permitted": perm, "effective": perm}
        if rng.random() < 0.7:
            q["file_caps"] = f"{','.join(some() or ['net_bind_service'])}=+e{rng.choice('pi')}"
        return q
    if kind == "bind":
        return {
            "kind": "bind",
            "port": rng.choice([0, 53, 80, 443, 1023, 1024, 8080]),
            "proto": rng.choice(["tcp", "udp"]),
            "effective": some(),
            "unprivileged_port_start": rng.choice([0, 80, 1024]),
        }
    return {
        "kind": "access",
        "path": "/etc/letsencrypt/live/key.pem",
        "uid": rng.choice([0, 33, 1000]),
        "gid": rng.choice([0, 2200]),
        "effective": some(),
        "fs": FS,
    }


def timed(cmd: list[str], data: Path) -> float:
    with data.open("rb") as stdin:
        start = time.perf_counter()
        subprocess.run(cmd, stdin=stdin, stdout=subprocess.DEVNULL, check=True)
        return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "questions.jsonl"
        data.write_text("".join(json.dumps(question(rng)) + "\n" for _ in range(args.questions)))
        unroot = [sys.executable, "-m", "unroot", "explain", "batch"]
        baseline = [sys.executable, "-c", BASELINE]
        timed(unroot, data)  # warm-up: page cache, .pyc files
        ours, base = [], []
        for _ in range(args.repeat):
            ours.append(timed(unroot, data))
            base.append(timed(baseline, data))
    m_ours, m_base = statistics.median(ours), statistics.median(base)
    print(f"questions per run        {args.questions}  (repeat {args.repeat}, medians)")
    print(f"unroot explain batch     {m_ours:.3f} s  {args.questions / m_ours:,.0f} answers/s")
    print(f"baseline json round-trip {m_base:.3f} s  {args.questions / m_base:,.0f} lines/s")
    print(f"ratio unroot/baseline    {m_ours / m_base:.2f}x the time")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
