"""``--format text``: findings grouped by file, each with its fix and the assumptions it rests
on (``assumes:``, one line per assumption, dimmed on a terminal); a one-line summary, which
names what could not be read (``no findings in 0 files; could not read secrets: permission
denied``).

Colour only when asked (the command asks when standard output is a terminal and ``NO_COLOR``
is unset, https://no-color.org).
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from itertools import groupby

from unroot.lint.findings import SEVERITIES, Finding
from unroot.lint.registry import RuleInfo

_COLORS = {"error": "31", "warning": "33", "info": "36", "file": "1", "fix": "32", "dim": "2"}
WIDTH = 100


def _paint(text: str, what: str, color: bool) -> str:
    return f"\x1b[{_COLORS[what]}m{text}\x1b[0m" if color else text


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _assumptions(finding: Finding) -> list[str]:
    """``assumes: A`` then one line per further assumption, aligned, each wrapped."""
    lines: list[str] = []
    label = " " * 11 + "assumes: "
    for i, assumption in enumerate(finding.assumptions):
        first = label if i == 0 else " " * len(label)
        lines.extend(
            textwrap.wrap(
                assumption,
                WIDTH,
                initial_indent=first,
                subsequent_indent=" " * len(label),
                break_on_hyphens=False,  # paths and flags stay whole
            )
        )
    return lines


def render(
    findings: Sequence[Finding],
    files: Sequence[str],
    rules: Mapping[str, RuleInfo],
    *,
    color: bool = False,
    unread: Sequence[tuple[str, str]] = (),
) -> str:
    del rules
    out: list[str] = []
    for path, group in groupby(sorted(findings), key=lambda f: f.file):
        out.append(_paint(path, "file", color))
        for finding in group:
            where = f"{finding.line}:{finding.column}"
            severity = _paint(f"{finding.severity:<7}", finding.severity, color)
            head = f"  {where:>7}  {severity}  {finding.rule} {finding.topic}"
            out.append(head)
            out.extend(
                textwrap.wrap(
                    finding.message, WIDTH, initial_indent=" " * 11, subsequent_indent=" " * 11
                )
            )
            if finding.fix:
                fix = textwrap.wrap(
                    finding.fix,
                    WIDTH,
                    initial_indent=" " * 11 + "fix: ",
                    subsequent_indent=" " * 16,
                )
                out.extend(_paint(line, "fix", color) for line in fix)
            out.extend(_paint(line, "dim", color) for line in _assumptions(finding))
        out.append("")
    counts = {s: sum(1 for f in findings if f.severity == s) for s in SEVERITIES}
    scanned = _plural(len(files), "file")
    if findings:
        detail = ", ".join(_plural(n, s) for s, n in counts.items() if n)
        out.append(f"{_plural(len(findings), 'finding')} ({detail}) in {scanned}")
    else:
        out.append(f"no findings in {scanned}")
    if len(unread) == 1:
        out[-1] += f"; could not read {unread[0][0]}: {unread[0][1]}"
    elif unread:
        out[-1] += f"; could not read {len(unread)} paths (listed on stderr)"
    return "\n".join(out) + "\n"
