"""Reloads and crash-restarts under load: not one request may fail, not one connect be refused.

A bounded load generator on loopback — Python threads making short HTTP requests, half on
keep-alive connections and half with ``Connection: close`` (and wrk, when installed) — runs
against bench/backend/httpd.py under ``unroot run --supervise`` while 20 SIGHUP reloads happen,
then while the service crashes and is restarted with backoff.  Then ``--ready tcp`` is held to
real servers that never sleep on the listener while they are busy (gunicorn's sync workers
accept in a loop until EAGAIN): wrk runs while one SIGHUP reloads gunicorn (sync, gthread) and
uvicorn, and the new generation must be promoted while the load lasts.  The whole file takes
about a minute.
"""

from __future__ import annotations

import http.client
import re
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter

import pytest
from launchutil import free_port, need_service_python, service_env
from test_supervise import Supervised, httpd, wait_serving

pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.unprivileged_reads_checkout]


class Load:
    """``keepalive`` + ``close`` client threads requesting / until stopped (or ``limit`` s)."""

    def __init__(self, port: int, *, keepalive: int = 4, close: int = 4, limit: float = 40) -> None:
        self.port = port
        self.ok = 0
        self.refused = 0
        self.failed: list[str] = []
        self.gens: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._deadline = time.monotonic() + limit
        self._threads = [
            threading.Thread(target=self._run, args=(keep,), daemon=True)
            for keep in [True] * keepalive + [False] * close
        ]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(15)

    def _run(self, keepalive: bool) -> None:
        headers = {} if keepalive else {"Connection": "close"}
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            try:
                conn.request("GET", "/", headers=headers)
                response = conn.getresponse()
                response.read()
                gen = str(response.getheader("X-Gen"))
                good = response.status == 200
            except ConnectionRefusedError:
                with self._lock:
                    self.refused += 1
                conn.close()
                continue
            except (OSError, http.client.HTTPException) as exc:
                with self._lock:
                    self.failed.append(repr(exc))
                conn.close()
                continue
            with self._lock:
                if good:
                    self.ok += 1
                    self.gens[gen] += 1
                else:
                    self.failed.append(f"status {response.status}")
            if not keepalive or response.will_close:
                conn.close()  # http.client reconnects on the next request
        conn.close()

    def check(self, at_least: int) -> None:
        assert self.refused == 0, f"{self.refused} connections refused"
        assert self.failed == [], f"{len(self.failed)} failed: {self.failed[:5]}"
        assert self.ok >= at_least, self.ok


def test_twenty_reloads_under_load() -> None:
    port = free_port()
    args = ["-l", f"127.0.0.1:{port}", "--user", "nobody", "--ready", "tcp"]
    with Supervised([*args, "--", *httpd("--workers", "2")]) as sup:
        wait_serving(port)
        with Load(port) as load:
            time.sleep(0.3)
            for number in range(2, 22):
                sup.reload(number)
                time.sleep(0.1)
            sup.wait_for(r"generation 20 \(pid \d+\) stopped: status 0", timeout=20)
        load.check(at_least=1000)
        assert len(load.gens) >= 20, load.gens  # every generation served


def test_crash_restart_under_load() -> None:
    """The service exits 1 after every 300 requests: six restarts with backoff (0.1 s to
    1.6 s) while clients keep coming; the listen backlog holds them meanwhile."""
    port = free_port()
    args = ["-l", f"127.0.0.1:{port}", "--user", "nobody", "--restart", "on-failure"]
    with Supervised([*args, "--", *httpd("--exit-after", "300", "--drain-idle", "0.2")]) as sup:
        wait_serving(port)
        with Load(port, keepalive=2, close=4) as load:
            sup.wait_for(r"generation 6 started", timeout=30)
            time.sleep(0.3)
        load.check(at_least=1500)
        assert len(load.gens) >= 6
        assert len(re.findall("restarting in", "\n".join(sup.lines))) >= 5


@pytest.mark.skipif(
    shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)"
)
@pytest.mark.parametrize("connection", ["keep-alive", "close"])
def test_reloads_under_wrk(connection: str) -> None:
    port = free_port()
    args = ["-l", f"127.0.0.1:{port}", "--user", "nobody"]
    with Supervised([*args, "--", *httpd("--workers", "2")]) as sup:
        wait_serving(port)
        header = ["-H", "Connection: close"] if connection == "close" else []
        wrk = subprocess.Popen(
            ["wrk", "-t2", "-c32", "-d6s", *header, f"http://127.0.0.1:{port}/"],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            time.sleep(0.5)
            for number in range(2, 10):
                sup.reload(number)
                time.sleep(0.2)
            out, _ = wrk.communicate(timeout=30)
        finally:
            if wrk.poll() is None:
                wrk.send_signal(signal.SIGKILL)
                wrk.wait()
        assert "requests in" in out, out
        assert "Socket errors" not in out, out  # wrk prints the line only when there are any
        assert "Non-2xx" not in out, out


# Real servers, as nobody, on the examples' apps (examples/run is on the services' PYTHONPATH).
SERVERS = {
    "gunicorn-sync": ["-m", "gunicorn", "--workers", "2", "wsgi_app:app"],
    "gunicorn-gthread": ["-m", "gunicorn", "--workers", "2", "--threads", "4", "wsgi_app:app"],
    "uvicorn": ["-m", "uvicorn", "--fd", "{fd}", "--log-level", "warning", "asgi_app:app"],
}


@pytest.mark.skipif(
    shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)"
)
@pytest.mark.parametrize("server", sorted(SERVERS))
def test_tcp_readiness_holds_under_wrk(server: str) -> None:
    """wrk keeps every worker busy; one SIGHUP: generation 2 is promoted while wrk still runs
    (a worker that never sleeps in accept/poll is seen by the connection it has accepted), and
    wrk sees no socket error.  ``--ready-timeout 4`` makes a miss show before wrk ends."""
    pytest.importorskip(server.split("-", maxsplit=1)[0])
    python = need_service_python()
    port = free_port()
    args = ["-l", f"127.0.0.1:{port}", "--user", "nobody", "--ready", "tcp"]
    args += ["--ready-timeout", "4"]
    with Supervised([*args, "--", python, "-S", *SERVERS[server]], env=service_env()) as sup:
        wait_serving(port)
        wrk = subprocess.Popen(
            ["wrk", "-t2", "-c8", "-d6s", f"http://127.0.0.1:{port}/"],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            time.sleep(1.0)
            sup.signal(signal.SIGHUP)
            hup = time.monotonic()
            verdict = sup.wait_for(r"generation 2 \(pid \d+\) (ready|not ready)", timeout=8)
            promoted_after = time.monotonic() - hup
            under_load = wrk.poll() is None
            out, _ = wrk.communicate(timeout=20)
        finally:
            if wrk.poll() is None:
                wrk.send_signal(signal.SIGKILL)
                wrk.wait()
        assert verdict.group(1) == "ready", sup.lines
        assert under_load, f"promoted after wrk ended ({promoted_after:.2f}s): {out}"
        sup.wait_for(r"generation 1 \(pid \d+\) stopped")
    requests = re.search(r"(\d+) requests in", out)
    assert requests is not None, out
    errors = dict.fromkeys(["connect", "read", "write", "timeout"], 0)
    if found := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    ):
        errors = dict(zip(errors, map(int, found.groups()), strict=True))
    print(f"{server}: {requests.group(1)} requests, promoted after {promoted_after:.3f}s, {errors}")
    assert int(requests.group(1)) > 500, out
    assert errors["connect"] == errors["timeout"] == 0, out
    # uvicorn's stop closes each idle keep-alive connection at once, racing wrk's next request
    # on it: at most one read error per connection, the old generation's stop, not the reload.
    assert errors["read"] + errors["write"] <= (8 if server == "uvicorn" else 0), out
    assert "Non-2xx" not in out, out
