"""Thin ctypes wrappers for the privilege syscalls Python's ``os`` module lacks.

capget(2)/capset(2) with _LINUX_CAPABILITY_VERSION_3, and the prctl(2) operations for the
bounding set, ambient set, securebits and no_new_privs.  Failures raise ``OSError`` with the
kernel's errno; callers at the edge translate it.  Imports only ctypes: the launcher's exec path
uses this module.
"""

from __future__ import annotations

import ctypes
import errno
import os

_LINUX_CAPABILITY_VERSION_3 = 0x20080522

PR_SET_KEEPCAPS = 8
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_GET_SECUREBITS = 27
PR_SET_SECUREBITS = 28
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_IS_SET = 1
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_LOWER = 3
PR_CAP_AMBIENT_CLEAR_ALL = 4


class _CapHeader(ctypes.Structure):
    _fields_ = (("version", ctypes.c_uint32), ("pid", ctypes.c_int))


class _CapData(ctypes.Structure):
    _fields_ = (
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    )


_libc: ctypes.CDLL | None = None


def _c() -> ctypes.CDLL:
    global _libc  # noqa: PLW0603 - loaded once, on first use
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def _check(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    fn = _c().prctl
    fn.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong)
    fn.restype = ctypes.c_int
    return _check(fn(option, arg2, arg3, arg4, arg5), f"prctl({option})")


def capget(pid: int = 0) -> tuple[int, int, int]:
    """(effective, permitted, inheritable) masks of ``pid`` (0 = the calling thread)."""
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, pid)
    data = (_CapData * 2)()
    _check(_c().capget(ctypes.byref(header), data), "capget")
    return (
        data[0].effective | data[1].effective << 32,
        data[0].permitted | data[1].permitted << 32,
        data[0].inheritable | data[1].inheritable << 32,
    )


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """Set the calling thread's three sets (the kernel enforces capset(2)'s rules)."""
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for word in range(2):
        shift = 32 * word
        data[word].effective = (effective >> shift) & 0xFFFFFFFF
        data[word].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[word].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    _check(_c().capset(ctypes.byref(header), data), "capset")


def bounding_drop(cap: int) -> None:
    prctl(PR_CAPBSET_DROP, cap)


def bounding_has(cap: int) -> bool:
    return prctl(PR_CAPBSET_READ, cap) == 1


def ambient_raise(cap: int) -> None:
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap)


def ambient_clear_all() -> None:
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)


def get_securebits() -> int:
    return prctl(PR_GET_SECUREBITS)


def set_securebits(bits: int) -> None:
    prctl(PR_SET_SECUREBITS, bits)


def set_keepcaps(keep: bool) -> None:
    prctl(PR_SET_KEEPCAPS, int(keep))


def set_no_new_privs() -> None:
    prctl(PR_SET_NO_NEW_PRIVS, 1)


def get_no_new_privs() -> bool:
    return prctl(PR_GET_NO_NEW_PRIVS) == 1


#: keyctl(2)'s syscall number (glibc has no wrapper), per architecture.
_SYS_KEYCTL = {"x86_64": 250, "aarch64": 219, "i686": 288, "armv7l": 311, "ppc64le": 271}
KEYCTL_JOIN_SESSION_KEYRING = 1


def join_session_keyring() -> int:
    """keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL): a new anonymous session keyring."""
    number = _SYS_KEYCTL.get(os.uname().machine)
    if number is None:
        raise OSError(errno.ENOSYS, "keyctl: unknown syscall number on this architecture")
    fn = _c().syscall
    fn.restype = ctypes.c_long
    return _check(
        fn(ctypes.c_long(number), ctypes.c_long(KEYCTL_JOIN_SESSION_KEYRING), None), "keyctl"
    )
