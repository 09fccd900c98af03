"""Names ↔ ids from an ``/etc/passwd`` and ``/etc/group`` — the host's, or a container's seen
through ``/proc/PID/root``.

The files are read, not NSS: a container's runtime resolves ``--user www`` the same way
(moby/sys/user ``GetExecUser`` reads the image's files), and so does systemd for a system
service's ``User=`` when the name is in the files.  A user's supplementary groups are the
``/etc/group`` entries that list its name (``GetExecUser``'s ``Sgids``, initgroups(3)).
Parsing is pure (:func:`parse_passwd`, :func:`parse_group`); :func:`read_accounts` reads
both files under a root, resolving their symlinks inside it (:mod:`unroot.facts.rootfs`).
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass

from unroot.facts import cannot
from unroot.facts.rootfs import Root, host_path, resolve_in_root


@dataclass(frozen=True, slots=True)
class Account:
    """One passwd(5) entry."""

    name: str
    uid: int
    gid: int


@dataclass(frozen=True, slots=True)
class Group:
    """One group(5) entry."""

    name: str
    gid: int
    members: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Accounts:
    """The entries of one passwd and one group file; ``where`` names them in evidence.

    ``found`` is False when the files could not be read (a stopped container, a distroless
    image without /etc/passwd): lookups then find nothing.
    """

    users: tuple[Account, ...] = ()
    groups: tuple[Group, ...] = ()
    where: str = "/etc"
    found: bool = True

    def user(self, text: str) -> Account | None:
        """The entry named ``text``, or the first with uid ``text`` when it is a number."""
        if text.isdigit():
            return next((u for u in self.users if u.uid == int(text)), None)
        return next((u for u in self.users if u.name == text), None)

    def group(self, text: str) -> Group | None:
        if text.isdigit():
            return next((g for g in self.groups if g.gid == int(text)), None)
        return next((g for g in self.groups if g.name == text), None)

    def member_of(self, name: str) -> tuple[int, ...]:
        """The gids of the groups that list ``name`` as a member, in file order."""
        return tuple(dict.fromkeys(g.gid for g in self.groups if name in g.members))


def _fields(text: str, count: int) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        if not line.strip() or line.startswith(("#", "+", "-")):
            continue
        parts = line.split(":")
        if len(parts) >= count and parts[0] and parts[2].isdigit():
            rows.append(parts)
    return rows


def parse_passwd(text: str) -> tuple[Account, ...]:
    """The well-formed entries of a passwd(5) file (``name:x:uid:gid:…``)."""
    return tuple(Account(p[0], int(p[2]), int(p[3])) for p in _fields(text, 4) if p[3].isdigit())


def parse_group(text: str) -> tuple[Group, ...]:
    """The well-formed entries of a group(5) file (``name:x:gid:member,member``)."""
    return tuple(
        Group(p[0], int(p[2]), tuple(m for m in p[3].split(",") if m) if len(p) > 3 else ())
        for p in _fields(text, 3)
    )


def read_accounts(root: Root = "/", shown: str | None = None) -> Accounts:
    """``ROOT/etc/passwd`` and ``ROOT/etc/group``; a missing file gives no entries, any other
    failure an EnvironmentProblem.  ``shown``: how evidence names the files' directory."""
    where = shown or (os.path.join(root, "etc") if isinstance(root, str) else "/etc")
    texts = []
    for name in ("passwd", "group"):
        try:
            inside = resolve_in_root(root, f"/etc/{name}")
            with open(host_path(root, inside), encoding="utf-8", errors="replace") as file:
                texts.append(file.read())
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                texts.append("")
                continue
            raise cannot(exc, "read", f"{where}/{name}") from None
    return Accounts(parse_passwd(texts[0]), parse_group(texts[1]), where)
