"""Test helpers: certbot's filesystem calls replayed step by step, a canonical dump of a tree,
and reads as another uid through the real kernel.

The replay follows certbot's source (certbot/_internal/storage.py ``new_lineage``,
``save_successor``, ``_update_link_to``; certbot/compat/filesystem.py ``makedirs``,
``compute_private_key_mode``, ``copy_ownership_and_apply_mode``; util.safe_open) call for call;
it is not certbot's code.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from unroot.model.acl import Acl

KINDS = ("cert", "privkey", "chain", "fullchain")
XATTRS = ("system.posix_acl_access", "system.posix_acl_default", "security.capability")
BASE_PRIVKEY_MODE = 0o600


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _makedirs(path: Path, mode: int = 0o777) -> None:
    """filesystem.makedirs: umask(current | 0o777 ^ mode), os.makedirs(path, mode)."""
    current = os.umask(0)
    try:
        os.umask(current | 0o777 ^ mode)
        os.makedirs(path, mode)
    finally:
        os.umask(current)


def _safe_open_write(path: Path, data: bytes, mode: int) -> None:
    """util.safe_open(path, "wb", chmod=mode): O_CREAT|O_EXCL|O_RDWR with ``mode``."""
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)


def new_lineage(root: Path, name: str, version_data: bytes = b"1") -> None:
    """storage.RenewableCert.new_lineage, as certbot runs it with umask 022."""
    with umask(0o022):
        for directory in (root / "renewal", root / "archive", root / "live"):
            if not directory.exists():
                _makedirs(directory, 0o700)
        archive, live = root / "archive" / name, root / "live" / name
        for directory in (archive, live):
            if not directory.exists():
                _makedirs(directory)
        for kind in KINDS:
            os.symlink(f"../../archive/{name}/{kind}1.pem", live / f"{kind}.pem")
        _write(live / "cert.pem", b"CERT " + version_data)  # open(..., "wb") through the link
        _safe_open_write(archive / "privkey1.pem", b"KEY " + version_data, BASE_PRIVKEY_MODE)
        _write(live / "chain.pem", b"CHAIN")
        _write(live / "fullchain.pem", b"CERT CHAIN " + version_data)


def renew(root: Path, name: str, prior: int, *, reuse_key: bool = False) -> int:
    """save_successor(prior) then update_all_links_to(new): the renewal's filesystem calls."""
    archive, live = root / "archive" / name, root / "live" / name
    version = prior + 1
    target = {kind: archive / f"{kind}{version}.pem" for kind in KINDS}
    old_privkey = archive / f"privkey{prior}.pem"
    with umask(0o022):
        if reuse_key:
            # "keeps the prior key by creating a new symlink to the old key or its target"
            link = os.readlink(old_privkey) if old_privkey.is_symlink() else f"privkey{prior}.pem"
            os.symlink(link, target["privkey"])
        else:
            _safe_open_write(target["privkey"], b"KEY %d" % version, BASE_PRIVKEY_MODE)
            old = os.stat(old_privkey)
            mode = BASE_PRIVKEY_MODE | stat.S_IMODE(old.st_mode) & 0o074  # compute_private_key_mode
            os.chown(target["privkey"], -1, old.st_gid)  # copy_ownership(copy_user=False)
            os.chmod(target["privkey"], mode)
        for kind in ("cert", "chain", "fullchain"):
            _write(target[kind], b"%s %d" % (kind.encode(), version))
        for kind in KINDS:  # _update_link_to: unlink, then symlink (relative)
            link = live / f"{kind}.pem"
            directory = os.path.dirname(os.readlink(link))
            os.unlink(link)
            os.symlink(os.path.join(directory, f"{kind}{version}.pem"), link)
    return version


def run_deploy_hooks(root: Path, name: str, domains: str) -> None:
    """hooks.run_saved_deploy_hooks: each executable in renewal-hooks/deploy, sorted, through
    the shell, with RENEWED_LINEAGE (the live directory) and RENEWED_DOMAINS."""
    hook_dir = root / "renewal-hooks" / "deploy"
    env = {**os.environ, "RENEWED_LINEAGE": str(root / "live" / name), "RENEWED_DOMAINS": domains}
    for hook in sorted(hook_dir.iterdir()) if hook_dir.is_dir() else ():
        if os.access(hook, os.X_OK) and not hook.name.endswith("~"):
            subprocess.run(str(hook), shell=True, check=True, env=env, capture_output=True)


# -- observing -------------------------------------------------------------------------------
def can_read(path: Path | str, uid: int = 2200, gid: int = 2200) -> bool:
    """Whether ``uid:gid`` with no supplementary groups can read ``path``: the real kernel."""
    done = subprocess.run(
        ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "cat", str(path)],
        capture_output=True, check=False, timeout=30,
    )  # fmt: skip
    return done.returncode == 0


def _xattr(path: str, name: str) -> str | None:
    try:
        return os.getxattr(path, name, follow_symlinks=False).hex()
    except OSError as exc:
        if exc.errno in (errno.ENODATA, errno.EOPNOTSUPP, errno.EPERM):
            return None
        raise


def dump(root: Path | str) -> dict[str, object]:
    """Every node under ``root``: type, mode, owner, symlink target, the three xattrs' bytes,
    a regular file's content hash."""
    out: dict[str, object] = {}
    for directory, dirs, files in os.walk(root):
        for name in [".", *sorted(dirs), *sorted(files)]:
            path = os.path.normpath(os.path.join(directory, name))
            if name == "." and directory != str(root):
                continue
            st = os.lstat(path)
            entry: dict[str, object] = {
                "mode": f"{st.st_mode:o}", "uid": st.st_uid, "gid": st.st_gid, "ino": st.st_ino,
            }  # fmt: skip
            if stat.S_ISLNK(st.st_mode):
                entry["target"] = os.readlink(path)
            else:
                entry["xattrs"] = {n: _xattr(path, n) for n in XATTRS}
            if stat.S_ISREG(st.st_mode):
                entry["sha256"] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
            out[os.path.relpath(path, root)] = entry
    return out


def dump_hash(root: Path | str) -> str:
    return hashlib.sha256(json.dumps(dump(root), sort_keys=True).encode()).hexdigest()


def getfacl(path: Path | str) -> str:
    return subprocess.run(
        ["getfacl", "-n", "-p", "-c", str(path)], capture_output=True, text=True, check=True
    ).stdout


@contextmanager
def world_dir(prefix: str) -> Iterator[Path]:
    """A 0755 directory under /var/tmp (ext4 here, with ACLs; pytest's tmp_path sits below a
    0700 directory that uid 2200 cannot search)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/var/tmp"))
    path.chmod(0o755)
    probe = path / ".acl-probe"
    probe.touch()
    try:
        os.setxattr(probe, XATTRS[0], Acl.parse("u::rw,u:2200:r,g::-,m::r,o::-").encode())
    except OSError as exc:  # pragma: no cover - the machine's /var/tmp has no ACLs
        shutil.rmtree(path)
        raise RuntimeError(f"/var/tmp has no POSIX ACLs here ({exc.strerror})") from None
    probe.unlink()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
