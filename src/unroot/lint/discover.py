"""Which files ``unroot lint PATH…`` reads, and what kind each is.

By name: ``Dockerfile``, ``Dockerfile.*``, ``*.Dockerfile``, ``Containerfile`` (and the same
forms) → dockerfile; ``compose*.y?ml``, ``docker-compose*.y?ml`` → compose; ``*.service``,
``*.socket`` → systemd.  Other ``*.yaml``/``*.yml`` by content: a top-level ``apiVersion:`` and
``kind:`` → k8s, a top-level ``services:`` → compose; text with template markers (``{{``,
Helm/Jinja) is not YAML yet and is skipped when found in a directory.  Directories are walked
recursively in sorted order without VCS, dependency and cache directories; symbolic links are
followed once (a loop is cut).  ``-`` is standard input and needs ``--kind``.  A file named
explicitly whose kind cannot be told (a Helm ``values.yaml`` that pre-commit passes) is skipped
with a note, unless ``--kind`` says what it is.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterator, Sequence

from unroot.errors import UsageError

KINDS = ("dockerfile", "compose", "k8s", "systemd")
SKIP_DIRS = frozenset(
    {".git", ".hg", ".svn", "node_modules", "vendor", ".venv", "__pycache__", ".tox"}
)
_SNIFF_BYTES = 256 * 1024
_COMPOSE_NAME = re.compile(r"(?:docker-)?compose[^/]*\.ya?ml", re.I)
_DOCKERFILE_NAME = re.compile(
    r"(?:dockerfile|containerfile)(?:\.[^/]+)?|[^/]+\.(?:dockerfile|containerfile)", re.I
)
_API_VERSION = re.compile(r"^apiVersion\s*:", re.M)
_KIND = re.compile(r"^kind\s*:", re.M)
_SERVICES = re.compile(r"^services\s*:", re.M)
_TEMPLATE = re.compile(r"\{\{|\{%")
#: Why a file named explicitly was skipped (``unroot: skipped PATH: …`` on stderr).
UNKNOWN_KIND = "not a Dockerfile, compose file, Kubernetes manifest or systemd unit (use --kind)"


def kind_by_name(name: str) -> str | None:
    """The kind a file name alone says, or None (``*.yaml`` needs its content)."""
    base = os.path.basename(name)
    if base.lower().endswith(".dockerignore"):
        return None
    if _DOCKERFILE_NAME.fullmatch(base):
        return "dockerfile"
    if _COMPOSE_NAME.fullmatch(base):
        return "compose"
    if base.endswith((".service", ".socket")):
        return "systemd"
    return None


def kind_by_content(text: str) -> str | None:
    """``k8s`` for a top-level apiVersion + kind, ``compose`` for top-level services, else None."""
    if _API_VERSION.search(text) and _KIND.search(text):
        return "k8s"
    if _SERVICES.search(text):
        return "compose"
    return None


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


def _excluded(path: str, exclude: Sequence[str]) -> bool:
    norm = path.replace(os.sep, "/").removeprefix("./")
    parts = norm.split("/")
    return any(
        fnmatch.fnmatch(norm, pattern)
        or any(fnmatch.fnmatch(part, pattern) for part in parts)
        or norm.startswith(pattern.rstrip("/") + "/")
        for pattern in exclude
    )


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
    the path and each of its components.
    """
    if kind is not None and kind not in KINDS:
        raise UsageError(f"unknown --kind {kind!r} (expected one of: {', '.join(KINDS)})")
    found: dict[str, str] = {}
    for path in paths or ["."]:
        if path == "-":
            if kind is None:
                raise UsageError("reading standard input (-) needs --kind")
            found.setdefault("-", kind)
            continue
        if os.path.isdir(path):
            for file in sorted(_walk(path)):
                if _excluded(file, exclude):
                    continue
                detected = _classify(file, explicit=False)
                if detected is not None and (kind is None or detected == kind):
                    found.setdefault(os.path.normpath(file), detected)
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
        found.setdefault(os.path.normpath(path), detected)
    return list(found.items())
