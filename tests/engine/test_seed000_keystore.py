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

import os
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
