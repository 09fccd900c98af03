"""PrivateUsers= keeps a systemd service's capabilities out of the network namespace it binds in.

What it does
    For a service with ``PrivateUsers=`` (``yes``, or ``self``/``identity``/``full`` in newer
    systemd) that binds a port itself (not through a ``.socket`` unit), asks the model about
    each bind with the namespaces systemd sets up: the service's process lives in a user
    namespace of its own, while the network namespace — the host's, or the new one of
    ``PrivateNetwork=yes`` — belongs to the initial user namespace, because systemd (as PID 1,
    holding CAP_SYS_ADMIN) creates the user namespace *last*.  The kernel checks
    CAP_NET_BIND_SERVICE in the namespace that owns the netns, so a port below
    ``ip_unprivileged_port_start`` is refused whatever the service holds in its own namespace:
    ``AmbientCapabilities=CAP_NET_BIND_SERVICE``, root's full set, a file capability.  Drop-ins
    count: a hardening drop-in that adds ``PrivateUsers=yes`` to a unit that used to work is
    the usual way in.

Why is this bad?
    The unit starts, the server's ``bind()`` fails with EACCES, and systemd restarts it in a
    loop; the unit *looks* right (the capability is granted, ``systemd-analyze security``
    rewards ``PrivateUsers=``).  systemd.exec(5): under ``PrivateUsers=`` "the process will
    have zero process capabilities on the host's user namespace".  Verified on Linux 6.18: uid
    1000 with an effective CAP_NET_BIND_SERVICE binds 127.0.0.1:1023 in the host netns from
    the initial user namespace and gets EACCES from a child user namespace, also when the
    netns was unshared before the user namespace (systemd's order for ``PrivateNetwork=``);
    only a netns created inside the child user namespace lets it bind
    (``tests/lint/test_systemd_userns_live.py``).

Example
    ``User=caddy``, ``AmbientCapabilities=CAP_NET_BIND_SERVICE`` and a drop-in
    ``caddy.service.d/hardening.conf`` with ``PrivateUsers=yes``; Caddy listens on :80.

Use instead
    Remove ``PrivateUsers=`` (``PrivateUsers=no`` in a drop-in), or let systemd bind the port:
    a ``.socket`` unit with ``ListenStream=80`` is bound by PID 1 in the host namespaces and
    passed in, and then ``PrivateUsers=yes`` costs nothing.  Lowering the host's
    ``net.ipv4.ip_unprivileged_port_start`` also works, for every process on the host.

References
    - systemd.exec(5): PrivateUsers= ("zero process capabilities on the host's user namespace")
    - systemd src/core/execute.c (v252) exec_child: the user namespace is set up after the
      network namespace for privileged managers; src/core/exec-invoke.c (current) the same,
      unless DelegateNamespaces=net
    - capabilities(7), user_namespaces(7), network_namespaces(7); net/ipv4/af_inet.c
    - https://github.com/systemd/systemd/issues/11889 (user namespace + host netns: no
      privileged port), https://github.com/systemd/systemd/issues/14383
    - https://github.com/NixOS/nixpkgs/pull/333533 (capability grants ineffective under
      PrivateUsers), https://github.com/go-gitea/gitea/pull/20383,
      https://github.com/iputils/iputils/pull/316, https://github.com/containers/bubblewrap/issues/460

UR116: a hardening drop-in adds PrivateUsers=yes
    --- caddy.service
    [Service]
    User=caddy
    AmbientCapabilities=CAP_NET_BIND_SERVICE
    ExecStart=/usr/bin/caddy file-server --root /srv/www --listen :80
    --- caddy.service.d/hardening.conf
    [Service]
    PrivateUsers=yes

UR116: root inside PrivateUsers= with PrivateNetwork=
    # kind: systemd
    [Service]
    PrivateUsers=yes
    PrivateNetwork=yes
    ExecStart=/usr/sbin/dnsmasq --keep-in-foreground --port=53

Okay: a drop-in turns it off again
    --- caddy.service
    [Service]
    User=caddy
    AmbientCapabilities=CAP_NET_BIND_SERVICE
    PrivateUsers=yes
    ExecStart=/usr/bin/caddy file-server --root /srv/www --listen :80
    --- caddy.service.d/override.conf
    [Service]
    PrivateUsers=no

Okay: a socket unit binds the port
    --- web.socket
    [Socket]
    ListenStream=80
    --- web.service
    [Service]
    User=www-data
    PrivateUsers=yes
    ExecStart=/usr/local/bin/web --fd 3

Okay: a high port needs no capability
    # kind: systemd
    [Service]
    DynamicUser=yes
    PrivateUsers=yes
    ExecStart=/usr/local/bin/web --port 8080
"""

from __future__ import annotations

from collections.abc import Iterator

from unroot.lint.registry import Report, rule
from unroot.lint.rules import related_lines
from unroot.model.runtimes import PORT_SYSCTL
from unroot.situation import PortBind, Situation


def foreign_netns(bind: PortBind) -> bool:
    """The model refused the bind because the netns belongs to a user namespace above the
    service's: capabilities cannot help (this rule's situation, not UR111's or UR113's)."""
    return not bind.verdict.allowed and any(
        reason.code == "netns-foreign" for reason in bind.verdict.reasons
    )


@rule("UR116", topic="bind-fails", severity="error", kinds=("systemd",))
def systemd_private_users(situation: Situation) -> Iterator[Report]:
    """PrivateUsers= keeps the service's capabilities out of the network namespace it binds in."""
    workload = situation.workload
    sandbox = workload.unit_sandbox if workload is not None else None
    if workload is None or sandbox is None or sandbox.private_users is None:
        return
    failing = [b for b in situation.ports if foreign_netns(b)]
    if not failing:
        return
    where = sandbox.private_users
    netns = (
        "the new network namespace of PrivateNetwork=yes"
        if sandbox.private_network is not None
        else "the host's network namespace"
    )
    held = (
        "AmbientCapabilities=CAP_NET_BIND_SERVICE"
        if "cap_net_bind_service" in workload.ambient_caps  # canonical names (CapSet.names)
        else "root's capabilities"
        if situation.service_user is not None and situation.service_user.is_root
        else "a capability"
    )
    ports = sorted({b.port.port for b in failing})
    first = failing[0]
    yield Report(
        first.port.location or situation.location,
        f"bind() of {first.port.proto} port {', '.join(map(str, ports))} fails with EACCES: "
        f"PrivateUsers= ({where.file}:{where.line}) runs the service in a user namespace of its "
        f"own, while {netns} belongs to the initial user namespace (systemd creates the user "
        f"namespace last) — {held} held in the service's namespace does not count there, and "
        f"{ports[0]} is below that namespace's {PORT_SYSCTL}={first.start}",
        fix=(
            f"remove PrivateUsers= (or `PrivateUsers=no` in a drop-in), or let a .socket unit "
            f"bind it (ListenStream={ports[0]}): PID 1 binds it in the host namespaces and passes "
            "it in"
        ),
        related=related_lines(
            (where, "PrivateUsers=: a user namespace of the service's own"),
            (
                workload.location_of("ambient_caps") if workload.ambient_caps else None,
                "the capability it holds only there",
            ),
        ),
    )
