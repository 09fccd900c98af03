"""Adapters that turn the live system into model facts.

The procfs root is one setting (:data:`PROCFS_PATH`; every reader takes ``procfs=`` to read a
captured tree instead, like psutil's ``PROCFS_PATH``), and ``OSError`` becomes one of unroot's
errors here, once: :func:`cannot` for what the environment refuses, :func:`path_error` for a
path named by the user.
"""

from __future__ import annotations

import errno

from unroot.errors import EnvironmentProblem, UnrootError, UsageError

PROCFS_PATH = "/proc"


#: The errors that say a process went away (or hid) while /proc was read: not a failure.
PROCESS_GONE = frozenset({errno.ENOENT, errno.ESRCH, errno.EACCES, errno.EPERM, errno.ENOTDIR})


def cannot(err: OSError, what: str, name: str = "", eacces_hint: str = "") -> EnvironmentProblem:
    """``cannot WHAT NAME: strerror (hint)``: an environment problem (exit 3); ``eacces_hint``
    is added when permission was denied."""
    hint = f" ({eacces_hint})" if eacces_hint and err.errno == errno.EACCES else ""
    return EnvironmentProblem(
        f"cannot {what}{f' {name}' if name else ''}: {err.strerror or err}{hint}"
    )


def path_error(err: OSError, path: str) -> UnrootError:
    """A path the user named: not there is bad input (exit 2), the rest the environment (3)."""
    reason = err.strerror or str(err)
    if err.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.ENAMETOOLONG):
        return UsageError(f"{path}: {reason}")
    if err.errno == errno.EOVERFLOW:  # v3 caps whose rootid has no id in our user namespace
        reason = "file capabilities belong to another user namespace (EOVERFLOW)"
    return EnvironmentProblem(f"{path}: {reason}")
