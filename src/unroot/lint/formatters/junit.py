"""``--format junit``: a JUnit XML report, for GitLab's ``artifacts:reports:junit`` and Jenkins'
``junit`` step (the de-facto schema both read: ``testsuites`` > ``testsuite`` > ``testcase`` >
``failure``)::

    <testsuites name="unroot lint" tests="3" failures="2" errors="0" skipped="0" time="0">
      <testsuite name="compose.yaml" tests="2" failures="2" errors="0" skipped="0" time="0">
        <testcase classname="compose.yaml" name="UR103 exec-eperm at 6:5" file="compose.yaml"
                  line="6" time="0">
          <failure type="error" message="exec fails with EPERM: …">compose.yaml:6:5: …</failure>
        </testcase>
      </testsuite>
      <testsuite name="Dockerfile" tests="1" failures="0" …>
        <testcase classname="Dockerfile" name="unroot lint" file="Dockerfile" time="0"/>
      </testsuite>
    </testsuites>

One test suite per linted file (as ESLint's and checkov's reports group them), one failed test
case per finding whatever its severity (``failure/@type`` says which; the exit code, not this
report, applies ``--failure-threshold``), and one passed test case ``unroot lint`` for a file
without findings, so GitLab and Jenkins count it as checked.  The failure's body is the finding
in full: the GNU line, the fix and the assumptions.  GitLab's test report shows a case's
``classname`` as its suite (the file, here) and its ``name`` as the test, keys cases by the two
and keeps only the first of duplicates, and shows the failure's body (not its ``message``): so
names are unique within a file (a second finding of a rule at one place gets `` (2)``) and the
body carries everything.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence

from unroot.lint.findings import Finding
from unroot.lint.formatters import gnu
from unroot.lint.formatters._xml import serialise, xml_text
from unroot.lint.registry import RuleInfo

CLEAN_CASE = "unroot lint"


def _body(finding: Finding) -> str:
    lines = [gnu.line(finding)]
    if finding.fix:
        lines.append(f"fix: {finding.fix.strip()}")
    lines.extend(f"assumes: {assumption}" for assumption in finding.assumptions)
    lines.extend(f"related: {path}:{line}: {what}" for path, line, what in finding.related)
    return xml_text("\n".join(lines))


def _counts(element: ET.Element, tests: int, failures: int) -> None:
    element.set("tests", str(tests))
    element.set("failures", str(failures))
    element.set("errors", "0")
    element.set("skipped", "0")
    element.set("time", "0")


def render(findings: Sequence[Finding], files: Sequence[str], rules: Mapping[str, RuleInfo]) -> str:
    del rules
    root = ET.Element("testsuites", name="unroot lint")
    by_file: dict[str, list[Finding]] = {path: [] for path in files}
    for finding in sorted(findings):
        by_file.setdefault(finding.file, []).append(finding)
    total = 0
    for path, found in by_file.items():
        name = xml_text(path)
        suite = ET.SubElement(root, "testsuite", name=name)
        _counts(suite, max(1, len(found)), len(found))
        total += max(1, len(found))
        if not found:
            ET.SubElement(suite, "testcase", classname=name, name=CLEAN_CASE, file=name, time="0")
            continue
        seen: dict[str, int] = {}
        for finding in found:
            title = f"{finding.rule} {finding.topic} at {finding.line}:{finding.column}"
            seen[title] = seen.get(title, 0) + 1
            if seen[title] > 1:
                title += f" ({seen[title]})"
            case = ET.SubElement(
                suite,
                "testcase",
                classname=name,
                name=title,
                file=name,
                line=str(max(1, finding.line)),
                time="0",
            )
            failure = ET.SubElement(
                case,
                "failure",
                type=finding.severity,
                message=xml_text(" ".join(finding.message.split())),
            )
            failure.text = _body(finding)
    _counts(root, total, len(findings))
    return serialise(root)
