"""systemd's joiner: units are joined with the files they refer to *before* they are parsed — a
service with the sibling ``.socket`` units it may pair with, every unit with its drop-ins
(systemd's directories, within the unit's tree) — then parsed together, with the pragma pass
over each file beside the parser.

A paired ``.socket`` and a drop-in are named in their unit's form (the one their lookup uses):
one given in another form (``$PWD/a.socket`` beside ``a.service``) takes that form.  The
drop-ins of a unit being linted are linted too (findings point into them); a socket read only to
pair with a service is not.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping, Sequence

from unroot.sources.files import Files
from unroot.sources.parsed import ParsedFile
from unroot.sources.pragmas import attach
from unroot.sources.systemd import (
    parse_systemd_units,
    read_unit,
    socket_candidates,
    unit_name,
)
from unroot.sources.systemd_dropins import UNIT_PATHS, dropin_dirs
from unroot.sources.systemd_specifiers import Specifiers

#: where a tree that mirrors a root filesystem keeps units (system and user managers)
_TREE_UNIT_PATHS = (*UNIT_PATHS, "etc/systemd/user", "usr/lib/systemd/user", "lib/systemd/user")


def parse_units(
    files: Mapping[str, str],
    keep: Callable[[str], bool] = lambda path: True,
    environment: Mapping[str, Mapping[str, str]] | None = None,
) -> list[ParsedFile]:
    """The units among ``files`` parsed together (each service and socket with its drop-ins
    among them, each service paired with the sockets among them, with the ``EnvironmentFile=``
    texts of ``environment``), those ``keep`` names with the pragma pass beside the parser;
    ``#`` after a value is part of the value, so a pragma stands on its own line."""
    parsed = parse_systemd_units(files, environment)
    return [attach(p, files[p.path]) for p in parsed if keep(p.path)]


def join_units(
    given: Sequence[tuple[str, str]], files: Files, builder: str | None = None
) -> list[ParsedFile]:
    """The units ``given`` as ``(path, text)``, each joined with its sockets and drop-ins."""
    del builder
    units = dict(given)
    linted = set(units)
    for path, text in list(units.items()):
        if path.endswith(".service") and files.read is not None and path != "-":
            for candidate in socket_candidates(path, text):
                if not _known(units, linted, candidate, files):
                    found = files.read(candidate)
                    if found is not None:
                        units[candidate] = found
    _read_dropins(units, linted, files)
    return parse_units(units, linted.__contains__, _environment_files(units, files))


def _environment_files(units: Mapping[str, str], files: Files) -> dict[str, dict[str, str]]:
    """The ``EnvironmentFile=`` texts of each service that lies in a tree mirroring a root
    filesystem (``/usr/lib/systemd/system``, ``rootfs/etc/systemd/system``): the file is read
    in that tree, as the host the unit runs on has it.  A unit elsewhere (a repository's
    ``deploy/x.service``) runs on another host: its files are not read."""
    found: dict[str, dict[str, str]] = {}
    for path, text in units.items():
        root = _tree_root(path) if path.endswith(".service") and files.read else None
        if root is None or files.read is None:
            continue
        spec, texts = Specifiers(unit_name(path), path), {}
        for entry in read_unit(text, path)[0]:
            name = spec.expand(entry.value.lstrip("-")) if entry.key == "EnvironmentFile" else ""
            if entry.section == "Service" and name and name.startswith("/"):
                found_text = files.read(root + name.lstrip("/"))
                if found_text is not None:
                    texts[name] = found_text
        if texts:
            found[path] = texts
    return found


def _tree_root(unit_path: str) -> str | None:
    """``/usr/lib/systemd/system/x.service`` → ``/``; ``t/etc/systemd/system/x`` → ``t/``."""
    directory = posixpath.normpath(posixpath.dirname(unit_path) or ".")
    for unit_dir in _TREE_UNIT_PATHS:
        if directory == "/" + unit_dir or directory.endswith("/" + unit_dir):
            return directory[: -len(unit_dir)]
        if directory == unit_dir:
            return ""
    return None


def _read_dropins(units: dict[str, str], linted: set[str], files: Files) -> None:
    """Add the drop-ins of every unit to ``units``; those of a unit being linted are linted."""
    if files.read is None or files.list_dir is None:
        return
    for path in [p for p in units if p.endswith((".service", ".socket")) and p != "-"]:
        for directory in dropin_dirs(path):
            for name in files.list_dir(directory):
                dropin = posixpath.join(directory, name)
                if not _known(units, linted, dropin, files):
                    found = files.read(dropin)
                    if found is None:
                        continue
                    units[dropin] = found
                if path in linted:
                    linted.add(dropin)


def _known(units: dict[str, str], linted: set[str], path: str, files: Files) -> bool:
    """Whether ``path`` is among ``units`` under any name; one named in another form takes
    ``path``'s, the form its unit's drop-in directories and sockets are looked up in."""
    if path in units:
        return True
    key = files.key(path)
    for other in units:
        if other != "-" and files.key(other) == key:
            units[path] = units.pop(other)
            if other in linted:
                linted.discard(other)
                linted.add(path)
            return True
    return False
