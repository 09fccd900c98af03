"""Compose projects → one :class:`Workload` per service, each fact with the file and line of the
key that set it.

A project is read the way ``docker compose`` (compose-go) loads it, from the file given:

* **variables** come from ``.env`` in the project directory (the file's directory), parsed as
  compose parses it (``env.py``).  ``env`` stands for the environment compose runs in
  and wins over ``.env``, as in compose; ``unroot lint`` passes none, so findings depend on the
  repository only, never on the shell or CI runner unroot runs in.  A variable set nowhere is
  ``""`` and one problem (a warning), as compose warns.
* **override**: when the file is one of compose's default names (``compose.yaml``,
  ``compose.yml``, ``docker-compose.yml``, ``docker-compose.yaml``), the first of
  ``compose.override.yml``, ``compose.override.yaml``, ``docker-compose.override.yml``,
  ``docker-compose.override.yaml`` beside it is merged onto it (compose-go ``cli/options.go``).
  Several YAML documents in one file are merged in order, as compose does.
* **merge** rules of the specification (``13-merge.md``, ``merge.py``), ``!reset`` and
  ``!override`` included.  Every node keeps its file and line, so a finding points at the file
  the effective value came from.
* ``extends: NAME`` / ``extends: {service, file}``, chained, per file before the files are
  merged (a name refers to the same file); relative paths of an extended file resolve from its
  own directory; a cycle, a missing service or file is a problem, never a hang.
* ``include:`` (a path, a list of paths, or ``{path, project_directory, env_file}``): the
  included project's services join this one; it reads its own ``.env`` (or ``env_file``) for
  the variables this project does not set; its relative paths resolve from its project
  directory.  A missing file or an include cycle is a problem (compose refuses the project).

Files are read through ``read`` (None: only the text given; the parser does no I/O itself).
The ParsedFile lists every other file it read in ``parts`` (the pragma pass, run beside the parser
in ``sources/kinds.py``, reads their ``# unroot: ignore=``, so it works in an override file too).

Values (compose-spec ``05-services.md``, ``12-interpolation.md``):

* ``command``/``entrypoint`` as a string are split into words with shell-like quoting
  (compose-go ``transformShellCommand`` → go-shellwords) and are *not* run by a shell;
  ``null`` keeps the image's, ``[]``/``""`` override it with nothing.
* ``ports`` short syntax ``[[IP:](port|range):](port|range)[/proto]``; a lone container port
  publishes on a random host port; ranges expand pairwise.
* ``volumes`` short syntax ``SRC:DST[:opts]``: a SRC starting with ``/``, ``.`` or ``~`` is a
  bind mount (relative paths resolve from the project directory), else a named volume.
* ``security_opt``: ``no-new-privileges``, or ``no-new-privileges`` ``=``/``:`` a Go
  ``strconv.ParseBool`` value — moby's ``parseSecurityOpt``; the last one wins.
* interpolation applies to values only, never keys, and only to the values read.
* ``network_mode: service:NAME`` shares NAME's network namespace: host if NAME is host;
  ``container:NAME`` (a container outside the project) is taken as not the host's.
* ``ipc: host`` is the host's IPC namespace; ``ipc: service:NAME`` / ``container:NAME`` join
  another container's, which runc counts as the container's own (its validator asks only
  whether the spec has an IPC namespace), so they are not the host's.
* every variable a service's values use is a note of its workload (the findings'
  assumptions): ``API_PORT=80 from .env:3``, ``${TAG:-latest}: TAG unset, default used``.

Not read: profiles (every service counts), ``deploy``, ``COMPOSE_FILE``, remote includes.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Mapping
from dataclasses import replace

from unroot.sources._shared import (
    RLIM_INFINITY,
    argv_ports,
    config_paths,
    never_raises,
    rule_ids,
    shlex_split,
    user_fact,
)
from unroot.sources.compose.context import Ctx as _Ctx
from unroot.sources.compose.context import Vars as _Vars
from unroot.sources.compose.env import Use, interpolate, parse_dotenv
from unroot.sources.compose.files import override_of, relative
from unroot.sources.compose.merge import TAGS, Merger, without_resets
from unroot.sources.parsed import Location, MountFact, ParsedFile, PortFact, UserFact, Workload
from unroot.sources.yamlsupport import (
    YMap,
    YNode,
    YScalar,
    YSeq,
    describe,
    load_yaml,
    present,
    present_seq,
)

__all__ = ["interpolate", "parse_compose"]

_GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_GO_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
_PROTOCOLS = frozenset({"tcp", "udp", "sctp"})
_MAX_RANGE = 256  # a wider published range keeps only its privileged ports and its ends
_BIND_PREFIXES = ("/", ".", "~")
IGNORE_KEY = "x-unroot-ignore"
Reader = Callable[[str], "str | None"]


class _Project:
    """Loads the files of one project: .env, override, include, extends; merges them."""

    def __init__(self, ctx: _Ctx, text: str, read: Reader | None) -> None:
        self.ctx = ctx
        self.read = read
        self.texts: dict[str, str | None] = {ctx.path: text}
        self.parts: list[str] = []  # every file read besides the one given, in order
        self.documents_of: dict[str, list[YMap]] = {}
        self.merger = Merger(ctx.problem, ctx.quiet_text)

    def text_of(self, path: str) -> str | None:
        if path not in self.texts:
            found = self.read(path) if self.read is not None and path != "-" else None
            self.texts[path] = found
            if found is not None:
                self.parts.append(path)
        return self.texts[path]

    def dotenv(self, path: str, environment: Mapping[str, str]) -> _Vars | None:
        """The variables of an env file (problems at its lines), None when it cannot be read."""
        text = self.text_of(path)
        if text is None:
            return None
        lines: dict[str, int] = {}
        values, problems = parse_dotenv(text, environment, lines)
        self.ctx.problems.extend((Location(path, line), message) for line, message in problems)
        return _Vars(values, {key: Location(path, line) for key, line in lines.items()})

    def documents(self, path: str) -> list[YMap]:
        """The mapping documents of a file (read once; None-free), problems reported."""
        if path in self.documents_of:
            return self.documents_of[path]
        roots: list[YMap] = []
        self.documents_of[path] = roots
        text = self.text_of(path)
        if text is None:
            return roots
        loaded = load_yaml(text, path, TAGS)
        self.ctx.problems.extend(loaded.problems)
        for document in loaded.documents:
            if document.root is None:
                continue
            if not isinstance(document.root, YMap):
                self.ctx.problem(
                    document.root, f"a compose file is a mapping, found {describe(document.root)}"
                )
                continue
            roots.append(document.root)
        return roots

    def load(
        self, files: list[str], env: Mapping[str, str], directory: str, stack: tuple[str, ...]
    ) -> YMap | None:
        """The files merged in order, each after its includes and extends."""
        merged: YMap | None = None
        for file in files:
            self.ctx.envs.setdefault(file, env)
            self.ctx.dirs.setdefault(file, directory)
            for root in self.documents(file):
                root = self.include(root, env, directory, stack)  # noqa: PLW2901
                root = self.extends(root, file)  # noqa: PLW2901
                result = self.merger.merge(merged, root, ())
                merged = result if isinstance(result, YMap) else merged
        return merged

    # -- include ----------------------------------------------------------------------------
    def include(
        self, root: YMap, env: Mapping[str, str], directory: str, stack: tuple[str, ...]
    ) -> YMap:
        items = present_seq(root.get("include"), "include", self.ctx.problem)
        if items is None:
            return root
        result = root.copy()
        result.remove("include")
        for item in items:
            imported = self._included(item, env, directory, stack)
            if imported is not None:
                result = self._import(result, imported)
        return result

    def _included(
        self, item: YNode, env: Mapping[str, str], directory: str, stack: tuple[str, ...]
    ) -> YMap | None:
        ctx = self.ctx
        project_directory: str | None = None
        env_files: list[tuple[str, YNode]] = []
        if isinstance(item, YMap):
            paths = ctx.strings(item.get("path"), "include.path")
            project_directory = ctx.scalar(
                item.get("project_directory"), "include.project_directory"
            )
            env_files = ctx.strings(item.get("env_file"), "include.env_file")
        elif isinstance(item, YScalar):
            paths = ctx.strings(item, "include")
        else:
            ctx.problem(item, f"include: expected a path or a mapping, found {describe(item)}")
            return None
        if not paths:
            ctx.problem(item, "include: needs a path")
            return None
        files = [relative(directory, text) for text, _ in paths]
        if files[0] in stack:
            chain = " → ".join((*stack, files[0]))
            ctx.problem(item, f"include cycle: {chain} (docker compose refuses the project)")
            return None
        for file, (text, node) in zip(files, paths, strict=True):
            if self.text_of(file) is None:
                ctx.problem(
                    node,
                    f"include: cannot read {text!r} ({file}): docker compose refuses the project",
                )
                return None
        sub_directory = posixpath.dirname(files[0])
        if project_directory:
            sub_directory = relative(directory, project_directory)
        # the including project's variables win over the included's .env
        sub_env = _Vars(env, env.origins if isinstance(env, _Vars) else None)
        if not env_files:
            found = self.dotenv(posixpath.join(sub_directory, ".env"), env)
            _add_missing(sub_env, found)
        for text, node in env_files:
            if text == "/dev/null":
                continue
            env_path = relative(directory, text)
            found = self.dotenv(env_path, env)
            if found is None:
                ctx.problem(
                    node,
                    f"include: env_file {text!r} not found: docker compose refuses the project",
                )
                continue
            _add_missing(sub_env, found)
        return self.load(files, sub_env, sub_directory, (*stack, files[0]))

    def _import(self, root: YMap, imported: YMap) -> YMap:
        theirs = imported.get_map("services")
        key = imported.key_node("services")
        if theirs is None or key is None:
            return root
        ours = root.get_map("services")
        result = root.copy()
        if ours is None:
            result.put(root.key_node("services") or key, theirs)
            return result
        services = ours.copy()
        for name, service in theirs.entries():
            local = ours.get(name.text)
            if local is None:
                services.put(name, service)
            else:  # the including file's definition is merged onto the imported one
                merged = self.merger.merge(service, local, ("services", name.text))
                services.put(ours.key_node(name.text) or name, merged)
        result.put(root.key_node("services") or key, services)
        return result

    # -- extends ----------------------------------------------------------------------------
    def extends(self, root: YMap, file: str) -> YMap:
        services = root.get_map("services")
        key = root.key_node("services")
        if services is None or key is None:
            return root
        if not any(isinstance(s, YMap) and "extends" in s for _, s in services.entries()):
            return root
        resolved = services.copy()
        for name, service in services.entries():
            if isinstance(service, YMap) and "extends" in service:
                resolved.put(name, self._extended(file, name.text, services, ((file, name.text),)))
        result = root.copy()
        result.put(key, resolved)
        return result

    def _extended(
        self, file: str, name: str, services: YMap, chain: tuple[tuple[str, str], ...]
    ) -> YNode:
        ctx = self.ctx
        node = services.get(name)
        if not isinstance(node, YMap) or "extends" not in node:
            return node if node is not None else YMap(1, 1, file=file)
        extends = node.get("extends")
        assert extends is not None
        plain = node.copy()
        plain.remove("extends")
        other: str | None = None
        if isinstance(extends, YMap):
            ref = ctx.scalar(extends.get("service"), "extends.service")
            other = ctx.scalar(extends.get("file"), "extends.file")
        elif isinstance(extends, YScalar) and not extends.is_null:
            ref = ctx.text(extends)
        else:
            ctx.problem(
                extends, f"extends: expected a service name or a mapping, found {describe(extends)}"
            )
            return plain
        if not ref:
            ctx.problem(extends, f"service {name!r}: extends needs a service")
            return plain
        target, target_services = file, services
        if other:
            target = relative(posixpath.dirname(file), other)
            if self.text_of(target) is None:
                where = extends.get("file") if isinstance(extends, YMap) else None
                ctx.problem(
                    where or extends,
                    f"service {name!r}: extends cannot read {other!r} ({target}): docker compose "
                    "refuses the project",
                )
                return plain
            ctx.envs.setdefault(target, ctx.envs.get(file, ctx.env))
            ctx.dirs.setdefault(target, posixpath.dirname(target))
            target_services = self._services_of(target)
        if (target, ref) in chain:
            names = " → ".join(
                f"{n}" if f == file else f"{f}:{n}" for f, n in (*chain, (target, ref))
            )
            ctx.problem(extends, f"extends cycle: {names} (docker compose refuses the project)")
            return plain
        if ref not in target_services:
            ctx.problem(
                extends,
                f"service {name!r} extends {ref!r}, which {target} does not define: docker "
                "compose refuses the project",
            )
            return plain
        base = self._extended(target, ref, target_services, (*chain, (target, ref)))
        if isinstance(base, YScalar) and base.is_null:
            return plain
        return self.merger.merge(base, plain, ("services", name))

    def _services_of(self, file: str) -> YMap:
        merged: YMap = YMap(1, 1, file=file)
        for root in self.documents(file):
            services = root.get_map("services")
            if services is not None:
                result = self.merger.merge(merged, services, ("services",))
                merged = result if isinstance(result, YMap) else merged
        return merged


@never_raises("compose")
def parse_compose(
    text: str,
    path: str,
    env: Mapping[str, str] | None = None,
    read: Reader | None = None,
) -> ParsedFile:
    """A compose project's services as workloads; problems instead of exceptions.

    ``env``: the environment compose would run in (wins over ``.env``); ``read``: reads the
    other files of the project (``.env``, the override, extended and included files).
    """
    ctx = _Ctx(path, {})
    project = _Project(ctx, text, read)
    directory = posixpath.dirname(path) if path != "-" else ""
    process = dict(env or {})
    dotenv = project.dotenv(posixpath.join(directory, ".env"), process) if path != "-" else None
    origins = {k: v for k, v in (dotenv.origins if dotenv else {}).items() if k not in process}
    ctx.env = variables = _Vars({**(dotenv or {}), **process}, origins)
    _assume_shell_variables(ctx, project, variables, path, directory)
    files = [path]
    override = override_of(path, lambda p: project.text_of(p) is not None)
    if override is not None:
        files.append(override)
    root = project.load(files, ctx.env, directory, (path,))
    own = project.documents(path)
    workloads: list[Workload] = []
    services = root.get("services") if root is not None else None
    if isinstance(services, YScalar) and services.is_null:
        services = None
    if services is not None and not isinstance(services, YMap):
        ctx.problem(services, f"services: expected a mapping, found {describe(services)}")
    elif services is not None:
        for key, value in services.entries():
            workload = _service(ctx, key, without_resets(value))
            if workload is not None:
                workloads.append(_with_configs(workload, directory, read))
    if own and not any("services" in r or "include" in r for r in own):
        ctx.problems.append((Location(path), "no top-level 'services:': not a compose file?"))
    return ParsedFile(
        path=path,
        kind="compose",
        workloads=tuple(_resolve_shared_netns(workloads)),
        problems=tuple(ctx.problems),
        parts=tuple(ParsedFile(part, "compose") for part in project.parts),
    )


_PROJECT_NAME_DROP = re.compile(r"[^a-z0-9_-]")
_RUN_FROM_PROJECT = "assumed: compose is run from the project directory"


def _assume_shell_variables(
    ctx: _Ctx, project: _Project, env: _Vars, path: str, directory: str
) -> None:
    """The variables compose's own run sets when nothing else does: ``PWD`` (every shell and
    ``make`` export it; compose is assumed run from the project directory) and
    ``COMPOSE_PROJECT_NAME`` (compose sets it from the top-level ``name:``, else from the
    project directory's name, lowercased, other than ``[a-z0-9_-]`` dropped)."""
    if "PWD" not in env and path != "-":
        # a relative path resolves from the project directory: "." is that directory
        env["PWD"] = directory if directory.startswith("/") else "."
        env.assumed["PWD"] = _RUN_FROM_PROJECT
    if "COMPOSE_PROJECT_NAME" in env:
        return
    name: str | None = None
    for root in project.documents(path):
        node = root.get("name")
        if isinstance(node, YScalar) and not node.is_null:
            name = ctx.quiet_text(node)
            reason = "from the top-level name:"
    if not name and directory and path != "-":
        name = posixpath.basename(posixpath.normpath(directory))
        reason = "the project directory's name, compose's default"
    if name:
        env["COMPOSE_PROJECT_NAME"] = _PROJECT_NAME_DROP.sub("", name.lower())
        env.assumed["COMPOSE_PROJECT_NAME"] = f"assumed: {reason}"


def _add_missing(env: _Vars, found: _Vars | None) -> None:
    """An included project's own variables, for the names the including project leaves unset."""
    if found is None:
        return
    for key, value in found.items():
        if key not in env:
            env[key] = value
            if key in found.origins:
                env.origins[key] = found.origins[key]


_VISIBLE = str.maketrans({"\n": "\\n", "\r": "\\r", "\t": "\\t"})


def _notes(used: list[tuple[Use, Mapping[str, str]]]) -> tuple[str, ...]:
    """What a service's values rest on: each variable from ``.env`` (``API_PORT=80 from
    .env:3``) and each one unset or empty where the default (or nothing) was used."""
    notes: list[str] = []
    for (name, op, expression, substituted), env in used:
        origin = env.origins.get(name) if isinstance(env, _Vars) else None
        assumed = env.assumed.get(name) if isinstance(env, _Vars) else None
        if substituted and assumed is not None:
            notes.append(f"{name}={env.get(name, '')} ({assumed})")
            continue
        where = f"{origin.file}:{origin.line}" if origin else "the environment compose runs in"
        if substituted:
            value = env.get(name, "").translate(_VISIBLE)
            shown = value if len(value) <= 60 else value[:57] + "..."
            notes.append(f"{name}={shown} from {where}")
            continue
        state = f"empty in {where}" if name in env else "unset"
        if op.endswith("-"):
            notes.append(f"{expression}: {name} {state}, default used")
        elif op.endswith("+"):
            notes.append(f"{expression}: {name} {state}, nothing substituted")
        else:
            notes.append(f"{expression}: {name} {state}, compose substitutes an empty string")
    return tuple(dict.fromkeys(notes))


def _resolve_shared_netns(workloads: list[Workload]) -> list[Workload]:
    """``network_mode: service:NAME`` is NAME's network namespace: host if NAME is host."""
    by_name = {w.name: w for w in workloads}
    resolved: list[Workload] = []
    for workload in workloads:
        current, seen = workload, {workload.name}
        while current.network_mode and current.network_mode.startswith("service:"):
            target = by_name.get(current.network_mode.split(":", 1)[1].strip())
            if target is None or target.name in seen:
                break
            seen.add(target.name)
            current = target
        if current is not workload and current.host_network and not workload.host_network:
            where = workload.location_of("network_mode") or workload.location
            workload = replace(  # noqa: PLW2901 - the resolved copy replaces the parsed one
                workload,
                host_network=True,
                field_locations=(*workload.field_locations, ("host_network", where)),
            )
        resolved.append(workload)
    return resolved


def _service(ctx: _Ctx, key: YScalar, node: YNode) -> Workload | None:
    name = key.text
    ctx.used = []
    if isinstance(node, YScalar) and node.is_null:
        node = YMap(node.line, node.column)
    if not isinstance(node, YMap):
        ctx.problem(node, f"service {name!r}: expected a mapping, found {describe(node)}")
        return None
    svc = node
    where: dict[str, Location] = {}

    def key_loc(field_key: str) -> Location | None:
        found = svc.key_node(field_key)
        return ctx.loc(found) if found is not None else None

    def note(field_name: str, field_key: str) -> None:
        loc = key_loc(field_key)
        if loc is not None and field_name not in where:
            where[field_name] = loc

    image = ctx.scalar(svc.get("image"), "image")
    if image is not None:
        note("image", "image")
    dockerfile, target = _build(ctx, svc.get("build"))
    if dockerfile is not None:
        note("dockerfile", "build")

    user: UserFact | None = None
    user_text = ctx.scalar(svc.get("user"), "user")
    if user_text is not None and user_text.strip():
        user = user_fact(user_text, key_loc("user"))

    groups = tuple(value for value, _ in ctx.strings(svc.get("group_add"), "group_add"))
    if groups:
        note("groups", "group_add")

    network_mode = ctx.scalar(svc.get("network_mode"), "network_mode")
    host_network = network_mode is not None and network_mode.strip() == "host"
    if network_mode is not None:
        note("network_mode", "network_mode")
        if host_network:
            note("host_network", "network_mode")

    ipc = ctx.scalar(svc.get("ipc"), "ipc")
    host_ipc = ipc is not None and ipc.strip() == "host"
    if host_ipc:
        note("host_ipc", "ipc")

    cap_add = tuple(value for value, _ in ctx.strings(svc.get("cap_add"), "cap_add"))
    cap_drop = tuple(value for value, _ in ctx.strings(svc.get("cap_drop"), "cap_drop"))
    if cap_add:
        note("cap_add", "cap_add")
    if cap_drop:
        note("cap_drop", "cap_drop")
    caps_location = where.get("cap_add") or where.get("cap_drop")

    privileged = bool(ctx.boolean(svc.get("privileged"), "privileged"))
    if privileged:
        note("privileged", "privileged")
    nnp, nnp_location, nnp_reason = _security_opt(ctx, svc.get("security_opt"))
    sysctls = _sysctls(ctx, svc.get("sysctls"))
    if sysctls:
        note("sysctls", "sysctls")
    read_only = bool(ctx.boolean(svc.get("read_only"), "read_only"))
    if read_only:
        note("read_only_rootfs", "read_only")
    init = bool(ctx.boolean(svc.get("init"), "init"))
    if init:
        note("init", "init")

    ports = _ports(ctx, svc.get("ports")) + _expose(ctx, svc.get("expose"))
    mounts = _volumes(ctx, svc.get("volumes")) + _tmpfs(ctx, svc.get("tmpfs"))
    nofile, nofile_location = _nofile(ctx, svc.get("ulimits"))

    entrypoint = _shell_command(ctx, svc.get("entrypoint"), "entrypoint")
    command = _shell_command(ctx, svc.get("command"), "command")
    if entrypoint is not None:
        note("entrypoint", "entrypoint")
    if command is not None:
        note("command", "command")
    argv = (entrypoint or ()) + (command or ())
    ports += argv_ports(argv, where.get("command") or where.get("entrypoint"))

    ignores: tuple[str, ...] = ()
    ignore_node = svc.get(IGNORE_KEY)
    if ignore_node is not None:
        ignores = rule_ids(value for value, _ in ctx.strings(ignore_node, IGNORE_KEY))

    return Workload(
        source_kind="compose",
        name=name,
        location=ctx.loc(key),
        image=image,
        dockerfile=dockerfile,
        build_target=target,
        user=user,
        groups=groups,
        cap_add=cap_add,
        cap_drop=cap_drop,
        caps_location=caps_location,
        no_new_privs=nnp,
        no_new_privs_location=nnp_location,
        no_new_privs_reason=nnp_reason,
        privileged=privileged,
        host_network=host_network,
        network_mode=network_mode,
        ports=ports,
        sysctls=sysctls,
        read_only_rootfs=read_only,
        mounts=mounts,
        nofile=nofile,
        nofile_location=nofile_location,
        entrypoint=entrypoint,
        command=command,
        environment=_environment(ctx, svc.get("environment")),
        init=init,
        ignores=ignores,
        field_locations=tuple(where.items()),
        host_ipc=host_ipc,
        notes=_notes(ctx.used),
    )


def _environment(ctx: _Ctx, node: YNode | None) -> tuple[tuple[str, str], ...]:
    """``environment:`` as a mapping or a list of ``NAME=value`` (interpolated; a variable
    that is not set here is reported where it decides something, not here)."""
    node = present(node)
    found: list[tuple[str, str]] = []
    if isinstance(node, YMap):
        for key, value in node.entries():
            if isinstance(value, YScalar) and not value.is_null:
                found.append((key.text, ctx.quiet_text(value)))
    elif isinstance(node, YSeq):
        for item in node.items:
            if isinstance(item, YScalar):
                name, sep, setting = ctx.quiet_text(item).partition("=")
                if sep:
                    found.append((name.strip(), setting))
    return tuple(found)


def _with_configs(workload: Workload, directory: str, read: Reader | None) -> Workload:
    """The absolute paths named in the project files the service bind-mounts (its nginx.conf,
    Corefile …): what the service will open, for UR108."""
    if read is None:
        return workload
    prefix = directory.rstrip("/") + "/" if directory else ""
    found: list[tuple[str, str]] = []
    for mount in workload.mounts:
        inside = mount.source.startswith(prefix) if prefix else not mount.source.startswith("/")
        if mount.kind != "bind" or not inside:
            continue
        text = read(mount.source)
        if text is not None:
            name = mount.source[len(prefix) :] if prefix else mount.source
            found.extend(
                (path, where) for path, where in config_paths(name, text) if path != mount.target
            )
    return replace(workload, config_paths=tuple(found)) if found else workload


def _build(ctx: _Ctx, node: YNode | None) -> tuple[str | None, str | None]:
    """``build:`` → (the Dockerfile's path as seen from here, the target stage)."""
    node = present(node)
    if node is None:
        return None, None
    context: str | None = "."
    dockerfile: str | None = "Dockerfile"
    target: str | None = None
    where: YNode = node
    if isinstance(node, YScalar):
        context = ctx.text(node)
    elif isinstance(node, YMap):
        where = node.get("context") or node
        context = ctx.scalar(node.get("context"), "build.context") or "."
        dockerfile = ctx.scalar(node.get("dockerfile"), "build.dockerfile") or "Dockerfile"
        target = ctx.scalar(node.get("target"), "build.target")
        if "dockerfile_inline" in node:
            dockerfile = None
    else:
        ctx.problem(node, f"build: expected a path or a mapping, found {describe(node)}")
        return None, None
    if dockerfile is None or context is None or "://" in context or context.startswith("git@"):
        return None, target  # inline or remote: no file here to join
    context_dir = (
        context if posixpath.isabs(context) else posixpath.join(ctx.base_of(where), context)
    )
    path = dockerfile if posixpath.isabs(dockerfile) else posixpath.join(context_dir, dockerfile)
    return posixpath.normpath(path), target


def _security_opt(ctx: _Ctx, node: YNode | None) -> tuple[bool, Location | None, str]:
    nnp, location, reason = False, None, ""
    for value, item in ctx.strings(node, "security_opt"):
        opt = value.strip()
        if opt == "no-new-privileges":
            nnp, location, reason = True, ctx.loc(item), "security_opt no-new-privileges"
            continue
        sep = "=" if "=" in opt else ":"
        name, _, flag = opt.partition(sep)
        if name.strip() != "no-new-privileges":
            continue
        flag = flag.strip()
        if flag in _GO_TRUE:
            nnp, location, reason = True, ctx.loc(item), f"security_opt {opt}"
        elif flag in _GO_FALSE:
            nnp, location, reason = False, ctx.loc(item), ""
        else:
            ctx.problem(item, f"security_opt {opt!r}: Docker refuses it (value must be true/false)")
    return nnp, location if nnp else None, reason


def _sysctls(ctx: _Ctx, node: YNode | None) -> tuple[tuple[str, str], ...]:
    found: list[tuple[str, str]] = []
    node = present(node)
    if node is None:
        return ()
    if isinstance(node, YMap):
        for key, setting_node in node.entries():
            text = ctx.scalar(setting_node, f"sysctls.{key.text}")
            found.append((key.text.strip(), (text or "").strip()))
        return tuple(found)
    for value, item in ctx.strings(node, "sysctls"):
        name, sep, setting = value.partition("=")
        if not sep:
            ctx.problem(item, f"sysctls: {value!r} is not name=value")
            continue
        found.append((name.strip(), setting.strip()))
    return tuple(found)


def _port_range(text: str) -> tuple[int, int] | None:
    start, sep, end = text.strip().partition("-")
    try:
        low = int(start)
        high = int(end) if sep else low
    except ValueError:
        return None
    if not (0 <= low <= high <= 65535):
        return None
    return low, high


def _expand(low: int, high: int) -> list[int]:
    if high - low < _MAX_RANGE:
        return list(range(low, high + 1))
    return sorted({*range(low, min(high, 1023) + 1), low, high})


def _short_port(ctx: _Ctx, spec: str, item: YNode) -> list[PortFact]:
    body, _, proto = spec.strip().partition("/")
    proto = (proto or "tcp").strip().lower()
    head, _, container_text = body.rpartition(":")
    host_text = head.rpartition(":")[2]  # "[IP:]HOST": IPv6 IPs have colons too, ports do not
    container = _port_range(container_text)
    if container is None or proto not in _PROTOCOLS:
        ctx.problem(item, f"ports: cannot read {spec!r} (expected [[IP:]HOST:]CONTAINER[/tcp|udp])")
        return []
    published = _port_range(host_text) if host_text.strip() else None
    if host_text.strip() and published is None:
        ctx.problem(item, f"ports: cannot read the host port in {spec!r}")
        return []
    location = ctx.loc(item)
    targets = _expand(*container)
    if published is None:
        return [PortFact(p, proto, None, "ports", location) for p in targets]
    if published[1] - published[0] == container[1] - container[0]:
        offset = published[0] - container[0]
        return [PortFact(p, proto, p + offset, "ports", location) for p in targets]
    if container[0] == container[1]:  # "8000-9000:80": one of the host range
        return [PortFact(container[0], proto, published[0], "ports", location)]
    ctx.problem(item, f"ports: {spec!r}: host and container ranges differ in length")
    return []


def _ports(ctx: _Ctx, node: YNode | None) -> tuple[PortFact, ...]:
    node = present_seq(node, "ports", ctx.problem)
    if node is None:
        return ()
    found: list[PortFact] = []
    for item in node:
        if isinstance(item, YScalar):
            if item.kind == "int":  # an unquoted number is a container port
                port = item.as_int()
                if port is not None and 0 <= port <= 65535:
                    found.append(PortFact(port, "tcp", None, "ports", ctx.loc(item)))
                else:
                    ctx.problem(item, f"ports: {item.text!r} is not a port")
                continue
            found.extend(_short_port(ctx, ctx.text(item, "ports"), item))
        elif isinstance(item, YMap):
            found.extend(_long_port(ctx, item))
        else:
            ctx.problem(item, f"ports: expected a string or a mapping, found {describe(item)}")
    return tuple(found)


def _long_port(ctx: _Ctx, item: YMap) -> list[PortFact]:
    target_text = ctx.scalar(item.get("target"), "ports.target")
    target = _port_range(target_text) if target_text is not None else None
    if target is None or target[0] != target[1]:
        ctx.problem(item, "ports: the long syntax needs a numeric target")
        return []
    proto = (ctx.scalar(item.get("protocol"), "ports.protocol") or "tcp").strip().lower()
    if proto not in _PROTOCOLS:
        ctx.problem(item, f"ports: unknown protocol {proto!r}")
        return []
    published_text = ctx.scalar(item.get("published"), "ports.published")
    published = _port_range(published_text) if published_text else None
    if published_text and published is None:
        ctx.problem(item, f"ports: cannot read published {published_text!r}")
    location = ctx.loc(item.key_node("target") or item)
    return [PortFact(target[0], proto, published[0] if published else None, "ports", location)]


def _expose(ctx: _Ctx, node: YNode | None) -> tuple[PortFact, ...]:
    found: list[PortFact] = []
    for value, item in ctx.strings(node, "expose"):
        body, _, proto = value.strip().partition("/")
        proto = (proto or "tcp").strip().lower()
        ports = _port_range(body)
        if ports is None or proto not in _PROTOCOLS:
            ctx.problem(item, f"expose: cannot read {value!r}")
            continue
        found.extend(PortFact(p, proto, None, "expose", ctx.loc(item)) for p in _expand(*ports))
    return tuple(found)


def _bind_source(ctx: _Ctx, source: str, node: YNode) -> str:
    if source.startswith(".") and ctx.file_of(node) != "-":
        return posixpath.normpath(posixpath.join(ctx.base_of(node), source))
    return source


def _volumes(ctx: _Ctx, node: YNode | None) -> tuple[MountFact, ...]:
    node = present_seq(node, "volumes", ctx.problem)
    if node is None:
        return ()
    found: list[MountFact] = []
    for item in node:
        if isinstance(item, YScalar):
            mount = _short_volume(ctx, ctx.text(item, "volumes"), item)
        elif isinstance(item, YMap):
            mount = _long_volume(ctx, item)
        else:
            ctx.problem(item, f"volumes: expected a string or a mapping, found {describe(item)}")
            mount = None
        if mount is not None:
            found.append(mount)
    return tuple(found)


def _short_volume(ctx: _Ctx, spec: str, item: YNode) -> MountFact | None:
    parts = spec.strip().split(":")
    if len(parts) == 1:
        return MountFact("", parts[0], "volume", False, ctx.loc(item))  # anonymous volume
    if len(parts) > 3 or not parts[1]:
        ctx.problem(item, f"volumes: cannot read {spec!r} (expected SOURCE:TARGET[:OPTIONS])")
        return None
    source, target = parts[0], parts[1]
    options = {o.strip() for o in parts[2].split(",")} if len(parts) == 3 else set()
    read_only = "ro" in options or "readonly" in options
    if source.startswith(_BIND_PREFIXES):
        return MountFact(_bind_source(ctx, source, item), target, "bind", read_only, ctx.loc(item))
    return MountFact(source, target, "volume", read_only, ctx.loc(item))


def _long_volume(ctx: _Ctx, item: YMap) -> MountFact | None:
    kind = (ctx.scalar(item.get("type"), "volumes.type") or "volume").strip()
    source = ctx.scalar(item.get("source"), "volumes.source") or ""
    target = ctx.scalar(item.get("target"), "volumes.target")
    if not target:
        ctx.problem(item, "volumes: the long syntax needs a target")
        return None
    read_only = bool(ctx.boolean(item.get("read_only"), "volumes.read_only"))
    if kind == "bind":
        source = _bind_source(ctx, source, item)
    return MountFact(source, target, kind, read_only, ctx.loc(item))


def _tmpfs(ctx: _Ctx, node: YNode | None) -> tuple[MountFact, ...]:
    return tuple(
        MountFact("tmpfs", value.split(":", 1)[0].strip(), "tmpfs", False, ctx.loc(item))
        for value, item in ctx.strings(node, "tmpfs")
    )


def _limit(ctx: _Ctx, node: YNode | None, what: str) -> int | None:
    text = ctx.scalar(node, what)
    if text is None:
        return None
    try:
        value = int(text.strip())
    except ValueError:
        assert node is not None
        ctx.problem(node, f"{what}: {text!r} is not a number")
        return None
    return RLIM_INFINITY if value < 0 else value


def _nofile(
    ctx: _Ctx, node: YNode | None
) -> tuple[tuple[int | None, int | None] | None, Location | None]:
    if not isinstance(node, YMap):
        if node is not None and present(node) is not None:
            ctx.problem(node, f"ulimits: expected a mapping, found {describe(node)}")
        return None, None
    value = node.get("nofile")
    key = node.key_node("nofile")
    if value is None or key is None:
        return None, None
    if isinstance(value, YMap):
        soft = _limit(ctx, value.get("soft"), "ulimits.nofile.soft")
        hard = _limit(ctx, value.get("hard"), "ulimits.nofile.hard")
        return (soft, hard), ctx.loc(key)
    single = _limit(ctx, value, "ulimits.nofile")
    if single is None:
        return None, None
    return (single, single), ctx.loc(key)


def _shell_command(ctx: _Ctx, node: YNode | None, what: str) -> tuple[str, ...] | None:
    node = present(node)
    if node is None:
        return None
    if isinstance(node, YSeq):
        return tuple(value for value, _ in ctx.strings(node, what))
    if isinstance(node, YScalar):
        text = ctx.text(node, what)
        try:
            return tuple(shlex_split(text))
        except ValueError as exc:
            ctx.problem(node, f"{what}: cannot split {text!r} into words ({exc})")
            return None
    ctx.problem(node, f"{what}: expected a string or a list, found {describe(node)}")
    return None
