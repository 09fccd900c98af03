"""``--format checkstyle``: Checkstyle's XML report, which reviewdog (``-f=checkstyle``), Jenkins
warnings-ng (``checkStyle``), SonarQube's external issues importers and many CI dashboards read::

    <checkstyle version="4.3">
      <file name="compose.yaml">
        <error line="6" column="5" severity="error" message="exec fails with EPERM: …
          Fix: add `cap_add: [NET_BIND_SERVICE]` …" source="UR103"/>
      </file>
    </checkstyle>

One ``<file>`` per linted file (an empty one for a clean file, as Checkstyle writes), one
``<error>`` per finding; ``severity`` is unroot's (``error``, ``warning``, ``info``: Checkstyle's
own names), ``source`` the rule id (hadolint's convention).  Text XML cannot carry (control
characters, undecodable bytes) is escaped.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence

from unroot.lint.findings import Finding
from unroot.lint.formatters._xml import serialise, xml_text
from unroot.lint.registry import RuleInfo

#: The Checkstyle report version the format follows (the root element's ``version``).
CHECKSTYLE_VERSION = "4.3"


def _message(finding: Finding) -> str:
    text = finding.message.strip()
    return f"{text}\nFix: {finding.fix.strip()}" if finding.fix else text


def render(findings: Sequence[Finding], files: Sequence[str], rules: Mapping[str, RuleInfo]) -> str:
    del rules
    root = ET.Element("checkstyle", version=CHECKSTYLE_VERSION)
    by_file: dict[str, list[Finding]] = {path: [] for path in files}
    for finding in sorted(findings):
        by_file.setdefault(finding.file, []).append(finding)
    for path, found in by_file.items():
        element = ET.SubElement(root, "file", name=xml_text(path))
        for finding in found:
            ET.SubElement(
                element,
                "error",
                line=str(max(1, finding.line)),
                column=str(max(1, finding.column)),
                severity=finding.severity,
                message=xml_text(_message(finding)),
                source=finding.rule,
            )
    return serialise(root)
