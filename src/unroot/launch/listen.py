"""``unroot run --listen``: a listen spec, parsed and checked, as one frozen value (pure).

Pure: nothing here touches files, sockets, processes or syscalls; a bad spec is a
:class:`~unroot.errors.UsageError` with one line of text.

Listen specs (``-l``/``--listen``)::

    [NAME=]ADDRESS[,OPTION=VALUE]...

    80  :80  tcp://:80          every address: dual-stack [::] with IPV6_V6ONLY=0, or 0.0.0.0
                                when the kernel has no IPv6 (as Go's net.Listen(":80") does)
    0.0.0.0:80  127.0.0.1:80    IPv4 only
    [::]:443  [::1]:8443        IPv6 only: IPV6_V6ONLY=1 (for [::] unless ,v6only=0; a
                                specific address is always IPv6-only, an IPv4-mapped one never)
    udp://127.0.0.1:53          a datagram socket (no listen backlog)
    unix:/run/app.sock          a stream socket file (default mode 0666, like systemd's
                                SocketMode=), options mode=0660, owner=USER[:GROUP]
    unix:@app                   the abstract namespace (no file, no mode or owner)

Options: ``backlog=N`` (tcp, unix; default SOMAXCONN), ``v6only=0|1`` (IPv6 and every-address
tcp/udp), ``mode=OCTAL`` and ``owner=USER[:GROUP]`` (unix files). ``NAME`` goes to
``LISTEN_FDNAMES`` and must be what sd_listen_fds_with_names(3) accepts: 1 to 255 printable ASCII
characters without ``:`` (and, for this syntax, without ``=`` or ``,``). Host names are refused:
an address is an IP literal, so what is bound never depends on DNS.
"""

from __future__ import annotations

from unroot.errors import ParseError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Self


#: Values are plain frozen classes, not dataclasses: ``dataclasses`` imports ``inspect``, which
#: alone costs more launch latency than everything else ``unroot run`` does.
class Frozen:
    """Equality, hashing, repr and immutability from ``__slots__``, like a frozen dataclass."""

    __slots__: tuple[str, ...] = ()

    def _init(self, **fields: object) -> None:
        for key, value in fields.items():
            object.__setattr__(self, key, value)

    def _fields(self) -> tuple[object, ...]:
        return tuple(getattr(self, key) for key in self.__slots__)

    def __setattr__(self, key: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen")

    def __delattr__(self, key: str) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self) or not isinstance(other, Frozen):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._fields()))

    def __repr__(self) -> str:
        inner = ", ".join(f"{key}={getattr(self, key)!r}" for key in self.__slots__)
        return f"{type(self).__name__}({inner})"

    def replace(self, **changes: object) -> Self:
        """A copy with some fields changed (dataclasses.replace)."""
        fields = {key: getattr(self, key) for key in self.__slots__}
        unknown = set(changes) - set(fields)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field {sorted(unknown)[0]!r}")
        fields.update(changes)
        return type(self)(**fields)


#: src/basic/fd-util.h FDNAME_MAX.
FDNAME_MAX = 255
#: sizeof(sockaddr_un.sun_path) is 108: a path needs a terminating NUL, an abstract name a
#: leading one.
UNIX_PATH_MAX = 107
DEFAULT_UNIX_MODE = 0o666
INT_MAX = (1 << 31) - 1
_OPTIONS = {
    "tcp": ("backlog", "v6only"),
    "udp": ("v6only",),
    "unix": ("backlog", "mode", "owner"),
}
DIGITS = frozenset("0123456789")
_HEX = frozenset("0123456789abcdefABCDEF")


class ListenSpec(Frozen):
    """One ``--listen`` SPEC. ``host`` is an IP literal (IPv6 without brackets, perhaps with a
    ``%scope``) or None for every address; ``path`` is an absolute path or ``@name``;
    ``v6only`` is IPV6_V6ONLY for an IPv6 address, and for every address True (IPv6 only) or
    None (dual-stack, the default); ``backlog`` None means SOMAXCONN; ``owner_uid`` and
    ``owner_gid`` are filled in from ``owner``/``group`` by :func:`make_plan`."""

    __slots__ = (
        "backlog",
        "group",
        "host",
        "mode",
        "name",
        "owner",
        "owner_gid",
        "owner_uid",
        "path",
        "port",
        "text",
        "transport",
        "v6only",
    )
    text: str
    name: str | None
    transport: str
    host: str | None
    port: int
    path: str | None
    backlog: int | None
    v6only: bool | None
    mode: int | None
    owner: str | None
    group: str | None
    owner_uid: int | None
    owner_gid: int | None

    def __init__(
        self,
        *,
        text: str,
        transport: str,
        name: str | None = None,
        host: str | None = None,
        port: int = 0,
        path: str | None = None,
        backlog: int | None = None,
        v6only: bool | None = None,
        mode: int | None = None,
        owner: str | None = None,
        group: str | None = None,
        owner_uid: int | None = None,
        owner_gid: int | None = None,
    ) -> None:
        self._init(
            text=text,
            name=name,
            transport=transport,
            host=host,
            port=port,
            path=path,
            backlog=backlog,
            v6only=v6only,
            mode=mode,
            owner=owner,
            group=group,
            owner_uid=owner_uid,
            owner_gid=owner_gid,
        )

    @property
    def family(self) -> str:
        """``inet``, ``inet6``, ``unix``, or ``any`` (every address: decided at bind time)."""
        if self.transport == "unix":
            return "unix"
        if self.host is None:
            return "inet6" if self.v6only else "any"
        return "inet6" if ":" in self.host else "inet"

    @property
    def stream(self) -> bool:
        return self.transport != "udp"

    @property
    def abstract(self) -> bool:
        return self.path is not None and self.path.startswith("@")

    @property
    def address(self) -> str:
        """How messages name the socket: ``127.0.0.1:80``, ``[::1]:8443``, ``:80``,
        ``udp://127.0.0.1:53``, ``unix:/run/app.sock``."""
        if self.transport == "unix":
            return f"unix:{self.path}"
        if self.host is None:
            where = f"[::]:{self.port}" if self.v6only else f":{self.port}"
        elif ":" in self.host:
            where = f"[{self.host}]:{self.port}"
        else:
            where = f"{self.host}:{self.port}"
        return f"udp://{where}" if self.transport == "udp" else where


def parse_listen_spec(text: str) -> ListenSpec:
    """Parse one SPEC (see the module doc); ParseError says what is wrong with it."""
    if not isinstance(text, str):
        raise ParseError(f"a listen spec is text, not {text!r}")
    if not text:
        raise ParseError("empty listen spec (examples: :80, 127.0.0.1:80, unix:/run/app.sock)")
    if "\0" in text:
        raise ParseError(f"listen spec {text!r} contains a NUL byte")
    head, *option_items = text.split(",")
    name: str | None = None
    before, eq, after = head.partition("=")
    if eq and ":" not in before:
        name, head = before, after
        _check_fd_name(name, text)
    if head.startswith("unix:"):
        transport, address = "unix", head[len("unix:") :]
    elif head.startswith("tcp://"):
        transport, address = "tcp", head[len("tcp://") :]
    elif head.startswith("udp://"):
        transport, address = "udp", head[len("udp://") :]
    elif "://" in head:
        scheme = head.partition("://")[0]
        raise ParseError(f"listen spec {text!r}: unknown scheme {scheme!r} (tcp://, udp://, unix:)")
    else:
        transport, address = "tcp", head
    options = _parse_options(option_items, transport, text)

    fields: dict[str, object] = {"text": text, "name": name, "transport": transport}
    if transport == "unix":
        fields["path"] = _check_unix_path(address, text)
        abstract = address.startswith("@")
        if abstract and ("mode" in options or "owner" in options):
            raise ParseError(f"listen spec {text!r}: an abstract socket has no file mode or owner")
        if not abstract:
            mode = options.get("mode")
            fields["mode"] = DEFAULT_UNIX_MODE if mode is None else _parse_mode(mode, text)
        if "owner" in options:
            owner, _, group = options["owner"].partition(":")
            if not owner or ":" in group or (":" in options["owner"] and not group):
                raise ParseError(f"listen spec {text!r}: owner must be USER or USER:GROUP")
            fields["owner"] = owner
            fields["group"] = group or None
    else:
        host, port = _parse_host_port(address, text)
        fields["host"], fields["port"] = host, port
        flag = options.get("v6only")
        if flag is not None:
            if host is not None and ":" not in host:
                raise ParseError(f"listen spec {text!r}: v6only applies to IPv6 addresses only")
            if flag not in ("0", "1"):
                raise ParseError(f"listen spec {text!r}: v6only must be 0 or 1, not {flag!r}")
        if host is not None and ":" in host:
            fields["v6only"] = _v6only(host, flag, text)
        elif flag is not None:
            fields["v6only"] = flag == "1"
    if "backlog" in options:
        fields["backlog"] = _parse_int(options["backlog"], "backlog", 0, INT_MAX, text)
    return ListenSpec(**fields)  # type: ignore[arg-type]


def _check_fd_name(name: str, text: str) -> None:
    """fdname_is_valid() of systemd: 1..255 printable ASCII characters, no ':'."""
    if not name:
        raise ParseError(f"listen spec {text!r}: empty name before '='")
    if len(name) > FDNAME_MAX:
        raise ParseError(f"listen spec {text!r}: the name is longer than {FDNAME_MAX} characters")
    for ch in name:
        if not " " <= ch <= "~":
            raise ParseError(
                f"listen spec {text!r}: the name may hold printable ASCII only, not {ch!r}"
            )


def _parse_options(items: list[str], transport: str, text: str) -> dict[str, str]:
    allowed = _OPTIONS[transport]
    options: dict[str, str] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise ParseError(f"listen spec {text!r}: expected OPTION=VALUE, not {item!r}")
        if key not in allowed:
            raise ParseError(
                f"listen spec {text!r}: unknown option {key!r} for {transport} "
                f"(known: {', '.join(allowed)})"
            )
        if key in options:
            raise ParseError(f"listen spec {text!r}: option {key!r} given twice")
        options[key] = value
    return options


def _parse_int(value: str, what: str, low: int, high: int, text: str) -> int:
    if not value or not set(value) <= DIGITS or len(value) > 10 or not low <= int(value) <= high:
        raise ParseError(f"listen spec {text!r}: {what} must be a number {low}..{high}")
    return int(value)


def _parse_mode(value: str, text: str) -> int:
    digits = value.removeprefix("0o")
    if not digits or len(digits) > 4 or not set(digits) <= set("01234567"):
        raise ParseError(f"listen spec {text!r}: mode must be octal like 0660, not {value!r}")
    mode = int(digits, 8)
    if mode > 0o777:
        raise ParseError(f"listen spec {text!r}: a socket's mode is at most 0777, not {value!r}")
    return mode


def _check_unix_path(path: str, text: str) -> str:
    if path.startswith("@"):
        size = len(path[1:].encode("utf-8", "surrogateescape")) if path[1:] else 0
        if not size:
            raise ParseError(f"listen spec {text!r}: empty abstract socket name")
    else:
        if not path.startswith("/"):
            raise ParseError(f"listen spec {text!r}: a unix socket needs an absolute path or @name")
        try:
            size = len(path.encode("utf-8", "surrogateescape"))
        except UnicodeEncodeError:
            raise ParseError(f"listen spec {text!r}: the path is not valid text") from None
    if size > UNIX_PATH_MAX:
        raise ParseError(
            f"listen spec {text!r}: a unix socket address is at most {UNIX_PATH_MAX} bytes"
        )
    return path


def _parse_host_port(address: str, text: str) -> tuple[str | None, int]:
    host: str | None
    if address.startswith("["):
        inner, bracket, rest = address[1:].partition("]")
        if not bracket or not rest.startswith(":"):
            raise ParseError(f"listen spec {text!r}: expected [IPV6]:PORT")
        _ipv6(inner, text)
        host, port_text = inner, rest[1:]
    elif address.count(":") > 1:
        raise ParseError(f"listen spec {text!r}: write IPv6 addresses in brackets: [::1]:PORT")
    elif ":" in address:
        host_text, _, port_text = address.partition(":")
        host = _ipv4(host_text, text) if host_text else None
    else:
        host, port_text = None, address
    if not port_text or not set(port_text) <= DIGITS or len(port_text) > 5:
        raise ParseError(f"listen spec {text!r}: expected a port number 0..65535")
    port = int(port_text)
    if port > 65535:
        raise ParseError(f"listen spec {text!r}: port {port} is above 65535")
    return host, port


def _ipv4(host: str, text: str) -> str:
    parts = host.split(".")
    if len(parts) != 4 or not all(
        part
        and set(part) <= DIGITS
        and len(part) <= 3
        and int(part) <= 255
        and (part == "0" or not part.startswith("0"))
        for part in parts
    ):
        raise ParseError(
            f"listen spec {text!r}: {host!r} is not an IP address (host names are not resolved: "
            "write 127.0.0.1:PORT or [::1]:PORT)"
        )
    return host


def _ipv6(host: str, text: str) -> list[int]:
    """The eight groups of an IPv6 literal in RFC 4291 section 2.2 text form, with an optional
    ``%scope`` (an interface); ParseError if it is not one."""
    address, percent, scope = host.partition("%")
    if percent and (not scope or not all(ch.isascii() and ch.isprintable() for ch in scope)):
        raise ParseError(f"listen spec {text!r}: bad IPv6 scope in {host!r}")
    bad = ParseError(f"listen spec {text!r}: {host!r} is not an IPv6 address")
    tail: list[int] = []
    if "." in address:  # a trailing dotted quad stands for the last two groups (::ffff:1.2.3.4)
        head, colon, quad = address.rpartition(":")
        try:
            octets = [int(part) for part in _ipv4(quad, text).split(".")]
        except ParseError:
            raise bad from None
        if not colon:
            raise bad
        tail = [octets[0] << 8 | octets[1], octets[2] << 8 | octets[3]]
        address = head + ":" if head.endswith(":") else head  # "::1.2.3.4" → "::"
    if address.count("::") > 1:
        raise bad
    if "::" in address:
        left, _, right = address.partition("::")
        pieces = (left.split(":") if left else []), (right.split(":") if right else [])
        missing = 8 - len(tail) - len(pieces[0]) - len(pieces[1])
        if missing < 1:
            raise bad
        texts = [*pieces[0], *["0"] * missing, *pieces[1]]
    else:
        texts = address.split(":") if address else []
        if len(texts) + len(tail) != 8:
            raise bad
    if not all(piece and len(piece) <= 4 and set(piece) <= _HEX for piece in texts):
        raise bad
    return [int(piece, 16) for piece in texts] + tail


def _v6only(host: str, flag: str | None, text: str) -> bool:
    """IPV6_V6ONLY for a socket bound to ``host``: inet6_bind() forces 1 on a specific address
    and refuses (EINVAL) an IPv4-mapped one with 1; only ``[::]`` has a choice (default 1)."""
    groups = _ipv6(host, text)
    if groups[:6] == [0, 0, 0, 0, 0, 0xFFFF]:
        if flag == "1":
            raise ParseError(f"listen spec {text!r}: an IPv4-mapped address needs v6only=0")
        return False
    if any(groups):
        if flag == "0":
            raise ParseError(
                f"listen spec {text!r}: a socket bound to a specific IPv6 address is IPv6-only "
                "(the kernel sets IPV6_V6ONLY); v6only=0 applies to [::] and :PORT"
            )
        return True
    return flag != "0"
