"""``--user``/``--group`` (and ``--rootless OWNER``) → the :class:`~.subject.Subject` in host ids.

On the host a name is looked up in the account database (pwd/grp, as the kernel's callers do);
a number needs no entry (seed 000's container runs as 2200:2200, which no host file names).
Supplementary groups are those of ``initgroups(3)`` for a named user, none for a bare number.

With ``--rootless OWNER`` the ids are the container's: 0 is OWNER, n ≥ 1 is the n-th id of
OWNER's ranges in ``/etc/subuid`` (``/etc/subgid`` for groups), ranges concatenated in file
order (:func:`unroot.model.userns.rootless_map`), and the process is inside that user
namespace: its capabilities count only on inodes whose owner and group map into it.
"""

from __future__ import annotations

import grp
import os
import pwd
from dataclasses import dataclass

from unroot.errors import UsageError
from unroot.facts import cannot
from unroot.model.caps import CapSet
from unroot.model.runtimes import DOCKER_DEFAULT_CAPS, PODMAN_DEFAULT_CAPS
from unroot.model.userns import IdMap, SubIdRange, UserNs, parse_subid, rootless_map, subids_of

from .subject import Engine, RootlessRef, Subject

SUBUID = "/etc/subuid"
SUBGID = "/etc/subgid"


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


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except FileNotFoundError:
        return ""
    except OSError as exc:
        raise cannot(exc, "read", path) from None


def rootless_owner(
    owner: str, engine: Engine, *, subuid: str = SUBUID, subgid: str = SUBGID
) -> Rootless:
    """OWNER (a name or uid with an account) and the maps its rootless engine writes."""
    uid, name, gid = host_user(owner)
    if name is None or gid is None:
        raise UsageError(f"--rootless {owner}: no such user on this host")
    maps = []
    for path, own_id, kind in ((subuid, uid, "uid"), (subgid, gid, "gid")):
        ranges: tuple[SubIdRange, ...] = subids_of(
            parse_subid(_read(path), path), name=name, uid=uid
        )
        if not ranges:
            raise UsageError(
                f"--rootless {name}: no subordinate range for {name} in {path} "
                f"(rootless engines need one: usermod --add-sub{kind}s {name}=START-END)"
            )
        maps.append(rootless_map(own_id, ranges))
    return Rootless(RootlessRef(name, uid, engine), gid, maps[0], maps[1])


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
        evidence=(owner_note, f"uid map (container → host): {_map_text(rootless.uid_map)}"),
    )


def _map_text(idmap: IdMap) -> str:
    def span(start: int, count: int) -> str:
        return str(start) if count == 1 else f"{start}-{start + count - 1}"

    return ", ".join(
        f"{span(r.inside, r.count)} → {span(r.outside, r.count)}" for r in idmap.ranges
    )
