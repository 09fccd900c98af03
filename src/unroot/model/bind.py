"""The bind rule: who may bind a port below ``ip_unprivileged_port_start``.

net/ipv4/af_inet.c __inet_bind(), net/ipv6/af_inet6.c __inet6_bind() and net/sctp/socket.c
sctp_do_bind() all make the same check (include/net/ip.h inet_port_requires_bind_service)::

    if (snum && snum < net->ipv4.sysctl_ip_prot_sock &&
        !ns_capable(net->user_ns, CAP_NET_BIND_SERVICE))
            return -EACCES;

* Port 0 (let the kernel pick) never needs the capability.
* ``net.ipv4.ip_unprivileged_port_start`` belongs to the socket's network namespace (a new
  netns starts at 1024); IPv6, UDP and SCTP sockets use the same ipv4 value.
* ``ns_capable`` looks at the *effective* set (capabilities(7)), in the user namespace that
  owns the netns. security/commoncap.c cap_capable() walks from that namespace up to the
  caller's: capabilities the caller holds reach into namespaces below its own, the euid that
  created a child namespace holds every capability in it (even with an empty effective set),
  and nothing the caller holds counts in a namespace above its own — a rootless container on
  the host network, or ``unshare -U`` without ``-n``.
* The sysctl is written through proc_dointvec_minmax (0…65535) and must not exceed the low
  end of ``ip_local_port_range`` (sysctl_net_ipv4.c ipv4_privileged_ports): EINVAL otherwise.
"""

from __future__ import annotations

from unroot.model.caps import NET_BIND_SERVICE, CapSet
from unroot.model.errors import ParseError
from unroot.model.verdict import Fix, Reason, Verdict

PROTOS = ("tcp", "udp", "sctp")
FAMILIES = ("inet", "inet6")
DEFAULT_UNPRIVILEGED_PORT_START = 1024
SYSCTL = "net.ipv4.ip_unprivileged_port_start"
SYSCTL_MAX = 65535  # ip_privileged_port_max


def _check_args(port: int, proto: str, family: str, start: int) -> None:
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ParseError(f"port must be 0..65535, not {port!r}")
    if proto not in PROTOS:
        raise ParseError(f"protocol must be one of {', '.join(PROTOS)}, not {proto!r}")
    if family not in FAMILIES:
        raise ParseError(f"address family must be inet or inet6, not {family!r}")
    if isinstance(start, bool) or not isinstance(start, int) or not 0 <= start <= SYSCTL_MAX:
        raise ParseError(
            f"{SYSCTL} must be 0..{SYSCTL_MAX} (the kernel refuses more with EINVAL), not {start!r}"
        )


def sysctl_write_error(value: int, local_port_range_low: int) -> str | None:
    """The errno of ``sysctl -w net.ipv4.ip_unprivileged_port_start=value`` in a netns whose
    ``ip_local_port_range`` starts at ``local_port_range_low``; None when the write succeeds."""
    if not 0 <= value <= SYSCTL_MAX or value > local_port_range_low:
        return "EINVAL"
    return None


def bind_verdict(
    port: int,
    *,
    proto: str = "tcp",
    family: str = "inet",
    effective: CapSet,
    unprivileged_port_start: int = DEFAULT_UNPRIVILEGED_PORT_START,
    netns_owned_by_caller_userns: bool = True,
    caller_owns_netns_userns: bool = False,
    binary: str | None = None,
    user: str | None = None,
    command: str | None = None,
) -> Verdict:
    """May a process with ``effective`` capabilities bind ``port``?

    ``netns_owned_by_caller_userns``: the socket's netns belongs to the caller's user namespace
    or to one below it (False: to an ancestor or unrelated namespace, where the caller's
    capabilities do not count). ``caller_owns_netns_userns``: that namespace (or the one on
    its way up that is a child of the caller's) was created by the caller's euid, which then
    holds every capability there. ``binary``, ``user`` and ``command`` only fill in the fixes.
    """
    _check_args(port, proto, family, unprivileged_port_start)
    start = unprivileged_port_start
    where = f"{proto}/{'IPv6' if family == 'inet6' else 'IPv4'} port {port}"
    threshold = Reason(
        "privileged-port",
        f"{where} is below {SYSCTL}={start} of the socket's network namespace: "
        "bind() needs CAP_NET_BIND_SERVICE in the user namespace that owns that netns",
    )
    if port == 0:
        return Verdict(
            True,
            None,
            (
                Reason(
                    "ephemeral-port",
                    f"{proto} port 0 asks the kernel for a free ephemeral port: "
                    "no capability needed",
                ),
            ),
        )
    if port >= start:
        text = f"{where} is not below {SYSCTL}={start}: any user may bind it"
        return Verdict(True, None, (Reason("unprivileged-port", text),))
    has_cap = NET_BIND_SERVICE.issubset(effective)
    if not netns_owned_by_caller_userns:
        reason = Reason(
            "netns-foreign",
            "the network namespace belongs to a user namespace above the caller's (a rootless "
            "container on the host network, or `unshare -U` without `-n`): capabilities held "
            "in the caller's own user namespace do not count there"
            + (", so its cap_net_bind_service does not help" if has_cap else ""),
        )
        return Verdict(False, "EACCES", (threshold, reason), _foreign_fixes(port, start))
    if caller_owns_netns_userns:
        reason = Reason(
            "netns-userns-owner",
            "the netns belongs to a user namespace created by the caller's euid: its creator "
            "holds every capability there, whatever its effective set",
        )
        return Verdict(True, None, (threshold, reason))
    if has_cap:
        reason = Reason(
            "cap-net-bind-service",
            "cap_net_bind_service is in the effective set: bind() is allowed",
        )
        return Verdict(True, None, (threshold, reason))
    reason = Reason(
        "no-cap-net-bind-service",
        f"the effective set ({effective}) lacks cap_net_bind_service; only the effective set "
        "counts at bind() time (a permitted-only or inheritable capability does not)",
    )
    fixes = _fixes(port, start, binary or "BINARY", user or "USER", command or "CMD")
    return Verdict(False, "EACCES", (threshold, reason), fixes)


def _sysctl_fix(port: int, start: int) -> Fix:
    return Fix(
        f"lower {SYSCTL} to {port} in this network namespace (it is per netns): every process "
        f"in the netns may then bind ports {port}..{start - 1}, not just this one — right for "
        "a container's own netns (Docker ≥ 20.10 sets 0 there), wide on the host; the value "
        "cannot exceed the low end of net.ipv4.ip_local_port_range",
        f"sysctl -w {SYSCTL}={port}",
    )


def _fixes(port: int, start: int, binary: str, user: str, command: str) -> tuple[Fix, ...]:
    return (
        Fix(
            "give the binary the capability as a file capability: it runs with "
            "cap_net_bind_service effective, as any user (lost when the file is copied without "
            "xattrs, chowned or rewritten; ignored under no_new_privs unless already permitted)",
            f"setcap cap_net_bind_service=+ep {binary}",
        ),
        _sysctl_fix(port, start),
        Fix(
            "under systemd, keep the capability across the switch to User= as an ambient "
            "capability (also bound the set to it)",
            "AmbientCapabilities=CAP_NET_BIND_SERVICE\nCapabilityBoundingSet=CAP_NET_BIND_SERVICE",
        ),
        Fix(
            "bind the socket while privileged and hand it to the service already bound "
            "(LISTEN_FDS); the service itself then needs no capability at all",
            f"unroot run -l :{port} --user {user} -- {command}",
        ),
    )


def _foreign_fixes(port: int, start: int) -> tuple[Fix, ...]:
    return (
        Fix(
            f"as root of the namespace that owns the netns (the host's root for the host "
            f"network): lower {SYSCTL} there (per netns; opens ports {port}..{start - 1} to every "
            "process in it)",
            f"sysctl -w {SYSCTL}={port}",
        ),
        Fix(
            "rootless Docker/Podman: publish the port through rootlesskit's port driver and give "
            "rootlesskit the capability on the host (the container keeps its own netns)",
            "setcap cap_net_bind_service=ep $(command -v rootlesskit)",
        ),
        Fix(
            "create the network namespace together with the user namespace (`unshare -U -n`, a "
            "container network instead of the host network): then the namespace's root owns it",
            None,
        ),
        Fix(
            "bind the socket in the host namespace with privilege and pass it in already bound",
            f"unroot run -l :{port} --user USER -- CMD",
        ),
    )
