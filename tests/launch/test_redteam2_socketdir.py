"""Red team 2: the socket file's *directory components* are resolved by path, as root.

The first round pinned the socket file itself (O_PATH|O_NOFOLLOW, probe, SO_PEERCRED). But
``_remove_stale_socket`` still ``lstat``s, ``connect``s and ``unlink``s the path as root, and
``bind()`` creates the file by path: every directory component on the way is followed, symlinks
included. When a directory *above* the socket's own directory is writable by the service's user
— ``unix:/srv/app/tmp/sockets/puma.sock`` with ``/srv/app`` owned by ``app``, the usual layout of
a Rails/puma deployment — that user decides where root's path leads:

* planted before the launch (``tmp/sockets -> /run/other``): root removes a stale socket of
  root's in a directory the user may not write, binds its own there and chowns it to the user
  (``owner=``): the service now answers the clients of another service's socket path. Or root
  simply creates a file in any directory of the user's choosing.
* swapped while root works (``renameat2(RENAME_EXCHANGE)`` of a real directory and a symlink,
  in a loop): ``lstat`` sees the stale socket in the real directory, ``unlink`` goes through the
  symlink — and removes *any* file with the socket's name, in any directory, although
  ``_remove_stale_socket`` promises "exists and is not a socket; not removing it". A regular
  file of root's (mode 0600) is deleted and replaced by root's new socket. connect(2) on a
  regular file answers ECONNREFUSED, exactly what a stale socket answers.

The service controls its own restarts (exit, and systemd's ``Restart=`` runs unroot again), so
every launch is one more try; here one try in ten or so wins.
"""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from launchutil import NOBODY, need_service_python, private_dir, run_unroot

pytestmark = pytest.mark.root

AS_NOBODY_TRUE = ("--user", "nobody", "--", "/bin/true")

#: The service's user: exchange SUB (a directory) and LINK (a symlink) as fast as it can.
FLIPPER = r"""
import ctypes, sys, time
libc = ctypes.CDLL(None, use_errno=True)
a, b, seconds = sys.argv[1].encode(), sys.argv[2].encode(), float(sys.argv[3])
SYS_renameat2 = {"x86_64": 316, "aarch64": 276}[__import__("platform").machine()]
print("flipping", flush=True)
end = time.monotonic() + seconds
while time.monotonic() < end:
    for _ in range(1000):
        libc.syscall(SYS_renameat2, -100, a, -100, b, 2)  # AT_FDCWD, RENAME_EXCHANGE
"""


def stale_socket(path: Path, uid: int = 0) -> None:
    """A socket file nothing listens on (what a crashed server leaves behind)."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
    os.lchown(path, uid, uid)


def wait_stopped(pid: int) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        text = Path(f"/proc/{pid}/stat").read_text()
        if text[text.rindex(")") + 2] in "tT":
            return
        time.sleep(0.001)
    raise AssertionError(f"pid {pid} did not stop")


def test_root_does_not_follow_a_symlink_the_service_user_planted_above_the_socket() -> None:
    with private_dir() as base:
        home = base / "app"  # the service's own tree, e.g. /srv/app
        home.mkdir()
        os.chown(home, NOBODY, NOBODY)
        other = base / "other"  # root's: stands for /run/other-daemon, 0755
        other.mkdir()
        stale_socket(other / "api.sock")  # another root service, stopped for now
        before = os.lstat(other / "api.sock")
        os.symlink(other, home / "sockets")  # the service's user did this (it owns home)
        os.lchown(home / "sockets", NOBODY, NOBODY)
        result = run_unroot(["-l", f"unix:{home}/sockets/api.sock,owner=nobody", *AS_NOBODY_TRUE])
        after = os.lstat(other / "api.sock")
        assert (after.st_ino, after.st_uid) == (before.st_ino, before.st_uid), (
            f"root removed a socket of root's in {other} (not writable by nobody) and bound a "
            f"new one there owned by uid {after.st_uid}, through the symlink {home}/sockets "
            f"that nobody planted: rc={result.returncode} {result.stderr!r}"
        )


def test_root_never_unlinks_a_file_that_is_not_a_socket_through_a_swapped_directory() -> None:
    python = need_service_python()
    with private_dir() as base:
        home = base / "app"
        home.mkdir()
        os.chown(home, NOBODY, NOBODY)
        victim_dir = base / "etc"  # root's, 0755: stands for /etc, /root/.ssh, ...
        victim_dir.mkdir()
        victim = victim_dir / "api.sock"  # a file of root's that happens to share the name

        def plant_victim() -> None:
            victim.write_text("root's data\n")
            victim.chmod(0o600)

        plant_victim()
        real = home / "sockets"
        real.mkdir()
        os.chown(real, NOBODY, NOBODY)
        link = home / "link"
        os.symlink(victim_dir, link)
        os.lchown(link, NOBODY, NOBODY)
        flipper_py = base / "flip.py"
        flipper_py.write_text(FLIPPER)
        flipper_py.chmod(0o644)
        flipper = subprocess.Popen(
            [python, "-I", "-S", str(flipper_py), str(real), str(link), "120"],
            user=NOBODY,
            group=NOBODY,
            extra_groups=[],
            stdout=subprocess.PIPE,
            text=True,
        )
        outcomes = []
        try:
            assert flipper.stdout is not None
            assert flipper.stdout.readline().strip() == "flipping"
            for _ in range(150):
                flipper.send_signal(signal.SIGSTOP)  # lay out the next try
                wait_stopped(flipper.pid)
                try:
                    # whichever name holds the real directory right now gets a stale socket
                    where = link if real.is_symlink() else real
                    stale = where / "api.sock"
                    if stale.is_socket() or stale.is_symlink():
                        stale.unlink()
                    if not stale.exists():
                        stale_socket(stale, NOBODY)  # the service's user may do this
                finally:
                    flipper.send_signal(signal.SIGCONT)
                result = run_unroot(["-l", f"unix:{home}/sockets/api.sock", *AS_NOBODY_TRUE])
                if not (victim.exists() and stat.S_ISREG(os.lstat(victim).st_mode)):
                    what = "a socket" if victim.is_socket() else "gone"
                    outcomes.append(f"rc={result.returncode} now {what}: {result.stderr!r}")
                    if os.path.lexists(victim):
                        victim.unlink()
                    plant_victim()
                    break
        finally:
            flipper.kill()
            flipper.wait(timeout=10)
            if flipper.stdout is not None:
                flipper.stdout.close()
        assert not outcomes, (
            f"root unlinked {victim}, a regular file (mode 0600) in a directory nobody cannot "
            f"write, through {home}/sockets swapped for a symlink: {outcomes}"
        )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-v"]))
