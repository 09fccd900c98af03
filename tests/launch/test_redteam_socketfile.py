"""Red team: the unix socket file is set up by root with path names, in a directory the service's
user may write.

``_bind_unix`` (launch/sockets.py) binds, ``lstat``s the path and, when the mode differs from the
wanted one, calls ``os.chmod(path, mode)`` — which follows symlinks — as root. A service whose
user can write the socket's directory (its own runtime directory, ``/run/app`` owned by ``app``:
the usual layout) renames a symlink over the fresh socket between ``bind()`` and ``chmod()``:
the ``lstat`` then sees the symlink (mode 0777, not 0666), and root chmods the symlink's target,
any file on the system, to 0666 (``/etc/shadow``, ``/etc/sudoers``: root). An inotify watch wins
this nearly every time; the launch still exits 0 and reports nothing.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time

import pytest
from launchutil import NOBODY, need_service_python, private_dir, run_unroot, service_env

pytestmark = pytest.mark.root

#: The service's user, racing root: rename a symlink to TARGET over NAME as soon as NAME appears.
RACER = r"""
import ctypes, os, struct, sys, time
libc = ctypes.CDLL(None, use_errno=True)
directory, name, target, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
ino = libc.inotify_init1(0)
libc.inotify_add_watch(ino, directory.encode(), 0x100)  # IN_CREATE
spare, path = os.path.join(directory, ".spare"), os.path.join(directory, name)
def arm():
    try:
        os.symlink(target, spare)
    except FileExistsError:
        pass
arm()
print("armed", flush=True)
end = time.monotonic() + seconds
while time.monotonic() < end:
    data = os.read(ino, 8192)
    at = 0
    while at < len(data):
        _, _, _, size = struct.unpack_from("iIII", data, at)
        created = data[at + 16 : at + 16 + size].rstrip(b"\0")
        at += 16 + size
        if created == name.encode():
            try:
                os.rename(spare, path)
            except OSError:
                pass
            arm()
"""


def test_the_service_user_cannot_make_root_chmod_another_file_through_the_socket_path() -> None:
    python = need_service_python()
    with private_dir() as base:
        rundir = base / "run-app"  # the service's own runtime directory
        rundir.mkdir()
        os.chown(rundir, NOBODY, NOBODY)
        victim = base / "shadow"  # stands for /etc/shadow: root's, 0600
        victim.write_text("root:$y$secret:\n")
        victim.chmod(0o600)
        racer = base / "racer.py"
        racer.write_text(RACER)
        racer.chmod(0o644)
        sock = rundir / "app.sock"
        proc = subprocess.Popen(
            [python, "-I", "-S", str(racer), str(rundir), sock.name, str(victim), "60"],
            user=NOBODY,
            group=NOBODY,
            extra_groups=[],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "armed"
            modes = []
            for _ in range(10):
                if sock.is_symlink() or sock.exists():
                    sock.unlink()
                victim.chmod(0o600)
                result = run_unroot(
                    ["-l", f"unix:{sock}", "--user", "nobody", "--", "/bin/true"],
                    env=service_env(),
                )
                modes.append((result.returncode, oct(stat.S_IMODE(victim.stat().st_mode))))
                time.sleep(0.05)
            assert all(mode == "0o600" for _, mode in modes), (
                "root chmod'ed a file the service's user chose, through a symlink renamed over "
                f"the socket (exit status, victim's mode): {modes}"
            )
        finally:
            proc.kill()
            proc.wait(timeout=10)
            if proc.stdout is not None:
                proc.stdout.close()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-v"]))
