"""``unroot doctor --apply`` then ``unroot undo``, as a user types them, on a certbot lineage:
the group is created, the renewal-proof plan applied, the key readable by the identity across a
replayed renewal, and undo puts the tree and /etc/group back."""

from __future__ import annotations

import grp
import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from _certbot import can_read, dump_hash, new_lineage, renew, world_dir

pytestmark = pytest.mark.root
UNROOT = str(Path(sys.executable).parent / "unroot")
NAME = "blog.example"


@pytest.fixture
def gid() -> Iterator[int]:
    rng = random.Random()
    while True:
        gid = rng.randrange(62000, 62999)
        try:
            grp.getgrgid(gid)
        except KeyError:
            break
    yield gid
    name = f"unroot-{gid}"
    if subprocess.run(["getent", "group", name], capture_output=True, check=False).returncode == 0:
        subprocess.run(["groupdel", name], check=False)


def unroot(state: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "UNROOT_STATE_DIR": str(state)}
    return subprocess.run(
        [UNROOT, *argv], capture_output=True, text=True, env=env, check=False, timeout=120
    )


def test_doctor_apply_then_undo_on_a_certbot_lineage(tmp_path: Path, gid: int) -> None:
    state = tmp_path / "state"
    with world_dir("unroot-doctor-apply-") as base:
        root = base / "letsencrypt"
        root.mkdir(mode=0o755)
        new_lineage(root, NAME)
        key = root / "live" / NAME / "privkey.pem"
        before = dump_hash(root)
        ask = ["doctor", "--user", str(gid), "--group", str(gid), "--read", str(key)]
        done = unroot(state, *ask, "--apply", "--format", "json")
        assert done.returncode == 0, done.stderr
        data = json.loads(done.stdout)
        commands = [row["command"] for row in data["applied"]]
        assert commands[0] == f"groupadd -g {gid} unroot-{gid}"
        assert f"setfacl -d -m g::-,g:{gid}:r {root}/archive/{NAME}" in commands
        assert all(row["status"] == "applied" for row in data["applied"])
        assert [v["allowed"] for v in data["verdicts"]] == [True]
        assert data["journal"].startswith(f"{state}/journal/")
        assert grp.getgrgid(gid).gr_name == f"unroot-{gid}"
        assert can_read(key, uid=gid, gid=gid)
        again = unroot(state, *ask, "--apply", "--format", "json")
        assert json.loads(again.stdout)["journal"] is None  # nothing left to do
        undone = unroot(state, "undo")
        assert undone.returncode == 0, undone.stderr
        assert dump_hash(root) == before
        with pytest.raises(KeyError):
            grp.getgrgid(gid)
        # once more, with a renewal in between: still readable, and undo still applies
        assert unroot(state, *ask, "--apply").returncode == 0
        renew(root, NAME, 1)
        assert can_read(key, uid=gid, gid=gid)
        assert unroot(state, "undo").returncode == 0
        assert not can_read(key, uid=gid, gid=gid)


def test_the_doctors_step_vocabulary_becomes_actions() -> None:
    from unroot.doctor.remedies import action_of
    from unroot.errors import UsageError

    assert action_of(("groupadd", "-g", "2200", "unroot-2200")).command == (
        "groupadd -g 2200 unroot-2200"
    )
    sysctl = action_of(("unroot:sysctl", "net.ipv4.ip_unprivileged_port_start", "80"))
    assert sysctl is not None
    assert "/etc/sysctl.d/60-unroot-unprivileged-port-start.conf" in sysctl.command
    assert action_of(("unroot:restart", "alice", "docker")) is None  # without --restart
    restart = action_of(("unroot:restart", "alice", "docker"), restart=True)
    assert restart is not None
    assert restart.command == "systemctl --user -M alice@ restart docker.service"
    with pytest.raises(UsageError):
        action_of(("prlimit", "--pid", "1", "--nofile=1048576:1048576"))
