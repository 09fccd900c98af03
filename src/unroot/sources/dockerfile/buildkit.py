"""Typed adapter around the ``dockerfile`` package (PyPI): BuildKit's own Dockerfile parser.

``dockerfile`` (asottile/dockerfile) is a cgo build of ``moby/buildkit``'s
``frontend/dockerfile/parser``: it gives every instruction with its start/end line, flags,
JSON-vs-shell form, heredocs and the effect of the ``# escape=`` directive and line
continuations — exactly BuildKit's reading of the file.  It is a Go extension, so a crash inside
it would kill the interpreter; the two inputs found to do that are neutralised here:

* a string that is not valid UTF-8 (lone surrogates) makes its argument conversion return NULL
  and the Go side segfaults → such characters are replaced with U+FFFD first;
* NUL characters truncate the text (it is passed as a C string) → replaced with spaces first
  (the caller reports them).

A third defect: BuildKit's flag scanner builds flag strings byte by byte, so a non-ASCII
character in a flag (``--from=bü``) comes back mis-encoded or, for some characters, as bytes
that are not UTF-8 at all (UnicodeDecodeError in the wrapper).  So every non-ASCII character is
handed to the parser as an ASCII token (``\x01`` hex ``\x02``) and restored in what it returns;
line numbers are unaffected.

This is the only module that imports ``dockerfile``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import dockerfile as _dockerfile  # type: ignore[import-not-found]


class BuildKitParseError(Exception):
    """The parser rejected the whole text (it does not say where)."""


@dataclass(frozen=True, slots=True)
class RawHeredoc:
    name: str
    content: str
    file_descriptor: int


@dataclass(frozen=True, slots=True)
class RawInstruction:
    """One instruction as BuildKit's parser returns it; ``cmd`` upper-cased ("" if none)."""

    cmd: str
    sub_cmd: str | None  # ONBUILD's instruction
    json: bool  # exec form (a JSON array)
    original: str
    start_line: int
    end_line: int
    flags: tuple[str, ...]
    value: tuple[str, ...]
    heredocs: tuple[RawHeredoc, ...]


_ENCODE = re.compile(r"[^\x00-\x7f]|[\x01\x02]")
_DECODE = re.compile(r"\x01([0-9a-f]{1,6})\x02")


def safe_text(text: str) -> str:
    """``text`` as the Go side can take it (see the module doc)."""
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", " ")


def _encode(text: str) -> str:
    return _ENCODE.sub(lambda m: f"\x01{ord(m.group()):x}\x02", text)


def _decode(value: object) -> str:
    return _DECODE.sub(lambda m: chr(int(m.group(1), 16)), str(value))


def parse_instructions(text: str) -> tuple[RawInstruction, ...]:
    """All instructions of ``text``; BuildKitParseError when the parser rejects it."""
    try:
        commands = _dockerfile.parse_string(_encode(safe_text(text)))
    except (_dockerfile.GoParseError, _dockerfile.GoIOError, UnicodeError) as exc:
        raise BuildKitParseError(_decode(exc)) from None
    result: list[RawInstruction] = []
    for command in commands:
        result.append(
            RawInstruction(
                cmd=_decode(command.cmd or "").upper(),
                sub_cmd=_decode(command.sub_cmd).upper() if command.sub_cmd else None,
                json=bool(command.json),
                original=_decode(command.original or ""),
                start_line=int(command.start_line),
                end_line=int(command.end_line),
                flags=tuple(_decode(flag) for flag in command.flags),
                value=tuple(_decode(value) for value in command.value),
                heredocs=tuple(
                    RawHeredoc(_decode(h.name), _decode(h.content), int(h.file_descriptor))
                    for h in (command.heredocs or ())
                ),
            )
        )
    return tuple(result)


def known_instructions() -> frozenset[str]:
    """The instruction keywords the parser knows, upper-cased."""
    return frozenset(str(name).upper() for name in _dockerfile.all_cmds())
