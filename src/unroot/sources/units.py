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
from unroot.sources.systemd import dropin_dirs, parse_systemd_units, socket_candidates


def parse_units(
    files: Mapping[str, str], keep: Callable[[str], bool] = lambda path: True
) -> list[ParsedFile]:
    """The units among ``files`` parsed together (each service and socket with its drop-ins
    among them, each service paired with the sockets among them), those ``keep`` names with the
    pragma pass beside the parser; ``#`` after a value is part of the value, so a pragma stands
    on its own line."""
    return [attach(p, files[p.path]) for p in parse_systemd_units(files) if keep(p.path)]


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
    return parse_units(units, keep=linted.__contains__)


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
