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
an id prefix (``UR1``) or a topic.  Then the severity overrides (the config's ``[severity]``,
then ``--severity``: the later entry wins) set each finding's severity, or drop it (``none``).
A selector in the config or a pragma that names no rule is a warning
(:attr:`LintResult.warnings`), not an error: the file may be read by another version.  A rule
that raises becomes a UR100 finding naming the rule: never a traceback.

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
from unroot.lint.config import THRESHOLDS, LintConfig, severity_override
from unroot.lint.discover import discover, path_key, path_like
from unroot.lint.findings import SEVERITIES, Finding
from unroot.lint.inputs import read_bytes
from unroot.lint.registry import RuleInfo, load_rules, matches
from unroot.lint.rendered import helm_sources, map_rendered, rendered_files
from unroot.situation import Situation, build_situations
from unroot.sources.builds import join_dockerfiles
from unroot.sources.files import Files, Lister, Reader
from unroot.sources.kinds import KINDS, join_files, kind_by_name, kind_by_text
from unroot.sources.parsed import Location, ParsedFile
from unroot.sources.unsupported import What
from unroot.sources.unsupported import not_read as not_read_text

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
    #: --severity: (selector, severity or "none"), applied after the config's
    severity: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class LintResult:
    findings: tuple[Finding, ...]
    files: tuple[str, ...]
    threshold: str
    rules: Mapping[str, RuleInfo]
    #: files and directories that were not linted, and why (the command notes them on stderr)
    skipped: tuple[tuple[str, str], ...] = ()
    #: those of them that could not be read, and why (``permission denied``)
    unread: tuple[tuple[str, str], ...] = ()
    #: inputs recognised but not read, ``(path, what)``: a template, a unit template
    #: (``*.service.in``), a Podman Quadlet unit (each is in ``skipped`` too, with why)
    not_read: tuple[tuple[str, str], ...] = ()
    #: things the user wrote that had no effect (a rule id no rule has), one line each
    warnings: tuple[str, ...] = ()
    #: every file read (inputs and the files they refer to: a Dockerfile of a compose build:,
    #: an ``.env``, a drop-in), so that ``--output`` never overwrites one
    read: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        if self.threshold not in SEVERITIES:  # "none": never fail
            return False
        limit = SEVERITIES.index(self.threshold)
        return any(SEVERITIES.index(f.severity) <= limit for f in self.findings)

    @property
    def exit_code(self) -> int:
        """1 for a finding at or above the threshold; 2 when nothing at all could be read
        (every path given was unreadable: a CI gate must not pass on zero files); else 0."""
        if self.unread and not self.files:
            return 2
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


def parse_severities(text: str, what: str) -> tuple[tuple[str, str], ...]:
    """``UR106=error,runs-as-root=none`` → overrides; UsageError for anything else."""
    found = []
    for item in re.split(r"[\s,]+", re.sub(r"\s*=\s*", "=", text.strip())):
        if not item:
            continue
        selector, equals, level = item.partition("=")
        override = severity_override(selector, level) if equals else None
        if override is None or not _SELECTOR.fullmatch(override[0]):
            raise UsageError(
                f"{what}: {item!r} is not RULE=SEVERITY (UR106=error; a rule id, prefix or topic "
                "= error|warning|info|none)"
            )
        found.append(override)
    return tuple(found)


def unknown_selectors(selectors: Iterable[str], rules: Mapping[str, RuleInfo]) -> list[str]:
    """The selectors that name no registered rule (a typo, or a rule of another version)."""
    return [s for s in selectors if not any(matches(s, info) for info in rules.values())]


def _config_warnings(config: LintConfig, rules: Mapping[str, RuleInfo]) -> list[str]:
    where = config.path or "config"
    named = [
        *(("select", s) for s in config.select or ()),
        *(("ignore", s) for s in config.ignore),
        *(("severity", s) for s, _ in config.severity),
    ]
    return [
        f"{where}: {key}: {selector!r} names no rule (ignored)"
        for key, selector in named
        if unknown_selectors([selector], rules)
    ]


def _pragma_warnings(files: Iterable[ParsedFile], rules: Mapping[str, RuleInfo]) -> list[str]:
    out: list[str] = []
    for parsed in files:
        named = [*parsed.file_ignores, *(rule for _, rule in parsed.line_ignores)]
        for selector in dict.fromkeys(named):
            if not any(
                selector.upper() in (info.id, info.topic.upper()) for info in rules.values()
            ):
                out.append(f"{parsed.path}: # unroot: ignore names no rule: {selector!r}")
    return out


def _situation_warnings(
    situations: Iterable[Situation], rules: Mapping[str, RuleInfo]
) -> list[str]:
    """``unroot.dev/ignore`` / ``x-unroot-ignore`` entries that name no rule, once each."""
    out: dict[str, None] = {}
    for situation in situations:
        for selector in situation.ignores:
            if not any(selector.upper() in (i.id, i.topic.upper()) for i in rules.values()):
                where = f"{situation.location.file}:{situation.location.line}"
                out[f"{where}: ignore annotation names no rule: {selector!r}"] = None
    return list(out)


def _severities(
    overrides: Iterable[tuple[str, str]], rules: Mapping[str, RuleInfo]
) -> dict[str, str]:
    """Rule id → its severity override ("none": dropped); later overrides win."""
    table: dict[str, str] = {}
    for selector, level in overrides:
        table.update({rule_id: level for rule_id, info in rules.items() if matches(selector, info)})
    return table


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
    return _active(info, options)


def _active(info: RuleInfo, options: LintOptions) -> bool:
    """The rule runs: ``--select`` (else the config's ``select``) names it, no ignore does."""
    select = options.select if options.select is not None else options.config.select
    if select is not None and not any(matches(s, info) for s in select):
        return False
    ignore = (*options.config.ignore, *options.ignore)
    return not any(matches(s, info) for s in ignore)


def _selection_warnings(
    options: LintOptions, rules: Mapping[str, RuleInfo], overrides: Mapping[str, str]
) -> list[str]:
    """Rules selected by name whose every one a severity override of ``none`` turns off."""
    select = options.select if options.select is not None else options.config.select
    if not select:
        return []
    ignore = (*options.config.ignore, *options.ignore)
    chosen = [
        rule_id
        for rule_id, info in rules.items()
        if any(matches(s, info) for s in select) and not any(matches(s, info) for s in ignore)
    ]
    if not chosen or any(overrides.get(rule_id) != "none" for rule_id in chosen):
        return []
    return [
        f"every selected rule ({', '.join(chosen)}) has severity none: no rule runs, nothing "
        "can be found"
    ]


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
    if not any(_active(info, options) for info in rules.values()):
        raise UsageError(
            "no rule selected: select and ignore leave no rule to run (unroot rules lists them)"
        )
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
    overrides = _severities((*config.severity, *options.severity), rules)
    kept: dict[tuple[str, int, int, str, str], Finding] = {}
    for found, ignores in _run_rules(rules, every_file, situations):
        if _suppressed(found, ignores, by_path) or not _selected(found, options, rules):
            continue
        level = overrides.get(found.rule, found.severity)
        if level == "none":
            continue
        finding = replace(found, severity=level) if level != found.severity else found
        key = (finding.file, finding.line, finding.column, finding.rule, finding.message)
        kept.setdefault(key, finding)
    findings = tuple(sorted(kept.values()))
    files = tuple(dict.fromkeys(p.path for p in every_file))
    warnings = (
        *_selection_warnings(options, rules, overrides),
        *_config_warnings(config, rules),
        *_pragma_warnings(every_file, rules),
        *_situation_warnings(situations, rules),
    )
    return LintResult(findings, files, threshold, rules, warnings=tuple(warnings))


# -- the filesystem edge -------------------------------------------------------------------
def read_text(path: str) -> Text:
    """A regular file's text (undecodable bytes kept as surrogates for the parsers to report);
    UsageError for a file that is not regular or is over the input limit."""
    try:
        data = read_bytes(path)
    except OSError as exc:
        return Unreadable(exc.strerror or type(exc).__name__)
    return data.decode("utf-8", errors="surrogateescape")


def stdin_kind(text: str, name: str = "-", kind: str | None = None) -> str:
    """The kind of standard input: ``kind`` when given, else what ``name``
    (``--stdin-filename``) says, else what its text says; UsageError when none tells."""
    found = kind or (kind_by_name(name) if name != "-" else None) or kind_by_text(text)
    if found is None:
        raise UsageError(
            "standard input: cannot tell what kind of text this is (give --kind "
            f"{'|'.join(KINDS)} or --stdin-filename NAME)"
        )
    return found


def lint_paths(
    paths: Sequence[str],
    options: LintOptions | None = None,
    stdin_text: str | None = None,
    stdin_name: str | None = None,
) -> LintResult:
    """Discover and lint ``paths``; ``-`` is ``stdin_text``, named ``stdin_name`` in findings
    (default ``-``), of the kind :func:`stdin_kind` tells.

    A file named explicitly whose kind cannot be told is not an error: it is listed in
    :attr:`LintResult.skipped` and does not change the exit code; nor is a template, a unit
    template or a Quadlet unit, named, found or on standard input (listed in
    :attr:`LintResult.not_read` too); nor does a file or directory that cannot be read
    (listed in :attr:`LintResult.unread` too), unless nothing at all was read.  Findings in a
    Kubernetes document of standard input that follows a Helm ``# Source:
    chart/templates/x.yaml`` comment name that template (:mod:`unroot.lint.rendered`).
    """
    options = options or LintOptions()
    name = stdin_name or "-"
    from_stdin = "-" in paths
    skipped: list[tuple[str, str]] = []
    unread: list[tuple[str, str]] = []
    not_read: list[tuple[str, What]] = []
    found = discover(
        paths,
        options.kind,
        options.config.exclude,
        skipped,
        unread=unread,
        not_read=not_read,
        stdin_kind=stdin_kind(stdin_text or "", name, options.kind) if from_stdin else None,
    )
    if not found and not skipped:
        raise UsageError(nothing_found(paths, options.kind))
    inputs: list[tuple[str, str, Text]] = []
    for path, kind in found:
        if path == "-":
            unsupported = not_read_text(name, stdin_text or "", kind)
            if unsupported is not None:  # a template piped in: said, as a file's is
                not_read.append((name, unsupported[0]))
                skipped.append((name, unsupported[1]))
                continue
            inputs.append((name, kind, stdin_text or ""))
        else:
            inputs.append((path, kind, read_text(path)))
    referred: list[str] = []

    def reader(path: str) -> str | None:
        referred.append(path)
        return _reader(path)

    result = lint_texts(inputs, options, read=reader, list_dir=_conf_names)
    result = replace(result, read=(*(p for p, _ in found if p != "-"), *referred))
    sources = helm_sources(stdin_text) if stdin_text and ("-", "k8s") in found else ()
    if sources:
        findings = tuple(sorted(map_rendered(f, name, sources) for f in result.findings))
        stdin_files = rendered_files(stdin_text or "", sources, name)
        stdin_files = (*stdin_files, *(f.file for f in findings if f.file not in stdin_files))
        files = (g for f in result.files for g in (stdin_files if f == name else (f,)))
        result = replace(result, findings=findings, files=tuple(dict.fromkeys(files)))
    if skipped:
        result = replace(
            result, skipped=tuple(skipped), unread=tuple(unread), not_read=tuple(not_read)
        )
    return result


#: what each kind is called in "nothing found" (``--kind``)
_KIND_NAMES = {
    "dockerfile": "Dockerfile",
    "compose": "compose file",
    "k8s": "Kubernetes manifest",
    "systemd": "systemd unit",
}


def nothing_found(paths: Sequence[str], kind: str | None) -> str:
    """The usage error of a search that found no input at all (an empty directory, ``--kind``
    or ``exclude`` leaving nothing): a CI gate that lints zero files must not pass."""
    names = list(_KIND_NAMES.values())
    what = _KIND_NAMES.get(kind or "", "") or f"{', '.join(names[:-1])} or {names[-1]}"
    where = " ".join(paths) or "."
    return f"no {what} found in {where}" + (f" (--kind {kind})" if kind else "")


def _conf_names(directory: str) -> list[str]:
    try:
        names = os.listdir(directory or ".")
    except OSError:
        return []
    return sorted(n for n in names if n.endswith(".conf"))


def _reader(path: str) -> str | None:
    """A file an input refers to (a Dockerfile, ``.env``, a socket unit); None when it is
    missing, unreadable, not a regular file or over the limit."""
    if not os.path.isfile(path):
        return None
    try:
        text = read_text(path)
    except UsageError:
        return None
    return text if isinstance(text, str) else None
