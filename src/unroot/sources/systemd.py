"""systemd units → a :class:`Workload` per ``.service``; a paired ``.socket`` adds its ports.

Follows systemd 252 (Debian 12), systemd.syntax(7), systemd.unit(5), systemd.exec(5),
systemd.service(5), systemd.socket(5), systemd.resource-control(5); each rule below was checked
against the v252 source (``src/core/load-fragment.c``, ``execute.c``, ``src/shared/dropin.c``):

* lines starting with ``#``/``;`` are comments; a trailing ``\\`` joins the next line with a
  space, and comment lines inside such a continuation are skipped.  A line that is only a
  build-time placeholder (``@SERVICE_WATCHDOG@`` in a meson ``*.service.in`` read with ``--kind
  systemd``) is passed over, and said in the findings' assumptions.
* **Drop-ins** (systemd.unit(5) "Description"; ``unit_file_find_dropin_paths``): the ``*.conf``
  files of ``NAME.service.d/``, of the template's ``NAME@.service.d/``, of each dash prefix
  (``foo-bar-baz.service`` → ``foo-bar-.service.d/``, ``foo-.service.d/``) and of the type-level
  ``service.d/``, in the unit's directory — and, when that directory is one of systemd's unit
  paths (``…/etc/systemd/system``, ``…/usr/lib/systemd/system`` …), in the same tree's other
  unit paths too.  The files are read after the unit in the lexical order of their *names*
  across all those directories; of two files with the same name, the one in the more specific /
  higher-priority directory hides the other (``conf_files_list_strv``).  Each line is applied
  exactly as if it followed the unit's own lines, so an empty assignment resets a list
  (``ExecStart=`` then a new ``ExecStart=`` — the ``systemctl edit`` pattern;
  ``AmbientCapabilities=``), and every fact points at the file:line that set it.
* ``AmbientCapabilities=``/``CapabilityBoundingSet=``: each line is a set (``~`` inverts it);
  an empty line or the first assignment replaces, later lines OR in (or, inverted, AND NOT);
  ``~`` alone means every capability, which for the bounding set is "not limited" (the
  ``config_parse_capability_set`` merge rule: "replace" whenever the set still has its initial
  value — all bits for the bounding set, none for the ambient set).  Names need the ``CAP_``
  prefix (any case) or are a number; other words are ignored by systemd and reported here.
* ``NoNewPrivileges=`` is forced by ``DynamicUser=yes`` always, and — when the unit's process
  lacks CAP_SYS_ADMIN, i.e. a non-root ``User=`` (or ``DynamicUser=``) without
  ``AmbientCapabilities=CAP_SYS_ADMIN`` — by any of LockPersonality=, MemoryDenyWriteExecute=,
  PrivateDevices=, ProtectClock=, ProtectHostname=, ProtectKernelLogs=,
  ProtectKernelModules=, ProtectKernelTunables=, RestrictAddressFamilies=,
  RestrictNamespaces=, RestrictRealtime=, RestrictSUIDSGID=, SystemCallArchitectures=,
  SystemCallFilter=, SystemCallLog= (systemd.exec(5) v252 "NoNewPrivileges=" and each
  option's own text; ``context_has_no_new_privileges`` in src/core/execute.c).  A boolean that
  cannot be read (or is empty) is ignored: the earlier value stays (``config_parse_bool``).
* ``PrivateUsers=`` (v252: a boolean; ``self``/``identity``/``full`` in v256+): a user
  namespace of the service's own.  For a system service it is created *after* the network
  namespace (``exec_child``: "Users with CAP_SYS_ADMIN can set up user namespaces last"), so
  the host's network namespace — or ``PrivateNetwork=``'s new one — belongs to the initial user
  namespace and no capability of the service counts there.  Nothing implies it in v252
  (``DynamicUser=`` does not).  ``PrivateNetwork=yes``: a new network namespace
  (``ip_unprivileged_port_start`` 1024); ``NetworkNamespacePath=``: one the unit cannot show.
* ``RestrictAddressFamilies=`` (``config_parse_address_families``): the first line decides
  allow-list or ``~`` deny-list, later lines add to it or take from it, ``none`` allows nothing,
  an empty line lifts the restriction; ``socket()`` of a family outside it fails with
  EAFNOSUPPORT.  ``SocketBindAllow=``/``SocketBindDeny=`` (``parse_socket_bind_item``):
  ``[ipv4|ipv6:][tcp|udp:]PORT[-PORT]`` or ``any``, empty resets.  ``SecureBits=``: the words of
  securebits(7), each line replaces.
* ``ExecStart=`` prefixes ``@ - : + ! !!``: ``+`` runs the command as root with no
  User=/capability/NoNewPrivileges=/PrivateUsers=/SecureBits=/RestrictAddressFamilies=
  restrictions (cgroup settings such as SocketBindDeny= and the network namespace still
  apply); ``!`` ignores only User=/Group=/SupplementaryGroups=; ``!!`` is a no-op on kernels
  with ambient capabilities.  More than one ``ExecStart=`` outside ``Type=oneshot`` makes
  systemd refuse the unit ("Service has more than one ExecStart= setting") — typically a
  drop-in that forgot the empty ``ExecStart=`` before its own.
* ``LimitNOFILE=`` N, SOFT:HARD or ``infinity``; an empty value resets to the default.
* A socket pairs with ``NAME.service`` (``NAME@.service`` with ``Accept=yes``), or with the
  unit named by its ``Service=``, or with a service listing it in ``Sockets=``.

Known and recorded as assumptions rather than modelled: ``PermissionsStartOnly=`` (it changes
only ExecStartPre=/ExecStartPost=/ExecReload=/ExecStop*=, never ExecStart=), ``IPAddressDeny=``
(filters packets; bind() succeeds), ``SecureBits=keep-caps``/``no-setuid-fixup`` (they matter
only for the program's own setuid(): execve clears keep-caps), ``JoinsNamespaceOf=``.
Unit files shadowed by a higher-priority copy and ``/dev/null`` masks are not handled; ``%``
specifiers and ``$VAR`` are expanded (``systemd_specifiers``); a user unit runs as its user.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from unroot.model.caps import CAP_NAMES, CapSet
from unroot.sources import systemd_specifiers as specifiers
from unroot.sources._shared import (
    RLIM_INFINITY,
    argv_ports,
    never_raises,
    parse_id,
    user_fact,
)
from unroot.sources.parsed import (
    Location,
    ParsedFile,
    PortFact,
    SocketBindRule,
    UnitSandbox,
    UserFact,
    Workload,
)
from unroot.sources.systemd_dropins import is_dropin, order_dropins

_ALL64 = (1 << 64) - 1
_KNOWN_MASK = CapSet.all().mask
_CAP_BITS = {name: bit for bit, name in enumerate(CAP_NAMES)}
#: an empty unit file (UR100 reports it as an info: nothing runs, nothing is judged)
MASKED_EMPTY = (
    "an empty unit file is masked: systemd never starts it (as with a link to /dev/null), so "
    "nothing is checked"
)
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
#: securebits(7) words of ``SecureBits=`` (src/shared/securebits-util.c) → bit
SECURE_BITS = {
    "noroot": 1 << 0,
    "noroot-locked": 1 << 1,
    "no-setuid-fixup": 1 << 2,
    "no-setuid-fixup-locked": 1 << 3,
    "keep-caps": 1 << 4,
    "keep-caps-locked": 1 << 5,
}
#: PrivateUsers= values that create a user namespace (v252: booleans; v256+: self, identity;
#: v257+: full)
_PRIVATE_USERS_ON = frozenset({"self", "identity", "full"})
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
_ADDRESS_FAMILY = re.compile(r"AF_[A-Z0-9]+")
_PORT_RANGE = re.compile(r"(\d{1,5})(?:-(\d{1,5}))?")
_ANY = "any"  # SocketBindAllow=any: every family, protocol and port


@dataclass(frozen=True, slots=True)
class _Entry:
    section: str
    key: str
    value: str
    line: int
    path: str = "-"

    @property
    def location(self) -> Location:
        return Location(self.path, self.line)


_PLACEHOLDER = re.compile(r"@[A-Za-z_][A-Za-z0-9_]*@")


def read_unit(
    text: str,
    path: str,
    problems: list[tuple[Location, str]] | None = None,
    placeholders: list[tuple[str, Location]] | None = None,
) -> tuple[list[_Entry], dict[str, int]]:
    """The ``Key=value`` entries in order, and the line of each section header; a line that is
    only a build-time placeholder (``@SERVICE_WATCHDOG@``) goes into ``placeholders``."""
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
        if _PLACEHOLDER.fullmatch(line):
            if placeholders is not None:
                placeholders.append((line, Location(path, number)))
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            if problems is not None:
                problems.append((Location(path, number), f"not Key=Value: {line[:60]!r}"))
            continue
        if not section and problems is not None:
            problems.append((Location(path, number), f"{key.strip()}= is outside any [section]"))
        entries.append(_Entry(section, key.strip(), value.strip(), number, path))
    if pending:
        line = " ".join(pending).strip()
        key, sep, value = line.partition("=")
        if sep and key.strip():
            entries.append(_Entry(section, key.strip(), value.strip(), start, path))
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


def _socket_bind_rule(value: str, where: Location) -> SocketBindRule | None:
    """``parse_socket_bind_item``: ``:``-separated tokens tried in the order family, protocol,
    ports; each parser at most once; an empty token or anything left over is invalid."""
    family = proto = ""
    ports: tuple[int, int] | None = None
    stage = 0  # 0: family may come; 1: protocol may come; 2: ports may come; 3: done
    for token in value.split(":"):
        if not token:
            return None
        if stage == 0 and token in ("ipv4", "ipv6"):
            family, stage = token, 1
            continue
        if stage <= 1 and token in ("tcp", "udp"):
            proto, stage = token, 2
            continue
        if stage <= 2 and token == _ANY:
            stage = 3
            continue
        match = _PORT_RANGE.fullmatch(token) if stage <= 2 else None
        if match is None:
            return None
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) else low
        if not 1 <= low <= high <= 65535:
            return None
        ports, stage = (low, high), 3
    return SocketBindRule(family, proto, ports, value, where)


@dataclass(frozen=True, slots=True)
class SocketUnit:
    """A parsed ``.socket``: the service it activates and the ports systemd binds for it."""

    name: str
    path: str
    service: str
    ports: tuple[PortFact, ...]
    problems: tuple[tuple[Location, str], ...] = ()
    notes: tuple[str, ...] = ()  # what its specifiers assumed (a user unit's %t …)


def unit_name(path: str) -> str:
    return posixpath.basename(path) if path != "-" else "stdin.service"


def parse_socket_unit(text: str, path: str, dropins: Sequence[tuple[str, str]] = ()) -> SocketUnit:
    """The ``[Socket]`` listeners of a ``.socket`` unit (and its drop-ins, in order) as
    PortFacts (source ``socket-unit``)."""
    problems: list[tuple[Location, str]] = []
    entries, _ = read_unit(text, path, problems)
    for dropin_path, dropin_text in dropins:
        entries.extend(read_unit(dropin_text, dropin_path, problems)[0])
    name = unit_name(path)
    base = name.removesuffix(".socket")
    spec = specifiers.Specifiers(name, path)
    listens: list[tuple[str, str, Location]] = []  # (kind, address, where)
    protocol = ""
    service = ""
    accept = False
    for entry in entries:
        if entry.section != "Socket":
            continue
        if entry.key in ("ListenStream", "ListenDatagram", "ListenSequentialPacket"):
            address, bad = spec.expand(entry.value), specifiers.unknown_specifier
            if not entry.value:
                listens.clear()
            elif address is None:
                problems.append((entry.location, bad(entry.key, entry.value)))
            else:
                listens.append((entry.key, address, entry.location))
        elif entry.key == "SocketProtocol":
            protocol = entry.value.lower()
        elif entry.key == "Service":
            service = entry.value
        elif entry.key == "Accept":
            accept = bool(parse_boolean(entry.value))
    ports: list[PortFact] = []
    for kind, address, where in listens:
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
    return SocketUnit(name, path, service, tuple(ports), tuple(problems), spec.notes())


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


Setting = tuple[str, Location]


@dataclass
class _Service:
    """The [Service] settings as systemd would have them after reading every line of the unit
    and its drop-ins; each remembers the file:line that set it."""

    path: str
    problems: list[tuple[Location, str]] = field(default_factory=list)
    user: Setting | None = None
    group: Setting | None = None
    dynamic_user: tuple[bool, Location | None] = (False, None)
    groups: list[str] = field(default_factory=list)
    groups_at: Location | None = None
    ambient: int | None = None
    ambient_at: Location | None = None
    bounding: int | None = None
    bounding_at: Location | None = None
    nnp: tuple[bool, Location | None] = (False, None)
    implying: dict[str, tuple[bool, Location, int]] = field(default_factory=dict)
    nofile: tuple[tuple[int | None, int | None] | None, Location | None] = (None, None)
    exec_start: list[Setting] = field(default_factory=list)
    sockets: list[str] = field(default_factory=list)
    service_type: str = "simple"
    private_users: Location | None = None
    private_network: Location | None = None
    netns_path: Setting | None = None
    families: tuple[bool, set[str]] | None = None
    families_at: Location | None = None
    bind_allow: list[SocketBindRule] = field(default_factory=list)
    bind_deny: list[SocketBindRule] = field(default_factory=list)
    securebits: int | None = None
    securebits_at: Location | None = None
    noted: dict[str, Location] = field(default_factory=dict)
    placeholders: list[tuple[str, Location]] = field(default_factory=list)
    applied: int = 0
    spec: specifiers.Specifiers = field(default_factory=lambda: specifiers.Specifiers("", "-"))
    environment: dict[str, str] = field(default_factory=dict)
    environment_files: list[str] = field(default_factory=list)
    env_texts: dict[str, str] = field(default_factory=dict)
    fatal: tuple[Location, str] | None = None  # a setting that makes systemd refuse the unit

    def apply(self, entry: _Entry) -> None:
        key, value, where = entry.key, entry.value, entry.location
        self.applied += 1
        if key == "ExecStart":
            self._exec_start(value, where)
            return
        if key in specifiers.SPECIFIER_KEYS:
            expanded = self.spec.expand(value)
            if expanded is None:
                self.problems.append((where, specifiers.unknown_specifier(key, value)))
                return
            value = expanded
        if key == "User":
            self.user = (value, where) if value else None
        elif key == "Group":
            self.group = (value, where) if value else None
        elif key == "DynamicUser":
            self._set_bool(key, value, where, "dynamic_user")
        elif key == "SupplementaryGroups":
            words = split_words(value) or []
            self.groups = [*self.groups, *words] if value else []
            self.groups_at = where
        elif key == "AmbientCapabilities":
            self.ambient = _merge(self.ambient, value, False, where, self.problems)
            self.ambient_at = where
        elif key == "CapabilityBoundingSet":
            self.bounding = _merge(self.bounding, value, True, where, self.problems)
            self.bounding_at = where
        elif key == "NoNewPrivileges":
            self._set_bool(key, value, where, "nnp")
        elif key in NNP_BOOLEAN_OPTIONS:
            parsed = self._bool(value, key, where)
            if parsed is not None:
                self.implying[key] = (parsed, where, self.applied)
        elif key in NNP_LIST_OPTIONS:
            restricts = bool(value) and value != "~"
            if key == "RestrictNamespaces":
                restricts = parse_boolean(value) is not False and value not in ("", "~")
            self.implying[key] = (restricts, where, self.applied)
            if key == "RestrictAddressFamilies":
                self._address_families(value, where)
        elif key == "LimitNOFILE":
            limits = _nofile(value) if value else None
            if value and limits is None:
                self.problems.append((where, f"LimitNOFILE={value}: cannot read it; ignored"))
                return
            self.nofile = (limits, where)
        elif key == "Environment":  # an empty assignment resets the list
            self.environment = {**self.environment, **dict(specifiers.parse_environment(value))}
            self.environment = self.environment if value else {}
        elif key == "EnvironmentFile":
            self.environment_files = [*self.environment_files, value.lstrip("-")] if value else []
        elif key == "Sockets":
            self.sockets.extend(split_words(value) or [])
        elif key == "Type":
            self.service_type = value.strip().lower() or "simple"
        else:
            self._sandbox(key, value, where)

    def _exec_start(self, value: str, where: Location) -> None:
        """config_parse_exec(): the specifiers of each word are resolved after it is unquoted
        (by :func:`specifiers.expand_exec`); one that cannot be makes systemd ignore the line
        when it has the ``-`` prefix, and otherwise refuse the unit (``-ENOEXEC``)."""
        if not value:
            self.exec_start = []
            return
        prefixes, argv = _exec_start(value)
        bad = [word for word in argv or () if self.spec.expand(word) is None]
        if bad and "-" in prefixes:
            self.problems.append(
                (where, f"{specifiers.unknown_exec_specifier(bad[0])}; systemd ignores the line")
            )
            return
        if bad and self.fatal is None:
            self.fatal = (where, specifiers.unknown_exec_specifier(bad[0], fatal=True))
        self.exec_start = [*self.exec_start, (value, where)]

    def _sandbox(self, key: str, value: str, where: Location) -> None:
        if key == "PrivateUsers":
            low = value.strip().lower()
            enabled = True if low in _PRIVATE_USERS_ON else self._bool(value, key, where)
            if enabled is not None:
                self.private_users = where if enabled else None
        elif key == "PrivateNetwork":
            enabled = self._bool(value, key, where)
            if enabled is not None:
                self.private_network = where if enabled else None
        elif key == "NetworkNamespacePath":
            self.netns_path = (value, where) if value else None
        elif key in ("SocketBindAllow", "SocketBindDeny"):
            rules = self.bind_allow if key == "SocketBindAllow" else self.bind_deny
            if not value:
                rules.clear()
                return
            rule = _socket_bind_rule(value.strip(), where)
            if rule is None:
                self.problems.append((where, f"{key}={value}: systemd cannot parse it; ignored"))
                return
            rules.append(rule)
        elif key == "SecureBits":
            words = split_words(value) or []
            unknown = [w for w in words if w not in SECURE_BITS]
            if unknown:
                self.problems.append(
                    (where, f"SecureBits=: systemd ignores {', '.join(map(repr, unknown))}")
                )
            self.securebits = sum({SECURE_BITS[w] for w in words if w in SECURE_BITS})
            self.securebits_at = where
        elif key in ("PermissionsStartOnly", "IPAddressDeny", "IPAddressAllow"):
            if value and (key != "PermissionsStartOnly" or parse_boolean(value)):
                self.noted[key] = where
            else:
                self.noted.pop(key, None)

    def _address_families(self, value: str, where: Location) -> None:
        if not value:
            self.families, self.families_at = None, where
            return
        self.families_at = where
        if value.strip() == "none":
            self.families = (True, set())
            return
        invert = value.startswith("~")
        words = split_words(value[1:] if invert else value)
        if words is None:
            self.problems.append((where, "RestrictAddressFamilies=: unbalanced quotes; ignored"))
            return
        if self.families is None:
            self.families = (not invert, set())
        allow, families = self.families
        for word in words:
            if not _ADDRESS_FAMILY.fullmatch(word):
                self.problems.append((where, f"systemd ignores the address family {word!r}"))
            elif (not invert) == allow:
                families.add(word)
            else:
                families.discard(word)

    def _set_bool(self, key: str, value: str, where: Location, name: str) -> None:
        parsed = self._bool(value, key, where)
        if parsed is not None:
            setattr(self, name, (parsed, where))

    def _bool(self, value: str, key: str, where: Location) -> bool | None:
        parsed = parse_boolean(value)
        if parsed is None:
            self.problems.append((where, f"{key}={value}: not a boolean; systemd ignores the line"))
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
def parse_systemd(
    text: str,
    path: str,
    sockets: Sequence[SocketUnit] = (),
    dropins: Sequence[tuple[str, str]] = (),
    environment_files: Mapping[str, str] | None = None,
) -> ParsedFile:
    """A ``.service`` (or ``.socket``) unit; ``sockets`` are the candidates to pair with,
    ``dropins`` its drop-in files ``(path, text)`` in the order systemd reads them
    (:func:`order_dropins`); ``environment_files``: its readable ``EnvironmentFile=``s."""
    if path.endswith(".socket"):
        socket = parse_socket_unit(text, path, dropins)
        return ParsedFile(path, "systemd", problems=socket.problems)
    if not text:  # systemd's null_or_empty(): an empty unit file is masked, drop-ins or not
        return ParsedFile(path, "systemd", problems=((Location(path), MASKED_EMPTY),))
    state = _Service(path, spec=specifiers.Specifiers(unit_name(path), path))
    state.env_texts = dict(environment_files or {})
    entries, sections = read_unit(text, path, state.problems, state.placeholders)
    for dropin_path, dropin_text in dropins:
        more, more_sections = read_unit(
            dropin_text, dropin_path, state.problems, state.placeholders
        )
        entries.extend(more)
        for section in more_sections:
            sections.setdefault(section, 0)
    for entry in entries:
        if entry.section == "Service":
            state.apply(entry)
    name = unit_name(path)
    workloads: tuple[Workload, ...] = ()
    if "Service" in sections or any(e.section == "Service" for e in entries):
        refused = state.fatal or _refused(state)
        if not state.exec_start:
            settings = [(e.section, e.key, e.value) for e in entries]
            no_exec = specifiers.no_exec_start(settings, oneshot=state.service_type == "oneshot")
            state.problems.append((Location(path, sections.get("Service") or 1), no_exec))
        if refused is not None:
            state.problems.append(refused)
        else:
            line = sections.get("Service") or 1
            workload = _workload(state, name, Location(path, line))
            workloads = (_attach(workload, name, sockets, state.sockets),)
    elif not entries:
        state.problems.append((Location(path), "no [Service] section: not a service unit?"))
    return ParsedFile(
        path=path,
        kind="systemd",
        workloads=workloads,
        problems=tuple(state.problems),
    )


def _refused(state: _Service) -> tuple[Location, str] | None:
    """service_verify(): systemd refuses a non-oneshot service with several ExecStart=."""
    if state.service_type == "oneshot" or len(state.exec_start) < 2:
        return None
    first, second = state.exec_start[0][1], state.exec_start[1][1]
    hint = ""
    if first.file != second.file:
        hint = (
            f" — a drop-in that replaces the command must reset it first with an empty "
            f"`ExecStart=` line before its own (the first one is {first.file}:{first.line})"
        )
    return (
        second,
        "systemd refuses to load the unit: more than one ExecStart= (only Type=oneshot may "
        f"have several){hint}",
    )


def _workload(state: _Service, name: str, location: Location) -> Workload:
    where: dict[str, Location] = {}
    dynamic, dynamic_at = state.dynamic_user
    prefixes, argv, exec_at = "", None, None
    notes: list[str] = []
    if state.exec_start:
        value, exec_at = state.exec_start[0]
        prefixes, argv = _exec_start(value)
        if argv is None:
            state.problems.append((exec_at, "ExecStart=: unbalanced quotes"))
        else:
            argv, notes, bad = specifiers.expand_exec(state, argv, ":" not in prefixes)
            state.problems.extend((exec_at, message) for message in bad)
        where["entrypoint"] = where["exec_prefixes"] = exec_at

    user: UserFact | None
    if state.user is not None:
        text = state.user[0] + (f":{state.group[0]}" if state.group else "")
        user = user_fact(text, state.user[1])
    elif dynamic:
        group = f":{state.group[0]}" if state.group else ""
        user = UserFact(f"(dynamic){group}", None, None, dynamic_at)
    elif state.group is not None:
        user = UserFact(f"root:{state.group[0]}", 0, parse_id(state.group[0]), None)
    elif state.spec.user:
        user = UserFact("USER", None, None, None)  # a user manager runs its units as its user
        notes.append("a user unit: it runs as the user whose manager starts it (written USER)")
    else:
        user = UserFact("root", 0, 0, None)  # system services run as root by default
    if dynamic and dynamic_at is not None:
        where["dynamic_user"] = dynamic_at
    groups = tuple(state.groups)
    if groups and state.groups_at is not None:
        where["groups"] = state.groups_at

    ambient = _names(state.ambient or 0)
    bounding = _names(state.bounding) if state.bounding is not None else None
    if state.ambient_at is not None:  # also when emptied: the line that reset it
        where["ambient_caps"] = state.ambient_at
    if bounding is not None and state.bounding_at is not None:
        where["bounding_caps"] = state.bounding_at
    caps_location = state.ambient_at if ambient else state.bounding_at

    nnp, nnp_at, reason = _no_new_privs(state, user, ambient)
    sandbox = _sandbox(state)

    if "+" in prefixes:  # full privileges: none of User=, capabilities, sandboxing
        user = UserFact("root", 0, 0, exec_at)
        groups, ambient, bounding = (), (), None
        nnp, nnp_at, reason = False, None, ""
        sandbox = replace(
            sandbox,
            private_users=None,
            address_families=None,
            securebits=None,
            notes=(*sandbox.notes, "ExecStart=+…: sandboxing settings do not apply to it"),
        )
    elif "!" in prefixes.replace("!!", ""):
        user = UserFact("root", 0, 0, exec_at)  # credentials left to the program
        groups = ()

    nofile, nofile_at = state.nofile
    env = specifiers.process_environment(state)
    ports = argv_ports(argv or (), where.get("entrypoint"), env)
    return Workload(
        source_kind="systemd",
        name=name,
        location=location,
        user=user,
        groups=groups,
        caps_location=caps_location,
        no_new_privs=nnp,
        no_new_privs_location=nnp_at if nnp else None,
        no_new_privs_reason=reason,
        ports=ports,
        nofile=nofile,
        nofile_location=nofile_at if nofile is not None else None,
        entrypoint=argv,
        ambient_caps=ambient,
        bounding_caps=bounding,
        dynamic_user=dynamic,
        exec_prefixes=prefixes,
        field_locations=tuple(where.items()),
        unit_sandbox=sandbox if sandbox != UnitSandbox() else None,
        notes=tuple(dict.fromkeys((*state.spec.notes(), *notes))),
    )


_NOTES = {
    "PermissionsStartOnly": (
        "PermissionsStartOnly=yes only lifts User= and the capability settings from "
        "ExecStartPre=/ExecStartPost=/ExecReload=/ExecStop=: ExecStart= keeps them"
    ),
    "IPAddressDeny": "IPAddressDeny= filters packets, not bind(): the service still binds",
    "IPAddressAllow": "IPAddressAllow= filters packets, not bind(): the service still binds",
}
_SETUID_BITS = SECURE_BITS["keep-caps"] | SECURE_BITS["no-setuid-fixup"]


def _sandbox(state: _Service) -> UnitSandbox:
    notes = [f"{_NOTES[key]} ({where.file}:{where.line})" for key, where in state.noted.items()]
    notes.extend(
        f"{line} ({where.file}:{where.line}) is a build-time placeholder: not read (the unit "
        "the build generates may set more)"
        for line, where in state.placeholders
    )
    if state.securebits and state.securebits & _SETUID_BITS:
        notes.append(
            "SecureBits=keep-caps/no-setuid-fixup only change what the program's own setuid() "
            "keeps (execve clears keep-caps): not modelled"
        )
    families = None
    if state.families is not None:
        families = (state.families[0], tuple(sorted(state.families[1])))
    netns_path = state.netns_path[0] if state.netns_path else ""
    private_network = state.private_network
    if state.netns_path is not None:
        private_network = state.netns_path[1]  # "If this option is used PrivateNetwork= has no
        # effect" (systemd.exec(5))
    return UnitSandbox(
        private_users=state.private_users,
        private_network=private_network,
        network_namespace_path=netns_path,
        address_families=families,
        address_families_location=state.families_at if families is not None else None,
        socket_bind_allow=tuple(state.bind_allow),
        socket_bind_deny=tuple(state.bind_deny),
        securebits=state.securebits,
        securebits_location=state.securebits_at if state.securebits is not None else None,
        notes=tuple(notes),
    )


def _no_new_privs(
    state: _Service, user: UserFact | None, ambient: tuple[str, ...]
) -> tuple[bool, Location | None, str]:
    explicit, explicit_at = state.nnp
    if explicit:
        return True, explicit_at, "NoNewPrivileges=yes"
    dynamic, dynamic_at = state.dynamic_user
    if dynamic:
        return True, dynamic_at, "implied by DynamicUser=yes"
    unprivileged = user is not None and user.is_root is False and "cap_sys_admin" not in ambient
    if not unprivileged:
        return False, None, ""
    for key, (enabled, where, _) in sorted(state.implying.items(), key=lambda item: item[1][2]):
        if enabled:
            return True, where, f"implied by {key}= for a unit without CAP_SYS_ADMIN"
    return False, None, ""


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
    notes = tuple(dict.fromkeys((*workload.notes, *(n for s in matched for n in s.notes))))
    return replace(workload, ports=ports + workload.ports, socket_unit=matched[0].name, notes=notes)


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


def parse_systemd_units(
    files: Mapping[str, str], environment: Mapping[str, Mapping[str, str]] | None = None
) -> list[ParsedFile]:
    """Parse several unit files at once: each service and socket with its drop-ins among
    ``files``, each service paired with the sockets among them (``environment``: a unit's
    readable ``EnvironmentFile=``s).  A drop-in yields a ParsedFile of its own (its syntax
    problems, and later its ``# unroot: ignore`` pragmas; no workload)."""
    environment = environment or {}
    units = [p for p in files if not is_dropin(p)]
    dropins = [p for p in files if is_dropin(p)]
    ordered = {unit: order_dropins(unit, dropins) for unit in units}
    sockets = [
        parse_socket_unit(files[path], path, [(d, files[d]) for d in ordered[path]])
        for path in units
        if path.endswith(".socket")
    ]
    results = [
        parse_systemd(
            files[path],
            path,
            sockets,
            [(d, files[d]) for d in ordered[path]],
            environment.get(path),
        )
        for path in units
    ]
    for path in dropins:
        problems: list[tuple[Location, str]] = []
        read_unit(files[path], path, problems)
        results.append(ParsedFile(path, "systemd", problems=tuple(problems)))
    return results
