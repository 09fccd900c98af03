"""The layout's arrows (docs/architecture.md), read from the source with ast: every ``import``
of ``unroot.…`` in ``src/unroot``, including those under ``TYPE_CHECKING`` and inside
functions, is an arrow from the importing top-level part to the imported one."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "unroot"

#: What each top-level part may import besides itself.  A part not listed may import anything
#: but ``cli`` (the command line is the outermost edge).
ALLOWED: dict[str, frozenset[str]] = {
    "model": frozenset(),
    "errors": frozenset({"model"}),  # the public name of model/errors.py's classes
    "syscalls": frozenset({"errors"}),
    "sources": frozenset({"errors", "model"}),
    "situation": frozenset({"errors", "model", "sources"}),
    "facts": frozenset({"errors", "model"}),
    "engine": frozenset({"errors", "model", "facts"}),
    "launch": frozenset({"errors", "model", "syscalls"}),
    "lint": frozenset({"errors", "model", "sources", "situation", "wrapping", "printable"}),
    # prose to a width (lint's text report and SARIF help, explain): a leaf
    "wrapping": frozenset(),
    # one_line(): text safe to print as one line (errors, file names): a leaf
    "printable": frozenset(),
    "activation": frozenset({"launch"}),
    "doctor": frozenset({"errors", "model", "sources", "situation", "facts", "engine"}),
    "verify": frozenset({"errors", "model", "sources", "situation", "facts", "engine"}),
    # `unroot bench` runs `unroot run` as a subprocess and docker through engine/'s adapter
    "proxybench": frozenset({"errors", "engine"}),
}
#: Front ends: nothing below them imports them.
FRONT_ENDS = frozenset({"cli", "commands", "lint", "doctor", "verify"})
#: Files over the size limit (none: supervise.py was split into inspect.py and watchdog.py).
LONG_FILES_ALLOWED: frozenset[str] = frozenset()
MAX_LINES = 1000


def part_of(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".py") if len(rel.parts) > 1 or rel.stem != "__init__" else ""


def imported_parts(path: Path) -> Iterator[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "unroot":  # from unroot import x: x is the part, if a module
                names = [f"unroot.{alias.name}" for alias in node.names if _is_part(alias.name)]
            else:
                names = [node.module]
        for name in names:
            if name.startswith("unroot."):
                yield node.lineno, name.split(".")[1]


def _is_part(name: str) -> bool:
    return (SRC / name).is_dir() or (SRC / f"{name}.py").is_file()


def sources() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def arrows() -> dict[tuple[str, str], str]:
    """(from part, to part) → one place that makes the arrow."""
    found: dict[tuple[str, str], str] = {}
    for path in sources():
        here = part_of(path)
        for line, there in imported_parts(path):
            if there != here and here:
                found.setdefault((here, there), f"{path.relative_to(SRC)}:{line}")
    return found


def test_every_part_imports_only_what_it_may() -> None:
    wrong = [
        f"{where}: {src} imports {dst}"
        for (src, dst), where in sorted(arrows().items())
        if (src in ALLOWED and dst not in ALLOWED[src]) or (dst == "cli" and src != "__main__")
    ]
    assert wrong == []


@pytest.mark.parametrize("part", ["model", "sources", "situation", "facts", "engine", "launch"])
def test_no_front_end_below(part: str) -> None:
    reached = {dst for (src, dst) in arrows() if src == part}
    assert not reached & FRONT_ENDS


def test_no_cycle_between_parts() -> None:
    graph: dict[str, set[str]] = {}
    for src, dst in arrows():
        graph.setdefault(src, set()).add(dst)

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    cycles = sorted(part for part in graph if reaches(part, part, {part}))
    assert cycles == []


def test_the_error_classes_are_the_models() -> None:
    """``unroot.errors`` re-exports the model's classes: the same objects, not copies."""
    import unroot.errors
    import unroot.model.errors

    for name in unroot.errors.__all__:
        assert getattr(unroot.errors, name) is getattr(unroot.model.errors, name)


def test_no_source_file_over_the_limit() -> None:
    long = {
        path.relative_to(SRC).as_posix(): n
        for path in sources()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert set(long) <= LONG_FILES_ALLOWED, long


def test_the_parts_are_where_the_docs_say() -> None:
    """docs/architecture.md has one line per folder of src/unroot."""
    doc = (SRC.parents[1] / "docs" / "architecture.md").read_text(encoding="utf-8")
    folders = sorted(p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists())
    missing = [name for name in folders if f"`{name}/`" not in doc]
    assert missing == []
