"""``--format text``: findings grouped by file, each with its fix and the assumptions it rests
on (``assumes:``, one line per assumption, dimmed on a terminal); a one-line summary, which
names what could not be read (``no findings in 0 files; could not read secrets: permission
denied``) and counts the inputs recognised but not read (``; skipped 2 templates and 1 Quadlet
unit (not read: listed on stderr)``).  ``compact``: without the ``assumes:`` lines.

Colour only when asked (``--color``; the command decides, https://no-color.org).  Prose wraps
at ``width`` (the command passes :func:`unroot.wrapping.output_width`), never inside a word,
a path or a ``code span``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import groupby

from unroot.lint.findings import SEVERITIES, Finding
from unroot.lint.registry import RuleInfo
from unroot.printable import one_line
from unroot.wrapping import DEFAULT_WIDTH, wrap

_COLORS = {"error": "31", "warning": "33", "info": "36", "file": "1", "fix": "32", "dim": "2"}
WIDTH = DEFAULT_WIDTH
_NOT_READ = ("template", "unit template", "Quadlet unit")  # the summary's order


def _paint(text: str, what: str, color: bool) -> str:
    return f"\x1b[{_COLORS[what]}m{text}\x1b[0m" if color else text


def folded(text: str) -> str:
    """A message (from a file's contents) as one line: whitespace folded (it is wrapped
    anyway), control characters and undecodable bytes escaped, as the gnu format does."""
    return one_line(" ".join(text.split()))


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _counts(not_read: Sequence[tuple[str, str]]) -> str:
    """``2 templates, 12 unit templates and 1 Quadlet unit``."""
    counts = dict.fromkeys(_NOT_READ, 0)
    for _, what in not_read:
        counts[what] = counts.get(what, 0) + 1
    parts = [_plural(n, what) for what, n in counts.items() if n]
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"


def _assumptions(finding: Finding, width: int) -> list[str]:
    """``assumes: A`` then one line per further assumption, aligned, each wrapped."""
    lines: list[str] = []
    label = " " * 11 + "assumes: "
    for i, assumption in enumerate(finding.assumptions):
        first = label if i == 0 else " " * len(label)
        lines.extend(wrap(folded(assumption), width, first, " " * len(label)))
    return lines


def render(
    findings: Sequence[Finding],
    files: Sequence[str],
    rules: Mapping[str, RuleInfo],
    *,
    color: bool = False,
    width: int = WIDTH,
    compact: bool = False,
    unread: Sequence[tuple[str, str]] = (),
    not_read: Sequence[tuple[str, str]] = (),
) -> str:
    del rules
    out: list[str] = []
    for path, group in groupby(sorted(findings), key=lambda f: f.file):
        out.append(_paint(one_line(path), "file", color))
        for finding in group:
            where = f"{finding.line}:{finding.column}"
            severity = _paint(f"{finding.severity:<7}", finding.severity, color)
            head = f"  {where:>7}  {severity}  {finding.rule} {finding.topic}"
            out.append(head)
            out.extend(wrap(folded(finding.message), width, " " * 11, " " * 11))
            if finding.fix:
                fix = wrap(folded(finding.fix), width, " " * 11 + "fix: ", " " * 16)
                out.extend(_paint(line, "fix", color) for line in fix)
            if not compact:
                out.extend(_paint(line, "dim", color) for line in _assumptions(finding, width))
        out.append("")
    counts = {s: sum(1 for f in findings if f.severity == s) for s in SEVERITIES}
    scanned = _plural(len(files), "file")
    if findings:
        detail = ", ".join(_plural(n, s) for s, n in counts.items() if n)
        out.append(f"{_plural(len(findings), 'finding')} ({detail}) in {scanned}")
    else:
        out.append(f"no findings in {scanned}")
    if len(unread) == 1:
        out[-1] += f"; could not read {one_line(unread[0][0])}: {unread[0][1]}"
    elif unread:
        out[-1] += f"; could not read {len(unread)} paths (listed on stderr)"
    if not_read:
        out[-1] += f"; skipped {_counts(not_read)} (not read: listed on stderr)"
    return "\n".join(out) + "\n"
