"""Host paths whose default ownership is well known, as an :data:`~unroot.model.access.FsTree`.

The linter cannot look at the host a compose file or a pod will run on (``unroot doctor`` does),
but some host paths are the same everywhere because the package that creates them says so.
When a workload bind-mounts one of them (or something below it), the model's path walk
(:func:`unroot.model.access.access_verdict`) answers whether the container's identity can use
it *on a default host*; every finding built on this table says so.

Sources (Debian 12 defaults; the same on Ubuntu and, for certbot, everywhere):

* certbot ``certbot/_internal/constants.py`` and ``storage.py``: ``live/`` and ``archive/`` are
  created ``0700`` root (``CONFIG_DIRS_MODE``); ``keys/`` and ``accounts/`` too (a server
  needs only ``live/`` and the ``archive/`` its symlinks point into).
* Debian ``ssl-cert``: ``/etc/ssl/private`` is ``0710 root:ssl-cert`` (the gid is allocated at
  install time: unknown here).
* Debian ``base-passwd``: ``shadow`` is gid 42; ``/etc/shadow`` ``0640 root:shadow``; ``/root``
  ``0700``.
* OpenSSH: host keys ``/etc/ssh/ssh_host_*_key`` ``0600 root``.
* Docker: ``/run/docker.sock`` ``0660 root:docker`` (gid allocated at install time);
  ``/var/run`` is a symlink to ``/run``; ``/var/lib/docker`` ``0710 root``.
* kubeadm: ``/etc/kubernetes/pki/*.key`` and ``admin.conf`` ``0600 root``.

``want`` says what the service needs of the path to do its job: ``rx`` for a directory whose
files it reads, ``r`` for a file, ``rw`` for a socket it connects to; entries without ``want``
are only on the way.  A group whose gid differs between hosts has ``gid=None``: its tree gid is
a placeholder that no numeric id of a workload matches, and a check that would depend on it is
skipped when the workload names supplementary groups.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from dataclasses import dataclass

from unroot.model.access import FsTree, Inode

#: Placeholder gids for groups allocated at install time (ssl-cert, docker): above any real id.
_PLACEHOLDER_GID_BASE = 4_000_000_000


@dataclass(frozen=True, slots=True)
class KnownPath:
    """One host path as its package leaves it."""

    path: str
    kind: str  # "dir" | "file" | "sock" | "symlink"
    mode: int
    uid: int = 0
    gid: int | None = 0  # None: a group allocated at install time
    group: str = "root"
    want: str | None = None  # what a service mounting it needs: "r", "rx", "rw"
    what: str = ""  # what it holds, for messages
    target: str | None = None  # symlinks
    #: advice to add to the fix ({who} is the ACL qualifier, ``g:2200``)
    advice: str = ""
    #: what a service that mounts this path (or uses a path below it) uses too: certbot's tree
    #: exists only for its certificates and keys, live/'s symlinks point into archive/
    uses: tuple[str, ...] = ()


KNOWN_PATHS: tuple[KnownPath, ...] = (
    KnownPath("/", "dir", 0o755),
    KnownPath("/etc", "dir", 0o755),
    KnownPath(
        "/etc/letsencrypt",
        "dir",
        0o755,
        uses=("/etc/letsencrypt/live", "/etc/letsencrypt/archive"),
    ),
    KnownPath(
        "/etc/letsencrypt/live",
        "dir",
        0o700,
        want="rx",
        what="the TLS certificates",
        uses=("/etc/letsencrypt/archive",),
    ),
    KnownPath(
        "/etc/letsencrypt/archive",
        "dir",
        0o700,
        want="rx",
        what="the TLS keys",
        advice=(
            "the keys inside (archive/DOMAIN/privkey*.pem) are 0600 root: grant `{who}:r` on "
            "the service's own domain's keys only, never recursively on archive/ (it holds "
            "every domain's keys), and again from a certbot deploy hook (`certbot renew "
            "--deploy-hook`, which names the domain in $RENEWED_LINEAGE) so renewed keys stay "
            "readable; or let that hook copy the key to a file the service's group owns"
        ),
    ),
    KnownPath("/etc/letsencrypt/keys", "dir", 0o700),  # CSR keys: a server does not need them
    KnownPath("/etc/letsencrypt/accounts", "dir", 0o700),  # ACME account keys: nor these
    KnownPath("/etc/ssl", "dir", 0o755),
    KnownPath(
        "/etc/ssl/private", "dir", 0o710, gid=None, group="ssl-cert", want="x", what="TLS keys"
    ),
    KnownPath("/etc/ssh", "dir", 0o755),
    KnownPath("/etc/ssh/ssh_host_ed25519_key", "file", 0o600, want="r", what="an SSH host key"),
    KnownPath("/etc/ssh/ssh_host_rsa_key", "file", 0o600, want="r", what="an SSH host key"),
    KnownPath("/etc/ssh/ssh_host_ecdsa_key", "file", 0o600, want="r", what="an SSH host key"),
    KnownPath("/etc/shadow", "file", 0o640, gid=42, group="shadow", want="r", what="passwords"),
    KnownPath("/etc/gshadow", "file", 0o640, gid=42, group="shadow", want="r", what="passwords"),
    KnownPath("/etc/kubernetes", "dir", 0o755),
    KnownPath("/etc/kubernetes/admin.conf", "file", 0o600, want="r", what="cluster credentials"),
    KnownPath("/etc/kubernetes/pki", "dir", 0o755),
    KnownPath("/etc/kubernetes/pki/ca.key", "file", 0o600, want="r", what="the cluster CA key"),
    KnownPath("/etc/kubernetes/pki/apiserver.key", "file", 0o600, want="r", what="a TLS key"),
    KnownPath("/root", "dir", 0o700, want="rx", what="root's home"),
    KnownPath("/run", "dir", 0o755),
    KnownPath(
        "/run/docker.sock",
        "sock",
        0o660,
        gid=None,
        group="docker",
        want="rw",
        what="Docker's API",
    ),
    KnownPath("/var", "dir", 0o755),
    KnownPath("/var/run", "symlink", 0o777, target="/run"),
    KnownPath("/var/lib", "dir", 0o755),
    KnownPath("/var/lib/docker", "dir", 0o710, want="rx", what="Docker's data"),
)
_BY_PATH = {known.path: known for known in KNOWN_PATHS}
_PLACEHOLDERS = {
    name: _PLACEHOLDER_GID_BASE + i
    for i, name in enumerate(sorted({k.group for k in KNOWN_PATHS if k.gid is None}))
}


def placeholder_names() -> dict[int, str]:
    """Placeholder gid → the group it stands for (to name it in messages)."""
    return {gid: name for name, gid in _PLACEHOLDERS.items()}


def placeholder_gid(group: str) -> int | None:
    """The tree gid standing for ``group`` when its real gid differs between hosts."""
    return _PLACEHOLDERS.get(group)


def _inode(known: KnownPath) -> Inode:
    gid = known.gid if known.gid is not None else _PLACEHOLDERS[known.group]
    if known.kind == "symlink":
        return Inode("symlink", known.mode, known.uid, gid, target=known.target)
    return Inode(known.kind, known.mode, known.uid, gid)


def known_tree() -> FsTree:
    """The table as a tree for :func:`unroot.model.access.access_verdict`."""
    return {known.path: _inode(known) for known in KNOWN_PATHS}


def known(path: str) -> KnownPath | None:
    return _BY_PATH.get(posixpath.normpath(path))


def _canonical(path: str) -> str:
    """``/var/run/docker.sock`` → ``/run/docker.sock``: resolve the table's symlinks."""
    for entry in KNOWN_PATHS:
        below = path == entry.path or path.startswith(entry.path + "/")
        if entry.kind == "symlink" and entry.target is not None and below:
            return entry.target + path[len(entry.path) :]
    return path


def canonical(path: str) -> str:
    """A host path normalised, the table's symlinks resolved (``/var/run`` → ``/run``)."""
    return _canonical("/" + posixpath.normpath(path).lstrip("/")) if path.startswith("/") else ""


def uses_of(path: str) -> tuple[str, ...]:
    """The known paths a service using ``path`` uses as well (nearest known ancestor's
    ``uses``, or the path's own)."""
    norm = canonical(path)
    while norm:
        entry = _BY_PATH.get(norm)
        if entry is not None and entry.uses:
            return entry.uses
        parent = posixpath.dirname(norm)
        if parent == norm:
            return ()
        norm = parent
    return ()


def needed_below(source: str) -> Iterator[KnownPath]:
    """The known paths a service mounting ``source`` needs: ``source`` itself when the table
    knows it, and every entry with a ``want`` at or below it (``/etc/letsencrypt`` →
    ``live``, ``archive``, …); a source below a known directory (``/etc/letsencrypt/live/x``)
    yields a pseudo-entry for itself, so the walk passes through the known parents."""
    norm = _canonical(posixpath.normpath(source)) if source.startswith("/") else ""
    if not norm:
        return
    found = False
    for entry in KNOWN_PATHS:
        if entry.want and (entry.path == norm or entry.path.startswith(norm.rstrip("/") + "/")):
            found = True
            yield entry
    if found or norm in _BY_PATH:
        return
    parent = posixpath.dirname(norm)
    while parent != "/":
        above = _BY_PATH.get(parent)
        if above is not None and above.want:
            yield KnownPath(norm, "dir", 0o755, want="rx", what=above.what)
            return
        parent = posixpath.dirname(parent)
