"""Precision and recall of ``unroot lint`` on a hand-judged corpus of real files.

    .venv/bin/python bench/precision.py [--corpus DIR] [--verdicts FILE] [--check] [--json]

``./dev precision`` runs this.  The corpus defaults to ``$UNROOT_REALWORLD`` or
``../shared/corpus/real-world`` beside the checkout (84 unchanged files from public projects; it
is not part of this repository, so when it is absent this prints one line and exits 0).  The
verdicts default to ``bench/realworld-verdicts.toml``: every finding judged by hand, ``[[true]]``
or ``[[false]]``.

The installed ``unroot`` lints the whole corpus once (``--format json``, the default runtime and
threshold), timed.  Each warning or error is then *true* (it matches a ``[[true]]`` entry),
*false* (a ``[[false]]`` entry) or *unjudged* (neither: counted against precision until judged):

* precision = true / (all warnings and errors);
* recall = ``[[true]]`` warning/error entries found / all of them (the problems known to be in the
  corpus; a judged-true info is reported, not counted: infos never fail a CI run; an entry with
  ``required = false`` is true when reported but not expected from a run over the whole corpus).

``--check`` exits 1 when a warning or error is false or unjudged or a judged-true finding is
missing (the test suite runs it when the corpus is present).  ``--json`` prints the scores as one
JSON object.  A corpus or verdicts file that cannot be read is one line and exit 2.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VERDICTS = ROOT / "bench" / "realworld-verdicts.toml"
FAILING = ("warning", "error")


def default_corpus() -> Path:
    env = os.environ.get("UNROOT_REALWORLD")
    return Path(env) if env else ROOT.parent / "shared" / "corpus" / "real-world"


@dataclass(frozen=True)
class Verdict:
    verdict: str  # "true" or "false"
    file: str
    rule: str
    severity: str | None
    line: int | None
    why: str
    required: bool = True

    def matches(self, finding: dict[str, Any], rel: str) -> bool:
        return (
            rel == self.file
            and finding["rule"] == self.rule
            and (self.line is None or finding.get("line") == self.line)
        )


@dataclass
class Score:
    files: int = 0
    seconds: float = 0.0
    true: list[tuple[dict[str, Any], Verdict]] = field(default_factory=list)
    false: list[tuple[dict[str, Any], Verdict]] = field(default_factory=list)
    unjudged: list[dict[str, Any]] = field(default_factory=list)
    infos: int = 0
    true_infos: int = 0
    missing: list[Verdict] = field(default_factory=list)
    expected: int = 0
    skipped: list[str] = field(default_factory=list)

    @property
    def alarms(self) -> int:
        return len(self.true) + len(self.false) + len(self.unjudged)

    @property
    def precision(self) -> float | None:
        return len(self.true) / self.alarms if self.alarms else None

    @property
    def recall(self) -> float | None:
        return (self.expected - len(self.missing)) / self.expected if self.expected else None

    @property
    def clean(self) -> bool:
        return not self.false and not self.unjudged and not self.missing


class BadInput(Exception):
    pass


def load_verdicts(path: Path) -> list[Verdict]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise BadInput(f"{path}: {exc}") from None
    verdicts: list[Verdict] = []
    for kind in ("true", "false"):
        entries = data.get(kind, [])
        if not isinstance(entries, list):
            raise BadInput(f"{path}: [[{kind}]] must be an array of tables")
        for number, entry in enumerate(entries, 1):
            if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
                raise BadInput(f"{path}: [[{kind}]] entry {number} needs file = '…'")
            if not isinstance(entry.get("rule"), str):
                raise BadInput(f"{path}: [[{kind}]] entry {number} needs rule = 'URnnn'")
            line = entry.get("line")
            if line is not None and not isinstance(line, int):
                raise BadInput(f"{path}: [[{kind}]] entry {number}: line must be a number")
            severity = entry.get("severity")
            if severity is not None and severity not in ("info", *FAILING):
                raise BadInput(f"{path}: [[{kind}]] entry {number}: unknown severity {severity!r}")
            required = entry.get("required", True)
            if not isinstance(required, bool):
                raise BadInput(f"{path}: [[{kind}]] entry {number}: required must be true or false")
            verdicts.append(
                Verdict(
                    kind,
                    entry["file"],
                    entry["rule"],
                    severity,
                    line,
                    entry.get("why", ""),
                    required,
                )
            )
    unknown = set(data) - {"true", "false"}
    if unknown:
        raise BadInput(f"{path}: unknown table {sorted(unknown)[0]!r} (only [[true]], [[false]])")
    return verdicts


def unroot_command() -> list[str]:
    script = Path(sys.executable).parent / "unroot"
    return [str(script)] if script.exists() else [sys.executable, "-m", "unroot"]


def lint(corpus: Path) -> tuple[dict[str, Any], float, list[str]]:
    argv = [*unroot_command(), "lint", "--format", "json", "--failure-threshold", "error", "."]
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=corpus, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise BadInput(f"unroot lint exited {done.returncode}: {done.stderr.strip()[:300]}")
    skipped = [line for line in done.stderr.splitlines() if line.startswith("unroot: skipped")]
    return json.loads(done.stdout), seconds, skipped


def score(report: dict[str, Any], verdicts: list[Verdict]) -> Score:
    result = Score(files=len(report.get("files", [])))
    found: set[int] = set()
    for finding in report["findings"]:
        rel = os.path.normpath(finding["file"])
        match = next(
            (i for i, v in enumerate(verdicts) if v.matches(finding, rel)),
            None,
        )
        if match is not None:
            found.add(match)
        if finding["severity"] not in FAILING:
            result.infos += 1
            if match is not None and verdicts[match].verdict == "true":
                result.true_infos += 1
            continue
        if match is None:
            result.unjudged.append(finding)
        elif verdicts[match].verdict == "true":
            result.true.append((finding, verdicts[match]))
        else:
            result.false.append((finding, verdicts[match]))
    expected = [
        (i, v)
        for i, v in enumerate(verdicts)
        if v.verdict == "true" and v.severity in FAILING and v.required
    ]
    result.expected = len(expected)
    result.missing = [v for i, v in expected if i not in found]
    return result


def where(finding: dict[str, Any]) -> str:
    rel = os.path.normpath(finding["file"])
    return f"{rel}:{finding.get('line', '?')} {finding['rule']} {finding['severity']}"


def ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def render(corpus: Path, result: Score) -> str:
    lines = [
        f"corpus: {corpus} ({result.files} files linted in {result.seconds:.2f} s, "
        f"{result.files / result.seconds:.0f} files/s)"
        if result.seconds
        else f"corpus: {corpus}",
        *(f"  {line}" for line in result.skipped),
        f"warnings and errors: {result.alarms} ({len(result.true)} true, {len(result.false)} "
        f"false, {len(result.unjudged)} unjudged)",
        f"precision {ratio(result.precision)} ({len(result.true)}/{result.alarms})   "
        f"recall {ratio(result.recall)} ({result.expected - len(result.missing)}/"
        f"{result.expected} judged-true problems found)",
        f"infos: {result.infos} ({result.true_infos} judged true; infos never fail a run)",
    ]
    for finding, verdict in result.false:
        lines.append(f"FALSE     {where(finding)}: {finding['message'][:100]}")
        lines.append(f"          judged: {verdict.why}")
    for finding in result.unjudged:
        lines.append(f"UNJUDGED  {where(finding)}: {finding['message'][:100]}")
    for verdict in result.missing:
        at = f":{verdict.line}" if verdict.line else ""
        lines.append(f"MISSING   {verdict.file}{at} {verdict.rule}: {verdict.why}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, help="default: $UNROOT_REALWORLD or ../shared/…")
    parser.add_argument("--verdicts", type=Path, default=VERDICTS)
    parser.add_argument("--check", action="store_true", help="exit 1 unless every alarm is true")
    parser.add_argument("--json", action="store_true", help="the scores as one JSON object")
    args = parser.parse_args(argv)
    corpus: Path = args.corpus or default_corpus()
    if not corpus.is_dir():
        if args.corpus is not None:
            print(f"precision: {corpus}: not a directory", file=sys.stderr)
            return 2
        print(f"precision: no real-world corpus at {corpus}; nothing to measure")
        return 0
    try:
        verdicts = load_verdicts(args.verdicts)
        report, seconds, skipped = lint(corpus.resolve())
    except BadInput as exc:
        print(f"precision: {exc}", file=sys.stderr)
        return 2
    result = score(report, verdicts)
    result.seconds, result.skipped = seconds, skipped
    if args.json:
        json.dump(
            {
                "corpus": str(corpus),
                "files": result.files,
                "seconds": round(seconds, 3),
                "alarms": result.alarms,
                "true": len(result.true),
                "false": len(result.false),
                "unjudged": len(result.unjudged),
                "precision": result.precision,
                "recall": result.recall,
                "expected": result.expected,
                "missing": [f"{v.file}:{v.line or ''} {v.rule}" for v in result.missing],
                "infos": result.infos,
            },
            sys.stdout,
            indent=2,
        )
        print()
    else:
        sys.stdout.write(render(corpus, result))
    return 1 if args.check and not result.clean else 0


if __name__ == "__main__":
    sys.exit(main())
