"""Real servers, unmodified, on a privileged loopback port as nobody, launched by `unroot run`.

gunicorn reads LISTEN_FDS itself; uvicorn takes ``--fd {fd}``; hypercorn ``--bind fd://{fd}``;
Twisted's ``systemd:`` endpoint (by index and by name); a plain asyncio server uses
``unroot.activation``. Each must answer a real HTTP request with a body saying it runs as uid
65534, and every process of the service must be nobody. The apps are in examples/run/.

The servers run under :func:`launchutil.service_python` with ``-S``: the virtualenv's
site-packages come in through PYTHONPATH, the system's dist-packages stay out.
"""

from __future__ import annotations

import importlib.util
import time
import urllib.request
from pathlib import Path

import pytest
from launchutil import EXAMPLES, Service, free_port, need_service_python

pytestmark = [pytest.mark.root, pytest.mark.slow]


def requires(module: str) -> pytest.MarkDecorator:
    missing = importlib.util.find_spec(module) is None
    return pytest.mark.skipif(missing, reason=f"{module} is not installed (pip install {module})")


def fetch(port: int, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                assert response.status == 200
                return str(response.read().decode())
        except OSError as exc:
            last = exc
            time.sleep(0.1)
    raise AssertionError(f"no HTTP answer on 127.0.0.1:{port}: {last}")


def service_processes(pid: int) -> list[int]:
    """The service's process group: the server and the workers it forked."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pid:  # pgrp
            members.append(int(entry.name))
    return members


def serve(server_argv: list[str], *, spec: str = "") -> None:
    port = free_port()
    listen = f"{spec}127.0.0.1:{port}"
    argv = ["-l", listen, "--user", "nobody", "--", *server_argv]
    with Service(argv, cwd=EXAMPLES, stdin=None) as service:
        body = fetch(port)
        assert "as uid 65534" in body, body
        members = service_processes(service.pid)
        assert service.pid in members
        for pid in members:
            uids = Path(f"/proc/{pid}/status").read_text().split("Uid:")[1].split("\n")[0]
            assert uids.split() == ["65534"] * 4, (pid, uids)


@requires("gunicorn")
def test_gunicorn_reads_listen_fds_itself() -> None:
    serve([need_service_python(), "-S", "-m", "gunicorn", "--workers", "2", "wsgi_app:app"])


@requires("uvicorn")
def test_uvicorn_fd() -> None:
    python = need_service_python()
    serve([python, "-S", "-m", "uvicorn", "--fd", "{fd}", "asgi_app:app"])


@requires("hypercorn")
def test_hypercorn_bind_fd() -> None:
    python = need_service_python()
    serve([python, "-S", "-m", "hypercorn", "--bind", "fd://{fd}", "asgi_app:app"])


@requires("twisted")
@pytest.mark.parametrize(
    ("spec", "endpoint"),
    [("", "systemd:domain=INET:index=0"), ("web=", "systemd:domain=INET:name=web")],
)
def test_twisted_systemd_endpoint(spec: str, endpoint: str) -> None:
    python = need_service_python()
    serve(
        [python, "-S", "-m", "twisted", "web", "--listen", endpoint, "--wsgi", "wsgi_app.app"],
        spec=spec,
    )


def test_asyncio_server_with_unroot_activation() -> None:
    serve([need_service_python(), "-S", str(EXAMPLES / "asyncio_server.py")], spec="web=")
