"""What a kind's joiner may ask of the filesystem, passed in (``sources/`` does no I/O itself):
the lint engine passes the real one, tests pass dictionaries."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

#: a file's text, None when it is not a readable file
Reader = Callable[[str], str | None]
#: the ``*.conf`` file names in a directory (none when it does not exist)
Lister = Callable[[str], list[str]]


def _as_named(path: str, like: str | None = None) -> str:
    del like
    return path


@dataclass(frozen=True, slots=True)
class Files:
    """``read``: a file's text (None: nothing is read); ``list_dir``: the ``*.conf`` names of a
    drop-in directory (None: none are listed); ``key``: a file's identity whatever form it is
    named in (``x``, ``./x``, ``$PWD/x``); ``like(path, other)``: ``path`` in the form of
    ``other``, the file that names it (findings print paths the way they were given)."""

    read: Reader | None = None
    list_dir: Lister | None = None
    key: Callable[[str], str] = _as_named
    like: Callable[[str, str], str] = _as_named
