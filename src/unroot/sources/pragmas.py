"""Inline suppressions: ``# unroot: ignore=UR104,UR105`` and ``# unroot: ignore-file=UR104``.

One pure pass over a file's text, run beside its parser (the parsers do not call it; each kind in
``sources/kinds.py`` runs both and :func:`attach` joins their results), for every format that
comments with ``#`` (Dockerfile, YAML, systemd units), in the manner of hadolint's ``# hadolint
ignore=`` pass:

* ``ignore=IDS`` on a line of its own applies to the next *statement*: the next instruction of
  a Dockerfile (every physical line of it, so a finding reported inside a multi-line ``RUN`` is
  covered) — the caller passes the statements' line spans — or, without spans, the next line that
  is neither blank nor a comment.
* ``ignore=IDS`` after content on the same line (``ports: ["80:80"]  # unroot: ignore=UR104``)
  applies to that line, when the caller allows trailing comments (YAML yes; Dockerfile no — a
  ``#`` inside a ``RUN`` belongs to the shell).
* ``ignore-file=IDS`` anywhere applies to the whole file.

IDS is a comma-separated list of rule IDs (``UR104``, any case) or topic slugs
(``caps-lost-in-build``); text after the list separated by whitespace is a free comment
(``# unroot: ignore=UR104 -- the sysctl is set by the chart``).  A malformed pragma is reported
as a problem, never silently ignored.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from unroot.sources.parsed import Location, ParsedFile

_PRAGMA = re.compile(r"#\s*unroot\s*:\s*(?P<body>.*)$", re.I)
_DIRECTIVE = re.compile(
    r"(?P<kind>ignore-file|ignore)\s*=\s*(?P<ids>[^\s,]+(?:\s*,\s*[^\s,]+)*)(?P<rest>.*)$", re.I
)
_RULE_ID = re.compile(r"UR\d+", re.I)
_TOPIC = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)+")


@dataclass(frozen=True, slots=True)
class Pragmas:
    """What a file's ``# unroot:`` comments say."""

    file_ignores: tuple[str, ...] = ()
    line_ignores: tuple[tuple[int, str], ...] = ()  # (line the ignore applies to, rule id)
    problems: tuple[tuple[int, str], ...] = ()  # (line, message)


def parse_pragmas(
    text: str,
    *,
    statements: Sequence[tuple[int, int]] | None = None,
    trailing: bool = False,
) -> Pragmas:
    """Find the pragmas of ``text``.

    ``statements``: the (first line, last line) span of every statement, in any order (1-based);
    a standalone ``ignore=`` applies to all lines of the first statement starting after it.
    ``trailing``: whether a pragma after content on the same line counts (for that line).
    """
    lines = text.splitlines()
    spans = sorted(statements) if statements is not None else None
    file_ignores: list[str] = []
    line_ignores: list[tuple[int, str]] = []
    problems: list[tuple[int, str]] = []
    for number, line in enumerate(lines, start=1):
        if "unroot" not in line.lower():
            continue
        stripped = line.lstrip()
        standalone = stripped.startswith("#")
        match = _PRAGMA.match(stripped) if standalone else None
        if match is None and trailing and not standalone:
            found = re.search(r"\s#\s*unroot\s*:", line, re.I)
            match = _PRAGMA.match(line[found.start() + 1 :].lstrip()) if found else None
        if match is None:
            continue
        directive = _DIRECTIVE.match(match.group("body").strip())
        if directive is None:
            problems.append(
                (
                    number,
                    f"malformed unroot pragma {stripped.strip()!r} "
                    "(expected 'unroot: ignore=UR104' or 'ignore-file=UR104')",
                )
            )
            continue
        rest = directive.group("rest")
        if rest and not rest[0].isspace():
            problems.append((number, f"malformed unroot pragma: unexpected {rest.strip()!r}"))
            continue
        ids: list[str] = []
        for token in (t.strip() for t in directive.group("ids").split(",")):
            if _RULE_ID.fullmatch(token):
                ids.append(token.upper())
            elif _TOPIC.fullmatch(token):
                ids.append(token)
            else:
                problems.append((number, f"unroot pragma names an unknown rule {token!r}"))
        if directive.group("kind").lower() == "ignore-file":
            file_ignores.extend(i for i in ids if i not in file_ignores)
            continue
        targets = _targets(number, standalone, lines, spans)
        if not targets:
            problems.append((number, "unroot ignore pragma is not followed by anything to ignore"))
        line_ignores.extend((target, rule) for target in targets for rule in ids)
    return Pragmas(tuple(file_ignores), tuple(dict.fromkeys(line_ignores)), tuple(problems))


def _targets(
    number: int, standalone: bool, lines: list[str], spans: list[tuple[int, int]] | None
) -> range:
    if not standalone:
        return range(number, number + 1)
    if spans is not None:
        for first, last in spans:
            if first > number:
                return range(first, max(first, last) + 1)
        return range(0)
    for following in range(number + 1, len(lines) + 1):
        content = lines[following - 1].strip()
        if content and not content.startswith("#"):
            return range(following, following + 1)
    return range(0)


def attach(
    parsed: ParsedFile,
    text: str,
    *,
    trailing: bool = False,
    statements: Sequence[tuple[int, int]] | None = None,
    ordered: bool = False,
) -> ParsedFile:
    """``parsed`` with the pragmas of ``text``, the file it was parsed from: its ignores, and each
    malformed pragma as a problem after the parser's (``ordered``: all of them sorted by line,
    column and message, as a Dockerfile's are).  ``trailing`` and ``statements`` as in
    :func:`parse_pragmas`."""
    pragmas = parse_pragmas(text, statements=statements, trailing=trailing)
    if not (pragmas.file_ignores or pragmas.line_ignores or pragmas.problems):
        return parsed
    found = tuple((Location(parsed.path, line), message) for line, message in pragmas.problems)
    problems = parsed.problems + found
    if ordered and found:
        problems = tuple(sorted(problems, key=lambda p: (p[0].line, p[0].column, p[1])))
    return replace(
        parsed,
        problems=problems,
        file_ignores=pragmas.file_ignores,
        line_ignores=pragmas.line_ignores,
    )
