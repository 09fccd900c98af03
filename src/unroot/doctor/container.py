"""``--container NAME``: a container of a rootful or rootless Docker or Podman, as a Subject.

From the engine's ``inspect`` of the container and of its image: the user (names resolved in
the container's own ``/etc/passwd`` and ``/etc/group``, read through ``/proc/PID/root`` while
it runs), the capability flags, no-new-privileges, the network mode and sysctls, the bind
mounts, the ports, and the entrypoint.  The runtime profile (:mod:`unroot.model.runtimes`) gives
the start credentials; the exec chain of the entrypoint (:mod:`unroot.model.chain`), with each
program's file capabilities, set-id bits and mount flags as the container sees them, gives the
effective set the service binds and opens with.  Host ids: rootful engines have no user
namespace (unless the running process's ``uid_map`` says otherwise); rootless ones map through
the owner's subordinate ids, cross-checked with ``/proc/PID/uid_map``.
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial

from unroot.doctor.identity import (
    Evidence,
    Who,
    map_text,
    read_id_map,
    resolve_user,
    rootless_maps,
)
from unroot.doctor.subject import Engine, ExeAsk, PathAsk, PortAsk, RootlessRef, Subject
from unroot.engine.inspect import (
    ContainerFacts,
    engine_cli,
    inspect_container,
    inspect_image,
)
from unroot.errors import UnrootError, UsageError
from unroot.facts import PROCFS_PATH
from unroot.facts.accounts import Accounts, read_accounts
from unroot.facts.filecaps import read_file_caps
from unroot.facts.kernel import host_kernel
from unroot.facts.mounts import MountTree, read_mountinfo
from unroot.facts.proc import read_status
from unroot.facts.rootfs import Root, as_root, host_path, resolve_in_root
from unroot.model.caps import EMPTY, CapSet
from unroot.model.chain import ChainResult, exec_chain
from unroot.model.creds import Creds
from unroot.model.execve import ExecFile
from unroot.model.runtimes import (
    DOCKER,
    DOCKER_ROOTLESS,
    PODMAN_ROOTLESS,
    RuntimeProfile,
    start_creds,
    unprivileged_port_start,
)
from unroot.model.setid import setpriv_switch, setuid_switch
from unroot.model.userns import IdMap
from unroot.sources.exec_argv import ChainLink, exec_chain_argv
from unroot.sources.parsed import path_dirs

#: Rootful Podman: Podman's capability rules without a user namespace of its own.
PODMAN_ROOTFUL = replace(
    PODMAN_ROOTLESS, name="podman", title="Podman (rootful)", user_namespace=False
)
#: Docker's bridge network (``default`` is what ``inspect`` shows for it).
_DEFAULT_NETWORKS = frozenset({"default", "bridge"})


def runtime_of(engine: Engine, rootless: bool) -> RuntimeProfile:
    """The profile of an engine: rootful or rootless Docker or Podman."""
    if engine == "docker":
        return DOCKER_ROOTLESS if rootless else DOCKER
    return PODMAN_ROOTLESS if rootless else PODMAN_ROOTFUL


@dataclass(frozen=True, slots=True)
class _Program:
    """One program of the exec chain as the container sees it."""

    shown: str  # the path inside the container
    host: str | None  # where the host reads it (None: not running)
    file: ExecFile


def container_subject(
    name: str,
    *,
    rootless: RootlessRef | None = None,
    engine: Engine = "docker",
    cli: str | None = None,
    procfs: str = PROCFS_PATH,
    etc: str = "/etc",
) -> Subject:
    """The container ``name`` of rootful ``engine``, or of ``rootless``'s engine, as a Subject.

    UsageError when the engine has no such container or its user cannot be resolved;
    EnvironmentProblem when the engine does not answer."""
    kind = rootless.engine if rootless is not None else engine
    ecli = engine_cli(kind, rootless.uid if rootless is not None else None, cli)
    facts = inspect_container(ecli, name)
    image = inspect_image(ecli, facts.image)
    runtime = runtime_of(kind, rootless is not None)
    tag = f"{kind} inspect {facts.name}"
    ev = Evidence()
    ev.add(
        f"{tag}: {runtime.title}"
        + (f" of {rootless.owner} (uid {rootless.uid})" if rootless else "")
        + (f", running as pid {facts.pid}" if facts.pid else ", not running")
    )
    maps = rootless_maps(rootless, etc) if rootless is not None else None
    root: Root | None = None
    if facts.pid:
        root, how = os.path.join(procfs, str(facts.pid), "root"), "via /proc/PID/root"
    else:
        root, how = as_root(facts.layers), "from its overlay layers"
    shown_etc = f"{facts.name}:/etc"
    if root is not None:
        accounts = read_accounts(root, shown=shown_etc)
        if facts.pid is None:
            ev.add(f"{facts.name} is not running: its files are read {how}")
    else:
        accounts = Accounts(where=shown_etc, found=False)
        ev.add(f"{facts.name} is not running and its storage is not readable overlay layers")

    user_text = facts.user or (image.user if image is not None else "")
    origin = "Config.User" if facts.user else "the image's User"
    ev.add(f"{tag}: {origin}={user_text or '(none: root)'}")
    if facts.group_add:
        ev.add(f"{tag}: HostConfig.GroupAdd={','.join(facts.group_add)}")
    who = resolve_user(user_text, accounts, facts.group_add, ev, where=tag)
    if who is None:
        raise UsageError(
            f"container {facts.name} runs as {user_text!r}, a name that "
            + (
                "is not in its /etc/passwd"
                if accounts.found
                else "can only be resolved while it runs (start it, or pass --user with the uid)"
            )
        )

    start = _start(facts, runtime, who, ev, tag)
    entrypoint, cmd = facts.entrypoint, facts.cmd
    if entrypoint is None and cmd is None and image is not None:
        entrypoint, cmd = image.entrypoint, image.cmd
    ev.add(f"entrypoint+cmd: {' '.join([*(entrypoint or ()), *(cmd or ())]) or '(none)'}")
    live_map = read_id_map(facts.pid, "uid", procfs) if facts.pid else None
    links = exec_chain_argv(entrypoint, cmd)
    programs = read_programs(
        root,
        links,
        Place(
            search=path_dirs(facts.env_value("PATH")),
            cwd=facts.working_dir,
            mounts=MountTree(read_mountinfo(procfs, facts.pid)) if facts.pid else None,
            id_map=live_map or (maps[0] if maps else None),
            how=how,
        ),
        ev,
    )
    switches, switched = user_switches(links, accounts, ev)
    chain = exec_chain(start, [p.file for p in programs], switches=switches, kernel=host_kernel())
    effective = effective_of(chain, programs, ev)
    who = switched or who
    if facts.pid is not None:
        _observed(facts.pid, procfs, ev)

    uid, gid, groups, container_ids = _host_ids(facts, who, rootless, maps, procfs, ev)
    if container_ids is not None and effective:
        ev.add(
            f"its capabilities ({effective}) are held in the engine's user namespace: they do "
            "not count for host files whose owner it does not map"
        )
    subject = Subject(
        label=f"container {facts.name}",
        uid=uid,
        gid=gid,
        groups=groups,
        effective=effective,
        name=who.name,
        container_uid=container_ids[0] if container_ids else None,
        container_gid=container_ids[1] if container_ids else None,
        rootless=rootless,
        paths=_paths(facts),
        exe=exe_ask(programs, start, chain, facts.no_new_privileges, f"container {facts.name}"),
    )
    subject = _network(subject, facts, runtime, ev, tag)
    return replace(subject, evidence=tuple(ev.lines))


# -- credentials --------------------------------------------------------------------------------
def _start(
    facts: ContainerFacts, runtime: RuntimeProfile, who: Who, ev: Evidence, tag: str
) -> Creds:
    """The runtime's credentials right before it executes the entrypoint."""
    cap_add: Sequence[str] = facts.cap_add
    cap_drop: Sequence[str] = facts.cap_drop
    if facts.privileged:
        cap_add, cap_drop = ("ALL",), ()
        ev.add(f"{tag}: HostConfig.Privileged=true (every capability in the bounding set)")
    elif facts.bounding_caps is not None:  # Podman: its own sets, not CapAdd/CapDrop
        bounding = CapSet.parse(facts.bounding_caps)
        base = runtime.default_bounding
        cap_drop = (base - bounding).names()
        added = CapSet.parse(facts.effective_caps or ()) if who.uid != 0 else bounding - base
        cap_add = added.names()
        ev.add(
            f"{tag}: BoundingCaps={bounding}, EffectiveCaps="
            f"{CapSet.parse(facts.effective_caps or ())}"
        )
    else:
        if cap_add:
            ev.add(f"{tag}: HostConfig.CapAdd={','.join(cap_add)}")
        if cap_drop:
            ev.add(f"{tag}: HostConfig.CapDrop={','.join(cap_drop)}")
    if facts.security_opt:
        ev.add(f"{tag}: HostConfig.SecurityOpt={','.join(facts.security_opt)}")
    try:
        return start_creds(
            runtime,
            who.uid,
            who.gid,
            who.groups,
            cap_add,
            cap_drop,
            facts.no_new_privileges,
            facts.host_network,
        )
    except UnrootError as exc:
        raise UsageError(f"container {facts.name}: {exc}") from None


def effective_of(chain: ChainResult, programs: Sequence[_Program], ev: Evidence) -> CapSet:
    if chain.ok:
        final = chain.final
        path = " → ".join(p.shown for p in programs) or "the entrypoint"
        ev.add(f"model: after exec of {path}: effective {final.effective or 'none'}")
        return final.effective
    failed = chain.failed_at or 0
    why = "; ".join(r.text for r in chain.steps[failed].result.reasons)
    ev.add(f"model: exec of {programs[failed].shown} fails with EPERM ({why})")
    return EMPTY


def _observed(pid: int, procfs: str, ev: Evidence) -> None:
    try:
        status = read_status(pid, procfs)
    except UnrootError:
        return
    ev.add(
        f"/proc/{pid}/status: Uid={status.uid.real} Gid={status.gid.real} "
        f"CapEff={status.effective or 'none'} NoNewPrivs={int(bool(status.no_new_privs))}"
    )


# -- the entrypoint -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Place:
    """Where the programs are looked up: PATH, working directory, the mount table the process
    sees (None: not running), the uid map of the files' owners (None: no user namespace)."""

    search: Sequence[str]
    cwd: str
    mounts: MountTree | None
    id_map: IdMap | None
    how: str


def read_programs(
    root: Root | None, links: Sequence[ChainLink], place: Place, ev: Evidence
) -> list[_Program]:
    """The exec chain's programs as the container sees them (scripts: their interpreter)."""
    if root is None:
        ev.add("the programs' file capabilities cannot be read: assumed none")
        return [_Program(link.program, None, ExecFile(link.program)) for link in links]
    programs = []
    for link in links:
        found = _find(root, link.program, place.cwd, place.search)
        if found is None:
            ev.add(f"{link.program}: not found in the container (PATH {':'.join(place.search)})")
            programs.append(_Program(link.program, None, ExecFile(link.program)))
            continue
        interpreter = _interpreter(root, found)
        if interpreter is not None:
            ev.add(f"{found} is a script: the kernel executes {interpreter}; its caps never count")
            found = _find(root, interpreter, "/", place.search) or interpreter
        programs.append(_program(root, found, place, ev))
    return programs


def user_switches(
    links: Sequence[ChainLink], accounts: Accounts, ev: Evidence
) -> tuple[dict[int, Callable[[Creds], Creds]], Who | None]:
    """The user switches of setuid-wrapper links (gosu, su-exec, setpriv…: the model's
    :mod:`unroot.model.setid`), their users resolved in the container's accounts; and the
    user the service ends up as (None: no switch)."""
    switches: dict[int, Callable[[Creds], Creds]] = {}
    last: Who | None = None
    for index, link in enumerate(links):
        if link.role != "setuid-wrapper" or not link.user:
            continue
        where = f"{posixpath.basename(link.program)} {link.user}"
        who = resolve_user(link.user, accounts, (), ev, where=where)
        if who is None:
            ev.add(f"{where}: the user it switches to is unknown: the switch is not modelled")
            continue
        if posixpath.basename(link.program) == "setpriv":
            edits = dict(link.options)
            switches[index] = partial(
                setpriv_switch,
                uid=who.uid,
                gid=who.gid,
                groups=who.groups,
                bounding_set=edits.get("--bounding-set"),
                inh_caps=edits.get("--inh-caps"),
                ambient_caps=edits.get("--ambient-caps"),
            )
        else:
            switches[index] = partial(setuid_switch, uid=who.uid, gid=who.gid, groups=who.groups)
        ev.add(f"{where}: switches to uid {who.uid} gid {who.gid} before it executes the service")
        last = who
    return switches, last


def _find(root: Root, program: str, cwd: str, search: Sequence[str]) -> str | None:
    """The path ``program`` names inside the container (PATH lookup for a bare name)."""
    if "/" in program:
        candidates = [posixpath.join(cwd, program)]
    else:
        candidates = [posixpath.join(d, program) for d in search]
    for candidate in candidates:
        try:
            inside = resolve_in_root(root, candidate)
            if os.path.isfile(host_path(root, inside)):
                return inside
        except OSError:
            continue
    return None


def _interpreter(root: Root, inside: str) -> str | None:
    try:
        with open(host_path(root, inside), "rb") as file:
            head = file.read(256)
    except OSError:
        return None
    if not head.startswith(b"#!"):
        return None
    words = head[2:].split(b"\n", 1)[0].split()
    return words[0].decode(errors="replace") if words else None


def _program(root: Root, inside: str, place: Place, ev: Evidence) -> _Program:
    try:
        where = host_path(root, inside)
        caps = read_file_caps(where)
        info = os.stat(where)
    except (UnrootError, OSError) as exc:
        ev.add(f"{inside}: cannot read its file capabilities ({exc}): assumed none")
        return _Program(inside, None, ExecFile(inside))
    mount = place.mounts.mount_for(inside) if place.mounts is not None else None
    nosuid = mount is not None and mount.nosuid
    owner, group = info.st_uid, info.st_gid
    if place.id_map is not None:
        owner, group = place.id_map.shown_inside(owner), place.id_map.shown_inside(group)
    file = ExecFile(
        path=inside,
        file_caps=caps,
        setuid_owner=owner if info.st_mode & stat.S_ISUID else None,
        setgid_owner=group if info.st_mode & stat.S_ISGID else None,
        group_executable=bool(info.st_mode & stat.S_IXGRP),
        nosuid=nosuid,
    )
    shown_caps = caps.to_text() if caps is not None else "none"
    mount_text = f", on a nosuid mount ({mount.mount_point})" if nosuid and mount else ""
    ev.add(f"{inside} (read {place.how}): file caps {shown_caps}{mount_text}")
    return _Program(inside, where, file)


def exe_ask(
    programs: Sequence[_Program], start: Creds, chain: ChainResult, no_new_privs: bool, name: str
) -> ExeAsk | None:
    """The service: the last program of the chain, as the host reads it."""
    last = programs[-1] if programs else None
    if last is None or last.host is None:
        return None
    before = chain.steps[-1].before if chain.steps else start
    return ExeAsk(
        path=last.host,
        shown=last.shown,
        no_new_privs=no_new_privs,
        bounding=before.bounding,
        nosuid=last.file.nosuid,
        origin=f"entrypoint of {name}",
    )


# -- ids ----------------------------------------------------------------------------------------
def _host_ids(  # noqa: PLR0917 - the sources of the answer, each used once
    facts: ContainerFacts,
    who: Who,
    rootless: RootlessRef | None,
    maps: tuple[IdMap, IdMap] | None,
    procfs: str,
    ev: Evidence,
) -> tuple[int, int, tuple[int, ...], tuple[int, int] | None]:
    """(host uid, host gid, host groups, (container uid, gid) when they differ)."""
    live = (
        (read_id_map(facts.pid, "uid", procfs), read_id_map(facts.pid, "gid", procfs))
        if facts.pid
        else (None, None)
    )
    if rootless is not None and maps is not None:
        ev.add(
            f"subuid, subgid of {rootless.owner}: uid_map {map_text(maps[0])}, "
            f"gid_map {map_text(maps[1])}"
        )
    if live[0] is not None and live[1] is not None:
        identity = live[0] == IdMap.identity() and live[1] == IdMap.identity()
        if maps is not None and (live[0], live[1]) != maps:
            ev.add(f"/proc/{facts.pid}/uid_map differs from the subordinate ids: the kernel's used")
        elif maps is not None:
            ev.add(f"/proc/{facts.pid}/uid_map and gid_map agree (cross-checked)")
        if not identity or maps is not None:
            maps = (live[0], live[1])
    if maps is None:
        ev.add("no user namespace: host ids are the container's ids")
        return who.uid, who.gid, who.groups, None
    uid, gid = maps[0].to_outside(who.uid), maps[1].to_outside(who.gid)
    if uid is None or gid is None:
        raise UsageError(
            f"container {facts.name}: uid {who.uid} / gid {who.gid} has no host id in its "
            "user namespace's map"
        )
    groups = []
    for group in who.groups:
        outside = maps[1].to_outside(group)
        if outside is None:
            ev.add(f"supplementary group {group} has no host id: left out")
        else:
            groups.append(outside)
    ev.add(f"container uid {who.uid} → host uid {uid}, gid {who.gid} → host gid {gid}")
    return uid, gid, tuple(groups), (who.uid, who.gid)


# -- questions ----------------------------------------------------------------------------------
def _paths(facts: ContainerFacts) -> tuple[PathAsk, ...]:
    asks = []
    for mount in facts.mounts:
        if mount.kind != "bind":
            continue
        mode = "" if mount.rw else " (ro)"
        asks.append(
            PathAsk(
                mount.source,
                "rw" if mount.rw else "r",
                f"bind mount {mount.source} → {mount.destination}{mode}",
            )
        )
    return tuple(asks)


def _network(
    subject: Subject, facts: ContainerFacts, runtime: RuntimeProfile, ev: Evidence, tag: str
) -> Subject:
    ev.add(f"{tag}: HostConfig.NetworkMode={facts.network_mode}")
    if facts.sysctls:
        ev.add(f"{tag}: HostConfig.Sysctls=" + ",".join(f"{k}={v}" for k, v in facts.sysctls))
    binds: list[PortAsk] = []
    for port in (*facts.exposed, *facts.bindings):
        ask = PortAsk(port.port, port.proto, f"container port {port.port}/{port.proto}")
        if all((a.port, a.proto) != (ask.port, ask.proto) for a in binds):
            binds.append(ask)
    publishes: list[PortAsk] = []
    for port in facts.bindings:
        if port.host_port is None:
            continue
        where = f"{port.host_ip}:" if port.host_ip else ""
        spec = f"-p {where}{port.host_port}:{port.port}/{port.proto}"
        ask = PortAsk(port.host_port, port.proto, spec)
        if all((a.port, a.proto) != (ask.port, ask.proto) for a in publishes):
            publishes.append(ask)
    if facts.host_network:
        if publishes:
            ev.add(f"{tag}: published ports are discarded on the host network")
        if runtime.name == "docker-rootless":  # dockerd itself runs in rootlesskit's netns
            ev.add(f"{tag}: the host network of rootless Docker is rootlesskit's namespace")
            return replace(subject, host_network=True, netns_pid=facts.pid, binds=tuple(binds))
        return replace(subject, host_network=True, binds=tuple(binds))
    if facts.network_mode == "none":
        ev.add(f"{tag}: no network: nothing to publish")
        publishes = []
    if facts.pid is not None:
        ev.add(f"network namespace: that of pid {facts.pid}")
        return replace(
            subject,
            host_network=False,
            netns_pid=facts.pid,
            binds=tuple(binds),
            publishes=tuple(publishes),
        )
    try:
        start = unprivileged_port_start(runtime, False, sysctls=dict(facts.sysctls))
    except UnrootError as exc:
        raise UsageError(f"container {facts.name}: {exc}") from None
    ev.add(f"{runtime.title}: ip_unprivileged_port_start={start} in its network namespace")
    return replace(
        subject,
        host_network=False,
        unprivileged_port_start=start,
        binds=tuple(binds),
        publishes=tuple(publishes),
    )
