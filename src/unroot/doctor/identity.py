"""Who a ``user`` setting really is: names resolved through a passwd/group file, container ids
mapped to host ids through the owner's ``/etc/subuid`` and ``/etc/subgid``.

Resolution follows the runtimes (moby/sys/user ``GetExecUser``, Podman's
``lookup.GetUserGroupInfo``, systemd's ``User=``/``Group=``): a name needs an entry; a uid
without a group gets its entry's group, else gid 0; the supplementary groups are the group
entries listing the user's name, then ``--group-add``/``SupplementaryGroups=``.  A rootless
engine maps container id 0 to its owner and n ≥ 1 to the owner's (n-1)-th subordinate id
(:func:`unroot.model.userns.rootless_map`); a running container's ``/proc/PID/uid_map`` is the
kernel's own answer and is compared with it.

For ``--user``/``--group`` on the host a name is looked up in the host's account database
(pwd/grp, as the kernel's callers do) and a number needs no entry (seed 000's container runs as
2200:2200, which no host file names); :func:`flag_subject` builds the subject, in OWNER's
rootless container with ``--rootless`` (0 is OWNER, n ≥ 1 the n-th subordinate id, and the
container's capabilities count only on inodes whose owner and group map into its namespace).
"""

from __future__ import annotations

import grp
import os
import pwd
from dataclasses import dataclass, field

from unroot.doctor.subject import Engine, RootlessRef, Subject
from unroot.errors import ParseError, UsageError
from unroot.facts import cannot, path_error
from unroot.facts.accounts import Accounts, parse_passwd
from unroot.model.caps import CapSet
from unroot.model.runtimes import DOCKER_DEFAULT_CAPS, PODMAN_DEFAULT_CAPS
from unroot.model.userns import IdMap, UserNs, parse_subid, rootless_map, subids_of


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
    """``0 → 1001, 1-65536 → 100000-165535``: a map's ranges on one line, inside → outside."""

    def span(start: int, count: int) -> str:
        return str(start) if count == 1 else f"{start}-{start + count - 1}"

    return ", ".join(
        f"{span(r.inside, r.count)} → {span(r.outside, r.count)}" for r in id_map.ranges
    )


SUBUID = "/etc/subuid"


@dataclass(frozen=True, slots=True)
class Rootless:
    """OWNER's user namespace as its rootless engine builds it."""

    ref: RootlessRef
    gid: int  # OWNER's primary group: container gid 0
    uid_map: IdMap
    gid_map: IdMap

    @property
    def userns(self) -> UserNs:
        return UserNs(self.uid_map, self.gid_map)


def _number(text: str) -> int | None:
    if text.isdigit() and len(text) <= 10 and int(text) < 2**32 - 1:
        return int(text)
    return None


def host_user(text: str) -> tuple[int, str | None, int | None]:
    """``--user`` on the host: uid, its name, its primary gid (None for a bare number)."""
    number = _number(text)
    try:
        entry = pwd.getpwuid(number) if number is not None else pwd.getpwnam(text)
    except KeyError:
        if number is not None:
            return number, None, None
        raise UsageError(
            f"no user {text!r} on this host (give a name from /etc/passwd or a uid)"
        ) from None
    return entry.pw_uid, entry.pw_name, entry.pw_gid


def host_group(text: str) -> int:
    """``--group`` on the host: a name from the group database or a gid."""
    number = _number(text)
    if number is not None:
        return number
    try:
        return grp.getgrnam(text).gr_gid
    except KeyError:
        raise UsageError(
            f"no group {text!r} on this host (give a name from /etc/group or a gid)"
        ) from None


def group_name(gid: int) -> str | None:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return None


def user_name(uid: int) -> str | None:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


def _supplementary(name: str | None, gid: int) -> tuple[int, ...]:
    if name is None:
        return ()
    try:
        return tuple(sorted(set(os.getgrouplist(name, gid)) - {gid}))
    except OSError:
        return ()


def rootless_owner(owner: str, engine: Engine, *, etc: str = "/etc") -> Rootless:
    """``--rootless OWNER`` (a name or uid with an account) and the maps its engine writes."""
    ref = rootless_ref(owner, engine, etc)
    uid_map, gid_map = rootless_maps(ref, etc)
    gid = gid_map.to_outside(0)
    return Rootless(ref, ref.uid if gid is None else gid, uid_map, gid_map)


def _container_id(text: str, what: str) -> int:
    if text == "root":
        return 0
    number = _number(text)
    if number is None:
        raise UsageError(
            f"--{what} {text!r}: with --rootless give the container's numeric {what} id "
            "(names live in the image's /etc/passwd)"
        )
    return number


def flag_subject(
    user: str | None,
    group: str | None,
    *,
    rootless: Rootless | None = None,
    effective: CapSet | None = None,
) -> Subject:
    """The subject of ``--user``/``--group`` (on the host, or in OWNER's rootless container)."""
    if rootless is not None:
        return _rootless_subject(user, group, rootless, effective)
    if user is None and group is None:
        uid, name, gid = 65534, user_name(65534), 65534
        label = "an unprivileged process (uid 65534)"
    else:
        uid, name, primary = host_user(user) if user is not None else (65534, None, None)
        gid = host_group(group) if group is not None else primary if primary is not None else uid
        label = f"uid {uid}" + (f" ({name})" if name else "") + f" gid {gid}"
        if group_name(gid):
            label += f" ({group_name(gid)})"
    evidence = []
    if user is not None:
        evidence.append(
            f"--user {user}: uid {uid}"
            + (f" ({name}, /etc/passwd)" if name else " (no entry in /etc/passwd: a bare id)")
        )
    groups = _supplementary(name, gid)
    if groups:
        evidence.append(f"supplementary groups of {name}: {', '.join(map(str, groups))}")
    return Subject(
        label=label,
        uid=uid,
        gid=gid,
        groups=groups,
        effective=effective or CapSet(),
        name=name,
        evidence=tuple(evidence),
    )


def _rootless_subject(
    user: str | None, group: str | None, rootless: Rootless, effective: CapSet | None
) -> Subject:
    ref = rootless.ref
    cuid = _container_id(user, "user") if user is not None else 0
    cgid = _container_id(group, "group") if group is not None else cuid if user else 0
    uid, gid = rootless.uid_map.to_outside(cuid), rootless.gid_map.to_outside(cgid)
    if uid is None or gid is None:
        bad, what = (cuid, "uid") if uid is None else (cgid, "gid")
        raise UsageError(
            f"container {what} {bad} is not mapped by {ref.owner}'s rootless {ref.engine} "
            f"(its /etc/sub{what} ranges are too small): the engine cannot run it"
        )
    if effective is None:
        defaults = DOCKER_DEFAULT_CAPS if ref.engine == "docker" else PODMAN_DEFAULT_CAPS
        effective = defaults if cuid == 0 else CapSet()
    owner_note = (
        f"container uid 0 is {ref.owner} (uid {ref.uid}) itself"
        if cuid == 0
        else f"container uid {cuid} is host uid {uid} (the {cuid}-th id of {ref.owner}'s "
        f"ranges in {SUBUID}), not host uid {cuid}"
    )
    return Subject(
        label=f"container uid {cuid} gid {cgid} of {ref.owner}'s rootless {ref.engine} "
        f"(host uid {uid} gid {gid})",
        uid=uid,
        gid=gid,
        effective=effective,
        name=user_name(uid),
        container_uid=cuid,
        container_gid=cgid,
        rootless=ref,
        host_network=False,
        evidence=(owner_note, f"uid map (container → host): {map_text(rootless.uid_map)}"),
    )
