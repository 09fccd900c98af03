"""The rule registry: every rule is a function registered by :func:`rule` with its id, topic,
default severity and the kinds of situation it reads.

Rules are pure (hadolint's ``run :: Config -> [Instruction] -> Failures``): a *situation* rule
takes one :class:`~unroot.situation.Situation` and yields :class:`Report` values; a *file*
rule takes one :class:`~unroot.sources.parsed.ParsedFile`.  The registry turns reports into
:class:`~unroot.lint.findings.Finding` values (id, topic, severity, the situation's
assumptions).  The module docstring of a rule (one rule per module) is its documentation
(``unroot rules ID``) and its test: see :func:`examples` for the ``Okay:`` / ``URxxx:`` format.

IDs are never reused: a rule that is withdrawn stays registered with ``removed=True``.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from unroot.lint.findings import SEVERITIES, Finding
from unroot.lint.ruledoc import DocExample, RuleDoc
from unroot.sources.kinds import NAMES
from unroot.sources.parsed import Location

if TYPE_CHECKING:
    from unroot.situation import Situation
    from unroot.sources.parsed import ParsedFile

_ID = re.compile(r"UR\d{3}")
_TOPIC = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)+")


@dataclass(frozen=True, slots=True)
class Report:
    """What a rule says: where, what will happen, the smallest fix; severity when it differs
    from the rule's default (a finding that rests on an assumption may be milder)."""

    location: Location
    message: str
    fix: str | None = None
    severity: str | None = None
    related: tuple[tuple[str, int, str], ...] = ()
    assumptions: tuple[str, ...] = ()


SituationCheck = Callable[["Situation"], Iterable[Report]]
FileCheck = Callable[["ParsedFile"], Iterable[Report]]


@dataclass(frozen=True, slots=True)
class RuleInfo:
    """A registered rule."""

    id: str
    topic: str
    severity: str
    kinds: tuple[str, ...]
    scope: str  # "situation" | "file"
    check: Callable[[Any], Iterable[Report]] = field(repr=False)
    doc: str = field(default="", repr=False)
    removed: bool = False

    @property
    def summary(self) -> str:
        """The first line of the doc."""
        return self.doc.strip().splitlines()[0].strip() if self.doc.strip() else ""

    def finding(self, report: Report, assumptions: Iterable[str] = ()) -> Finding:
        merged = tuple(dict.fromkeys((*report.assumptions, *assumptions)))
        return Finding(
            file=report.location.file,
            line=report.location.line,
            column=report.location.column,
            rule=self.id,
            topic=self.topic,
            severity=report.severity or self.severity,
            message=report.message,
            fix=report.fix,
            assumptions=merged,
            related=report.related,
        )


RULES: dict[str, RuleInfo] = {}


def rule(
    rule_id: str,
    *,
    topic: str,
    severity: str,
    kinds: Iterable[str] = NAMES,
    scope: str = "situation",
    removed: bool = False,
) -> Callable[[Callable[[Any], Iterable[Report]]], Callable[[Any], Iterable[Report]]]:
    """Register the decorated check under ``rule_id`` (``UR`` + three digits, never reused)."""
    kinds = tuple(kinds)
    if not _ID.fullmatch(rule_id):
        raise ValueError(f"rule id {rule_id!r} is not UR + three digits")
    if not _TOPIC.fullmatch(topic):
        raise ValueError(f"topic {topic!r} is not a slug")
    if severity not in SEVERITIES:
        raise ValueError(f"severity {severity!r} is not one of {SEVERITIES}")
    if scope not in ("situation", "file") or not set(kinds) <= set(NAMES):
        raise ValueError(f"bad scope {scope!r} or kinds {kinds!r}")

    def register(check: Callable[[Any], Iterable[Report]]) -> Callable[[Any], Iterable[Report]]:
        existing = RULES.get(rule_id)
        if existing is not None and existing.check is not check:
            raise ValueError(f"rule id {rule_id} is already taken by {existing.topic}")
        module = sys.modules.get(check.__module__)
        doc = (inspect.getdoc(module) if module is not None else None) or ""
        doc = doc or inspect.getdoc(check) or ""
        RULES[rule_id] = RuleInfo(rule_id, topic, severity, kinds, scope, check, doc, removed)
        return check

    return register


def load_rules() -> Mapping[str, RuleInfo]:
    """Import every module of :mod:`unroot.lint.rules` once; the registry, by id."""
    package = importlib.import_module("unroot.lint.rules")
    for module in pkgutil.iter_modules(package.__path__):
        if module.name.startswith("ur"):
            importlib.import_module(f"{package.__name__}.{module.name}")
    return dict(sorted(RULES.items()))


def matches(selector: str, info: RuleInfo) -> bool:
    """A selector names a rule by id (``UR105``), id prefix (``UR1``) or topic (any case)."""
    text = selector.strip()
    if text.upper().startswith("UR"):
        return info.id.startswith(text.upper())
    return text.lower() == info.topic


# -- docstring examples ---------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Example:
    """One ``Okay:`` or ``URxxx:`` example of a rule docstring."""

    rule: str  # the rule whose doc holds it
    expect: str | None  # the rule id it must produce, or None for "Okay"
    title: str
    files: tuple[tuple[str, str], ...]  # (path, text)
    line: int  # where it starts in the doc (for test ids)

    @property
    def name(self) -> str:
        verdict = self.expect or "Okay"
        return f"{self.rule}-{verdict}-{self.line}"


_DEFAULT_NAMES = {
    "dockerfile": "Dockerfile",
    "compose": "compose.yaml",
    "k8s": "pod.yaml",
    "systemd": "app.service",
}


def examples(info: RuleInfo) -> Iterator[Example]:
    """The examples of a rule's doc, in order.

    An example is a line ``Okay: title`` or ``UR105: title`` at the doc's left margin,
    followed by an indented block.  The block is one or more files: ``--- NAME`` starts a file
    (its kind comes from the name, as ``unroot lint`` finds it: ``Dockerfile``,
    ``compose.yaml``, ``deploy.yaml``, ``app.service``, ``app.socket``; ``.unroot.toml`` is the
    config, e.g. ``runtime = "cri-o"`` or an ``[images]`` table).  A block without ``---``
    lines is one file whose first line says its kind: ``# kind: compose``.  A ``URxxx`` example
    must produce at least one finding of that rule; an ``Okay`` example none of the rule whose
    doc holds it.
    """
    for example in RuleDoc.parse(info.doc).examples:
        yield Example(
            rule=info.id,
            expect=None if example.tag == "Okay" else example.tag,
            title=example.title,
            files=_files(example, info.id),
            line=example.line,
        )


def _files(example: DocExample, rule_id: str) -> tuple[tuple[str, str], ...]:
    line = example.line
    if not example.block:
        raise ValueError(f"{rule_id}: the example at doc line {line} has no file")
    files = list(example.files())
    name, kind, text = files[0]
    if not name:
        if kind not in _DEFAULT_NAMES:
            raise ValueError(
                f"{rule_id}: the example at doc line {line} needs '--- NAME' or '# kind: KIND'"
            )
        return ((_DEFAULT_NAMES[kind], text + "\n"),)
    return tuple((name, text + "\n") for name, _, text in files)
