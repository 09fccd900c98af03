"""One error root; the CLI turns any :class:`UnrootError` into one line and an exit code.

The public name of the error classes; they are defined in :mod:`unroot.model.errors`, because
the model raises them and imports nothing outside itself."""

from __future__ import annotations

from unroot.model.errors import EnvironmentProblem, ParseError, UnrootError, UsageError

__all__ = ["EnvironmentProblem", "ParseError", "UnrootError", "UsageError"]
