"""Keep the service away from the terminal unroot was started from.

A process that holds a terminal can act on whoever else uses it. As the terminal's *controlling*
process (same session) it can push keystrokes into the terminal's input with ``TIOCSTI`` (root's
shell runs them when it reads its next line: CVE-2005-4890, CVE-2016-2779, CVE-2017-5226),
paste with ``TIOCLINUX``, or take the foreground with ``TIOCSPGRP``; ``/dev/tty`` opens the
controlling terminal whatever fds 0-2 are. With *any* fd on the terminal, even outside the session,
it can read what is typed there (a terminal opened read-write is readable on fd 1 too) and change
its settings. ``tiocsti()`` and ``tioclinux()`` in drivers/tty refuse a terminal that is not the
caller's controlling one unless the caller has CAP_SYS_ADMIN, which the service never has.

So, decided from what unroot itself was given (:func:`isolation`):

``none``
    No controlling terminal and no terminal on fds 0-2 (systemd, Docker without ``-t``, a pipe):
    the service is exec'd as before.
``detach``
    A controlling terminal, but fds 0-2 are not terminals (``unroot run ... </dev/null >log &``
    from root's shell): ``TIOCNOTTY`` drops the controlling terminal for this process only (it is
    not the session leader), then the exec. The service stays in the job's process group, so
    Ctrl-C and the shell's job control still reach it, but ``/dev/tty`` fails with ENXIO and
    every terminal ioctl that needs a controlling terminal is refused.
``relay``
    A terminal on fds 0-2 (or a session leader's controlling terminal, where ``TIOCNOTTY`` would
    hang the session up). The service runs in a session of its own (``setsid``) with no
    controlling terminal; a terminal on stdin becomes ``/dev/null`` (a network service reads no
    keyboard; a key passphrase belongs in a file), and a terminal on stdout/stderr becomes the
    slave of a fresh pseudo-terminal, so the service still sees a terminal (colours, line
    buffering) while unroot — dropped to the service's user, non-dumpable — copies its output to
    the real one. The relay stays in the foreground job: Ctrl-C, Ctrl-\\ and a hang-up reach it
    and are forwarded, as sudo's ``use_pty`` and ``su --pty`` do.
"""

from __future__ import annotations

import os

from unroot.errors import EnvironmentProblem

TIOCNOTTY = 0x5422  # include/uapi/asm-generic/ioctls.h
PENDING_MAX = 1 << 16  # output held for the real terminal before the pty is left to fill up
CHUNK = 4096  # bytes written to the real terminal at a time (it said it has room)
STDIO = (0, 1, 2)


def terminal_fds() -> tuple[int, ...]:
    """Which of fds 0, 1, 2 are terminals."""
    return tuple(fd for fd in STDIO if os.isatty(fd))


def _controlling_terminal() -> int | None:
    """An fd on our controlling terminal (``/dev/tty``), or None when we have none."""
    try:
        return os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:  # ENXIO: no controlling terminal; or no /dev/tty at all
        return None


def isolation() -> str:
    """``none``, ``detach`` or ``relay`` (see the module doc) for this process."""
    if terminal_fds():
        return "relay"
    fd = _controlling_terminal()
    if fd is None:
        return "none"
    os.close(fd)
    return "relay" if os.getsid(0) == os.getpid() else "detach"


def detach() -> None:
    """Give up our controlling terminal (``TIOCNOTTY``; we are not the session leader, so the
    session keeps it and nothing is hung up). Nothing when there is none."""
    fd = _controlling_terminal()
    if fd is None:
        return
    import fcntl

    try:
        fcntl.ioctl(fd, TIOCNOTTY)
    except OSError:
        pass  # not our controlling terminal after all (a race with a hang-up): nothing to drop
    finally:
        os.close(fd)


class Relay:
    """The service's stdio in ``relay`` mode: ``/dev/null`` for a terminal on stdin, one fresh
    pseudo-terminal per distinct terminal among stdout/stderr.

    ``stdio`` maps a service fd (0, 1, 2) to the fd that replaces it (dup2'ed after the fork),
    ``copies`` is (pty master, the real terminal's fd) for each pseudo-terminal.
    """

    def __init__(self) -> None:
        self.stdio: dict[int, int] = {}
        self.copies: list[tuple[int, int]] = []
        self._owned: list[int] = []
        self._pending: dict[int, bytes] = {}  # pty master -> output not yet on the terminal
        self._done: set[int] = set()  # masters that will give no more output
        try:
            self._open()
        except OSError as exc:
            self.close()
            raise EnvironmentProblem(
                f"cannot set up the terminal relay: {exc.strerror or exc}"
            ) from None

    def _open(self) -> None:
        import fcntl
        import termios

        ttys = terminal_fds()
        if 0 in ttys:
            null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            self._owned.append(null)
            self.stdio[0] = null
        by_device: dict[int, int] = {}
        for fd in (1, 2):
            if fd not in ttys:
                continue
            device = os.fstat(fd).st_rdev
            if device not in by_device:
                try:
                    master, slave = os.openpty()
                except OSError:  # no /dev/ptmx (a container without devpts): a pipe carries it
                    master, slave = os.pipe()
                for end in (master, slave):
                    os.set_inheritable(end, False)
                self._owned += [master, slave]
                try:
                    mode = termios.tcgetattr(fd)
                    mode[1] &= ~termios.OPOST  # the real terminal post-processes, once
                    termios.tcsetattr(slave, termios.TCSANOW, mode)
                    fcntl.ioctl(
                        slave, termios.TIOCSWINSZ, fcntl.ioctl(fd, termios.TIOCGWINSZ, bytes(8))
                    )
                except (OSError, termios.error):
                    pass  # a terminal without settings or size: the pty's defaults do
                os.set_blocking(master, False)
                self.copies.append((master, fd))
                by_device[device] = slave
            self.stdio[fd] = by_device[device]

    def resize(self) -> None:
        """SIGWINCH: give each pseudo-terminal the real terminal's size again."""
        import fcntl
        import termios

        for master, real in self.copies:
            try:  # noqa: SIM105 - contextlib is not imported on the exec path
                fcntl.ioctl(
                    master, termios.TIOCSWINSZ, fcntl.ioctl(real, termios.TIOCGWINSZ, bytes(8))
                )
            except OSError:
                pass

    def fds(self) -> list[int]:
        """Every fd the relay holds (the supervisor keeps them when it closes what it inherited)."""
        return [*self._owned, *(real for _, real in self.copies)]

    def interest(self) -> list[tuple[int, int]]:
        """(fd, poll events) to wait for: a pseudo-terminal's output while little of it waits
        for the real terminal, the real terminal's room while something does. Nothing here
        blocks: a terminal paused by Ctrl-S (or a stalled ssh) holds the service's output back
        (its writes block once the pseudo-terminal is full), never unroot's signal handling."""
        import select

        wanted = []
        for master, real in self.copies:
            pending = self._pending.get(master, b"")
            if len(pending) < PENDING_MAX and master not in self._done:
                wanted.append((master, select.POLLIN))
            if pending:
                wanted.append((real, select.POLLOUT))
        return wanted

    def ready(self, events: dict[int, int]) -> None:
        """Read what the service wrote, write what the real terminal has room for."""
        import select

        for master, real in self.copies:
            if events.get(master, 0) and master not in self._done:
                try:
                    data = os.read(master, 65536)
                    if not data:  # end of file: no writer is left
                        self._done.add(master)
                except BlockingIOError:
                    data = b""
                except OSError:  # EIO: every slave end is closed
                    self._done.add(master)
                    data = b""
                self._pending[master] = self._pending.get(master, b"") + data
            pending = self._pending.get(master, b"")
            if pending and events.get(real, 0) & (select.POLLOUT | select.POLLERR):
                try:
                    written = os.write(real, pending[:CHUNK])
                except BlockingIOError:
                    written = 0
                except OSError:  # the terminal went away: drop the output, keep draining
                    written = len(pending)
                self._pending[master] = pending[written:]

    def drain(self, seconds: float = 0.5) -> None:
        """At the end: copy what is still buffered, for as long as the real terminal takes it
        (at most ``seconds``: a paused terminal does not keep unroot from exiting)."""
        import select
        import time

        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for master, _ in self.copies:  # whatever the service wrote last
                while master not in self._done:
                    try:
                        data = os.read(master, 65536)
                    except OSError:
                        break
                    if not data:
                        break
                    self._pending[master] = self._pending.get(master, b"") + data
            wanted = [(real, select.POLLOUT) for m, real in self.copies if self._pending.get(m)]
            if not wanted:
                return
            poller = select.poll()
            for fd, events in wanted:
                poller.register(fd, events)
            left = max(0.0, deadline - time.monotonic())
            self.ready(dict(poller.poll(left * 1e3)))

    def close(self) -> None:
        for fd in self._owned:
            try:  # noqa: SIM105 - contextlib is not imported on the exec path
                os.close(fd)
            except OSError:
                pass
        self._owned = []
