"""Input unroot cannot read, or that the runtime would reject.

What it does
    Reports what the parsers could not read: a YAML or Dockerfile syntax error, a value of the
    wrong type, an unknown instruction, a Dockerfile line longer than 65535 bytes (BuildKit's
    parser refuses it: Go's ``bufio.Scanner`` default buffer), a malformed ``# unroot:`` pragma,
    a file that cannot be opened.  The rest of the file is still analysed where it can be.  With
    ``builder = "classic"`` in ``.unroot.toml``, also what the classic builder
    (``DOCKER_BUILDKIT=0``) refuses: ``RUN --mount`` (any ``RUN`` flag) and ``COPY``/``ADD
    --chmod`` ("the --mount option requires BuildKit"), here-documents (Docker 20.10: "unknown
    instruction: …"; later classic builders parse them and never run them) — errors — and
    ``--link``, ``--parents``, ``--exclude``, which Docker 20.10's classic builder does not
    parse ("Unknown flag: link") and later ones ignore — warnings.  A ``# syntax=`` line does
    not help: the classic builder ignores it.

Why is this bad?
    A file unroot cannot read is a file it cannot check: every other rule is silent about the
    part it could not understand.  Most of these problems also stop the runtime itself
    (``docker compose config``, ``kubectl apply``, ``docker build`` reject them).  Malformed
    pragmas are warnings; everything else is an error.  A compose variable that nothing sets is
    an *info* with an ``assumes:`` line, not a failure: many projects write their ``.env`` at
    install time (mailcow's ``generate_config.sh``) or expect the shell to export it, so lint
    cannot know its value and checks the file with the empty string compose would substitute.
    When the variable sits in a field that decides who runs with which privileges (``user``,
    ``group_add``, ``ports``, ``volumes``, ``cap_add``, ``network_mode``, ``sysctls``,
    ``command`` …), the assumption says so: what the other rules found about that field holds
    only for the empty value.  A value that cannot be read only because a variable in it is
    empty (``"${CALLS_PORT}:${CALLS_PORT}/udp"`` reads ``:/udp``) is the same info, saying the
    value is not checked — never a second finding.  A required variable (``${KUBECONFIG:?}``)
    that nothing sets is an info too, once: ``docker compose config`` refuses the project until
    it is set, which is the deployer's job (a ``make`` target exports it), so lint assumes it
    will be and checks the rest.  ``PWD`` (every shell sets it) is the project directory and
    ``COMPOSE_PROJECT_NAME`` the top-level ``name:`` or the directory's name, as compose sets
    it, each with an assumption.  A systemd unit without ``ExecStart=`` (commented out, as in
    traefik's contrib unit) is an *info*: systemd refuses to start it ("Service has no
    ExecStart= setting, which is only allowed for Type=oneshot services. Refusing."), so
    nothing runs and no other rule judges it — silence would hide that nothing was checked,
    and an error would flag a template its project ships on purpose.  An empty unit file is
    masked (systemd's ``null_or_empty()``, as a link to ``/dev/null``, which the command line
    skips with a note): an info, nothing is judged.  An unknown ``%``
    specifier in a unit is a warning: systemd ignores the setting that holds it — except in
    ``ExecStart=``, where it is an error: systemd refuses the whole unit ("Unit configuration
    has fatal error"), unless the line has the ``-`` prefix, which makes systemd ignore only
    that line.  ``%%`` is a literal ``%``, and so is a trailing ``%`` or one before a character
    that is not a letter or digit (systemd's ``specifier_printf()``).

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

UR100: an unset variable in user: an info, the assumption shown (exit code 0)
    # kind: compose
    services:
      web:
        image: nginx:1.27
        user: "${UID}:${GID:-1000}"

UR100: a port that reads ':/udp' only because CALLS_PORT is unset: one info, not checked
    # kind: compose
    services:
      calls:
        image: calls:1
        ports:
          - "${CALLS_PORT}:${CALLS_PORT}/udp"

UR100: a required variable nothing sets: an info (compose refuses the project until it is set)
    # kind: compose
    services:
      dashboard:
        image: dashboard:1
        volumes:
          - ${KUBECONFIG:?}:${KUBECONFIG:?}

Okay: PWD is the project directory, as the shell that runs compose sets it
    # kind: compose
    services:
      gateway:
        image: kong:3
        volumes:
          - ${PWD}/kong.yml:/kong/kong.yml:ro

UR100: an empty unit file is masked: an info, and nothing else is judged
    --- rc.service

UR100: a unit whose ExecStart= is commented out: an info, and nothing else is judged
    # kind: systemd
    [Service]
    #ExecStart=/usr/local/bin/traefik --configfile=/etc/traefik/traefik.toml
    Restart=always

Okay: %t in a user unit's ExecStart= is $XDG_RUNTIME_DIR, /run/user/UID
    --- u/.config/systemd/user/app.service
    [Service]
    ExecStart=/usr/bin/app --socket %t/app/app.sock

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

import re
from collections.abc import Iterator

from unroot.lint.registry import Report, rule
from unroot.sources.parsed import Location, ParsedFile

_SOFT = ("variable ", "unroot pragma", "malformed unroot pragma")
_UNSET = re.compile(r"variable (\w+)(?: and \w+)* (?:is|are) not set(?: in ([\w.]+))?:")
#: compose fields whose value decides who runs, with which privileges, on which ports and mounts
_DECISIVE = frozenset(
    {
        "user",
        "group_add",
        "ports",
        "ports.published",
        "ports.target",
        "expose",
        "volumes",
        "volumes.source",
        "volumes.target",
        "cap_add",
        "cap_drop",
        "network_mode",
        "security_opt",
        "privileged",
        "entrypoint",
        "command",
        "image",
        "build.context",
        "build.dockerfile",
        "build.target",
    }
)
_CLASSIC = "the classic builder"
_BUILDKIT_FIX = (
    "build with BuildKit: `DOCKER_BUILDKIT=1 docker build` (the default since Docker 23) or "
    '`docker buildx build`, and drop builder = "classic" from .unroot.toml'
)


@rule("UR100", topic="parse-error", severity="error", scope="file")
def parse_error(parsed: ParsedFile) -> Iterator[Report]:
    """Input unroot cannot read, or that the runtime would reject."""
    for location, message in parsed.problems:
        unset = _UNSET.match(message)
        if unset is not None:
            yield _unset_variable(location, message, unset.group(1), unset.group(2) or "")
            continue
        if message.startswith(("no ExecStart=", "an empty unit file is masked")):
            yield Report(location, message, severity="info")
            continue
        specifier = "% specifier" in message and "systemd refuses" not in message
        soft = message.startswith(_SOFT) or "pragma" in message or specifier
        if message.startswith(_CLASSIC):
            soft = "later classic builders accept it" in message
            yield Report(location, message, _BUILDKIT_FIX, "warning" if soft else None)
            continue
        yield Report(location, message, severity="warning" if soft else None)


def _unset_variable(location: Location, message: str, name: str, field: str) -> Report:
    """An unset compose variable is an assumption, not a failure: a project's ``.env`` is
    often written at install time (mailcow's ``generate_config.sh``) or the shell exports it."""
    decisive = field in _DECISIVE or field.startswith("sysctls")
    what = f"this {field} value" if field else "this value"
    if " not checked: " in message:
        assumption = (
            f"{what} is not checked: it cannot be read while {name} is empty; set {name} in .env "
            "and lint again to check it"
        )
    elif ": it is required (" in message:
        assumption = (
            f"{name} is set by whoever deploys the project (compose requires it); lint checks "
            "the rest of the file with it empty"
        )
    else:
        assumption = f"{name} is empty, as compose substitutes it when nothing sets it"
    if decisive and " not checked: " not in message:
        assumption += (
            f": the findings about this service's {field} hold only for an empty {name}; set it "
            "in .env and lint again to check the value the service gets"
        )
    return Report(location, message, severity="info", assumptions=(assumption,))
