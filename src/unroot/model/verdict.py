"""What every model question returns: the kernel's answer, why, and the smallest fix."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Reason:
    """One step of the explanation. ``code`` is a stable slug, ``text`` is for people."""

    code: str
    text: str

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "text": self.text}


@dataclass(frozen=True, slots=True)
class Fix:
    """The smallest change that turns a denial into an allow: a command when one exists."""

    why: str
    command: str | None = None

    def to_json(self) -> dict[str, str | None]:
        return {"command": self.command, "why": self.why}


@dataclass(frozen=True, slots=True)
class Verdict:
    """The kernel's answer: allowed or the errno it returns, with reasons and fixes."""

    allowed: bool
    errno: str | None = None
    reasons: tuple[Reason, ...] = ()
    fixes: tuple[Fix, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "errno": self.errno,
            **self.extra,
            "reasons": [r.to_json() for r in self.reasons],
            "fixes": [f.to_json() for f in self.fixes],
        }
