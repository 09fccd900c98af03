"""Seed 000 at the library level, with the real engine: a certbot-shaped /etc/letsencrypt
bind-mounted read-only into a rootful Docker container that runs as ``--user 2200:2200
--network host`` and ``cat``s the key — denied before, readable after unroot's renewal-proof
plan is applied, still readable after a certbot renewal replayed call for call, and after
``undo`` the tree is byte for byte what it was (modes, owners, every xattr, content, inode
numbers: the hash of a canonical dump).

The container uses the offline base image of the engine fixtures (no registry).  The tree is
under /var/tmp (ext4 with ACLs here).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from _engine import Lab

from unroot.doctor.actions import Action, from_argv
from unroot.doctor.apply import apply, undo
from unroot.doctor.keystore import certbot_plan
from unroot.engine.docker import RunOptions
from unroot.facts.fs import gather_tree
from unroot.model.access import access_verdict
from unroot.model.creds import Creds, Ids

# the certbot replay helpers live with the doctor tests
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "doctor"))
from _certbot import dump_hash, new_lineage, renew, world_dir

pytestmark = [pytest.mark.root, pytest.mark.engine]
NAME = "blog.example"
KEY = f"/etc/letsencrypt/live/{NAME}/privkey.pem"


@pytest.fixture
def letsencrypt() -> Iterator[Path]:
    with world_dir("unroot-seed000-") as base:
        root = base / "letsencrypt"
        root.mkdir(mode=0o755)
        new_lineage(root, NAME)
        yield root


def cat_key(lab: Lab, root: Path) -> tuple[bool, str]:
    options = RunOptions(
        user="2200:2200", network="host", extra=("--volume", f"{root}:/etc/letsencrypt:ro")
    )
    done = lab.run(lab.engine.base, ["cat", KEY], options)
    return done.ok, (done.stdout if done.ok else done.stderr).strip()


def plan_for(root: Path) -> list[Action]:
    asked = root / "live" / NAME / "privkey.pem"
    blog = Creds(uid=Ids.same(2200), gid=Ids.same(2200))
    verdict = access_verdict(gather_tree(str(asked)), str(asked), blog, "r", fix_group=2200)
    steps = next(f.steps for f in verdict.fixes if f.steps and f.steps[0][0] == "setfacl")
    plan = certbot_plan(str(asked), os.path.realpath(asked), [from_argv(s) for s in steps])
    assert plan is not None
    return list(plan.actions)


def test_seed000_the_blog_container_reads_its_key_across_renewals_and_undo_restores(
    lab: Lab, letsencrypt: Path, tmp_path: Path
) -> None:
    journals = str(tmp_path / "journal")
    before = dump_hash(letsencrypt)
    readable, said = cat_key(lab, letsencrypt)
    assert not readable
    assert "Permission denied" in said

    # apply, read, undo: byte for byte
    done = apply(plan_for(letsencrypt), journal_dir=journals)
    assert cat_key(lab, letsencrypt) == (True, "KEY 1")
    assert done.journal is not None
    undo(done.journal)
    assert dump_hash(letsencrypt) == before
    assert not cat_key(lab, letsencrypt)[0]

    # apply again, then certbot renews twice: the container reads each new key
    again = apply(plan_for(letsencrypt), journal_dir=journals)
    for prior in (1, 2):
        renew(letsencrypt, NAME, prior)
        assert cat_key(lab, letsencrypt) == (True, f"KEY {prior + 1}")
    assert again.journal is not None
    undo(again.journal)  # every node it recorded is as it left it: undo proceeds
    assert not cat_key(lab, letsencrypt)[0]


def _unroot(env: dict[str, str], *argv: str) -> tuple[int, dict[str, object]]:
    done = subprocess.run(
        [sys.executable, "-m", "unroot", *argv],
        capture_output=True, text=True, timeout=120, check=False, env={**os.environ, **env},
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout) if done.stdout.startswith("{") else {}


def test_seed000_through_the_command_line(lab: Lab, letsencrypt: Path, tmp_path: Path) -> None:
    """The same story as a user runs it: `unroot doctor --container blog --read KEY` says why
    and changes nothing, `--apply` fixes it (the container reads its key, also after a
    renewal), `unroot undo` restores the tree byte for byte."""
    env = {"UNROOT_STATE_DIR": str(tmp_path)}
    options = RunOptions(
        user="2200:2200",
        network="host",
        extra=("--volume", f"{letsencrypt}:/etc/letsencrypt:ro"),
    )
    started = lab.start(lab.engine.base, ["sleep", "600"], options)
    assert started.ok, started.stderr
    blog = started.stdout.strip()

    def reads() -> bool:
        done = subprocess.run(
            ["docker", "exec", blog, "cat", KEY], capture_output=True, timeout=60, check=False
        )
        return done.returncode == 0

    key = str(letsencrypt / "live" / NAME / "privkey.pem")
    before = dump_hash(letsencrypt)
    code, data = _unroot(env, "doctor", "--format", "json", "--container", blog, "--read", key)
    assert code == 1
    assert dump_hash(letsencrypt) == before
    subject = data["subject"]
    assert isinstance(subject, dict)
    assert (subject["uid"], subject["gid"]) == (2200, 2200)
    verdicts = data["verdicts"]
    assert isinstance(verdicts, list)
    asked = next(v for v in verdicts if v["subject"] == key)
    assert (asked["allowed"], asked["errno"]) == (False, "EACCES")
    mount = next(v for v in verdicts if v["subject"] == str(letsencrypt))
    assert mount["allowed"] is True  # the bind mount's source itself is 0755
    assert not reads()

    apply_argv = ("doctor", "--format", "json", "--container", blog, "--read", key, "--apply")
    code, data = _unroot(env, *apply_argv)
    assert code == 0, data
    journal = data["journal"]
    assert isinstance(journal, str)
    assert reads()
    assert _unroot(env, "undo", journal)[0] == 0
    assert dump_hash(letsencrypt) == before, "undo restores the tree byte for byte"
    assert not reads()

    code, data = _unroot(env, *apply_argv)
    assert code == 0, data
    journal = data["journal"]
    assert isinstance(journal, str)
    renew(letsencrypt, NAME, 1)
    assert reads(), "still readable after certbot renews"
    code, data = _unroot(env, *apply_argv)
    assert (code, data["applied"], data["journal"]) == (0, [], None), "nothing left to do"
    assert _unroot(env, "undo", journal)[0] == 0  # also removes the group it created
