"""The service's side of socket activation: sd_listen_fds(3) and sd_notify(3) in Python.

Works the same under ``unroot run``, systemd socket units and ``systemd-socket-activate``::

    from unroot.activation import listeners, notify_ready

    socks = listeners()          # {"web": [<socket fd=3 ...>], "unknown": [...]}
    ...serve on socks["web"][0]...
    notify_ready()               # READY=1 to NOTIFY_SOCKET; False when there is none

The protocol (sd_listen_fds(3)): fds 3..3+LISTEN_FDS-1 are for the process whose pid is
LISTEN_PID — any other process (a child that inherited the environment) gets nothing;
LISTEN_FDNAMES has one ``:``-separated name per fd, and without it every fd is ``unknown``.
Each fd's family, type and protocol are read from the fd (SO_DOMAIN, SO_TYPE, SO_PROTOCOL),
never assumed; each fd gets FD_CLOEXEC, and LISTEN_* are removed from ``os.environ`` so that
programs this one starts do not take the sockets for theirs.
"""

from __future__ import annotations

import errno
import os

from unroot.errors import UnrootError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket

SD_LISTEN_FDS_START = 3
LISTEN_VARS = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")


class ActivationError(UnrootError):
    """LISTEN_* or NOTIFY_SOCKET are malformed, or a passed fd is not open."""


def listen_fds(*, unset_environment: bool = True) -> list[tuple[str, int]]:
    """sd_listen_fds_with_names(3): ``[(name, fd), ...]`` passed to this process, with
    FD_CLOEXEC set on each; ``[]`` when none were passed or they are for another pid.
    ``unset_environment`` removes LISTEN_* from ``os.environ`` in every case, as systemd does.
    """
    try:
        pid_text = os.environ.get("LISTEN_PID")
        count_text = os.environ.get("LISTEN_FDS")
        names_text = os.environ.get("LISTEN_FDNAMES")
        if pid_text is None or count_text is None:
            return []
        pid = _number(pid_text, "LISTEN_PID")
        if pid != os.getpid():
            return []
        count = _number(count_text, "LISTEN_FDS")
        if count == 0:
            return []
        if names_text is None:
            names = ["unknown"] * count
        else:
            names = names_text.split(":")
            if len(names) != count:
                raise ActivationError(
                    f"LISTEN_FDNAMES has {len(names)} names for LISTEN_FDS={count} fds"
                )
        fds = list(range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + count))
        for fd in fds:
            try:
                os.set_inheritable(fd, False)
            except OSError as exc:
                raise ActivationError(f"LISTEN_FDS={count}, but fd {fd}: {exc.strerror}") from None
        return list(zip(names, fds, strict=True))
    finally:
        if unset_environment:
            for key in LISTEN_VARS:
                os.environ.pop(key, None)


def listeners(*, unset_environment: bool = True) -> dict[str, list[socket.socket]]:
    """The passed sockets by name (``unknown`` for unnamed ones), as :class:`socket.socket`
    objects whose family, type and protocol come from the fd itself. Passed fds that are not
    sockets (a FIFO, a file) are left out and stay open, with FD_CLOEXEC set.
    """
    import socket  # here: unroot run imports this module for SD_LISTEN_FDS_START only

    result: dict[str, list[socket.socket]] = {}
    for name, fd in listen_fds(unset_environment=unset_environment):
        try:
            # With fileno= and no family, CPython asks the fd: SO_DOMAIN, SO_TYPE, SO_PROTOCOL.
            sock = socket.socket(fileno=fd)
        except OSError as exc:
            if exc.errno == errno.ENOTSOCK:
                continue
            raise ActivationError(f"fd {fd} ({name}): {exc.strerror}") from None
        result.setdefault(name, []).append(sock)
    return result


def notify(state: str, *, unset_environment: bool = False) -> bool:
    """sd_notify(3): send ``state`` (``READY=1``, ``RELOADING=1``, ``STOPPING=1``,
    ``STATUS=...``, newline-separated) to NOTIFY_SOCKET, a unix datagram socket given as a path or
    as ``@name`` (abstract). False, and nothing sent, when NOTIFY_SOCKET is unset or empty."""
    address = os.environ.get("NOTIFY_SOCKET")
    if unset_environment:
        os.environ.pop("NOTIFY_SOCKET", None)
    if not address:
        return False
    if address.startswith("@"):
        target = "\0" + address[1:]
    elif address.startswith("/"):
        target = address
    else:
        raise ActivationError(f"NOTIFY_SOCKET={address!r}: not a socket path or @abstract name")
    if not state:
        raise ActivationError("sd_notify: empty state")
    import socket

    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(state.encode("utf-8"), target)
    except OSError as exc:
        raise ActivationError(f"cannot notify {address}: {exc.strerror or exc}") from None
    return True


def notify_ready() -> bool:
    """Tell the supervisor (systemd, ``unroot run --supervise``) the service is ready."""
    return notify("READY=1")


def notify_stopping() -> bool:
    return notify("STOPPING=1")


def _number(text: str, key: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        raise ActivationError(f"{key}={text!r}: not a number")
    value = int(text)
    if key == "LISTEN_PID" and value == 0:
        raise ActivationError("LISTEN_PID=0: not a pid")
    if key == "LISTEN_FDS" and value > (1 << 31) - 1 - SD_LISTEN_FDS_START:
        raise ActivationError(f"LISTEN_FDS={text}: too many fds")
    return value
