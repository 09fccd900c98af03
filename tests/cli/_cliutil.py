"""Helpers for the CLI tests: run ``unroot`` in-process, and check JSON output against the
schemas in src/unroot/schemas/."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from unroot.cli import main

SCHEMAS = Path(__file__).parents[2] / "src" / "unroot" / "schemas"


@functools.cache
def _registry() -> Registry:
    resources = []
    for path in SCHEMAS.glob("*.schema.json"):
        schema = json.loads(path.read_text())
        resources.append((schema["$id"], Resource.from_contents(schema)))
    return Registry().with_resources(resources)


def validate_schema(name: str, document: Any) -> None:
    """Validate ``document`` against ``SCHEMAS/{name}.schema.json`` (its $refs resolved)."""
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    Draft202012Validator(schema, registry=_registry()).validate(document)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``unroot ARGV...`` in this process: the exit code, stdout and stderr."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err
