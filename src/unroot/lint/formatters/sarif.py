"""``unroot lint --format sarif``: SARIF 2.1.0 for GitHub code scanning and other SARIF viewers.

One run, one ``tool.driver`` with every registered rule (its docstring becomes ``help``), one
result per finding.  URIs are relative to ``%SRCROOT%`` (the directory unroot ran in, which in CI
is the checkout), with forward slashes; files outside it get absolute ``file:`` URIs.  The output
is deterministic: rules sorted by id, results by location, artifacts by URI.

Each result carries ``partialFingerprints["unroot/v1"]``: a hash of the rule, the file and the
normalised message (not the line number, so an edit above a finding does not re-open it), plus
an occurrence counter for identical findings in one file.  GitHub computes its own
``primaryLocationLineHash`` from the checkout when uploading.

The fix goes into the message and ``properties.fix``, not into SARIF ``fixes``: those need exact
byte replacements, which a fix such as "add ``cap_add: [NET_BIND_SERVICE]`` to the service" is
not.

References: SARIF 2.1.0 (OASIS Standard, errata 01); GitHub's "SARIF support for code scanning"
(``security-severity``, ``precision``, ``partialFingerprints``, ``tags``).
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath
from typing import Any, Protocol
from urllib.parse import quote

from unroot import __version__
from unroot.lint.findings import Finding
from unroot.lint.ruledoc import RuleDoc
from unroot.wrapping import wrap

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
INFORMATION_URI = "https://unroot.dev"
#: A rule's documentation page; ``{id}`` is the rule id (``UR104``).
HELP_URI = "https://unroot.dev/rules/{id}"
SRCROOT = "%SRCROOT%"
FINGERPRINT_KEY = "unroot/v1"

#: unroot severity → SARIF ``level`` and CodeQL's ``problem.severity``.
LEVELS = {"error": "error", "warning": "warning", "info": "note"}
PROBLEM_SEVERITY = {"error": "error", "warning": "warning", "info": "recommendation"}

#: GitHub's ``security-severity`` (0.1-3.9 low, 4.0-6.9 medium, 7.0-8.9 high, 9.0+ critical)
#: and the ``security`` tag, for the topics that are about privilege or exposure: a service
#: running as uid 0 (UR109), a capability granted that nothing can use (UR107), a host
#: credential or root-equivalent (the Docker socket, ``/etc/shadow``, CA and SSH host keys)
#: bind-mounted into a container (UR108, whose fix never widens access to those).  The others
#: predict an outage (the service will not start, exec or bind: UR101-UR106, UR110-UR118) or
#: an input unroot cannot read (UR100): GitHub shows them as plain alerts by ``level``.
SECURITY_SEVERITY = {
    "runs-as-root": "5.0",
    "root-only-mount": "4.0",
    "useless-cap-add": "3.0",
}
#: ``automationDetails.id`` of the run: GitHub's category is what comes before the last ``/``
#: (``--sarif-category web`` → ``unroot/lint/web/``), so runs of several configurations in
#: one repository do not replace each other's alerts.
AUTOMATION_ID = "unroot/lint/"
#: How often a finding is right.  Default "high": every finding comes from the model's verdict;
#: "medium" where the verdict rests on what a static file cannot show (the host's files, the
#: runtime's netns sysctl).
PRECISION = {
    "parse-error": "very-high",
    "root-only-mount": "medium",
    "works-only-by-sysctl": "medium",
}
DEFAULT_PRECISION = "high"


class RuleLike(Protocol):
    """What the SARIF formatter reads of a registered rule (``unroot.lint.registry.RuleInfo``)."""

    @property
    def id(self) -> str: ...
    @property
    def topic(self) -> str: ...
    @property
    def severity(self) -> str: ...
    @property
    def doc(self) -> str: ...
    @property
    def summary(self) -> str: ...
    @property
    def removed(self) -> bool: ...


def render(
    findings: Sequence[Finding],
    files: Sequence[str],
    rules: Mapping[str, RuleLike],
    *,
    root: str | None = None,
    category: str | None = None,
    skipped: Sequence[tuple[str, str]] = (),
    unread: Sequence[tuple[str, str]] = (),
) -> str:
    """The SARIF log as JSON text (UTF-8, two-space indent, trailing newline)."""
    log = sarif_log(
        findings, files, rules, root=root, category=category, skipped=skipped, unread=unread
    )
    return json.dumps(log, indent=2, ensure_ascii=False) + "\n"


def sarif_log(
    findings: Sequence[Finding],
    files: Sequence[str],
    rules: Mapping[str, RuleLike],
    *,
    root: str | None = None,
    category: str | None = None,
    skipped: Sequence[tuple[str, str]] = (),
    unread: Sequence[tuple[str, str]] = (),
) -> dict[str, Any]:
    """The SARIF log as a JSON-ready dict; ``root`` is ``%SRCROOT%`` (default: the cwd);
    ``category`` goes into ``automationDetails.id`` (:data:`AUTOMATION_ID`).  Each path not
    linted (``skipped``; those of them in ``unread`` could not be read: a warning, the others
    a note) is a ``toolExecutionNotification`` of the invocation, so code scanning shows it."""
    base = os.path.abspath(root if root is not None else os.getcwd())
    descriptors = _descriptors(findings, rules)
    index = {descriptor["id"]: i for i, descriptor in enumerate(descriptors)}

    locations: dict[str, dict[str, str]] = {}

    def where(path: str) -> dict[str, str]:
        if path not in locations:
            locations[path] = _artifact_location(path, base)
        return locations[path]

    for path in files:
        where(path)
    for finding in findings:
        where(finding.file)
        for related_path, _, _ in finding.related:
            where(related_path)

    scanned = {_key(where(path)) for path in files}
    artifact_keys = sorted({_key(loc) for loc in locations.values()})
    artifact_index = {key: i for i, key in enumerate(artifact_keys)}
    artifacts = []
    for key in artifact_keys:
        artifact: dict[str, Any] = {"location": _location_from_key(key)}
        if key in scanned:
            artifact["roles"] = ["analysisTarget"]
        artifacts.append(artifact)

    def physical(path: str, line: int, column: int | None) -> dict[str, Any]:
        loc = where(path)
        region: dict[str, int] = {"startLine": max(1, line)}
        if column is not None:
            region["startColumn"] = max(1, column)
        return {
            "artifactLocation": {**loc, "index": artifact_index[_key(loc)]},
            "region": region,
        }

    ordered = sorted(
        findings,
        key=lambda f: (
            _key(where(f.file)),
            f.line,
            f.column,
            f.rule,
            f.message,
            f.fix or "",
            f.severity,
            f.topic,
            f.assumptions,
            f.related,
        ),
    )
    seen: dict[str, int] = {}
    results = []
    for finding in ordered:
        digest = _fingerprint(finding, where(finding.file)["uri"])
        seen[digest] = seen.get(digest, 0) + 1
        result: dict[str, Any] = {
            "ruleId": finding.rule,
            "ruleIndex": index[finding.rule],
            "level": LEVELS.get(finding.severity, "warning"),
            "message": {"text": _message(finding)},
            "locations": [
                {"physicalLocation": physical(finding.file, finding.line, finding.column)}
            ],
            "partialFingerprints": {FINGERPRINT_KEY: f"{digest}:{seen[digest]}"},
        }
        if finding.related:
            result["relatedLocations"] = [
                {
                    "id": i,
                    "physicalLocation": physical(path, line, None),
                    "message": {"text": _clean(what)},
                }
                for i, (path, line, what) in enumerate(finding.related, start=1)
            ]
        properties: dict[str, Any] = {"topic": finding.topic, "severity": finding.severity}
        if finding.fix:
            properties["fix"] = _clean(finding.fix)
        if finding.assumptions:
            properties["assumptions"] = [_clean(a) for a in finding.assumptions]
        result["properties"] = properties
        results.append(result)

    return {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "unroot",
                        "fullName": f"unroot lint {__version__}",
                        "informationUri": INFORMATION_URI,
                        "version": __version__,
                        "semanticVersion": semantic_version(__version__),
                        "rules": descriptors,
                    }
                },
                "automationDetails": {"id": automation_id(category)},
                "invocations": [_invocation(skipped, unread)],
                "originalUriBaseIds": {
                    SRCROOT: {
                        "uri": _directory_uri(base),
                        "description": {"text": "The directory unroot lint ran in."},
                    }
                },
                "artifacts": artifacts,
                "results": results,
                "columnKind": "unicodeCodePoints",
            }
        ],
    }


def _invocation(
    skipped: Sequence[tuple[str, str]], unread: Sequence[tuple[str, str]]
) -> dict[str, Any]:
    invocation: dict[str, Any] = {"executionSuccessful": True}
    not_read = set(unread)
    notes = [
        {
            "level": "warning" if (path, reason) in not_read else "note",
            "message": {"text": f"skipped {path}: {reason}"},
        }
        for path, reason in skipped
    ]
    if notes:
        invocation["toolExecutionNotifications"] = notes
    return invocation


def automation_id(category: str | None) -> str:
    """``unroot/lint/`` or ``unroot/lint/CATEGORY/`` (the trailing ``/``: no run id)."""
    category = (category or "").strip("/")
    return f"{AUTOMATION_ID}{category}/" if category else AUTOMATION_ID


# -- rules --------------------------------------------------------------------------------------
def _descriptors(
    findings: Sequence[Finding], rules: Mapping[str, RuleLike]
) -> list[dict[str, Any]]:
    """Every rule that can report (not removed) and every rule a finding names, by id."""
    wanted = {rule_id for rule_id, info in rules.items() if not info.removed}
    out = {rule_id: _descriptor(rules[rule_id]) for rule_id in wanted}
    for finding in findings:
        if finding.rule not in out:
            info = rules.get(finding.rule)
            out[finding.rule] = _descriptor(info) if info is not None else _bare_descriptor(finding)
    return [out[rule_id] for rule_id in sorted(out)]


def _descriptor(info: RuleLike) -> dict[str, Any]:
    doc = RuleDoc.parse(info.doc)
    summary = _clean(_plain(info.summary or doc.summary or info.topic))
    what = doc.section("What it does")
    security = info.topic in SECURITY_SEVERITY
    properties: dict[str, Any] = {
        "tags": [info.topic, "security"] if security else [info.topic],
        "precision": PRECISION.get(info.topic, DEFAULT_PRECISION),
        "problem.severity": PROBLEM_SEVERITY.get(info.severity, "warning"),
    }
    if security:
        properties["security-severity"] = SECURITY_SEVERITY[info.topic]
    return {
        "id": info.id,
        "name": camel_case(info.topic),
        "shortDescription": {"text": summary},
        "fullDescription": {"text": _clean(_one_paragraph(what) if what else summary)},
        "help": {
            "text": _clean(_help_text(doc, info.id)),
            "markdown": _clean(_help_markdown(doc, info.id)),
        },
        "helpUri": HELP_URI.format(id=info.id),
        "defaultConfiguration": {"level": LEVELS.get(info.severity, "warning")},
        "properties": properties,
    }


def _bare_descriptor(finding: Finding) -> dict[str, Any]:
    """A rule the mapping does not know (should not happen): enough for a valid log."""
    return {
        "id": finding.rule,
        "name": camel_case(finding.topic),
        "shortDescription": {"text": finding.topic},
        "helpUri": HELP_URI.format(id=finding.rule),
        "properties": {"tags": [finding.topic]},
    }


def camel_case(topic: str) -> str:
    """``exec-eperm`` → ``ExecEperm`` (SARIF ``reportingDescriptor.name``)."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", topic))


_SURROGATE = re.compile("[\ud800-\udfff]")
_RST_LITERAL = re.compile(r"``(.+?)``", re.S)
_FENCE_BY_KIND = {"dockerfile": "dockerfile", "compose": "yaml", "k8s": "yaml", "systemd": "ini"}


def _help_text(doc: RuleDoc, rule_id: str) -> str:
    """Plain text: the doc's prose reflowed (a literal may span the doc's line breaks) and
    wrapped at 100 columns, literals as single backquotes (``x`` → `x`)."""
    parts = [f"{rule_id}: {_plain(doc.summary)}"]
    for heading, body in doc.sections:
        parts.append(f"{heading}\n{_text_body(body)}")
    for example in doc.examples:
        label = "Okay" if example.tag == "Okay" else f"Reported ({example.tag})"
        parts.append(f"{label}: {example.title}\n{textwrap.indent(example.block, '    ')}")
    return "\n\n".join(parts)


def _help_markdown(doc: RuleDoc, rule_id: str) -> str:
    parts = [f"**{rule_id}**: {_plain(doc.summary)}"]
    for heading, body in doc.sections:
        parts.append(f"## {heading}\n\n{_markdown_body(body)}")
    if doc.examples:
        parts.append("## Examples (checked by the test suite)")
    for example in doc.examples:
        label = "Okay" if example.tag == "Okay" else f"Reported as {example.tag}"
        parts.append(f"**{label}**: {_plain(example.title)}")
        parts.extend(
            _fenced(name, kind or _kind_of(name, text), text)
            for name, kind, text in example.files()
        )
    return "\n\n".join(parts)


def _plain(text: str) -> str:
    """reStructuredText literals (````x````) as Markdown ones (```x```), a literal the doc
    wrapped across lines joined again."""
    return _RST_LITERAL.sub(lambda m: "`" + " ".join(m.group(1).split()) + "`", text)


def _text_body(body: str) -> str:
    """A section for ``help.text``: paragraphs reflowed and wrapped, list items one per
    line (their continuation lines indented under the item)."""
    out = []
    for paragraph in _markdown_body(body).split("\n\n"):
        lines = paragraph.split("\n")
        if len(lines) > 1 or lines[0].startswith(("- ", "* ")):  # a list: items stay items
            out.append("\n".join("\n".join(wrap(item, 100, "    ", "      ")) for item in lines))
        else:
            out.append("\n".join(wrap(paragraph, 100, "    ", "    ")))
    return "\n\n".join(out)


def _markdown_body(body: str) -> str:
    """Prose paragraphs reflowed; list items (``- …``) kept one per line."""
    paragraphs = []
    for paragraph in re.split(r"\n\s*\n", body):
        lines = [line.strip() for line in paragraph.splitlines() if line.strip()]
        if lines and lines[0].startswith(("- ", "* ")):  # a list: continuation lines join
            items: list[str] = []
            for line in lines:
                if line.startswith(("- ", "* ")) or not items:
                    items.append(line)
                else:
                    items[-1] += " " + line
            paragraphs.append("\n".join(items))
        else:
            paragraphs.append(" ".join(lines))
    return _plain("\n\n".join(p for p in paragraphs if p))


def _one_paragraph(text: str) -> str:
    return _plain(" ".join(text.split()))


def _kind_of(name: str, text: str) -> str:
    """The kind of an example file as ``unroot lint`` finds it (:mod:`unroot.sources.kinds`:
    by name, a YAML file by its content); ``toml`` for the config."""
    from unroot.sources.kinds import kind_by_content, kind_by_name

    base = posixpath.basename(name).lower()
    if base.endswith(".toml"):
        return "toml"
    kind = kind_by_name(name)
    if kind is None and base.endswith((".yaml", ".yml")):
        kind = kind_by_content(text) or "yaml"
    return kind or ""


def _fenced(name: str, kind: str, text: str) -> str:
    language = _FENCE_BY_KIND.get(kind, kind)
    fence = "~~~~" if "```" in text else "```"
    title = f"`{name}`\n\n" if name else ""
    return f"{title}{fence}{language}\n{text}\n{fence}"


# -- results ------------------------------------------------------------------------------------
def _message(finding: Finding) -> str:
    text = finding.message.strip()
    if finding.fix:
        text = f"{text}\n\nFix: {finding.fix.strip()}"
    return _clean(text)


def _fingerprint(finding: Finding, uri: str) -> str:
    message = " ".join(finding.message.split())
    material = "\0".join((finding.rule, uri, message))
    return hashlib.sha256(material.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _clean(text: str) -> str:
    """Lone surrogates (undecodable bytes the parsers kept) as U+FFFD: SARIF is UTF-8."""
    return _SURROGATE.sub("\ufffd", text)


# -- locations ----------------------------------------------------------------------------------
def _artifact_location(path: str, base: str) -> dict[str, str]:
    """``{"uri", "uriBaseId"}`` relative to ``base``, or an absolute ``file:`` URI outside it."""
    native = path if os.path.isabs(path) else os.path.join(base, path)
    absolute = os.path.normpath(native)
    relative = os.path.relpath(absolute, base).replace(os.sep, "/")
    if relative != ".." and not relative.startswith("../"):
        first, slash, rest = _quote(relative).partition("/")
        # a colon in the first segment would read as a scheme (RFC 3986 4.2): `file:/etc/passwd`
        # is /etc/passwd, not the repository's `file:` directory
        return {"uri": first.replace(":", "%3A") + slash + rest, "uriBaseId": SRCROOT}
    return {"uri": "file://" + _quote(absolute.replace(os.sep, "/"))}


def _directory_uri(path: str) -> str:
    uri = PurePosixPath(path).as_uri()
    return uri if uri.endswith("/") else uri + "/"


def _quote(path: str) -> str:
    return quote(path, safe="/-._~!$&'()*+,;=:@", errors="surrogateescape")


def _key(location: Mapping[str, str]) -> str:
    base = location.get("uriBaseId")
    return f"{base}\0{location['uri']}" if base else f"\0{location['uri']}"


def _location_from_key(key: str) -> dict[str, str]:
    base, uri = key.split("\0", 1)
    return {"uri": uri, "uriBaseId": base} if base else {"uri": uri}


# -- versions -----------------------------------------------------------------------------------
_PEP440 = re.compile(
    r"^(?:\d+!)?(?P<release>\d+(?:\.\d+)*)"
    r"(?:(?P<pre>a|b|rc)(?P<pre_n>\d+))?"
    r"(?:\.post(?P<post>\d+))?"
    r"(?:\.dev(?P<dev>\d+))?"
    r"(?:\+(?P<local>[a-z0-9.]+))?$"
)
_PRE_NAMES = {"a": "alpha", "b": "beta", "rc": "rc"}


def semantic_version(version: str) -> str:
    """A canonical PEP 440 version as SemVer 2.0 (``0.1.0.dev0`` → ``0.1.0-dev.0``)."""
    found = _PEP440.match(version)
    if found is None:
        return "0.0.0+" + re.sub(r"[^0-9A-Za-z-]+", ".", version).strip(".")
    release = [int(part) for part in found.group("release").split(".")]
    core = ".".join(str(n) for n in (*release, 0, 0)[:3])
    pre: list[str] = []
    build: list[str] = [str(n) for n in release[3:]]
    if found.group("pre"):
        pre += [_PRE_NAMES[found.group("pre")], str(int(found.group("pre_n")))]
    if found.group("post"):
        build += ["post", str(int(found.group("post")))]
    if found.group("dev"):
        (build if found.group("post") else pre).extend(["dev", str(int(found.group("dev")))])
    if found.group("local"):
        build += found.group("local").split(".")
    text = core
    if pre:
        text += "-" + ".".join(pre)
    if build:
        text += "+" + ".".join(build)
    return text
