"""Remove the socket files unroot created when the launch is refused after the privilege drop.

Once unroot has become the service's user it can no longer unlink a socket file in a directory
only root may write (``/run``): a failed ``execve`` (a missing ``#!`` interpreter, ENOEXEC) or a
first generation that cannot start under ``--supervise`` would leave the file behind. So before
the drop, when a socket file was created, unroot forks a *janitor*: a root process in a session
of its own, with every fd closed but the read end of a pipe and an ``O_PATH`` handle on each
socket's directory, with the terminal's signals ignored. It waits for one of two things:

* end of file with nothing read — the write end was closed: by ``execve`` (it is close-on-exec),
  by the supervisor once the first generation runs, or by unroot's death. Nothing is removed.
* a byte — unroot refused after all: each socket file that is still the very file created
  (same device and inode, looked up without following symlinks in the directory opened before
  the drop) is unlinked.

It is a grandchild (double fork), so the service never finds an unknown child of its own, and
it lives only between the drop and the exec.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from unroot.launch.sockets import BoundSocket


class Janitor:
    """The parent's end: :meth:`clean` on a refusal, :meth:`release` once the service runs."""

    def __init__(self, write_fd: int) -> None:
        self._fd: int | None = write_fd

    @classmethod
    def start(cls, socks: Sequence[BoundSocket]) -> Janitor | None:
        """Fork the janitor for the socket files among ``socks`` (None when there are none)."""
        import fcntl

        entries = []
        for bound in socks:
            if bound.created is None or bound.directory is None:
                continue
            path, dev, ino = bound.created
            try:
                directory = fcntl.fcntl(bound.directory, fcntl.F_DUPFD_CLOEXEC, 3)
            except OSError:
                continue  # no fd to spare: that file is not cleaned up
            entries.append((directory, os.path.basename(path), dev, ino))
        if not entries:
            return None
        try:
            read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
            try:
                pid = os.fork()
            except OSError:
                os.close(read_fd)
                os.close(write_fd)
                raise
        except OSError:  # no fd or process to spare: launch without the clean-up
            pid = -1
        else:
            if pid == 0:  # pragma: no cover - runs in the forked child
                try:
                    if os.fork() == 0:
                        _watch(read_fd, entries)
                finally:
                    os._exit(0)
            os.close(read_fd)
        for dirfd, *_ in entries:
            os.close(dirfd)
        if pid < 0:
            return None
        os.waitpid(pid, 0)
        return cls(write_fd)

    @property
    def fd(self) -> int | None:
        """Our end of the pipe (None once released)."""
        return self._fd

    def move_above(self, low: int) -> int:
        """Move our end of the pipe to the lowest free fd >= ``low``; that fd."""
        import fcntl

        assert self._fd is not None
        fd = fcntl.fcntl(self._fd, fcntl.F_DUPFD_CLOEXEC, low)
        os.close(self._fd)
        self._fd = fd
        return fd

    def clean(self) -> None:
        """The launch was refused: remove the socket files."""
        if self._fd is not None:
            try:  # noqa: SIM105 - contextlib is not imported on the exec path
                os.write(self._fd, b"x")
            except OSError:
                pass
        self.release()

    def release(self) -> None:
        """The service runs: the janitor goes away and removes nothing."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _watch(read_fd: int, entries: list[tuple[int, str, int, int]]) -> None:  # pragma: no cover
    import _signal  # type: ignore[import-not-found]  # the C module: ``signal`` imports enum

    for signum in (_signal.SIGINT, _signal.SIGQUIT, _signal.SIGHUP, _signal.SIGTSTP):
        _signal.signal(signum, _signal.SIG_IGN)
    os.setsid()
    keep = {read_fd, *(dirfd for dirfd, *_ in entries)}
    for fd in range(max(keep) + 1):
        if fd not in keep:
            try:  # noqa: SIM105 - contextlib is not imported on the exec path
                os.close(fd)
            except OSError:
                pass
    os.closerange(max(keep) + 1, 1 << 20)
    try:
        refused = os.read(read_fd, 1)
    except OSError:
        refused = b""
    if not refused:
        return
    from unroot.launch.sockets import remove_if_same

    for dirfd, name, dev, ino in entries:
        remove_if_same(dirfd, name, dev, ino)
