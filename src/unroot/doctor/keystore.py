"""Keys that stay readable after certbot renews them: the renewal-proof plan for a lineage.

What certbot does (certbot/_internal/storage.py, certbot/compat/filesystem.py; read, not
copied): ``live/`` and ``archive/`` are created 0700; a lineage's directories with the default
mode (0755 under umask 022); ``live/NAME/*.pem`` are relative symlinks to
``../../archive/NAME/KINDn.pem``, replaced on renewal by ``unlink`` then ``symlink`` (not
atomically).  A renewal writes ``privkeyN.pem`` with ``O_CREAT|O_EXCL`` and mode 0600, then
``chown(-1, old key's gid)`` and ``chmod(0600 | old_mode & 0o074)``; with ``reuse_key`` the new
``privkeyN.pem`` is a *symlink* to the old key file (no copy, no hard link); a new lineage's
key is always 0600.  Certbot has no ACL code.  Replayed on ext4 (``tests/doctor/
test_keystore_replay.py``):

====================================  ==========================================================
an ACL entry on the current key only  lost: the new key is a new inode without it
a default ACL on archive/NAME only    masked out: the new key is created 0600, so the inherited
                                      mask is ``---`` and stays so (the old key's group bits
                                      were 0)
a default ACL + the entry on the key  kept: the old key's group bits (its mask, ``r``) are
                                      carried into the new key's mode, i.e. its mask
``chgrp G`` + 0640 on the key         kept: certbot copies the gid and the group bits
====================================  ==========================================================

So the plan is: search (``x``) entries on the directories the lookup needs (``live/``,
``archive/``, the lineage's directories when they need it — the model says which), the read
entry on the current files, and a default entry on ``archive/NAME`` whose ``group::`` is the
current key's (so the key's owning group gains nothing it did not have).  New lineages start
from scratch: a deploy hook (``renewal-hooks/deploy/60-unroot-ID.sh``) grants the same entries
to ``$RENEWED_LINEAGE`` when its name is this lineage's or ``NAME-NNNN``; it is always shown and
created only when asked.  Never a recursive chmod, never "other", never anyone but the one
identity.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass

from unroot.doctor.actions import AclSpec, Action, CreateFile, SetAcl
from unroot.errors import UsageError
from unroot.model.acl import Acl

KINDS = ("cert", "chain", "fullchain", "privkey")
_LIVE_FILE = re.compile(r"(cert|chain|fullchain|privkey)\.pem")
_ARCHIVE_FILE = re.compile(r"(cert|chain|fullchain|privkey)([0-9]+)\.pem")
_READ = 4


@dataclass(frozen=True, slots=True)
class Lineage:
    """A certbot lineage: ``ROOT/live/NAME`` and ``ROOT/archive/NAME``."""

    root: str
    name: str

    @property
    def live(self) -> str:
        return posixpath.join(self.root, "live")

    @property
    def archive(self) -> str:
        return posixpath.join(self.root, "archive")

    @property
    def live_dir(self) -> str:
        return posixpath.join(self.live, self.name)

    @property
    def archive_dir(self) -> str:
        return posixpath.join(self.archive, self.name)


def _match(path: str) -> tuple[Lineage, str | None] | None:
    """``ROOT/live/NAME[/KIND.pem]`` or ``ROOT/archive/NAME[/KINDn.pem]`` → lineage, which."""
    parts = posixpath.normpath(path).split("/")
    for at in range(len(parts) - 2, 0, -1):
        top, name, rest = parts[at], parts[at + 1], parts[at + 2 :]
        if top not in ("live", "archive") or not name or name.startswith("."):
            continue
        root = "/".join(parts[:at]) or "/"
        pattern = _LIVE_FILE if top == "live" else _ARCHIVE_FILE
        if not rest:
            return Lineage(root, name), None
        if len(rest) == 1 and pattern.fullmatch(rest[0]):
            return Lineage(root, name), top
    return None


def lineage_of(asked: str, resolved: str) -> Lineage | None:
    """The certbot lineage a lookup is about: asked about ``live/NAME/privkey.pem`` that ends
    at ``archive/NAME/privkeyN.pem``, about the archive file directly, or about ``live/NAME``."""
    found_asked, found_resolved = _match(asked), _match(resolved)
    if found_resolved is not None:
        lineage = found_resolved[0]
        if found_asked is None or found_asked[0] == lineage:
            return lineage
        return None
    return None if found_asked is None else found_asked[0]


@dataclass(frozen=True, slots=True)
class KeystorePlan:
    """``actions`` keep the identity's access across renewals; ``hook`` covers new lineages."""

    lineage: Lineage
    actions: tuple[Action, ...]
    hook: CreateFile
    notes: tuple[str, ...]

    def with_hook(self) -> tuple[Action, ...]:
        return (*self.actions, self.hook)


def _identity(proposed: Sequence[Action]) -> AclSpec:
    named = {
        (s.tag, s.id)
        for a in proposed
        if isinstance(a, SetAcl)
        for s in a.specs
        if s.id is not None
    }
    if len(named) != 1:
        raise UsageError("a key store plan is for exactly one identity (one u:UID or g:GID)")
    ((tag, ident),) = named
    return AclSpec(tag, ident, 0)


def hook_script(lineage: Lineage, who: AclSpec, perm: int = _READ) -> str:
    entry = AclSpec(who.tag, who.id, perm).text
    search = AclSpec(who.tag, who.id, 1).text
    name = lineage.name
    return f"""#!/bin/sh
# unroot: keep {who.tag}:{who.id} able to read lineage {name} (and {name}-NNNN) after certbot
# issues or renews it; certbot runs this with RENEWED_LINEAGE=<root>/live/<name>.
set -eu
lineage=${{RENEWED_LINEAGE:?certbot sets RENEWED_LINEAGE}}
case "${{lineage##*/}}" in
    {name}|{name}-[0-9][0-9][0-9][0-9]) ;;
    *) exit 0 ;;
esac
command -v setfacl >/dev/null || {{ echo "60-unroot: no setfacl (apt install acl)" >&2; exit 1; }}
root=$(dirname "$(dirname "$lineage")")
key=$(readlink -f "$lineage/privkey.pem")
archive=$(dirname "$key")
group_obj=$(getfacl --omit-header --absolute-names "$key" | sed -n 's/^group::\\(...\\).*/\\1/p')
setfacl -m {search} "$root/live" "$root/archive" "$lineage" "$archive"
setfacl -d -m "g::$group_obj,{entry}" "$archive"
for kind in {" ".join(KINDS)}; do
    setfacl -m {entry} "$(readlink -f "$lineage/$kind.pem")"
done
"""


def renewal_plan(
    asked: str,
    resolved: str,
    proposed: Sequence[Action],
    *,
    current: Sequence[str] = (),
    key_group_perm: int = 0,
    need_search: Sequence[str] = (),
) -> KeystorePlan | None:
    """The renewal-proof plan for a certbot lineage, or None when the lookup is not in one.

    ``proposed`` are the model's ACL actions for one identity (search entries on the blocking
    directories, the wanted bits on the target); ``current`` the archive files the live links
    name now (:func:`current_files`), ``key_group_perm`` the current key's ``group::`` perm
    (kept in the default ACL, so the key's owning group gains nothing on renewal),
    ``need_search`` the lineage's directories the identity cannot search yet (when the question
    was about ``live/NAME`` itself, the way on to ``archive/`` was not part of it).  Pure.
    """
    lineage = lineage_of(asked, resolved)
    if lineage is None:
        return None
    who = _identity(proposed)
    actions: list[Action] = []
    files: dict[str, int] = {}
    for action in proposed:
        if not isinstance(action, SetAcl) or action.default:
            raise UsageError(
                f"`{action.command}` is not an ACL entry; a key store gets ACL entries only"
            )
        where = _match(action.path)
        if where is not None and where[1] is not None:
            files[action.path] = max(s.perm for s in action.specs)
        else:
            actions.append(action)
    perm = max(files.values(), default=_READ) & _READ or _READ
    granted = {a.path for a in actions if isinstance(a, SetAcl)}
    for directory in need_search:
        if directory not in granted:
            actions.append(SetAcl(directory, (AclSpec(who.tag, who.id, 1),)))
    for path in current:
        files.setdefault(path, perm)
    target = _match(resolved)
    if target is not None and target[1] == "archive":
        files.setdefault(resolved, perm)
    why = "the current file; certbot carries its group bits (this entry's mask) to the next key"
    for path, bits in sorted(files.items()):
        actions.append(SetAcl(path, (AclSpec(who.tag, who.id, bits),), reason=why))
    default = SetAcl(
        lineage.archive_dir,
        (AclSpec("g", None, key_group_perm), AclSpec(who.tag, who.id, perm)),
        default=True,
        reason=(
            f"keys certbot writes into {lineage.archive_dir} on renewal inherit the entry (the "
            "group bits it copies from the current key unmask it); group:: stays the key's"
        ),
    )
    actions.append(default)
    ident = f"{'u' if who.tag == 'u' else ''}{who.id}"
    hook = CreateFile(
        posixpath.join(lineage.root, "renewal-hooks", "deploy", f"60-unroot-{ident}.sh"),
        hook_script(lineage, who, perm).encode(),
        0o755,
        reason=(
            f"new lineages ({lineage.name}-NNNN after a re-issue) start with a 0600 key and no "
            "entries: certbot runs this deploy hook after each issue and renewal"
        ),
    )
    notes = (
        "renewal keeps the access: the default entry on the archive directory and the entry "
        "on the current key together (either alone is lost on the next renewal)",
    )
    return KeystorePlan(lineage, tuple(actions), hook, notes)


# -- the live lineage (I/O) ------------------------------------------------------------------
def current_files(lineage: Lineage) -> tuple[str, ...]:
    """The archive files ``live/NAME/*.pem`` name now (each link resolved once)."""
    found = []
    for kind in KINDS:
        link = posixpath.join(lineage.live_dir, f"{kind}.pem")
        target = os.path.realpath(link)
        if os.path.isfile(target) and posixpath.dirname(target) == lineage.archive_dir:
            found.append(target)
    return tuple(found)


def key_group_perm(lineage: Lineage) -> int:
    """The current key's ``group::`` perm (its ACL's, else the mode's group bits)."""
    key = os.path.realpath(posixpath.join(lineage.live_dir, "privkey.pem"))
    try:
        data = os.getxattr(key, "system.posix_acl_access")
    except OSError:
        return (os.stat(key).st_mode >> 3) & 7
    return Acl.decode(data).group_obj


def _searchable(path: str, who: AclSpec) -> bool:
    """Whether ``who`` (an identity that owns nothing here) may search directory ``path``: a
    named entry with x under the mask, else the other bits."""
    st = os.stat(path)
    try:
        acl = Acl.decode(os.getxattr(path, "system.posix_acl_access"))
    except OSError:
        return bool(st.st_mode & 0o001)
    named = (acl.users if who.tag == "u" else acl.groups).get(who.id or 0)
    if named is not None:
        return bool(named & (acl.mask if acl.mask is not None else 7) & 1)
    return bool(acl.other & 1)


def certbot_plan(asked: str, resolved: str, proposed: Sequence[Action]) -> KeystorePlan | None:
    """:func:`renewal_plan` with ``current``, ``key_group_perm`` and ``need_search`` read from
    the live tree."""
    lineage = lineage_of(asked, resolved)
    if lineage is None:
        return None
    who = _identity(proposed)
    dirs = (lineage.live, lineage.archive, lineage.live_dir, lineage.archive_dir)
    return renewal_plan(
        asked,
        resolved,
        proposed,
        current=current_files(lineage),
        key_group_perm=key_group_perm(lineage),
        need_search=[d for d in dirs if not _searchable(d, who)],
    )
