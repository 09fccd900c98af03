"""Real servers, unmodified, on a privileged loopback port as nobody, launched by `unroot run`.

gunicorn reads LISTEN_FDS itself; uvicorn takes ``--fd {fd}``; hypercorn ``--bind fd://{fd}``;
Twisted's ``systemd:`` endpoint (by index and by name); a plain asyncio server uses
``unroot.activation``. Each must answer a real HTTP request with a body saying it runs as uid
65534, and every process of the service must be nobody. The apps are in examples/run/.

Debian's nginx takes its sockets from ``-E 'NGINX={fd:http};'`` (nginx's own binary-upgrade
hand-over) and serves a static file from a prefix directory of its own, master and workers as
nobody; its error log must say it used the inherited socket, and a reload must keep it.

The servers run under :func:`launchutil.service_python` with ``-S``: the virtualenv's
site-packages come in through PYTHONPATH, the system's dist-packages stay out.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
from launchutil import (
    EXAMPLES,
    NOBODY,
    Service,
    as_nobody,
    free_port,
    need_service_python,
    private_dir,
)
from test_supervise import Supervised

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


def assert_all_nobody(pid: int) -> list[int]:
    """Every process of the service's group runs as nobody; the group's pids."""
    members = service_processes(pid)
    assert pid in members
    for member in members:
        uids = Path(f"/proc/{member}/status").read_text().split("Uid:")[1].split("\n")[0]
        assert uids.split() == ["65534"] * 4, (member, uids)
    return members


def serve(server_argv: list[str], *, spec: str = "") -> None:
    port = free_port()
    listen = f"{spec}127.0.0.1:{port}"
    argv = ["-l", listen, "--user", "nobody", "--", *server_argv]
    with Service(argv, cwd=EXAMPLES, stdin=None) as service:
        body = fetch(port)
        assert "as uid 65534" in body, body
        assert_all_nobody(service.pid)


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


# -- nginx -----------------------------------------------------------------------------------------
NGINX = "/usr/sbin/nginx"
needs_nginx = pytest.mark.skipif(
    not os.access(NGINX, os.X_OK), reason="nginx is not installed (apt-get install nginx-light)"
)
#: Everything nginx writes lives in the prefix, so nobody needs nothing else. accept_mutex: the
#: inherited sockets are blocking and nginx never makes them non-blocking (docs/run.md, nginx).
NGINX_CONF = """\
master_process on;
worker_processes 2;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log notice;
events {{
    worker_connections 64;
    accept_mutex on;
}}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        {listens}
        root {prefix}/html;
    }}
}}
"""
HELLO = "hello from nginx as nobody\n"


@contextmanager
def nginx_prefix(ports: Sequence[int]) -> Iterator[tuple[Path, list[str]]]:
    """A prefix directory owned by nobody with nginx.conf listening on 127.0.0.1:PORT for each
    port (exactly the inherited sockets' addresses), and the nginx command line for it."""
    with private_dir() as prefix:
        (prefix / "html").mkdir()
        (prefix / "html" / "index.html").write_text(HELLO)
        listens = " ".join(f"listen 127.0.0.1:{port};" for port in ports)
        (prefix / "nginx.conf").write_text(NGINX_CONF.format(prefix=prefix, listens=listens))
        for path in (prefix, *prefix.rglob("*")):
            os.chown(path, NOBODY, NOBODY)
        conf = [
            "-p",
            str(prefix),
            "-c",
            str(prefix / "nginx.conf"),
            "-e",
            str(prefix / "error.log"),
        ]
        yield prefix, [NGINX, *conf, "-g", "daemon off;"]


def wait_for_log(path: Path, text: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while True:
        log = path.read_text() if path.exists() else ""
        if text in log:
            return log
        assert time.monotonic() < deadline, f"no {text!r} in {path}: {log}"
        time.sleep(0.05)


def troubles(log: str) -> list[str]:
    """The error log's lines above [error], and any bind() (nobody cannot bind port < 1024)."""
    levels = ("[emerg]", "[alert]", "[crit]", "bind()")
    return [line for line in log.splitlines() if any(level in line for level in levels)]


def socket_inode(pid: int, fd: int) -> str:
    link = os.readlink(f"/proc/{pid}/fd/{fd}")
    assert link.startswith("socket:["), link
    return link


@needs_nginx
def test_nginx_takes_its_socket_from_the_nginx_variable() -> None:
    port = free_port()
    assert port < 1024  # nobody cannot bind it: nginx must use the inherited socket
    with nginx_prefix([port]) as (prefix, nginx):
        argv = ["-l", f"http=127.0.0.1:{port}", "--user", "nobody"]
        argv += ["-E", "NGINX={fd:http};", "--", *nginx]
        with Service(argv, stdin=None) as service:
            assert fetch(port) == HELLO
            members = assert_all_nobody(service.pid)
            assert len(members) == 3  # the master unroot exec'd and two workers
            log = wait_for_log(prefix / "error.log", 'using inherited sockets from "3;"')
            assert troubles(log) == []
            wait_for_log(prefix / "access.log", '"GET / HTTP/1.1" 200')  # written after the reply
            listener = socket_inode(service.pid, 3)
            assert {socket_inode(pid, 3) for pid in members} == {listener}

            # nginx -s reload, as nobody: SIGHUP to the master, which starts new workers on
            # the sockets it holds (it cannot bind any new one below 1024)
            reload = as_nobody([*nginx[:-2], "-s", "reload"])
            assert reload.returncode == 0, reload.stderr
            wait_for_log(prefix / "error.log", "reconfiguring")
            deadline = time.monotonic() + 20
            while True:
                workers = set(service_processes(service.pid)) - {service.pid}
                if len(workers) == 2 and not workers & set(members):
                    break
                assert time.monotonic() < deadline, (members, workers)
                time.sleep(0.05)
            assert fetch(port) == HELLO
            assert {socket_inode(pid, 3) for pid in (service.pid, *workers)} == {listener}
            assert troubles((prefix / "error.log").read_text()) == []


@needs_nginx
@pytest.mark.parametrize(
    ("value", "inherited"), [("{fd:a};{fd:b};", "3;4;"), ("{fd:b}:{fd:a}:", "4:3:")]
)
def test_nginx_two_sockets(value: str, inherited: str) -> None:
    """nginx splits NGINX at ';' or ':' and matches each socket to a listen directive by its
    address, so the order does not matter."""
    a, b = free_port(), free_port()
    with nginx_prefix([a, b]) as (prefix, nginx):
        argv = ["-l", f"a=127.0.0.1:{a}", "-l", f"b=127.0.0.1:{b}", "--user", "nobody"]
        argv += ["-E", f"NGINX={value}", "--", *nginx]
        with Service(argv, stdin=None):
            assert fetch(a) == HELLO
            assert fetch(b) == HELLO
            log = wait_for_log(prefix / "error.log", f'using inherited sockets from "{inherited}"')
            assert troubles(log) == []


@needs_nginx
@pytest.mark.unprivileged_reads_checkout
def test_nginx_supervised_reloads() -> None:
    """--reload-signal USR2 --stop-signal QUIT: SIGHUP reaches nginx (it re-reads its
    configuration itself), SIGUSR2 starts a new nginx on the same socket and stops the old one
    gracefully."""
    port = free_port()
    with nginx_prefix([port]) as (prefix, nginx):
        args = ["-l", f"http=127.0.0.1:{port}", "--user", "nobody", "--reload-signal", "USR2"]
        args += ["--stop-signal", "QUIT", "-E", "NGINX={fd:http};", "--", *nginx]
        log = prefix / "error.log"
        with Supervised(args) as sup:
            first = sup.gen_pid(1)
            assert fetch(port) == HELLO
            sup.signal(signal.SIGHUP)
            wait_for_log(log, f"{first}#{first}: signal 1 (SIGHUP) received from {sup.pid}")
            sup.signal(signal.SIGUSR2)
            second = int(sup.wait_for(r"generation 2 \(pid (\d+)\) ready").group(1))
            sup.wait_for(rf"generation 1 \(pid {first}\) stopped: status 0")
            wait_for_log(log, f"{first}#{first}: signal 3 (SIGQUIT) received")
            assert f'{second}#{second}: using inherited sockets from "3;"' in log.read_text()
            assert fetch(port) == HELLO
            assert troubles(log.read_text()) == []
            # the old master removes the pid file that the new one wrote (docs/run.md)
            assert not (prefix / "nginx.pid").exists()
