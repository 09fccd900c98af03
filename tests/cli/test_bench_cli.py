"""``unroot bench`` without measuring: bad input (exit 2), a missing tool (exit 3 naming its
Debian package), and the open-loop load's promise — no coordinated omission — against a server
that stalls (no root needed)."""

from __future__ import annotations

import json
import select
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from _cliutil import run

from unroot.proxybench import loads, methods

OPENLOOP = Path(methods.__file__).with_name("openloop.py")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--rounds", "0"], "--rounds must be in 1..20, not 0"),
        (["--rate", "1e9"], "--rate must be in 10..20000"),
        (["--methods", "direct,haproxy"], "unknown method 'haproxy'"),
        (["--skip", "direct"], "direct bind is what the ratios are taken against"),
        (["--duration", "1.5"], "invalid int value"),
        (["--replay", "/nonexistent/run.json"], "--replay /nonexistent/run.json"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run(capsys, "bench", *argv)
    assert code == 2
    assert out == ""
    assert message in err
    assert err.count("\n") == 1


def test_missing_tool_is_exit_3_naming_the_package(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for tool in ("wrk", "setpriv", "ip"):  # present: only socat is missing
        (tmp_path / tool).symlink_to("/bin/true")
    monkeypatch.setattr(methods, "SYSTEM_PATH", str(tmp_path))
    code, _, err = run(capsys, "bench", "--methods", "direct,socat")
    assert code == 3
    assert err == (
        "unroot: bench: socat not found: apt-get install socat "
        "(or leave the method out with --skip socat)\n"
    )


def test_replay_of_a_non_bench_document(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    other = tmp_path / "lint.json"
    other.write_text(json.dumps({"findings": []}))
    code, _, err = run(capsys, "bench", "--replay", str(other))
    assert code == 2
    assert "not an unroot bench JSON" in err


def test_percentile_is_the_bucket_edge_capped_by_the_maximum() -> None:
    hist = {100: 98, 200: 1, 300: 1}
    assert loads.percentile(hist, 1.02, 0.5, 1e9) == pytest.approx(1.02**101)
    assert loads.percentile(hist, 1.02, 0.99, 1e9) == pytest.approx(1.02**201)
    assert loads.percentile(hist, 1.02, 0.999, 100.0) == 100.0
    assert loads.percentile({}, 1.02, 0.5, 0.0) != loads.percentile({}, 1.02, 0.5, 0.0)  # nan


def test_cpu_seconds_of_a_process_tree() -> None:
    busy = subprocess.Popen(
        [sys.executable, "-c", "import time\nt=time.process_time()\n"
         "while time.process_time() - t < 0.3: pass\ntime.sleep(30)"],
    )  # fmt: skip
    try:
        time.sleep(1.0)
        assert loads.cpu_seconds([]) == 0
        assert loads.cpu_seconds([busy.pid]) >= 0.25
    finally:
        busy.kill()
        busy.wait()


def test_open_loop_counts_a_stall_against_every_request_due_in_it() -> None:
    """The server accepts nothing for 0.6 s after the first request: a closed-loop tool would
    send one request and wait; the open-loop load keeps the schedule, so the requests due in the
    stall wait for its end and the percentiles show it, and every request is answered."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(512)
    port = listener.getsockname()[1]

    def serve() -> None:
        select.select([listener], [], [], 30)  # the stall starts with the first request
        time.sleep(0.6)
        conns = []
        listener.settimeout(3)
        try:
            while True:
                conn, _ = listener.accept()
                conns.append(conn)
                threading.Thread(target=answer, args=(conn,), daemon=True).start()
        except OSError:
            pass

    def answer(conn: socket.socket) -> None:
        with conn:
            while conn.recv(4096):
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")

    threading.Thread(target=serve, daemon=True).start()
    try:
        done = subprocess.run(
            [sys.executable, "-I", str(OPENLOOP), "--port", str(port), "--rate", "100",
             "--duration", "1", "--max-conns", "200"],
            capture_output=True, text=True, check=True, timeout=30,
        )  # fmt: skip
    finally:
        listener.close()
    result = json.loads(done.stdout)
    assert result["requests"] == 100
    assert result["completed"] == 100, result
    hist = {int(k): v for k, v in result["histogram"].items()}
    p50 = loads.percentile(hist, result["growth"], 0.5, result["max_us"])
    assert result["max_us"] >= 590_000  # the first request waited out the whole stall
    assert p50 >= 20_000  # more than a handful of requests saw the stall


def test_no_local_default_image_skips_the_docker_method(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A machine without the test's base image still benches the other methods, and says so
    (the engine is asked: `docker image inspect` of a name no one has)."""
    import argparse
    import shutil
    import sys

    from unroot.commands import bench
    from unroot.proxybench.runner import Settings

    if shutil.which("docker") is None:
        pytest.skip("no docker CLI")
    monkeypatch.setattr(bench, "DEFAULT_IMAGE", "unroot-no-such-image:never")
    settings = Settings(methods=("direct", "docker-proxy", "socat"))
    kept = bench._without_missing_image(settings, argparse.Namespace(docker_image=None), sys.stderr)
    assert kept.methods == ("direct", "socat")
    assert (
        "docker-proxy skipped: no local image unroot-no-such-image:never" in capsys.readouterr().err
    )
    named = argparse.Namespace(docker_image="unroot-no-such-image:never")
    assert bench._without_missing_image(settings, named, sys.stderr) is settings
