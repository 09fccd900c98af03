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


def daemons(host: Host) -> list[tuple[str, int, int, Limit | None]]:
    """(label, pid, uid, Limit | None) of every container daemon: rootless engines and rootful
    dockerd/containerd/podman service processes."""
    from unroot.facts.limits import NOFILE, read_limits
    from unroot.facts.processes import processes

    found: list[tuple[str, int, int, Limit | None]] = []
    engines = Host.attempt(host.engines)
    if not isinstance(engines, str):
        for engine in engines:
            if engine.daemon_pid is not None:
                found.append(
                    (
                        f"{engine.user}'s rootless {engine.engine}",
                        engine.daemon_pid,
                        engine.uid,
                        engine.daemon_nofile,
                    )
                )
    seen = {pid for _, pid, _, _ in found}
    procs = Host.attempt(lambda: processes(host.procfs, uid=0))
    if not isinstance(procs, str):
        for proc in procs:
            if proc.comm in ("dockerd", "containerd") and proc.pid not in seen:
                try:
                    nofile = read_limits(proc.pid, host.procfs).get(NOFILE)
                except UnrootError:
                    nofile = None
                found.append((f"rootful {proc.comm}", proc.pid, 0, nofile))
    return found


def _shown(value: int | None) -> str:
    return "unlimited" if value is None else str(value)


def check_nofile(label: str, pid: int, uid: int, limit: Limit | None) -> Check:
    """Is the daemon's RLIMIT_NOFILE enough for a stack of containers (seed 003)?"""
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
        fixes = (
            Fix(
                "raise it now for the running daemon (what it starts inherits it); make it "
                "last with LimitNOFILE= in the unit that starts it (a systemd drop-in)",
                f"prlimit --pid {pid} --nofile={NOFILE_FIX}:{NOFILE_FIX}",
                steps=(("prlimit", "--pid", str(pid), f"--nofile={NOFILE_FIX}:{NOFILE_FIX}"),),
            ),
            Fix(
                "under systemd: a drop-in for the daemon's unit (user unit for a rootless one), "
                "then restart it",
                "systemctl edit docker.service  # [Service] LimitNOFILE=infinity",
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
        evidence=(f"/proc/{pid}/limits",),
    )


__all__ = ["Engine", "check_nofile", "check_publish", "daemons", "find_engine"]
