"""Which files ``unroot lint PATH…`` reads, and what kind each is.

A file's kind comes from its name, else its content (:mod:`unroot.sources.kinds`).  A template
(Helm, Jinja), a unit template (``*.service.in``) or a Podman Quadlet unit is recognised and not
read (:mod:`unroot.sources.unsupported`), found or named: it is skipped with a note saying
what it is.  A ``.json`` file is a Kubernetes manifest when it is an object with top-level
``apiVersion`` and ``kind`` (``kubectl get -o json``, a ``List`` included); other JSON
(``package.json``) is not an input.  Directories are walked in sorted order without VCS,
dependency and cache directories, at most :data:`MAX_DEPTH` levels deep; a symbolic link to a
directory is not followed, a link to a file only when its target is inside the directory
named; only regular files are taken.  A directory or file that cannot be read is skipped with a note
(``skipped DIR: permission denied``), never silently.  ``-`` is standard input; its kind is the
``--kind`` given, else the one the engine tells from its name or text.  A file named explicitly
is read by its name, else by its content (a Dockerfile's first instruction, Kubernetes JSON or
YAML, a compose file); one whose kind cannot be told (a Helm ``values.yaml`` that pre-commit
passes) is skipped with a note, unless ``--kind`` says what it is.  A path named explicitly that
is not a regular file (a FIFO, ``/dev/zero``, a socket) or is over the size limit is a usage
error (:mod:`unroot.lint.inputs`).  A drop-in named explicitly brings its unit when the unit is
beside its directory (``a.service.d/x.conf`` → ``a.service``); otherwise it is
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
from unroot.lint.inputs import check_file, read_bytes
from unroot.sources.compose.files import DEFAULT_FILES, main_file_of, references
from unroot.sources.kinds import NAMES as KINDS
from unroot.sources.kinds import (
    is_k8s_json,
    kind_by_content,
    kind_by_name,
    kind_by_text,
    looks_like_k8s_json,
)
from unroot.sources.systemd_dropins import dropin_unit, is_dropin
from unroot.sources.unsupported import (
    QUADLET_SECTIONS,
    UNIT_TEMPLATE_REASON,
    What,
    is_unit_template,
    quadlet_reason,
    quadlet_section,
    template_line,
    template_reason,
)

SKIP_DIRS = frozenset(
    {".git", ".hg", ".svn", "node_modules", "vendor", ".venv", "__pycache__", ".tox"}
)
_SNIFF_BYTES = 256 * 1024
_MARKER = re.compile(r"\{\{|\{%|\{#")
#: a unit linked to /dev/null (``systemctl mask``)
MASKED = "a masked unit (a link to /dev/null): systemd never starts it"
#: Why a file named explicitly was skipped (``unroot: skipped PATH: …`` on stderr).
UNKNOWN_KIND = "not a Dockerfile, compose file, Kubernetes manifest or systemd unit (use --kind)"


def _is_yaml(name: str) -> bool:
    return name.lower().endswith((".yaml", ".yml"))


def reason_of(exc: OSError) -> str:
    """``permission denied`` for an OSError (its strerror, lower-cased as a note reads)."""
    text = exc.strerror or type(exc).__name__
    return text[:1].lower() + text[1:]


#: ``(path, reason)`` of each file or directory that could not be read while discovering
Unread = list[tuple[str, str]]
#: ``(path, what)`` of each input recognised but not read (a template, a Quadlet unit)
NotRead = list[tuple[str, What]]


def _read_head(
    path: str, unread: Unread | None = None, limit: int | None = _SNIFF_BYTES
) -> str | None:
    """The first ``limit`` bytes of a regular file as text (None for binary; all of it within
    the input cap when ``limit`` is None); a read error goes into ``unread``."""
    try:
        data = read_bytes(path, limit)
    except OSError as exc:
        if unread is not None:
            unread.append((path, reason_of(exc)))
        return None
    if b"\0" in data:
        return None
    return data.decode("utf-8", errors="replace")


def _classify(path: str, *, explicit: bool, unread: Unread | None = None) -> str | None:
    kind = kind_by_name(path)
    if kind is not None:
        return kind
    json_name = path.lower().endswith(".json")
    if not (explicit or json_name or _is_yaml(path)):
        return None
    head = _read_head(path, unread)
    if head is None:
        return None
    if looks_like_k8s_json(head):  # the whole text decides (a List can be megabytes)
        text = head if len(head.encode()) < _SNIFF_BYTES else _read_head(path, unread, None)
        return "k8s" if text is not None and is_k8s_json(text) else None
    if json_name:
        return None
    if _is_yaml(path):
        return kind_by_content(head)
    kind = kind_by_text(head)  # a file named explicitly: a unit's type is in its name
    return kind if kind != "systemd" else None


def _not_read(
    path: str, detected: str | None, kind: str | None, *, explicit: bool
) -> tuple[What, str] | None:
    """What ``path`` is and why it is not read, when it is an input unroot recognises but does
    not read (:mod:`unroot.sources.unsupported`); ``detected`` is the kind it would be read as,
    ``kind`` the one ``--kind`` gives.  A unit template named with ``--kind systemd`` is read.
    A file that cannot be read is not one: what it is comes out where it is read."""
    base = os.path.basename(path)
    if base[base.rfind(".") :] in QUADLET_SECTIONS:
        head = _read_head(path)
        section = quadlet_section(path, head) if head is not None else None
        if section is not None:
            return "Quadlet unit", quadlet_reason(section, kind)
    if is_unit_template(path) and not (explicit and kind == "systemd"):
        return "unit template", UNIT_TEMPLATE_REASON
    if detected is None:
        return None
    head = _read_head(path)
    if head is None or not _MARKER.search(head):
        return None
    text = head if len(head.encode()) < _SNIFF_BYTES else _read_head(path, limit=None)
    line = template_line(text, detected) if text is not None else None
    return ("template", template_reason(text, line, detected)) if text and line else None


#: How deep a directory search goes below the directory named (far below a real repository's
#: depth, far above PATH_MAX's reach): a deeper directory is skipped with a note.
MAX_DEPTH = 128
#: Why a deeper directory is not searched
TOO_DEEP = f"more than {MAX_DEPTH} directory levels deep (not searched)"


def _inside(path: str, top: str) -> bool:
    """``path`` (links resolved) lies inside the directory ``top`` (links resolved)."""
    return os.path.commonpath([os.path.realpath(path), top]) == top


def _walk(top: str, unread: Unread | None = None) -> Iterator[str]:
    """Regular files under ``top``, with an explicit stack (no recursion: a tree thousands of
    levels deep is one more note, never a RecursionError) and at most :data:`MAX_DEPTH` levels.

    A symbolic link to a directory is not followed (as ``find`` without ``-L``, ``git
    ls-files`` and ruff do): a link to ``/`` or to ``..`` cannot take the search out of the
    tree, nor round in a loop.  A link to a file is taken when its target lies inside ``top``,
    else passed over.  A directory reached twice (a bind mount of its parent) is searched once.
    A directory that cannot be listed, or is too deep, goes into ``unread``."""
    real_top = os.path.realpath(top)
    seen: set[tuple[int, int]] = set()
    stack: list[tuple[str, int]] = [(top, 0)]
    while stack:
        directory, depth = stack.pop()
        try:
            info = os.stat(directory)
            with os.scandir(directory) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except OSError as exc:
            if unread is not None:
                unread.append((directory, reason_of(exc)))
            continue
        key = (info.st_dev, info.st_ino)
        if key in seen:
            continue
        seen.add(key)
        subdirs: list[str] = []
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name not in SKIP_DIRS:
                        subdirs.append(entry.path)
                elif entry.is_file(follow_symlinks=False) or (
                    entry.is_symlink()
                    and os.path.isfile(entry.path)
                    and _inside(entry.path, real_top)
                ):
                    yield entry.path
            except OSError:
                continue  # gone since it was listed
        for sub in reversed(subdirs):
            if depth + 1 > MAX_DEPTH:
                if unread is not None:
                    unread.append((sub, TOO_DEEP))
                continue
            stack.append((sub, depth + 1))


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
    *,
    unread: Unread | None = None,
    not_read: NotRead | None = None,
    stdin_kind: str | None = None,
) -> list[tuple[str, str]]:
    """``(path, kind)`` for every file to lint; UsageError for an unusable argument.

    A file named explicitly is read as ``kind`` when given, else by its name or content.  An
    unrecognised explicit file is appended to ``skipped`` as ``(path, reason)`` when a list is
    given (the command line: pre-commit passes every matching name), else an error.  A path
    that does not exist, or is not a regular file or directory (a FIFO, a device), or is over
    the input limit, is always an error.  In directories only recognised regular files are
    taken, and with ``kind`` only those of that kind; a directory or file that could not be read
    is appended to ``unread`` (and to ``skipped``) as ``(path, reason)``.  A template, a unit
    template (``*.service.in``) or a Podman Quadlet unit, found or named, is not taken: it is
    appended to ``skipped`` with why and to ``not_read`` as ``(path, what)`` (in a directory
    searched with ``kind``, only those of that kind; a unit template named with ``kind``
    systemd is read).  ``exclude`` holds
    glob patterns matched against the path relative to the directory searched and against each
    of its components (a pattern ending in ``/`` only against directories).  A file named
    twice, in two forms (``.`` and ``$PWD``), is found once, in the form first given.  ``-``
    (standard input) is found as ``kind``, else as ``stdin_kind`` (the caller tells it from the
    text), else it is an error.
    """
    if kind is not None and kind not in KINDS:
        raise UsageError(f"unknown --kind {kind!r} (expected one of: {', '.join(KINDS)})")
    found: dict[str, str] = {}
    keys: set[str] = set()
    failures: Unread = []

    def add(file: str, detected: str) -> None:  # once per file, in the form first named
        key = path_key(file)
        if key not in keys:
            keys.add(key)
            found[file if file == "-" else os.path.normpath(file)] = detected

    def skip(path: str, reason: str) -> None:
        if skipped is not None and (path, reason) not in skipped:
            skipped.append((path, reason))

    def note(path: str, what: What, reason: str) -> None:
        if not_read is not None and (path, what) not in not_read:
            not_read.append((path, what))
        skip(path, reason)

    for path in paths or ["."]:
        if path == "-":
            if (kind or stdin_kind) is None:
                raise UsageError("reading standard input (-) needs --kind")
            add("-", kind or stdin_kind or "")
            continue
        if os.path.isdir(path):
            for file in sorted(_walk(path, failures)):
                if _excluded(os.path.relpath(file, path), exclude):
                    continue
                detected = _classify(file, explicit=False, unread=failures)
                unsupported = _not_read(file, detected, kind, explicit=False)
                if unsupported is not None:
                    what, reason = unsupported
                    if kind is None or (detected or "systemd") == kind:
                        note(os.path.normpath(file), what, reason)
                elif detected is not None and (kind is None or detected == kind):
                    add(file, detected)
            continue
        try:
            os.stat(path)
        except OSError as exc:  # a link loop is "too many levels of symbolic links"
            raise UsageError(f"{path}: {reason_of(exc)}") from None
        if kind_by_name(path) == "systemd" and os.path.realpath(path) == os.devnull:
            skip(path, MASKED)  # systemd never starts it: nothing to lint, nothing wrong
            continue
        check_file(path)
        detected = kind or _classify(path, explicit=True, unread=failures)
        unsupported = _not_read(path, detected, kind, explicit=True)
        if unsupported is not None:
            note(path, *unsupported)
            continue
        if detected is None:
            if failures and failures[-1][0] == path:
                continue  # could not be read: noted below
            if skipped is not None:
                skip(path, UNKNOWN_KIND)
                continue
            raise UsageError(
                f"{path}: cannot tell what kind of file this is (give --kind {'|'.join(KINDS)})"
            )
        if detected == "systemd" and is_dropin(os.path.abspath(path)):
            unit = dropin_unit(os.path.normpath(path)) or None  # "": named from inside its dir
            if unit is None or not os.path.isfile(unit):
                if skipped is not None:
                    missing = f"its unit {os.path.basename(unit)}" if unit else "a unit"
                    skip(path, f"a systemd drop-in without {missing} beside it")
                    continue
            else:
                add(unit, "systemd")
        add(path, detected)
    for path, reason in failures:
        skip(path, reason)
        if unread is not None:
            unread.append((path, reason))
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
