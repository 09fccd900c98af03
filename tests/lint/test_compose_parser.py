"""Compose files → workloads: every fact and the line of the key that set it."""

from __future__ import annotations

import shlex
import time

import pytest
from _parser_fixtures import column_of, fixture, line_of
from hypothesis import given, settings
from hypothesis import strategies as st

from unroot.sources._shared import RLIM_INFINITY, shlex_split
from unroot.sources.compose.parser import interpolate, parse_compose
from unroot.sources.kinds import parse_file
from unroot.sources.parsed import Location, MountFact, PortFact, UserFact, Workload


def one(text: str, path: str = "compose.yaml", name: str | None = None) -> Workload:
    parsed = parse_compose(text, path)
    workloads = {w.name: w for w in parsed.workloads}
    if name is None:
        assert len(workloads) == 1, parsed
        return next(iter(workloads.values()))
    return workloads[name]


# -- realistic files ----------------------------------------------------------------------
def test_caddy_cap_add_ports_and_volumes() -> None:
    text, path = fixture("compose/caddy/compose.yaml")
    parsed = parse_compose(text, path)
    assert parsed.kind == "compose"
    assert parsed.problems == ()
    caddy, whoami = parsed.workloads
    assert caddy.name == "caddy"
    assert caddy.location == Location(path, line_of(text, "  caddy:"), 3)
    assert caddy.image == "caddy:2.8-alpine"
    assert caddy.user is None  # the image's USER decides
    assert caddy.cap_add == ("NET_BIND_SERVICE",)
    assert caddy.caps_location == Location(path, line_of(text, "cap_add:"), 5)
    assert caddy.location_of("cap_add") == caddy.caps_location
    assert [(p.port, p.proto, p.host_port, p.source) for p in caddy.ports] == [
        (80, "tcp", 80, "ports"),
        (443, "tcp", 443, "ports"),
        (443, "udp", 443, "ports"),
    ]
    assert caddy.ports[2].location == Location(path, line_of(text, '"443:443/udp"'), 9)
    base = path.rsplit("/", 1)[0]
    assert caddy.mounts == (
        MountFact(
            f"{base}/conf/Caddyfile",
            "/etc/caddy/Caddyfile",
            "bind",
            True,
            Location(path, line_of(text, "Caddyfile:ro"), 9),
        ),
        MountFact(f"{base}/site", "/srv", "bind", False, Location(path, line_of(text, "/srv"), 9)),
        MountFact(
            "caddy_data", "/data", "volume", False, Location(path, line_of(text, ":/data"), 9)
        ),
        MountFact(
            "caddy_config", "/config", "volume", False, Location(path, line_of(text, ":/config"), 9)
        ),
    )
    assert not caddy.host_network
    assert not caddy.no_new_privs
    assert whoami.ports == (
        PortFact(80, "tcp", None, "expose", Location(path, line_of(text, '- "80"'), 9)),
    )


def test_pihole_host_network_udp_and_pragma() -> None:
    text, path = fixture("compose/pihole/docker-compose.yml")
    parsed = parse_file("compose", text, path)  # the parser and the pragma pass beside it
    assert parsed.problems == ()
    (pihole,) = parsed.workloads
    assert pihole.host_network
    assert pihole.network_mode == "host"
    assert pihole.location_of("host_network") == Location(path, line_of(text, "network_mode"), 5)
    assert {(p.port, p.proto) for p in pihole.ports} == {(53, "tcp"), (53, "udp"), (80, "tcp")}
    assert pihole.cap_add == ("NET_ADMIN", "SYS_NICE")
    # the standalone pragma applies to the next content line: "- NET_ADMIN"
    assert (line_of(text, "- NET_ADMIN"), "useless-cap-add") in parsed.line_ignores
    assert pihole.mounts[0].source.endswith("/compose/pihole/etc-pihole")
    assert pihole.mounts[0].kind == "bind"


def test_seed_000_blog() -> None:
    text, path = fixture("compose/blog/compose.yaml")
    parsed = parse_compose(text, path)
    assert parsed.problems == ()
    (blog,) = parsed.workloads
    assert blog.dockerfile == path.rsplit("/", 1)[0] + "/Dockerfile"
    assert blog.image == "jakeblog:latest"  # ${BLOG_TAG:-latest}
    assert blog.host_network
    assert blog.user == UserFact("2200:2200", 2200, 2200, Location(path, line_of(text, "user:"), 5))
    assert blog.user.is_root is False
    assert blog.mounts[0] == MountFact(
        "/etc/letsencrypt",
        "/etc/letsencrypt",
        "bind",
        True,
        Location(path, line_of(text, "/etc/letsencrypt:ro"), 9),
    )
    assert blog.command == ("/jakeblog", "--listen", ":443", "--redirect-from", ":80")
    command_line = Location(path, line_of(text, "command:"), 5)
    assert blog.location_of("command") == command_line
    assert PortFact(443, "tcp", None, "command-line", command_line) in blog.ports


def test_prod_stack_merge_keys_build_and_interpolation() -> None:
    text, path = fixture("compose/stack/docker-compose.prod.yml")
    parsed = parse_compose(text, path)
    assert parsed.problems == ()
    api, worker, sidecar = parsed.workloads
    base = path.rsplit("/", 1)[0]
    # build: context relative to the compose file, dockerfile relative to the context
    assert api.dockerfile == f"{base}/services/api/docker/Api.Dockerfile"
    assert api.build_target == "runtime"
    assert api.location_of("dockerfile") == Location(path, line_of(text, "build:"), 5)
    assert api.user == UserFact("10001", 10001, None, Location(path, line_of(text, "API_UID"), 5))
    assert api.groups == ("certs", "998")
    # merged from the x-hardening fragment: the location is where the fragment says it
    assert api.read_only_rootfs
    assert api.cap_drop == ("ALL",)
    assert api.cap_add == ("net_bind_service",)
    assert api.location_of("cap_drop") == Location(path, line_of(text, "cap_drop: [ALL]"), 3)
    assert api.no_new_privs
    assert api.no_new_privs_reason == "security_opt no-new-privileges=true"
    assert api.no_new_privs_location == Location(path, line_of(text, "no-new-privileges=true"), 7)
    assert api.nofile == (65536, 65536)
    assert api.nofile_location == Location(path, line_of(text, "nofile:"), 5)
    assert [(p.port, p.host_port, p.source) for p in api.ports] == [
        (443, 443, "ports"),
        (9090, 9090, "ports"),
        (443, None, "command-line"),
    ]
    assert api.ports[0].location == Location(path, line_of(text, "- target: 443"), 9)
    assert api.sysctls == (("net.ipv4.ip_unprivileged_port_start", "0"),)
    assert api.entrypoint == ("/usr/local/bin/api-server", "--port", "443")
    assert api.init
    assert api.ignores == ("UR104", "works-only-by-sysctl".upper())

    assert worker.user is not None
    assert worker.user.is_root
    assert worker.user.uid is None  # a name, kept as written
    assert not worker.no_new_privs  # the service's own security_opt replaces the fragment's
    assert worker.nofile == (1024, 1024)
    assert worker.command == ("worker", "--concurrency", "4")
    assert worker.mounts == (
        MountFact(
            "tmpfs", "/tmp", "tmpfs", False, Location(path, line_of(text, "tmpfs: /tmp"), 12)
        ),
    )

    assert sidecar.network_mode == "service:api"
    assert not sidecar.host_network  # api is not on the host network
    assert sidecar.privileged
    assert sidecar.mounts[0] == MountFact(
        f"{base.rsplit('/', 1)[0]}/certs",
        "/certs",
        "bind",
        True,
        Location(path, line_of(text, "- type: bind"), 9),
    )
    assert sidecar.mounts[1].kind == "tmpfs"


# -- semantics, one at a time ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ('"80"', [(80, "tcp", None)]),
        ("80", [(80, "tcp", None)]),
        ('"80:8080"', [(8080, "tcp", 80)]),
        ('"127.0.0.1:80:8080/udp"', [(8080, "udp", 80)]),
        ('"127.0.0.1::8080"', [(8080, "tcp", None)]),
        ('"[::1]:6001:6001"', [(6001, "tcp", 6001)]),
        ('"::1:6000:6000"', [(6000, "tcp", 6000)]),
        ('"8000-8002:8000-8002"', [(8000, "tcp", 8000), (8001, "tcp", 8001), (8002, "tcp", 8002)]),
        ('"9090-9091:8080-8081"', [(8080, "tcp", 9090), (8081, "tcp", 9091)]),
        ('"8000-9000:80"', [(80, "tcp", 8000)]),
        ('"3000-3001"', [(3000, "tcp", None), (3001, "tcp", None)]),
        ("22:22", [(22, "tcp", 22)]),  # YAML 1.2 (go-yaml v3): a string, not base 60
        ('"6060:6060/SCTP"', [(6060, "sctp", 6060)]),
    ],
)
def test_port_short_syntax(spec: str, expected: list[tuple[int, str, int | None]]) -> None:
    w = one(f"services:\n  s:\n    image: x\n    ports:\n      - {spec}\n")
    assert [(p.port, p.proto, p.host_port) for p in w.ports] == expected
    assert all(p.location == Location("compose.yaml", 5, 9) for p in w.ports)


def test_port_long_syntax_and_wide_range() -> None:
    text = (
        "services:\n  s:\n    image: x\n    ports:\n"
        "      - target: 53\n        published: 5353\n        protocol: udp\n"
        "      - target: 80\n        published: '8000-8010'\n"
        '      - "1-65535:1-65535"\n'
    )
    w = one(text)
    assert w.ports[0] == PortFact(53, "udp", 5353, "ports", Location("compose.yaml", 5, 9))
    assert w.ports[1] == PortFact(80, "tcp", 8000, "ports", Location("compose.yaml", 8, 9))
    wide = w.ports[2:]
    assert wide[0].port == 1
    assert max(p.port for p in wide) == 65535
    assert len(wide) == 1024  # every privileged port, and the range's end


@pytest.mark.parametrize(
    "spec", ['"0.0.0.0:80"', '"abc"', '"80:80/icmp"', '"70000:80"', '"1-3:1-2"', "[80]"]
)
def test_bad_ports_are_problems(spec: str) -> None:
    parsed = parse_compose(f"services:\n  s:\n    ports:\n      - {spec}\n", "c.yaml")
    assert parsed.workloads[0].ports == ()
    assert [loc.line for loc, _ in parsed.problems] == [4]


@pytest.mark.parametrize(
    ("user", "uid", "gid", "is_root"),
    [
        ('"1000"', 1000, None, False),
        ("1000", 1000, None, False),
        ('"1000:1000"', 1000, 1000, False),
        ("www", None, None, False),
        ('"0:0"', 0, 0, True),
        ("root", None, None, True),
        ("root:root", None, None, True),
        ("www-data:2200", None, 2200, False),
    ],
)
def test_user(user: str, uid: int | None, gid: int | None, is_root: bool) -> None:
    w = one(f"services:\n  s:\n    image: x\n    user: {user}\n")
    assert w.user is not None
    assert (w.user.uid, w.user.gid, w.user.is_root) == (uid, gid, is_root)
    assert w.user.location == Location("compose.yaml", 4, 5)


@pytest.mark.parametrize(
    ("opts", "nnp"),
    [
        ("[no-new-privileges]", True),
        ('["no-new-privileges:true"]', True),
        ('["no-new-privileges=true"]', True),
        ('["no-new-privileges=1"]', True),
        ('["no-new-privileges:false"]', False),
        ('["no-new-privileges:true", "no-new-privileges:false"]', False),
        ('["no-new-privileges:false", "no-new-privileges"]', True),
        ('["seccomp=unconfined", "label=disable"]', False),
        ('["apparmor:unconfined"]', False),
    ],
)
def test_security_opt_no_new_privileges(opts: str, nnp: bool) -> None:
    w = one(f"services:\n  s:\n    image: x\n    security_opt: {opts}\n")
    assert w.no_new_privs is nnp
    assert (w.no_new_privs_location is not None) is nnp
    if nnp:
        assert w.no_new_privs_location is not None
        assert w.no_new_privs_location.line == 4


def test_security_opt_bad_value_is_a_problem() -> None:
    parsed = parse_compose('services:\n  s:\n    security_opt: ["no-new-privileges:yes"]\n', "c")
    assert not parsed.workloads[0].no_new_privs
    assert "Docker refuses" in parsed.problems[0][1]


def test_caps_any_spelling_kept_as_written() -> None:
    w = one("services:\n  s:\n    cap_drop: [all]\n    cap_add: [CAP_NET_BIND_SERVICE, chown]\n")
    assert w.cap_drop == ("all",)
    assert w.cap_add == ("CAP_NET_BIND_SERVICE", "chown")
    assert w.caps_location == Location("compose.yaml", 4, 5)  # cap_add's key


def test_sysctls_list_and_map() -> None:
    listed = one("services:\n  s:\n    sysctls:\n      - net.core.somaxconn = 1024\n")
    mapped = one("services:\n  s:\n    sysctls:\n      net.core.somaxconn: 1024\n")
    assert listed.sysctls == mapped.sysctls == (("net.core.somaxconn", "1024"),)


@pytest.mark.parametrize(
    ("ulimits", "expected"),
    [
        ("{nofile: 65535}", (65535, 65535)),
        ("{nofile: {soft: 1024, hard: 524288}}", (1024, 524288)),
        ("{nofile: -1}", (RLIM_INFINITY, RLIM_INFINITY)),
        ("{nproc: 100}", None),
    ],
)
def test_ulimits_nofile(ulimits: str, expected: tuple[int, int] | None) -> None:
    w = one(f"services:\n  s:\n    ulimits: {ulimits}\n")
    assert w.nofile == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("bundle exec thin -p 3000", ("bundle", "exec", "thin", "-p", "3000")),
        ("/bin/sh -c 'echo \"hello $$HOSTNAME\"'", ("/bin/sh", "-c", 'echo "hello $HOSTNAME"')),
        ('["/srv", "--listen", ":80"]', ("/srv", "--listen", ":80")),
        ("[]", ()),
        ("''", ()),
        ("null", None),
    ],
)
def test_command_string_is_split_not_shelled(value: str, expected: tuple[str, ...] | None) -> None:
    w = one(f"services:\n  s:\n    image: x\n    command: {value}\n")
    assert w.command == expected


def test_entrypoint_string_split_and_unclosed_quote() -> None:
    w = one("services:\n  s:\n    entrypoint: /bin/sh -c echo\n")
    assert w.entrypoint == ("/bin/sh", "-c", "echo")
    parsed = parse_compose("services:\n  s:\n    command: echo 'oops\n", "c.yaml")
    assert parsed.workloads[0].command is None
    assert parsed.problems[0][0].line == 3


@pytest.mark.parametrize(
    ("network_mode", "host"),
    [("host", True), ("bridge", False), ("none", False), ('"container:abc"', False)],
)
def test_network_mode(network_mode: str, host: bool) -> None:
    w = one(f"services:\n  s:\n    network_mode: {network_mode}\n")
    assert w.host_network is host
    assert w.network_mode == network_mode.strip('"')


def test_network_mode_service_follows_the_target() -> None:
    text = (
        "services:\n  vpn:\n    network_mode: host\n"
        "  app:\n    network_mode: service:vpn\n"
        "  loop1:\n    network_mode: service:loop2\n  loop2:\n    network_mode: service:loop1\n"
    )
    parsed = parse_compose(text, "c.yaml")
    by_name = {w.name: w for w in parsed.workloads}
    assert by_name["app"].host_network
    assert by_name["app"].location_of("host_network") == Location("c.yaml", 5, 5)
    assert not by_name["loop1"].host_network


@pytest.mark.parametrize(
    ("volume", "expected"),
    [
        ("/etc/letsencrypt:/certs:ro", ("/etc/letsencrypt", "/certs", "bind", True)),
        ("/srv:/srv:ro,z", ("/srv", "/srv", "bind", True)),
        ("/srv:/srv:Z", ("/srv", "/srv", "bind", False)),
        ("./data:/data", ("deploy/data", "/data", "bind", False)),
        ("../shared:/shared:rw", ("shared", "/shared", "bind", False)),
        ("~/keys:/keys:ro", ("~/keys", "/keys", "bind", True)),
        ("dbdata:/var/lib/db", ("dbdata", "/var/lib/db", "volume", False)),
        ("/anonymous", ("", "/anonymous", "volume", False)),
    ],
)
def test_volume_short_syntax(volume: str, expected: tuple[str, str, str, bool]) -> None:
    w = one(f"services:\n  s:\n    volumes:\n      - {volume}\n", path="deploy/compose.yaml")
    (mount,) = w.mounts
    assert (mount.source, mount.target, mount.kind, mount.read_only) == expected
    assert mount.location == Location("deploy/compose.yaml", 4, 9)


@pytest.mark.parametrize(
    ("build", "dockerfile", "target"),
    [
        (".", "deploy/Dockerfile", None),
        ("./web", "deploy/web/Dockerfile", None),
        ("{context: ../app, dockerfile: Containerfile}", "app/Containerfile", None),
        ("{context: app, dockerfile: /abs/Dockerfile}", "/abs/Dockerfile", None),
        (
            "{dockerfile: build/prod.Dockerfile, target: final}",
            "deploy/build/prod.Dockerfile",
            "final",
        ),
        ("https://github.com/docker/rootfs.git#main", None, None),
        ('{context: ., dockerfile_inline: "FROM scratch"}', None, None),
    ],
)
def test_build_joins_the_dockerfile(build: str, dockerfile: str | None, target: str | None) -> None:
    w = one(f"services:\n  s:\n    build: {build}\n", path="deploy/compose.yaml")
    assert (w.dockerfile, w.build_target) == (dockerfile, target)


@pytest.mark.parametrize(
    ("value", "env", "expected", "unset", "errors"),
    [
        ("${A:-1000}:${B-2}", {}, "1000:2", [], 0),
        ("${A:-1000}", {"A": ""}, "1000", [], 0),
        ("${A-1000}", {"A": ""}, "", [], 0),
        ("${A:+on}${B+on}", {"A": "x"}, "on", [], 0),
        ("$A/$$B/${A}", {"A": "a"}, "a/$B/a", [], 0),
        ("${X:-${Y:-deep}}", {}, "deep", [], 0),
        ("$MISSING-x", {}, "-x", ["MISSING"], 0),
        ("${NEED:?set it}", {}, "", [], 1),
        ("${BROKEN", {}, "${BROKEN", [], 1),
        ("cost $5", {}, "cost $5", [], 1),
    ],
)
def test_interpolation(
    value: str, env: dict[str, str], expected: str, unset: list[str], errors: int
) -> None:
    found_unset: list[str] = []
    result, problems = interpolate(value, env, found_unset)
    assert (result, found_unset, len(problems)) == (expected, unset, errors)


def test_unset_variable_is_one_problem_and_env_is_used() -> None:
    text = "services:\n  s:\n    image: app:${TAG}\n    user: ${UID}\n    command: run ${TAG}\n"
    parsed = parse_compose(text, "c.yaml")
    assert parsed.workloads[0].image == "app:"
    assert parsed.workloads[0].user is None  # empty after interpolation
    assert [(loc.line, msg.split(":")[0]) for loc, msg in parsed.problems] == [
        (3, "variable TAG is not set in image"),
        (4, "variable UID is not set in user"),
    ]
    given = parse_compose(text, "c.yaml", env={"TAG": "1.0", "UID": "10001"})
    assert given.problems == ()
    assert given.workloads[0].image == "app:1.0"
    assert given.workloads[0].user == UserFact("10001", 10001, None, Location("c.yaml", 4, 5))


def test_keys_are_not_interpolated_and_x_fields_ignored() -> None:
    text = "x-top: ${NOPE}\nservices:\n  s:\n    x-note: ${ALSO_NOPE}\n    image: x\n"
    parsed = parse_compose(text, "c.yaml")
    assert parsed.problems == ()
    assert parsed.workloads[0].image == "x"


def test_x_unroot_ignore_list_or_string() -> None:
    assert one("services:\n  s:\n    x-unroot-ignore: [ur104, UR105]\n").ignores == (
        "UR104",
        "UR105",
    )
    assert one("services:\n  s:\n    x-unroot-ignore: UR104 UR104\n").ignores == ("UR104",)


def test_trailing_and_file_pragmas() -> None:
    text = (
        "# unroot: ignore-file=UR110\n"
        "services:\n"
        "  s:\n"
        '    ports: ["80:80"]  # unroot: ignore=UR104,bind-fails\n'
        "    # unroot: ignore=UR105\n"
        "    cap_add: [NET_ADMIN]\n"
        "    user: root # unroot: ignore\n"
    )
    assert parse_compose(text, "c.yaml").line_ignores == ()  # the pragma pass reads them
    parsed = parse_file("compose", text, "c.yaml")
    assert parsed.file_ignores == ("UR110",)
    assert set(parsed.line_ignores) == {(4, "UR104"), (4, "bind-fails"), (6, "UR105")}
    assert [loc.line for loc, _ in parsed.problems] == [7]  # the malformed pragma


def test_anchor_reuse_and_merge_precedence() -> None:
    text = (
        "x-a: &a {user: '1', privileged: true}\n"
        "x-b: &b {user: '2', read_only: true}\n"
        "services:\n"
        "  s:\n"
        "    <<: [*a, *b]\n"
        "    privileged: false\n"
    )
    w = one(text)
    assert w.user is not None
    assert w.user.text == "1"  # the first merged map wins
    assert w.user.location == Location("compose.yaml", 1, 10)
    assert not w.privileged  # an explicit key wins over merged ones
    assert w.read_only_rootfs


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        ("services:\n  s:\n    image: x\n  s:\n    image: y\n", 4, "duplicate key 's'"),
        ("services:\n  s:\n    image: !!python/object:os.system x\n", 3, "unsupported tag"),
        ("services:\n  s:\n    image: [x\n", 4, "YAML syntax error"),
        ("services: [a, b]\n", 1, "services: expected a mapping"),
        ("services:\n  s: just-a-string\n", 2, "expected a mapping"),
        ("- a\n- b\n", 1, "a compose file is a mapping"),
        ("name: demo\n", 1, "no top-level 'services:'"),
        ("services:\n  s:\n    ports: 80\n", 3, "ports: expected a list"),
        ("services:\n  s:\n    privileged: maybe\n", 3, "expected true or false"),
        ("services:\n  s:\n    ulimits: {nofile: lots}\n", 3, "is not a number"),
        ("services:\n  s:\n    sysctls: [net.core.somaxconn]\n", 3, "is not name=value"),
    ],
)
def test_problems_not_exceptions(text: str, line: int, needle: str) -> None:
    parsed = parse_compose(text, "c.yaml")
    assert any(loc.line == line and needle in msg for loc, msg in parsed.problems), parsed.problems


def test_empty_service_and_empty_file() -> None:
    assert one("services:\n  s:\n").name == "s"
    assert parse_compose("", "c.yaml").workloads == ()
    assert parse_compose("services:\n", "c.yaml").problems == ()


def test_column_is_the_key_column() -> None:
    text, path = fixture("compose/caddy/compose.yaml")
    caddy = parse_compose(text, path).workloads[0]
    assert caddy.caps_location is not None
    assert caddy.caps_location.column == column_of(text, "cap_add")


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=" \t\n'\"\\ab$", max_size=30))
def test_command_strings_split_as_shlex_does(text: str) -> None:
    try:
        expected: list[str] | str = shlex.split(text)
    except ValueError as exc:
        expected = str(exc)
    try:
        found: list[str] | str = shlex_split(text)
    except ValueError as exc:
        found = str(exc)
    if isinstance(expected, str):
        assert isinstance(found, str)  # an error for an error (the message may differ)
    else:
        assert found == expected


def test_a_long_command_string_splits_in_linear_time() -> None:
    """stdlib shlex builds a word a character at a time: an 800 kB command took 18 s."""
    word = "a" * 800_000
    text = f'services:\n  app:\n    image: app:1\n    command: "--log {word} --port 80"\n'
    start = time.process_time()
    workload = one(text)
    assert time.process_time() - start < 8
    assert workload.command == ("--log", word, "--port", "80")
