"""The JSON schemas in src/unroot/schemas/: resolvable offline (each file embeds the schemas it
refers to, scripts/schemas.py keeps them so), and every JSON output starts with
``schema_version`` and validates against its schema — ``explain batch`` lines and
``rules --format json`` included.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from _cliutil import SCHEMAS, run, validate_schema
from jsonschema import Draft202012Validator

from unroot import SCHEMA_VERSION
from unroot.commands.rules import run_rules

ROOT = Path(__file__).resolve().parents[2]


def _script() -> Any:
    spec = importlib.util.spec_from_file_location("schemas_script", ROOT / "scripts/schemas.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_files_are_what_scripts_schemas_writes() -> None:
    script = _script()
    expected = script.bundled(script.load())
    assert set(expected) == {p.name for p in SCHEMAS.glob("*.schema.json")}
    for name, text in expected.items():
        assert (SCHEMAS / name).read_text() == text, f"{name}: run ./dev schemas"


@pytest.mark.parametrize("path", sorted(SCHEMAS.glob("*.schema.json")), ids=lambda p: p.name)
def test_every_ref_resolves_inside_the_file(path: Path) -> None:
    """Resolve every $ref of the file with a registry that holds only this file and refuses
    to fetch anything."""
    from referencing import Registry, Resource
    from referencing.exceptions import Unresolvable

    schema = json.loads(path.read_text())
    Draft202012Validator.check_schema(schema)
    assert schema["$id"] == f"https://unroot.dev/schemas/{path.name}"

    def refuse(uri: str) -> Any:
        raise AssertionError(f"{path.name}: {uri} would be fetched")

    registry = (
        Registry(retrieve=refuse)
        .with_resource(schema["$id"], Resource.from_contents(schema))
        .crawl()
    )
    refs: list[tuple[str, str]] = []

    def collect(node: Any, base: str) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$id"), str):
                base = node["$id"]
            for key, value in node.items():
                if key == "$ref":
                    refs.append((base, value))
                else:
                    collect(value, base)
        elif isinstance(node, list):
            for value in node:
                collect(value, base)

    collect(schema, schema["$id"])
    assert refs
    for base, ref in refs:
        try:
            registry.resolver(base_uri=base).lookup(ref)
        except Unresolvable as exc:
            raise AssertionError(f"{path.name}: {ref} (in {base}) does not resolve") from exc


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code, out, err = run(capsys, *argv)
    assert code in (0, 1), err
    return json.loads(out)


def _first_key(document: dict[str, Any]) -> None:
    assert next(iter(document)) == "schema_version"
    assert document["schema_version"] == SCHEMA_VERSION


@pytest.mark.parametrize(
    ("schema", "argv"),
    [
        ("explain-exec", ["explain", "exec", "--json", "--uid", "1000", "--path", "/bin/x",
                          "--file-caps", "cap_net_bind_service=+ep"]),
        ("explain-bind", ["explain", "bind", "--json", "--port", "80"]),
        ("explain-access", ["explain", "access", "--json", "/", "--uid", "1000", "--gid", "1000"]),
        ("caps-decode", ["caps", "decode", "--json", "0x400"]),
        ("caps-proc", ["caps", "proc", "--json", "self"]),
        ("caps-file", ["caps", "file", "--json", "/bin/sh"]),
        ("lint", ["lint", "--format", "json", str(ROOT / "examples" / "lint")]),
        ("rules", ["rules", "--format", "json"]),
        ("rules", ["rules", "--format", "json", "UR105"]),
        ("rules", ["rules", "--format", "json", "bind-fails"]),
    ],
)  # fmt: skip
def test_outputs_start_with_schema_version_and_validate(
    capsys: pytest.CaptureFixture[str], schema: str, argv: list[str]
) -> None:
    document = _json(capsys, *argv)
    _first_key(document)
    validate_schema(schema, document)


def test_caps_decode_of_several_masks(capsys: pytest.CaptureFixture[str]) -> None:
    documents = _json(capsys, "caps", "decode", "--json", "0x400", "0x1")
    for document in documents:
        _first_key(document)
    validate_schema("caps-decode", documents)


def test_caps_scan(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    document = _json(capsys, "caps", "scan", "--json", str(tmp_path))
    _first_key(document)
    validate_schema("caps-scan", document)


def test_explain_batch_lines(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    questions = [
        {"kind": "exec", "id": 1, "uid": 1000, "path": "/bin/x"},
        {"kind": "bind", "id": "b", "port": 80, "effective": ["net_bind_service"]},
        {"kind": "access", "id": None, "path": "/", "uid": 1000, "gid": 1000},
        {"kind": "nope"},
    ]
    text = "\n".join(json.dumps(q) for q in questions) + "\nnot json\n\n"
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))
    code, out, _ = run(capsys, "explain", "batch")
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == 5
    for line in lines:
        _first_key(line)
        validate_schema("explain-batch", line)
    assert [line.get("id") for line in lines[:3]] == [1, "b", None]
    assert "error" in lines[3]
    assert "error" in lines[4]


def test_rules_json_lists_what_text_lists(capsys: pytest.CaptureFixture[str]) -> None:
    out = io.StringIO()
    assert run_rules([], stdout=out) == 0
    ids = [line.split()[0] for line in out.getvalue().splitlines()]
    document = _json(capsys, "rules", "--format", "json")
    assert [rule["id"] for rule in document["rules"]] == ids
    assert all("doc" not in rule for rule in document["rules"])
    one = _json(capsys, "rules", "--format", "json", "ur105")
    assert [rule["id"] for rule in one["rules"]] == ["UR105"]
    out = io.StringIO()
    run_rules(["UR105"], stdout=out)
    assert one["rules"][0]["doc"].rstrip() in out.getvalue()
    assert run_rules(["--format", "json", "UR999"]) == 2


def test_no_schema_names_a_host_to_fetch() -> None:
    """Every $ref is relative or a fragment; each one resolves to a resource in the file."""
    for path in SCHEMAS.glob("*.schema.json"):
        text = path.read_text()
        for ref in (line.split('"$ref": ')[1] for line in text.splitlines() if '"$ref": ' in line):
            assert not ref.startswith('"http'), (path.name, ref)
    assert os.sep not in "".join(p.name for p in SCHEMAS.iterdir())
