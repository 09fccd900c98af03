"""Rootless engines: may OWNER's engine publish a host port, and do the daemons have enough
open files?  Facts from :mod:`unroot.engine.rootless` (each engine's own report), answers from
the model's bind rule.

Who binds a published port decides the fix (rootlesskit's docs, Podman's rootlessport):
- rootless Docker with the ``builtin`` port driver: rootlesskit's parent process binds it in
  the host's network namespace, as OWNER, with rootlesskit's own effective set — so
  ``setcap cap_net_bind_service=ep`` on the rootlesskit binary works, once the daemon restarts
  (the running process keeps the set it started with: "restart needed");
- rootless Docker with ``slirp4netns`` (or no driver) and rootless Podman (rootlessport, which
  runs inside the engine's user namespace, whose capabilities do not count in the host's
  netns): only the host's ``ip_unprivileged_port_start`` helps; no setcap does.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING

from unroot.errors import UnrootError
from unroot.model.caps import CapSet
from unroot.model.verdict import Fix, Reason, Verdict

from .checks import NOFILE_ENOUGH, NOFILE_FIX, SYSCTL, Check, sysctl_fix
from .host import Host
from .subject import Engine, PortAsk, RootlessRef

if TYPE_CHECKING:
    from unroot.facts.limits import Limit

SOCKETS = {"docker": "docker.sock", "podman": "podman/podman.sock"}
RESTART = {
    "docker": "systemctl --user -M {owner}@ restart docker.service",
    "podman": "systemctl --user -M {owner}@ restart podman.socket",
}


def find_engine(host: Host, ref: RootlessRef) -> object | str:
    """OWNER's engine of that kind that answers, or why there is none."""
    engines = Host.attempt(host.engines)
    if isinstance(engines, str):
        return engines
    mine = [e for e in engines if e.uid == ref.uid and e.engine == ref.engine]
    if not mine:
        return (
            f"no rootless {ref.engine} of {ref.owner} answers at "
            f"/run/user/{ref.uid}/{SOCKETS[ref.engine]}"
        )
    return mine[0]


def check_publish(ref: RootlessRef, ask: PortAsk, host: Host) -> Check:
    """May ``ref``'s engine publish host port ``ask.port`` (``-p PORT:...``)?"""
    from unroot.engine.rootless import RootlessEngine
    from unroot.model.bind import bind_verdict

    what = f"{ask.proto}/{ask.port} published by {ref.owner}'s rootless {ref.engine}"
    gid = _primary_gid(ref.uid)

    def check(verdict: Verdict | None, **fields: object) -> Check:
        return Check("bind", what, ref.uid, gid, (), verdict, **fields)  # type: ignore[arg-type]

    start = Host.attempt(lambda: host.port_start(None))
    if isinstance(start, str):
        return check(None, problem=start)
    found = find_engine(host, ref)
    if isinstance(found, str):
        return check(None, problem=found, observed=f"{SYSCTL}={start} (host)")
    assert isinstance(found, RootlessEngine)
    if found.problem:
        return check(None, problem=found.problem)
    if not found.rootless:
        return check(None, problem=f"the {ref.engine} at {found.socket} says it is not rootless")
    kit = found.rootlesskit
    evidence = [f"{ref.engine} {found.version} at {found.socket}, daemon pid {found.daemon_pid}"]
    if ref.engine == "docker" and kit is not None and kit.port_driver == "builtin":
        verdict = bind_verdict(
            ask.port, proto=ask.proto, effective=kit.effective, unprivileged_port_start=start
        )
        binder = Reason(
            "rootlesskit-binds",
            f"the host port is bound by rootlesskit (pid {kit.pid}, {kit.binary}, port driver "
            f"builtin) in the host's network namespace as uid {ref.uid}, with its own "
            f"effective set: {kit.effective}",
        )
        caps = kit.file_caps.to_text() if kit.file_caps else "none"
        evidence.append(f"rootlesskit binary file caps: {caps}; running CapEff: {kit.effective}")
        fixes: list[Fix] = []
        if kit.restart_needed:
            binder = Reason(
                "restart-needed",
                f"restart needed: {kit.binary} now carries cap_net_bind_service but the running "
                f"rootlesskit (pid {kit.pid}) started before setcap and does not have it",
            )
            fixes.append(
                Fix(
                    f"restart {ref.owner}'s rootless Docker so rootlesskit starts again with "
                    "the file capability",
                    RESTART["docker"].format(owner=ref.owner),
                    steps=(("unroot:restart", ref.owner, "docker"),),
                )
            )
        elif not verdict.allowed:
            fixes.append(
                Fix(
                    "give rootlesskit cap_net_bind_service as a file capability, then restart "
                    "the daemon: only rootlesskit binds below "
                    f"{start}, every other process keeps the limit (a docker package upgrade "
                    "or copy loses it)",
                    f"setcap cap_net_bind_service=ep {shlex.quote(kit.binary)}",
                    steps=(("setcap", "cap_net_bind_service=ep", kit.binary),),
                )
            )
        if not verdict.allowed:
            fixes.append(sysctl_fix(ask.port, start))
        verdict = Verdict(
            verdict.allowed,
            verdict.errno,
            (*verdict.reasons, binder),
            tuple(fixes) if not verdict.allowed else (),
        )
        observed = f"{SYSCTL}={start} (host); rootlesskit CapEff: {kit.effective}"
        if kit.restart_needed:
            observed += "; restart needed"
    else:
        driver = kit.port_driver if kit is not None else None
        binder_text = (
            f"rootlessport binds host ports from inside {ref.owner}'s Podman user namespace: "
            "capabilities held there do not count in the host's network namespace, so no "
            "setcap helps; only the host's sysctl does"
            if ref.engine == "podman"
            else f"rootlesskit's port driver is {driver!r}: the port is not bound by "
            "rootlesskit's parent, so its file capability does not help; only the host's "
            "sysctl does"
        )
        verdict = bind_verdict(
            ask.port,
            proto=ask.proto,
            effective=CapSet(),
            unprivileged_port_start=start,
            netns_owned_by_caller_userns=ref.engine != "podman",
        )
        fixes = [sysctl_fix(ask.port, start)] if not verdict.allowed else []
        verdict = Verdict(
            verdict.allowed,
            verdict.errno,
            (
                *verdict.reasons,
                Reason(
                    "rootlessport-binds" if ref.engine == "podman" else "port-driver", binder_text
                ),
            ),
            tuple(fixes),
        )
        observed = f"{SYSCTL}={start} (host)"
    return check(
        verdict,
        observed=observed,
        expected=f"port ≥ {start}"
        + (
            ", or rootlesskit with cap_net_bind_service effective" if ref.engine == "docker" else ""
        ),
        evidence=tuple(evidence),
    )


def _primary_gid(uid: int) -> int:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_gid
    except KeyError:
        return uid


@dataclass(frozen=True, slots=True)
class Daemon:
    """A container daemon, its open-file limit, and what its systemd unit asks for."""

    label: str
    pid: int
    uid: int
    nofile: Limit | None
    unit: str
    unit_setting: tuple[str, str] | None  # (LimitNOFILE value, file:line)


def daemons(host: Host) -> list[Daemon]:
    """Every container daemon: each user's rootless engines, and rootful dockerd and
    containerd."""
    import pwd

    from unroot.facts.limits import NOFILE, read_limits
    from unroot.facts.processes import processes

    found: list[Daemon] = []
    engines = Host.attempt(host.engines)
    if not isinstance(engines, str):
        for engine in engines:
            if engine.daemon_pid is None:
                continue
            try:
                home = pwd.getpwuid(engine.uid).pw_dir
            except KeyError:
                home = "/nonexistent"
            dirs = tuple(d.format(home=home) for d in USER_UNIT_DIRS)
            unit = DAEMON_UNITS[engine.engine]
            found.append(
                Daemon(
                    f"{engine.user}'s rootless {engine.engine}",
                    engine.daemon_pid,
                    engine.uid,
                    engine.daemon_nofile,
                    unit,
                    unit_nofile(unit, dirs),
                )
            )
    seen = {d.pid for d in found}
    procs = Host.attempt(lambda: processes(host.procfs, uid=0))
    if not isinstance(procs, str):
        for proc in procs:
            if proc.comm in ("dockerd", "containerd") and proc.pid not in seen:
                try:
                    nofile = read_limits(proc.pid, host.procfs).get(NOFILE)
                except UnrootError:
                    nofile = None
                unit = DAEMON_UNITS[proc.comm]
                found.append(
                    Daemon(
                        f"rootful {proc.comm}",
                        proc.pid,
                        0,
                        nofile,
                        unit,
                        unit_nofile(unit, SYSTEM_UNIT_DIRS),
                    )
                )
    return found


SYSTEM_UNIT_DIRS = (
    "/etc/systemd/system",
    "/run/systemd/system",
    "/lib/systemd/system",
    "/usr/lib/systemd/system",
)
USER_UNIT_DIRS = ("{home}/.config/systemd/user", "/etc/systemd/user", "/usr/lib/systemd/user")
#: The unit that starts each daemon, as the packages name it.
DAEMON_UNITS = {
    "dockerd": "docker.service",
    "containerd": "containerd.service",
    "docker": "docker.service",
    "podman": "podman.service",
}


def unit_nofile(unit: str, dirs: tuple[str, ...]) -> tuple[str, str] | None:
    """``LimitNOFILE=`` of ``unit`` as systemd would load it (the first unit file found in
    ``dirs``, then its drop-ins ``unit.d/*.conf`` in name order; the last setting wins):
    (value, where), or None when no unit file says it."""
    import glob
    import os

    from unroot.sources.systemd import read_unit

    main = next((f"{d}/{unit}" for d in dirs if os.path.isfile(f"{d}/{unit}")), None)
    files = [main] if main is not None else []
    dropins: dict[str, str] = {}
    for directory in dirs:
        for path in glob.glob(f"{glob.escape(directory)}/{glob.escape(unit)}.d/*.conf"):
            dropins.setdefault(os.path.basename(path), path)
    files += [dropins[name] for name in sorted(dropins)]
    found = None
    for path in files:
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                entries, _ = read_unit(handle.read(), path)
        except OSError:
            continue
        for entry in entries:
            if entry.section == "Service" and entry.key == "LimitNOFILE":
                found = (entry.value, f"{path}:{entry.line}")
    return found


def _unit_evidence(daemon: Daemon) -> str:
    if daemon.unit_setting is None:
        return (
            f"no {daemon.unit} file sets LimitNOFILE= (systemd's default applies when it starts it)"
        )
    value, where = daemon.unit_setting
    return f"{daemon.unit} sets LimitNOFILE={value} ({where})"


def _shown(value: int | None) -> str:
    return "unlimited" if value is None else str(value)


def check_nofile(daemon: Daemon) -> Check:
    """Is the daemon's RLIMIT_NOFILE enough for a stack of containers (seed 003)?"""
    label, pid, uid, limit = daemon.label, daemon.pid, daemon.uid, daemon.nofile
    what = f"open files of {label} (pid {pid})"
    if limit is None:
        return Check("nofile", what, uid, uid, (), None, problem=f"cannot read /proc/{pid}/limits")
    soft, hard, shown = limit.soft, limit.hard, _shown
    enough = soft is None or soft >= NOFILE_ENOUGH
    reasons = (
        Reason(
            "nofile",
            f"its soft limit is {shown(soft)} (hard {shown(hard)}): every container's shim, "
            "socket and log takes descriptors from it; at the limit it fails with "
            "'too many open files' (EMFILE)",
        ),
    )
    fixes: tuple[Fix, ...] = ()
    if not enough:
        from .actions import SystemdDropIn

        # a rootless daemon's user unit gets the drop-in in /etc/systemd/user (root's own
        # tree: root never writes below a user's home, where a symlink could redirect it)
        directory = f"/etc/systemd/{'user' if uid else 'system'}/{daemon.unit}.d"
        drop_in = SystemdDropIn(directory, (("LimitNOFILE", str(NOFILE_FIX)),), user=bool(uid))
        fixes = (
            Fix(
                f"make it last: a drop-in for {daemon.unit} (its {'user ' if uid else ''}unit) "
                f"with LimitNOFILE={NOFILE_FIX}; it takes effect when the daemon restarts",
                drop_in.command,
                steps=(("unroot:systemd-drop-in", directory, "LimitNOFILE", str(NOFILE_FIX)),),
            ),
            Fix(
                "raise it now for the running daemon (what it starts from now on inherits it; "
                "lost when it restarts)",
                f"prlimit --pid {pid} --nofile={NOFILE_FIX}:{NOFILE_FIX}",
            ),
        )
    verdict = Verdict(enough, None if enough else "EMFILE", reasons, fixes)
    return Check(
        "nofile",
        what,
        uid,
        uid,
        (),
        verdict,
        observed=f"soft {shown(soft)}, hard {shown(hard)}",
        expected=f"≥ {NOFILE_ENOUGH}",
        evidence=(f"/proc/{pid}/limits", _unit_evidence(daemon)),
    )


__all__ = ["Engine", "check_nofile", "check_publish", "daemons", "find_engine"]
