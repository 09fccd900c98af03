"""Small pieces the parsers share (pure, no I/O)."""

from __future__ import annotations

import functools
import re
import shlex
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import ParamSpec

from unroot.sources.exec_argv import exec_chain_argv
from unroot.sources.parsed import Location, ParsedFile, PortFact, UserFact
from unroot.sources.ports import ports_from_argv

#: RLIM_INFINITY (unlimited: compose ``-1``, systemd ``infinity``); the kernel caps NOFILE at
#: fs.nr_open, so for open files it means "as many as the kernel allows".
RLIM_INFINITY = (1 << 64) - 1
_NUMBER = re.compile(r"[0-9]+")
_RULE_SPLIT = re.compile(r"[\s,;]+")
_P = ParamSpec("_P")
INTERNAL_ERROR = "internal error while reading this file (please report it)"


def never_raises(kind: str) -> Callable[[Callable[_P, ParsedFile]], Callable[_P, ParsedFile]]:
    """The parsers' contract: whatever the input, a ParsedFile (a bug becomes a problem)."""

    def decorate(parse: Callable[_P, ParsedFile]) -> Callable[_P, ParsedFile]:
        @functools.wraps(parse)
        def guarded(*args: _P.args, **kwargs: _P.kwargs) -> ParsedFile:
            try:
                return parse(*args, **kwargs)
            except Exception as exc:
                path = str(args[1] if len(args) > 1 else kwargs.get("path", "-"))
                message = f"{INTERNAL_ERROR}: {type(exc).__name__}: {exc}"
                return ParsedFile(path, kind, problems=((Location(path), message),))

        return guarded

    return decorate


def parse_id(text: str) -> int | None:
    """A numeric uid/gid as written (ASCII digits only), else None (a name)."""
    text = text.strip()
    return int(text) if _NUMBER.fullmatch(text) else None


def user_fact(text: str, location: Location | None) -> UserFact:
    """``"1000"``, ``"1000:1000"``, ``"www"``, ``"0:0"``, ``"root"`` → UserFact; names: None."""
    text = text.strip()
    name, _, group = text.partition(":")
    return UserFact(text, parse_id(name), parse_id(group) if group else None, location)


def rule_ids(values: str | Iterable[str]) -> tuple[str, ...]:
    """``"UR104, ur105"`` or ``["UR104"]`` → ``("UR104", "UR105")`` (order kept, no duplicates)."""
    items = [values] if isinstance(values, str) else list(values)
    found: list[str] = []
    for item in items:
        for token in _RULE_SPLIT.split(item.strip()):
            rule = token.strip().upper()
            if rule and rule not in found:
                found.append(rule)
    return tuple(found)


def argv_ports(
    argv: Sequence[str], location: Location | None, env: Mapping[str, str] | None = None
) -> tuple[PortFact, ...]:
    """Ports named on a command line (``--port 80``, ``-addr :443``): sources/ports.py's scan;
    ``env``: the process's environment, which a ``sh -c`` script in it expands with.

    An argv that starts with a flag (compose ``command: ["--port", "80"]``, k8s ``args``) is
    the arguments of the image's ENTRYPOINT: an empty program name stands in for it.
    """
    if not argv:
        return ()
    words = tuple(argv)
    if words[0].startswith("-"):
        words = ("", *words)
    return ports_from_argv(words, location, env=env)


#: one piece of a word as ``shlex.split`` reads it (POSIX mode): blanks, plain characters, a
#: '…' or "…" quote, a backslash-escaped character, or what opens and never closes
_SHLEX_PIECE = re.compile(
    r"""([ \t\r\n]+)|([^ \t\r\n'"\\]+)|'([^']*)'|"([^"\\]*(?:\\[\s\S][^"\\]*)*)"|\\([\s\S])|(.)""",
    re.S,
)
_DQ_ESCAPE = re.compile(r'\\(["\\])')


def shlex_split(text: str) -> list[str]:
    """``shlex.split(text)`` (POSIX mode, no comments) in time linear in ``text``: the stdlib
    builds each word a character at a time, quadratic on a long word.  Raises ValueError with
    shlex's messages."""
    words: list[str] = []
    word: list[str] | None = None
    for m in _SHLEX_PIECE.finditer(text):
        blank, plain, single, double, escaped, stray = m.groups()
        if blank is not None:
            if word is not None:
                words.append("".join(word))
            word = None
            continue
        if stray is not None:
            raise ValueError("No escaped character" if stray == "\\" else "No closing quotation")
        word = word if word is not None else []
        if double is not None:
            word.append(_DQ_ESCAPE.sub(r"\1", double))
        else:
            word.append(next(p for p in (plain, single, escaped) if p is not None))
    if word is not None:
        words.append("".join(word))
    return words


#: an absolute path inside a word or a line of configuration (``--tls-key=/etc/x/key.pem``,
#: ``ssl_certificate_key /etc/letsencrypt/live/x/privkey.pem;``); not a URL's path
ABSOLUTE_PATH = re.compile(r"(?<![\w.:/$%-])(/[\w.@+~-]+(?:/[\w.@+~-]+)*)")


def absolute_paths(text: str) -> list[str]:
    """The absolute paths named in ``text`` (``/`` alone is not one)."""
    return [p.rstrip("/") for p in ABSOLUTE_PATH.findall(text) if p.rstrip("/")]


def config_paths(name: str, text: str, limit: int = 1 << 20) -> tuple[tuple[str, str], ...]:
    """The absolute paths a configuration file names, each with ``name:line`` (comment lines
    starting with ``#`` or ``;`` skipped; at most ``limit`` characters read)."""
    found: list[tuple[str, str]] = []
    for number, line in enumerate(text[:limit].split("\n"), start=1):
        if line.lstrip().startswith(("#", ";", "//")):
            continue
        found.extend((path, f"{name}:{number}") for path in absolute_paths(line))
    return tuple(found)


#: file names of scripts: the kernel runs their interpreter, ignoring their file capabilities
SCRIPT_NAME = re.compile(r"\.(?:py|sh|bash|pl|rb|js|mjs|php|lua|tcl)$")


def is_script_name(path: str) -> bool:
    return bool(SCRIPT_NAME.search(path))


def heredoc_script(content: str, line: int) -> str:
    """Why a file a here-document writes is a script ("" when its first line is no ``#!``),
    and the program it ends by exec'ing when it does (``exec /usr/sbin/pdns_server "$@"``)."""
    first = content.lstrip("\n").split("\n", 1)[0]
    if not first.startswith("#!"):
        return ""
    execs = [p for m in _EXEC.finditer(content) if (p := _exec_target(m.group(1)))]
    then = f" and execs {execs[-1]}" if execs else ""
    return f"its here-document at line {line} starts with {first}{then}"


#: ``exec …`` lines of a shell script
_EXEC = re.compile(r"^\s*exec\s+(.+?)\s*$", re.MULTILINE)


def _exec_target(command: str) -> str:
    """The program an ``exec`` line finally runs, through wrappers (``exec gosu pdns
    /usr/sbin/pdns_server`` → ``/usr/sbin/pdns_server``); "" when not a literal name."""
    try:
        words = shlex.split(command, comments=True)
    except ValueError:
        return ""
    links = exec_chain_argv(words, None) if words and words[0] != "-a" else []
    program = links[-1].program if links and links[-1].role == "service" else ""
    return program if re.fullmatch(r"[\w./+-]+", program) else ""


def script_execs(reason: str) -> str:
    """The program a script's :func:`heredoc_script` reason says it execs ("" if none)."""
    return reason.rpartition(" and execs ")[2] if " and execs " in reason else ""
