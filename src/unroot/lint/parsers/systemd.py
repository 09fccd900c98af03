"""systemd units → a :class:`Workload` per ``.service``; a paired ``.socket`` adds its ports.

Follows systemd 252 (Debian 12), systemd.syntax(7), systemd.exec(5), systemd.service(5),
systemd.socket(5):

* lines starting with ``#``/``;`` are comments; a trailing ``\\`` joins the next line with a
  space, and comment lines inside such a continuation are skipped.
* ``AmbientCapabilities=``/``CapabilityBoundingSet=``: each line is a set (``~`` inverts it);
  an empty line or the first assignment replaces, later lines OR in (or, inverted, AND NOT);
  ``~`` alone means every capability, which for the bounding set is "not limited" (the
  ``config_parse_capability_set`` merge rule).  Names need the ``CAP_`` prefix (any case) or
  are a number; other words are ignored by systemd and reported here.
* ``NoNewPrivileges=`` is forced by ``DynamicUser=yes`` always, and — when the unit's process
  lacks CAP_SYS_ADMIN, i.e. a non-root ``User=`` (or ``DynamicUser=``) without
  ``AmbientCapabilities=CAP_SYS_ADMIN`` — by any of LockPersonality=, MemoryDenyWriteExecute=,
  PrivateDevices=, ProtectClock=, ProtectHostname=, ProtectKernelLogs=,
  ProtectKernelModules=, ProtectKernelTunables=, RestrictAddressFamilies=,
  RestrictNamespaces=, RestrictRealtime=, RestrictSUIDSGID=, SystemCallArchitectures=,
  SystemCallFilter=, SystemCallLog= (systemd.exec(5) v252 "NoNewPrivileges=" and each
  option's own text; ``context_has_no_new_privileges`` in src/core/execute.c).
* ``ExecStart=`` prefixes ``@ - : + ! !!``: ``+`` runs the command as root with no
  User=/capability/NoNewPrivileges restrictions; ``!`` ignores only User=/Group=/
  SupplementaryGroups=; ``!!`` is a no-op on kernels with ambient capabilities.
* ``LimitNOFILE=`` N, SOFT:HARD or ``infinity``; an empty value resets to the default.
* A socket pairs with ``NAME.service`` (``NAME@.service`` with ``Accept=yes``), or with the
  unit named by its ``Service=``, or with a service listing it in ``Sockets=``.

Drop-ins, ``systemd --user`` units and specifier/environment expansion are not handled.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from unroot.lint.facts import Location, ParsedFile, PortFact, UserFact, Workload
from unroot.lint.parsers._shared import (
    RLIM_INFINITY,
    argv_ports,
    comment_ignores,
    never_raises,
    parse_id,
    user_fact,
)
from unroot.model.caps import CAP_NAMES, CapSet

_ALL64 = (1 << 64) - 1
_KNOWN_MASK = CapSet.all().mask
_CAP_BITS = {name: bit for bit, name in enumerate(CAP_NAMES)}
_TRUE = frozenset({"1", "yes", "y", "true", "t", "on"})
_FALSE = frozenset({"0", "no", "n", "false", "f", "off"})
#: Options that force NoNewPrivileges=yes on a unit without CAP_SYS_ADMIN (systemd.exec(5)).
NNP_BOOLEAN_OPTIONS = (
    "LockPersonality",
    "MemoryDenyWriteExecute",
    "PrivateDevices",
    "ProtectClock",
    "ProtectHostname",
    "ProtectKernelLogs",
    "ProtectKernelModules",
    "ProtectKernelTunables",
    "RestrictRealtime",
    "RestrictSUIDSGID",
)
NNP_LIST_OPTIONS = (
    "RestrictAddressFamilies",
    "RestrictNamespaces",
    "SystemCallArchitectures",
    "SystemCallFilter",
    "SystemCallLog",
)
_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    '"': '"',
    "'": "'",
    "s": " ",
}
_IPV4_PORT = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}:(\d+)")
_IPV6_PORT = re.compile(r"\[[0-9A-Fa-f:.%\w-]*\]:(\d+)(?:%[\w.-]+)?")


@dataclass(frozen=True, slots=True)
class _Entry:
    section: str
    key: str
    value: str
    line: int


def read_unit(
    text: str, path: str, problems: list[tuple[Location, str]] | None = None
) -> tuple[list[_Entry], dict[str, int]]:
    """The ``Key=value`` entries in order, and the line of each section header."""
    entries: list[_Entry] = []
    sections: dict[str, int] = {}
    section = ""
    pending: list[str] = []
    start = 0
    for raw_number, raw in enumerate(text.lstrip("\ufeff").split("\n"), start=1):
        line, number = raw.strip(), raw_number
        if pending and line[:1] in ("#", ";"):
            continue  # a comment inside a continuation is skipped (systemd.syntax(7))
        if line.endswith("\\"):
            if not pending:
                start = number
            pending.append(line[:-1])
            continue
        if pending:
            pending.append(line)
            line, number = " ".join(pending).strip(), start
            pending = []
        if not line or line[:1] in ("#", ";"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
            sections.setdefault(section, number)
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            if problems is not None:
                problems.append((Location(path, number), f"not Key=Value: {line[:60]!r}"))
            continue
        if not section and problems is not None:
            problems.append((Location(path, number), f"{key.strip()}= is outside any [section]"))
        entries.append(_Entry(section, key.strip(), value.strip(), number))
    if pending:
        line = " ".join(pending).strip()
        key, sep, value = line.partition("=")
        if sep and key.strip():
            entries.append(_Entry(section, key.strip(), value.strip(), start))
    return entries, sections


def parse_boolean(value: str) -> bool | None:
    low = value.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    return None


def split_words(value: str) -> list[str] | None:
    """systemd.syntax(7) "Quoting": words, quotes removed, C escapes; None if a quote is open."""
    words: list[str] = []
    i, n = 0, len(value)
    while i < n:
        while i < n and value[i].isspace():
            i += 1
        if i >= n:
            break
        word: list[str] = []
        quote = value[i] if value[i] in "\"'" else ""
        if quote:
            i += 1
        while i < n:
            char = value[i]
            if quote and char == quote:
                i += 1
                quote = ""
                break
            if not quote and char.isspace():
                break
            if char == "\\" and i + 1 < n:
                escaped, i = _escape(value, i + 1)
                word.append(escaped)
                continue
            word.append(char)
            i += 1
        if quote:
            return None
        words.append("".join(word))
    return words


def _escape(value: str, i: int) -> tuple[str, int]:
    char = value[i]
    if char in _ESCAPES:
        return _ESCAPES[char], i + 1
    if char == "x" and re.fullmatch(r"[0-9A-Fa-f]{2}", value[i + 1 : i + 3]):
        return chr(int(value[i + 1 : i + 3], 16)), i + 3
    if re.fullmatch(r"[0-7]{3}", value[i : i + 3]):
        return chr(int(value[i : i + 3], 8)), i + 3
    return char, i + 1  # unknown escape: systemd warns and keeps the character


def _cap_mask(words: Iterable[str], where: Location, problems: list[tuple[Location, str]]) -> int:
    mask = 0
    for word in words:
        low = word.lower()
        if low.isdigit() and int(low) < 64:
            mask |= 1 << int(low)
        elif low in _CAP_BITS:
            mask |= 1 << _CAP_BITS[low]
        else:
            hint = f" (write CAP_{word.upper()})" if "cap_" + low in _CAP_BITS else ""
            problems.append((where, f"systemd ignores the unknown capability {word!r}{hint}"))
    return mask


def _merge(
    current: int | None,
    value: str,
    bounding: bool,
    where: Location,
    problems: list[tuple[Location, str]],
) -> int | None:
    """systemd's ``config_parse_capability_set`` for one line."""
    invert = value.startswith("~")
    body = value[1:] if invert else value
    words = split_words(body)
    if words is None:
        problems.append((where, "unbalanced quotes in the capability list; line ignored"))
        return current
    total = _cap_mask(words, where, problems)
    unset = _ALL64 if bounding else 0
    state = unset if current is None else current
    if total == 0 or state == unset:
        state = (_ALL64 ^ total) if invert else total
    elif invert:
        state &= ~total & _ALL64
    else:
        state |= total
    if bounding and state == _ALL64:
        return None
    return state


def _names(mask: int) -> tuple[str, ...]:
    return tuple(CapSet(mask & _KNOWN_MASK).names())


def _nofile(value: str) -> tuple[int | None, int | None] | None:
    def one(text: str) -> int | None:
        text = text.strip().lower()
        if text == "infinity":
            return RLIM_INFINITY
        return int(text) if text.isdigit() else None

    soft_text, sep, hard_text = value.partition(":")
    soft = one(soft_text)
    hard = one(hard_text) if sep else soft
    if soft is None or hard is None or soft > hard:
        return None
    return soft, hard


@dataclass(frozen=True, slots=True)
class SocketUnit:
    """A parsed ``.socket``: the service it activates and the ports systemd binds for it."""

    name: str
    path: str
    service: str
    ports: tuple[PortFact, ...]
    problems: tuple[tuple[Location, str], ...] = ()


def unit_name(path: str) -> str:
    return posixpath.basename(path) if path != "-" else "stdin.service"


def parse_socket_unit(text: str, path: str) -> SocketUnit:
    """The ``[Socket]`` listeners of a ``.socket`` unit as PortFacts (source ``socket-unit``)."""
    problems: list[tuple[Location, str]] = []
    entries, _ = read_unit(text, path, problems)
    name = unit_name(path)
    base = name.removesuffix(".socket")
    listens: list[tuple[str, str, int]] = []  # (kind, address, line)
    protocol = ""
    service = ""
    accept = False
    for entry in entries:
        if entry.section != "Socket":
            continue
        if entry.key in ("ListenStream", "ListenDatagram", "ListenSequentialPacket"):
            if not entry.value:
                listens.clear()
            else:
                listens.append((entry.key, entry.value, entry.line))
        elif entry.key == "SocketProtocol":
            protocol = entry.value.lower()
        elif entry.key == "Service":
            service = entry.value
        elif entry.key == "Accept":
            accept = bool(parse_boolean(entry.value))
    ports: list[PortFact] = []
    for kind, address, line in listens:
        where = Location(path, line)
        port = _listen_port(address)
        if port is None:
            if not address.startswith(("/", "@", "vsock:")):
                problems.append((where, f"{kind}={address}: cannot read a port"))
            continue
        if kind == "ListenSequentialPacket":
            continue
        proto = "udp" if kind == "ListenDatagram" else "sctp" if protocol == "sctp" else "tcp"
        ports.append(PortFact(port, proto, None, "socket-unit", where))
    if not service:
        service = f"{base}@.service" if accept else f"{base}.service"
    return SocketUnit(name, path, service, tuple(ports), tuple(problems))


def _listen_port(address: str) -> int | None:
    address = address.strip()
    text: str | None = None
    if address.isdigit():
        text = address
    else:
        for pattern in (_IPV4_PORT, _IPV6_PORT):
            match = pattern.fullmatch(address)
            if match:
                text = match.group(1)
    if text is None:
        return None
    port = int(text)
    return port if 0 < port <= 65535 else None


@dataclass
class _Service:
    """The [Service] settings as systemd would have them after reading every line."""

    path: str
    problems: list[tuple[Location, str]] = field(default_factory=list)
    user: tuple[str, int] | None = None
    group: tuple[str, int] | None = None
    dynamic_user: tuple[bool, int] = (False, 0)
    groups: list[str] = field(default_factory=list)
    groups_line: int = 0
    ambient: int | None = None
    ambient_line: int = 0
    bounding: int | None = None
    bounding_line: int = 0
    nnp: tuple[bool, int] = (False, 0)
    implying: dict[str, tuple[bool, int]] = field(default_factory=dict)
    nofile: tuple[tuple[int | None, int | None] | None, int] = (None, 0)
    exec_start: list[tuple[str, int]] = field(default_factory=list)
    sockets: list[str] = field(default_factory=list)

    def loc(self, line: int) -> Location:
        return Location(self.path, line)

    def apply(self, entry: _Entry) -> None:
        key, value, line = entry.key, entry.value, entry.line
        where = self.loc(line)
        if key == "User":
            self.user = (value, line) if value else None
        elif key == "Group":
            self.group = (value, line) if value else None
        elif key == "DynamicUser":
            self.dynamic_user = (self._bool(value, key, where), line)
        elif key == "SupplementaryGroups":
            words = split_words(value) or []
            self.groups = [*self.groups, *words] if value else []
            self.groups_line = line
        elif key == "AmbientCapabilities":
            self.ambient = _merge(self.ambient, value, False, where, self.problems)
            self.ambient_line = line
        elif key == "CapabilityBoundingSet":
            self.bounding = _merge(self.bounding, value, True, where, self.problems)
            self.bounding_line = line
        elif key == "NoNewPrivileges":
            self.nnp = (self._bool(value, key, where), line)
        elif key in NNP_BOOLEAN_OPTIONS:
            self.implying[key] = (self._bool(value, key, where), line)
        elif key in NNP_LIST_OPTIONS:
            restricts = bool(value) and value not in ("~",)
            if key == "RestrictNamespaces":
                restricts = parse_boolean(value) is not False and value not in ("", "~")
            self.implying[key] = (restricts, line)
        elif key == "LimitNOFILE":
            limits = _nofile(value) if value else None
            if value and limits is None:
                self.problems.append((where, f"LimitNOFILE={value}: cannot read it; ignored"))
                return
            self.nofile = (limits, line)
        elif key == "ExecStart":
            self.exec_start = [*self.exec_start, (value, line)] if value else []
        elif key == "Sockets":
            self.sockets.extend(split_words(value) or [])

    def _bool(self, value: str, key: str, where: Location) -> bool:
        parsed = parse_boolean(value)
        if parsed is None:
            self.problems.append((where, f"{key}={value}: not a boolean; read as no"))
            return False
        return parsed


def _exec_start(value: str) -> tuple[str, tuple[str, ...] | None]:
    """(prefixes, argv) of one ``ExecStart=`` value; argv None when it cannot be split."""
    prefix_match = re.match(r"[@\-:+!]*", value)
    prefixes = prefix_match.group() if prefix_match else ""
    words = split_words(value[len(prefixes) :])
    if words is None:
        return prefixes, None
    if ";" in words:
        words = words[: words.index(";")]
    if "@" in prefixes and len(words) >= 2:
        words = [words[0], *words[2:]]  # the second word is only argv[0]
    return prefixes, tuple(words)


@never_raises("systemd")
def parse_systemd(text: str, path: str, sockets: Sequence[SocketUnit] = ()) -> ParsedFile:
    """A ``.service`` (or ``.socket``) unit; ``sockets`` are the candidates to pair with."""
    file_ignores, line_ignores, pragma_problems = comment_ignores(text, path, trailing=False)
    if path.endswith(".socket"):
        socket = parse_socket_unit(text, path)
        return ParsedFile(
            path,
            "systemd",
            problems=socket.problems + pragma_problems,
            file_ignores=file_ignores,
            line_ignores=line_ignores,
        )
    state = _Service(path)
    entries, sections = read_unit(text, path, state.problems)
    for entry in entries:
        if entry.section == "Service":
            state.apply(entry)
    name = unit_name(path)
    workloads: tuple[Workload, ...] = ()
    if "Service" in sections or any(e.section == "Service" for e in entries):
        workload = _workload(state, name, Location(path, sections.get("Service", 1)))
        workloads = (_attach(workload, name, sockets, state.sockets),)
    elif not entries:
        state.problems.append((Location(path), "no [Service] section: not a service unit?"))
    return ParsedFile(
        path=path,
        kind="systemd",
        workloads=workloads,
        problems=tuple(state.problems) + pragma_problems,
        file_ignores=file_ignores,
        line_ignores=line_ignores,
    )


def _workload(state: _Service, name: str, location: Location) -> Workload:
    where: dict[str, Location] = {}
    dynamic, dynamic_line = state.dynamic_user
    prefixes, argv, exec_line = "", None, 0
    if state.exec_start:
        value, exec_line = state.exec_start[0]
        prefixes, argv = _exec_start(value)
        if argv is None:
            state.problems.append((state.loc(exec_line), "ExecStart=: unbalanced quotes"))
        where["entrypoint"] = where["exec_prefixes"] = state.loc(exec_line)

    user: UserFact | None
    if state.user is not None:
        text = state.user[0] + (f":{state.group[0]}" if state.group else "")
        user = user_fact(text, state.loc(state.user[1]))
    elif dynamic:
        group = f":{state.group[0]}" if state.group else ""
        user = UserFact(f"(dynamic){group}", None, None, state.loc(dynamic_line))
    elif state.group is not None:
        user = UserFact(f"root:{state.group[0]}", 0, parse_id(state.group[0]), None)
    else:
        user = UserFact("root", 0, 0, None)  # system services run as root by default
    if dynamic:
        where["dynamic_user"] = state.loc(dynamic_line)
    groups = tuple(state.groups)
    if groups:
        where["groups"] = state.loc(state.groups_line)

    ambient = _names(state.ambient or 0)
    bounding = _names(state.bounding) if state.bounding is not None else None
    if ambient:
        where["ambient_caps"] = state.loc(state.ambient_line)
    if bounding is not None:
        where["bounding_caps"] = state.loc(state.bounding_line)
    caps_line = state.ambient_line if ambient else state.bounding_line
    caps_location = state.loc(caps_line) if caps_line else None

    nnp, nnp_line, reason = _no_new_privs(state, user, ambient)

    if "+" in prefixes:  # full privileges: none of User=, capabilities, NoNewPrivileges=
        user = UserFact("root", 0, 0, state.loc(exec_line))
        groups, ambient, bounding = (), (), None
        nnp, nnp_line, reason = False, 0, ""
    elif "!" in prefixes.replace("!!", ""):
        user = UserFact("root", 0, 0, state.loc(exec_line))  # credentials left to the program
        groups = ()

    nofile, nofile_line = state.nofile
    ports = argv_ports(argv or (), where.get("entrypoint"))
    return Workload(
        source_kind="systemd",
        name=name,
        location=location,
        user=user,
        groups=groups,
        caps_location=caps_location,
        no_new_privs=nnp,
        no_new_privs_location=state.loc(nnp_line) if nnp else None,
        no_new_privs_reason=reason,
        ports=ports,
        nofile=nofile,
        nofile_location=state.loc(nofile_line) if nofile is not None else None,
        entrypoint=argv,
        ambient_caps=ambient,
        bounding_caps=bounding,
        dynamic_user=dynamic,
        exec_prefixes=prefixes,
        field_locations=tuple(where.items()),
    )


def _no_new_privs(
    state: _Service, user: UserFact | None, ambient: tuple[str, ...]
) -> tuple[bool, int, str]:
    explicit, explicit_line = state.nnp
    if explicit:
        return True, explicit_line, "NoNewPrivileges=yes"
    dynamic, dynamic_line = state.dynamic_user
    if dynamic:
        return True, dynamic_line, "implied by DynamicUser=yes"
    unprivileged = (dynamic or (user is not None and user.is_root is False)) and (
        "cap_sys_admin" not in ambient
    )
    if not unprivileged:
        return False, 0, ""
    for key, (enabled, line) in sorted(state.implying.items(), key=lambda item: item[1][1]):
        if enabled:
            return True, line, f"implied by {key}= for a unit without CAP_SYS_ADMIN"
    return False, 0, ""


def _template(name: str) -> str:
    prefix, at, _ = name.partition("@")
    return f"{prefix}@.service" if at else name


def _attach(
    workload: Workload, name: str, sockets: Sequence[SocketUnit], listed: Sequence[str]
) -> Workload:
    matched = [
        socket
        for socket in sockets
        if socket.service in (name, _template(name)) or socket.name in listed
    ]
    if not matched:
        return workload
    ports = tuple(port for socket in matched for port in socket.ports)
    return replace(workload, ports=ports + workload.ports, socket_unit=matched[0].name)


def socket_candidates(service_path: str, text: str) -> list[str]:
    """Sibling ``.socket`` files that may pair with this service (for the caller to read)."""
    directory = posixpath.dirname(service_path)
    name = unit_name(service_path)
    base = name.removesuffix(".service").partition("@")[0]
    names = [f"{base}.socket"]
    entries, _ = read_unit(text, service_path)
    for entry in entries:
        if entry.section == "Service" and entry.key == "Sockets":
            names.extend(split_words(entry.value) or [])
    return [posixpath.join(directory, n) for n in dict.fromkeys(names)]


def parse_systemd_units(files: Mapping[str, str]) -> list[ParsedFile]:
    """Parse several unit files at once, pairing each service with the sockets among them."""
    sockets = [
        parse_socket_unit(text, path) for path, text in files.items() if path.endswith(".socket")
    ]
    return [parse_systemd(text, path, sockets) for path, text in files.items()]
