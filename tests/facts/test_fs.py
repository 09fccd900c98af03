"""facts/fs.py: mountinfo → mount flags, and the live tree gathered for one path."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from unroot.errors import EnvironmentProblem, ParseError
from unroot.facts.fs import (
    absolute_path,
    gather_tree,
    mount_for,
    parse_mountinfo,
    protected_symlinks,
    read_mounts,
)

# proc(5) mountinfo. Mount 64 bind-mounts /srv/a read-only and noexec; 63 is a tmpfs whose
# superblock was remounted read-only; 70 was mounted on /srv/a/t *before* 64 covered /srv/a
# (a non-recursive bind mount does not carry it), so /srv/a/t is reached through 64, not 70;
# 71 and 72 stack on /srv/s; the mount point of 73 has a space.
MOUNTINFO = """\
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
63 27 0:39 / /srv/ro-fs ro,relatime - tmpfs tmpfs ro
70 27 0:40 / /srv/a/t rw,relatime - tmpfs tmpfs rw
64 27 254:0 /srv/a /srv/a ro,noexec,relatime - ext4 /dev/vda rw,discard
71 27 0:41 / /srv/s rw - tmpfs tmpfs rw
72 71 0:42 / /srv/s ro - tmpfs tmpfs rw
73 27 0:43 / /srv/with\\040space rw,noexec - tmpfs  rw
"""


@pytest.mark.parametrize(
    ("path", "mount_id"),
    [
        ("/", 27),
        ("/srv", 27),
        ("/srv/ro-fs/x/y", 63),
        ("/srv/a", 64),
        ("/srv/a/t/f", 64),  # 70 is hidden under 64
        ("/srv/ab", 27),  # a prefix of the name is not a parent directory
        ("/srv/s/f", 72),  # stacked: the last one on top
        ("/srv/with space/f", 73),
    ],
)
def test_mount_for(path: str, mount_id: int) -> None:
    mount = mount_for(parse_mountinfo(MOUNTINFO), path)
    assert mount is not None
    assert mount.mount_id == mount_id


def test_mount_flags() -> None:
    mounts = {m.mount_id: m for m in parse_mountinfo(MOUNTINFO)}
    assert (mounts[63].readonly, mounts[63].readonly_fs) == (True, True)
    assert (mounts[64].readonly, mounts[64].readonly_fs, mounts[64].noexec) == (True, False, True)
    assert (mounts[72].readonly, mounts[72].readonly_fs) == (True, False)
    assert mounts[73].mount_point == "/srv/with space"
    assert mounts[73].noexec


@pytest.mark.parametrize(
    "line", ["27 1 254:0 / / rw", "x 1 254:0 / / rw - ext4 /dev/vda rw", "27 1 254:0 / / rw -"]
)
def test_bad_mountinfo(line: str) -> None:
    with pytest.raises(ParseError, match="mountinfo:1"):
        parse_mountinfo(line)


@given(st.text(max_size=200))
def test_fuzz_mountinfo(text: str) -> None:
    try:
        mounts = parse_mountinfo(text)
    except ParseError:
        return
    mount_for(mounts, "/a/b")


def test_injectable_procfs(tmp_path: Path) -> None:
    (tmp_path / "self").mkdir()
    (tmp_path / "self" / "mountinfo").write_text(MOUNTINFO)
    (tmp_path / "sys" / "fs").mkdir(parents=True)
    (tmp_path / "sys" / "fs" / "protected_symlinks").write_text("1\n")
    assert len(read_mounts(str(tmp_path))) == 7
    assert protected_symlinks(str(tmp_path))
    assert not protected_symlinks(str(tmp_path / "nothing"))
    with pytest.raises(EnvironmentProblem, match="mount table"):
        read_mounts(str(tmp_path / "nothing"))


def test_absolute_path_keeps_dots_for_the_walk() -> None:
    assert absolute_path("a/../b", cwd="/srv") == "/srv/a/../b"
    assert absolute_path("/x/..") == "/x/.."


def test_gathers_exactly_the_walk(tmp_path: Path) -> None:
    base = tmp_path / "base"
    (base / "a" / "b").mkdir(parents=True)
    (base / "a" / "b" / "f").write_text("x")
    (base / "a" / "unrelated").write_text("x")
    (base / "link").symlink_to("a/b")
    tree = gather_tree(str(base / "link" / "f"))
    real = os.path.realpath(base)
    assert set(tree) >= {real, f"{real}/link", f"{real}/a", f"{real}/a/b", f"{real}/a/b/f"}
    assert f"{real}/a/unrelated" not in tree
    assert tree[f"{real}/link"].target == "a/b"
    missing = gather_tree(str(base / "a" / "nope" / "deeper"))
    assert f"{real}/a" in missing
    assert f"{real}/a/nope" not in missing


@pytest.mark.skipif(shutil.which("setfacl") is None, reason="needs setfacl (Debian: acl)")
def test_reads_the_acl(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    key.write_text("secret")
    key.chmod(0o600)
    subprocess.run(["setfacl", "-m", "g:2200:r", str(key)], check=True)
    inode = gather_tree(str(key))[os.path.realpath(key)]
    assert inode.acl is not None
    assert inode.acl.groups == {2200: 4}
    assert inode.mode & 0o777 == 0o640  # the mask shows as the group bits


def test_unsearchable_directory_is_an_environment_problem() -> None:
    base = tempfile.mkdtemp(prefix="unroot-fs-")
    try:
        os.chmod(base, 0o755)
        locked = os.path.join(base, "locked")
        os.makedirs(os.path.join(locked, "inner"))
        os.chmod(locked, 0)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            code = 3
            try:
                if os.geteuid() == 0:
                    os.setresgid(65534, 65534, 65534)
                    os.setresuid(65534, 65534, 65534)
                gather_tree(os.path.join(locked, "inner", "f"))
                code = 1
            except EnvironmentProblem as err:
                code = 0 if "Permission denied" in str(err) else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.WEXITSTATUS(status) == 0
    finally:
        os.chmod(os.path.join(base, "locked"), 0o700)
        shutil.rmtree(base)
