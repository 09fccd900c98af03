"""``--unit FILE``: a systemd service unit joined with this host, as a Subject.

The unit, its drop-ins (the directories systemd reads beside it) and a paired ``.socket`` are
read by lint's parser (:mod:`unroot.sources.systemd`); its ``User=``/``Group=`` and
``SupplementaryGroups=`` are resolved through the host's ``/etc/passwd`` and ``/etc/group``;
the situation builder (:mod:`unroot.situation`) gives the start credentials systemd gives it
(``CapabilityBoundingSet=``, ``AmbientCapabilities=``, ``NoNewPrivileges=`` and what implies
it); the exec chain of ``ExecStart=`` then runs with each program's *real* file capabilities,
set-id bits and mount flags on this host.  ``DynamicUser=`` has no fixed id (systemd picks one
in 61184-65519 when the unit starts): say so, and ask for ``--user``.

Ports: a port of the paired socket unit is bound by systemd itself (as root) and handed over,
so the service binds nothing: it is in ``publishes`` (bound for it, like an engine's published
port); ports named on the command line are the service's ``binds``.  Paths:
``ReadWritePaths=`` are asked ``rw``, ``ReadOnlyPaths=`` ``r``; ``LoadCredential=`` sources
are read by systemd (root), not by the service, so they are evidence, not questions.
"""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import replace

from unroot.doctor.identity import Evidence, Who, read_input, resolve_user
from unroot.doctor.subject import ExeAsk, PathAsk, PortAsk, Subject
from unroot.errors import ParseError, UnrootError, UsageError
from unroot.facts import PROCFS_PATH
from unroot.facts.accounts import Accounts, parse_group, parse_passwd
from unroot.facts.filecaps import read_file_caps
from unroot.facts.kernel import host_kernel
from unroot.facts.mounts import MountTree, read_mountinfo
from unroot.model.caps import EMPTY, CapSet
from unroot.model.chain import exec_chain
from unroot.model.execve import ExecFile
from unroot.model.runtimes import NEW_NETNS_PORT_START
from unroot.situation import build_situations
from unroot.sources._shared import user_fact
from unroot.sources.parsed import Workload
from unroot.sources.systemd import (
    parse_systemd_units,
    read_unit,
    socket_candidates,
    split_words,
    unit_name,
)
from unroot.sources.systemd_dropins import dropin_dirs

#: Where systemd looks for a program named without a slash (systemd.service(5), "Command lines").
SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"
DYNAMIC_UID_RANGE = "61184-65519"
_PATH_SETTINGS = {"ReadWritePaths": "rw", "ReadOnlyPaths": "r"}


def _files(path: str, text: str) -> dict[str, str]:
    """The unit, the sockets beside it, and its drop-ins, as systemd would read them."""
    files = {path: text}
    for candidate in socket_candidates(path, text):
        if candidate != path and os.path.isfile(candidate):
            files[candidate] = read_input(candidate)
    for directory in dropin_dirs(path):
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue  # no such directory (the usual case), or one systemd could not read either
        for name in names:
            if name.endswith(".conf"):
                dropin = os.path.join(directory, name)
                files[dropin] = read_input(dropin)
    return files


def unit_subject(file: str, *, etc: str = "/etc", procfs: str = PROCFS_PATH) -> Subject:
    """The service unit ``file`` (with its drop-ins and paired socket) as a Subject.

    UsageError for a missing file, a unit without ``[Service]``, an unknown ``User=`` and
    ``DynamicUser=``; ParseError for a malformed unit."""
    path = os.path.abspath(file)
    text = read_input(path)
    files = _files(path, text)
    parsed = next(p for p in parse_systemd_units(files) if p.path == path)
    if not parsed.workloads:
        where, message = parsed.problems[0] if parsed.problems else (None, "no [Service]")
        raise ParseError(message, str(where) if where else file)
    workload = parsed.workloads[0]
    name = unit_name(path)
    ev = Evidence()
    for extra in files:
        if extra != path:
            ev.add(f"{name}: read {extra}")
    who = _who(workload, name, etc, ev)
    resolved = replace(
        workload,
        user=user_fact(f"{who.uid}:{who.gid}", workload.user.location if workload.user else None),
        groups=tuple(str(g) for g in who.groups),
    )
    situation = build_situations([replace(parsed, workloads=(resolved,))], {})[0]
    if situation.start is None:
        raise UsageError(f"{name}: {situation.start_error or 'systemd would not start it'}")
    start = situation.start
    _caps_evidence(workload, start.bounding, name, ev)
    files_run = [_exec_file(link.path, procfs, ev) for link in situation.links]
    effective = EMPTY
    if files_run:
        chain = exec_chain(start, files_run, kernel=host_kernel())
        if chain.ok:
            effective = chain.final.effective
            shown = " → ".join(f.path for f in files_run)
            ev.add(f"model: after exec of {shown}: effective {effective or 'none'}")
        else:
            step = chain.steps[chain.failed_at or 0]
            why = "; ".join(r.text for r in step.result.reasons)
            ev.add(f"model: exec of {step.file.path} fails with EPERM ({why})")
    exe = None
    if files_run and situation.links:
        last = files_run[-1]
        exe = ExeAsk(
            path=last.path,
            shown=situation.links[-1].path,
            no_new_privs=start.no_new_privs,
            bounding=start.bounding,
            nosuid=None,
            origin=f"{workload.location_of('entrypoint') or name}: ExecStart=",
        )
    subject = Subject(
        label=f"unit {name}",
        uid=who.uid,
        gid=who.gid,
        groups=who.groups,
        effective=effective,
        name=who.name,
        exe=exe,
        paths=_paths(files, path, ev),
    )
    subject = _network(subject, workload, ev, name)
    if workload.nofile is not None:
        soft, hard = workload.nofile
        ev.add(
            f"{workload.nofile_location or name}: LimitNOFILE="
            f"{'infinity' if soft is None else soft}:{'infinity' if hard is None else hard}"
        )
    return replace(subject, evidence=tuple(ev.lines))


def _who(workload: Workload, name: str, etc: str, ev: Evidence) -> Who:
    if workload.dynamic_user:
        raise UsageError(
            f"{name}: DynamicUser=yes has no fixed uid (systemd picks one in "
            f"{DYNAMIC_UID_RANGE} when it starts the unit): pass --user with the running uid"
        )
    accounts = Accounts(
        parse_passwd(_read_or_empty(os.path.join(etc, "passwd"))),
        parse_group(_read_or_empty(os.path.join(etc, "group"))),
        etc,
    )
    user = workload.user
    text = user.text if user is not None else "root"
    at = user.location if user is not None and user.location else None
    ev.add(f"{at or name}: User={text.replace(':', ' Group=', 1)}")
    if workload.groups:
        ev.add(
            f"{workload.location_of('groups') or name}: SupplementaryGroups="
            + " ".join(workload.groups)
        )
    who = resolve_user(text, accounts, workload.groups, ev, where=f"{name} User=")
    if who is None:
        raise UsageError(f"{name}: User={text.partition(':')[0]} is not in {etc}/passwd")
    return who


def _read_or_empty(path: str) -> str:
    try:
        return read_input(path)
    except UnrootError:
        return ""


def _caps_evidence(workload: Workload, bounding: CapSet, name: str, ev: Evidence) -> None:
    if workload.ambient_caps:
        at = workload.location_of("ambient_caps") or name
        ev.add(f"{at}: AmbientCapabilities={' '.join(workload.ambient_caps)}")
    if workload.bounding_caps is not None:
        at = workload.location_of("bounding_caps") or name
        ev.add(f"{at}: CapabilityBoundingSet= → bounding {bounding or 'none'}")
    if workload.no_new_privs:
        at = workload.no_new_privs_location or name
        ev.add(f"{at}: no_new_privs ({workload.no_new_privs_reason or 'NoNewPrivileges=yes'})")


def _exec_file(program: str, procfs: str, ev: Evidence) -> ExecFile:
    """The program on this host: found the way systemd finds it, with its real file caps (for
    a script: its interpreter's, which is what the kernel executes)."""
    path = program if program.startswith("/") else shutil.which(program, path=SYSTEMD_PATH)
    if path is None:
        ev.add(f"ExecStart=: {program} not found in {SYSTEMD_PATH}")
        return ExecFile(program)
    real = os.path.realpath(path)
    interpreter = _shebang(real)
    if interpreter is not None and interpreter != real:
        ev.add(f"{path} is a script: the kernel executes {interpreter}; its caps never count")
        real = os.path.realpath(interpreter)
    try:
        caps = read_file_caps(real)
        info = os.stat(real)
    except (UnrootError, OSError) as exc:
        ev.add(f"{path}: cannot read it ({exc}): assumed without file capabilities")
        return ExecFile(path)
    mount = MountTree(read_mountinfo(procfs)).mount_for(real)
    nosuid = mount is not None and mount.nosuid
    ev.add(
        f"{path}{f' → {real}' if real != path else ''}: file caps "
        f"{caps.to_text() if caps else 'none'}{' (nosuid mount)' if nosuid else ''}"
    )
    return ExecFile(
        path=real,
        file_caps=caps,
        setuid_owner=info.st_uid if info.st_mode & stat.S_ISUID else None,
        setgid_owner=info.st_gid if info.st_mode & stat.S_ISGID else None,
        group_executable=bool(info.st_mode & stat.S_IXGRP),
        nosuid=nosuid,
    )


def _shebang(path: str) -> str | None:
    try:
        with open(path, "rb") as file:
            head = file.read(256)
    except OSError:
        return None
    words = head[2:].split(b"\n", 1)[0].split() if head.startswith(b"#!") else []
    return os.fsdecode(words[0]) if words else None


def _paths(files: dict[str, str], path: str, ev: Evidence) -> tuple[PathAsk, ...]:
    """``ReadWritePaths=``/``ReadOnlyPaths=`` of the unit and its drop-ins (in reading order;
    an empty value resets the list, a ``-`` prefix ignores a missing path)."""
    lists: dict[str, list[tuple[str, str]]] = {key: [] for key in _PATH_SETTINGS}
    for source, text in files.items():
        if source != path and not source.endswith(".conf"):
            continue  # the paired socket's settings are not the service's
        entries, _ = read_unit(text, source)
        for entry in entries:
            if entry.section != "Service":
                continue
            if entry.key == "LoadCredential":
                ev.add(
                    f"{entry.location}: LoadCredential={entry.value}: systemd (root) reads it and "
                    "passes a copy in $CREDENTIALS_DIRECTORY: not asked for the service's user"
                )
            if entry.key not in _PATH_SETTINGS:
                continue
            words = split_words(entry.value)
            if not words:
                lists[entry.key].clear()
                continue
            for word in words:
                lists[entry.key].append((word.lstrip("-+"), f"{entry.location}: {entry.key}="))
    asks = []
    for key, items in lists.items():
        for target, origin in items:
            if target.startswith("/"):
                asks.append(PathAsk(target, _PATH_SETTINGS[key], f"{origin}{target}"))
    return tuple(asks)


def _network(subject: Subject, workload: Workload, ev: Evidence, name: str) -> Subject:
    binds: list[PortAsk] = []
    publishes: list[PortAsk] = []
    for port in workload.ports:
        at = port.location or name
        if port.source == "socket-unit":
            ev.add(
                f"{at}: ListenStream port {port.port}/{port.proto} of {workload.socket_unit}: "
                "systemd binds it and passes the socket: the service binds nothing"
            )
            origin = f"{at}: ListenStream= of {workload.socket_unit} (bound by systemd)"
            publishes.append(PortAsk(port.port, port.proto, origin))
            continue
        binds.append(PortAsk(port.port, port.proto, f"{at}: port {port.port} on ExecStart="))
    sandbox = workload.unit_sandbox
    if sandbox is not None and sandbox.private_network is not None:
        ev.add(
            f"{sandbox.private_network}: PrivateNetwork=yes: a new network namespace "
            f"(ip_unprivileged_port_start={NEW_NETNS_PORT_START})"
        )
        return replace(
            subject,
            host_network=False,
            binds=tuple(binds),
            publishes=tuple(publishes),
            unprivileged_port_start=NEW_NETNS_PORT_START,
        )
    return replace(subject, host_network=True, binds=tuple(binds), publishes=tuple(publishes))
