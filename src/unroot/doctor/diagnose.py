"""One doctor run: the request (flags) → the subject, its checks, the overview; JSON-ready.

Kept apart from the command line so ``--apply`` can call :func:`diagnose` again after
applying, to re-check every verdict with fresh facts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any

from unroot.errors import UsageError

from .checks import Check, Kind, run_checks
from .host import Host
from .subject import Engine, ExeAsk, PathAsk, PortAsk, Subject


@dataclass(frozen=True, slots=True)
class Request:
    """``unroot doctor``'s flags."""

    user: str | None = None
    group: str | None = None
    ports: tuple[PortAsk, ...] = ()
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    exe: str | None = None
    container: str | None = None
    compose: str | None = None
    service: str | None = None
    unit: str | None = None
    rootless: str | None = None
    engine: Engine | None = None
    error: str | None = None

    @property
    def has_question(self) -> bool:
        return bool(
            self.user
            or self.group
            or self.ports
            or self.reads
            or self.writes
            or self.exe
            or self.container
            or self.compose
            or self.unit
            or self.rootless
            or self.error
        )


@dataclass
class Report:
    subject: Subject | None = None
    checks: list[Check] = field(default_factory=list)
    matches: list[dict[str, Any]] = field(default_factory=list)
    host: dict[str, Any] | None = None

    @property
    def failed(self) -> bool:
        return any(c.allowed is False for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        subject = self.subject
        return {
            "subject": None
            if subject is None
            else {
                "label": subject.label,
                "uid": subject.uid,
                "gid": subject.gid,
                "groups": list(subject.groups),
                "container_uid": subject.container_uid,
                "container_gid": subject.container_gid,
                "rootless": None
                if subject.rootless is None
                else {
                    "owner": subject.rootless.owner,
                    "uid": subject.rootless.uid,
                    "engine": subject.rootless.engine,
                },
                "evidence": list(subject.evidence),
            },
            "recognised": self.matches,
            "verdicts": [c.to_json() for c in self.checks],
            "host": self.host,
        }


def _absolute(path: str) -> str:
    from unroot.facts.fs import absolute_path

    return absolute_path(path)


def _existing(path: str, flag: str) -> str:
    import os

    absolute = _absolute(path)
    if not os.path.exists(absolute):
        dangling = " (a dangling symlink)" if os.path.islink(absolute) else ""
        raise UsageError(f"{flag} {path}: no such file or directory{dangling}")
    return absolute


def _write_ask(path: str) -> PathAsk:
    """``--write PATH``: the file, or — when it does not exist yet — creating it in its
    directory (write and search on the directory)."""
    import os

    absolute = _absolute(path)
    if os.path.exists(absolute):
        return PathAsk(absolute, "w", "--write")
    parent = os.path.dirname(absolute.rstrip("/")) or "/"
    if not os.path.isdir(parent):
        raise UsageError(f"--write {path}: neither it nor its directory {parent} exists")
    return PathAsk(parent, "wx", f"--write {path} (to be created in {parent})")


def _base_subject(request: Request, rootless: Any) -> Subject:
    from . import identity, sources

    given = [x for x in (request.container, request.compose, request.unit) if x]
    if len(given) > 1:
        raise UsageError("give one of --container, --compose, --unit")
    ref = rootless.ref if rootless is not None else None
    engine = request.engine or "docker"
    if request.container:
        return sources.container_subject(request.container, rootless=ref, engine=engine)
    if request.compose:
        return sources.compose_subject(
            request.compose, request.service, rootless=ref, engine=engine
        )
    if request.unit:
        return sources.unit_subject(request.unit)
    return identity.flag_subject(request.user, request.group, rootless=rootless)


def diagnose(request: Request, host: Host) -> Report:
    """Every check the request asks for (or the host overview when it asks nothing)."""
    from . import identity

    report = Report()
    if request.engine and not (request.rootless or request.container or request.compose):
        raise UsageError("--engine picks the engine of --rootless OWNER, --container or --compose")
    if request.service and not request.compose:
        raise UsageError("--service names a service of --compose FILE")
    if not request.has_question:
        from .overview import gather

        report.host = gather(host)
        return report
    rootless = (
        identity.rootless_owner(request.rootless, request.engine or "docker")
        if request.rootless
        else None
    )
    asks = _error_asks(request, report)
    subject = _base_subject(request, rootless)
    ports = (*request.ports, *asks["ports"])
    publishes: tuple[PortAsk, ...] = ()
    binds: tuple[PortAsk, ...] = ()
    if rootless is not None or asks["rootless"]:
        publishes = ports
    else:
        binds = ports
    paths = tuple(PathAsk(_existing(p, "--read"), "r", "--read") for p in request.reads)
    paths += tuple(_write_ask(p) for p in request.writes)
    unresolved: list[tuple[Kind, str, str]] = []
    for path, want, origin in asks["paths"]:
        if os.path.isabs(path) and os.path.lexists(path):
            paths += (PathAsk(path, want, origin),)
        else:
            unresolved.append(("read", path, origin))
    exe = subject.exe
    if request.exe:
        shown = _existing(request.exe, "--exe")
        exe = ExeAsk(shown, shown)
    elif asks["exe"] and exe is None and request.container is None:
        if os.path.isabs(asks["exe"]) and os.path.exists(asks["exe"]):
            exe = ExeAsk(asks["exe"], asks["exe"], origin="--error")
        else:
            unresolved.append(("exec", asks["exe"], "--error"))
    subject = replace(
        subject,
        binds=(*subject.binds, *binds),
        publishes=(*subject.publishes, *publishes),
        paths=(*subject.paths, *paths),
        exe=exe,
    )
    named = request.user or request.group or request.container or request.compose
    own = subject.binds or subject.paths or subject.exe
    report.subject = subject if named or request.unit or request.rootless or own else None
    in_container = bool(request.container or request.compose) or subject.container_uid is not None
    fix_group = subject.gid if subject.name is None or in_container else None
    userns = rootless.userns if rootless is not None else None
    report.checks = run_checks(subject, host, userns=userns, fix_group=fix_group)
    if request.unit:
        report.checks = [_with_ambient(c, request.unit) for c in report.checks]
    report.checks += _engine_checks(subject, rootless, host, asks)
    if asks.get("subuid"):
        report.checks += [_idmap_helper(path, subject) for path in ID_MAP_HELPERS]
    for kind, path, origin in unresolved:
        report.checks.append(
            Check(
                kind,
                path,
                subject.uid,
                subject.gid,
                subject.groups,
                None,
                problem=f"{origin} names {path!r}, which is no path on this host (relative "
                "to a directory the message does not say, or inside a container): ask again "
                "with --read /full/path (or --exe, --container)",
            )
        )
    return report


AMBIENT = (("AmbientCapabilities", "CAP_NET_BIND_SERVICE"),)
#: shadow's helpers that write a rootless engine's uid_map and gid_map (newuidmap(1)).
ID_MAP_HELPERS = ("/usr/bin/newuidmap", "/usr/bin/newgidmap")


def _idmap_helper(path: str, subject: Subject) -> Check:
    """newuidmap/newgidmap write maps for ranges of other ids: they need CAP_SETUID (CAP_SETGID)
    in the initial namespace, from a setuid-root bit or a file capability (shadow installs
    either, by distribution)."""
    from unroot.model.verdict import Fix, Reason, Verdict

    cap = "cap_setuid" if "uid" in path else "cap_setgid"
    what = f"{path} (writes a rootless engine's {'uid' if 'uid' in path else 'gid'}_map)"
    try:
        st = os.stat(path)
    except OSError as exc:
        problem = f"cannot stat {path}: {exc.strerror} (apt install uidmap)"
        return Check("exec", what, subject.uid, subject.gid, subject.groups, None, problem=problem)
    caps = Host.attempt(lambda: Host().file_caps(path))
    setuid_root = bool(st.st_mode & 0o4000) and st.st_uid == 0
    has_cap = not isinstance(caps, str) and caps is not None and cap in caps.permitted.names()
    ok = setuid_root or has_cap
    observed = (
        f"mode {st.st_mode & 0o7777:04o} owner {st.st_uid}; file caps "
        f"{caps if isinstance(caps, str) else caps.to_text() if caps else 'none'}"
    )
    reason = Reason(
        "id-map-helper",
        f"{path} is setuid root" if setuid_root else
        f"{path} carries {cap}" if has_cap else
        f"{path} is neither setuid root nor carries {cap}=ep: it cannot write maps for "
        "subordinate ids ('write to uid_map failed: Operation not permitted')",
    )  # fmt: skip
    fixes = () if ok else (
        Fix(f"give {path} the capability it needs (Debian's uidmap ships it setuid root "
            "instead; a reinstall restores that)", f"setcap {cap}=ep {path}",
            steps=(("setcap", f"{cap}=ep", path),)),
    )  # fmt: skip
    return Check(
        "exec", what, subject.uid, subject.gid, subject.groups,
        Verdict(ok, None if ok else "EPERM", (reason,), fixes),
        observed=observed, expected=f"setuid root, or {cap}=ep",
        evidence=(f"stat {path}",),
    )  # fmt: skip


def _with_ambient(check: Check, unit: str) -> Check:
    """A failed bind of a systemd unit: first, the drop-in that keeps cap_net_bind_service
    across the switch to User= (systemd.exec(5) AmbientCapabilities=)."""
    from unroot.model.verdict import Fix

    from .actions import SystemdDropIn

    if check.kind != "bind" or check.verdict is None or check.verdict.allowed:
        return check
    directory = f"{_absolute(unit)}.d"
    drop_in = SystemdDropIn(directory, AMBIENT)
    fix = Fix(
        "keep cap_net_bind_service as an ambient capability across systemd's switch to User= "
        "(a drop-in beside the unit; it takes effect when the unit restarts; a "
        "CapabilityBoundingSet= must include it, and a file capability on the program would "
        "clear the ambient set)",
        drop_in.command,
        steps=(("unroot:systemd-drop-in", directory, *AMBIENT[0]),),
    )
    return replace(check, verdict=replace(check.verdict, fixes=(fix, *check.verdict.fixes)))


def _engine_checks(
    subject: Subject, rootless: Any, host: Host, asks: dict[str, Any]
) -> list[Check]:
    from .engines import check_nofile, check_publish, daemons

    checks: list[Check] = []
    refs = []
    if rootless is not None:
        refs.append(rootless.ref)
    elif subject.publishes and asks["rootless"]:
        refs.extend(_running_rootless(host, asks["engine"]))
        if not refs:
            checks.append(
                Check(
                    "bind",
                    ", ".join(f"{p.proto}/{p.port}" for p in subject.publishes),
                    subject.uid,
                    subject.gid,
                    subject.groups,
                    None,
                    problem="the message names a rootless engine, but none answers on this host; "
                    "give --rootless OWNER",
                )
            )
    for ref in refs:
        for ask in subject.publishes:
            checks.append(check_publish(ref, ask, host))
    asked_engine_only = rootless is not None and not (
        subject.publishes or subject.paths or subject.binds or subject.exe
    )
    if asks["nofile"] or asked_engine_only:
        for daemon in daemons(host):
            ref = rootless.ref if rootless is not None else None
            if ref is None or (daemon.uid == ref.uid and ref.engine in daemon.label):
                checks.append(check_nofile(daemon))
    return checks


def _running_rootless(host: Host, engine: Engine | None) -> list[Any]:
    from .subject import RootlessRef

    engines = Host.attempt(host.engines)
    if isinstance(engines, str):
        return []
    return [
        RootlessRef(e.user, e.uid, e.engine)
        for e in engines
        if e.rootless and (engine is None or e.engine == engine)
    ]


def _error_asks(request: Request, report: Report) -> dict[str, Any]:
    """What ``--error`` text asks (:mod:`.patterns`), with each match kept for the output."""
    asks: dict[str, Any] = {
        "ports": [],
        "paths": [],
        "exe": None,
        "nofile": False,
        "rootless": False,
        "engine": request.engine,
    }
    if not request.error:
        return asks
    from .patterns import recognise

    matches = recognise(request.error)
    if not matches:
        raise UsageError(
            "--error: no known message in the text (see `unroot doctor --help` for the list)"
        )
    for match in matches:
        ask = match.asks
        report.matches.append(
            {
                "pattern": match.pattern,
                "line": match.line,
                "meaning": match.meaning,
                "source": match.source,
            }
        )
        asks["ports"] += [PortAsk(p, ask.proto, f"--error: {match.line}") for p in ask.ports]
        asks["paths"] += [(p, ask.want or "r", f"--error: {match.line}") for p in ask.paths]
        if match.errno in ("EPERM", "EACCES"):  # an exec refused (not a fork/exec at EMFILE)
            asks["exe"] = asks["exe"] or ask.exe
        asks["nofile"] = asks["nofile"] or ask.nofile
        asks["subuid"] = asks.get("subuid", False) or ask.subuid
        asks["rootless"] = asks["rootless"] or ask.rootless
        if ask.engine and asks["engine"] is None:
            asks["engine"] = ask.engine
    asks["ports"] = list(dict.fromkeys(asks["ports"]))
    return asks
