"""systemd's ``%`` specifiers (systemd.unit(5) "Specifiers") and the ``$VAR`` / ``${VAR}``
substitution of ``ExecStart=`` (systemd.service(5) "Command lines").

Specifiers are resolved when the unit is loaded, in the settings that take them (``ExecStart=``,
``ListenStream=``, ``User=``, ``Environment=`` …).  Their values depend on the unit's name and
on the manager that loads it: the system manager (``/run``, ``/etc``, ``/var/lib``, root) or a
user's manager (``$XDG_RUNTIME_DIR`` = ``/run/user/UID``, ``~/.config``, ``~/.local/state``, that
user).  A unit is a user unit when it lives in one of the user unit paths
(``…/systemd/user/``, ``~/.config/systemd/user/``).  What cannot be known from the file — the
host name, the machine id, the user's uid and home — is written as a placeholder
(``/run/user/UID``, ``/home/USER``) and said in an assumption, never an error.  An unknown
specifier makes systemd ignore the whole setting ("Failed to resolve unit specifiers"); the
caller reports that.

Environment substitution happens when the command runs, after the specifiers: ``${NAME}`` is
replaced in place by the variable's value (one word, whatever it contains); ``$NAME`` standing
as a word of its own is replaced by the value split at whitespace (zero or more words); ``$$``
is a literal ``$``.  A variable that nothing sets is empty.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

_USER_DIR = re.compile(r"(?:^|/)(?:systemd/user(?:\.control)?|\.config/systemd/user)(?:/|$)")


def is_user_unit(path: str) -> bool:
    """A unit in one of the user managers' unit paths (systemd.unit(5) "User Unit Search
    Path"): ``/usr/lib/systemd/user``, ``/etc/systemd/user``, ``~/.config/systemd/user`` …"""
    return bool(_USER_DIR.search(posixpath.dirname(path)))


def _unescape(text: str) -> str:
    """systemd-escape(1) undone: ``-`` is ``/``, ``\\xNN`` a byte."""
    text = text.replace("-", "/")
    return re.sub(r"\\x([0-9a-fA-F]{2})", lambda m: chr(int(m.group(1), 16)), text)


def _unescape_path(text: str) -> str:
    """``%f``, ``%I`` as a path: the unescaped name with a leading ``/``."""
    plain = _unescape(text)
    return plain if plain.startswith("/") else "/" + plain


@dataclass
class Specifiers:
    """The specifier values of one unit, and the assumptions its settings used."""

    name: str  # the unit's full name: foo@bar.service
    path: str  # where its fragment is (for %y / %Y and system vs user)
    assumed: dict[str, str] = field(default_factory=dict)  # specifier → what was assumed

    @property
    def user(self) -> bool:
        return is_user_unit(self.path)

    def _table(self) -> dict[str, tuple[str, str]]:
        """specifier → (value, assumption or "")."""
        stem = self.name.rpartition(".")[0] if "." in self.name else self.name
        prefix, at, instance = stem.partition("@")
        last = prefix.rpartition("-")[2] if "-" in prefix else prefix
        who = "the user whose manager runs it"
        system = not self.user
        table: dict[str, tuple[str, str]] = {
            "n": (self.name, ""),
            "N": (stem, ""),
            "p": (prefix, ""),
            "P": (_unescape(prefix), ""),
            "i": (instance, ""),
            "I": (_unescape(instance), ""),
            "j": (last, ""),
            "J": (_unescape(last), ""),
            "f": (_unescape_path(instance if at else prefix), ""),
            "y": (self.path, ""),
            "Y": (posixpath.dirname(self.path), ""),
            "T": (
                "/tmp",  # noqa: S108 - a path systemd substitutes, not one unroot writes
                "%T is /tmp (TMPDIR unset in the manager's environment)",
            ),
            "V": (
                "/var/tmp",  # noqa: S108 - likewise
                "%V is /var/tmp (TMPDIR unset in the manager's environment)",
            ),
            "%": ("%", ""),
        }
        if system:
            table.update(
                {
                    "t": ("/run", ""),
                    "S": ("/var/lib", ""),
                    "C": ("/var/cache", ""),
                    "L": ("/var/log", ""),
                    "E": ("/etc", ""),
                    "D": ("/usr/share", ""),
                    "h": ("/root", ""),
                    "s": ("/bin/sh", ""),
                    "u": ("root", ""),
                    "U": ("0", ""),
                    "g": ("root", ""),
                    "G": ("0", ""),
                    "d": (
                        f"/run/credentials/{self.name}",
                        f"%d is $CREDENTIALS_DIRECTORY, /run/credentials/{self.name}",
                    ),
                }
            )
        else:
            home = f"%h is the home of {who}, written /home/USER"
            table.update(
                {
                    "t": ("/run/user/UID", f"%t is $XDG_RUNTIME_DIR of {who}: /run/user/UID"),
                    "S": ("/home/USER/.local/state", home + " (%S is ~/.local/state)"),
                    "C": ("/home/USER/.cache", home + " (%C is ~/.cache)"),
                    "L": ("/home/USER/.local/state/log", home + " (%L is ~/.local/state/log)"),
                    "E": ("/home/USER/.config", home + " (%E is ~/.config)"),
                    "D": ("/home/USER/.local/share", home + " (%D is ~/.local/share)"),
                    "h": ("/home/USER", home),
                    "s": ("/bin/sh", f"%s is the login shell of {who}, written /bin/sh"),
                    "u": ("USER", f"%u is the name of {who}, written USER"),
                    "U": ("UID", f"%U is the uid of {who}, written UID"),
                    "g": ("USER", f"%g is the primary group of {who}, written USER"),
                    "G": ("GID", f"%G is the gid of {who}, written GID"),
                    "d": (
                        f"/run/user/UID/credentials/{self.name}",
                        f"%d is $CREDENTIALS_DIRECTORY of {who}",
                    ),
                }
            )
        for letter, what in (
            ("H", "host name"),
            ("l", "short host name"),
            ("q", "pretty host name"),
            ("m", "machine id"),
            ("b", "boot id"),
            ("v", "kernel release"),
            ("a", "architecture"),
            ("o", "OS id (os-release ID=)"),
            ("w", "OS version id"),
            ("W", "OS variant id"),
            ("B", "OS build id"),
            ("M", "OS image id"),
            ("A", "OS image version"),
        ):
            placeholder = what.upper().replace(" ", "_").split("(")[0].strip("_")
            table[letter] = (placeholder, f"%{letter} is this host's {what}, written {placeholder}")
        return table

    def expand(self, value: str) -> str | None:
        """``value`` with its specifiers resolved once, as ``specifier_printf()`` does (systemd
        v252 ``src/shared/specifier.c``): ``%%`` is ``%``; a trailing ``%``, or one before a
        character that is not a letter or digit, stays as written; None when a letter or digit
        is no specifier (``-EBADSLT``: systemd then ignores the setting, or for ``ExecStart=``
        refuses the unit)."""
        if "%" not in value:
            return value
        table = self._table()
        out: list[str] = []
        i = 0
        while i < len(value):
            char = value[i]
            if char != "%":
                out.append(char)
                i += 1
                continue
            letter = value[i + 1 : i + 2]
            i += 2
            if letter in table:
                resolved, assumption = table[letter]
                if assumption:
                    self.assumed.setdefault(letter, assumption)
                out.append(resolved)
            elif letter.isascii() and letter.isalnum():
                return None  # -EBADSLT: a letter or digit systemd does not know
            else:  # a trailing "%", or "%" before a character no specifier can be: kept
                out.append("%" + letter)
        return "".join(out)

    def notes(self) -> tuple[str, ...]:
        return tuple(self.assumed.values())


_BRACED = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$\$")
_WORD = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


def substitute(
    words: Sequence[str], env: Mapping[str, str], unset: list[str] | None = None
) -> tuple[str, ...]:
    """``ExecStart=``'s words after systemd's environment substitution (``replace_env_argv``):
    a word that is exactly ``$NAME`` becomes the value's whitespace-separated words (none when
    unset or empty); ``${NAME}`` anywhere is replaced in place; ``$$`` is ``$``.  The names of
    variables that nothing set are appended to ``unset``."""

    def value(name: str) -> str:
        if name not in env and unset is not None and name not in unset:
            unset.append(name)
        return env.get(name, "")

    out: list[str] = []
    for word in words:
        whole = _WORD.fullmatch(word)
        if whole is not None:
            out.extend(value(whole.group(1)).split())
            continue
        out.append(_BRACED.sub(lambda m: "$" if m.group(0) == "$$" else value(m.group(1)), word))
    return tuple(out)


def environment_words(value: str) -> list[str] | None:
    """``Environment=``'s words as ``extract_first_word(EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE)``
    splits them: a quote may open anywhere in a word (``LOGGING="--log-level=info"``,
    ``C="x y"``); None when one stays open."""
    words: list[str] = []
    word: list[str] | None = None
    quote = ""
    i = 0
    while i < len(value):
        char = value[i]
        if quote:
            if char == quote:
                quote = ""
            elif char == "\\" and i + 1 < len(value):
                i += 1
                word = word if word is not None else []
                word.append(value[i])
            else:
                word = word if word is not None else []
                word.append(char)
        elif char.isspace():
            if word is not None:
                words.append("".join(word))
                word = None
        elif char in "\"'":
            quote = char
            word = word if word is not None else []
        elif char == "\\" and i + 1 < len(value):
            i += 1
            word = [*(word or []), value[i]]
        else:
            word = [*(word or []), char]
        i += 1
    if quote:
        return None
    if word is not None:
        words.append("".join(word))
    return words


def parse_environment(value: str) -> list[tuple[str, str]]:
    """``Environment=A=1 "B=two words" C="x y"`` → ``[("A", "1"), ("B", "two words"), ("C",
    "x y")]``; words that are not assignments are ignored, as systemd ignores them."""
    found: list[tuple[str, str]] = []
    for word in environment_words(value) or ():
        name, sep, setting = word.partition("=")
        if sep and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            found.append((name, setting))
    return found


#: the settings whose values systemd resolves specifiers in (load-fragment.c: unit_full_printf)
SPECIFIER_KEYS = frozenset(
    {
        "User",
        "Group",
        "SupplementaryGroups",
        "Environment",
        "EnvironmentFile",
        "ExecStart",
        "NetworkNamespacePath",
    }
)
#: systemd.exec(5) "Environment Variables in Spawned Processes": set by the manager itself
_SET_BY_SYSTEMD = frozenset(
    {
        "PATH",
        "LANG",
        "USER",
        "LOGNAME",
        "HOME",
        "SHELL",
        "TERM",
        "INVOCATION_ID",
        "XDG_RUNTIME_DIR",
        "RUNTIME_DIRECTORY",
        "STATE_DIRECTORY",
        "CACHE_DIRECTORY",
        "LOGS_DIRECTORY",
        "CONFIGURATION_DIRECTORY",
        "CREDENTIALS_DIRECTORY",
        "MAINPID",
        "MANAGERPID",
        "LISTEN_FDS",
        "LISTEN_PID",
        "LISTEN_FDNAMES",
        "NOTIFY_SOCKET",
        "WATCHDOG_PID",
        "WATCHDOG_USEC",
        "JOURNAL_STREAM",
        "SYSTEMD_EXEC_PID",
    }
)
_VAR = re.compile(r"\$\{([A-Za-z_]\w*)\}|\$([A-Za-z_]\w*)")


def unknown_specifier(key: str, value: str) -> str:
    return (
        f"{key}={value}: an unknown % specifier; systemd ignores this setting "
        '("Failed to resolve unit specifiers"); write %% for a literal %'
    )


def unknown_exec_specifier(word: str, *, fatal: bool = False) -> str:
    """An ``ExecStart=`` word whose specifier systemd cannot resolve (config_parse_exec)."""
    message = f"ExecStart= word {word!r}: an unknown % specifier"
    if fatal:
        message += (
            ' (write %% for a literal %): systemd refuses the unit ("Failed to resolve unit '
            'specifiers", "Unit configuration has fatal error, unit will not be started"), so '
            "nothing runs and nothing else was checked"
        )
    return message


class ServiceEnvironment(Protocol):
    """What :func:`expand_exec` reads of a service's settings."""

    spec: Specifiers
    environment: dict[str, str]  # Environment=
    environment_files: list[str]  # EnvironmentFile=, as the unit names them
    env_texts: dict[str, str]  # those lint could read


def process_environment(service: ServiceEnvironment) -> dict[str, str]:
    """The variables the started process gets from the unit: ``Environment=``, overridden in
    order by the ``EnvironmentFile=``s lint could read — what a ``sh -c`` script of
    ``ExecStart=`` expands ``${PORT:-80}`` with (also after the ``:`` prefix)."""
    values = dict(service.environment)
    for path in service.environment_files:
        text = service.env_texts.get(path)
        values.update(parse_environment_file(text) if text is not None else {})
    return values


def expand_exec(
    service: ServiceEnvironment, argv: Sequence[str], substitute_env: bool
) -> tuple[tuple[str, ...], list[str], list[str]]:
    """``ExecStart=``'s words with their specifiers resolved (when the unit is loaded) and
    ``$VAR`` / ``${VAR}`` substituted from ``Environment=`` and the ``EnvironmentFile=``s
    lint could read, which override it, in order (when the command runs; not after the ``:``
    prefix): (the words, the assumptions, the problems)."""
    spec, environment = service.spec, service.environment
    environment_files = [(f, service.env_texts.get(f)) for f in service.environment_files]
    words: list[str] = []
    unknown: list[str] = []
    for word in argv:
        expanded = spec.expand(word)
        if expanded is None:
            unknown.append(unknown_exec_specifier(word))
        words.append(word if expanded is None else expanded)
    if not substitute_env:
        return tuple(words), [], unknown
    values = dict(environment)
    origin = dict.fromkeys(environment, "Environment=")
    for path, text in environment_files:
        found = parse_environment_file(text) if text is not None else {}
        values.update(found)
        origin.update(dict.fromkeys(found, f"EnvironmentFile={path}"))
    unset: list[str] = []
    result = substitute(words, values, unset)
    used = dict.fromkeys(m.group(1) or m.group(2) for w in words for m in _VAR.finditer(w))
    notes = [
        f"ExecStart= uses ${name}={values[name]!r} from {origin[name]}"
        for name in used
        if name in values
    ]
    unread = [path for path, text in environment_files if text is None]
    source = (
        f"it may come from EnvironmentFile={', '.join(unread)}, which lint could not read (it "
        "is on the host the unit runs on)"
        if unread
        else "no Environment= or EnvironmentFile= sets it"
    )
    for name in unset:
        if name in _SET_BY_SYSTEMD:
            notes.append(f"ExecStart= uses ${name}, which systemd sets when it starts the service")
        else:
            notes.append(f"ExecStart= uses ${name}, taken as empty: {source}")
    return result, notes, unknown


#: service_verify(): no ExecStart= (commented out, as in a template to complete).  UR100
#: reports it as an info; lint checks nothing else of the unit (nothing runs)
_NO_EXEC = (
    "no ExecStart=: systemd refuses to start this unit ({}): nothing runs, so nothing was "
    "checked — a template to complete?"
)


def no_exec_start(settings: Sequence[tuple[str, str, str]], *, oneshot: bool) -> str:
    """service_add_extras() / service_verify() for a unit without ``ExecStart=`` (``settings``:
    its (section, key, value) lines): without ``Type=`` it is a oneshot, which may run only
    ``ExecStop=`` or a ``SuccessAction=``."""
    typed = any(s == "Service" and k == "Type" and v for s, k, v in settings)
    stop = any(s == "Service" and k == "ExecStop" and v for s, k, v in settings)
    action = any(s == "Unit" and k == "SuccessAction" and v for s, k, v in settings)
    if typed and not oneshot:
        return _NO_EXEC.format(
            '"Service has no ExecStart= setting, which is only allowed for Type=oneshot '
            'services. Refusing."'
        )
    if not stop and not action:
        return _NO_EXEC.format(
            '"Service has no ExecStart=, ExecStop=, or SuccessAction=. Refusing."'
        )
    return (
        "no ExecStart=: nothing to check (a oneshot unit that runs only its "
        f"{'ExecStop=' if stop else 'SuccessAction='})"
    )


def parse_environment_file(text: str) -> dict[str, str]:
    """An ``EnvironmentFile=``: ``NAME=VALUE`` lines, ``#``/``;`` comments, one pair of quotes
    around a value removed, a trailing backslash continues the line (``load_env_file``)."""
    found: dict[str, str] = {}
    pending = ""
    for raw in text.split("\n"):
        line = pending + raw.strip()
        pending = line[:-1] if line.endswith("\\") else ""
        if pending or not line or line[0] in "#;":
            continue
        name, sep, setting = line.removeprefix("export ").partition("=")
        name, setting = name.strip(), setting.strip()
        if sep and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            quoted = len(setting) >= 2 and setting[0] == setting[-1] and setting[0] in "\"'"
            found[name] = setting[1:-1] if quoted else setting
    return found
