"""A systemd service cannot bind its low port: ``User=`` without ``AmbientCapabilities=``.

What it does
    For a service (not a ``.socket`` listener: systemd binds those and passes the socket) that
    listens on a port named on its ``ExecStart=`` line, runs the model with systemd's start
    credentials — ``User=``/``DynamicUser=`` clear the capabilities unless
    ``AmbientCapabilities=`` keeps them, ``CapabilityBoundingSet=`` limits even root — and
    reports a bind the kernel refuses on the host's network namespace
    (``ip_unprivileged_port_start`` 1024 by default).  When no_new_privs is also set, UR113
    reports it instead (a file capability could not help either).

Why is this bad?
    The unit starts, the server's ``bind()`` fails with EACCES, and systemd restarts it in a
    loop.  The capability must be *effective* at bind time: after the switch to ``User=`` only
    the ambient set carries it across execve (systemd.exec(5)).  A file capability on the
    binary would also work but is invisible in the unit (the linter assumes none) and a package
    upgrade rewrites the binary without it.

Example
    ``User=www-data`` with ``ExecStart=/usr/local/bin/app --listen :80``.

Use instead
    ``AmbientCapabilities=CAP_NET_BIND_SERVICE`` (with
    ``CapabilityBoundingSet=CAP_NET_BIND_SERVICE`` to keep everything else out), or a
    ``.socket`` unit with ``ListenStream=80`` that passes the bound socket
    (``unroot.activation`` reads it in Python).

References
    - systemd.exec(5): AmbientCapabilities=, CapabilityBoundingSet=, User=
    - systemd.socket(5); sd_listen_fds(3)
    - Caddy's and CoreDNS's packaged units use AmbientCapabilities=CAP_NET_BIND_SERVICE

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
"""

from __future__ import annotations

from collections.abc import Iterator

from unroot.lint.registry import Report, rule
from unroot.lint.situation import Situation
from unroot.model.runtimes import PORT_SYSCTL

AMBIENT_FIX = (
    "AmbientCapabilities=CAP_NET_BIND_SERVICE (and CapabilityBoundingSet=CAP_NET_BIND_SERVICE "
    "to keep the rest out), or a .socket unit with ListenStream={port} that passes the bound "
    "socket"
)


def ambient_has_bind(situation: Situation) -> bool:
    workload = situation.workload
    return workload is not None and "cap_net_bind_service" in {
        c.lower() for c in workload.ambient_caps
    }


@rule("UR111", topic="bind-fails", severity="error", kinds=("systemd",))
def systemd_bind_fails(situation: Situation) -> Iterator[Report]:
    """A systemd service cannot bind its low port: ``User=`` without ``AmbientCapabilities=``."""
    workload, who = situation.workload, situation.service_user
    if workload is None or who is None or not situation.ports:
        return
    if workload.no_new_privs and not who.is_root:
        return  # UR113: no_new_privs rules out the file-capability route too
    service = situation.service
    path = service.path if service is not None else "the service"
    seen: set[int] = set()
    for bind in situation.ports:
        port = bind.port.port
        if bind.verdict.allowed or port in seen:
            continue
        seen.add(port)
        if who.is_root:
            why = "root runs it, but CapabilityBoundingSet= leaves out CAP_NET_BIND_SERVICE"
            fix = "include CAP_NET_BIND_SERVICE in CapabilityBoundingSet="
        else:
            setting = "DynamicUser=yes" if workload.dynamic_user else f"User={who.text}"
            why = (
                f"{setting} runs {path} without cap_net_bind_service: the switch to the user "
                "clears the capabilities and no AmbientCapabilities= carries it"
            )
            fix = AMBIENT_FIX.format(port=port)
        yield Report(
            bind.port.location or situation.location,
            f"bind() of {bind.port.proto} port {port} fails with EACCES: {why}, and {port} is "
            f"below the host's {PORT_SYSCTL}={bind.start}",
            fix=fix,
        )
