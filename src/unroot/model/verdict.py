"""What every model question returns: the kernel's answer, why, and the smallest fix."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from unroot.model.protected import Protection


@dataclass(frozen=True, slots=True)
class Reason:
    """One step of the explanation. ``code`` is a stable slug, ``text`` is for people."""

    code: str
    text: str

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "text": self.text}


@dataclass(frozen=True, slots=True)
class Fix:
    """The smallest change that turns a denial into an allow: a command when one exists.

    ``protected`` is set on the fix that stands in for a grant unroot never suggests (see
    :mod:`unroot.model.protected`), and on the note beside a narrow grant in a key store.
    ``steps`` is ``command`` as argv lists, one per simple command, for a front end that
    performs the fix (``doctor --apply``); empty when the fix is not a command it can run.
    """

    why: str
    command: str | None = None
    protected: Protection | None = None
    steps: tuple[tuple[str, ...], ...] = ()

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"command": self.command, "why": self.why}
        if self.protected is not None:
            data["protected"] = {"path": self.protected.path, "class": self.protected.kind}
        return data


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
