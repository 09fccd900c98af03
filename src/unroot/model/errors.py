"""One error root; the CLI turns any :class:`UnrootError` into one line and an exit code.

The classes live in the model because the model raises them and imports nothing outside itself;
``unroot.errors`` is their public name (the same classes, re-exported)."""

from __future__ import annotations


class UnrootError(Exception):
    """Base of every error unroot reports to a user. ``exit_code`` is what the CLI returns."""

    exit_code = 2


class UsageError(UnrootError):
    """Bad input: a malformed flag value, spec, capability name or file. Exit code 2."""


class ParseError(UsageError):
    """Input that could not be parsed; ``where`` names the file/line or the field."""

    def __init__(self, message: str, where: str | None = None) -> None:
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)


class EnvironmentProblem(UnrootError):
    """The live system cannot answer (no permission, missing /proc, Docker down). Exit code 3."""

    exit_code = 3
