"""Input unroot cannot read, or that the runtime would reject.

What it does
    Reports what the parsers could not read: a YAML or Dockerfile syntax error, a value of the
    wrong type, an unknown instruction, a malformed ``# unroot:`` pragma, a file that cannot be
    opened.  The rest of the file is still analysed where it can be.  With ``builder =
    "classic"`` in ``.unroot.toml``, also what the classic builder (``DOCKER_BUILDKIT=0``)
    refuses: ``RUN --mount`` (any ``RUN`` flag) and ``COPY``/``ADD --chmod`` ("the --mount
    option requires BuildKit"), here-documents (Docker 20.10: "unknown instruction: …"; later
    classic builders parse them and never run them) — errors — and ``--link``, ``--parents``,
    ``--exclude``, which Docker 20.10's classic builder does not parse ("Unknown flag: link")
    and later ones ignore — warnings.  A ``# syntax=`` line does not help: the classic builder
    ignores it.

Why is this bad?
    A file unroot cannot read is a file it cannot check: every other rule is silent about the
    part it could not understand.  Most of these problems also stop the runtime itself
    (``docker compose config``, ``kubectl apply``, ``docker build`` reject them).  Unset compose
    variables and malformed pragmas are warnings; everything else is an error.

Example
    A compose file whose indentation breaks the YAML.

Use instead
    Fix the syntax; ``docker compose config`` or ``kubectl apply --dry-run=client`` show the
    same problem.  For what the classic builder refuses: build with BuildKit
    (``DOCKER_BUILDKIT=1 docker build``, the default since Docker 23, or ``docker buildx
    build``) and drop ``builder = "classic"``.

References
    - Compose Specification, interpolation: https://github.com/compose-spec/compose-spec
    - Dockerfile reference: https://docs.docker.com/reference/dockerfile/
    - moby ``daemon/builder/dockerfile/dispatchers.go`` (``dispatchRun``, ``dispatchCopy``):
      "the --mount option requires BuildKit"; observed on Docker 20.10.24 with
      ``DOCKER_BUILDKIT=0``

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

Okay: the same under BuildKit (Docker 23 and later: here-documents in the builtin frontend)
    # kind: dockerfile
    FROM debian:12-slim
    RUN --mount=type=bind,source=dp,target=/mnt/dp install -m 0755 /mnt/dp /usr/local/bin/dp
    RUN <<EOT
    echo building
    EOT
    CMD ["dp"]

Okay: COPY --chown is accepted by the classic builder
    --- .unroot.toml
    builder = "classic"
    --- Dockerfile
    FROM debian:12-slim
    COPY --chown=10001:10001 dp /usr/local/bin/dp
    CMD ["dp"]

UR100: RUN --mount under the classic builder
    --- .unroot.toml
    builder = "classic"
    --- Dockerfile
    FROM debian:12-slim
    RUN --mount=type=bind,source=dp,target=/mnt/dp install -m 0755 /mnt/dp /usr/local/bin/dp
    CMD ["dp"]

UR100: a here-document under the classic builder
    --- .unroot.toml
    builder = "classic"
    --- Dockerfile
    # syntax=docker/dockerfile:1.4
    FROM debian:12-slim
    RUN <<EOT
    echo building
    EOT
"""

from __future__ import annotations

from collections.abc import Iterator

from unroot.lint.registry import Report, rule
from unroot.sources.parsed import ParsedFile

_SOFT = ("variable ", "unroot pragma", "malformed unroot pragma")
_CLASSIC = "the classic builder"
_BUILDKIT_FIX = (
    "build with BuildKit: `DOCKER_BUILDKIT=1 docker build` (the default since Docker 23) or "
    '`docker buildx build`, and drop builder = "classic" from .unroot.toml'
)


@rule("UR100", topic="parse-error", severity="error", scope="file")
def parse_error(parsed: ParsedFile) -> Iterator[Report]:
    """Input unroot cannot read, or that the runtime would reject."""
    for location, message in parsed.problems:
        soft = message.startswith(_SOFT) or "pragma" in message
        if message.startswith(_CLASSIC):
            soft = "later classic builders accept it" in message
            yield Report(location, message, _BUILDKIT_FIX, "warning" if soft else None)
            continue
        yield Report(location, message, severity="warning" if soft else None)
