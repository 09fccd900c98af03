"""A path as a process with another root sees it (a container through ``/proc/PID/root``).

Opening ``/proc/PID/root/usr/bin/caddy`` from the host is not the same lookup as the
container's: an *absolute* symlink met on the way (``/usr/bin/sh -> /bin/dash``) is resolved
against the reader's root — the host's — not the container's (path_resolution(7): "the
starting lookup directory is the root directory of the calling process").  So symlinks are
resolved here component by component, absolute targets and ``..`` staying inside ``root``,
as ``openat2(RESOLVE_IN_ROOT)`` would; then the host path ``root + result`` names the file the
container would open.
"""

from __future__ import annotations

import errno
import os
import posixpath

MAX_SYMLINKS = 40  # path_resolution(7): ELOOP after 40 symlinks in one lookup


def resolve_in_root(root: str, path: str, cwd: str = "/") -> str:
    """The canonical path ``path`` names inside ``root`` (symlinks followed, ``..`` clamped at
    the root); OSError (ENOENT, ENOTDIR, ELOOP…) as the lookup would fail."""
    pending = posixpath.join(cwd, path).split("/")
    pending.reverse()
    done: list[str] = []
    links = 0
    while pending:
        part = pending.pop()
        if part in ("", "."):
            continue
        if part == "..":
            if done:
                done.pop()
            continue
        current = "/" + "/".join([*done, part])
        host = os.path.join(root, current.lstrip("/"))
        try:
            target = os.readlink(host)
        except OSError as exc:
            if exc.errno != errno.EINVAL:  # EINVAL: not a symlink
                raise
            if pending and not os.path.isdir(host):
                raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), current) from None
            done.append(part)
            continue
        links += 1
        if links > MAX_SYMLINKS:
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
        if target.startswith("/"):
            done = []
        pending.extend(reversed(target.split("/")))
    return "/" + "/".join(done)


def host_path(root: str, inside: str) -> str:
    """The host's name for the container path ``inside`` (already resolved)."""
    return os.path.join(root, inside.lstrip("/")) if inside != "/" else root
