"""exec_chain_argv: the execs an ENTRYPOINT/CMD pair leads to, through wrappers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from unroot.sources.exec_argv import ROLES, ChainLink, exec_chain_argv

Link = tuple[str, str, str | None, bool]  # program, role, user, replaces_parent


def chain(entrypoint: list[str] | None, cmd: list[str] | None) -> list[Link]:
    links = exec_chain_argv(entrypoint, cmd)
    return [(link.program, link.role, link.user, link.replaces_parent) for link in links]


CASES: list[tuple[list[str] | None, list[str] | None, list[Link]]] = [
    (["/usr/bin/caddy", "run"], None, [("/usr/bin/caddy", "service", None, True)]),
    (None, ["nginx", "-g", "daemon off;"], [("nginx", "service", None, True)]),
    (["/app"], ["--port", "80"], [("/app", "service", None, True)]),
    # shell form: sh -c TEXT; CMD after a shell-form ENTRYPOINT is only $0 …
    (
        ["/bin/sh", "-c", "exec /usr/local/bin/dp serve"],
        ["ignored"],
        [("/bin/sh", "shell", None, True), ("/usr/local/bin/dp", "service", None, True)],
    ),
    (
        ["/bin/sh", "-c", "/usr/local/bin/dp serve"],
        None,
        [("/bin/sh", "shell", None, True), ("/usr/local/bin/dp", "service", None, False)],
    ),
    (
        None,
        ["sh", "-c", "set -e; mkdir -p /run/app; chown app /run/app; gunicorn app:app"],
        [("sh", "shell", None, True), ("gunicorn", "service", None, False)],
    ),
    (
        None,
        ["bash", "-lc", "echo starting && exec node server.js"],
        [("bash", "shell", None, True), ("node", "service", None, True)],
    ),
    # exec "$@" continues with the arguments after $0
    (
        ["/bin/sh", "-c", 'exec "$@"', "sh"],
        ["/srv/app", "--listen", ":80"],
        [("/bin/sh", "shell", None, True), ("/srv/app", "service", None, True)],
    ),
    # inits
    (
        ["/sbin/tini", "--"],
        ["/srv/app"],
        [("/sbin/tini", "init", None, True), ("/srv/app", "service", None, False)],
    ),
    (
        ["tini", "-s", "-g", "-p", "SIGTERM", "--", "/srv/app"],
        None,
        [("tini", "init", None, True), ("/srv/app", "service", None, False)],
    ),
    (
        ["dumb-init", "--rewrite", "15:2"],
        ["/srv/app"],
        [("dumb-init", "init", None, True), ("/srv/app", "service", None, False)],
    ),
    (
        ["/init"],
        ["/usr/bin/caddy", "run"],
        [("/init", "init", None, True), ("/usr/bin/caddy", "service", None, False)],
    ),
    # user-switching wrappers
    (
        ["gosu", "app:app", "/srv/app"],
        None,
        [("gosu", "setuid-wrapper", "app:app", True), ("/srv/app", "service", None, True)],
    ),
    (
        ["su-exec", "10001", "redis-server"],
        None,
        [("su-exec", "setuid-wrapper", "10001", True), ("redis-server", "service", None, True)],
    ),
    (
        ["setpriv", "--reuid=www", "--regid=www", "--init-groups", "--", "/srv/app"],
        None,
        [("setpriv", "setuid-wrapper", "www", True), ("/srv/app", "service", None, True)],
    ),
    (
        ["chpst", "-u", "app", "/srv/app"],
        None,
        [("chpst", "setuid-wrapper", "app", True), ("/srv/app", "service", None, True)],
    ),
    (
        ["s6-setuidgid", "app", "/srv/app"],
        None,
        [("s6-setuidgid", "setuid-wrapper", "app", True), ("/srv/app", "service", None, True)],
    ),
    # transparent wrappers
    (
        ["env", "-u", "HOME", "TZ=UTC", "/srv/app"],
        None,
        [("env", "wrapper", None, True), ("/srv/app", "service", None, True)],
    ),
    # entrypoint scripts: exec "$@" by convention
    (
        ["/usr/local/bin/docker-entrypoint.sh"],
        ["postgres"],
        [
            ("/usr/local/bin/docker-entrypoint.sh", "shell", None, True),
            ("postgres", "service", None, True),
        ],
    ),
    (
        ["docker-entrypoint.sh"],
        ["--config", "/etc/app.yml"],
        [("docker-entrypoint.sh", "shell", None, True)],
    ),  # an option: the script decides
    (
        ["sh", "/entrypoint.sh"],
        ["nginx", "-g", "daemon off;"],
        [("sh", "shell", None, True), ("nginx", "service", None, True)],
    ),
    # the whole stack
    (
        ["/sbin/tini", "--", "/docker-entrypoint.sh"],
        ["sh", "-c", 'exec su-exec caddy "$0" "$@"', "caddy", "run"],
        [
            ("/sbin/tini", "init", None, True),
            ("/docker-entrypoint.sh", "shell", None, False),
            ("sh", "shell", None, True),
            ("su-exec", "setuid-wrapper", "caddy", True),
            ("caddy", "service", None, True),
        ],
    ),
    (None, None, []),
    ([], [], []),
]


@pytest.mark.parametrize(("entrypoint", "cmd", "expected"), CASES)
def test_exec_chain_argv(
    entrypoint: list[str] | None, cmd: list[str] | None, expected: list[Link]
) -> None:
    assert chain(entrypoint, cmd) == expected


def test_links_carry_their_arguments() -> None:
    links = exec_chain_argv(["tini", "--"], ["gosu", "www", "app", "--port", "80"])
    assert links[-1] == ChainLink("app", "service", ("--port", "80"))
    assert links[1].args == ("www", "app", "--port", "80")


@given(
    st.one_of(st.none(), st.lists(st.text(max_size=10), max_size=6)),
    st.one_of(st.none(), st.lists(st.text(max_size=10), max_size=6)),
)
def test_never_raises_and_ends_with_at_most_one_service(
    entrypoint: list[str] | None, cmd: list[str] | None
) -> None:
    links = exec_chain_argv(entrypoint, cmd)
    assert all(link.role in ROLES for link in links)
    assert [link.role for link in links].count("service") <= 1
    assert len(links) <= 16
