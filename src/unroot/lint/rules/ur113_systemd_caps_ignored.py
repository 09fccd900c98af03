"""A systemd service's low port fails, and no_new_privs rules out the file-capability fix.

What it does
    For a non-root service that binds a low port (not through a ``.socket`` unit) without an
    ambient ``CAP_NET_BIND_SERVICE`` while no_new_privs is set — ``NoNewPrivileges=yes``,
    ``DynamicUser=yes`` (which always implies it), or a sandboxing option that implies it for a
    unit without CAP_SYS_ADMIN (``ProtectKernelTunables=``, ``SystemCallFilter=``,
    ``RestrictAddressFamilies=``…) — asks the model what an exec of the binary *with*
    ``cap_net_bind_service=+ep`` would give, and reports that even that is ignored.  Under
    ``PrivateUsers=`` no capability helps at all: UR116 reports that instead.

Why is this bad?
    The bind fails with EACCES, and the usual fix — ``setcap`` on the binary — does not work:
    under no_new_privs execve cannot grant capabilities the process does not hold, and systemd
    starts ``User=`` with an empty permitted set unless ambient capabilities are configured.
    ``systemd-analyze security`` recommends exactly the options that imply no_new_privs.

Example
    ``DynamicUser=yes`` with ``ExecStart=/usr/bin/app --port 80`` and no ambient capability.

Use instead
    ``AmbientCapabilities=CAP_NET_BIND_SERVICE`` (ambient capabilities survive
    no_new_privs), or a ``.socket`` unit that binds the port and passes it.

References
    - systemd.exec(5): NoNewPrivileges= ("implied by DynamicUser=…"), AmbientCapabilities=
    - capabilities(7), no_new_privs; prctl(2) PR_SET_NO_NEW_PRIVS

UR113: DynamicUser= implies NoNewPrivileges=, no ambient capability
    # kind: systemd
    [Service]
    DynamicUser=yes
    ExecStart=/usr/local/bin/app --port 80

Okay: the capability is ambient
    # kind: systemd
    [Service]
    DynamicUser=yes
    AmbientCapabilities=CAP_NET_BIND_SERVICE
    ExecStart=/usr/local/bin/app --port 80

UR113: a drop-in adds NoNewPrivileges=yes to a unit without an ambient capability
    --- unbound.service
    [Service]
    User=unbound
    ExecStart=/usr/sbin/unbound -d -p 53
    --- unbound.service.d/10-hardening.conf
    [Service]
    NoNewPrivileges=yes

Okay: PrivateUsers= makes it UR116's
    # kind: systemd
    [Service]
    DynamicUser=yes
    PrivateUsers=yes
    ExecStart=/usr/local/bin/app --port 80

UR113: sandboxing implies NoNewPrivileges= for a non-root unit
    # kind: systemd
    [Service]
    User=dns
    ProtectKernelTunables=yes
    SystemCallFilter=@system-service
    ExecStart=/usr/sbin/unbound -d -p 53
"""

from __future__ import annotations

from collections.abc import Iterator

from unroot.lint.registry import Report, rule
from unroot.lint.rules.ur111_systemd_bind_fails import AMBIENT_FIX, ambient_reset
from unroot.lint.rules.ur116_systemd_private_users import foreign_netns
from unroot.model.caps import NET_BIND_SERVICE
from unroot.model.execve import ExecFile, execve
from unroot.model.filecaps import FileCaps
from unroot.model.runtimes import PORT_SYSCTL
from unroot.situation import Situation


@rule("UR113", topic="caps-ignored", severity="error", kinds=("systemd",))
def systemd_caps_ignored(situation: Situation) -> Iterator[Report]:
    """no_new_privs rules out file capabilities and no ambient capability carries the one the
    port needs."""
    workload, who, start = situation.workload, situation.service_user, situation.start
    if workload is None or who is None or start is None or who.is_root:
        return
    if not workload.no_new_privs:
        return
    failing = [b for b in situation.ports if not b.verdict.allowed and not foreign_netns(b)]
    if not failing:
        return
    service = situation.service
    path = service.path if service is not None else "the program"
    capped = execve(start, ExecFile(path, FileCaps(NET_BIND_SERVICE, effective=True)))
    if NET_BIND_SERVICE.issubset(capped.creds.effective):
        return  # a file capability would work: UR111's situation
    why = next((r.text for r in capped.reasons if r.code == "nnp-dropped-caps"), "")
    ports = sorted({b.port.port for b in failing})
    reason = workload.no_new_privs_reason or "NoNewPrivileges=yes"
    yield Report(
        failing[0].port.location or situation.location,
        f"bind() of port {', '.join(map(str, ports))} fails with EACCES and a file capability "
        f"on {path} would be ignored: no_new_privs is set ({reason}) and no "
        f"AmbientCapabilities= gives the process cap_net_bind_service — {why}; the host's "
        f"{PORT_SYSCTL} is {failing[0].start}",
        fix=AMBIENT_FIX.format(port=ports[0]),
        related=tuple(
            (loc.file, loc.line, f"no_new_privs: {reason}")
            for loc in [workload.no_new_privs_location]
            if loc is not None
        )
        + ambient_reset(situation),
    )
