"""What the classic builder (``DOCKER_BUILDKIT=0``) refuses in a Dockerfile BuildKit accepts.

The parser (:mod:`unroot.sources.dockerfile.parser`) reports each as a problem of the file
when the build is known to use the classic builder.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from unroot.sources.dockerfile.buildkit import RawInstruction

_BUILDKIT_ONLY = "requires BuildKit"  # "…. Refer to https://docs.docker.com/go/buildkit/ …"
#: COPY/ADD flags the classic builder of Docker 20.10 parses (``--chmod`` only to refuse it)
_CLASSIC_FLAGS = {
    "COPY": frozenset({"chown", "from", "chmod"}),
    "ADD": frozenset({"chown", "chmod"}),
}


def classic_refusals(
    instructions: Sequence[RawInstruction], text: str, known: frozenset[str]
) -> list[tuple[int, str]]:
    """What the classic builder (``DOCKER_BUILDKIT=0``) refuses, one problem per instruction.

    Observed with Docker 20.10.24 (Debian 12's docker.io) and read in moby's
    ``daemon/builder/dockerfile/dispatchers.go``: any ``RUN`` flag fails with "the --mount
    option requires BuildKit …" (``dispatchRun`` refuses the first flag), ``COPY``/``ADD
    --chmod`` with "the --chmod option requires BuildKit …" (``dispatchCopy``/``dispatchAdd``);
    ``--link``, ``--parents``, ``--exclude``, ``--checksum``, ``--keep-git-dir`` fail to parse on
    20.10 ("Unknown flag: link") — later classic builders parse them (moby vendors BuildKit's
    parser) and ignore them, so those are warnings.  Here-documents fail to parse on 20.10
    (the body's first line is read as an instruction: "unknown instruction: ECHO"); later ones
    parse them but never run them (the classic dispatcher does not read ``RunCommand.Files``).
    ``--chown`` is accepted.  A ``# syntax=`` directive does not help: the classic builder
    ignores it.
    """
    syntax = re.search(r"(?im)\A(?:[ \t]*#[^\n]*\n)*?[ \t]*#[ \t]*syntax[ \t]*=[ \t]*(\S+)", text)
    note = (
        f" (the `# syntax={syntax.group(1)}` directive does not help: the classic builder "
        "ignores it)"
        if syntax
        else ""
    )
    found: list[tuple[int, str]] = []
    lines = text.split("\n")
    for ins in instructions:
        cmd = ins.cmd
        names = [f.lstrip("-").partition("=")[0].lower() for f in ins.flags]
        if cmd == "RUN" and names:
            flag = names[0]
            found.append(
                (
                    ins.start_line,
                    f"the classic builder refuses RUN --{flag}: the build fails with "
                    f'"the --{flag} option {_BUILDKIT_ONLY}"{note}',
                )
            )
            continue
        if cmd in _CLASSIC_FLAGS and "chmod" in names:
            found.append(
                (
                    ins.start_line,
                    f"the classic builder refuses {cmd} --chmod: the build fails with "
                    f'"the --chmod option {_BUILDKIT_ONLY}"{note}',
                )
            )
            continue
        if cmd in ("RUN", "COPY", "ADD") and ins.heredocs:
            body = next(
                (
                    (number, line.split()[0])
                    for number, line in enumerate(
                        lines[ins.start_line : ins.end_line], start=ins.start_line + 1
                    )
                    if line.strip() and not line.lstrip().startswith("#")
                ),
                None,
            )
            said = (
                f': Docker 20.10 fails with "dockerfile parse error line {body[0]}: unknown '
                f'instruction: {body[1].upper()}"'
                if body is not None and body[1].upper() not in known
                else ": Docker 20.10 fails to parse it"
            )
            found.append(
                (
                    ins.start_line,
                    f"the classic builder does not support here-documents (`{cmd} <<…`){said}; "
                    f"later classic builders parse them but never run them{note}",
                )
            )
            continue
        unknown = [n for n in names if n not in _CLASSIC_FLAGS.get(cmd, frozenset(names))]
        if unknown:
            found.append(
                (
                    ins.start_line,
                    f"the classic builder of Docker 20.10 refuses {cmd} --{unknown[0]} "
                    f'("dockerfile parse error line {ins.start_line}: Unknown flag: '
                    f'{unknown[0]}"); later classic builders accept it and ignore it{note}',
                )
            )
    return found
