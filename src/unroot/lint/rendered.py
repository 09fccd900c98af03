"""Findings in Helm's rendered output, named after the template that rendered them.

``helm template`` (and ``helm get manifest``) print each rendered document as::

    ---
    # Source: webapp/templates/deployment.yaml
    apiVersion: apps/v1
    ...

When such text is linted from standard input, a finding in a document that follows a ``#
Source: PATH`` comment names ``PATH`` and the line *within that rendered document* (line 1 is
the line after the comment); an assumption says it was rendered and where it was in the input.
The template's own line may differ (its ``{{ }}`` directives expand or vanish); the document
ends at the next ``---`` or ``# Source:`` line.  Findings outside any such document keep the
input's name and line, and so do those under a ``# Source:`` path that is absolute or climbs
out with ``..`` (Helm never writes one).  The files a run counts are the templates that
rendered something (:func:`rendered_files`), as the findings are grouped.  Pure: text and
findings in, findings out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from unroot.lint.findings import Finding

_SOURCE = re.compile(r"#\s*Source:\s*(\S.*?)\s*")
_SEPARATOR = re.compile(r"---(?:\s.*)?")


@dataclass(frozen=True, slots=True)
class Rendered:
    """Lines ``first``…``last`` of the input (1-based, inclusive) are the document rendered
    from ``template``; ``first - 1`` is its ``# Source:`` comment."""

    template: str
    first: int
    last: int


def helm_sources(text: str) -> tuple[Rendered, ...]:
    """Every document of ``text`` that a ``# Source:`` comment heads."""
    found: list[Rendered] = []
    current: tuple[str, int] | None = None
    lines = text.splitlines()
    for number, line in enumerate(lines, 1):
        source = _SOURCE.fullmatch(line)
        if source is None and not _SEPARATOR.fullmatch(line):
            continue
        if current is not None:
            found.append(Rendered(current[0], current[1], number - 1))
        safe = source is not None and _chart_relative(source.group(1))
        current = (source.group(1), number + 1) if source is not None and safe else None
    if current is not None:
        found.append(Rendered(current[0], current[1], len(lines)))
    return tuple(r for r in found if r.first <= r.last)


def _chart_relative(path: str) -> bool:
    """``webapp/templates/x.yaml`` as Helm writes it: relative, without ``..``.  A ``# Source:``
    naming ``/etc/passwd`` or ``../../etc/passwd`` (the text is the input's, anyone's) is not
    taken as a template's name: a finding there must not point out of the repository (a SARIF
    ``file:///etc/passwd``).  Nor is a first part with a colon, a URI's scheme or a drive
    (``file:/etc/passwd``, ``C:``): a chart's name has none."""
    parts = re.split(r"[/\\]", path)
    return not (path.startswith(("/", "\\")) or ":" in parts[0] or ".." in parts)


def rendered_files(text: str, sources: tuple[Rendered, ...], name: str) -> tuple[str, ...]:
    """The files the findings of ``text`` are grouped under, in order: each template that
    rendered a document with content (not only blank lines and comments), and ``name`` when
    content lies outside every such document."""
    lines = text.splitlines()
    files: dict[str, None] = {}
    inside: set[int] = set()
    for rendered in sources:
        numbers = range(rendered.first, rendered.last + 1)
        inside.update(numbers)
        if any(_content(lines[n - 1]) for n in numbers):
            files.setdefault(rendered.template)
    outside = any(
        _content(line) and not _SEPARATOR.fullmatch(line) and not _SOURCE.fullmatch(line)
        for number, line in enumerate(lines, 1)
        if number not in inside
    )
    return (name, *files) if outside else tuple(files)


def _content(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def _where(line: int, sources: tuple[Rendered, ...]) -> Rendered | None:
    return next((r for r in sources if r.first <= line <= r.last), None)


def map_rendered(finding: Finding, name: str, sources: tuple[Rendered, ...]) -> Finding:
    """``finding`` named after the template whose rendered document holds its line, when it
    is in ``name`` (the input) and in one; else unchanged.  Related places move the same way."""
    related = tuple(
        (r.template, line - r.first + 1, what)
        if file == name and (r := _where(line, sources))
        else (file, line, what)
        for file, line, what in finding.related
    )
    rendered = _where(finding.line, sources) if finding.file == name else None
    if rendered is None:
        return replace(finding, related=related) if related != finding.related else finding
    line = finding.line - rendered.first + 1
    shown = "standard input" if name == "-" else name
    note = (
        f"rendered by Helm from {rendered.template}: line {line} of the document it rendered "
        f"(line {finding.line} of {shown}); the template's own line may differ"
    )
    return replace(
        finding,
        file=rendered.template,
        line=line,
        assumptions=(*finding.assumptions, note),
        related=related,
    )
