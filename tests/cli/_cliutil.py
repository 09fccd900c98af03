"""Helpers for the CLI tests: run ``unroot`` in-process, and check JSON output against the
schemas in src/unroot/schemas/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from unroot.cli import main

SCHEMAS = Path(__file__).parents[2] / "src" / "unroot" / "schemas"


def _offline(uri: str) -> Resource:
    raise AssertionError(f"a schema $ref left the shipped file: {uri} (run ./dev schemas)")


def validate_schema(name: str, document: Any) -> None:
    """Validate ``document`` against ``SCHEMAS/{name}.schema.json`` on its own: every $ref must
    resolve inside the file (the referenced schemas are embedded), never through the network."""
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    Draft202012Validator(schema, registry=Registry(retrieve=_offline)).validate(document)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``unroot ARGV...`` in this process: the exit code, stdout and stderr."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err
