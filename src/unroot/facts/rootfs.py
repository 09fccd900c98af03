"""A path as a process with another root sees it: a running container through
``/proc/PID/root``, or an image's (or a stopped container's) overlay layers.

Opening ``/proc/PID/root/usr/bin/caddy`` from the host is not the same lookup as the
container's: an *absolute* symlink met on the way (``/usr/bin/sh -> /bin/dash``) is resolved
against the reader's root — the host's — not the container's (path_resolution(7): "the
starting lookup directory is the root directory of the calling process").  So symlinks are
resolved here component by component, absolute targets and ``..`` staying inside the root,
as ``openat2(RESOLVE_IN_ROOT)`` would.

A :class:`LayeredRoot` is the merged view of overlay layers (``GraphDriver.Data``'s
``UpperDir`` over ``LowerDir``, top first) read without mounting them, by overlayfs's rules
(Documentation/filesystems/overlayfs.rst): the topmost layer holding a name wins; a whiteout
(a character device 0/0) hides the name below; an opaque directory (xattr
``trusted.overlay.opaque`` or, for rootless engines, ``user.overlay.opaque`` = ``y``) hides
the lower layers' entries of that directory.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
from collections.abc import Sequence
from dataclasses import dataclass

MAX_SYMLINKS = 40  # path_resolution(7): ELOOP after 40 symlinks in one lookup
_OPAQUE = ("trusted.overlay.opaque", "user.overlay.opaque")


@dataclass(frozen=True, slots=True)
class LayeredRoot:
    """Overlay layers' directories, the top one first."""

    layers: tuple[str, ...]

    def host(self, inside: str) -> str | None:
        """Where the host finds the entry ``inside`` (a canonical path; symlinks not followed),
        None when no layer has it or a whiteout hides it."""
        relative = inside.strip("/")
        parts = relative.split("/") if relative else []
        parents = ["/".join(parts[:n]) for n in range(1, len(parts))]
        for layer in self.layers:
            for parent in parents:
                where = os.path.join(layer, parent)
                if _whiteout(where) or (os.path.lexists(where) and not os.path.isdir(where)):
                    return None
            candidate = os.path.join(layer, relative) if relative else layer
            if os.path.lexists(candidate):
                return None if _whiteout(candidate) else candidate
            if any(_opaque(os.path.join(layer, p)) for p in ["", *parents]):
                return None
        return None


Root = str | LayeredRoot


def _whiteout(path: str) -> bool:
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISCHR(info.st_mode) and info.st_rdev == 0


def _opaque(directory: str) -> bool:
    for name in _OPAQUE:
        try:
            if os.getxattr(directory, name, follow_symlinks=False) == b"y":
                return True
        except OSError:
            continue
    return False


def host_path(root: Root, inside: str) -> str:
    """The host's name for the container path ``inside`` (already resolved); for layers,
    FileNotFoundError when no layer holds it."""
    if isinstance(root, str):
        return os.path.join(root, inside.lstrip("/")) if inside != "/" else root
    found = root.host(inside)
    if found is None:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), inside)
    return found


def resolve_in_root(root: Root, path: str, cwd: str = "/") -> str:
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
        host = host_path(root, current)
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


def overlay_layers(graph_driver: object) -> tuple[str, ...]:
    """The layer directories of an ``inspect``'s ``GraphDriver`` (overlay2/overlay only),
    top first; () for other drivers."""
    if not isinstance(graph_driver, dict) or graph_driver.get("Name") not in (
        "overlay2",
        "overlay",
    ):
        return ()
    data = graph_driver.get("Data")
    if not isinstance(data, dict):
        return ()
    upper, lower = data.get("UpperDir"), data.get("LowerDir")
    layers = [upper] if isinstance(upper, str) and upper else []
    if isinstance(lower, str) and lower:
        layers.extend(d for d in lower.split(":") if d)
    return tuple(layers)


def as_root(layers: Sequence[str]) -> LayeredRoot | None:
    """A LayeredRoot over ``layers`` whose directories the host can read, else None."""
    if layers and all(os.path.isdir(d) for d in layers):
        return LayeredRoot(tuple(layers))
    return None
