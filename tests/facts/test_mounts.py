"""facts/mounts.py: mountinfo → Mount, and which mount a path is reached through."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unroot.errors import EnvironmentProblem, ParseError
from unroot.facts.mounts import Mount, MountTree, mount_for, parse_mountinfo, read_mountinfo

# proc(5) mountinfo. 22 is listed before its parent; 28 has an optional field and escapes in its
# mount point and source. Mount 64 bind-mounts /srv/a read-only and noexec; 63 is a tmpfs whose
# superblock was remounted read-only; 70 was mounted on /srv/a/t *before* 64 covered /srv/a
# (a non-recursive bind mount does not carry it), so /srv/a/t is reached through 64, not 70;
# 71 and 72 stack on /srv/s, and 73 (no source) on 28.
MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
28 27 0:25 / /srv/with\\040space ro,nosuid,nodev,relatime shared:5 - tmpfs my\\134src ro,size=4k
63 27 0:39 / /srv/ro-fs ro,relatime - tmpfs tmpfs ro
70 27 0:40 / /srv/a/t rw,relatime - tmpfs tmpfs rw
64 27 254:0 /srv/a /srv/a ro,noexec,relatime - ext4 /dev/vda rw,discard
71 27 0:41 / /srv/s rw - tmpfs tmpfs rw
72 71 0:42 / /srv/s ro - tmpfs tmpfs rw
73 28 0:43 / /srv/with\\040space rw,noexec - tmpfs  rw
"""


# -- parsing ---------------------------------------------------------------------------------------
def test_parse_mountinfo() -> None:
    mounts = parse_mountinfo(MOUNTINFO)
    assert mounts[0] == Mount(
        mount_id=22,
        parent_id=27,
        dev=os.makedev(0, 21),
        root="/",
        mount_point="/proc",
        options=("rw", "relatime"),
        fstype="proc",
        source="proc",
        super_options=("rw",),
    )
    assert mounts[1].dev == os.makedev(254, 0)
    assert mounts[2].mount_point == "/srv/with space"
    assert mounts[2].source == "my\\src"
    assert mounts[2].options == ("ro", "nosuid", "nodev", "relatime")
    assert mounts[2].super_options == ("ro", "size=4k")


def test_mount_flags() -> None:
    mounts = {m.mount_id: m for m in parse_mountinfo(MOUNTINFO)}
    assert (mounts[63].readonly, mounts[63].readonly_fs) == (True, True)
    assert (mounts[64].readonly, mounts[64].readonly_fs, mounts[64].noexec) == (True, False, True)
    assert (mounts[72].readonly, mounts[72].readonly_fs) == (True, False)
    assert mounts[73].mount_point == "/srv/with space"
    assert mounts[73].noexec
    assert (mounts[73].source, mounts[73].super_options) == ("", ("rw",))
    assert mounts[64].root == "/srv/a"
    assert mounts[28].nosuid
    assert not mounts[27].nosuid


@pytest.mark.parametrize(
    "line",
    [
        "27 1 254:0 / / rw",  # no separator
        "27 1 254:0 / / rw -",  # nothing after it
        "x 1 254:0 / / rw - ext4 /dev/vda rw",
        "\u00b2 1 254:0 / / rw - ext4 /dev/vda rw",  # a digit, but not an ASCII one
        "22 27 x:1 / /proc rw - proc proc rw",
        "1 2 99999999999:0 / / rw - a b",
    ],
)
def test_bad_mountinfo_lines(line: str) -> None:
    with pytest.raises(ParseError, match="mountinfo:1"):
        parse_mountinfo(line + "\n")


def test_the_line_is_named() -> None:
    with pytest.raises(ParseError, match=r"^/proc/9/mountinfo:3: "):
        parse_mountinfo(MOUNTINFO.split("\n", 1)[0] + "\n\nnot a mount\n", "/proc/9/mountinfo")


# -- the mount tree --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "mount_id"),
    [
        ("/", 27),
        ("/srv", 27),
        ("/proc/1/status", 22),
        ("/srv/ro-fs/x/y", 63),
        ("/srv/a", 64),
        ("/srv/a/t/f", 64),  # 70 is hidden under 64
        ("/srv/ab", 27),  # a prefix of the name is not a parent directory
        ("/srv/s/f", 72),  # stacked: the last one on top
        ("/srv/with space/f", 73),  # stacked on 28
    ],
)
def test_mount_for(path: str, mount_id: int) -> None:
    mount = mount_for(parse_mountinfo(MOUNTINFO), path)
    assert mount is not None
    assert mount.mount_id == mount_id


def test_mounts_below_leave_out_hidden_and_covered_mounts() -> None:
    below = MountTree(parse_mountinfo(MOUNTINFO)).mounts_below("/srv")
    assert {point: m.mount_id for point, m in below.items()} == {
        "/srv/with space": 73,
        "/srv/ro-fs": 63,
        "/srv/a": 64,
        "/srv/s": 72,
    }
    assert set(MountTree(parse_mountinfo(MOUNTINFO)).mounts_below("/")) == {
        "/proc",
        "/srv/with space",
        "/srv/ro-fs",
        "/srv/a",
        "/srv/s",
    }


def test_in_a_chroot_there_is_no_root_mount() -> None:
    """mountinfo leaves out mounts outside the reader's root, so in a chroot that is not itself a
    mount point the mounts inside it have parents missing from the table."""
    mounts = parse_mountinfo(
        "40 25 0:5 / /proc rw - proc proc rw\n41 25 0:6 / /dev rw - devtmpfs udev rw\n"
    )
    assert mount_for(mounts, "/etc/passwd") is None
    found = mount_for(mounts, "/proc/self")
    assert found is not None
    assert found.mount_id == 40
    assert set(MountTree(mounts).mounts_below("/")) == {"/proc", "/dev"}


def test_cycles_in_a_malformed_table_end() -> None:
    mounts = parse_mountinfo(
        "1 1 0:1 / / rw - a b c\n2 3 0:2 / /x rw - a b c\n3 2 0:3 / /x rw - a b c"
    )
    found = mount_for(mounts, "/x/y")
    assert found is not None
    assert found.mount_id == 1


# -- reading ---------------------------------------------------------------------------------------
def test_injectable_procfs(tmp_path: Path) -> None:
    (tmp_path / "9").mkdir()
    (tmp_path / "9" / "mountinfo").write_text(MOUNTINFO)
    assert read_mountinfo(str(tmp_path), 9) == parse_mountinfo(MOUNTINFO)
    with pytest.raises(EnvironmentProblem, match="mount table"):
        read_mountinfo(str(tmp_path / "nothing"))


def test_live_mountinfo_has_proc() -> None:
    assert any(m.fstype == "proc" for m in read_mountinfo())


# -- fuzzing ---------------------------------------------------------------------------------------
def _check_tree(mounts: list[Mount]) -> None:
    tree = MountTree(mounts)
    for path in ("/", "/a/b", "/x/y z"):
        assert tree.mount_for(path) in (None, *mounts)
    for point, mount in tree.mounts_below("/").items():
        assert mount.mount_point == point


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_fuzz_parse_mountinfo_raises_only_parse_error(text: str) -> None:
    mounts: list[Mount] | None = None
    with contextlib.suppress(ParseError):
        mounts = parse_mountinfo(text)
    if mounts is not None:
        assert isinstance(mounts, list)
        _check_tree(mounts)


_IDS = st.integers(0, 5).map(str)
_POINTS = st.sampled_from(["/", "/a", "/a/b", "/x", "/x/y\\040z", "/x/y z"])
_TOKEN = st.sampled_from(["-", "rw", "ro,noexec", "shared:1", "tmpfs", "", "0:1", "x"])
_LINE = st.tuples(
    _IDS, _IDS, st.sampled_from(["0:1", "8:0", "1:x", "7"]), _POINTS, _POINTS, st.lists(_TOKEN)
).map(lambda parts: " ".join([*parts[:5], *parts[5]]))


@settings(max_examples=300, deadline=None)
@given(st.lists(_LINE, max_size=8))
def test_fuzz_mountinfo_like_tables(lines: list[str]) -> None:
    """Lines close to mountinfo (few ids: cycles, stacks and orphans) parse or fail cleanly,
    and the tree walk ends on every table that parses."""
    try:
        mounts = parse_mountinfo("\n".join(lines))
    except ParseError:
        return
    _check_tree(mounts)
