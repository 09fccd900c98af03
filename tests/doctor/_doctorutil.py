"""Run ``unroot doctor``/``undo`` as a user would (a subprocess), and hash trees to prove that
nothing changed."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

_XATTRS = ("system.posix_acl_access", "system.posix_acl_default", "security.capability")


def unroot(
    *argv: str, stdin: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "unroot", *argv],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def doctor_json(*argv: str, stdin: str | None = None) -> tuple[int, dict[str, Any]]:
    done = unroot("doctor", "--format", "json", *argv, stdin=stdin)
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


def one_line_error(done: subprocess.CompletedProcess[str], code: int = 2) -> str:
    """The command failed with ``code`` and exactly one line on stderr, no traceback."""
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


def tree_state(root: str | Path) -> str:
    """A hash of every node under ``root``: path, type, mode, owner, content or link target, and
    the ACL and capability xattrs' bytes."""
    digest = hashlib.sha256()
    for base, dirs, files in os.walk(root):
        dirs.sort()
        for name in [".", *sorted(dirs), *sorted(files)]:
            path = os.path.join(base, name) if name != "." else base
            st = os.lstat(path)
            digest.update(f"{path}\0{st.st_mode}\0{st.st_uid}\0{st.st_gid}\0".encode())
            if os.path.islink(path):
                digest.update(os.readlink(path).encode())
                continue
            if os.path.isfile(path):
                digest.update(Path(path).read_bytes())
            for attr in _XATTRS:
                try:
                    digest.update(attr.encode() + os.getxattr(path, attr))
                except OSError:
                    digest.update(attr.encode() + b"-")
    return digest.hexdigest()


def certbot_tree(root: Path, domain: str = "example.org") -> Path:
    """A lineage as certbot leaves it: live/ and archive/ 0700, relative symlinks, key 0600."""
    live, archive = root / "live" / domain, root / "archive" / domain
    live.mkdir(parents=True)
    archive.mkdir(parents=True)
    for directory in (root / "live", root / "archive"):
        directory.chmod(0o700)
    for name in ("cert", "chain", "fullchain", "privkey"):
        target = archive / f"{name}1.pem"
        target.write_text(f"-----{name}-----\n")
        target.chmod(0o600 if name == "privkey" else 0o644)
        (live / f"{name}.pem").symlink_to(f"../../archive/{domain}/{name}1.pem")
    return live / "privkey.pem"
