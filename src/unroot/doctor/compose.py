"""``--compose FILE --service S``: a compose service joined with this host, as a Subject.

The compose project is read by lint's own parser (:mod:`unroot.sources.compose`: ``.env``,
overrides, ``extends``, interpolation) and the service becomes a situation
(:func:`unroot.situation.build_situations`: start credentials, exec chain, effective set) —
with what the file leaves to the image taken from the engine's local store (``image
inspect``: its User, Entrypoint, Cmd, ExposedPorts) instead of guessed.  Bind-mount sources are
host paths (relative ones resolved against the compose file's directory, ``~`` against the
home of whoever runs doctor, as compose does), each asked for the container's *real* host
uid/gid — what lint can only assume.
"""

from __future__ import annotations

import os
from dataclasses import replace

from unroot.doctor.container import (
    Place,
    effective_of,
    exe_ask,
    read_programs,
    runtime_of,
    user_switches,
)
from unroot.doctor.identity import Evidence, map_text, read_input, resolve_user, rootless_maps
from unroot.doctor.subject import Engine, PathAsk, PortAsk, RootlessRef, Subject
from unroot.engine.inspect import ImageFacts, engine_cli, inspect_image
from unroot.errors import EnvironmentProblem, ParseError, UsageError
from unroot.facts.accounts import Accounts, read_accounts
from unroot.facts.kernel import host_kernel
from unroot.facts.rootfs import as_root
from unroot.model.caps import EMPTY
from unroot.model.chain import exec_chain
from unroot.model.runtimes import RuntimeProfile, unprivileged_port_start
from unroot.situation import build_situations
from unroot.sources._shared import user_fact
from unroot.sources.compose.parser import parse_compose
from unroot.sources.parsed import ParsedFile, PortFact, Workload, path_dirs


def _read_quietly(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as file:
            return file.read()
    except (OSError, UnicodeDecodeError):
        return None


def _service(parsed: ParsedFile, service: str | None, shown: str) -> Workload:
    names = [w.name for w in parsed.workloads]
    if not names:
        where, message = parsed.problems[0] if parsed.problems else (None, "no services")
        raise ParseError(message, str(where) if where else shown)
    if service is None:
        if len(names) == 1:
            return parsed.workloads[0]
        raise UsageError(
            f"{shown} has {len(names)} services: name one with --service ({', '.join(names)})"
        )
    for workload in parsed.workloads:
        if workload.name == service:
            return workload
    raise UsageError(f"{shown} has no service {service!r} (it has: {', '.join(names)})")


def compose_subject(
    file: str,
    service: str | None = None,
    *,
    rootless: RootlessRef | None = None,
    engine: Engine = "docker",
    cli: str | None = None,
    etc: str = "/etc",
) -> Subject:
    """The service ``service`` of the compose file ``file`` (the only one when None), run by
    rootful ``engine`` or by ``rootless``'s engine, as a Subject.

    UsageError for a missing file, an unknown service or a user whose uid cannot be known
    without the image; ParseError for a file that is not a compose project."""
    path = os.path.abspath(file)
    parsed = parse_compose(read_input(path), path, read=_read_quietly)
    workload = _service(parsed, service, file)
    ev = Evidence()
    kind = rootless.engine if rootless is not None else engine
    runtime = runtime_of(kind, rootless is not None)
    where = f"{file} service {workload.name}"
    ev.add(f"{where}: run by {runtime.title}" + (f" of {rootless.owner}" if rootless else ""))
    image = _image(workload, kind, rootless, cli, ev)
    workload = _with_image(workload, image, ev, where)
    maps = rootless_maps(rootless, etc) if rootless is not None else None
    root = as_root(image.layers) if image is not None else None
    accounts = None
    if root is not None:
        accounts = read_accounts(root, shown=f"{image.ref if image else 'the image'}:/etc")
        workload = _resolved(workload, accounts, ev, where)
    if workload.user is None:
        raise UsageError(
            f"{where} sets no user: and its image is not in the engine's store, so the image's "
            "USER is unknown — build or pull it, or write the uid in user:"
        )
    if workload.user.uid is None and not workload.user.is_root:
        raise UsageError(
            f"{where} runs as {workload.user.text!r}, a name: its uid is in the image's "
            "/etc/passwd, which is not readable here — write the uid in user:, or start it and "
            "use --container"
        )
    profile = "podman-rootless" if kind == "podman" else runtime.name
    situation = build_situations([replace(parsed, workloads=(workload,))], {}, runtime=profile)[0]
    if situation.start_error is not None or situation.start is None:
        raise UsageError(f"{where}: {situation.start_error or 'the runtime would not start it'}")
    user = situation.user
    if user is None:  # pragma: no cover - a compose situation always has a user
        raise UsageError(f"{where}: no user")
    named = [g for g in workload.groups if not g.isdigit()]
    if named:
        ev.add(f"{where}: group_add {', '.join(named)}: not in the image's /etc/group: left out")
    exe = None
    if root is not None and image is not None and accounts is not None:
        links = [link.link for link in situation.links]
        programs = read_programs(
            root,
            links,
            Place(
                search=path_dirs(_env(image, "PATH")),
                cwd=image.working_dir,
                mounts=None,
                id_map=maps[0] if maps else None,
                how="from the image's layers",
            ),
            ev,
        )
        switches, switched = user_switches(links, accounts, ev)
        chain = exec_chain(
            situation.start,
            [p.file for p in programs],
            switches=switches,
            kernel=host_kernel(),
        )
        if switched is not None:
            user = replace(user, uid=switched.uid, gid=switched.gid, groups=switched.groups)
        effective = effective_of(chain, programs, ev)
        exe = exe_ask(programs, situation.start, chain, workload.no_new_privs, where)
    else:
        effective = situation.final.effective if situation.final is not None else EMPTY
        shown = " → ".join(link.path for link in situation.links) or "the entrypoint"
        if situation.final is None:
            ev.add(f"model: exec of {shown} fails")
        else:
            ev.add(f"model: after exec of {shown}: effective {effective or 'none'}")
        ev.add("the image's programs cannot be read: assumed without file capabilities")
    uid, gid, groups = user.uid, user.gid, user.groups
    if workload.user.gid is None and uid != 0:
        ev.add(
            f"{where}: uid {uid} without a group: gid 0 unless the image's /etc/passwd lists "
            "the uid (not readable here)"
        )
    subject = Subject(
        label=f"compose service {workload.name} ({file})",
        uid=uid,
        gid=gid,
        groups=groups,
        effective=effective,
        rootless=rootless,
        exe=exe,
    )
    if rootless is not None and maps is not None:
        uid_map, gid_map = maps
        ev.add(f"{etc}/subuid, {etc}/subgid of {rootless.owner}: uid_map {map_text(uid_map)}")
        host_uid, host_gid = uid_map.to_outside(uid), gid_map.to_outside(gid)
        if host_uid is None or host_gid is None:
            raise UsageError(f"{where}: uid {uid} / gid {gid} has no host id for {rootless.owner}")
        host_groups = tuple(g for g in (gid_map.to_outside(x) for x in groups) if g is not None)
        ev.add(f"container uid {uid} → host uid {host_uid}, gid {gid} → host gid {host_gid}")
        if effective:
            ev.add(
                f"its capabilities ({effective}) are held in the engine's user namespace: they "
                "do not count for host files whose owner it does not map"
            )
        subject = replace(
            subject,
            uid=host_uid,
            gid=host_gid,
            groups=host_groups,
            container_uid=uid,
            container_gid=gid,
        )
    else:
        ev.add("no user namespace: host ids are the container's ids")
    subject = replace(subject, paths=_paths(workload, ev))
    return replace(_network(subject, workload, runtime, ev, where), evidence=tuple(ev.lines))


def _env(image: ImageFacts, key: str) -> str | None:
    return next((v for k, v in reversed(image.env) if k == key), None)


def _resolved(workload: Workload, accounts: Accounts, ev: Evidence, where: str) -> Workload:
    """The service's user and group_add as numbers, through the image's /etc/passwd and
    /etc/group read from its layers (as the runtime resolves them when it starts it)."""
    text = workload.user.text if workload.user is not None else "0"
    who = resolve_user(text, accounts, workload.groups, ev, where=where)
    if who is None:
        raise UsageError(f"{where} runs as {text!r}, which is not in the image's /etc/passwd")
    location = workload.user.location if workload.user is not None else None
    return replace(
        workload,
        user=user_fact(f"{who.uid}:{who.gid}", location),
        groups=tuple(str(g) for g in who.groups),
    )


def _image(
    workload: Workload,
    kind: Engine,
    rootless: RootlessRef | None,
    cli: str | None,
    ev: Evidence,
) -> ImageFacts | None:
    if not workload.image:
        ev.add(f"service {workload.name}: no image: (a build:) its User and entrypoint unknown")
        return None
    try:
        image = inspect_image(
            engine_cli(kind, rootless.uid if rootless else None, cli), workload.image
        )
    except EnvironmentProblem as exc:
        ev.add(f"image {workload.image}: not inspected ({exc})")
        return None
    if image is None:
        ev.add(f"image {workload.image}: not in the engine's local store: its User is unknown")
    return image


def _with_image(workload: Workload, image: ImageFacts | None, ev: Evidence, where: str) -> Workload:
    """The service with what its file leaves to the image filled in from ``image inspect``."""
    if workload.user is not None:
        ev.add(f"{workload.user.location or where}: user: {workload.user.text}")
    if image is None:
        return workload
    tag = f"image inspect {image.ref}"
    changes: dict[str, object] = {}
    if workload.user is None:
        changes["user"] = user_fact(image.user or "0", None)
        ev.add(f"{tag}: Config.User={image.user or '(none: root)'}")
    if workload.entrypoint is None:
        changes["entrypoint"] = image.entrypoint or ()  # known to be empty: CMD runs alone
        if workload.command is None:
            changes["command"] = image.cmd
        argv = [*(image.entrypoint or ()), *((workload.command or image.cmd) or ())]
        ev.add(f"{tag}: Entrypoint+Cmd={' '.join(argv) or '(none)'}")
    known = {(p.port, p.proto) for p in workload.ports}
    exposed = tuple(
        PortFact(p.port, p.proto, None, "expose")
        for p in image.exposed
        if (p.port, p.proto) not in known
    )
    if exposed:
        changes["ports"] = workload.ports + exposed
        ev.add(f"{tag}: ExposedPorts=" + ",".join(f"{p.port}/{p.proto}" for p in exposed))
    return replace(workload, **changes)  # type: ignore[arg-type]


def _paths(workload: Workload, ev: Evidence) -> tuple[PathAsk, ...]:
    asks = []
    for mount in workload.mounts:
        if mount.kind != "bind":
            if mount.kind == "volume" and mount.source:
                ev.add(f"volume {mount.source} → {mount.target}: owned by the engine, not asked")
            continue
        source = os.path.abspath(os.path.expanduser(mount.source))
        mode = " (ro)" if mount.read_only else ""
        at = f"{mount.location}: " if mount.location else ""
        asks.append(
            PathAsk(
                source,
                "r" if mount.read_only else "rw",
                f"{at}bind mount {source} → {mount.target}{mode}",
            )
        )
    return tuple(asks)


def _network(
    subject: Subject, workload: Workload, runtime: RuntimeProfile, ev: Evidence, where: str
) -> Subject:
    binds: list[PortAsk] = []
    publishes: list[PortAsk] = []
    for port in workload.ports:
        at = f"{port.location}: " if port.location else ""
        ask = PortAsk(port.port, port.proto, f"{at}{port.source} {port.port}/{port.proto}")
        if all((a.port, a.proto) != (ask.port, ask.proto) for a in binds):
            binds.append(ask)
        if port.host_port is not None and not workload.host_network:
            publish = PortAsk(
                port.host_port, port.proto, f"{at}ports {port.host_port}:{port.port}/{port.proto}"
            )
            if all((a.port, a.proto) != (publish.port, publish.proto) for a in publishes):
                publishes.append(publish)
    mode = workload.network_mode or ("host" if workload.host_network else "default")
    ev.add(f"{where}: network_mode {mode}")
    if workload.host_network:
        return replace(subject, host_network=True, binds=tuple(binds))
    start = unprivileged_port_start(runtime, False, sysctls=dict(workload.sysctls))
    ev.add(f"{runtime.title}: ip_unprivileged_port_start={start} in its network namespace")
    return replace(
        subject,
        host_network=False,
        unprivileged_port_start=start,
        binds=tuple(binds),
        publishes=tuple(publishes),
    )
