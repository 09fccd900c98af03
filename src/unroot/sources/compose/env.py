"""Compose variables: interpolation of values and the ``.env`` file (pure, no I/O).

Interpolation follows the Compose Specification (``12-interpolation.md``): ``$VAR``,
``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?error}``, ``${VAR?error}``,
``${VAR:+replacement}``, ``${VAR+replacement}``, nested defaults, ``$$`` for a literal ``$``.

``.env`` is read as compose-go's ``dotenv`` package reads it (the parser Docker Compose v2
uses, https://github.com/compose-spec/compose-go/blob/main/dotenv/parser.go):

* blank lines and lines starting with ``#`` are skipped; an ``export`` prefix is dropped;
* ``KEY=value`` or ``KEY: value``; a name is letters, digits and ``_ . - [ ]``;
* unquoted values end at the line's end or at `` #`` (a comment), trailing blanks removed;
* ``'single'`` quotes keep the text as written, over several lines if need be; ``"double"``
  quotes understand ``\\n``, ``\\t``, ``\\"``, ``\\\\``, ``\\$`` and octal ``\\0NNN``;
* unquoted and double-quoted values are interpolated, from the environment first and then the
  names defined above in the file; single-quoted ones are not;
* a line holding only ``KEY`` takes ``KEY`` from the environment, if it is set there.

compose refuses a ``.env`` it cannot read; here a line that cannot be read becomes one problem
(a warning at ``.env:LINE``) and the rest of the file is still read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DOTENV_KEY = re.compile(r"[\w.\-\[\]]+")
_EXPORT = re.compile(r"export[ \t]+")
_ESCAPE = re.compile(r"""\\(?:[abcfnrtv$"\\]|0[0-7]{0,3})""")
_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    '"': '"',
    "\\": "\\",
    "$": "$$",  # survives interpolation as one literal "$"
}
_BLANK = " \t\v\f\r"
#: One variable reference as it was resolved: ``(name, operator, expression, substituted)``,
#: e.g. ``("TAG", ":-", "${TAG:-latest}", False)``: TAG was unset (or, with ``:``, empty), so the
#: default was used; ``substituted`` is True when the variable's value (or, for ``+``, its being
#: set) decided the result.  The operator is ``""`` for ``$X`` and ``${X}``.
Use = tuple[str, str, str, bool]


def interpolate(
    value: str,
    env: Mapping[str, str],
    unset: list[str] | None = None,
    used: list[Use] | None = None,
    required: list[tuple[str, str]] | None = None,
) -> tuple[str, list[str]]:
    """Compose interpolation of one value: ``(result, errors)``; unset names go to ``unset``,
    every reference (nested defaults included) to ``used``.  A required variable (``${X:?msg}``)
    that is missing is an error, or, when ``required`` is given, ``(name, msg)`` there."""
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
            out.append(_braced(value[i + 2 : end], env, unset, errors, used, required=required))
            i = end + 1
            continue
        match = _NAME.match(value, i + 1)
        if match is None:
            errors.append(f"invalid interpolation format in {value!r}: lone '$' (write '$$')")
            out.append("$")
            i += 1
            continue
        name = match.group()
        if used is not None:
            used.append((name, "", "$" + name, name in env))
        out.append(_lookup(name, env, unset))
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


def _braced(
    inner: str,
    env: Mapping[str, str],
    unset: list[str] | None,
    errors: list[str],
    used: list[Use] | None,
    *,
    required: list[tuple[str, str]] | None = None,
) -> str:
    match = _NAME.match(inner)
    if match is None:
        errors.append(f"invalid interpolation format: ${{{inner}}}")
        return ""
    name, rest = match.group(), inner[match.end() :]
    expression = "${" + inner + "}"
    if not rest:
        if used is not None:
            used.append((name, "", expression, name in env))
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
    if used is not None:
        used.append((name, op, expression, present))
    if op.endswith("-"):
        if present:
            return current
        result, sub = interpolate(arg, env, unset, used, required)
        errors.extend(sub)
        return result
    if op.endswith("?"):
        if present:
            return current
        message, sub = interpolate(arg, env, unset)
        errors.extend(sub)
        if required is not None:
            required.append((name, message))
        else:
            errors.append(f"required variable {name} is missing a value: {message}".rstrip(": "))
        return ""
    if present:  # "+": the replacement when set
        result, sub = interpolate(arg, env, unset, used, required)
        errors.extend(sub)
        return result
    return ""


# -- .env -------------------------------------------------------------------------------------
def _unescape(match: re.Match[str]) -> str:
    body = match.group()[1:]
    if body.startswith("0"):
        return chr(int(body[1:] or "0", 8))
    return _SIMPLE_ESCAPES[body]


def parse_dotenv(
    text: str,
    environment: Mapping[str, str] | None = None,
    defined_at: dict[str, int] | None = None,
) -> tuple[dict[str, str], list[tuple[int, str]]]:
    """``.env`` text → ``(values, problems)``; each problem is ``(line, message)``.

    ``environment`` is the process environment: it is looked up first when a value refers to a
    variable, and it gives bare ``KEY`` lines their value.  ``defined_at`` receives the line
    that defined each value (the last definition wins, as for the values).  Never raises.
    """
    defined_at = {} if defined_at is None else defined_at
    env = environment or {}
    values: dict[str, str] = {}
    problems: list[tuple[int, str]] = []
    lines = text.replace("\r\n", "\n").split("\n")
    index = 0
    while index < len(lines):
        number = index + 1
        statement = lines[index].lstrip(_BLANK + "\ufeff")
        index += 1
        if not statement or statement.startswith("#"):
            continue
        export = _EXPORT.match(statement)
        if export is not None and statement[export.end() :].strip():
            statement = statement[export.end() :]
        cut = min((statement.find(c) for c in "=:" if c in statement), default=-1)
        key = (statement if cut < 0 else statement[:cut]).strip(_BLANK)
        if not _DOTENV_KEY.fullmatch(key):
            shown = statement if len(statement) <= 40 else statement[:37] + "..."
            problems.append((number, f"variable line ignored: {shown!r} is not KEY=VALUE"))
            continue
        if cut < 0:  # a bare KEY: the environment's value, if any
            if key in env:
                values[key] = env[key]
                defined_at.pop(key, None)  # the environment's, not this file's
            continue
        rest = statement[cut + 1 :].lstrip(_BLANK)
        lookup = {**values, **env}
        if rest[:1] in ("'", '"'):
            quote = rest[0]
            body, consumed, closed = _quoted(rest[1:], lines, index, quote)
            if not closed:
                problems.append(
                    (number, f"variable {key}: unterminated {quote}quoted{quote} value; ignored")
                )
                continue
            index += consumed
            if quote == '"':
                body, errors = interpolate(_ESCAPE.sub(_unescape, body), lookup)
                problems.extend((number, f"variable {key}: {error}") for error in errors)
            values[key] = body
            defined_at[key] = number
            continue
        raw = rest.split(" #", 1)[0].rstrip(_BLANK)
        value, errors = interpolate(raw, lookup)
        problems.extend((number, f"variable {key}: {error}") for error in errors)
        values[key] = value
        defined_at[key] = number
    return values, problems


def _quoted(first: str, lines: list[str], index: int, quote: str) -> tuple[str, int, bool]:
    """The body of a quoted value that starts in ``first`` and may go on over the next lines:
    ``(body with escapes of the quote resolved, extra lines consumed, closed)``."""
    chars: list[str] = []
    escaped = False
    text, consumed = first, 0
    while True:
        for char in text:
            if escaped:
                escaped = False
                chars.append(char if char == quote else "\\" + char)
                continue
            if char == "\\":
                escaped = True
                continue
            if char == quote:
                return "".join(chars), consumed, True
            chars.append(char)
        if index + consumed >= len(lines):
            return "", consumed, False
        text = lines[index + consumed]
        consumed += 1
        if escaped:
            escaped = False
            chars.append("\\")
        chars.append("\n")
