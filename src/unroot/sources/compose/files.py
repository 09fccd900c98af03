"""Which files make a compose project: the default names compose looks for, the override file
it merges onto one, and the files a compose file pulls in (``include``, ``extends: {file}``).
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Sequence

from unroot.sources.compose.merge import TAGS
from unroot.sources.yamlsupport import YMap, YNode, YScalar, YSeq, load_yaml

#: compose-go cli/options.go, in its order of preference
DEFAULT_FILES = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")
OVERRIDE_FILES = (
    "compose.override.yml",
    "compose.override.yaml",
    "docker-compose.override.yml",
    "docker-compose.override.yaml",
)


def override_of(path: str, exists: Callable[[str], bool]) -> str | None:
    """The override file compose merges onto ``path`` (only a default name has one)."""
    if path == "-" or posixpath.basename(path) not in DEFAULT_FILES:
        return None
    return first_beside(path, OVERRIDE_FILES, exists)


def main_file_of(path: str, exists: Callable[[str], bool]) -> str | None:
    """For an override file, the default-named file beside it that compose merges it onto."""
    if posixpath.basename(path) not in OVERRIDE_FILES:
        return None
    return first_beside(path, DEFAULT_FILES, exists)


def first_beside(path: str, names: Sequence[str], exists: Callable[[str], bool]) -> str | None:
    """The first of ``names`` that exists in ``path``'s directory."""
    directory = posixpath.dirname(path)
    for name in names:
        candidate = posixpath.join(directory, name)
        if exists(candidate):
            return candidate
    return None


def relative(base: str, path: str) -> str:
    return posixpath.normpath(path if posixpath.isabs(path) else posixpath.join(base, path))


def references(text: str, path: str) -> list[str]:
    """The local files a compose file pulls in with ``include`` and ``extends: {file}``
    (normalised, relative to its directory; paths with variables are left out)."""
    loaded = load_yaml(text, path, TAGS)
    base = posixpath.dirname(path)
    found: list[str] = []

    def add(node: YNode | None) -> None:
        if not isinstance(node, YScalar) or not node.text or "$" in node.text:
            return
        if "://" not in node.text and not node.text.startswith("git@"):
            found.append(relative(base, node.text))

    for document in loaded.documents:
        root = document.root
        if not isinstance(root, YMap):
            continue
        include = root.get_seq("include")
        for item in include.items if include is not None else ():
            paths = item.get("path") if isinstance(item, YMap) else item
            for one in paths.items if isinstance(paths, YSeq) else [paths]:
                add(one)
        services = root.get_map("services")
        for _, service in services.entries() if services is not None else ():
            extends = service.get_map("extends") if isinstance(service, YMap) else None
            if extends is not None:
                add(extends.get("file"))
    return list(dict.fromkeys(found))
