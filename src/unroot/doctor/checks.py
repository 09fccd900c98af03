"""The questions of a :class:`~.subject.Subject`, asked of the model with the host's facts.

Each :class:`Check` is one question — bind a port, publish a host port through a rootless
engine, read or write a path, execute the program, hold enough open files — with the model's
:class:`~unroot.model.verdict.Verdict`, the value observed next to the one expected, the
evidence, and the fixes ranked narrowest first.  A fix doctor can perform carries its steps
(argv lists, :attr:`Fix.steps`); :mod:`.remedies` turns them into actions for ``--apply``.
A check whose facts cannot be read keeps the reason in ``problem`` and has no verdict.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, replace
from typing import Any, Literal

from unroot.errors import UnrootError
from unroot.facts.kernel import host_kernel
from unroot.model.caps import NET_BIND_SERVICE, CapSet
from unroot.model.verdict import Fix, Reason, Verdict

from .host import Host
from .subject import ExeAsk, PathAsk, PortAsk, Subject

Kind = Literal["bind", "read", "write", "exec", "nofile"]
SYSCTL = "net.ipv4.ip_unprivileged_port_start"
SYSCTL_DROP_IN = "/etc/sysctl.d/60-unroot-unprivileged-port-start.conf"
#: Below this, a container engine's daemon runs out of descriptors under a small stack (seed
#: 003: 4096 did); moby's and Podman's units set LimitNOFILE=infinity (1048576 on most hosts).
NOFILE_ENOUGH = 65536
NOFILE_FIX = 1048576


@dataclass(frozen=True, slots=True)
class Check:
    """One question and the host's answer."""

    kind: Kind
    subject: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    verdict: Verdict | None
    observed: str = ""
    expected: str = ""
    evidence: tuple[str, ...] = ()
    problem: str = ""  # why the check could not run (verdict None)

    @property
    def allowed(self) -> bool | None:
        return None if self.verdict is None else self.verdict.allowed

    def to_json(self) -> dict[str, Any]:
        verdict = self.verdict
        return {
            "kind": self.kind,
            "subject": self.subject,
            "identity": {"uid": self.uid, "gid": self.gid, "groups": list(self.groups)},
            "allowed": None if verdict is None else verdict.allowed,
            "errno": None if verdict is None else verdict.errno,
            "denied_at": None if verdict is None else verdict.extra.get("denied_at"),
            "ran": verdict is not None,
            "problem": self.problem or None,
            "observed": self.observed,
            "expected": self.expected,
            "evidence": list(self.evidence),
            "reasons": [] if verdict is None else [r.to_json() for r in verdict.reasons],
            "fixes": [] if verdict is None else [f.to_json() for f in verdict.fixes],
        }


def _check(subject: Subject, kind: Kind, what: str, **fields: Any) -> Check:
    return Check(kind, what, subject.uid, subject.gid, subject.groups, **fields)


def _not_run(subject: Subject, kind: Kind, what: str, problem: str) -> Check:
    return _check(subject, kind, what, verdict=None, problem=problem)


def sysctl_fix(port: int, start: int, where: str = "on the host") -> Fix:
    """The sysctl drop-in for the lowest port asked about, never 0 (PRODUCT.md)."""
    line = f"{SYSCTL}={port}"
    return Fix(
        f"lower {SYSCTL} to {port} {where}, persistently: every process of every user may "
        f"then bind ports {port}..{start - 1} (not below {port}: 0 would open every port)",
        f"echo {shlex.quote(line)} > {SYSCTL_DROP_IN} && sysctl -w {line}",
        steps=(("unroot:sysctl", SYSCTL, str(port)),),
    )


# -- exec ----------------------------------------------------------------------------------------
def check_exec(subject: Subject, exe: ExeAsk, host: Host) -> tuple[Check, CapSet | None]:
    """May the subject execute ``exe``, and with which effective set does it run?"""
    from unroot.model.creds import Creds, Ids
    from unroot.model.execve import ExecFile, execve

    what = exe.shown
    access = check_path(subject, PathAsk(exe.path, "x", exe.origin), host, kind="exec")
    if access.verdict is None or not access.verdict.allowed:
        return replace(access, subject=what), None
    caps = Host.attempt(lambda: host.file_caps(exe.path))
    if isinstance(caps, str):
        return _not_run(subject, "exec", what, caps), None
    nosuid = exe.nosuid
    if nosuid is None:
        mount = Host.attempt(lambda: host.mount_of(exe.path))
        nosuid = not isinstance(mount, str) and mount is not None and mount.nosuid
    creds = Creds(
        uid=Ids.same(subject.uid),
        gid=Ids.same(subject.gid),
        groups=frozenset(subject.groups),
        bounding=exe.bounding if exe.bounding is not None else CapSet.all(),
        no_new_privs=exe.no_new_privs,
    )
    result = execve(creds, ExecFile(path=what, file_caps=caps, nosuid=nosuid), kernel=host_kernel())
    observed = f"file caps: {caps.to_text() if caps else 'none'}" + (
        "; on a nosuid mount" if nosuid else ""
    )
    if exe.no_new_privs:
        observed += "; no_new_privs"
    verdict = Verdict(result.ok, result.errno, result.reasons, result.fixes)
    check = _check(
        subject,
        "exec",
        what,
        verdict=verdict,
        observed=observed,
        expected="execve succeeds",
        evidence=(f"{exe.origin}: {what}",),
    )
    return check, result.creds.effective if result.ok else None


# -- bind ----------------------------------------------------------------------------------------
def check_bind(
    subject: Subject, ask: PortAsk, host: Host, effective: CapSet, exe: ExeAsk | None
) -> Check:
    """May the subject bind ``ask.port`` in its network namespace, and is the port free?"""
    from unroot.model.bind import bind_verdict

    what = f"{ask.proto}/{ask.port}"
    where = "the host's netns" if subject.netns_pid is None else f"netns of pid {subject.netns_pid}"
    start: int | str
    if subject.netns_pid is None and subject.unprivileged_port_start is not None:
        start, where = subject.unprivileged_port_start, "the runtime's own netns"
    else:
        start = Host.attempt(lambda: host.port_start(subject.netns_pid))
    if isinstance(start, str):
        return _not_run(subject, "bind", what, start)
    verdict = bind_verdict(
        ask.port, proto=ask.proto, effective=effective, unprivileged_port_start=start
    )
    observed = f"{SYSCTL}={start} ({where}); effective: {effective}"
    if not verdict.allowed:
        verdict = replace(verdict, fixes=_bind_fixes(subject, ask, start, exe))
    held = _holder(subject, ask, host)
    if held is not None:
        holder, mine = held
        if mine:
            verdict = replace(verdict, reasons=(*verdict.reasons, Reason("listening", holder)))
        else:
            verdict = Verdict(
                False,
                "EADDRINUSE",
                (*verdict.reasons, Reason("port-in-use", holder)),
                (Fix(f"stop that process or choose another port: {holder}"),),
            )
        observed += f"; {holder}"
    return _check(
        subject,
        "bind",
        what,
        verdict=verdict,
        observed=observed,
        expected=f"port ≥ {start} or cap_net_bind_service effective; the port free",
        evidence=(ask.origin,),
    )


def _holder(subject: Subject, ask: PortAsk, host: Host) -> tuple[str, bool] | None:
    listeners = Host.attempt(lambda: host.listeners(subject.netns_pid))
    if isinstance(listeners, str):
        return None
    from unroot.facts.processes import read_process

    for found in listeners:
        if found.port == ask.port and found.proto.startswith(ask.proto):
            names = []
            for pid in found.pids[:3]:
                proc = read_process(pid, host.procfs)
                names.append(f"{proc.comm} (pid {pid})" if proc else f"pid {pid}")
            users = ", ".join(map(str, found.uids)) or "?"
            text = (
                f"{found.address}:{found.port}/{found.proto} is already held by "
                f"{', '.join(names) or 'a socket with no process'} as uid {users}"
            )
            return text, subject.uid in found.uids
    return None


def _bind_fixes(subject: Subject, ask: PortAsk, start: int, exe: ExeAsk | None) -> tuple[Fix, ...]:
    fixes = []
    if exe is not None and exe.path == exe.shown:
        fixes.append(
            Fix(
                f"give {exe.shown} cap_net_bind_service as a file capability: it then binds "
                "as any user (a package upgrade or `cp` without --preserve=xattr loses it, "
                "chown clears it; ignored on a nosuid mount)",
                f"setcap cap_net_bind_service=+ep {shlex.quote(exe.shown)}",
                steps=(("setcap", "cap_net_bind_service=+ep", exe.shown),),
            )
        )
    elif exe is not None:
        fixes.append(
            Fix(
                f"in the image: give {exe.shown} the file capability in the final stage "
                "(`RUN setcap cap_net_bind_service=+ep ...` after the last COPY of it), "
                "and keep cap_net_bind_service in the container's bounding set",
                f"setcap cap_net_bind_service=+ep {shlex.quote(exe.shown)}",
            )
        )
    if subject.container_uid is None and exe is not None and exe.path == exe.shown:
        user = subject.name or str(subject.uid)
        fixes.append(
            Fix(
                "or bind while privileged and hand the service the socket (LISTEN_FDS): "
                "it needs no capability at all",
                f"unroot run -l :{ask.port} --user {user} -- {shlex.quote(exe.shown)}",
            )
        )
    if subject.netns_pid is None and subject.unprivileged_port_start is None:
        fixes.append(sysctl_fix(ask.port, start))
    return tuple(fixes)


# -- paths ---------------------------------------------------------------------------------------
def check_path(
    subject: Subject,
    ask: PathAsk,
    host: Host,
    *,
    kind: Kind | None = None,
    userns: Any = None,
    fix_group: int | None = None,
) -> Check:
    """May the subject open ``ask.path`` for ``ask.want``?"""
    from unroot.model.access import access_verdict
    from unroot.model.creds import Creds, Ids

    kind = kind or ("write" if "w" in ask.want else "read")
    gathered = Host.attempt(lambda: host.tree(ask.path))
    if isinstance(gathered, str):
        return _not_run(subject, kind, ask.path, gathered)
    path, tree, protected = gathered
    creds = Creds(
        uid=Ids.same(subject.uid),
        gid=Ids.same(subject.gid),
        groups=frozenset(subject.groups),
        permitted=subject.effective,
        effective=subject.effective,
    )
    try:
        verdict = access_verdict(
            tree,
            path,
            creds,
            ask.want,
            userns=userns,
            protected_symlinks=protected,
            fix_group=fix_group,
        )
    except UnrootError as exc:
        return _not_run(subject, kind, path, str(exc))
    if fix_group is not None and not verdict.allowed:
        verdict = replace(verdict, fixes=tuple(_with_group(f, fix_group) for f in verdict.fixes))
    denied_at = verdict.extra.get("denied_at")
    target = tree.get(path)
    from unroot.model.access import mode_string

    shown = denied_at if denied_at in tree else path if target is not None else None
    observed = (
        f"{shown} is {mode_string(tree[shown])} {tree[shown].uid}:{tree[shown].gid}"
        if shown is not None
        else f"{path} does not exist"
    )
    return _check(
        subject,
        kind,
        path,
        verdict=verdict,
        observed=observed,
        expected=f"{ask.want} for uid {subject.uid} gid {subject.gid}",
        evidence=(ask.origin,),
    )


def _with_group(fix: Fix, gid: int) -> Fix:
    """A fix granting group ``gid`` starts by creating that group when the host has none of
    that id (seed 000: the container's gid 2200 gets a host group), so ``ls -l`` and
    ``getfacl`` show a name."""
    import grp

    if not fix.steps:
        return fix
    try:
        grp.getgrgid(gid)
    except KeyError:
        name = f"unroot-{gid}"
        return replace(
            fix,
            why=f"{fix.why} (first a host group {name} with gid {gid}, so the grants have a name)",
            command=f"groupadd -g {gid} {name} && {fix.command}",
            steps=(("groupadd", "-g", str(gid), name), *fix.steps),
        )
    return fix


def run_checks(
    subject: Subject, host: Host, *, userns: Any = None, fix_group: int | None = None
) -> list[Check]:
    """Every question of ``subject``: the program first (its effective set decides the binds),
    then binds, paths."""
    checks: list[Check] = []
    effective = subject.effective
    if subject.exe is not None:
        exec_check, after = check_exec(subject, subject.exe, host)
        checks.append(exec_check)
        if after is not None and subject.exe.origin in ("--exe", "--error"):
            # a program named on the command line: its file caps decide; a container's or a
            # unit's effective set was computed by its builder through the whole exec chain
            effective = after
    for ask in subject.binds:
        checks.append(check_bind(subject, ask, host, effective, subject.exe))
    for path in subject.paths:
        checks.append(check_path(subject, path, host, userns=userns, fix_group=fix_group))
    return checks


def has_bind_service(effective: CapSet) -> bool:
    return NET_BIND_SERVICE in effective
