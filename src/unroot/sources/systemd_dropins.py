"""systemd's drop-ins: which ``*.d/*.conf`` files belong to a unit and in what order they
apply, as ``src/shared/dropin.c`` (v252) finds them: the unit's own ``NAME.d``, its template's
``NAME@.d``, the ``TYPE.d`` of every unit of its type and the ``-`` prefix directories
(``foo-bar-.service.d`` for ``foo-bar-baz.service``), across the unit directories of
:data:`UNIT_PATHS`; a file of the same name in a higher-priority directory masks the others, and
the survivors apply in the order of their file names.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable

#: systemd's unit directories (lookup_paths_init, system scope), highest priority first
UNIT_PATHS = (
    "etc/systemd/system.control",
    "run/systemd/system.control",
    "etc/systemd/system",
    "run/systemd/system",
    "usr/local/lib/systemd/system",
    "usr/lib/systemd/system",
    "lib/systemd/system",
)
_UNIT_TYPES = ("service", "socket")
_DROPIN_DIR = re.compile(r"(?:[^/]+\.)?(?:service|socket)\.d")


def is_dropin(path: str) -> bool:
    """``NAME.service.d/X.conf``, ``NAME.socket.d/X.conf`` or the type-level
    ``service.d/X.conf`` / ``socket.d/X.conf``."""
    directory, base = posixpath.split(path)
    return base.endswith(".conf") and bool(_DROPIN_DIR.fullmatch(posixpath.basename(directory)))


def dropin_unit(path: str) -> str | None:
    """The unit a unit-specific drop-in belongs to, beside its directory (``x/a.service.d/o.conf``
    → ``x/a.service``); None for a type-level drop-in (``service.d/``), which is every unit's."""
    directory = posixpath.dirname(path)
    name = posixpath.basename(directory).removesuffix(".d")
    if name in _UNIT_TYPES:
        return None
    return posixpath.join(posixpath.dirname(directory), name)


def _lookup_dirs(directory: str) -> list[str]:
    """The unit's directory, or — when it is one of systemd's unit paths inside a tree that
    mirrors a root filesystem — every unit path of that tree, highest priority first."""
    norm = posixpath.normpath(directory) if directory else "."
    for unit_path in UNIT_PATHS:
        if norm == unit_path or norm.endswith("/" + unit_path):
            root = norm[: -len(unit_path)]
            return [root + p for p in UNIT_PATHS]
    return [directory]


def _dash_prefix(name: str) -> str | None:
    """``unit_file_find_dirs``: ``foo-bar-baz.service`` → ``foo-bar-.service`` (then, on the
    next call, ``foo-.service``); ``a@i.service`` keeps its instance; None when there is none."""
    stem, dot, unit_type = name.rpartition(".")
    if not dot:
        return None
    prefix, at, instance = stem.partition("@")
    chopped = False
    while True:
        dash = prefix.rfind("-")
        if dash <= 0:
            return None
        if dash + 1 < len(prefix) or chopped:
            prefix = prefix[: dash + 1]
            break
        prefix, chopped = prefix[:dash], True
    return f"{prefix}{at}{instance}.{unit_type}"


def _names_for(name: str) -> list[str]:
    """The unit names whose ``.d`` directories hold drop-ins for ``name``, most specific first
    (the name, its template, then the dash prefixes of each)."""
    found: list[str] = []
    pending = [name]
    while pending:
        current = pending.pop(0)
        if current in found:
            continue
        found.append(current)
        stem, _, unit_type = current.rpartition(".")
        prefix, at, instance = stem.partition("@")
        if at and instance:
            pending.insert(0, f"{prefix}@.{unit_type}")
        shorter = _dash_prefix(current)
        if shorter is not None:
            pending.append(shorter)
    return found


def dropin_dirs(unit_path: str) -> list[str]:
    """The directories systemd reads drop-ins of this unit from, within this tree, most specific
    and highest priority first (the type-level ``service.d/`` last)."""
    directory, name = posixpath.split(unit_path)
    if unit_path == "-" or "." not in name:
        return []
    lookup = _lookup_dirs(directory)
    names = _names_for(name)
    unit_type = name.rpartition(".")[2]
    dirs = [posixpath.join(d, f"{n}.d") for d in lookup for n in names]
    dirs.extend(posixpath.join(d, f"{unit_type}.d") for d in lookup)
    return list(dict.fromkeys(dirs))


def order_dropins(unit_path: str, paths: Iterable[str]) -> list[str]:
    """The drop-ins among ``paths`` that apply to the unit, in systemd's order: by file name;
    of two with the same name, the one in the earlier directory of :func:`dropin_dirs`."""
    dirs = dropin_dirs(unit_path)
    rank = {d: i for i, d in enumerate(dirs)}
    chosen: dict[str, tuple[int, str]] = {}
    for path in paths:
        directory, base = posixpath.split(path)
        if not base.endswith(".conf") or directory not in rank:
            continue
        if base not in chosen or rank[directory] < chosen[base][0]:
            chosen[base] = (rank[directory], path)
    return [chosen[base][1] for base in sorted(chosen)]
