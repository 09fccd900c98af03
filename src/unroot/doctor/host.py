"""The live host, as doctor's checks need it: each fact read once, errors kept as facts.

A check that cannot read what it needs does not stop the others: :meth:`Host.attempt` turns an
:class:`~unroot.errors.UnrootError` into the text of a check that could not run.  The procfs
root is :data:`unroot.facts.PROCFS_PATH`, as everywhere in facts/.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, TypeVar

from unroot.facts import PROCFS_PATH

if TYPE_CHECKING:
    from unroot.engine.rootless import RootlessEngine
    from unroot.facts.listeners import Listener
    from unroot.facts.mounts import Mount
    from unroot.model.access import Inode
    from unroot.model.filecaps import FileCaps

T = TypeVar("T")


class Host:
    """Facts of this machine, cached for one doctor run."""

    def __init__(self, procfs: str = PROCFS_PATH) -> None:
        self.procfs = procfs
        self.port_start = cache(self._port_start)
        self.listeners = cache(self._listeners)
        self.engines = cache(self._engines)
        self.mounts = cache(self._mounts)

    def _port_start(self, pid: int | None) -> int:
        from unroot.facts.sysctl import unprivileged_port_start

        return unprivileged_port_start("self" if pid is None else pid, self.procfs)

    def _listeners(self, pid: int | None) -> tuple[Listener, ...]:
        from unroot.facts.listeners import read_listeners

        return read_listeners("self" if pid is None else pid, self.procfs)

    def _engines(self) -> tuple[RootlessEngine, ...]:
        from unroot.engine.rootless import rootless_engines

        return rootless_engines(procfs=self.procfs)

    def _mounts(self) -> tuple[Mount, ...]:
        from unroot.facts.mounts import read_mountinfo

        return tuple(read_mountinfo(self.procfs))

    def tree(self, path: str) -> tuple[str, dict[str, Inode], bool]:
        """``path`` made absolute, the inodes its lookup reaches, ``fs.protected_symlinks``."""
        from unroot.facts.fs import absolute_path, gather_tree, protected_symlinks

        path = absolute_path(path)
        return path, gather_tree(path, procfs=self.procfs), protected_symlinks(self.procfs)

    def file_caps(self, path: str) -> FileCaps | None:
        from unroot.facts.filecaps import read_file_caps

        return read_file_caps(path)

    def mount_of(self, path: str) -> Mount | None:
        from unroot.facts.mounts import mount_for

        return mount_for(self.mounts(), path)

    @staticmethod
    def attempt(read: Callable[[], T]) -> T | str:
        """``read()``, or the one line saying why it could not."""
        from unroot.errors import UnrootError

        try:
            return read()
        except UnrootError as exc:
            return str(exc)
