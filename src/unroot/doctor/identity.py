"""Who a ``user`` setting really is: names resolved through a passwd/group file, container ids
mapped to host ids through the owner's ``/etc/subuid`` and ``/etc/subgid``.

Resolution follows the runtimes (moby/sys/user ``GetExecUser``, Podman's
``lookup.GetUserGroupInfo``, systemd's ``User=``/``Group=``): a name needs an entry; a uid
without a group gets its entry's group, else gid 0; the supplementary groups are the group
entries listing the user's name, then ``--group-add``/``SupplementaryGroups=``.  A rootless
engine maps container id 0 to its owner and n ≥ 1 to the owner's (n-1)-th subordinate id
(:func:`unroot.model.userns.rootless_map`); a running container's ``/proc/PID/uid_map`` is the
kernel's own answer and is compared with it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from unroot.doctor.subject import Engine, RootlessRef
from unroot.errors import ParseError, UsageError
from unroot.facts import cannot, path_error
from unroot.facts.accounts import Accounts, parse_passwd
from unroot.model.userns import IdMap, parse_subid, rootless_map, subids_of


@dataclass
class Evidence:
    """The evidence lines of one subject, in the order they were learnt."""

    lines: list[str] = field(default_factory=list)

    def add(self, line: str) -> None:
        if line not in self.lines:
            self.lines.append(line)


@dataclass(frozen=True, slots=True)
class Who:
    """A resolved user: ids as the process sees them (inside its user namespace)."""

    uid: int
    gid: int
    groups: tuple[int, ...]
    name: str | None


def resolve_user(
    text: str,
    accounts: Accounts,
    extra_groups: tuple[str, ...],
    evidence: Evidence,
    *,
    where: str,
) -> Who | None:
    """``uid``, ``uid:gid``, ``name``, ``name:group`` (empty: root) through ``accounts``;
    None when a name cannot be resolved (evidence says why)."""
    user_text, _, group_text = (text or "0").partition(":")
    user_text = user_text.strip() or "0"
    entry = accounts.user(user_text)
    if user_text.isdigit():
        uid = int(user_text)
    elif entry is not None:
        uid = entry.uid
        evidence.add(f"{accounts.where}/passwd: {user_text} is uid {uid}")
    else:
        why = "no such entry" if accounts.found else "not readable"
        evidence.add(f"{where}: user {user_text!r} is a name and {accounts.where}/passwd is {why}")
        return None
    if group_text:
        if group_text.isdigit():
            gid = int(group_text)
        else:
            group = accounts.group(group_text)
            if group is None:
                evidence.add(f"{where}: group {group_text!r}: not in {accounts.where}/group")
                return None
            gid = group.gid
            evidence.add(f"{accounts.where}/group: {group_text} is gid {gid}")
    elif entry is not None:
        gid = entry.gid
        evidence.add(f"{accounts.where}/passwd: uid {uid}'s group is gid {gid}")
    else:
        gid = 0
        known = "no entry" if accounts.found else "not readable"
        evidence.add(
            f"{where}: uid {uid} without a group: gid 0 ({accounts.where}/passwd: {known})"
        )
    groups: list[int] = []
    if entry is not None:
        groups.extend(g for g in accounts.member_of(entry.name) if g != gid)
        if groups:
            evidence.add(
                f"{accounts.where}/group: {entry.name} is a member of "
                + ", ".join(str(g) for g in groups)
            )
    for extra in extra_groups:
        if extra.isdigit():
            groups.append(int(extra))
            continue
        group = accounts.group(extra)
        if group is None:
            evidence.add(f"{where}: supplementary group {extra!r}: not in {accounts.where}/group")
            continue
        groups.append(group.gid)
        evidence.add(f"{accounts.where}/group: {extra} is gid {group.gid}")
    return Who(
        uid, gid, tuple(dict.fromkeys(g for g in groups if g != gid)), entry.name if entry else None
    )


def read_input(path: str) -> str:
    """A file the user named: missing is bad input (exit 2), unreadable the environment (3)."""
    try:
        with open(path, encoding="utf-8") as file:
            return file.read()
    except UnicodeDecodeError:
        raise ParseError("not UTF-8 text", path) from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory, not a file") from None
    except OSError as exc:
        raise path_error(exc, path) from None


def rootless_ref(owner: str, engine: Engine, etc: str = "/etc") -> RootlessRef:
    """``--rootless OWNER`` (a login name or a uid) as a RootlessRef, through ``etc``/passwd;
    UsageError for an unknown user."""
    path = os.path.join(etc, "passwd")
    accounts = parse_passwd(read_text(path))
    entry = next((a for a in accounts if a.name == owner), None)
    if entry is None and owner.isdigit():
        entry = next((a for a in accounts if a.uid == int(owner)), None)
    if entry is None:
        raise UsageError(f"--rootless {owner}: no such user in {path}")
    return RootlessRef(entry.name, entry.uid, engine)


def read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            return file.read()
    except FileNotFoundError:
        return ""
    except OSError as exc:
        raise cannot(exc, "read", path) from None


def rootless_maps(ref: RootlessRef, etc: str = "/etc") -> tuple[IdMap, IdMap]:
    """The uid and gid maps ``ref``'s engine writes (rootlesskit and Podman both call
    newuidmap/newgidmap with every range of the owner); UsageError without ranges."""
    passwd = os.path.join(etc, "passwd")
    entry = next((a for a in parse_passwd(read_text(passwd)) if a.uid == ref.uid), None)
    maps = []
    for name, own in (("subuid", ref.uid), ("subgid", entry.gid if entry else ref.uid)):
        path = os.path.join(etc, name)
        ranges = subids_of(parse_subid(read_text(path), path), name=ref.owner, uid=ref.uid)
        if not ranges:
            raise UsageError(f"{ref.owner} has no subordinate ids in {path}")
        maps.append(rootless_map(own, ranges))
    return maps[0], maps[1]


def read_id_map(pid: int, which: str, procfs: str) -> IdMap | None:
    """``/proc/PID/uid_map`` (``which`` = uid) or ``gid_map``; None when the process is gone."""
    path = os.path.join(procfs, str(pid), f"{which}_map")
    try:
        with open(path, encoding="ascii") as file:
            return IdMap.parse(file.read(), path)
    except OSError:
        return None


def map_text(id_map: IdMap) -> str:
    """``0 1001 1, 1 100000 65536``: a map's lines on one line."""
    return ", ".join(f"{r.inside} {r.outside} {r.count}" for r in id_map.ranges)
