"""``--format json``: ``{"schema_version": 1, "findings": [...], "files": [...]}``
(PRODUCT.md; the schema is ``unroot/schemas/lint.schema.json``).  Each finding starts with the
keys ``rule``, ``topic``, ``severity``, ``message``, ``file``, ``line``, ``column``, ``fix``,
then ``assumptions`` and ``related``.  ``skipped``, present only when something was,
lists the paths not linted and why (``{"path": "secrets", "reason": "permission denied"}``)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from unroot import SCHEMA_VERSION
from unroot.lint.findings import Finding
from unroot.lint.registry import RuleInfo
from unroot.printable import valid_utf8


def render(
    findings: Sequence[Finding],
    files: Sequence[str],
    rules: Mapping[str, RuleInfo],
    *,
    skipped: Sequence[tuple[str, str]] = (),
) -> str:
    del rules
    document: dict[str, object] = {
        "schema_version": SCHEMA_VERSION,
        "findings": [f.to_json() for f in findings],
        "files": list(files),
    }
    if skipped:
        document["skipped"] = [{"path": path, "reason": reason} for path, reason in skipped]
    return json.dumps(_utf8(document), indent=2, ensure_ascii=False) + "\n"


def _utf8(value: object) -> object:
    """The document with every string valid UTF-8: a byte that is not (a file name's, kept by
    ``surrogateescape``) is written ``\\xNN``, as the gnu and text formats show it."""
    if isinstance(value, str):
        return valid_utf8(value)
    if isinstance(value, dict):
        return {_utf8(k): _utf8(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_utf8(v) for v in value]
    return value
