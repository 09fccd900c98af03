"""The system's user and group databases (getpwnam(3), getgrnam(3), getgrouplist(3) via NSS),
and the identity of the process that runs ``unroot run``: the facts :func:`make_plan` needs."""

from __future__ import annotations

import grp
import os
import pwd

from unroot.launch.plan import Accounts, Invoker, UserEntry


class SystemAccounts(Accounts):
    """Answers from the live databases: /etc/passwd, /etc/group, LDAP, whatever NSS says."""

    def user_by_name(self, name: str) -> UserEntry | None:
        try:
            entry = pwd.getpwnam(name)
        except (KeyError, ValueError):  # ValueError: a NUL in the name
            return None
        return UserEntry(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir, entry.pw_shell)

    def user_by_uid(self, uid: int) -> UserEntry | None:
        try:
            entry = pwd.getpwuid(uid)
        except (KeyError, OverflowError):
            return None
        return UserEntry(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir, entry.pw_shell)

    def group_by_name(self, name: str) -> int | None:
        try:
            return grp.getgrnam(name).gr_gid
        except (KeyError, ValueError):
            return None

    def grouplist(self, user: str, gid: int) -> tuple[int, ...]:
        return tuple(os.getgrouplist(user, gid))

    def group_name(self, gid: int) -> str | None:
        try:
            return grp.getgrgid(gid).gr_name
        except (KeyError, OverflowError):
            return None


def invoker() -> Invoker:
    """The calling process: real uid and gid, supplementary groups."""
    return Invoker(os.getuid(), os.getgid(), os.getgroups())
