"""The bind rule — capabilities(7) CAP_NET_BIND_SERVICE, ip(7) ip_unprivileged_port_start."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from unroot.errors import ParseError
from unroot.model.bind import bind_verdict, sysctl_write_error
from unroot.model.caps import CapSet

NBS = CapSet.of("cap_net_bind_service")
NONE = CapSet()


@pytest.mark.parametrize(
    ("port", "effective", "start", "owned", "expected"),
    [
        # capabilities(7): "CAP_NET_BIND_SERVICE Bind a socket to Internet domain privileged
        # ports (port numbers less than 1024)"
        (80, NONE, 1024, True, "EACCES"),
        (80, NBS, 1024, True, None),
        (1023, NONE, 1024, True, "EACCES"),
        (1024, NONE, 1024, True, None),
        # port 0: the kernel picks an ephemeral port, never privileged (snum == 0)
        (0, NONE, 1024, True, None),
        (0, NONE, 65535, False, None),
        # ip(7) ip_unprivileged_port_start: "all ports below this value require
        # CAP_NET_BIND_SERVICE"; Docker >= 20.10 writes 0 in a container's netns
        (80, NONE, 0, True, None),
        (80, NONE, 80, True, None),
        (80, NONE, 81, True, "EACCES"),
        (8080, NONE, 65535, True, "EACCES"),
        (65535, NONE, 65535, True, None),
        # user_namespaces(7): capabilities count in the user namespace that owns the netns;
        # a netns owned by an ancestor namespace (rootless container on the host network)
        (80, CapSet.all(), 1024, False, "EACCES"),
        (1024, CapSet.all(), 1024, False, None),
        # the effective set counts: other capabilities do not stand in for it
        (443, CapSet.parse("cap_net_admin,cap_net_raw,cap_sys_admin"), 1024, True, "EACCES"),
    ],
)
def test_table(port: int, effective: CapSet, start: int, owned: bool, expected: str | None) -> None:
    verdict = bind_verdict(
        port,
        effective=effective,
        unprivileged_port_start=start,
        netns_owned_by_caller_userns=owned,
    )
    assert verdict.errno == expected
    assert verdict.allowed is (expected is None)
    assert verdict.reasons


@pytest.mark.parametrize("proto", ["tcp", "udp", "sctp"])
@pytest.mark.parametrize("family", ["inet", "inet6"])
def test_every_protocol_and_family_shares_the_ipv4_sysctl(proto: str, family: str) -> None:
    # af_inet6.c __inet6_bind and sctp_do_bind use net->ipv4.sysctl_ip_prot_sock too
    denied = bind_verdict(80, proto=proto, family=family, effective=NONE)
    assert denied.errno == "EACCES"
    assert bind_verdict(
        80, proto=proto, family=family, effective=NONE, unprivileged_port_start=80
    ).allowed


def test_creator_of_the_namespace_holds_every_capability() -> None:
    # security/commoncap.c cap_capable(): "The owner of the user namespace in the parent of the
    # user namespace has all caps" — e.g. a host user binding in its rootless container's netns
    verdict = bind_verdict(80, effective=NONE, caller_owns_netns_userns=True)
    assert verdict.allowed
    assert verdict.reasons[-1].code == "netns-userns-owner"


def test_fixes_for_a_plain_denial() -> None:
    verdict = bind_verdict(
        443,
        effective=NONE,
        binary="/usr/local/bin/blog",
        user="www",
        command="/usr/local/bin/blog --listen :443",
    )
    commands = [fix.command for fix in verdict.fixes]
    assert commands[0] == "setcap cap_net_bind_service=+ep /usr/local/bin/blog"
    assert commands[1] == "sysctl -w net.ipv4.ip_unprivileged_port_start=443"
    assert "per netns" in verdict.fixes[1].why
    assert "443..1023" in verdict.fixes[1].why
    assert commands[2] is not None
    assert "AmbientCapabilities=CAP_NET_BIND_SERVICE" in commands[2]
    assert commands[3] == "unroot run -l :443 --user www -- /usr/local/bin/blog --listen :443"
    assert [r.code for r in verdict.reasons] == ["privileged-port", "no-cap-net-bind-service"]


def test_fixes_for_a_foreign_netns_do_not_suggest_capabilities() -> None:
    verdict = bind_verdict(80, effective=CapSet.all(), netns_owned_by_caller_userns=False)
    assert verdict.reasons[-1].code == "netns-foreign"
    assert "do not count" in verdict.reasons[-1].text
    commands = " ".join(fix.command or "" for fix in verdict.fixes)
    assert "setcap cap_net_bind_service=+ep BINARY" not in commands
    assert "rootlesskit" in commands
    assert "ip_unprivileged_port_start=80" in commands


def test_allowed_verdicts_have_no_fixes() -> None:
    assert bind_verdict(8080, effective=NONE).fixes == ()
    assert bind_verdict(80, effective=NBS).to_json()["errno"] is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"port": -1}, "port"),
        ({"port": 65536}, "port"),
        ({"port": True}, "port"),
        ({"port": 80, "proto": "icmp"}, "protocol"),
        ({"port": 80, "family": "unix"}, "family"),
        ({"port": 80, "unprivileged_port_start": 65536}, "ip_unprivileged_port_start"),
        ({"port": 80, "unprivileged_port_start": -1}, "ip_unprivileged_port_start"),
    ],
)
def test_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ParseError, match=message):
        bind_verdict(effective=NONE, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "low", "expected"),
    [
        (1024, 32768, None),
        (32768, 32768, None),  # may equal the low end of ip_local_port_range
        (32769, 32768, "EINVAL"),  # ipv4_privileged_ports(): "range[0] < pports" → EINVAL
        (65535, 65535, None),
        (65536, 65535, "EINVAL"),  # ip_privileged_port_max = 65535
        (-1, 32768, "EINVAL"),  # proc_dointvec_minmax, min 0
    ],
)
def test_sysctl_write_limits(value: int, low: int, expected: str | None) -> None:
    assert sysctl_write_error(value, low) == expected


# -- properties ------------------------------------------------------------------------------
ports = st.integers(0, 65535)
starts = st.integers(0, 65535)
capsets = st.integers(0, (1 << 41) - 1).map(CapSet)


@given(
    port=ports, start=starts, some=capsets, more=capsets, owned=st.booleans(), owner=st.booleans()
)
def test_adding_capabilities_never_turns_allow_into_deny(
    *, port: int, start: int, some: CapSet, more: CapSet, owned: bool, owner: bool
) -> None:
    before = bind_verdict(
        port,
        effective=some,
        unprivileged_port_start=start,
        netns_owned_by_caller_userns=owned,
        caller_owns_netns_userns=owner,
    )
    after = bind_verdict(
        port,
        effective=some | more,
        unprivileged_port_start=start,
        netns_owned_by_caller_userns=owned,
        caller_owns_netns_userns=owner,
    )
    assert after.allowed >= before.allowed


@given(ports, starts, capsets, st.booleans())
def test_lowering_the_sysctl_never_turns_allow_into_deny(
    port: int, start: int, effective: CapSet, owned: bool
) -> None:
    high = bind_verdict(
        port, effective=effective, unprivileged_port_start=start, netns_owned_by_caller_userns=owned
    )
    low = bind_verdict(
        port,
        effective=effective,
        unprivileged_port_start=start // 2,
        netns_owned_by_caller_userns=owned,
    )
    assert low.allowed >= high.allowed


@given(
    port=ports,
    start=starts,
    effective=capsets,
    owned=st.booleans(),
    proto=st.sampled_from(["tcp", "udp", "sctp"]),
    family=st.sampled_from(["inet", "inet6"]),
)
def test_the_formula(
    *, port: int, start: int, effective: CapSet, owned: bool, proto: str, family: str
) -> None:
    verdict = bind_verdict(
        port,
        proto=proto,
        family=family,
        effective=effective,
        unprivileged_port_start=start,
        netns_owned_by_caller_userns=owned,
    )
    needs = 0 < port < start
    assert verdict.allowed is (not needs or (owned and "cap_net_bind_service" in effective))
    assert (verdict.errno == "EACCES") is (not verdict.allowed)
    assert bool(verdict.fixes) is (not verdict.allowed)
