"""``--format gnu``: one line per finding, ``FILE:LINE:COLUMN: SEVERITY: MESSAGE [RULE]``.

The GNU coding standards' error format ("Formatting Error Messages"), which editors jump from
(Emacs ``compilation-mode``, Vim's ``errorformat`` ``%f:%l:%c: %t%*[^:]: %m``, VS Code problem
matchers).  Severity is unroot's (``error``, ``warning``, ``info``: the words Emacs reads as
such).  The message is one line (its whitespace folded); the fix and the assumptions are left
to the other formats.  Nothing else is printed: no summary, so a file of these lines is exactly
the findings, and no findings is empty output.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from unroot.lint.findings import Finding
from unroot.lint.formatters.text import folded
from unroot.lint.registry import RuleInfo


def line(finding: Finding) -> str:
    return (
        f"{folded(finding.file)}:{max(1, finding.line)}:{max(1, finding.column)}: "
        f"{finding.severity}: {folded(finding.message)} [{finding.rule}]"
    )


def render(findings: Sequence[Finding], files: Sequence[str], rules: Mapping[str, RuleInfo]) -> str:
    del files, rules
    return "".join(line(finding) + "\n" for finding in sorted(findings))
