"""systemd units → workloads, per systemd.exec(5), systemd.service(5), systemd.socket(5) (v252)."""

from __future__ import annotations

import pytest
from _parser_fixtures import FIXTURES, fixture, line_of

from unroot.sources._shared import RLIM_INFINITY
from unroot.sources.parsed import Location, PortFact, UserFact, Workload
from unroot.sources.pragmas import attach
from unroot.sources.systemd import (
    parse_socket_unit,
    parse_systemd,
    parse_systemd_units,
    read_unit,
    socket_candidates,
    split_words,
)


def service(body: str, path: str = "app.service") -> Workload:
    parsed = parse_systemd("[Service]\n" + body, path)
    (workload,) = parsed.workloads
    return workload


def units(*names: str) -> dict[str, Workload]:
    files = {str(FIXTURES / "systemd" / n): (FIXTURES / "systemd" / n).read_text() for n in names}
    return {w.name: w for parsed in parse_systemd_units(files) for w in parsed.workloads}


# -- realistic units ---------------------------------------------------------------------------
def test_caddy_ambient_capabilities_and_nofile() -> None:
    text, path = fixture("systemd/caddy.service")
    parsed = parse_systemd(text, path)
    assert parsed.problems == ()
    (caddy,) = parsed.workloads
    assert caddy.source_kind == "systemd"
    assert caddy.name == "caddy.service"
    assert caddy.location == Location(path, line_of(text, "[Service]"))
    assert caddy.user == UserFact("caddy:caddy", None, None, Location(path, line_of(text, "User=")))
    assert caddy.user.is_root is False
    assert caddy.ambient_caps == ("cap_net_bind_service", "cap_net_admin")  # by bit number
    assert caddy.location_of("ambient_caps") == Location(path, line_of(text, "AmbientCap"))
    assert caddy.caps_location == Location(path, line_of(text, "AmbientCap"))
    assert caddy.bounding_caps is None  # not limited
    assert not caddy.no_new_privs  # PrivateTmp=/ProtectSystem= do not imply it
    assert caddy.nofile == (1048576, 1048576)
    assert caddy.nofile_location == Location(path, line_of(text, "LimitNOFILE"))
    assert caddy.entrypoint == (
        "/usr/bin/caddy",
        "run",
        "--environ",
        "--config",
        "/etc/caddy/Caddyfile",
    )
    assert caddy.exec_prefixes == ""
    assert caddy.socket_unit is None


def test_coredns_bounding_set_and_explicit_no_new_privileges() -> None:
    text, path = fixture("systemd/coredns.service")
    (coredns,) = parse_systemd(text, path).workloads
    assert coredns.bounding_caps == ("cap_net_bind_service",)
    assert coredns.ambient_caps == ("cap_net_bind_service",)
    assert coredns.no_new_privs
    assert coredns.no_new_privs_reason == "NoNewPrivileges=yes"
    assert coredns.no_new_privs_location == Location(path, line_of(text, "NoNewPrivileges"))
    assert coredns.user == UserFact("coredns", None, None, Location(path, line_of(text, "User=")))
    assert coredns.entrypoint == ("/usr/bin/coredns", "-conf=/etc/coredns/Corefile")


def test_dnsdist_hardening_implies_no_new_privileges() -> None:
    text, path = fixture("systemd/dnsdist.service")
    parsed = parse_systemd(text, path)
    assert parsed.problems == ()
    (dnsdist,) = parsed.workloads
    # line 1: {NET_BIND_SERVICE, CHOWN}; line 2 "~CAP_CHOWN" removes CHOWN
    assert dnsdist.bounding_caps == ("cap_net_bind_service",)
    assert dnsdist.location_of("bounding_caps") == Location(path, line_of(text, "=~CAP_CHOWN"))
    # NoNewPrivileges=false is overridden: a non-root User= with LockPersonality= & co.
    assert dnsdist.no_new_privs
    assert dnsdist.no_new_privs_location == Location(path, line_of(text, "LockPersonality"))
    assert "LockPersonality=" in dnsdist.no_new_privs_reason
    # the continued ExecStart= is one command, located at its first line
    assert dnsdist.entrypoint == (
        "/usr/bin/dnsdist",
        "--supervised",
        "--disable-syslog",
        "--config",
        "/etc/dnsdist/dnsdist.conf",
    )
    assert dnsdist.location_of("entrypoint") == Location(path, line_of(text, "ExecStart=/usr"))
    assert dnsdist.nofile == (16384, 16384)
    assert dnsdist.user is not None
    assert dnsdist.user.text == "_dnsdist:_dnsdist"


def test_webapp_socket_pairing_prefixes_and_reset() -> None:
    svc_text, svc_path = fixture("systemd/webapp.service")
    sock_text, sock_path = fixture("systemd/webapp.socket")
    workloads = units("webapp.service", "webapp.socket")
    webapp = workloads["webapp.service"]
    assert webapp.socket_unit == "webapp.socket"
    assert webapp.ports == (
        PortFact(80, "tcp", None, "socket-unit", Location(sock_path, line_of(sock_text, "=80"))),
        PortFact(443, "tcp", None, "socket-unit", Location(sock_path, line_of(sock_text, "[::]"))),
        PortFact(
            443, "udp", None, "socket-unit", Location(sock_path, line_of(sock_text, "Datagram"))
        ),
    )
    # "ExecStart=" reset the "+" line; "-@" keeps argv[0] out of the argv
    assert webapp.exec_prefixes == "-@"
    assert webapp.entrypoint == ("/usr/local/bin/webapp", "--fd-listen")
    assert webapp.user == UserFact(
        "www-data", None, None, Location(svc_path, line_of(svc_text, "User="))
    )
    assert not webapp.dynamic_user
    assert webapp.nofile == (4096, 65536)
    assert parse_systemd(svc_text, svc_path).line_ignores == ()  # the pragma pass reads them
    parsed = attach(parse_systemd(svc_text, svc_path), svc_text)
    assert parsed.line_ignores == ((line_of(svc_text, "User="), "UR104"),)


def test_template_service_with_accept_socket_and_dynamic_user() -> None:
    workloads = units("echo@.service", "echo.socket")
    echo = workloads["echo@.service"]
    assert echo.socket_unit == "echo.socket"
    assert [(p.port, p.proto) for p in echo.ports] == [(7, "tcp")]
    assert echo.dynamic_user
    assert echo.user is not None
    assert echo.user.is_root is False
    assert echo.no_new_privs
    assert echo.no_new_privs_reason == "implied by DynamicUser=yes"


def test_socket_file_alone_has_no_workload() -> None:
    text, path = fixture("systemd/webapp.socket")
    parsed = parse_systemd(text, path)
    assert parsed.kind == "systemd"
    assert parsed.workloads == ()
    assert parsed.problems == ()


# -- capability sets: config_parse_capability_set ------------------------------------------
@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (["CAP_NET_BIND_SERVICE"], ("cap_net_bind_service",)),
        (["CAP_A_TYPO CAP_CHOWN"], ("cap_chown",)),
        (["CAP_CHOWN", "CAP_KILL"], ("cap_chown", "cap_kill")),  # OR
        (["CAP_CHOWN CAP_KILL", "~CAP_KILL"], ("cap_chown",)),  # AND NOT
        (["CAP_CHOWN", ""], ()),  # "" resets to the empty set
        ([""], ()),
        (["", "CAP_KILL"], ("cap_kill",)),
        (["CAP_CHOWN", "~", "CAP_KILL"], ("cap_kill",)),  # "~" = all = unset; then replaced
        (["CAP_CHOWN", "~"], None),
        (["cap_net_raw", "Cap_Kill"], ("cap_kill", "cap_net_raw")),  # any case
        (["21"], ("cap_sys_admin",)),  # numbers too
        (['"CAP_CHOWN" CAP_KILL'], ("cap_chown", "cap_kill")),
    ],
)
def test_bounding_set_merge(lines: list[str], expected: tuple[str, ...] | None) -> None:
    body = "".join(f"CapabilityBoundingSet={line}\n" for line in lines)
    assert service(body).bounding_caps == expected


def test_bounding_set_inverted_first_line() -> None:
    w = service("CapabilityBoundingSet=~CAP_SYS_ADMIN CAP_SYS_PTRACE\n")
    assert w.bounding_caps is not None
    assert "cap_sys_admin" not in w.bounding_caps
    assert "cap_sys_ptrace" not in w.bounding_caps
    assert "cap_net_bind_service" in w.bounding_caps
    assert len(w.bounding_caps) == 39


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (["CAP_NET_BIND_SERVICE", "CAP_NET_RAW"], ("cap_net_bind_service", "cap_net_raw")),
        (["CAP_NET_BIND_SERVICE", ""], ()),
        (["CAP_NET_BIND_SERVICE CAP_NET_RAW", "~CAP_NET_RAW"], ("cap_net_bind_service",)),
        (["", "CAP_KILL"], ("cap_kill",)),
    ],
)
def test_ambient_merge(lines: list[str], expected: tuple[str, ...]) -> None:
    body = "".join(f"AmbientCapabilities={line}\n" for line in lines)
    assert service(body).ambient_caps == expected


def test_capability_without_prefix_is_ignored_and_reported() -> None:
    parsed = parse_systemd(
        "[Service]\nAmbientCapabilities=NET_BIND_SERVICE\nExecStart=/bin/true\n", "a.service"
    )
    assert parsed.workloads[0].ambient_caps == ()
    ((where, message),) = parsed.problems
    assert where == Location("a.service", 2)
    assert "write CAP_NET_BIND_SERVICE" in message


# -- NoNewPrivileges= and what forces it -----------------------------------------------------
@pytest.mark.parametrize(
    ("body", "nnp"),
    [
        ("ProtectKernelTunables=yes\n", False),  # root: has CAP_SYS_ADMIN, nothing is implied
        ("User=root\nProtectKernelTunables=yes\n", False),
        ("User=0\nSystemCallFilter=@system-service\n", False),
        ("User=nobody\nProtectKernelTunables=yes\n", True),
        ("User=nobody\nProtectKernelTunables=no\n", False),
        ("User=nobody\nProtectKernelTunables=yes\nProtectKernelTunables=no\n", False),
        ("User=nobody\nProtectHostname=yes\n", True),
        ("User=nobody\nSystemCallArchitectures=native\n", True),
        ("User=nobody\nSystemCallFilter=@system-service\nSystemCallFilter=\n", False),
        ("User=nobody\nSystemCallLog=@privileged\n", True),
        ("User=nobody\nRestrictAddressFamilies=AF_INET AF_INET6\n", True),
        ("User=nobody\nRestrictNamespaces=no\n", False),
        ("User=nobody\nRestrictNamespaces=yes\n", True),
        ("User=nobody\nRestrictNamespaces=~user\n", True),
        ("User=nobody\nMemoryDenyWriteExecute=true\n", True),
        ("User=nobody\nPrivateTmp=yes\nProtectSystem=strict\nProtectHome=yes\n", False),
        ("User=nobody\nAmbientCapabilities=CAP_SYS_ADMIN\nPrivateDevices=yes\n", False),
        ("DynamicUser=yes\n", True),
        ("DynamicUser=yes\nNoNewPrivileges=no\n", True),
        ("NoNewPrivileges=yes\n", True),
        ("NoNewPrivileges=yes\nNoNewPrivileges=no\n", False),
    ],
)
def test_no_new_privileges_implied(body: str, nnp: bool) -> None:
    assert service(body).no_new_privs is nnp


# -- ExecStart= prefixes ------------------------------------------------------------------------
def test_plus_prefix_runs_fully_privileged() -> None:
    w = service(
        "User=web\nAmbientCapabilities=CAP_NET_BIND_SERVICE\nCapabilityBoundingSet=CAP_NET_BIND_SERVICE\n"
        "NoNewPrivileges=yes\nExecStart=+/usr/bin/web --port 80\n"
    )
    assert w.exec_prefixes == "+"
    assert w.user == UserFact("root", 0, 0, Location("app.service", 6))
    assert (w.ambient_caps, w.bounding_caps, w.no_new_privs) == ((), None, False)
    assert PortFact(80, "tcp", None, "command-line", Location("app.service", 6)) in w.ports


def test_bang_prefix_leaves_credentials_to_the_program() -> None:
    w = service("User=web\nAmbientCapabilities=CAP_NET_BIND_SERVICE\nExecStart=!/usr/bin/web\n")
    assert w.user is not None
    assert w.user.is_root
    assert w.ambient_caps == ("cap_net_bind_service",)
    double = service("User=web\nExecStart=!!/usr/bin/web\n")
    assert double.user is not None
    assert double.user.text == "web"  # "!!" is a no-op where ambient capabilities exist


def test_no_user_means_root_and_group_only() -> None:
    assert service("ExecStart=/bin/true\n").user == UserFact("root", 0, 0, None)
    group_only = service("Group=www\n").user
    assert group_only is not None
    assert group_only.text == "root:www"
    assert group_only.is_root


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1048576", (1048576, 1048576)),
        ("1024:524288", (1024, 524288)),
        ("infinity", (RLIM_INFINITY, RLIM_INFINITY)),
        ("1024:infinity", (1024, RLIM_INFINITY)),
    ],
)
def test_limit_nofile(value: str, expected: tuple[int, int]) -> None:
    assert service(f"LimitNOFILE={value}\n").nofile == expected


def test_limit_nofile_bad_and_reset() -> None:
    parsed = parse_systemd("[Service]\nLimitNOFILE=lots\n", "a.service")
    assert parsed.workloads[0].nofile is None
    assert parsed.problems[0][0].line == 2
    assert service("LimitNOFILE=4096\nLimitNOFILE=\n").nofile is None
    assert service("LimitNOFILE=2:1\n").nofile is None  # soft above hard: refused


def test_supplementary_groups_accumulate_and_reset() -> None:
    assert service("SupplementaryGroups=ssl-cert\nSupplementaryGroups=adm www\n").groups == (
        "ssl-cert",
        "adm",
        "www",
    )
    assert service("SupplementaryGroups=ssl-cert\nSupplementaryGroups=\n").groups == ()


# -- unit file syntax ----------------------------------------------------------------------------
def test_continuation_skips_comment_lines() -> None:
    text = (
        "[Service]\n"
        "ExecStart=/usr/bin/app \\\n"
        "# this line is ignored\n"
        "; so is this one\n"
        "    --listen :80\n"
        "User=app\n"
    )
    entries, sections = read_unit(text, "a.service")
    assert sections == {"Service": 1}
    assert [(e.key, e.value, e.line) for e in entries] == [
        ("ExecStart", "/usr/bin/app  --listen :80", 2),
        ("User", "app", 6),
    ]


def test_only_the_service_section_counts() -> None:
    w = service("User=app\n[Install]\nUser=root\n")
    assert w.user is not None
    assert w.user.text == "app"


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ('/bin/echo "a b" c', ["/bin/echo", "a b", "c"]),
        ("/bin/echo 'a \"b\"'", ["/bin/echo", 'a "b"']),
        (r"/bin/echo a\sb \x41 \101", ["/bin/echo", "a b", "A", "A"]),
        ("", []),
        ('/bin/echo "open', None),
    ],
)
def test_split_words(value: str, words: list[str] | None) -> None:
    assert split_words(value) == words


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[Service]\nthis is not an assignment\n", "not Key=Value"),
        ("User=app\n", "outside any [section]"),
        ("[Unit]\nDescription=x\n", ""),
        ("[Service]\nNoNewPrivileges=perhaps\n", "not a boolean"),
        ('[Service]\nExecStart=/bin/echo "open\n', "unbalanced quotes"),
    ],
)
def test_problems_not_exceptions(text: str, needle: str) -> None:
    parsed = parse_systemd(text, "a.service")
    assert all(isinstance(loc, Location) for loc, _ in parsed.problems)
    if needle:
        assert any(needle in message for _, message in parsed.problems), parsed.problems


def test_not_a_service_unit() -> None:
    parsed = parse_systemd("\n", "blank.service")
    assert parsed.workloads == ()
    assert "no [Service] section" in parsed.problems[0][1]
    masked = parse_systemd("", "empty.service")  # systemd masks an empty unit file
    assert masked.workloads == ()
    assert masked.problems[0][1].startswith("an empty unit file is masked")


# -- sockets ----------------------------------------------------------------------------------
def test_socket_addresses_protocols_and_reset() -> None:
    text = (
        "[Socket]\n"
        "ListenStream=8080\n"
        "ListenStream=\n"  # resets every Listen*= before it
        "ListenStream=127.0.0.1:80\n"
        "ListenStream=[fe80::1]:443%%eth0\n"
        "ListenDatagram=53\n"
        "ListenSequentialPacket=/run/seq.sock\n"
        "ListenStream=@abstract\n"
        "ListenStream=vsock:2:1234\n"
        "ListenStream=nonsense:port\n"
        "SocketProtocol=sctp\n"
    )
    socket = parse_socket_unit(text, "dir/app.socket")
    assert socket.name == "app.socket"
    assert socket.service == "app.service"
    assert [(p.port, p.proto, p.location.line if p.location else 0) for p in socket.ports] == [
        (80, "sctp", 4),
        (443, "sctp", 5),
        (53, "udp", 6),
    ]
    assert [loc.line for loc, _ in socket.problems] == [10]


def test_socket_service_and_sockets_setting_pair() -> None:
    explicit = parse_socket_unit("[Socket]\nListenStream=80\nService=web.service\n", "http.socket")
    listed = parse_socket_unit("[Socket]\nListenStream=443\n", "https.socket")
    other = parse_socket_unit("[Socket]\nListenStream=25\n", "smtp.socket")
    parsed = parse_systemd(
        "[Service]\nSockets=https.socket\nExecStart=/srv/web\n",
        "web.service",
        [explicit, listed, other],
    )
    (web,) = parsed.workloads
    assert [p.port for p in web.ports] == [80, 443]
    assert web.socket_unit == "http.socket"


def test_socket_candidates() -> None:
    text = "[Service]\nSockets=a.socket b.socket\nSockets=a.socket\n"
    assert socket_candidates("/etc/systemd/system/web@.service", text) == [
        "/etc/systemd/system/web.socket",
        "/etc/systemd/system/a.socket",
        "/etc/systemd/system/b.socket",
    ]
