"""ports_from_argv: the listen ports a command line names, and nothing else."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from unroot.sources.parsed import Location, PortFact
from unroot.sources.ports import ports_from_argv

HERE = Location("compose.yaml", 12, 5)

CASES = [
    (["caddy", "run", "--listen", ":80"], [(80, "tcp")]),
    (["caddy", "file-server", "--listen=0.0.0.0:443"], [(443, "tcp")]),
    (["/app", "-addr", ":443"], [(443, "tcp")]),
    (["/app", "-addr=:8443"], [(8443, "tcp")]),
    (["uvicorn", "main:app", "--host", "0.0.0.0", "--port", "80"], [(80, "tcp")]),
    (["redis-server", "--port", "6379"], [(6379, "tcp")]),
    (["gunicorn", "--bind", "0.0.0.0:80", "app:app"], [(80, "tcp")]),
    (["gunicorn", "-b", ":80", "-b", "[::]:443", "wsgi"], [(80, "tcp"), (443, "tcp")]),
    (["hypercorn", "--bind", "0.0.0.0:80,[::]:8080", "app"], [(80, "tcp"), (8080, "tcp")]),
    (["app", "-p", "53"], [(53, "tcp")]),
    (["app", "-p8080"], [(8080, "tcp")]),
    (["python3", "-m", "http.server", "80"], [(80, "tcp")]),
    (["python", "-m", "http.server", "--bind", "::", "8080"], [(8080, "tcp")]),
    (["python", "-m", "http.server"], [(8000, "tcp")]),
    (["haproxy", "-l", "127.0.0.1:80"], [(80, "tcp")]),
    (["coredns", "-dns.port", "53"], [(53, "udp"), (53, "tcp")]),
    (["app", "--udp-port", "5353"], [(5353, "udp")]),
    (["prometheus", "--web.listen-address=:9090"], [(9090, "tcp")]),
    (["traefik", "--entrypoints.web.address=:80"], [(80, "tcp")]),
    (["grafana", "--http-port", "3000"], [(3000, "tcp")]),
    (["app", "--listen", "tcp://0.0.0.0:8080"], [(8080, "tcp")]),
    (["php", "-S", "0.0.0.0:80", "-t", "public"], [(80, "tcp")]),
    (["socat", "TCP-LISTEN:80,fork,reuseaddr", "TCP:backend:8080"], [(80, "tcp")]),
    (["nc", "-l", "-p", "8000"], [(8000, "tcp")]),
    (["busybox", "httpd", "-f", "-p", "80"], [(80, "tcp")]),
    (["sh", "-c", "exec /srv/app --port ${PORT:-8080}"], [(8080, "tcp")]),
    (["/bin/sh", "-c", "set -e; exec gosu app server -listen :80"], [(80, "tcp")]),
    # not ports
    (["mkdir", "-p", "/run/app"], []),
    (["app", "--timeout", "30"], []),
    (["app", "--http-timeout", "30"], []),
    (["app", "-l", "5"], []),  # -l is a log level here: only HOST:PORT counts
    (["app", "--listen", "unix:/run/app.sock"], []),
    (["app", "--bind", "0.0.0.0"], []),
    (["uvicorn", "app:app", "--fd", "3"], []),
    (["app", "--port", "$PORT"], []),  # exec form: never expanded
    (["app", "--port", "0"], []),
    (["app", "--port", "70000"], []),
    (["docker", "run", "-p", "80:8080", "nginx"], []),
    # the other end of a connection, not a listen port
    (["app", "--smtp-port", "25"], []),
    (["app", "--mail-port=587"], []),
    (["gitea-like", "--ssh-port", "22"], []),
    (["app", "--db.port", "5432"], []),
    (["app", "--upstream-port", "80", "--port", "8080"], [(8080, "tcp")]),
    (["app", "--metrics-port", "9100"], [(9100, "tcp")]),
]


@pytest.mark.parametrize(("argv", "expected"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_ports_from_argv(argv: list[str], expected: list[tuple[int, str]]) -> None:
    facts = ports_from_argv(argv, HERE)
    assert [(f.port, f.proto) for f in facts] == expected
    assert all(f.source == "command-line" and f.location == HERE for f in facts)
    assert all(f.host_port is None for f in facts)


def test_shell_words_are_expanded_with_the_environment() -> None:
    argv = ["/bin/sh", "-c", 'exec app --port "$PORT" --admin-port ${ADMIN:-9000}']
    facts = ports_from_argv(argv, None, env={"PORT": "80"})
    assert [(f.port, f.location) for f in facts] == [(80, None), (9000, None)]
    assert ports_from_argv(["sh", "-c", "exec app --port $PORT"], None, env={}) == ()


def test_duplicates_are_reported_once() -> None:
    facts = ports_from_argv(["app", "--port", "80", "--listen", ":80"], HERE)
    assert facts == (PortFact(80, "tcp", None, "command-line", HERE),)


@given(st.lists(st.text(max_size=12), max_size=12))
def test_never_raises(argv: list[str]) -> None:
    for fact in ports_from_argv(argv, HERE):
        assert 0 < fact.port < 65536
