"""Which files ``unroot lint PATH…`` reads, and what kind each is.

A file's kind comes from its name, else its content (:mod:`unroot.sources.kinds`); YAML text
with template markers (``{{``, Helm/Jinja) is not YAML yet and is skipped when found in a
directory.  Directories are walked recursively in sorted order without VCS, dependency and
cache directories; symbolic links are followed once (a loop is cut).  ``-`` is standard input
and needs ``--kind``.  A file named explicitly whose kind cannot be told (a Helm
``values.yaml`` that pre-commit passes) is skipped with a note, unless ``--kind`` says what it
is.  A drop-in named explicitly brings its unit when the unit is beside its directory
(``a.service.d/x.conf`` → ``a.service``); otherwise it is
skipped with a note: a drop-in alone says nothing about what runs.

A compose file is linted as its project (``sources/compose/``): the override file beside a
default-named file, and the files that ``include`` or ``extends: {file}`` pull in, are read
through the project that uses them, not as projects of their own; named alone on the command
line, they bring that project (``unroot lint compose.override.yaml`` lints ``compose.yaml`` with
it merged).  An override file with no default-named file beside it is a project of its own.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterator, Sequence

from unroot.errors import UsageError
from unroot.sources.compose.files import DEFAULT_FILES, main_file_of, references
from unroot.sources.kinds import NAMES as KINDS
from unroot.sources.kinds import kind_by_content, kind_by_name
from unroot.sources.systemd import dropin_unit, is_dropin

SKIP_DIRS = frozenset(
    {".git", ".hg", ".svn", "node_modules", "vendor", ".venv", "__pycache__", ".tox"}
)
_SNIFF_BYTES = 256 * 1024
_TEMPLATE = re.compile(r"\{\{|\{%")
#: Why a file named explicitly was skipped (``unroot: skipped PATH: …`` on stderr).
UNKNOWN_KIND = "not a Dockerfile, compose file, Kubernetes manifest or systemd unit (use --kind)"


def _is_yaml(name: str) -> bool:
    return name.lower().endswith((".yaml", ".yml"))


def _read_head(path: str) -> str | None:
    try:
        with open(path, "rb") as handle:
            data = handle.read(_SNIFF_BYTES)
    except OSError:
        return None
    if b"\0" in data:
        return None
    return data.decode("utf-8", errors="replace")


def _classify(path: str, *, explicit: bool) -> str | None:
    kind = kind_by_name(path)
    if kind is not None or not _is_yaml(path):
        return kind
    head = _read_head(path)
    if head is None or (not explicit and _TEMPLATE.search(head)):
        return None
    return kind_by_content(head)


def _walk(top: str) -> Iterator[str]:
    """Files under ``top``, following directory links once each."""
    seen: set[tuple[int, int]] = set()
    for root, dirs, files in os.walk(top, followlinks=True):
        try:
            info = os.stat(root)
        except OSError:
            dirs[:] = []
            continue
        key = (info.st_dev, info.st_ino)
        if key in seen:
            dirs[:] = []
            continue
        seen.add(key)
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        for name in sorted(files):
            path = os.path.join(root, name)
            if os.path.isfile(path):
                yield path


def path_key(path: str) -> str:
    """A file's identity whatever form it was named in (``x``, ``./x``, ``sub/../x``, ``$PWD/x``):
    its normalised absolute path.  ``-`` (standard input) is itself."""
    return path if path == "-" else os.path.abspath(path)


def path_like(path: str, like: str) -> str:
    """``path`` in the form of ``like``, the file that named it: absolute when ``like`` is,
    else relative to the working directory (findings print paths the way they were given)."""
    if path == "-":
        return path
    if os.path.isabs(like):
        return os.path.abspath(path)
    return os.path.relpath(path) if os.path.isabs(path) else os.path.normpath(path)


def _excluded(path: str, exclude: Sequence[str]) -> bool:
    """``path`` is relative to the directory searched, so the patterns mean the same whether it
    was named ``.``, ``./`` or absolutely; a pattern ending in ``/`` names a directory."""
    norm = path.replace(os.sep, "/").removeprefix("./")
    parts = norm.split("/")
    for pattern in exclude:
        directory = pattern.endswith("/")
        bare = pattern.rstrip("/")
        if not bare:
            continue
        if norm.startswith(bare + "/") or any(fnmatch.fnmatch(d, bare) for d in parts[:-1]):
            return True
        if not directory and (
            fnmatch.fnmatch(norm, bare) or any(fnmatch.fnmatch(p, bare) for p in parts)
        ):
            return True
    return False


def discover(
    paths: Sequence[str],
    kind: str | None = None,
    exclude: Sequence[str] = (),
    skipped: list[tuple[str, str]] | None = None,
) -> list[tuple[str, str]]:
    """``(path, kind)`` for every file to lint; UsageError for an unusable argument.

    A file named explicitly is read as ``kind`` when given, else by its name or content.  An
    unrecognised explicit file is appended to ``skipped`` as ``(path, reason)`` when a list is
    given (the command line: pre-commit passes every matching name), else an error.  A path
    that does not exist is always an error.  In directories only recognised files are taken,
    and with ``kind`` only those of that kind.  ``exclude`` holds glob patterns matched against
    the path relative to the directory searched and against each of its components (a pattern
    ending in ``/`` only against directories).  A file named twice, in two forms (``.`` and
    ``$PWD``), is found once, in the form first given.
    """
    if kind is not None and kind not in KINDS:
        raise UsageError(f"unknown --kind {kind!r} (expected one of: {', '.join(KINDS)})")
    found: dict[str, str] = {}
    keys: set[str] = set()

    def add(file: str, detected: str) -> None:  # once per file, in the form first named
        key = path_key(file)
        if key not in keys:
            keys.add(key)
            found[file if file == "-" else os.path.normpath(file)] = detected

    for path in paths or ["."]:
        if path == "-":
            if kind is None:
                raise UsageError("reading standard input (-) needs --kind")
            add("-", kind)
            continue
        if os.path.isdir(path):
            for file in sorted(_walk(path)):
                if _excluded(os.path.relpath(file, path), exclude):
                    continue
                detected = _classify(file, explicit=False)
                if detected is not None and (kind is None or detected == kind):
                    add(file, detected)
            continue
        if not os.path.exists(path):
            raise UsageError(f"{path}: no such file or directory")
        detected = kind or _classify(path, explicit=True)
        if detected is None:
            if skipped is not None:
                if (path, UNKNOWN_KIND) not in skipped:
                    skipped.append((path, UNKNOWN_KIND))
                continue
            raise UsageError(
                f"{path}: cannot tell what kind of file this is (give --kind {'|'.join(KINDS)})"
            )
        if detected == "systemd" and is_dropin(os.path.abspath(path)):
            unit = dropin_unit(os.path.normpath(path)) or None  # "": named from inside its dir
            if unit is None or not os.path.isfile(unit):
                if skipped is not None:
                    what = f"its unit {os.path.basename(unit)}" if unit else "a unit"
                    skipped.append((path, f"a systemd drop-in without {what} beside it"))
                    continue
            else:
                add(unit, "systemd")
        add(path, detected)
    return list(_compose_projects(found).items())


def _compose_projects(found: dict[str, str]) -> dict[str, str]:
    """Each compose file another compose file reads is linted through that project, not on its
    own: an override file through the default-named file beside it (``compose.override.yaml``
    → ``compose.yaml``), a file pulled in by ``include`` or ``extends: {file}`` through the file
    that names it (one found here, or a default-named file in its directory).  A file named
    alone on the command line thus lints its project; linting it on its own would report a
    fragment (an override without its image) or a base service that never runs as written."""
    compose = [path for path, kind in found.items() if kind == "compose" and path != "-"]
    if not compose:
        return found
    reader: dict[str, str] = {}  # file → the project file that reads it
    for path in compose:
        main = main_file_of(path, os.path.isfile)
        if main is not None:
            reader[path] = main
    neighbours = [
        os.path.join(os.path.dirname(path), name) for path in compose for name in DEFAULT_FILES
    ]
    for candidate in dict.fromkeys([*compose, *(n for n in neighbours if os.path.isfile(n))]):
        head = _read_head(candidate)  # paths here are normalised: found's keys, joined to names
        for ref in references(head, candidate) if head is not None else ():
            if ref != candidate and ref not in reader:
                reader[ref] = candidate
    projects: dict[str, str] = {}
    for path, kind in found.items():
        projects.setdefault(_project_of(path, reader), kind)
    return projects


def _project_of(path: str, reader: dict[str, str]) -> str:
    """The outermost project file that reads ``path`` (itself when none, or in a cycle)."""
    seen = [path]
    current = path
    while current in reader:
        current = reader[current]
        if current in seen:
            return path
        seen.append(current)
    return current
