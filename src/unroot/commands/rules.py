"""``unroot rules [ID]``: list the lint rules, or print one rule's documentation.

``ID`` is a rule id (any case) or a topic (every rule of the topic is printed).  An unknown one
is a usage error: one line, exit 2.  ``--format json``: ``{"schema_version": 1, "rules": [...]}``,
each rule with its id, topic, default severity, kinds, scope, summary, whether it was removed and
(only when asked for by ID or topic) its documentation; the schema is
``unroot/schemas/rules.schema.json``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from unroot import SCHEMA_VERSION
from unroot.errors import UsageError

if TYPE_CHECKING:
    from unroot.lint.registry import RuleInfo

FORMATS = ("text", "json")


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "rules",
        help="list the lint rules, or show one rule's documentation",
        description="Without an argument: every rule's id, topic, default severity and summary. "
        "With a rule id (UR105) or a topic (bind-fails): the documentation.",
    )
    parser.add_argument("rule", nargs="?", metavar="ID", help="a rule id or topic")
    parser.add_argument("--format", choices=FORMATS, default="text", help="default: text")
    parser.set_defaults(handler=handle)


def handle(args: Any, stdout: TextIO | None = None) -> int:
    from unroot.lint.registry import load_rules

    out = stdout or sys.stdout
    rules = load_rules()
    if args.rule is None and args.format == "json":
        _write_json(out, rules.values(), doc=False)
        return 0
    if args.rule is None:
        width = max(len(info.topic) for info in rules.values())
        for info in rules.values():
            removed = " (removed)" if info.removed else ""
            out.write(f"{info.id}  {info.topic:<{width}}  {info.severity:<7}  {info.summary}")
            out.write(f"{removed}\n")
        return 0
    wanted = args.rule.strip()
    chosen = [
        info for info in rules.values() if info.id == wanted.upper() or info.topic == wanted.lower()
    ]
    if not chosen:
        raise UsageError(f"rules: unknown rule {wanted!r} (see `unroot rules` for the list)")
    if args.format == "json":
        _write_json(out, chosen, doc=True)
        return 0
    for index, info in enumerate(chosen):
        if index:
            out.write("\n")
        kinds = ", ".join(info.kinds)
        out.write(f"{info.id} {info.topic} ({info.severity}; {kinds})\n\n{info.doc.rstrip()}\n")
    return 0


def _write_json(out: TextIO, rules: Iterable[RuleInfo], *, doc: bool) -> None:
    document = {
        "schema_version": SCHEMA_VERSION,
        "rules": [
            {
                "id": info.id,
                "topic": info.topic,
                "severity": info.severity,
                "kinds": list(info.kinds),
                "scope": info.scope,
                "summary": info.summary,
                "removed": info.removed,
                **({"doc": info.doc.rstrip() + "\n"} if doc else {}),
            }
            for info in rules
        ],
    }
    out.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def run_rules(argv: Sequence[str], stdout: TextIO | None = None) -> int:
    """``unroot rules ARGV…`` with the CLI's contract."""
    from unroot.commands.edge import run_command

    return run_command(register, ["rules", *argv], stdout=stdout)
