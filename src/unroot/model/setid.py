"""Changes of identity between two execs: what a user-switching wrapper leaves behind.

capabilities(7), "Effect of user ID changes on capabilities": when a process whose real,
effective or saved uid is 0 changes them so that all are nonzero, the permitted, effective and
ambient sets are cleared (unless SECBIT_KEEP_CAPS).  ``gosu``, ``su-exec``, ``runuser`` and
``chroot --userspec`` call setgroups(2), setgid(2) and setuid(2): :func:`setuid_switch`.

``setpriv`` (util-linux sys-utils/setpriv.c) sets PR_SET_KEEPCAPS before setresuid(2) and
re-applies its capabilities after it, then edits the bounding set (``--bounding-set``), the
inheritable set (``--inh-caps``) and raises ambient capabilities (``--ambient-caps``), in that
order: :func:`setpriv_switch`.  So ``--inh-caps=+net_bind_service
--ambient-caps=+net_bind_service`` carries the capability through the exec of the service
(observed on the engine: tests/engine).
"""

from __future__ import annotations

from collections.abc import Iterable

from unroot.model.caps import EMPTY, CapSet
from unroot.model.creds import Creds, Ids
from unroot.model.errors import UnrootError


def setuid_switch(creds: Creds, uid: int, gid: int, groups: Iterable[int] = ()) -> Creds:
    """setgroups, setgid, setuid to ``uid``: capabilities(7) clears permitted, effective and
    ambient when all uids leave 0.  A process that is not root changes nothing the model can
    see (the switch fails, or is to itself)."""
    if creds.uid.effective != 0:
        return creds
    switched = creds.with_(uid=Ids.same(uid), gid=Ids.same(gid), groups=frozenset(groups))
    if uid != 0:
        switched = switched.with_(permitted=EMPTY, effective=EMPTY, ambient=EMPTY)
    return switched


def setpriv_switch(  # noqa: PLR0917 - setpriv's options, each one of its flags
    creds: Creds,
    uid: int,
    gid: int,
    groups: Iterable[int] = (),
    bounding_set: str | None = None,
    inh_caps: str | None = None,
    ambient_caps: str | None = None,
) -> Creds:
    """``setpriv --reuid --regid --groups [--bounding-set] [--inh-caps] [--ambient-caps]``:
    the capabilities survive the uid change (PR_SET_KEEPCAPS) and are re-applied; raising an
    ambient capability needs it in permitted and inheritable (prctl EPERM otherwise)."""
    if creds.uid.effective != 0:
        return creds
    switched = creds.with_(uid=Ids.same(uid), gid=Ids.same(gid), groups=frozenset(groups))
    bounding = apply_cap_edit(creds.bounding, bounding_set)
    inheritable = apply_cap_edit(creds.inheritable, inh_caps)
    ambient = apply_cap_edit(creds.ambient, ambient_caps)
    ambient &= creds.permitted & inheritable
    return switched.with_(
        bounding=bounding,
        inheritable=inheritable,
        effective=creds.permitted if uid != 0 else creds.effective,
        ambient=ambient,
    )


def apply_cap_edit(caps: CapSet, edit: str | None) -> CapSet:
    """setpriv's ``+cap,-cap,+all,-all`` list applied to ``caps``; an unknown name leaves the
    set as it was (setpriv would refuse to run; the model does not guess)."""
    if not edit:
        return caps
    result = caps
    for item in edit.split(","):
        sign, name = item[:1], item[1:].strip().lower()
        if sign not in "+-" or not sign or not name:
            return caps
        try:
            change = CapSet.all() if name == "all" else CapSet.parse(name)
        except UnrootError:
            return caps
        result = result | change if sign == "+" else result - change
    return result
