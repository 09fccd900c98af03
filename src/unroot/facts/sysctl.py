"""Network sysctls (``ip_unprivileged_port_start``) of the host and of a process's netns.

``/proc/sys/net`` shows the network namespace of the *reader* (the kernel looks the table up in
``current->nsproxy->net_ns`` when the file is opened; ``/proc/PID/root/proc/sys`` does not
help, and ``/proc/PID/net`` has no ``sys``).  To read another namespace's value something must
enter it: here a child, ``nsenter --net=/proc/PID/ns/net cat FILE``, because

* Python 3.11 has no ``os.setns`` (3.12 added it), and ``facts/`` stays free of ctypes (the
  syscalls live in ``unroot.syscalls``, which ``facts`` may not import);
* entering in our own process would move the calling thread into the container's namespace,
  a state no other reader should ever observe; a child leaves nothing behind;
* nsenter (util-linux) and cat (coreutils) are Essential packages on Debian.

When the process shares our namespace (same ``ns/net`` inode) the file is read directly.
Entering needs CAP_SYS_ADMIN (setns(2)); without it the answer is an EnvironmentProblem.
"""

from __future__ import annotations

import errno
import os
import subprocess
from dataclasses import dataclass

from unroot.errors import EnvironmentProblem, ParseError, UsageError
from unroot.facts import PROCFS_PATH, cannot

UNPRIVILEGED_PORT_START = "net/ipv4/ip_unprivileged_port_start"
NSENTER = "nsenter"
_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class NetnsValue:
    """A sysctl's value in the network namespace ``netns`` (``net:[INODE]``) of ``pid``."""

    pid: int | str
    netns: str
    name: str
    value: str


def parse_port_start(text: str) -> int:
    """The text of ``ip_unprivileged_port_start`` (0..65535 by the kernel's bounds)."""
    value = text.strip()
    if not value.isdigit() or int(value) > 65535:
        raise ParseError(f"ip_unprivileged_port_start: expected a port, not {text!r}")
    return int(value)


def read_sysctl(name: str, procfs: str = PROCFS_PATH) -> str:
    """``{procfs}/sys/{name}`` as the reader's namespaces see it, stripped."""
    path = os.path.join(procfs, "sys", name)
    try:
        with open(path, encoding="ascii", errors="replace") as file:
            return file.read().strip()
    except FileNotFoundError:
        raise UsageError(f"no such sysctl: {name.replace('/', '.')}") from None
    except OSError as exc:
        raise cannot(exc, "read", path) from None


def netns_of(pid: int | str, procfs: str = PROCFS_PATH) -> str:
    """``net:[INODE]``, the link ``/proc/PID/ns/net`` reads."""
    path = os.path.join(procfs, str(pid), "ns", "net")
    try:
        return os.readlink(path)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ESRCH):
            raise UsageError(f"no such process: {pid}") from None
        raise cannot(exc, "read", path, "reading another user's namespaces needs root") from None


def read_netns_sysctl(
    pid: int | str, name: str, procfs: str = PROCFS_PATH, nsenter: str = NSENTER
) -> NetnsValue:
    """``name`` as seen inside the network namespace of ``pid``."""
    netns = netns_of(pid, procfs)
    if netns == netns_of("self", procfs):
        return NetnsValue(pid, netns, name, read_sysctl(name, procfs))
    argv = [nsenter, f"--net={os.path.join(procfs, str(pid), 'ns', 'net')}", "--"]
    argv += ["cat", os.path.join(procfs, "sys", name)]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=_TIMEOUT, check=False)
    except OSError as exc:
        raise cannot(exc, "run", nsenter) from None
    except subprocess.TimeoutExpired:
        raise EnvironmentProblem(f"{nsenter} did not answer in {_TIMEOUT:g}s") from None
    if done.returncode != 0:
        why = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"
        raise EnvironmentProblem(f"cannot read {name.replace('/', '.')} in {netns}: {why}")
    return NetnsValue(pid, netns, name, done.stdout.strip())


def unprivileged_port_start(pid: int | str = "self", procfs: str = PROCFS_PATH) -> int:
    """``net.ipv4.ip_unprivileged_port_start`` in the network namespace of ``pid`` (the
    host's, i.e. ours, by default)."""
    return parse_port_start(read_netns_sysctl(pid, UNPRIVILEGED_PORT_START, procfs).value)
