"""Input unroot cannot read, or that the runtime would reject.

What it does
    Reports what the parsers could not read: a YAML or Dockerfile syntax error, a value of the
    wrong type, an unknown instruction, a malformed ``# unroot:`` pragma, a file that cannot be
    opened.  The rest of the file is still analysed where it can be.

Why is this bad?
    A file unroot cannot read is a file it cannot check: every other rule is silent about the
    part it could not understand.  Most of these problems also stop the runtime itself
    (``docker compose config``, ``kubectl apply``, ``docker build`` reject them).  Unset compose
    variables and malformed pragmas are warnings; everything else is an error.

Example
    A compose file whose indentation breaks the YAML.

Use instead
    Fix the syntax; ``docker compose config`` or ``kubectl apply --dry-run=client`` show the
    same problem.

References
    - Compose Specification, interpolation: https://github.com/compose-spec/compose-spec
    - Dockerfile reference: https://docs.docker.com/reference/dockerfile/

UR100: a YAML syntax error
    # kind: compose
    services:
      web:
        image: nginx
       ports: ["80:80"]

Okay: the same file, indented correctly
    # kind: compose
    services:
      web:
        image: nginx
        ports: ["80:80"]
"""

from __future__ import annotations

from collections.abc import Iterator

from unroot.lint.facts import ParsedFile
from unroot.lint.registry import Report, rule

_SOFT = ("variable ", "unroot pragma", "malformed unroot pragma")


@rule("UR100", topic="parse-error", severity="error", scope="file")
def parse_error(parsed: ParsedFile) -> Iterator[Report]:
    """Input unroot cannot read, or that the runtime would reject."""
    for location, message in parsed.problems:
        soft = message.startswith(_SOFT) or "pragma" in message
        yield Report(location, message, severity="warning" if soft else None)
