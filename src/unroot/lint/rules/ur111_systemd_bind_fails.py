"""A systemd service cannot bind its port: no capability after User=, or its own sandbox refuses.

What it does
    For a service (not a ``.socket`` listener: systemd binds those and passes the socket) that
    listens on a port named on its ``ExecStart=`` line — after the unit's drop-ins — runs the
    model with systemd's start credentials and reports a bind the unit makes impossible:

    * ``User=``/``DynamicUser=`` clear the capabilities unless ``AmbientCapabilities=`` keeps
      them, ``CapabilityBoundingSet=`` limits even root, and ``SecureBits=noroot`` stops root
      from getting any capability at execve: a port below the host's
      ``ip_unprivileged_port_start`` (1024 by default) fails with EACCES.  When no_new_privs
      is also set, UR113 reports it instead (a file capability could not help either); under
      ``PrivateUsers=``, UR116 (no capability helps).
    * ``SocketBindDeny=`` matching the port with no ``SocketBindAllow=`` that matches it, for
      both IPv4 and IPv6 (systemd's cgroup/bind4 and bind6 BPF programs: allow-list first,
      then deny-list, then allow): bind() fails with EPERM, whatever the capabilities.  A
      warning: it needs a systemd built with BPF_FRAMEWORK (Fedora, Arch; Debian 12's 252 is
      built without it and ignores both settings).
    * ``RestrictAddressFamilies=`` leaving out both AF_INET and AF_INET6: the seccomp filter
      makes ``socket()`` fail with EAFNOSUPPORT before any bind.  Neither applies to a socket
      passed by a ``.socket`` unit; when only one of the two families is allowed the linter
      assumes the server uses that one.

Why is this bad?
    The unit starts, the server's ``bind()`` (or ``socket()``) fails, and systemd restarts it
    in a loop.  The capability must be *effective* at bind time: after the switch to ``User=``
    only the ambient set carries it across execve (systemd.exec(5)).  A file capability on the
    binary would also work but is invisible in the unit (the linter assumes none) and a package
    upgrade rewrites the binary without it.  Sandboxing copied from ``systemd-analyze
    security`` (``RestrictAddressFamilies=AF_UNIX``, ``SocketBindDeny=any``) easily forgets
    the port the service exists to serve.

Example
    ``User=www-data`` with ``ExecStart=/usr/local/bin/app --listen :80``.

Use instead
    ``AmbientCapabilities=CAP_NET_BIND_SERVICE`` (with
    ``CapabilityBoundingSet=CAP_NET_BIND_SERVICE`` to keep everything else out), or a
    ``.socket`` unit with ``ListenStream=80`` that passes the bound socket
    (``unroot.activation`` reads it in Python); ``SocketBindAllow=tcp:PORT`` before
    ``SocketBindDeny=any``; ``AF_INET AF_INET6`` in ``RestrictAddressFamilies=``.

References
    - systemd.exec(5): AmbientCapabilities=, CapabilityBoundingSet=, User=, SecureBits=,
      RestrictAddressFamilies= ("socket(2) … EAFNOSUPPORT")
    - systemd.resource-control(5): SocketBindAllow=, SocketBindDeny= (v249);
      src/core/bpf/socket_bind/socket-bind.bpf.c
    - systemd.socket(5); sd_listen_fds(3); securebits(7)
    - Caddy's and CoreDNS's packaged units use AmbientCapabilities=CAP_NET_BIND_SERVICE
    - https://github.com/systemd/systemd/issues/30512 (SocketBindDeny=any and nc -l: EPERM)

UR111: User= and port 80 without an ambient capability
    # kind: systemd
    [Service]
    User=www-data
    ExecStart=/usr/local/bin/app --listen :80

Okay: the capability is ambient
    # kind: systemd
    [Service]
    User=www-data
    AmbientCapabilities=CAP_NET_BIND_SERVICE
    CapabilityBoundingSet=CAP_NET_BIND_SERVICE
    ExecStart=/usr/local/bin/app --listen :80

Okay: a socket unit binds the port
    --- app.socket
    [Socket]
    ListenStream=80
    --- app.service
    [Service]
    User=www-data
    ExecStart=/usr/local/bin/app --fd 3

UR111: root, but the bounding set leaves the capability out
    # kind: systemd
    [Service]
    CapabilityBoundingSet=CAP_CHOWN
    ExecStart=/usr/sbin/dnsmasq --keep-in-foreground --port=53

UR111: a drop-in resets AmbientCapabilities=
    --- coredns.service
    [Service]
    User=coredns
    AmbientCapabilities=CAP_NET_BIND_SERVICE
    ExecStart=/usr/bin/coredns -dns.port=53
    --- coredns.service.d/override.conf
    [Service]
    AmbientCapabilities=

UR111: root with SecureBits=noroot
    # kind: systemd
    [Service]
    SecureBits=noroot noroot-locked
    ExecStart=/usr/sbin/dnsmasq --keep-in-foreground --port=53

Okay: SecureBits=noroot and an ambient capability
    # kind: systemd
    [Service]
    SecureBits=noroot
    AmbientCapabilities=CAP_NET_BIND_SERVICE
    ExecStart=/usr/sbin/dnsmasq --keep-in-foreground --port=53

UR111: SocketBindDeny=any without an allow rule for the port
    # kind: systemd
    [Service]
    DynamicUser=yes
    SocketBindAllow=tcp:9000-9100
    SocketBindDeny=any
    ExecStart=/usr/local/bin/app --port 8080

Okay: SocketBindAllow= names the port
    # kind: systemd
    [Service]
    DynamicUser=yes
    SocketBindAllow=tcp:8080
    SocketBindDeny=any
    ExecStart=/usr/local/bin/app --port 8080

UR111: RestrictAddressFamilies= without AF_INET and AF_INET6
    # kind: systemd
    [Service]
    DynamicUser=yes
    RestrictAddressFamilies=AF_UNIX AF_NETLINK
    ExecStart=/usr/local/bin/app --port 8080

Okay: IPAddressDeny= filters packets, it does not stop bind()
    # kind: systemd
    [Service]
    DynamicUser=yes
    IPAddressDeny=any
    PermissionsStartOnly=yes
    ExecStart=/usr/local/bin/app --port 8080
"""

from __future__ import annotations

from collections.abc import Iterator

from unroot.lint.registry import Report, rule
from unroot.lint.rules.ur116_systemd_private_users import foreign_netns
from unroot.model.runtimes import PORT_SYSCTL
from unroot.situation import PortBind, Situation
from unroot.sources.parsed import Location, SocketBindRule, UnitSandbox

AMBIENT_FIX = (
    "AmbientCapabilities=CAP_NET_BIND_SERVICE (and CapabilityBoundingSet=CAP_NET_BIND_SERVICE "
    "to keep the rest out), or a .socket unit with ListenStream={port} that passes the bound "
    "socket"
)
BPF_ASSUMPTION = (
    "systemd is built with BPF_FRAMEWORK (`systemctl --version` shows +BPF_FRAMEWORK: Fedora, "
    "Arch…); Debian 12's systemd 252 is not, and ignores SocketBindAllow=/SocketBindDeny="
)


def _matches(rule: SocketBindRule, family: str, proto: str, port: int) -> bool:
    in_range = rule.ports is None or rule.ports[0] <= port <= rule.ports[1]
    return rule.family in ("", family) and rule.proto in ("", proto) and in_range


def socket_bind_denial(sandbox: UnitSandbox, proto: str, port: int) -> SocketBindRule | None:
    """The SocketBindDeny= rule that refuses ``proto``/``port`` for IPv4 *and* IPv6 (systemd's
    bind4/bind6 programs: an allow match wins, then a deny match refuses, else allowed); None
    when either family may bind it.  Only TCP and UDP are matched by protocol."""
    denied: list[SocketBindRule] = []
    for family in ("ipv4", "ipv6"):
        if any(_matches(r, family, proto, port) for r in sandbox.socket_bind_allow):
            return None
        rule = next((r for r in sandbox.socket_bind_deny if _matches(r, family, proto, port)), None)
        if rule is None:
            return None
        denied.append(rule)
    return denied[0]


def _family_refused(sandbox: UnitSandbox) -> bool:
    if sandbox.address_families is None:
        return False
    allow, families = sandbox.address_families
    inet = {"AF_INET", "AF_INET6"}
    return not (inet & set(families)) if allow else inet <= set(families)


@rule("UR111", topic="bind-fails", severity="error", kinds=("systemd",))
def systemd_bind_fails(situation: Situation) -> Iterator[Report]:
    """A systemd service cannot bind its port: no capability after User=, or its own sandbox
    refuses."""
    workload = situation.workload
    if workload is None or situation.service_user is None or not situation.ports:
        return
    sandbox = workload.unit_sandbox
    seen: set[tuple[int, str]] = set()
    for bind in situation.ports:
        key = (bind.port.port, bind.port.proto)
        if key in seen:
            continue
        seen.add(key)
        if sandbox is not None and _family_refused(sandbox):
            yield _family_report(situation, bind, sandbox)
            return
        denial = socket_bind_denial(sandbox, bind.port.proto, bind.port.port) if sandbox else None
        if denial is not None:
            yield _socket_bind_report(situation, bind, denial)
            continue
        report = _capability_report(situation, bind)
        if report is not None:
            yield report


def _capability_report(situation: Situation, bind: PortBind) -> Report | None:
    workload, who = situation.workload, situation.service_user
    if workload is None or who is None or bind.verdict.allowed or foreign_netns(bind):
        return None
    if workload.no_new_privs and not who.is_root:
        return None  # UR113: no_new_privs rules out the file-capability route too
    service = situation.service
    path = service.path if service is not None else "the service"
    port = bind.port.port
    if who.is_root and _noroot(situation):
        sandbox = workload.unit_sandbox
        where = sandbox.securebits_location if sandbox is not None else None
        at = f" ({where.file}:{where.line})" if where is not None else ""
        why = (
            f"root runs it, but SecureBits=noroot{at} gives uid 0 no capabilities at execve and "
            "no AmbientCapabilities= carries cap_net_bind_service"
        )
        fix = (
            "AmbientCapabilities=CAP_NET_BIND_SERVICE (ambient capabilities survive noroot), or "
            "drop noroot from SecureBits="
        )
    elif who.is_root:
        why = "root runs it, but CapabilityBoundingSet= leaves out CAP_NET_BIND_SERVICE"
        fix = "include CAP_NET_BIND_SERVICE in CapabilityBoundingSet="
    else:
        setting = "DynamicUser=yes" if workload.dynamic_user else f"User={who.text}"
        why = (
            f"{setting} runs {path} without cap_net_bind_service: the switch to the user "
            "clears the capabilities and no AmbientCapabilities= carries it"
        )
        fix = AMBIENT_FIX.format(port=port)
    return Report(
        bind.port.location or situation.location,
        f"bind() of {bind.port.proto} port {port} fails with EACCES: {why}, and {port} is "
        f"below the {_netns(situation)} {PORT_SYSCTL}={bind.start}",
        fix=fix,
        related=ambient_reset(situation),
    )


def ambient_reset(situation: Situation) -> tuple[tuple[str, int, str], ...]:
    """Where an ``AmbientCapabilities=`` line (a drop-in's, typically) left the set empty."""
    workload = situation.workload
    where = workload.location_of("ambient_caps") if workload is not None else None
    if workload is None or where is None or workload.ambient_caps:
        return ()
    return ((where.file, where.line, "AmbientCapabilities= is emptied here"),)


def _netns(situation: Situation) -> str:
    workload = situation.workload
    sandbox = workload.unit_sandbox if workload is not None else None
    if sandbox is not None and sandbox.private_network is not None:
        return "PrivateNetwork= namespace's"
    return "host's"


def _noroot(situation: Situation) -> bool:
    chain = situation.chain
    return chain is not None and any(
        reason.code == "secbit-noroot" for step in chain.steps for reason in step.result.reasons
    )


def _socket_bind_report(situation: Situation, bind: PortBind, denial: SocketBindRule) -> Report:
    where = denial.location
    port, proto = bind.port.port, bind.port.proto
    return Report(
        bind.port.location or situation.location,
        f"bind() of {proto} port {port} fails with EPERM: SocketBindDeny={denial.text} "
        f"({where.file}:{where.line}) matches it and no SocketBindAllow= does — systemd's "
        "cgroup BPF program refuses the bind, whatever the capabilities",
        fix=f"add `SocketBindAllow={proto}:{port}` to the unit",
        severity="warning",
        related=((where.file, where.line, f"SocketBindDeny={denial.text}"),),
        assumptions=(BPF_ASSUMPTION,),
    )


def _family_report(situation: Situation, bind: PortBind, sandbox: UnitSandbox) -> Report:
    where = sandbox.address_families_location or Location(situation.location.file)
    families = sandbox.address_families[1] if sandbox.address_families else ()
    allowed = " ".join(families) or "none"
    return Report(
        bind.port.location or situation.location,
        f"the service cannot create its {bind.port.proto} socket for port {bind.port.port}: "
        f"socket(AF_INET/AF_INET6) fails with EAFNOSUPPORT because RestrictAddressFamilies= "
        f"({where.file}:{where.line}) allows only {allowed}"
        if sandbox.address_families and sandbox.address_families[0]
        else f"the service cannot create its {bind.port.proto} socket for port "
        f"{bind.port.port}: socket(AF_INET/AF_INET6) fails with EAFNOSUPPORT because "
        f"RestrictAddressFamilies=~{allowed} ({where.file}:{where.line}) forbids them",
        fix="add AF_INET AF_INET6 to RestrictAddressFamilies= (or let a .socket unit create the "
        "socket: a passed socket is not subject to it)",
        related=((where.file, where.line, "RestrictAddressFamilies="),),
    )
