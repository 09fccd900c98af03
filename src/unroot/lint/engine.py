"""``unroot lint`` end to end: discover → parse → join → situations → rules → suppress →
select/ignore → threshold.

Only :func:`lint_paths` touches the filesystem (it reads the files discovery names, the
Dockerfiles workloads join and the ``.socket`` units services pair with); :func:`lint_texts`
does the rest on texts it is given, so tests and ``-`` (standard input) share one path.

Suppression, in order: a rule that does not apply to the situation's kind is not run; the
situation's own ignores (Kubernetes annotation ``unroot.dev/ignore``, compose
``x-unroot-ignore``); ``# unroot: ignore-file=`` of the file a finding is in; ``# unroot:
ignore=`` for its line.  Then ``--select`` (else the config's ``select``) keeps the rules it
names, and ``--ignore`` plus the config's ``ignore`` drop theirs.  Each selector is a rule id,
an id prefix (``UR1``) or a topic.  A rule that raises becomes a UR100 finding naming the rule:
never a traceback.

Paths: a file is one file whatever form it is named in (``Dockerfile``, ``./Dockerfile``,
``$PWD/Dockerfile``): files are compared by :func:`~unroot.lint.discover.path_key`.  Each is
shown in the form it was given; a Dockerfile reached through a workload (``[images]``,
``build:``) that was not given itself in the form of the file that names it; a paired
``.socket`` and a drop-in in their unit's form (the one their lookup uses).  So ``unroot lint
.`` and ``unroot lint $PWD`` report the same findings, relative in and relative out.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from unroot.errors import UsageError
from unroot.lint.config import THRESHOLDS, LintConfig
from unroot.lint.discover import discover, path_key, path_like
from unroot.lint.findings import SEVERITIES, Finding
from unroot.lint.registry import RuleInfo, load_rules, matches
from unroot.situation import Situation, build_situations
from unroot.sources.builds import join_dockerfiles
from unroot.sources.files import Files, Lister, Reader
from unroot.sources.kinds import KINDS, join_files
from unroot.sources.parsed import Location, ParsedFile

#: The failure threshold when neither --failure-threshold nor the config sets one: errors and
#: warnings fail a CI job, ``info`` findings (runs-as-root, duplicate-layer) do not.
DEFAULT_THRESHOLD = "warning"
_SELECTOR = re.compile(r"UR\d{0,3}|[a-z][a-z0-9]*(?:-[a-z0-9]+)+", re.I)


@dataclass(frozen=True, slots=True)
class Unreadable:
    """An input that could not be read, and why (``Permission denied``)."""

    reason: str


Text = str | Unreadable


@dataclass(frozen=True, slots=True)
class LintOptions:
    """The command line's choices (None: the config's, else the default)."""

    kind: str | None = None
    runtime: str | None = None
    select: tuple[str, ...] | None = None
    ignore: tuple[str, ...] = ()
    failure_threshold: str | None = None
    config: LintConfig = field(default_factory=LintConfig)


@dataclass(frozen=True, slots=True)
class LintResult:
    findings: tuple[Finding, ...]
    files: tuple[str, ...]
    threshold: str
    rules: Mapping[str, RuleInfo]
    #: files named explicitly that were not linted, and why (the command notes them on stderr)
    skipped: tuple[tuple[str, str], ...] = ()

    @property
    def failed(self) -> bool:
        limit = SEVERITIES.index(self.threshold)
        return any(SEVERITIES.index(f.severity) <= limit for f in self.findings)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


def parse_selectors(text: str, what: str) -> tuple[str, ...]:
    """``UR105,bind-fails UR1`` → selectors; UsageError for anything else."""
    found = []
    for item in re.split(r"[\s,]+", text.strip()):
        if not item:
            continue
        if not _SELECTOR.fullmatch(item):
            raise UsageError(f"{what}: {item!r} is not a rule id (UR105), prefix (UR1) or topic")
        found.append(item.upper() if item.upper().startswith("UR") else item.lower())
    return tuple(found)


# -- parsing and joining ----------------------------------------------------------------------
def _parse_all(
    inputs: Sequence[tuple[str, str, Text]], files: Files, builder: str | None
) -> list[ParsedFile]:
    """Each kind's files through its joiner (``sources/kinds.py``), in the order given; a file
    a joiner names in another form (a unit's socket or drop-in) after them."""
    parsed: dict[str, ParsedFile] = {}
    given: dict[str, list[tuple[str, str]]] = {}
    for path, kind, text in inputs:
        if isinstance(text, Unreadable):
            message = f"cannot read this file: {text.reason}"
            parsed[path] = ParsedFile(path, kind, problems=((Location(path), message),))
        elif kind not in KINDS:  # pragma: no cover - discover checks
            raise UsageError(f"{path}: no parser for kind {kind!r}")
        else:
            given.setdefault(kind, []).append((path, text))
    for kind, files_of_kind in given.items():
        for result in join_files(kind, files_of_kind, files, builder):
            parsed[result.path] = result
    order = {path: i for i, (path, _, _) in enumerate(inputs)}
    return sorted(parsed.values(), key=lambda p: order.get(p.path, len(order)))


# -- rules ------------------------------------------------------------------------------------
def _internal(info: RuleInfo, where: Location, exc: Exception) -> Finding:
    return Finding(
        file=where.file,
        line=where.line,
        column=where.column,
        rule="UR100",
        topic="parse-error",
        severity="error",
        message=f"internal error in rule {info.id} ({info.topic}): {type(exc).__name__}: {exc} "
        "(please report it)",
    )


def _runs(situation: Situation) -> bool:
    """A unit without a usable ``ExecStart=`` runs nothing (systemd refuses it; UR100 says so
    at info): no rule judges a process that never starts."""
    workload = situation.workload
    return not (situation.kind == "systemd" and workload is not None and not workload.entrypoint)


def _run_rules(
    rules: Mapping[str, RuleInfo],
    files: Sequence[ParsedFile],
    situations: Sequence[Situation],
) -> list[tuple[Finding, tuple[str, ...]]]:
    """Every finding with the situation ignores that apply to it."""
    out: list[tuple[Finding, tuple[str, ...]]] = []
    for info in rules.values():
        if info.removed:
            continue
        if info.scope == "file":
            for parsed in files:
                try:
                    out.extend((info.finding(r), ()) for r in info.check(parsed))
                except Exception as exc:  # a rule's bug must not take the run down
                    out.append((_internal(info, Location(parsed.path), exc), ()))
            continue
        for situation in situations:
            if situation.kind not in info.kinds:
                continue
            try:
                reports = list(info.check(situation))
            except Exception as exc:  # a rule's bug must not take the run down
                out.append((_internal(info, situation.location, exc), ()))
                continue
            out.extend((info.finding(r, situation.assumptions), situation.ignores) for r in reports)
    return out


def _named(finding: Finding, selectors: Iterable[str]) -> bool:
    wanted = {s.upper() for s in selectors}
    return finding.rule.upper() in wanted or finding.topic.upper() in wanted


def _suppressed(
    finding: Finding, situation_ignores: tuple[str, ...], by_path: Mapping[str, ParsedFile]
) -> bool:
    if _named(finding, situation_ignores):
        return True
    parsed = by_path.get(path_key(finding.file))
    if parsed is None:
        return False
    if _named(finding, parsed.file_ignores):
        return True
    return _named(finding, (rule for line, rule in parsed.line_ignores if line == finding.line))


def _selected(finding: Finding, options: LintOptions, rules: Mapping[str, RuleInfo]) -> bool:
    info = rules.get(finding.rule)
    if info is None:  # pragma: no cover - every finding comes from a registered rule
        return True
    select = options.select if options.select is not None else options.config.select
    if select is not None and not any(matches(s, info) for s in select):
        return False
    ignore = (*options.config.ignore, *options.ignore)
    return not any(matches(s, info) for s in ignore)


def lint_texts(
    inputs: Sequence[tuple[str, str, Text]],
    options: LintOptions | None = None,
    read: Reader | None = None,
    list_dir: Lister | None = None,
) -> LintResult:
    """Lint ``(path, kind, text)`` inputs (or :class:`Unreadable`); ``read``
    fetches files the inputs refer to (joined Dockerfiles, paired sockets, drop-ins), None for
    none; ``list_dir`` lists the ``*.conf`` names of a drop-in directory."""
    options = options or LintOptions()
    config = options.config
    threshold = options.failure_threshold or config.failure_threshold or DEFAULT_THRESHOLD
    if threshold not in THRESHOLDS:
        raise UsageError(f"--failure-threshold {threshold!r}: expected {'|'.join(THRESHOLDS)}")
    rules = load_rules()
    filesystem = Files(read, list_dir, key=path_key, like=path_like)
    parsed = _parse_all(inputs, filesystem, config.builder)
    parsed, dockerfiles = join_dockerfiles(
        parsed, filesystem, config.dockerfile_for, config.builder
    )
    situations = [
        situation
        for situation in build_situations(parsed, dockerfiles, config, options.runtime)
        if _runs(situation)
    ]
    linted = {path_key(p.path) for p in parsed}
    parts = [part for p in parsed for part in p.parts if path_key(part.path) not in linted]
    every_file = [
        *parsed,
        *parts,
        *(p for p in dockerfiles.values() if path_key(p.path) not in linted),
    ]
    by_path = {path_key(p.path): p for p in every_file}
    kept: dict[tuple[str, int, int, str, str], Finding] = {}
    for finding, ignores in _run_rules(rules, every_file, situations):
        if _suppressed(finding, ignores, by_path) or not _selected(finding, options, rules):
            continue
        key = (finding.file, finding.line, finding.column, finding.rule, finding.message)
        kept.setdefault(key, finding)
    findings = tuple(sorted(kept.values()))
    files = tuple(dict.fromkeys(p.path for p in every_file))
    return LintResult(findings, files, threshold, rules)


# -- the filesystem edge -------------------------------------------------------------------
def read_text(path: str) -> Text:
    """A file's text (undecodable bytes kept as surrogates for the parsers to report)."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        return Unreadable(exc.strerror or type(exc).__name__)
    return data.decode("utf-8", errors="surrogateescape")


def lint_paths(
    paths: Sequence[str],
    options: LintOptions | None = None,
    stdin_text: str | None = None,
) -> LintResult:
    """Discover and lint ``paths`` (``-`` is ``stdin_text``, which needs ``options.kind``).

    A file named explicitly whose kind cannot be told is not an error: it is listed in
    :attr:`LintResult.skipped` and does not change the exit code.
    """
    options = options or LintOptions()
    skipped: list[tuple[str, str]] = []
    found = discover(paths, options.kind, options.config.exclude, skipped)
    inputs: list[tuple[str, str, Text]] = []
    for path, kind in found:
        text = (stdin_text or "") if path == "-" else read_text(path)
        inputs.append((path, kind, text))
    result = lint_texts(inputs, options, read=_reader, list_dir=_conf_names)
    return replace(result, skipped=tuple(skipped)) if skipped else result


def _conf_names(directory: str) -> list[str]:
    try:
        names = os.listdir(directory or ".")
    except OSError:
        return []
    return sorted(n for n in names if n.endswith(".conf"))


def _reader(path: str) -> str | None:
    if not os.path.isfile(path):
        return None
    text = read_text(path)
    return text if isinstance(text, str) else None
