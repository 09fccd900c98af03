"""Doctor's text view: each check as ✓/✗ (or ? when it could not run) with the value observed
next to the one expected, the evidence, the reasons, and the fixes narrowest first — the
shape kube-bench and docker-bench-security users know."""

from __future__ import annotations

from typing import Any

MARKS = {True: "✓", False: "✗", None: "?"}


def render_checks(subject: dict[str, Any] | None, checks: list[dict[str, Any]]) -> list[str]:
    lines: list[str] = []
    if subject is not None:
        lines.append(f"who: {subject['label']}")
        lines.extend(f"  · {line}" for line in subject["evidence"])
    for check in checks:
        mark = MARKS[check["allowed"]]
        head = f"{mark} {check['kind']} {check['subject']}"
        if check["allowed"] is None:
            lines.append(f"{head}: could not check: {check['problem']}")
            continue
        if check["allowed"]:
            lines.append(f"{head}: ok")
        else:
            at = f" at {check['denied_at']}" if check["denied_at"] else ""
            lines.append(f"{head}: {check['errno'] or 'denied'}{at}")
        lines.append(f"    observed: {check['observed']}")
        lines.append(f"    expected: {check['expected']}")
        for line in check["evidence"]:
            lines.append(f"    evidence: {line}")
        if not check["allowed"]:
            lines.append("    why:")
            lines.extend(f"      - {r['text']}" for r in check["reasons"])
        elif check["reasons"]:
            lines.append(f"    why: {check['reasons'][-1]['text']}")
        if check["fixes"]:
            lines.append("    fix:")
            for number, fix in enumerate(check["fixes"], 1):
                lines.append(f"      {number}. {fix['why']}")
                if fix["command"]:
                    first, *rest = fix["command"].splitlines()
                    lines.append(f"           $ {first}")
                    lines.extend(f"             {part}" for part in rest)
    return lines


def render_matches(matches: list[dict[str, Any]]) -> list[str]:
    lines = []
    for match in matches:
        lines.append(f"recognised: {match['line']}")
        lines.append(f"  {match['meaning']}")
    return lines


def fix_script(checks: list[dict[str, Any]]) -> list[str]:
    """``--fix``: the first fix of each failed check as a shell script (nothing is run)."""
    lines = ["#!/bin/sh", "# unroot doctor --fix: the narrowest fix of each failed check", "set -e"]
    seen: set[str] = set()
    for check in checks:
        if check["allowed"] is not False:
            continue
        fix = next((f for f in check["fixes"] if f["command"]), None)
        if fix is None:
            lines.append(f"# {check['kind']} {check['subject']}: no command fixes it; see above")
            continue
        if fix["command"] in seen:
            continue
        seen.add(fix["command"])
        lines.append(f"# {check['kind']} {check['subject']}: {fix['why']}")
        lines.append(fix["command"])
    return lines
