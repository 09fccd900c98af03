"""systemd settings around the process that change the verdicts (systemd 252's systemd.exec(5),
systemd.resource-control(5), load-fragment.c): PrivateUsers=, PrivateNetwork=,
NetworkNamespacePath=, RestrictAddressFamilies=, SocketBindAllow=/SocketBindDeny=, SecureBits=,
and the ones known not to matter (PermissionsStartOnly=, IPAddressDeny=)."""

from __future__ import annotations

import pytest

from unroot.lint.engine import lint_texts
from unroot.lint.rules.ur111_systemd_bind_fails import socket_bind_denial
from unroot.model.creds import SECBIT_KEEP_CAPS, SECBIT_NOROOT, SECBIT_NOROOT_LOCKED
from unroot.situation import Situation, build_situations
from unroot.sources.parsed import Location, SocketBindRule, UnitSandbox, Workload
from unroot.sources.systemd import parse_systemd


def service(body: str) -> Workload:
    parsed = parse_systemd("[Service]\n" + body, "app.service")
    (workload,) = parsed.workloads
    return workload


def sandbox(body: str) -> UnitSandbox:
    found = service(body).unit_sandbox
    assert found is not None
    return found


def situation(body: str) -> Situation:
    (found,) = build_situations([parse_systemd("[Service]\n" + body, "app.service")], {})
    return found


def rules(body: str) -> set[str]:
    result = lint_texts([("app.service", "systemd", "[Service]\n" + body)])
    return {f.rule for f in result.findings}


# -- PrivateUsers= / PrivateNetwork= / NetworkNamespacePath= -------------------------------------
@pytest.mark.parametrize(
    ("lines", "on"),
    [
        (["PrivateUsers=yes"], True),
        (["PrivateUsers=true"], True),
        (["PrivateUsers=self"], True),  # v256
        (["PrivateUsers=identity"], True),
        (["PrivateUsers=full"], True),  # v257
        (["PrivateUsers=no"], False),
        (["PrivateUsers=yes", "PrivateUsers=no"], False),
        (["PrivateUsers=yes", "PrivateUsers="], True),  # an empty boolean is ignored
        (["DynamicUser=yes"], False),  # DynamicUser= does not imply it (v252)
    ],
)
def test_private_users_values(lines: list[str], on: bool) -> None:
    found = service("ExecStart=/x\n" + "".join(f"{line}\n" for line in lines)).unit_sandbox
    assert (found is not None and found.private_users is not None) is on


def test_private_users_location_and_private_network() -> None:
    box = sandbox("PrivateUsers=yes\nPrivateNetwork=yes\n")
    assert box.private_users == Location("app.service", 2)
    assert box.private_network == Location("app.service", 3)


def test_network_namespace_path_replaces_private_network() -> None:
    box = sandbox("PrivateNetwork=no\nNetworkNamespacePath=/run/netns/dns\n")
    assert box.network_namespace_path == "/run/netns/dns"
    assert box.private_network == Location("app.service", 3)


def test_private_users_makes_the_host_netns_foreign_to_the_service() -> None:
    found = situation(
        "User=www\nAmbientCapabilities=CAP_NET_BIND_SERVICE\nPrivateUsers=yes\n"
        "ExecStart=/srv/web --port 80\n"
    )
    (bind,) = found.ports
    assert bind.start == 1024
    assert bind.start_source == "host"
    assert not bind.verdict.allowed
    assert bind.verdict.errno == "EACCES"
    assert [r.code for r in bind.verdict.reasons] == ["privileged-port", "netns-foreign"]
    assert found.final is not None
    assert "cap_net_bind_service" in found.final.effective.names()  # held, but not there
    assert any("PrivateUsers=" in a for a in found.assumptions)


def test_private_network_is_a_new_netns_also_foreign_under_private_users() -> None:
    found = situation("PrivateUsers=yes\nPrivateNetwork=yes\nExecStart=/srv/dns --port 53\n")
    (bind,) = found.ports
    assert (bind.start, bind.start_source, bind.verdict.errno) == (1024, "new-netns", "EACCES")
    root_only = situation("PrivateNetwork=yes\nExecStart=/srv/dns --port 53\n")
    (bind,) = root_only.ports
    assert bind.start_source == "new-netns"
    assert bind.verdict.allowed  # root in the initial user namespace owns it


def test_network_namespace_path_is_not_checked() -> None:
    found = situation("User=www\nNetworkNamespacePath=/run/netns/x\nExecStart=/srv/web --port 80\n")
    assert found.ports == ()
    assert any("NetworkNamespacePath=/run/netns/x" in a for a in found.assumptions)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("User=www\nAmbientCapabilities=CAP_NET_BIND_SERVICE\nPrivateUsers=yes\n", {"UR116"}),
        ("PrivateUsers=yes\n", {"UR116", "UR109"}),  # root in its namespace: still refused
        ("DynamicUser=yes\nPrivateUsers=yes\n", {"UR116"}),  # not UR113: nothing helps
        ("User=www\nPrivateUsers=yes\n", {"UR116"}),  # not UR111: its fix would not help
        ("User=www\nAmbientCapabilities=CAP_NET_BIND_SERVICE\n", set()),
    ],
)
def test_private_users_rule_takes_over(body: str, expected: set[str]) -> None:
    assert rules(body + "ExecStart=/srv/web --port 80\n") == expected


def test_plus_prefix_escapes_private_users() -> None:
    box = sandbox("PrivateUsers=yes\nPrivateNetwork=yes\nExecStart=+/srv/web --port 80\n")
    assert box.private_users is None
    assert box.private_network is not None  # the namespace is not sandboxing
    assert "UR116" not in rules("PrivateUsers=yes\nUser=www\nExecStart=+/srv/web --port 80\n")


# -- RestrictAddressFamilies= ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (["AF_UNIX AF_INET"], (True, ("AF_INET", "AF_UNIX"))),
        (["AF_UNIX", "AF_INET6"], (True, ("AF_INET6", "AF_UNIX"))),  # later lines add
        (["AF_UNIX AF_INET", "~AF_INET"], (True, ("AF_UNIX",))),  # ~ takes from an allow-list
        (["~AF_PACKET", "~AF_NETLINK"], (False, ("AF_NETLINK", "AF_PACKET"))),
        (["~AF_PACKET AF_INET", "AF_INET"], (False, ("AF_PACKET",))),
        (["none"], (True, ())),
        (["none", "AF_UNIX"], (True, ("AF_UNIX",))),
        (["AF_UNIX", ""], None),  # empty: no restriction
    ],
)
def test_restrict_address_families_merge(
    lines: list[str], expected: tuple[bool, tuple[str, ...]] | None
) -> None:
    body = "".join(f"RestrictAddressFamilies={line}\n" for line in lines)
    found = service(body + "ExecStart=/x\n").unit_sandbox
    assert (found.address_families if found else None) == expected


@pytest.mark.parametrize(
    ("value", "fails"),
    [
        ("AF_UNIX", True),
        ("none", True),
        ("~AF_INET AF_INET6", True),
        ("AF_UNIX AF_INET", False),  # the server is assumed to use IPv4 then
        ("AF_INET6", False),
        ("~AF_PACKET", False),
    ],
)
def test_restrict_address_families_rule(value: str, fails: bool) -> None:
    found = rules(f"DynamicUser=yes\nRestrictAddressFamilies={value}\nExecStart=/x --port 8080\n")
    assert ("UR111" in found) is fails


def test_socket_activation_is_not_subject_to_address_families() -> None:
    result = lint_texts(
        [
            ("web.socket", "systemd", "[Socket]\nListenStream=80\n"),
            (
                "web.service",
                "systemd",
                "[Service]\nDynamicUser=yes\nRestrictAddressFamilies=AF_UNIX\nExecStart=/srv/web\n",
            ),
        ]
    )
    assert result.findings == ()


# -- SocketBindAllow= / SocketBindDeny= --------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("any", ("", "", None)),
        ("80", ("", "", (80, 80))),
        ("tcp", ("", "tcp", None)),
        ("ipv6", ("ipv6", "", None)),
        ("ipv4:udp:53", ("ipv4", "udp", (53, 53))),
        ("ipv6:10000-65535", ("ipv6", "", (10000, 65535))),
        ("tcp:any", ("", "tcp", None)),
        ("ipv4:any", ("ipv4", "", None)),
        ("udp:ipv4", None),  # the family must come first
        ("tcp:80:ipv4", None),
        ("0", None),  # ports are 1..65535
        ("80-10", None),
        ("70000", None),
        ("ipv4::80", None),  # an empty token
        ("sctp:80", None),
    ],
)
def test_socket_bind_rule_syntax(
    value: str, parsed: tuple[str, str, tuple[int, int] | None] | None
) -> None:
    result = parse_systemd(f"[Service]\nSocketBindDeny={value}\nExecStart=/x\n", "a.service")
    box = result.workloads[0].unit_sandbox
    rules_found = box.socket_bind_deny if box else ()
    if parsed is None:
        assert rules_found == ()
        assert any("cannot parse" in m for _, m in result.problems)
    else:
        (rule,) = rules_found
        assert (rule.family, rule.proto, rule.ports) == parsed
        assert rule.location == Location("a.service", 2)


def _rule(text: str) -> SocketBindRule:
    box = sandbox(f"SocketBindDeny={text}\nExecStart=/x\n")
    return box.socket_bind_deny[0]


@pytest.mark.parametrize(
    ("allow", "deny", "proto", "port", "denied"),
    [
        ([], ["any"], "tcp", 8080, True),
        (["tcp:8080"], ["any"], "tcp", 8080, False),
        (["8000-9000"], ["any"], "udp", 8080, False),
        (["udp:53"], ["any"], "tcp", 53, True),
        (["ipv6:tcp:8080"], ["any"], "tcp", 8080, False),  # IPv6 may bind: not certain
        ([], ["ipv4"], "tcp", 8080, False),  # only IPv4 refused: depends on the server
        ([], ["ipv4", "ipv6"], "tcp", 8080, True),
        ([], ["tcp:1-1023"], "tcp", 8080, False),
        ([], ["tcp:1-1023"], "tcp", 443, True),
        ([], [], "tcp", 80, False),
    ],
)
def test_socket_bind_evaluation(
    allow: list[str], deny: list[str], proto: str, port: int, denied: bool
) -> None:
    body = "".join(f"SocketBindAllow={a}\n" for a in allow)
    body += "".join(f"SocketBindDeny={d}\n" for d in deny)
    box = service(body + "ExecStart=/x\n").unit_sandbox or UnitSandbox()
    assert (socket_bind_denial(box, proto, port) is not None) is denied


def test_socket_bind_empty_resets() -> None:
    body = "SocketBindDeny=any\nSocketBindDeny=\nSocketBindAllow=80\nSocketBindAllow=\n"
    assert service(body).unit_sandbox is None


def test_socket_bind_finding_is_a_warning_with_its_assumption() -> None:
    result = lint_texts(
        [
            (
                "app.service",
                "systemd",
                "[Service]\nDynamicUser=yes\nSocketBindDeny=any\nExecStart=/x --port 8080\n",
            )
        ]
    )
    (finding,) = result.findings
    assert (finding.rule, finding.severity, finding.line) == ("UR111", "warning", 4)
    assert "EPERM" in finding.message
    assert finding.fix == "add `SocketBindAllow=tcp:8080` to the unit"
    assert any("BPF_FRAMEWORK" in a for a in finding.assumptions)


# -- SecureBits= ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("lines", "bits"),
    [
        (["noroot"], SECBIT_NOROOT),
        (["noroot noroot-locked"], SECBIT_NOROOT | SECBIT_NOROOT_LOCKED),
        (["noroot", "keep-caps"], SECBIT_KEEP_CAPS),  # each line replaces
        (["noroot", ""], 0),
        (["bogus keep-caps"], SECBIT_KEEP_CAPS),  # unknown words are ignored (and reported)
    ],
)
def test_secure_bits(lines: list[str], bits: int) -> None:
    body = "".join(f"SecureBits={line}\n" for line in lines)
    assert sandbox(body).securebits == bits


def test_noroot_takes_roots_capabilities_at_exec() -> None:
    found = situation("SecureBits=noroot\nExecStart=/usr/sbin/dnsmasq --port=53\n")
    assert found.start is not None
    assert found.start.securebits == SECBIT_NOROOT
    (bind,) = found.ports
    assert bind.verdict.errno == "EACCES"
    assert rules("SecureBits=noroot\nExecStart=/usr/sbin/dnsmasq --port=53\n") == {
        "UR109",
        "UR111",
    }
    kept = situation(
        "SecureBits=noroot\nAmbientCapabilities=CAP_NET_BIND_SERVICE\n"
        "ExecStart=/usr/sbin/dnsmasq --port=53\n"
    )
    assert kept.ports[0].verdict.allowed


def test_keep_caps_is_an_assumption_not_a_verdict() -> None:
    found = situation("User=www\nSecureBits=keep-caps\nExecStart=/srv/web --port 80\n")
    assert any("keep-caps" in a for a in found.assumptions)
    assert rules("User=www\nSecureBits=keep-caps\nExecStart=/srv/web --port 80\n") == {"UR111"}


# -- known and harmless ---------------------------------------------------------------------------
def test_permissions_start_only_keeps_exec_start_as_the_user() -> None:
    w = service("User=www\nPermissionsStartOnly=yes\nExecStart=/srv/web --port 80\n")
    assert w.user is not None
    assert w.user.text == "www"
    assert w.unit_sandbox is not None
    (note,) = w.unit_sandbox.notes
    assert "PermissionsStartOnly=yes" in note
    assert "app.service:3" in note
    assert rules("User=www\nPermissionsStartOnly=yes\nExecStart=/srv/web --port 80\n") == {"UR111"}


def test_ip_address_deny_does_not_stop_bind() -> None:
    body = "User=www\nAmbientCapabilities=CAP_NET_BIND_SERVICE\nIPAddressDeny=any\n"
    found = situation(body + "ExecStart=/srv/web --port 80\n")
    assert found.ports[0].verdict.allowed
    assert any("IPAddressDeny= filters packets" in a for a in found.assumptions)
    assert service("IPAddressDeny=any\nIPAddressDeny=\n").unit_sandbox is None


def test_a_plain_unit_has_no_sandbox() -> None:
    assert service("User=www\nExecStart=/srv/web\n").unit_sandbox is None
