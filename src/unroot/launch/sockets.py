"""Bind every ``--listen`` socket while still privileged; explain a refusal with the model.

* TCP: SO_REUSEADDR (a restarted service rebinds at once despite TIME_WAIT), then listen()
  with the spec's backlog or SOMAXCONN (the kernel caps it at net.core.somaxconn).
* IPv6 sockets always set IPV6_V6ONLY explicitly, whatever net.ipv6.bindv6only says: 1 for an
  IPv6 address unless ``v6only=0``; 0 for "every address" (``:80``), which is one dual-stack
  ``[::]`` socket — or ``0.0.0.0`` when the kernel has no IPv6 (EAFNOSUPPORT), as Go does.
* Unix socket files: a stale socket file (nothing accepts on it) is removed first, anything
  else at the path is an error; the file is created with its final mode (the umask is set
  around bind(), so there is no window with wider permissions), then lchown()ed to the owner.
* EACCES on a port: the bind rule of :mod:`unroot.model.bind`, asked with this netns's
  ``ip_unprivileged_port_start`` and our own effective set, says why and what the smallest fix
  is. EADDRINUSE and other refusals become one line too. On any failure every socket bound so
  far is closed and every socket file created so far removed.
"""

from __future__ import annotations

import _socket  # the C module: socket.py imports enum and selectors (launch latency)
import errno
import os
import stat

from unroot.errors import EnvironmentProblem, UnrootError, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

    from unroot.launch.plan import LaunchPlan, ListenSpec

PROCFS = "/proc"
UNIX_PATH_MAX = 107  # sizeof(sockaddr_un.sun_path) less the terminating NUL
_NS_GET_USERNS = 0xB701  # include/uapi/linux/nsfs.h: _IO(0xb7, 0x1)


class BoundSocket:
    """A bound (and, for streams, listening) socket and the spec it came from. ``created`` is the
    socket file this launch created, as (path, st_dev, st_ino), and ``directory`` an ``O_PATH``
    fd on the directory it was created in (looked up safely: :func:`_open_directory`), so that
    cleanup removes exactly that file there, whatever the path names by then."""

    __slots__ = ("created", "directory", "sock", "spec")

    def __init__(
        self,
        sock: _socket.socket,
        spec: ListenSpec,
        created: tuple[str, int, int] | None = None,
        directory: int | None = None,
    ) -> None:
        self.sock = sock
        self.spec = spec
        self.created = created
        self.directory = directory

    def __repr__(self) -> str:
        return f"BoundSocket({self.spec.address!r}, fd={self.sock.fileno()})"


def bind_all(plan: LaunchPlan) -> list[BoundSocket]:
    """Bind every socket of ``plan`` in order (fd 3 + i will be ``plan.listens[i]``)."""
    ensure_std_fds()
    bound: list[BoundSocket] = []
    try:
        for spec in plan.listens:
            bound.append(bind_one(spec))
    except BaseException:
        close_all(bound)
        raise
    return bound


def close_all(socks: Iterable[BoundSocket], *, unlink: bool = True) -> None:
    """Close the sockets and remove the socket files this launch created (if still ours)."""
    for bound in socks:
        bound.sock.close()
        if unlink and bound.created is not None and bound.directory is not None:
            path, dev, ino = bound.created
            remove_if_same(bound.directory, os.path.basename(path), dev, ino)
        if bound.directory is not None:
            try:  # noqa: SIM105 - contextlib is not imported on the exec path
                os.close(bound.directory)
            except OSError:
                pass
            bound.directory = None


def remove_if_same(directory: int, name: str, dev: int, ino: int) -> None:
    """Unlink ``name`` in the directory fd ``directory`` if it is still the file (dev, ino):
    looked up without following a symlink, in the directory opened when the file was made."""
    try:
        info = os.stat(name, dir_fd=directory, follow_symlinks=False)
        if (info.st_dev, info.st_ino) == (dev, ino):
            os.unlink(name, dir_fd=directory)
    except OSError:
        pass


def ensure_std_fds() -> None:
    """Open /dev/null on any of fds 0, 1, 2 that is closed, so no socket lands there."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)  # the lowest free fd: this one
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
            os.set_inheritable(fd, True)  # os.open() makes it close-on-exec (PEP 446)


def bind_one(spec: ListenSpec) -> BoundSocket:
    if spec.transport == "unix":
        return _bind_unix(spec)
    return _bind_inet(spec)


# -- tcp and udp ---------------------------------------------------------------------------------
def _bind_inet(spec: ListenSpec) -> BoundSocket:
    kind = _socket.SOCK_STREAM if spec.stream else _socket.SOCK_DGRAM
    family = spec.family
    if family == "any":
        try:
            sock = _socket.socket(_socket.AF_INET6, kind)
            v6only: bool | None = False
        except OSError as exc:
            if exc.errno != errno.EAFNOSUPPORT or spec.v6only is False:
                raise _bind_error(spec, exc, "inet6") from None
            sock, v6only = _socket.socket(_socket.AF_INET, kind), None
    else:
        try:
            sock = _socket.socket(_socket.AF_INET6 if family == "inet6" else _socket.AF_INET, kind)
        except OSError as exc:
            raise _bind_error(spec, exc, family) from None
        v6only = (spec.v6only is not False) if family == "inet6" else None
    try:
        if v6only is not None:
            sock.setsockopt(_socket.IPPROTO_IPV6, _socket.IPV6_V6ONLY, int(v6only))
        if spec.stream:
            sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
        sock.bind(_sockaddr(spec, sock.family, kind))
        if spec.stream:
            sock.listen(_socket.SOMAXCONN if spec.backlog is None else spec.backlog)
    except OSError as exc:
        sock.close()
        fam = "inet6" if sock.family == _socket.AF_INET6 else "inet"
        raise _bind_error(spec, exc, fam) from None
    return BoundSocket(sock, spec)


def _sockaddr(
    spec: ListenSpec, family: int, kind: int
) -> tuple[str, int] | tuple[str, int, int, int]:
    if spec.host is None:
        return ("::" if family == _socket.AF_INET6 else "0.0.0.0", spec.port)  # noqa: S104
    if family == _socket.AF_INET6 and "%" in spec.host:  # the scope id comes from getaddrinfo
        flags = _socket.AI_NUMERICHOST | _socket.AI_PASSIVE
        info = _socket.getaddrinfo(spec.host, spec.port, family, kind, 0, flags)
        return info[0][4]  # type: ignore[return-value]
    return (spec.host, spec.port)


def _bind_error(spec: ListenSpec, exc: OSError, family: str) -> UnrootError:
    code = exc.errno
    if code == errno.EACCES:
        return EnvironmentProblem(explain_bind_denied(spec, family))
    if code == errno.EADDRINUSE:
        return UsageError(f"{spec.address} is already in use")
    if code == errno.EADDRNOTAVAIL:
        return UsageError(f"{spec.address}: no such local address on this host")
    if code == errno.EAFNOSUPPORT:
        return EnvironmentProblem(f"{spec.address}: this kernel has no IPv6")
    if code in (errno.ENODEV, errno.EINVAL) and spec.host and "%" in spec.host:
        return UsageError(f"{spec.address}: no such interface for the IPv6 scope")
    if isinstance(exc, _socket.gaierror):
        return UsageError(f"{spec.address}: {exc.strerror}")
    return EnvironmentProblem(f"cannot bind {spec.address}: {exc.strerror or exc}")


def explain_bind_denied(spec: ListenSpec, family: str) -> str:
    """One line: why bind() said EACCES, by the model, and the smallest fix."""
    from unroot import syscalls  # lazily: only on this error path
    from unroot.model.bind import SYSCTL, bind_verdict
    from unroot.model.caps import CapSet

    start = _unprivileged_port_start()
    effective = CapSet(syscalls.capget()[0])
    verdict = bind_verdict(
        spec.port,
        proto=spec.transport,
        family="inet6" if family == "inet6" else "inet",
        effective=effective,
        unprivileged_port_start=start if start is not None else 1024,
        netns_owned_by_caller_userns=_netns_is_ours(),
    )
    who = f"uid {os.geteuid()}"
    if verdict.allowed:
        return (
            f"cannot bind {spec.address} as {who}: EACCES, although the kernel's bind rule allows "
            "it here (port below "
            f"{SYSCTL}={start}, capabilities {effective}) — an LSM (SELinux, AppArmor) or a "
            "cgroup BPF program refused it"
        )
    reasons = "; ".join(reason.text for reason in verdict.reasons)
    sysctl = next(
        (fix.command for fix in verdict.fixes if (fix.command or "").startswith("sysctl ")), None
    )
    fix = "start unroot run as root (it binds first, then drops to --user)"
    if sysctl:
        opened = f"{spec.port}-{start - 1}" if start is not None else f"from {spec.port} up"
        fix += f", or `{sysctl}` (opens ports {opened} to every process in this netns)"
    return f"cannot bind {spec.address} as {who}: {reasons}; fix: {fix}"


def _unprivileged_port_start() -> int | None:
    try:
        with open(f"{PROCFS}/sys/net/ipv4/ip_unprivileged_port_start", "rb") as file:
            return int(file.read())
    except (OSError, ValueError):
        return None


def _netns_is_ours() -> bool:
    """Does our own user namespace own our network namespace (ioctl NS_GET_USERNS)?"""
    import fcntl  # lazily: only on the EACCES path

    try:
        net = os.open(f"{PROCFS}/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            owner = fcntl.ioctl(net, _NS_GET_USERNS)
        finally:
            os.close(net)
        try:
            owner_ino = os.fstat(owner).st_ino
        finally:
            os.close(owner)
        return owner_ino == os.stat(f"{PROCFS}/self/ns/user").st_ino
    except OSError:
        return True  # cannot tell (old kernel, no procfs): assume the usual case


# -- unix ----------------------------------------------------------------------------------------
def _bind_unix(spec: ListenSpec) -> BoundSocket:
    path = spec.path
    assert path is not None
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    created: tuple[str, int, int] | None = None
    directory: int | None = None
    try:
        if spec.abstract:
            sock.bind(b"\0" + path[1:].encode("utf-8", "surrogateescape"))
            sock.listen(_socket.SOMAXCONN if spec.backlog is None else spec.backlog)
        else:
            directory, name = _open_directory(spec, path)
            _remove_stale_socket(spec, directory, name)
            mode = spec.mode if spec.mode is not None else 0o666
            old_umask = os.umask(0o777 & ~mode)
            try:
                sock.bind(path)  # by its name, so that getsockname() tells the service that
            finally:
                os.umask(old_umask)
            sock.listen(_socket.SOMAXCONN if spec.backlog is None else spec.backlog)
            pinned = _pin_own_socket(sock, spec, directory, name)
            try:
                info = os.fstat(pinned)
                created = (path, info.st_dev, info.st_ino)
                via = f"{PROCFS}/self/fd/{pinned}"  # this very inode, whatever the path is now
                if stat.S_IMODE(info.st_mode) != mode:  # a default ACL on the directory wins
                    os.chmod(via, mode)
                if spec.owner_uid is not None or spec.owner_gid is not None:
                    uid = -1 if spec.owner_uid is None else spec.owner_uid
                    gid = -1 if spec.owner_gid is None else spec.owner_gid
                    os.chown(via, uid, gid)
            finally:
                os.close(pinned)
    except BaseException as exc:
        close_all([BoundSocket(sock, spec, created, directory)])
        if isinstance(exc, OSError):
            raise _unix_error(spec, exc) from None
        raise
    return BoundSocket(sock, spec, created, directory)


#: Symlinks followed before a refusal (the kernel's MAXSYMLINKS).
MAXSYMLINKS = 40


def _open_directory(spec: ListenSpec, path: str) -> tuple[int, str]:
    """An ``O_PATH`` fd on the socket's directory, and the socket's name in it.

    unroot works there as root, so the lookup must not let anyone else choose where: the path is
    walked component by component from ``/``, each directory opened ``O_NOFOLLOW`` (a directory
    swapped for a symlink meanwhile fails the open), and a symlink is followed only when nobody
    but root could have put it there — owned by root, in a root-owned directory that no one
    else may write or that is sticky (``/var/run`` -> ``/run``). A symlink the service's user
    planted in its own directory (``/srv/app/tmp/sockets`` -> a root-only directory) refuses the
    launch instead of making root unlink and bind there.
    """
    directory, name = os.path.split(path)
    if name in ("", ".", ".."):
        raise UsageError(f"{spec.address}: the path must end in the socket's file name")
    queue = [part for part in directory.split("/") if part]
    fd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    hops = 0
    try:
        while queue:
            part = queue.pop(0)
            if part == ".":
                continue
            info = os.stat(part, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISLNK(info.st_mode):
                hops += 1
                if not _trusted_link(fd, info) or hops > MAXSYMLINKS:
                    raise EnvironmentProblem(
                        f"{spec.address}: {part} on the way to the socket is a symlink that "
                        f"uid {info.st_uid} or a writer of its directory may change; unroot "
                        "does not follow it as root (give the real directory)"
                    )
                target = os.readlink(part, dir_fd=fd)
                queue = [piece for piece in target.split("/") if piece] + queue
                if target.startswith("/"):
                    os.close(fd)
                    fd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
                continue
            flags = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
            step = os.open(part, flags, dir_fd=fd)
            os.close(fd)
            fd = step
        return fd, name
    except BaseException:
        os.close(fd)
        raise


def _trusted_link(directory: int, link: os.stat_result) -> bool:
    """Whether only root could have made this symlink what it is: root's, in a root-owned
    directory that others may not write (or a sticky one, where they may not replace it)."""
    where = os.fstat(directory)
    if link.st_uid != 0 or where.st_uid != 0:
        return False
    return not where.st_mode & 0o022 or bool(where.st_mode & stat.S_ISVTX)


def _pin_own_socket(sock: _socket.socket, spec: ListenSpec, directory: int, name: str) -> int:
    """An ``O_PATH`` fd on the socket file ``sock`` was just bound to, proven to be that file.

    Between bind() and the chmod/chown that follow, whoever may write the socket's directory
    (the service's own runtime directory, often) can rename something else over the name — a
    symlink to /etc/shadow, another socket — and bind() itself resolved the path anew. So the
    name is opened in the directory :func:`_open_directory` pinned, without following a
    symlink, and the file found must be a socket that reaches *our* listener: a probe connects
    through the pinned fd, and our accept() must return a connection whose SO_PEERCRED pid is
    ours. Clients of the real service that connected meanwhile are accepted and closed; the
    probe never blocks (a full backlog is drained and the connect tried again). chmod and chown
    then go through ``/proc/self/fd/N``: the pinned inode, not the path.
    """
    import errno as errnos  # lazily: only for socket files
    import struct

    try:
        pinned = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=directory)
    except OSError as exc:
        if exc.errno not in (errnos.ENOENT, errnos.ELOOP):
            raise
        pinned = -1
    ours = False
    if pinned >= 0 and stat.S_ISSOCK(os.fstat(pinned).st_mode):
        sock.setblocking(False)
        try:
            for _ in range(64):
                probe = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
                probe.setblocking(False)
                try:
                    connected = probe.connect_ex(f"{PROCFS}/self/fd/{pinned}") == 0
                    while True:  # what is queued, oldest first: clients, then (perhaps) us
                        try:
                            fd, _ = sock._accept()  # type: ignore[attr-defined]  # socket.py's accept() wraps it
                        except BlockingIOError:
                            break
                        conn = _socket.socket(fileno=fd)
                        try:
                            creds = conn.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)
                        finally:
                            conn.close()
                        if connected and struct.unpack("3i", creds)[0] == os.getpid():
                            ours = True
                            break
                finally:
                    probe.close()
                if ours or connected:
                    break  # connected but not to us: someone else's socket is at the name
        finally:
            sock.setblocking(True)
    if not ours:
        if pinned >= 0:
            os.close(pinned)
        raise EnvironmentProblem(
            f"{spec.address}: the socket file was replaced while unroot set it up (someone else "
            f"may write {os.path.dirname(spec.path or '') or '/'}); refusing"
        )
    return pinned


def _remove_stale_socket(spec: ListenSpec, directory: int, name: str) -> None:
    """Remove a socket file left at the name by an earlier run (nothing accepts on it);
    anything else there is refused. Everything relative to the pinned directory, no symlink
    followed, and the file unlinked only if it is still the socket found."""
    try:
        info = os.stat(name, dir_fd=directory, follow_symlinks=False)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(info.st_mode):
        raise UsageError(f"{spec.address}: {spec.path} exists and is not a socket; not removing it")
    where = f"{PROCFS}/self/fd/{directory}/{name}"
    if len(where.encode("utf-8", "surrogateescape")) > UNIX_PATH_MAX:
        where = spec.path or ""  # a name too long to prefix: the path itself
    probe = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    probe.setblocking(False)
    try:
        result = probe.connect_ex(where)
    finally:
        probe.close()
    if result in (errno.ECONNREFUSED, errno.ENOENT):
        remove_if_same(directory, name, info.st_dev, info.st_ino)
        return
    if result in (0, errno.EAGAIN, errno.EPROTOTYPE, errno.EINPROGRESS):
        raise UsageError(f"{spec.address} is already in use")
    raise EnvironmentProblem(
        f"{spec.address}: {spec.path} exists and cannot be probed ({os.strerror(result)})"
    )


def _unix_error(spec: ListenSpec, exc: OSError) -> UnrootError:
    if exc.errno == errno.EADDRINUSE:
        return UsageError(f"{spec.address} is already in use")
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        where = os.path.dirname(spec.path or "") or "/"
        return UsageError(f"{spec.address}: no such directory {where}")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return EnvironmentProblem(f"{spec.address}: {exc.strerror}")
    return EnvironmentProblem(f"cannot bind {spec.address}: {exc.strerror or exc}")
