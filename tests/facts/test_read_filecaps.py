"""facts/filecaps.py: reading security.capability from real files and walking trees."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from unroot.errors import EnvironmentProblem, ParseError, UsageError
from unroot.facts import filecaps
from unroot.facts.filecaps import read_file_caps, read_xattr, scan
from unroot.facts.mounts import Mount
from unroot.model.caps import CapSet
from unroot.model.filecaps import XATTR_NAME_CAPS, FileCaps

NET_BIND_EP = FileCaps(CapSet.of("cap_net_bind_service"), effective=True)


def make_file(path: Path, mode: int = 0o755) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x7fELF not really\n")
    path.chmod(mode)
    return path


# -- one file ----------------------------------------------------------------------------------
def test_no_caps_is_none(tmp_path: Path) -> None:
    assert read_file_caps(str(make_file(tmp_path / "plain"))) is None


def test_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="No such file or directory"):
        read_xattr(str(tmp_path / "nothing"))


def test_invalid_bytes_name_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = str(make_file(tmp_path / "bad"))
    monkeypatch.setattr(os, "getxattr", lambda *a, **k: b"\x00\x00\x00\x02\x01")
    with pytest.raises(ParseError) as info:
        read_file_caps(path)
    assert str(info.value) == (
        f"{path}: invalid security.capability (revision 2 must be 20 bytes, not 5 "
        "(the kernel returns EINVAL))"
    )


def test_other_os_errors_are_environment_problems(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def fail(*args: object, **kwargs: object) -> bytes:
        raise OSError(errno.EOVERFLOW, os.strerror(errno.EOVERFLOW))

    monkeypatch.setattr(os, "getxattr", fail)
    with pytest.raises(EnvironmentProblem, match="another user namespace"):
        read_file_caps(str(make_file(tmp_path / "f")))


@pytest.mark.root
@pytest.mark.parametrize(
    "caps",
    [
        NET_BIND_EP,
        FileCaps(CapSet.of("cap_net_raw"), CapSet.of("cap_chown")),
        FileCaps(CapSet.of("cap_net_bind_service"), effective=True, revision=3, rootid=1000),
    ],
)
def test_reads_what_was_written(tmp_path: Path, caps: FileCaps) -> None:
    path = make_file(tmp_path / "capped")
    os.setxattr(path, XATTR_NAME_CAPS, caps.encode())
    assert read_file_caps(str(path)) == caps


@pytest.mark.root
def test_the_kernel_refuses_malformed_headers(tmp_path: Path) -> None:
    """Why the CLI tests fake invalid bytes: setxattr(2) validates security.capability."""
    path = make_file(tmp_path / "f")
    with pytest.raises(OSError) as info:
        os.setxattr(path, XATTR_NAME_CAPS, b"\x00\x00\x00\x02\x01")
    assert info.value.errno == errno.EINVAL


# -- the walk ------------------------------------------------------------------------------------
@pytest.fixture
def tree(tmp_path: Path) -> Path:
    make_file(tmp_path / "bin" / "plain")
    make_file(tmp_path / "bin" / "suid", 0o4755)
    make_file(tmp_path / "bin" / "sgid", 0o2711)
    make_file(tmp_path / "lib" / "deep" / "er" / "suid2", 0o4700)
    make_file(tmp_path / "lib" / "data", 0o644)
    os.setxattr(tmp_path / "lib" / "data", "user.note", b"an xattr that is not a capability")
    (tmp_path / "bin" / "link-to-suid").symlink_to("suid")
    (tmp_path / "linked-dir").symlink_to(tmp_path / "lib")
    os.mkfifo(tmp_path / "fifo")
    return tmp_path


def found(result: filecaps.ScanResult, root: Path) -> dict[str, str]:
    return {
        os.path.relpath(f.path, root): f"{f.mode & 0o7777:04o}"
        + (f" {f.caps.to_text()}" if f.caps else "")
        for f in result.files
    }


def test_walk_finds_setid_files_without_following_symlinks(tree: Path) -> None:
    result = scan([str(tree)])
    assert found(result, tree) == {
        "bin/sgid": "2711",
        "bin/suid": "4755",
        "lib/deep/er/suid2": "4700",
    }
    assert result.scanned == 5
    assert result.directories == 5
    assert result.errors == ()
    assert [f.path for f in result.files] == sorted(f.path for f in result.files)
    suid = result.files[1]
    assert (suid.setuid_owner, suid.setgid_owner) == (os.getuid(), None)


def test_a_root_given_as_symlink_is_followed(tree: Path) -> None:
    result = scan([str(tree / "linked-dir") + "/"])
    assert [f.path for f in result.files] == [str(tree / "linked-dir" / "deep" / "er" / "suid2")]


def test_a_file_can_be_a_root(tree: Path) -> None:
    result = scan([str(tree / "bin" / "suid"), str(tree / "bin" / "plain")])
    assert [f.path for f in result.files] == [str(tree / "bin" / "suid")]
    assert result.scanned == 2


def test_missing_roots_are_root_errors(tree: Path) -> None:
    seen: list[filecaps.ScanError] = []
    result = scan([str(tree / "nothing"), str(tree / "bin")], on_error=seen.append)
    assert len(result.files) == 2
    assert result.errors == (
        filecaps.ScanError(str(tree / "nothing"), "No such file or directory", True, errno.ENOENT),
    )
    assert seen == list(result.errors)


def test_progress_is_called_per_directory(tree: Path) -> None:
    calls: list[tuple[int, int]] = []
    scan([str(tree)], on_progress=lambda files, dirs: calls.append((files, dirs)))
    assert len(calls) == 5
    assert calls[-1] == (5, 5)


ROOT_MOUNT = Mount(1, 0, 0, "/", "/", ("rw",), "ext4", "/dev/vda", ("rw",))


def mounted(
    mount_id: int, on: int, point: Path, fstype: str, source: str, *, dev: int = 0
) -> Mount:
    """A mountinfo line: mount ``mount_id`` of ``fstype`` on ``point`` of mount ``on``."""
    return Mount(mount_id, on, dev, "/", str(point), ("rw",), fstype, source, ("rw",))


def test_pseudo_filesystems_below_a_root_are_skipped(tree: Path) -> None:
    mounts = [ROOT_MOUNT, mounted(2, 1, tree / "lib" / "deep", "proc", "proc")]
    result = scan([str(tree)], mounts=mounts)
    assert result.skipped == (str(tree / "lib" / "deep"),)
    assert "lib/deep/er/suid2" not in found(result, tree)
    # ... but not when given as the root itself
    assert len(scan([str(tree / "lib" / "deep")], mounts=mounts).files) == 1


def test_mount_points_are_matched_through_a_symlinked_root(tree: Path) -> None:
    mounts = [ROOT_MOUNT, mounted(2, 1, tree / "lib" / "deep", "sysfs", "sysfs")]
    result = scan([str(tree / "linked-dir")], mounts=mounts)
    assert result.skipped == (str(tree / "linked-dir" / "deep"),)


def test_one_file_system_enters_a_bind_mount_of_the_same_filesystem(tree: Path) -> None:
    mounts = [ROOT_MOUNT, mounted(2, 1, tree / "lib", "ext4", "/dev/x", dev=os.stat(tree).st_dev)]
    result = scan([str(tree)], one_file_system=True, mounts=mounts)
    assert result.skipped == ()
    assert len(result.files) == 3


def test_a_mount_hidden_under_a_later_mount_is_not_met(tree: Path) -> None:
    """proc was mounted on lib/deep, then lib was bind-mounted over (not recursively): the walk
    sees the bind mount's lib/deep, a plain directory, and enters it."""
    hidden = mounted(2, 1, tree / "lib" / "deep", "proc", "proc")
    bind = mounted(3, 1, tree / "lib", "ext4", "/dev/vda")
    result = scan([str(tree)], mounts=[ROOT_MOUNT, hidden, bind])
    assert result.skipped == ()
    assert "lib/deep/er/suid2" in found(result, tree)


def test_the_mount_on_top_of_a_stack_decides(tree: Path) -> None:
    ext4_then_sysfs = [
        ROOT_MOUNT,
        mounted(2, 1, tree / "lib", "ext4", "/dev/vda"),
        mounted(3, 2, tree / "lib", "sysfs", "sysfs"),
    ]
    assert scan([str(tree)], mounts=ext4_then_sysfs).skipped == (str(tree / "lib"),)
    sysfs_then_ext4 = [
        ROOT_MOUNT,
        mounted(2, 1, tree / "lib", "sysfs", "sysfs"),
        mounted(3, 2, tree / "lib", "ext4", "/dev/vda"),
    ]
    assert scan([str(tree)], mounts=sysfs_then_ext4).skipped == ()


def test_mounts_inside_a_chroot_are_met(tree: Path) -> None:
    """In a chroot mountinfo has no root mount: the mounts inside it have unknown parents."""
    mounts = [mounted(40, 25, tree / "lib" / "deep", "proc", "proc")]
    assert scan([str(tree)], mounts=mounts).skipped == (str(tree / "lib" / "deep"),)


@contextlib.contextmanager
def real_mount(fstype: str, source: str, point: Path) -> Iterator[Path]:
    """``mount -t FSTYPE SOURCE POINT`` for the duration (needs root and mount(2))."""
    point.mkdir()
    if subprocess.run(["mount", "-t", fstype, source, str(point)], check=False).returncode:
        pytest.skip(f"cannot mount {fstype} here")
    try:
        yield point
    finally:
        subprocess.run(["umount", str(point)], check=True)


@pytest.fixture
def tmpfs(tree: Path) -> Iterator[Path]:
    """A real second filesystem inside the tree."""
    with real_mount("tmpfs", "none", tree / "mnt") as point:
        make_file(point / "suid-on-tmpfs", 0o4755)
        yield point


@pytest.mark.root
def test_one_file_system_with_a_real_mount(tree: Path, tmpfs: Path) -> None:
    crossing = scan([str(tree)])
    assert "mnt/suid-on-tmpfs" in found(crossing, tree)
    staying = scan([str(tree)], one_file_system=True)
    assert "mnt/suid-on-tmpfs" not in found(staying, tree)
    assert staying.skipped == (str(tmpfs),)


@pytest.mark.root
def test_one_file_system_without_mountinfo_compares_every_directory(
    tree: Path, tmpfs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_proc(procfs: str = "/proc", pid: int | str = "self") -> list[Mount]:
        raise EnvironmentProblem("no procfs")

    monkeypatch.setattr(filecaps, "read_mountinfo", no_proc)
    staying = scan([str(tree)], one_file_system=True)
    assert staying.skipped == (str(tmpfs),)


@pytest.mark.root
def test_a_real_proc_mount_below_the_root_is_skipped(tree: Path) -> None:
    with real_mount("proc", "proc", tree / "proc") as point:
        result = scan([str(tree)])
    assert result.skipped == (str(point),)
    assert result.directories == 5


@pytest.mark.root
def test_caps_and_setid_together(tree: Path) -> None:
    os.setxattr(tree / "bin" / "suid", XATTR_NAME_CAPS, NET_BIND_EP.encode())
    os.setxattr(tree / "bin" / "plain", XATTR_NAME_CAPS, NET_BIND_EP.encode())
    result = scan([str(tree)])
    assert found(result, tree) == {
        "bin/plain": "0755 cap_net_bind_service=ep",
        "bin/sgid": "2711",
        "bin/suid": "4755 cap_net_bind_service=ep",
        "lib/deep/er/suid2": "4700",
    }


@pytest.mark.root
def test_invalid_caps_are_reported_on_the_file(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    os.setxattr(tree / "bin" / "plain", XATTR_NAME_CAPS, NET_BIND_EP.encode())
    monkeypatch.setattr(os, "getxattr", lambda *a, **k: b"\x01\x02")
    (plain,) = [f for f in scan([str(tree)]).files if f.path.endswith("plain")]
    assert plain.caps is None
    assert plain.caps_error == "invalid security.capability (is 2 bytes, too short for a header)"


def test_unreadable_directories_are_errors_not_failures(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = os.open
    denied = str(tree / "lib" / "deep")

    def fake_open(path: str, flags: int, *args: int) -> int:
        if path == denied:
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", fake_open)
    result = scan([str(tree)])
    assert result.errors == (filecaps.ScanError(denied, "Permission denied", False, errno.EACCES),)
    assert len(result.files) == 2
