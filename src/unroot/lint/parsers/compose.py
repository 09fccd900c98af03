"""Compose files → one :class:`Workload` per service, each fact with the line of its key.

Semantics follow the Compose Specification (compose-spec ``05-services.md``,
``12-interpolation.md``) and compose-go, which Docker Compose v2 uses to load files:

* ``command``/``entrypoint`` as a string are split into words with shell-like quoting
  (compose-go ``transformShellCommand`` → go-shellwords) and are *not* run by a shell;
  ``null`` keeps the image's, ``[]``/``""`` override it with nothing.
* ``ports`` short syntax ``[[IP:](port|range):](port|range)[/proto]``; a lone container port
  publishes on a random host port; ranges expand pairwise.
* ``volumes`` short syntax ``SRC:DST[:opts]``: a SRC starting with ``/``, ``.`` or ``~`` is a
  bind mount (relative paths resolve from the compose file's directory), else a named volume.
* ``security_opt``: ``no-new-privileges``, or ``no-new-privileges`` ``=``/``:`` a Go
  ``strconv.ParseBool`` value — moby's ``parseSecurityOpt``; the last one wins.
* interpolation ``$VAR``, ``${VAR}``, ``${VAR:-d}``, ``${VAR-d}``, ``${VAR:?e}``, ``${VAR?e}``,
  ``${VAR:+r}``, ``${VAR+r}``, ``$$``; values only, never keys.  With no environment given an
  unset variable becomes ``""`` and one problem, as compose warns.
* ``network_mode: service:NAME`` shares NAME's network namespace: host if NAME is host.

Not read: ``extends`` (other files), ``include``, profiles, ``deploy``, merging several files.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from unroot.lint.facts import Location, MountFact, ParsedFile, PortFact, UserFact, Workload
from unroot.lint.parsers._shared import (
    RLIM_INFINITY,
    argv_ports,
    comment_ignores,
    never_raises,
    rule_ids,
    user_fact,
)
from unroot.lint.parsers.yamlsupport import (
    YMap,
    YNode,
    YScalar,
    YSeq,
    describe,
    load_yaml,
    present,
    present_seq,
)

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_GO_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
_PROTOCOLS = frozenset({"tcp", "udp", "sctp"})
_MAX_RANGE = 256  # a wider published range keeps only its privileged ports and its ends
_BIND_PREFIXES = ("/", ".", "~")
IGNORE_KEY = "x-unroot-ignore"


class InterpolationError(ValueError):
    pass


def interpolate(
    value: str, env: Mapping[str, str], unset: list[str] | None = None
) -> tuple[str, list[str]]:
    """Compose interpolation of one value: ``(result, errors)``; unset names go to ``unset``."""
    errors: list[str] = []
    out: list[str] = []
    i, n = 0, len(value)
    while i < n:
        char = value[i]
        if char != "$":
            out.append(char)
            i += 1
            continue
        if value.startswith("$$", i):
            out.append("$")
            i += 2
            continue
        if value.startswith("${", i):
            end = _closing_brace(value, i + 2)
            if end < 0:
                errors.append(f"invalid interpolation format in {value!r}: missing '}}'")
                out.append(value[i:])
                break
            out.append(_braced(value[i + 2 : end], env, unset, errors))
            i = end + 1
            continue
        match = _NAME.match(value, i + 1)
        if match is None:
            errors.append(f"invalid interpolation format in {value!r}: lone '$' (write '$$')")
            out.append("$")
            i += 1
            continue
        out.append(_lookup(match.group(), env, unset))
        i = match.end()
    return "".join(out), errors


def _closing_brace(value: str, start: int) -> int:
    depth = 1
    i = start
    while i < len(value):
        if value.startswith("${", i):
            depth += 1
            i += 2
            continue
        if value[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def _lookup(name: str, env: Mapping[str, str], unset: list[str] | None) -> str:
    if name in env:
        return env[name]
    if unset is not None and name not in unset:
        unset.append(name)
    return ""


def _braced(inner: str, env: Mapping[str, str], unset: list[str] | None, errors: list[str]) -> str:
    match = _NAME.match(inner)
    if match is None:
        errors.append(f"invalid interpolation format: ${{{inner}}}")
        return ""
    name, rest = match.group(), inner[match.end() :]
    if not rest:
        return _lookup(name, env, unset)
    is_set = name in env
    current = env.get(name, "")
    for op in (":-", ":?", ":+", "-", "?", "+"):
        if rest.startswith(op):
            arg = rest[len(op) :]
            break
    else:
        errors.append(f"invalid interpolation format: ${{{inner}}}")
        return ""
    strict = op.startswith(":")  # the colon forms also treat an empty value as unset
    present = is_set and (current != "" or not strict)
    if op.endswith("-"):
        if present:
            return current
        result, sub = interpolate(arg, env, unset)
        errors.extend(sub)
        return result
    if op.endswith("?"):
        if present:
            return current
        message, sub = interpolate(arg, env, unset)
        errors.extend(sub)
        errors.append(f"required variable {name} is missing a value: {message}".rstrip(": "))
        return ""
    if present:  # "+": the replacement when set
        result, sub = interpolate(arg, env, unset)
        errors.extend(sub)
        return result
    return ""


@dataclass
class _Ctx:
    path: str
    env: Mapping[str, str]
    problems: list[tuple[Location, str]] = field(default_factory=list)
    unset: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return posixpath.dirname(self.path) if self.path != "-" else ""

    def loc(self, node: YNode) -> Location:
        return node.location(self.path)

    def problem(self, node: YNode, message: str) -> None:
        self.problems.append((self.loc(node), message))

    def text(self, node: YScalar) -> str:
        """The scalar's value after interpolation (numbers and bools as written)."""
        if node.kind != "str" or "$" not in node.text:
            return node.text
        before = len(self.unset)
        result, errors = interpolate(node.text, self.env, self.unset)
        for name in self.unset[before:]:
            self.problem(
                node,
                f"variable {name} is not set: compose substitutes an empty string "
                "(give it a default: ${" + name + ":-value})",
            )
        for error in errors:
            self.problem(node, error)
        return result

    def scalar(self, node: YNode | None, what: str) -> str | None:
        node = present(node)
        if node is None:
            return None
        if isinstance(node, YScalar):
            return self.text(node)
        self.problem(node, f"{what}: expected a string, found {describe(node)}")
        return None

    def strings(self, node: YNode | None, what: str) -> list[tuple[str, YNode]]:
        """A list of scalars (a lone scalar counts as a list of one)."""
        node = present(node)
        if node is None:
            return []
        items = node.items if isinstance(node, YSeq) else [node]
        found: list[tuple[str, YNode]] = []
        for item in items:
            value = self.scalar(item, what)
            if value is not None:
                found.append((value, item))
        return found

    def boolean(self, node: YNode | None, what: str) -> bool | None:
        node = present(node)
        if node is None:
            return None
        if isinstance(node, YScalar):
            value = YScalar(self.text(node), "str", node.line, node.column).as_bool()
            if value is not None:
                return value
        self.problem(node, f"{what}: expected true or false, found {describe(node)}")
        return None


@never_raises("compose")
def parse_compose(text: str, path: str, env: Mapping[str, str] | None = None) -> ParsedFile:
    """A compose file's services as workloads; problems instead of exceptions."""
    ctx = _Ctx(path, env or {})
    loaded = load_yaml(text, path)
    ctx.problems.extend(loaded.problems)
    workloads: list[Workload] = []
    seen_services = False
    for document in loaded.documents:
        root = document.root
        if root is None:
            continue
        if not isinstance(root, YMap):
            ctx.problem(root, f"a compose file is a mapping, found {describe(root)}")
            continue
        services = root.get("services")
        if services is None:
            continue
        seen_services = True
        if isinstance(services, YScalar) and services.is_null:
            continue
        if not isinstance(services, YMap):
            ctx.problem(services, f"services: expected a mapping, found {describe(services)}")
            continue
        for key, value in services.entries():
            workload = _service(ctx, key, value)
            if workload is not None:
                workloads.append(workload)
    if not seen_services and loaded.documents:
        ctx.problems.append((Location(path), "no top-level 'services:': not a compose file?"))
    file_ignores, line_ignores, pragma_problems = comment_ignores(text, path, trailing=True)
    return ParsedFile(
        path=path,
        kind="compose",
        workloads=tuple(_resolve_shared_netns(workloads)),
        problems=tuple(ctx.problems) + pragma_problems,
        file_ignores=file_ignores,
        line_ignores=line_ignores,
    )


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
        init=init,
        ignores=ignores,
        field_locations=tuple(where.items()),
    )


def _build(ctx: _Ctx, node: YNode | None) -> tuple[str | None, str | None]:
    """``build:`` → (the Dockerfile's path as seen from here, the target stage)."""
    node = present(node)
    if node is None:
        return None, None
    context: str | None = "."
    dockerfile: str | None = "Dockerfile"
    target: str | None = None
    if isinstance(node, YScalar):
        context = ctx.text(node)
    elif isinstance(node, YMap):
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
    context_dir = context if posixpath.isabs(context) else posixpath.join(ctx.base, context)
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
            found.extend(_short_port(ctx, ctx.text(item), item))
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


def _bind_source(ctx: _Ctx, source: str) -> str:
    if source.startswith(".") and ctx.path != "-":
        return posixpath.normpath(posixpath.join(ctx.base, source))
    return source


def _volumes(ctx: _Ctx, node: YNode | None) -> tuple[MountFact, ...]:
    node = present_seq(node, "volumes", ctx.problem)
    if node is None:
        return ()
    found: list[MountFact] = []
    for item in node:
        if isinstance(item, YScalar):
            mount = _short_volume(ctx, ctx.text(item), item)
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
        return MountFact(_bind_source(ctx, source), target, "bind", read_only, ctx.loc(item))
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
        source = _bind_source(ctx, source)
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
        text = ctx.text(node)
        try:
            return tuple(shlex.split(text, posix=True))
        except ValueError as exc:
            ctx.problem(node, f"{what}: cannot split {text!r} into words ({exc})")
            return None
    ctx.problem(node, f"{what}: expected a string or a list, found {describe(node)}")
    return None
