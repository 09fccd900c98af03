"""Every action applied and undone on real files (a canonical dump of the tree hashes the same
before the apply and after the undo), the ACL encoder against the real setfacl, groups, a
sysctl in a private network namespace, rollback, refusals, and the symlink swap."""

from __future__ import annotations

import grp
import json
import os
import random
import shutil
import struct
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from _certbot import dump_hash

from unroot.doctor import journal as jrnl
from unroot.doctor.actions import (
    AclSpec,
    Action,
    Chgrp,
    Chmod,
    CreateFile,
    Groupadd,
    Restart,
    SetAcl,
    Setcap,
    SystemdDropIn,
    from_argv,
)
from unroot.doctor.apply import apply, undo
from unroot.errors import EnvironmentProblem, UsageError

pytestmark = pytest.mark.root
REPO = Path(__file__).resolve().parents[2]
CAPS = "security.capability"
ACCESS, DEFAULT = "system.posix_acl_access", "system.posix_acl_default"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A small tree: d/ (0750) holding f (0640), exe (0755, a copy of /bin/true), sub/ (0700)."""
    top = tmp_path / "tree"
    (top / "d" / "sub").mkdir(parents=True)
    (top / "d").chmod(0o750)
    (top / "d" / "sub").chmod(0o700)
    (top / "d" / "f").write_bytes(b"secret\n")
    (top / "d" / "f").chmod(0o640)
    shutil.copy("/bin/true", top / "d" / "exe")
    (top / "d" / "exe").chmod(0o755)
    return top


@pytest.fixture
def journals(tmp_path: Path) -> str:
    return str(tmp_path / "state" / "journal")


def _actions(top: Path) -> dict[str, Callable[[], list[Action]]]:
    d, f, exe = top / "d", top / "d" / "f", top / "d" / "exe"
    return {
        "acl-user": lambda: [SetAcl(str(f), (AclSpec("u", 2200, 4),))],
        "acl-dir-search": lambda: [SetAcl(str(d / "sub"), (AclSpec("g", 2200, 1),))],
        "acl-default": lambda: [
            SetAcl(str(d), (AclSpec("g", None, 0), AclSpec("g", 2200, 4)), True)
        ],
        "chgrp": lambda: [Chgrp(str(f), 2200)],
        "chmod-g": lambda: [Chmod(str(f), "g", 4 | 2)],
        "chmod-u": lambda: [Chmod(str(f), "u", 1)],
        "setcap": lambda: [Setcap(str(exe), "cap_net_bind_service=+ep")],
        "create": lambda: [
            CreateFile(str(d / "new" / "deeper" / "hook.sh"), b"#!/bin/sh\n", 0o750)
        ],
        "systemd": lambda: [
            SystemdDropIn(str(top / "etc" / "blog.service.d"), (("LimitNOFILE", "65536"),))
        ],
        "all-at-once": lambda: [
            SetAcl(str(d), (AclSpec("u", 2200, 1),)),
            SetAcl(str(f), (AclSpec("u", 2200, 4),)),
            Chgrp(str(d / "sub"), 2200),
            Chmod(str(d / "sub"), "g", 5),
            Setcap(str(exe), "cap_net_bind_service,cap_net_raw=+ep"),
            CreateFile(str(top / "hooks" / "x.sh"), b"echo\n", 0o755),
        ],
    }


CASES = list(_actions(Path("/")))


@pytest.mark.parametrize("case", CASES)
def test_apply_then_undo_restores_the_tree(tree: Path, journals: str, case: str) -> None:
    before = dump_hash(tree)
    actions = _actions(tree)[case]()
    done = apply(actions, journal_dir=journals)
    assert done.journal is not None
    assert [o.status for o in done.outcomes] == ["applied"] * len(actions)
    changed = dump_hash(tree)
    assert changed != before
    # a second apply of the same fixes changes nothing and writes no journal
    again = apply(_actions(tree)[case](), journal_dir=journals)
    assert again.journal is None
    assert {o.status for o in again.outcomes} == {"satisfied"}
    assert dump_hash(tree) == changed
    assert os.listdir(journals) == [os.path.basename(done.journal)]
    undone = undo(done.journal)
    assert dump_hash(tree) == before
    assert undone.journal.endswith(".undone.json")
    with pytest.raises(UsageError, match="already undone"):
        undo(done.journal)


def test_the_journal_is_0600_in_a_0700_directory_and_written_before_any_change(
    tree: Path, journals: str
) -> None:
    seen: list[dict[str, object]] = []

    def look() -> None:  # runs as the first action: the journal must already be on disk
        (name,) = os.listdir(journals)
        seen.append(json.loads(Path(journals, name).read_text()))

    f = tree / "d" / "f"
    done = apply(
        [Restart("probe", "true", look), SetAcl(str(f), (AclSpec("u", 2200, 4),))],
        journal_dir=journals,
    )
    assert seen[0]["state"] == "applying"
    assert done.journal is not None
    assert os.stat(done.journal).st_mode & 0o777 == 0o600
    assert os.stat(journals).st_mode & 0o777 == 0o700
    data = json.loads(Path(done.journal).read_text())
    assert data["state"] == "applied"
    (record,) = data["records"]
    assert record["ref"] == {"node": str(f)}
    assert record["before"]["xattrs"][ACCESS] is None
    assert record["after"]["xattrs"][ACCESS] is not None
    assert [a["status"] for a in data["actions"]] == ["applied", "applied"]


# -- the ACL encoder against setfacl ---------------------------------------------------------------
ACL_CASES = [
    ("file", 0o640, None, "-m", "u:2200:r"),
    ("file", 0o600, "u:5:rw", "-m", "g:2200:r"),
    ("file", 0o2750, None, "-m", "g:2200:rx"),
    ("file", 0o644, "g:7:rwx", "-m", "u:7:r"),
    ("dir", 0o700, None, "-m", "g:2200:x"),
    ("dir", 0o755, None, "-d -m", "g:2200:r"),
    ("dir", 0o751, "u:5:rx", "-d -m", "g::-,g:2200:r"),
    ("dir", 0o2770, None, "-d -m", "u:2200:rwx,o::-"),
]


@pytest.mark.parametrize(("kind", "mode", "existing", "flags", "spec"), ACL_CASES)
def test_setacl_writes_what_setfacl_writes(  # noqa: PLR0917 - the table's columns
    tmp_path: Path, kind: str, mode: int, existing: str | None, flags: str, spec: str
) -> None:
    paths = []
    for name in ("ours", "setfacl"):
        path = tmp_path / name
        path.mkdir() if kind == "dir" else path.write_bytes(b"x")
        path.chmod(mode)
        if existing:
            subprocess.run(["setfacl", "-m", existing, str(path)], check=True)
        paths.append(path)
    ours, theirs = paths
    action = from_argv(["setfacl", *flags.split(), spec, str(ours)])
    assert action.command == f"setfacl {flags} {spec} {ours}"
    apply([action], journal_dir=str(tmp_path / "j"))
    subprocess.run(["setfacl", *flags.split(), spec, str(theirs)], check=True)
    for name in (ACCESS, DEFAULT):
        mine = _xattr(ours, name)
        assert mine == _xattr(theirs, name), name
    assert ours.stat().st_mode == theirs.stat().st_mode


def _xattr(path: Path, name: str) -> bytes | None:
    try:
        return os.getxattr(path, name)
    except OSError:
        return None


# -- capabilities ---------------------------------------------------------------------------------
V3_ROOTID_1000 = struct.pack("<6I", 0x03000001, 1 << 10, 0, 0, 0, 1000)
V2_NET_RAW = struct.pack("<5I", 0x02000001, 1 << 13, 0, 0, 0)


@pytest.mark.parametrize("previous", [None, V2_NET_RAW, V3_ROOTID_1000], ids=["absent", "v2", "v3"])
def test_setcap_undo_restores_the_exact_previous_bytes(
    tree: Path, journals: str, previous: bytes | None
) -> None:
    exe = tree / "d" / "exe"
    if previous is not None:
        os.setxattr(exe, CAPS, previous)
    assert _xattr(exe, CAPS) == previous
    done = apply([Setcap(str(exe), "cap_net_bind_service=+ep")], journal_dir=journals)
    assert _xattr(exe, CAPS) == struct.pack("<5I", 0x02000001, 1 << 10, 0, 0, 0)
    assert done.journal is not None
    undo(done.journal)
    assert _xattr(exe, CAPS) == previous


def test_setcap_why_warns_that_upgrades_and_cp_lose_it(tree: Path) -> None:
    action = Setcap(str(tree / "d" / "exe"), "cap_net_bind_service=+ep")
    assert action.command == f"setcap cap_net_bind_service=ep {tree}/d/exe"
    assert "package upgrade" in action.why
    assert "cp without --preserve=xattr" in action.why


@pytest.mark.parametrize("bits", [0o4755, 0o2755, "caps"])
def test_chgrp_refuses_a_file_with_setid_bits_or_caps(
    tree: Path, journals: str, bits: int | str
) -> None:
    exe = tree / "d" / "exe"
    if bits == "caps":
        os.setxattr(exe, CAPS, V2_NET_RAW)
    else:
        assert isinstance(bits, int)
        exe.chmod(bits)
    before = dump_hash(tree)
    others = SetAcl(str(tree / "d" / "f"), (AclSpec("u", 2200, 4),))
    with pytest.raises(UsageError, match=r"refusing to chgrp .* set-id bits or file capabilities"):
        apply([others, Chgrp(str(exe), 2200)], journal_dir=journals)
    assert dump_hash(tree) == before  # the first action was not applied either
    assert not os.path.exists(journals)


# -- groups -------------------------------------------------------------------------------------
@pytest.fixture
def free_group() -> Iterator[tuple[str, int]]:
    rng = random.Random()
    while True:
        gid = rng.randrange(61000, 61999)
        name = f"unroot-t{gid}"
        try:
            grp.getgrgid(gid)
        except KeyError:
            break
    yield name, gid
    if subprocess.run(["getent", "group", name], capture_output=True, check=False).returncode == 0:
        subprocess.run(["groupdel", name], check=False)


def test_groupadd_and_undo_with_a_real_group(free_group: tuple[str, int], journals: str) -> None:
    name, gid = free_group
    done = apply([Groupadd(name, gid)], journal_dir=journals)
    assert grp.getgrnam(name).gr_gid == gid
    gshadow = Path("/etc/gshadow").read_text()
    assert any(line.startswith(f"{name}:") for line in gshadow.splitlines())
    assert apply([Groupadd(name, gid)], journal_dir=journals).journal is None
    assert done.journal is not None
    undo(done.journal)
    with pytest.raises(KeyError):
        grp.getgrnam(name)
    assert f"\n{name}:" not in "\n" + Path("/etc/gshadow").read_text()


def test_groupadd_refuses_a_gid_or_name_that_exists_differently(
    free_group: tuple[str, int], journals: str
) -> None:
    name, gid = free_group
    daemon = grp.getgrnam("daemon").gr_gid
    with pytest.raises(UsageError, match=f"gid {daemon} already belongs to group daemon"):
        apply([Groupadd(name, daemon)], journal_dir=journals)
    with pytest.raises(UsageError, match=f"group daemon already exists with gid {daemon}, not"):
        apply([Groupadd("daemon", gid)], journal_dir=journals)
    assert not os.path.exists(journals)


def test_undo_refuses_when_a_group_gained_members(
    free_group: tuple[str, int], journals: str
) -> None:
    name, gid = free_group
    done = apply([Groupadd(name, gid)], journal_dir=journals)
    subprocess.run(["gpasswd", "-a", "root", name], check=True, capture_output=True)
    assert done.journal is not None
    with pytest.raises(UsageError, match=f"undo refused, nothing changed: group {name}'s members"):
        undo(done.journal)
    assert grp.getgrnam(name).gr_gid == gid


# -- sysctl in a private network namespace ------------------------------------------------------
SYSCTL_CHILD = """
import json, os, sys
from unroot.doctor.actions import SysctlDropIn
from unroot.doctor.apply import apply, undo
etc, journals = sys.argv[1], sys.argv[2]
running = "/proc/sys/net/ipv4/ip_unprivileged_port_start"
def value():
    return open(running).read().strip()
out = {"before": value()}
action = SysctlDropIn(80, slug="blog", etc=etc)
out["command"] = action.command
done = apply([action], journal_dir=journals)
out["after"] = value()
out["file"] = open(action.path).read()
out["second"] = apply([action], journal_dir=journals).journal
undo(done.journal)
out["undone"] = value()
out["exists"] = [os.path.exists(action.path), os.path.exists(os.path.dirname(action.path))]
print(json.dumps(out))
"""


def test_sysctl_drop_in_and_running_value_in_a_private_netns(tmp_path: Path) -> None:
    host = Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text()
    etc = tmp_path / "etc"
    etc.mkdir()
    done = subprocess.run(
        ["unshare", "--net", sys.executable, "-c", SYSCTL_CHILD, str(etc), str(tmp_path / "j")],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    out = json.loads(done.stdout)
    assert out["before"] == "1024"  # a new netns starts with the default
    assert out["after"] == "80"
    assert out["file"] == "net.ipv4.ip_unprivileged_port_start = 80\n"
    assert out["command"] == (
        f"printf 'net.ipv4.ip_unprivileged_port_start = 80\\n' > {etc}/sysctl.d/60-unroot-blog.conf"
        f" && sysctl -p {etc}/sysctl.d/60-unroot-blog.conf"
    )
    assert out["second"] is None
    assert out["undone"] == "1024"
    assert out["exists"] == [False, False]  # sysctl.d was created by the apply, removed by undo
    assert Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text() == host


# -- rollback, refusals, swaps ------------------------------------------------------------------
@pytest.fixture
def readonly_bind(tmp_path: Path) -> Iterator[Path]:
    source, target = tmp_path / "rw", tmp_path / "ro"
    source.mkdir()
    target.mkdir()
    (source / "g").write_bytes(b"g\n")
    subprocess.run(["mount", "--bind", str(source), str(target)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(target)], check=True)
        yield target
    finally:
        subprocess.run(["umount", str(target)], check=True)


def test_a_failure_halfway_rolls_back_everything_applied(
    tree: Path, journals: str, readonly_bind: Path
) -> None:
    before = dump_hash(tree)
    actions = [
        SetAcl(str(tree / "d"), (AclSpec("u", 2200, 1),)),
        Setcap(str(tree / "d" / "exe"), "cap_net_bind_service=+ep"),
        CreateFile(str(tree / "new" / "file"), b"x", 0o644),
        Chmod(str(readonly_bind / "g"), "g", 2),
        SetAcl(str(tree / "d" / "f"), (AclSpec("u", 2200, 4),)),
    ]
    with pytest.raises(EnvironmentProblem) as caught:
        apply(actions, journal_dir=journals)
    message = str(caught.value)
    assert "\n" not in message
    assert f"applying `chmod g+w {readonly_bind}/g` failed" in message
    assert "Read-only file system" in message
    assert "rolled back" in message
    assert dump_hash(tree) == before
    (name,) = os.listdir(journals)
    assert name.endswith(".rolledback.json")
    with pytest.raises(UsageError, match="nothing to undo"):
        jrnl.newest(journals)


def test_undo_refuses_a_node_changed_since_and_changes_nothing(tree: Path, journals: str) -> None:
    f = tree / "d" / "f"
    done = apply(
        [
            SetAcl(str(tree / "d"), (AclSpec("u", 2200, 1),)),
            SetAcl(str(f), (AclSpec("u", 2200, 4),)),
        ],
        journal_dir=journals,
    )
    os.chmod(f, 0o600)  # an administrator's change since the apply
    after = dump_hash(tree)
    assert done.journal is not None
    with pytest.raises(
        UsageError, match=rf"undo refused, nothing changed: {f}: mode 0640, now 0600"
    ):
        undo(done.journal)
    assert dump_hash(tree) == after
    assert os.path.exists(done.journal)


def test_undo_refuses_a_file_replaced_since(tree: Path, journals: str) -> None:
    f = tree / "d" / "f"
    done = apply([SetAcl(str(f), (AclSpec("u", 2200, 4),))], journal_dir=journals)
    copy = tree / "d" / "f.new"
    subprocess.run(["cp", "-a", str(f), str(copy)], check=True)  # same mode, owner, xattrs
    os.rename(copy, f)
    assert done.journal is not None
    with pytest.raises(UsageError, match="replaced"):
        undo(done.journal)


def test_a_symlink_swapped_in_after_the_snapshot_redirects_nothing(
    tree: Path, journals: str
) -> None:
    elsewhere = tree / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "f").write_bytes(b"not this one\n")
    target = tree / "d" / "sub" / "f"
    target.write_bytes(b"this one\n")

    def swap() -> None:  # between the snapshot and the setxattr
        shutil.rmtree(tree / "d" / "sub")
        os.symlink(elsewhere, tree / "d" / "sub")

    with pytest.raises(UsageError, match="not the inode recorded"):
        apply(
            [Restart("swap", "true", swap), SetAcl(str(target), (AclSpec("u", 2200, 4),))],
            journal_dir=journals,
        )
    assert _xattr(elsewhere / "f", ACCESS) is None


def test_restart_runs_only_when_listed(journals: str) -> None:
    calls: list[str] = []
    action = Restart(
        "rootless dockerd of alice", "systemctl --user restart docker", lambda: calls.append("x")
    )
    assert action.command == "systemctl --user restart docker"
    done = apply([action], journal_dir=journals)
    assert calls == ["x"]
    assert done.journal is not None
    assert undo(done.journal).restored == ()


# -- the model's argv ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (("setfacl", "-m", "u:2200:x", "/etc/le/live"), "setfacl -m u:2200:x /etc/le/live"),
        (("setfacl", "-m", "g:2200:rx", "/a b"), "setfacl -m g:2200:rx '/a b'"),
        (("setfacl", "-d", "-m", "g:2200:r", "/d"), "setfacl -d -m g:2200:r /d"),
        (("chgrp", "2200", "/k"), "chgrp 2200 /k"),
        (("chmod", "g+r", "/k"), "chmod g+r /k"),
        (("chmod", "u+rx", "/k"), "chmod u+rx /k"),
        (("setcap", "cap_net_bind_service=+ep", "/b"), "setcap cap_net_bind_service=ep /b"),
    ],
)  # fmt: skip
def test_from_argv(argv: tuple[str, ...], command: str) -> None:
    assert from_argv(argv).command == command


@pytest.mark.parametrize(
    "argv",
    [
        (), ("rm", "-rf", "/"), ("chmod", "o+r", "/k"), ("chmod", "-R", "g+r", "/k"),
        ("chmod", "0644", "/k"), ("setfacl", "-R", "-m", "u:1:r", "/k"),
        ("setfacl", "-m", "u:bob:r", "/k"), ("setfacl", "-m", "m::rwx", "/k"),
        ("chgrp", "staff", "/k"), ("chgrp", "1", "relative"),
        ("setfacl", "-m", "u:1:r", "/k", "/l"), ("setcap", "cap_bogus=ep", "/b"),
        ("chown", "1", "/k"),
    ],
)  # fmt: skip
def test_from_argv_refuses_anything_else(argv: tuple[str, ...]) -> None:
    with pytest.raises(UsageError):
        from_argv(argv)


def test_setgid_directory_chgrp_and_acl_undone_with_its_setgid_bit(
    tmp_path: Path, journals: str
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o2770)
    (shared / "x").write_bytes(b"x")
    (shared / "x").chmod(0o2750)  # a setgid (mandatory-locking style) file: ACL only
    before = dump_hash(tmp_path / "shared")
    done = apply(
        [
            Chgrp(str(shared), 2200),
            SetAcl(str(shared), (AclSpec("u", 2200, 7),)),
            SetAcl(str(shared / "x"), (AclSpec("u", 2200, 4),)),
        ],
        journal_dir=journals,
    )
    assert shared.stat().st_mode & 0o7777 == 0o2770
    assert (shared / "x").stat().st_mode & 0o7000 == 0o2000
    assert done.journal is not None
    undo(done.journal)
    assert dump_hash(tmp_path / "shared") == before
