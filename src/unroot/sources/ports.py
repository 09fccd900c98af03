"""Ports a command line says its server listens on (``--port 80``, ``-addr :443`` …).

Shared by the Dockerfile (ENTRYPOINT/CMD), compose (``command:``), Kubernetes (``args:``) and
systemd (``ExecStart=``) parsers.  The scan is deliberately conservative — a false port makes a
false "bind fails" finding:

* a flag whose name says port (``--port 80``, ``-p 53``, ``--http-port=80``, ``-dns.port 53``)
  takes a bare number;
* a flag whose name says listen/address/bind (``--listen :80``, ``-addr :443``,
  ``--bind 0.0.0.0:80``, ``-b :80``, ``-l 127.0.0.1:80``, ``--web.listen-address=:9090``,
  ``--entrypoints.web.address=:80``) takes ``[HOST]:PORT``, ``[V6]:PORT``, ``scheme://HOST:PORT``
  or a comma-separated list of those (a bare number too, except for ``-l``/``-b``);
* a few programs take the port positionally: ``python -m http.server [PORT]`` (8000 when
  absent), ``php -S HOST:PORT``, ``socat TCP-LISTEN:PORT``, ``nc -l [-p] PORT``.

``sh -c 'SCRIPT'`` arguments are split into their commands and scanned too; there ``$PORT`` and
``${PORT:-80}`` are expanded with ``env`` (the runtime environment, e.g. the image's ``ENV``) as
the shell would.  Words of ``argv`` itself are literal (an exec form is never expanded: the
caller interpolates first where its format does, as compose does); anything unresolved is
skipped.  UDP is assumed only where the flag says so (``--udp-port``,
``-dns.port``: DNS serves both).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from unroot.sources.parsed import Location, PortFact
from unroot.sources.shell import expand_word, parse_shell, shell_c_script

_PORT_NAME = re.compile(r"(?:^|[.\-_])(?:port|ports|http-port|https-port|listen-port)$")
_ADDR_NAME = re.compile(
    r"(?:^|[.\-_])(?:listen|addr|address|bind|listen-address|listen-addr|http|https|"
    r"http-addr|https-addr|http-address|https-address|host-port)$"
)
#: A port flag whose name says it is the *other* end of a connection (``--smtp-port 25``,
#: ``--db.port``, ``--upstream-port``): a client setting, not a listen port.  Skipping one loses
#: at most a finding; reading it as a listen port invents one.
_REMOTE_WORDS = frozenset(
    {
        "smtp", "mail", "imap", "pop", "pop3", "db", "database", "redis", "postgres",
        "postgresql", "pg", "mysql", "mariadb", "mongo", "mongodb", "memcache", "memcached",
        "ldap", "upstream", "backend", "remote", "target", "ssh", "sftp", "ftp", "amqp",
        "rabbitmq", "kafka", "nats", "etcd", "consul", "vault", "statsd", "syslog", "jaeger",
        "zipkin", "otlp", "collector", "sentry", "elasticsearch", "es", "dest", "destination",
    }
)  # fmt: skip
_SHORT_PORT = frozenset({"p", "P"})
_SHORT_ADDR = frozenset({"l", "b", "a"})
_HOSTPORT = re.compile(
    r"(?:(?:tcp|udp|tcp4|tcp6|udp4|udp6|http|https|h2c|ws|wss)://)?"
    r"(?:\[[0-9A-Fa-f:.%a-z]*\]|[A-Za-z0-9_.*-]*)?:(?P<port>\d{1,5})/?(?P<rest>[^:]*)"
)


def ports_from_argv(
    argv: Sequence[str],
    location: Location | None,
    *,
    env: Mapping[str, str | None] | None = None,
) -> tuple[PortFact, ...]:
    """Ports the command line ``argv`` listens on, as ``PortFact(source="command-line")``."""
    found: dict[tuple[int, str], PortFact] = {}
    for words in _commands(list(argv), env or {}):
        for port, proto in _scan(words):
            found.setdefault((port, proto), PortFact(port, proto, None, "command-line", location))
    return tuple(found.values())


def _commands(argv: list[str], env: Mapping[str, str | None]) -> Iterable[list[str]]:
    """argv itself (literal: an exec form is not expanded), plus each command of an
    ``sh -c`` script in it (one level deep), expanded as the shell would with ``env``."""
    yield [word for word in argv if "$" not in word]
    script = shell_c_script(argv)
    if script is not None:
        for command in parse_shell(script[0]).commands:
            words = [expand_word(raw, env) for raw in command.words]
            yield [word.text for word in words if word.complete]


def _port(text: str) -> int | None:
    if text.isdigit() and len(text) <= 5:
        value = int(text)
        return value if 0 < value < 65536 else None
    return None


def _addresses(value: str, *, bare_ok: bool) -> list[int]:
    ports: list[int] = []
    for raw in value.split(","):
        item = raw.strip()
        if not item or item.startswith(("unix:", "fd:", "fd/", "fd@", "/", "systemd:")):
            continue
        bare = _port(item)
        if bare is not None:
            if bare_ok:
                ports.append(bare)
            continue
        m = _HOSTPORT.fullmatch(item)
        if m and (port := _port(m.group("port"))) is not None:
            ports.append(port)
    return ports


def _flag(word: str) -> tuple[str, str | None] | None:
    """("name", inline value or None) for ``--name=v``/``-name=v``/``--name``/``-p80``."""
    if not word.startswith("-") or word in ("-", "--") or _port(word[1:]) is not None:
        return None
    body = word.lstrip("-")
    if "=" in body:
        name, value = body.split("=", 1)
        return name.lower(), value
    if not word.startswith("--") and len(body) > 1 and body[0] in "pP" and body[1:].isdigit():
        return body[0], body[1:]  # -p8080
    return body.lower(), None


def _scan(words: list[str]) -> Iterable[tuple[int, str]]:
    if not words:
        return
    base = words[0].rsplit("/", 1)[-1]
    yield from _positional(base, words)
    for i, word in enumerate(words[1:], start=1):
        flag = _flag(word)
        if flag is None:
            continue
        name, value = flag
        if value is None:
            value = words[i + 1] if i + 1 < len(words) else ""
        proto = "udp" if ("udp" in name or name.startswith("dns")) else "tcp"
        if _REMOTE_WORDS.intersection(re.split(r"[.\-_]", name)[:-1]):
            continue
        if name in _SHORT_PORT or _PORT_NAME.search(name):
            ports = _addresses(value, bare_ok=True)
            if name in _SHORT_PORT and ":" in value:
                ports = []  # `-p 80:8080` is a publish spec, not a listen port
        elif name in _SHORT_ADDR:
            ports = _addresses(value, bare_ok=False)
        elif _ADDR_NAME.search(name):
            ports = _addresses(value, bare_ok=True)
        else:
            continue
        for port in ports:
            yield port, proto
            if name.startswith("dns"):
                yield port, "tcp"


def _positional(base: str, words: list[str]) -> Iterable[tuple[int, str]]:
    if base.startswith("python") and "-m" in words:
        at = words.index("-m")
        if at + 1 < len(words) and words[at + 1] in ("http.server", "SimpleHTTPServer"):
            rest = words[at + 2 :]
            skip = False
            for word in rest:
                if skip:
                    skip = False
                    continue
                if word in ("-b", "--bind", "-d", "--directory", "--protocol"):
                    skip = True
                    continue
                if (port := _port(word)) is not None:
                    yield port, "tcp"
                    return
            yield 8000, "tcp"
    elif base.startswith("php") and "-S" in words:
        at = words.index("-S")
        if at + 1 < len(words):
            yield from ((p, "tcp") for p in _addresses(words[at + 1], bare_ok=False))
    elif base == "socat":
        for word in words[1:]:
            m = re.match(r"(TCP|UDP|TCP4|TCP6|UDP4|UDP6)-LISTEN:(\d+)", word, re.I)
            if m and (port := _port(m.group(2))) is not None:
                yield port, "udp" if m.group(1).lower().startswith("udp") else "tcp"
    elif base in ("nc", "ncat", "netcat") and "-l" in words:
        for word in words[words.index("-l") + 1 :]:
            if (port := _port(word)) is not None:
                yield port, "udp" if "-u" in words else "tcp"
                return
