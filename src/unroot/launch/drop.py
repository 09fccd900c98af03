"""Become the service: drop every privilege in-process, prove it, hand over the sockets, exec.

The order (credentials(7), capabilities(7), prctl(2)), after the sockets are bound:

1. The hard RLIMIT_NOFILE, when ``--nofile`` raises it — first, while still privileged:
   raising a hard limit needs CAP_SYS_RESOURCE, which the service must not keep. The final
   limits (``--nofile``, default: soft raised to hard, as Go >= 1.19 does) are set last, right
   before execve (lowering needs no privilege), so what unroot itself opens on the way never
   counts against a small ``--nofile``.
2. setgroups(2) — exactly the plan's groups: never root's.
3. setresgid(2) — real, effective, saved (and fs) gid.
4. PR_CAPBSET_DROP for every capability but the kept ones — needs CAP_SETPCAP, so before the
   uid changes.
5. setresuid(2). A change from uid 0 clears the permitted and effective sets unless
   PR_SET_KEEPCAPS is set: it is set only with ``--keep-cap``, and cleared right after.
6. capset(2): permitted = effective = inheritable = the kept capabilities (ambient needs each
   capability in both permitted and inheritable); then the ambient set is cleared and the kept
   capabilities raised into it, so they survive execve of a file without file capabilities.
   Without ``--keep-cap`` all three sets are emptied.
7. PR_SET_NO_NEW_PRIVS, unless ``--allow-new-privs``: no setuid bit or file capability can give
   back what was dropped.
8. Verify: /proc/thread-self/status must show the uid and gid in all four slots, exactly the
   groups, every capability set (bounding included) equal to the kept capabilities, and
   NoNewPrivs 1 — or nothing is exec'd.
   A new session keyring replaces root's (keyctl JOIN_SESSION_KEYRING, as the service's user).
9. As the service's user: the umask gets at least 022 (never wider than unroot's own), and the
   working directory stays unroot's if the user may search it, else it is ``/`` (systemd's
   default WorkingDirectory=); PWD follows.
10. The sockets move to fds 3..3+N-1 without FD_CLOEXEC, every other fd above 2 is closed, and
   LISTEN_FDS, LISTEN_PID (our pid: execve keeps it) and LISTEN_FDNAMES are set.
11. RLIMIT_NOFILE, then execve(2): unroot is gone, the service owns the sockets.

Capabilities and no_new_privs are per thread: this runs in a single-threaded process.
"""

from __future__ import annotations

import errno
import fcntl
import os
import resource
import stat
import sys

from unroot import syscalls
from unroot.errors import EnvironmentProblem, UnrootError, UsageError
from unroot.launch.plan import SD_LISTEN_FDS_START, listen_environment

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from typing import NoReturn

    from unroot.launch.janitor import Janitor
    from unroot.launch.plan import LaunchPlan
    from unroot.launch.sockets import BoundSocket

# include/uapi/linux/capability.h
CAP_SETGID = 6
CAP_SETUID = 7
CAP_SETPCAP = 8
CAP_SYS_RESOURCE = 24
MASK_BITS = 64
PROCFS = "/proc"
_FD_MAX = (1 << 31) - 1


def _has(mask: int, cap: int) -> bool:
    return bool(mask >> cap & 1)


def _bits(mask: int) -> list[int]:
    return [cap for cap in range(MASK_BITS) if _has(mask, cap)]


def _cap_names(mask: int) -> str:
    from unroot.model.caps import CapSet  # lazily: only for messages

    return str(CapSet(mask))


def _same_identity(plan: LaunchPlan) -> bool:
    return (
        os.getresuid() == (plan.uid,) * 3
        and os.getresgid() == (plan.gid,) * 3
        and tuple(sorted(set(os.getgroups()))) == plan.groups
    )


# -- before anything is bound --------------------------------------------------------------------
def preflight(plan: LaunchPlan) -> None:
    """Refuse, before binding, what the drop could not do with the privileges we hold."""
    effective, permitted, _ = syscalls.capget()
    if os.getresuid() != (plan.uid,) * 3 and not _has(effective, CAP_SETUID):
        raise EnvironmentProblem(
            f"running the service as uid {plan.uid} needs root (CAP_SETUID); unroot runs as "
            f"uid {os.getuid()} without it"
        )
    groups_differ = tuple(sorted(set(os.getgroups()))) != plan.groups
    if (os.getresgid() != (plan.gid,) * 3 or groups_differ) and not _has(effective, CAP_SETGID):
        raise EnvironmentProblem(
            f"switching to gid {plan.gid} and groups {list(plan.groups)} needs root "
            f"(CAP_SETGID); unroot runs as uid {os.getuid()} without it"
        )
    keep = plan.keep_cap_mask
    if keep & ~permitted:
        raise EnvironmentProblem(
            f"cannot keep {_cap_names(keep & ~permitted)}: unroot itself does not hold it"
        )
    outside = [cap for cap in _bits(keep) if not _bounding_has(cap)]
    if outside:
        mask = sum(1 << cap for cap in outside)
        raise EnvironmentProblem(f"cannot keep {_cap_names(mask)}: not in the bounding set")
    if not _has(effective, CAP_SETPCAP) and not plan.no_new_privs:
        raise EnvironmentProblem(
            "--allow-new-privs: without CAP_SETPCAP unroot cannot cut down the bounding set, "
            "so only no_new_privs keeps setuid and file-capability binaries from regaining "
            "privileges; drop --allow-new-privs or start unroot as root"
        )
    if plan.nofile is not None:
        _check_nofile(plan.nofile, effective)


def _bounding_has(cap: int) -> bool:
    try:
        return syscalls.bounding_has(cap)
    except OSError:
        return False


def _check_nofile(limits: tuple[int, int], effective: int) -> None:
    soft, hard = limits
    text = f"{soft}:{hard}" if soft != hard else str(soft)
    try:
        with open(f"{PROCFS}/sys/fs/nr_open", "rb") as file:
            nr_open = int(file.read())
    except (OSError, ValueError):
        nr_open = None
    if nr_open is not None and hard > nr_open:
        raise UsageError(f"--nofile {text}: above the kernel's limit fs.nr_open={nr_open}")
    current_hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard > current_hard and not _has(effective, CAP_SYS_RESOURCE):
        raise EnvironmentProblem(
            f"--nofile {text}: raising the hard limit above {current_hard} needs "
            "CAP_SYS_RESOURCE, which unroot does not have"
        )


def default_path() -> str:
    """The search path execvp(3) uses when PATH is unset (confstr _CS_PATH)."""
    try:
        return os.confstr("CS_PATH") or "/bin:/usr/bin"
    except (ValueError, OSError):
        return "/bin:/usr/bin"


def which(name: str, search: str) -> str | None:
    """execvp(3)'s lookup, as our effective ids see it (faccessat(2) X_OK with AT_EACCESS)."""
    if "/" in name:
        return name if _is_executable(name) else None
    for directory in search.split(":"):
        candidate = os.path.join(directory or ".", name)
        if _is_executable(candidate):
            return candidate
    return None


def _is_executable(path: str) -> bool:
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return False
    return stat.S_ISREG(info.st_mode) and os.access(path, os.X_OK, effective_ids=True)


def resolve_command(plan: LaunchPlan, env: Mapping[str, str]) -> str:
    """Find the command in the service's PATH as the *target* user will (its ids and groups,
    no capabilities), so a command it cannot run is refused before anything is bound."""
    name = plan.argv[0]
    search = env.get("PATH") or default_path()
    found = which(name, search) if _same_identity(plan) else _which_as(plan, name, search)
    if found is not None:
        return found
    ours = None if _same_identity(plan) else which(name, search)
    if ours is not None:
        where = "it" if ours == name else ours
        raise UsageError(
            f"{name}: uid {plan.uid} cannot execute {where} (the file or a directory on the way "
            "is not open to it)"
        )
    if "/" in name:
        what = "not an executable file" if os.path.lexists(name) else "no such file"
        raise UsageError(f"{name}: {what}")
    raise UsageError(f"{name}: command not found (PATH={search})")


def _which_as(plan: LaunchPlan, name: str, search: str) -> str | None:
    """:func:`which` with our effective ids and groups switched to the target's for the
    lookup (the saved uid stays 0, so we switch back; a fork would cost more)."""
    groups, egid, euid = os.getgroups(), os.getegid(), os.geteuid()
    step = "setgroups"
    try:
        try:
            os.setgroups(list(plan.groups))
            step = "setegid"
            os.setegid(plan.gid)
            step = "seteuid"
            os.seteuid(plan.uid)  # clears the effective capabilities until we switch back
        except OSError as exc:
            raise EnvironmentProblem(
                f"cannot become uid {plan.uid}, gid {plan.gid}, groups {list(plan.groups)}: "
                f"{step}: {exc.strerror}"
            ) from None
        return which(name, search)
    finally:
        os.seteuid(euid)
        os.setegid(egid)
        os.setgroups(groups)


# -- the drop ------------------------------------------------------------------------------------
def drop_privileges(plan: LaunchPlan) -> None:
    """Steps 1-8 of the module doc; EnvironmentProblem if the kernel refuses or the result
    read back from /proc is not exactly the plan."""
    try:
        _raise_hard_nofile(plan)
        effective = syscalls.capget()[0]
        if tuple(sorted(set(os.getgroups()))) != plan.groups:
            os.setgroups(list(plan.groups))
        if os.getresgid() != (plan.gid,) * 3:
            os.setresgid(plan.gid, plan.gid, plan.gid)
        cut_bounding = _has(effective, CAP_SETPCAP)
        keep = plan.keep_cap_mask
        if cut_bounding:
            for cap in range(MASK_BITS):
                if _has(keep, cap):
                    continue
                try:
                    syscalls.bounding_drop(cap)
                except OSError as exc:
                    if exc.errno != errno.EINVAL:  # EINVAL: past the kernel's last capability
                        raise
                    break
        if keep:
            syscalls.set_keepcaps(True)
        if os.getresuid() != (plan.uid,) * 3:
            os.setresuid(plan.uid, plan.uid, plan.uid)
        if keep:
            syscalls.set_keepcaps(False)
        _leave_session_keyring()
        syscalls.capset(keep, keep, keep)
        try:
            syscalls.ambient_clear_all()
        except OSError:
            if keep:  # no ambient capabilities on this kernel (< 4.3): cannot keep any
                raise
        for cap in _bits(keep):
            syscalls.ambient_raise(cap)
        if plan.no_new_privs:
            syscalls.set_no_new_privs()
    except OSError as exc:
        raise EnvironmentProblem(f"dropping privileges failed: {exc.strerror or exc}") from None
    problems = check_status(plan, _read_own_status(), bounding_cut=cut_bounding)
    if problems:
        raise EnvironmentProblem("the privilege drop did not take: " + "; ".join(problems))


def _leave_session_keyring() -> None:
    """Join a new, empty session keyring as the service's user (keyctl(2)
    KEYCTL_JOIN_SESSION_KEYRING): the one inherited is root's, and possessing it lets the
    service search and read every key in it (cifscreds, eCryptfs, a Kerberos KEYRING: cache,
    ``keyctl add ... @s``). systemd does the same (KeyringMode=private). A kernel or seccomp
    profile without keyctl (ENOSYS, EPERM) leaves the service without it, too."""
    try:
        syscalls.join_session_keyring()
    except OSError as exc:
        if exc.errno not in (errno.ENOSYS, errno.EPERM):
            raise


def _raise_hard_nofile(plan: LaunchPlan) -> None:
    """Step 1: a --nofile hard limit above the current one, set while we may still raise it."""
    current_soft, current_hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if plan.nofile is not None and plan.nofile[1] > current_hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (current_soft, plan.nofile[1]))


def service_nofile(plan: LaunchPlan) -> tuple[int, int]:
    """The service's RLIMIT_NOFILE: ``--nofile``, or the soft limit raised to the hard one."""
    if plan.nofile is not None:
        return plan.nofile
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return hard, hard


def set_nofile(limits: tuple[int, int]) -> None:
    """The last step before execve: lowering a limit, or raising soft up to hard, needs no
    privilege, and the fds unroot opened on the way are already closed or close-on-exec."""
    if resource.getrlimit(resource.RLIMIT_NOFILE) != limits:
        resource.setrlimit(resource.RLIMIT_NOFILE, limits)


def settle(env: dict[str, str]) -> None:
    """Step 9, as the service's user: umask at least 022, a working directory it may use, PWD."""
    os.umask(os.umask(0o022) | 0o022)
    try:  # by its path: every directory above must be open to the user too, not only the last
        usable = os.access(os.getcwd(), os.X_OK)
    except OSError:  # the directory was removed
        usable = False
    if not usable:
        os.chdir("/")
    if "PWD" in env:
        env["PWD"] = os.getcwd()


def _read_own_status() -> str:
    path = f"{PROCFS}/thread-self/status"
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as file:
            return file.read()
    except OSError as exc:
        raise EnvironmentProblem(f"cannot verify the drop: {path}: {exc.strerror}") from None


def check_status(plan: LaunchPlan, status_text: str, *, bounding_cut: bool = True) -> list[str]:
    """What in a /proc/PID/status text differs from the plan's drop (empty: exactly right).

    A deliberately small reader of the lines the launch sets (proc(5)); facts/proc.py has the
    full parser, whose dataclasses would cost the exec path more than the rest of the launch.
    """
    fields: dict[str, str] = {}
    for line in status_text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key not in fields:
            fields[key] = value.strip()
    problems = []
    for key, want in (("Uid", plan.uid), ("Gid", plan.gid)):
        slots = fields.get(key, "").split()
        if slots != [str(want)] * 4:
            problems.append(f"{key} is {' '.join(slots) or 'missing'}, expected {want} x4")
    try:
        groups = tuple(sorted({int(g) for g in fields.get("Groups", "").split()}))
    except ValueError:
        groups = ()
        problems.append(f"Groups unreadable: {fields.get('Groups')!r}")
    if groups != plan.groups:
        problems.append(f"Groups are {list(groups)}, expected {list(plan.groups)}")
    keys = ["CapInh", "CapPrm", "CapEff", "CapAmb"] + (["CapBnd"] if bounding_cut else [])
    for key in keys:
        try:
            mask = int(fields[key], 16)
        except (KeyError, ValueError):
            if key == "CapAmb" and not plan.keep_cap_mask:
                continue  # kernels before 4.3 have no ambient set to check
            problems.append(f"{key} missing")
            continue
        if mask != plan.keep_cap_mask:
            problems.append(f"{key} is {mask:016x}, expected {plan.keep_cap_mask:016x}")
    if plan.no_new_privs and fields.get("NoNewPrivs") != "1":
        problems.append(f"NoNewPrivs is {fields.get('NoNewPrivs', 'missing')}, expected 1")
    return problems


# -- the hand-over -------------------------------------------------------------------------------
def prepare_listen_fds(
    socks: Sequence[BoundSocket], janitor: Janitor | None = None
) -> dict[str, str]:
    """Move the sockets to fds 3..3+N-1 (inheritable), close every other fd above 2 but the
    janitor's (close-on-exec, moved above the sockets), and return LISTEN_FDS / LISTEN_PID
    (this process) / LISTEN_FDNAMES for the exec.

    The socket objects are detached: after this, the fds belong to whoever execs next.
    """
    top = SD_LISTEN_FDS_START + len(socks)
    keep = janitor.move_above(top) if janitor is not None else None
    raw = [bound.sock.detach() for bound in socks]
    parked = []
    for fd in raw:  # first above every target, so no move overwrites a socket not yet moved
        parked.append(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, top))
        os.close(fd)
    for index, fd in enumerate(parked):
        os.dup2(fd, SD_LISTEN_FDS_START + index, inheritable=True)
        os.close(fd)
    close_from(top, () if keep is None else (keep,))
    for bound in socks:
        bound.directory = None  # closed above: the janitor has its own
    return listen_environment([bound.spec for bound in socks], os.getpid())


def close_from(low: int, keep: Iterable[int] = ()) -> None:
    """Close every fd from ``low`` up but those in ``keep``."""
    for fd in sorted(fd for fd in set(keep) if fd >= low):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, _FD_MAX)


def reset_inherited_signals() -> None:
    """Python ignores SIGPIPE and SIGXFSZ, and exec keeps "ignored": give the service the
    defaults, as a shell or systemd would. ``_signal`` is the C module: ``signal`` would import
    enum (milliseconds of launch latency)."""
    import _signal  # type: ignore[import-not-found]  # the C module has no stub

    for signum in (_signal.SIGPIPE, _signal.SIGXFSZ):
        _signal.signal(signum, _signal.SIG_DFL)


def exec_service(
    plan: LaunchPlan,
    socks: Sequence[BoundSocket],
    *,
    executable: str | None = None,
    env: Mapping[str, str] | None = None,
    janitor: Janitor | None = None,
) -> NoReturn:
    """Drop, verify, hand over the sockets and exec ``plan.argv``; never returns.

    ``env`` is the service's environment without LISTEN_* (default:
    ``plan.environment(os.environ)``); ``executable`` the resolved command (default: looked up
    in that PATH after the drop, as the service's user).
    """
    service_env = plan.environment(os.environ) if env is None else dict(env)
    drop_privileges(plan)
    settle(service_env)
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:  # None when unroot started with that fd closed
            stream.flush()
    service_env.update(prepare_listen_fds(socks, janitor))
    path = executable or which(plan.argv[0], service_env.get("PATH") or default_path())
    if path is None:
        raise UsageError(f"{plan.argv[0]}: command not found")
    reset_inherited_signals()
    try:
        set_nofile(service_nofile(plan))
        os.execve(path, plan.argv, service_env)  # noqa: S606 - exec without a shell is the point
    except OSError as exc:
        raise exec_error(plan, path, exc) from None


def exec_error(plan: LaunchPlan, path: str, exc: OSError) -> UnrootError:
    if exc.errno == errno.ENOENT:
        return UsageError(f"{path}: no such file (or its #! interpreter is missing)")
    if exc.errno == errno.ENOEXEC:
        return UsageError(f"{path}: not an executable format")
    if exc.errno == errno.EACCES:
        return EnvironmentProblem(f"{path}: uid {plan.uid} may not execute it (or its #! line)")
    return EnvironmentProblem(f"cannot execute {path}: {exc.strerror or exc}")
