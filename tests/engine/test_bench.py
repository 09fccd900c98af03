"""``unroot bench --quick`` end to end on this machine, and its cleanup when interrupted.

As root with the session's Docker engine (its offline base image holds the container's network
namespace): every method is measured, the JSON validates against bench.schema.json, the chart is
written, and nothing the run created is left — no network namespace ``unroot-bench-<id>`` (the
nft table lived in it), no container labelled ``org.unroot.bench=<id>``, no process whose
environment carries ``UNROOT_BENCH_RUN=<id>``, no docker-proxy for its port — also after a
SIGINT or a SIGTERM in the middle of a round.  Other sessions' tests may load the machine: the
numbers are not asserted, only their shape.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _engine import Engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
from _cliutil import validate_schema

from unroot.engine.docker import Docker
from unroot.proxybench.methods import (
    LABEL,
    METHODS,
    NETNS_PREFIX,
    docker_proxy_pids,
    marked_pids,
)

pytestmark = [pytest.mark.root, pytest.mark.engine, pytest.mark.slow]


def bench(*argv: str) -> list[str]:
    return [sys.executable, "-m", "unroot", "bench", *argv]


def leftovers(run_id: str, docker: Docker, ports: list[int]) -> list[str]:
    """What the run ``run_id`` left behind, one line each."""
    found = []
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    found += [f"netns {line}" for line in netns.stdout.splitlines() if run_id in line]
    found += [f"container {c}" for c in docker.containers(f"{LABEL}={run_id}")]
    found += [f"process {pid}" for pid in marked_pids(run_id)]
    found += [f"docker-proxy {pid}" for port in ports for pid in docker_proxy_pids(port)]
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=True)
    found += [f"host nft {t}" for t in tables.stdout.splitlines() if "unroot_bench" in t]
    found += [f"tmp {p}" for p in Path("/tmp").glob(f"unroot-bench-{run_id}-*")]
    return found


def test_quick_end_to_end(engine: Engine, tmp_path: Path) -> None:
    done = subprocess.run(
        bench("--quick", "--format", "json", "--chart", str(tmp_path / "chart"),
              "--docker-image", engine.base),
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    validate_schema("bench", doc)
    assert [m["key"] for m in doc["methods"]] == [m.key for m in METHODS]
    by_key = {m["key"]: m for m in doc["methods"]}
    for m in doc["methods"]:
        for mode in ("keep-alive", "close"):
            d = m["modes"][mode]
            assert d["throughput"]["median_rps"] > 0, (m["key"], mode)
            assert d["throughput"]["errors"] == 0, (m["key"], mode)
            assert d["fixed_rate"]["completed"] == d["fixed_rate"]["requests"], (m["key"], mode)
    assert by_key["direct"]["modes"]["close"]["throughput"]["median_ratio"] == 1.0
    # the proxies are processes with CPU time; unroot run and the nft redirect have none
    for key in ("socat", "nginx", "docker-proxy"):
        assert by_key[key]["modes"]["close"]["cpu"]["us_per_request"] > 0, key
    for key in ("direct", "unroot-run", "nft"):
        assert by_key[key]["modes"]["close"]["cpu"]["us_per_request"] is None, key
    env = doc["environment"]
    assert env["userland_proxy"].startswith("true"), env
    assert env["docker_proxy_processes"] == 1
    assert env["nft"].startswith("nftables v")
    assert env["engine"] == f"Docker {engine.server_version}"
    assert (tmp_path / "chart.png").read_bytes().startswith(b"\x89PNG")
    assert "<svg" in (tmp_path / "chart.svg").read_text()
    ports = [m["port"] for m in doc["methods"] if not m["netns"]]
    assert leftovers(doc["run_id"], engine.docker, ports) == []
    # the saved document renders the same table without measuring
    saved = tmp_path / "run.json"
    saved.write_text(done.stdout)
    table = subprocess.run(
        bench("--replay", str(saved)), capture_output=True, text=True, check=True
    ).stdout
    assert "direct bind" in table
    assert "nft redirect / direct bind in the same namespace" in table


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupt_removes_everything(engine: Engine, sig: signal.Signals) -> None:
    proc = subprocess.Popen(
        bench("--progress", "--rounds", "3", "--duration", "2", "--warmup", "0",
              "--docker-image", engine.base),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    run_id = ""
    lines = []
    deadline = time.monotonic() + 120
    for line in proc.stderr:  # progress: "run ID: starting", then "round 1/3: ..."
        lines.append(line)
        if m := re.search(r"run ([0-9a-f]{8}): starting", line):
            run_id = m.group(1)
        if "round 1/3: unroot-run" in line or time.monotonic() > deadline:
            break
    assert run_id, "".join(lines)
    # mid-round: the namespace, the container and the processes exist now
    assert any(NETNS_PREFIX + run_id in x for x in leftovers(run_id, engine.docker, []))
    assert engine.docker.containers(f"{LABEL}={run_id}")
    proc.send_signal(sig)
    _, rest = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, "".join(lines) + rest
    assert f"interrupted ({sig.name}); removed what it started" in rest
    assert leftovers(run_id, engine.docker, []) == []
