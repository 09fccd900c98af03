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

TIOCNOTTY = 0x5422  # include/uapi/asm-generic/ioctls.h
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
        import fcntl
        import termios

        self.stdio: dict[int, int] = {}
        self.copies: list[tuple[int, int]] = []
        self._owned: list[int] = []
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
                master, slave = os.openpty()
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

    def copy(self, master: int, real: int) -> bool:
        """Copy what the service wrote to the real terminal; False once nothing is left to read."""
        try:
            data = os.read(master, 65536)
        except BlockingIOError:
            return True
        except OSError:  # EIO: every slave end is closed
            return False
        if not data:
            return False
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(real, view) :]
            except InterruptedError:
                continue
            except OSError:  # the terminal went away: keep draining, drop the output
                break
        return True

    def drain(self) -> None:
        """Copy whatever is still buffered in each pseudo-terminal."""
        for master, real in self.copies:
            for _ in range(64):
                try:
                    data = os.read(master, 65536)
                except OSError:
                    break
                if not data:
                    break
                try:
                    os.write(real, data)
                except OSError:
                    break

    def close(self) -> None:
        for fd in self._owned:
            try:  # noqa: SIM105 - contextlib is not imported on the exec path
                os.close(fd)
            except OSError:
                pass
        self._owned = []
