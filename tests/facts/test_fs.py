"""facts/fs.py: the live tree gathered for one path (the mount table: test_mounts.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from unroot.errors import EnvironmentProblem
from unroot.facts.fs import absolute_path, gather_tree, protected_symlinks


def test_injectable_procfs(tmp_path: Path) -> None:
    (tmp_path / "sys" / "fs").mkdir(parents=True)
    (tmp_path / "sys" / "fs" / "protected_symlinks").write_text("1\n")
    assert protected_symlinks(str(tmp_path))
    assert not protected_symlinks(str(tmp_path / "nothing"))
    with pytest.raises(EnvironmentProblem, match="mount table"):
        gather_tree("/", procfs=str(tmp_path / "nothing"))


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
