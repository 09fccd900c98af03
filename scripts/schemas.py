#!/usr/bin/env python3
"""Make the JSON schemas in src/unroot/schemas/ resolvable offline (``./dev schemas``).

A schema's cross-file ``$ref`` (``explain-exec.schema.json#/$defs/reasons``) resolves against its
``$id`` (``https://unroot.dev/schemas/…``); a validator that does not have that resource goes to
the network for it. So each schema carries, under ``$defs`` keyed by their ``$id``, a copy of
every schema it refers to, directly or not (a JSON Schema 2020-12 compound document, §9.3): the
embedded resource keeps its ``$id``, so the same ``$ref`` resolves to it with no registry and no
network, in any 2020-12 validator.

The hand-edited part of each file is the source; this script strips the embedded copies, embeds
them again from the other files, and writes every file in one canonical layout (2-space JSON).
``tests/cli/test_schemas.py`` fails when a file is not what this script writes.

    scripts/schemas.py           rewrite the files
    scripts/schemas.py --check   exit 1 and name the files that are out of date
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urljoin

DIRECTORY = Path(__file__).resolve().parent.parent / "src" / "unroot" / "schemas"
BASE = "https://unroot.dev/schemas/"


def _own(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema without the copies embedded in it."""
    own = dict(schema)
    defs = {k: v for k, v in own.get("$defs", {}).items() if not k.startswith(BASE)}
    if defs:
        own["$defs"] = defs
    else:
        own.pop("$defs", None)
    return own


def _refs(node: Any, base: str) -> set[str]:
    """The absolute URIs (no fragment) of the resources ``node`` refers to."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                found.add(urldefrag(urljoin(base, value)).url)
            else:
                found |= _refs(value, base)
    elif isinstance(node, list):
        for value in node:
            found |= _refs(value, base)
    return found


def load(directory: Path = DIRECTORY) -> dict[str, dict[str, Any]]:
    """Each schema's own part, by its $id."""
    schemas = {}
    for path in sorted(directory.glob("*.schema.json")):
        own = _own(json.loads(path.read_text(encoding="utf-8")))
        if own.get("$id") != BASE + path.name:
            raise SystemExit(f"schemas.py: {path.name}: $id must be {BASE + path.name}")
        schemas[own["$id"]] = own
    return schemas


def bundled(schemas: dict[str, dict[str, Any]]) -> dict[str, str]:
    """File name → the text it must have."""
    out = {}
    for uri, own in schemas.items():
        needed: set[str] = set()
        todo = _refs(own, uri) - {uri}
        while todo:
            ref = todo.pop()
            if ref not in schemas:
                raise SystemExit(f"schemas.py: {uri} refers to {ref}, which is not shipped")
            if ref not in needed:
                needed.add(ref)
                todo |= _refs(schemas[ref], ref) - {uri} - needed
        document = dict(own)
        if needed:
            document["$defs"] = {**own.get("$defs", {}), **{r: schemas[r] for r in sorted(needed)}}
        name = uri.removeprefix(BASE)
        out[name] = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    return out


def main(argv: list[str]) -> int:
    expected = bundled(load())
    stale = [
        name
        for name, text in expected.items()
        if (DIRECTORY / name).read_text(encoding="utf-8") != text
    ]
    if argv[1:] == ["--check"]:
        for name in stale:
            print(f"schemas.py: {name} is out of date (run ./dev schemas)", file=sys.stderr)
        return 1 if stale else 0
    for name in stale:
        (DIRECTORY / name).write_text(expected[name], encoding="utf-8")
        print(f"wrote {DIRECTORY / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
