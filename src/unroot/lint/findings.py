"""What a rule reports: a plain value, rendered by the formatters (text, JSON, SARIF)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SEVERITIES = ("error", "warning", "info")  # ordered: --failure-threshold compares by index


@dataclass(frozen=True, slots=True, order=True)
class Finding:
    """One situation the model predicts, where it was written, and the smallest fix.

    ``topic`` is the stable slug of the situation (PRODUCT.md's table: ``exec-eperm``,
    ``bind-fails``, …); several rule ids may share one.  ``assumptions`` says what the verdict
    rests on ("runtime docker: non-root starts with an empty permitted set"), so a reader can
    tell when it does not apply.
    """

    file: str
    line: int
    column: int
    rule: str  # "UR104"
    topic: str
    severity: str  # error | warning | info
    message: str
    fix: str | None = None
    assumptions: tuple[str, ...] = ()
    related: tuple[tuple[str, int, str], ...] = field(
        default=(), compare=False
    )  # (file, line, what)

    def to_json(self) -> dict[str, Any]:
        """The JSON keys of PRODUCT.md, plus ``assumptions`` and ``related``."""
        return {
            "rule": self.rule,
            "topic": self.topic,
            "severity": self.severity,
            "message": self.message,
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "fix": self.fix,
            "assumptions": list(self.assumptions),
            "related": [{"file": f, "line": n, "message": m} for f, n, m in self.related],
        }
