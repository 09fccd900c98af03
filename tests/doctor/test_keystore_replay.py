"""Certbot renewals replayed call for call against the renewal-proof plan, read by uid/gid 2200
through the real kernel.

The trees live under /var/tmp (ext4 on the development machines, with POSIX ACLs; ``world_dir``
checks that setting an ACL works and fails otherwise); pytest's tmp_path is below a 0700
directory uid 2200 cannot search.  The four replayed facts of :mod:`unroot.doctor.keystore`'s
table are asserted with the real ``setfacl``/``chgrp``/``chmod`` tools, then the plan unroot
builds from the model's own fix.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from _certbot import can_read, dump_hash, getfacl, new_lineage, renew, run_deploy_hooks, world_dir

from unroot.doctor.actions import Action, from_argv
from unroot.doctor.apply import apply, undo
from unroot.doctor.keystore import Lineage, certbot_plan, lineage_of, renewal_plan
from unroot.errors import UsageError
from unroot.facts.fs import gather_tree
from unroot.model.access import access_verdict
from unroot.model.acl import Acl
from unroot.model.creds import Creds, Ids

pytestmark = pytest.mark.root
NAME = "blog.example"
BLOG = Creds(uid=Ids.same(2200), gid=Ids.same(2200))


@pytest.fixture
def root() -> Iterator[Path]:
    with world_dir("unroot-certbot-") as base:
        letsencrypt = base / "letsencrypt"
        letsencrypt.mkdir(mode=0o755)
        new_lineage(letsencrypt, NAME)
        yield letsencrypt


@pytest.fixture
def journals(tmp_path: Path) -> str:
    return str(tmp_path / "journal")


def live_key(root: Path, name: str = NAME) -> Path:
    return root / "live" / name / "privkey.pem"


def model_fix(asked: Path) -> list[Action]:
    """The model's first fix for gid 2200 reading ``asked`` (the ACL one), as actions."""
    verdict = access_verdict(gather_tree(str(asked)), str(asked), BLOG, "r", fix_group=2200)
    assert not verdict.allowed
    steps = next(fix.steps for fix in verdict.fixes if fix.steps and fix.steps[0][0] == "setfacl")
    return [from_argv(step) for step in steps]


def sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


def acl_of(path: Path) -> Acl:
    return Acl.decode(os.getxattr(path, "system.posix_acl_access"))


# -- the four facts, with the real tools --------------------------------------------------------
def _search(root: Path) -> None:
    sh("setfacl", "-m", "g:2200:x", str(root / "live"), str(root / "archive"))


def test_an_entry_on_the_current_key_only_is_lost_on_renewal(root: Path) -> None:
    _search(root)
    sh("setfacl", "-m", "g:2200:r", str(root / "archive" / NAME / "privkey1.pem"))
    assert can_read(live_key(root))
    renew(root, NAME, 1)
    assert not can_read(live_key(root))
    new = root / "archive" / NAME / "privkey2.pem"
    with pytest.raises(OSError, match="No data"):
        os.getxattr(new, "system.posix_acl_access")
    # certbot carried the old key's group bits (its mask, r) into a plain mode: 0640
    assert new.stat().st_mode & 0o777 == 0o640


def test_a_default_acl_only_is_masked_out_on_renewal(root: Path) -> None:
    _search(root)
    sh("setfacl", "-d", "-m", "g:2200:r", str(root / "archive" / NAME))
    assert not can_read(live_key(root))
    renew(root, NAME, 1)
    assert not can_read(live_key(root))
    acl = acl_of(root / "archive" / NAME / "privkey2.pem")
    assert acl.groups == {2200: 4}
    assert acl.mask == 0  # created 0600: the inherited mask is ---, and the old key's was too
    assert "#effective:---" in getfacl(root / "archive" / NAME / "privkey2.pem")


def test_a_default_acl_and_the_entry_on_the_key_survive_renewal(root: Path) -> None:
    _search(root)
    sh("setfacl", "-d", "-m", "g:2200:r", str(root / "archive" / NAME))
    sh("setfacl", "-m", "g:2200:r", str(root / "archive" / NAME / "privkey1.pem"))
    renew(root, NAME, 1)
    assert can_read(live_key(root))
    assert acl_of(root / "archive" / NAME / "privkey2.pem").mask == 4


def test_chgrp_and_0640_on_the_key_survive_renewal(root: Path) -> None:
    _search(root)
    key = root / "archive" / NAME / "privkey1.pem"
    sh("chgrp", "2200", str(key))
    sh("chmod", "0640", str(key))
    renew(root, NAME, 1)
    new = root / "archive" / NAME / "privkey2.pem"
    assert (new.stat().st_gid, new.stat().st_mode & 0o777) == (2200, 0o640)
    assert can_read(live_key(root))


# -- unroot's plan -------------------------------------------------------------------------------
def test_the_model_fix_alone_is_lost_on_renewal_and_the_plan_is_not(
    root: Path, journals: str
) -> None:
    asked = live_key(root)
    proposed = model_fix(asked)
    assert [a.command for a in proposed] == [
        f"setfacl -m g:2200:x {root}/live",
        f"setfacl -m g:2200:x {root}/archive",
        f"setfacl -m g:2200:r {root}/archive/{NAME}/privkey1.pem",
    ]
    plan = certbot_plan(str(asked), os.path.realpath(asked), proposed)
    assert plan is not None
    assert plan.lineage == Lineage(str(root), NAME)
    commands = [a.command for a in plan.actions]
    assert f"setfacl -d -m g::-,g:2200:r {root}/archive/{NAME}" in commands
    assert not any(" o:" in c or "-R" in c or c.startswith("chmod") for c in commands)
    before_other = dump_hash(root)
    assert not can_read(asked)
    done = apply(plan.actions, journal_dir=journals)
    assert can_read(asked)
    assert can_read(root / "live" / NAME / "fullchain.pem")
    assert not can_read(asked, uid=2201, gid=2201)  # nobody else
    for prior in (1, 2):
        renew(root, NAME, prior)
        assert can_read(asked), f"lost after renewal {prior} → {prior + 1}"
        assert not can_read(asked, uid=2201, gid=2201)
    key3 = acl_of(root / "archive" / NAME / "privkey3.pem")
    assert (key3.group_obj, key3.other, key3.groups) == (0, 0, {2200: 4})
    # the renewals left every node the journal recorded in its after-state: undo still works,
    # and the tree is back to the original except the renewals' new files and links
    assert done.journal is not None
    undo(done.journal)
    assert not can_read(asked)
    assert dump_hash(root) != before_other  # privkey2/3 etc. exist now


def test_reuse_key_renewal_links_the_old_key_and_keeps_access(root: Path, journals: str) -> None:
    asked = live_key(root)
    plan = certbot_plan(str(asked), os.path.realpath(asked), model_fix(asked))
    assert plan is not None
    apply(plan.actions, journal_dir=journals)
    renew(root, NAME, 1, reuse_key=True)
    new = root / "archive" / NAME / "privkey2.pem"
    assert new.is_symlink()
    assert os.readlink(new) == "privkey1.pem"  # a symlink, not a copy or a hard link
    assert os.path.realpath(asked) == str(root / "archive" / NAME / "privkey1.pem")
    assert can_read(asked)
    renew(root, NAME, 2)  # the next fresh key: the old one is reached through the link
    assert can_read(asked)


def test_a_new_lineage_gets_the_entries_from_the_deploy_hook(root: Path, journals: str) -> None:
    asked = live_key(root)
    plan = certbot_plan(str(asked), os.path.realpath(asked), model_fix(asked))
    assert plan is not None
    assert plan.hook.path == f"{root}/renewal-hooks/deploy/60-unroot-2200.sh"
    done = apply(plan.with_hook(), journal_dir=journals)
    hook = Path(plan.hook.path)
    assert hook.stat().st_mode & 0o777 == 0o755
    # a re-issue: certbot makes blog.example-0001 with a 0600 key, then runs the deploy hooks
    again = f"{NAME}-0001"
    new_lineage(root, again)
    assert not can_read(live_key(root, again))
    run_deploy_hooks(root, again, NAME)
    assert can_read(live_key(root, again))
    renew(root, again, 1)
    assert can_read(live_key(root, again))
    # another site's lineage is not this identity's business
    new_lineage(root, "other.example")
    run_deploy_hooks(root, "other.example", "other.example")
    assert not can_read(live_key(root, "other.example"))
    assert done.journal is not None


def test_undo_restores_the_tree_byte_for_byte(root: Path, journals: str) -> None:
    before = dump_hash(root)
    asked = live_key(root)
    plan = certbot_plan(str(asked), os.path.realpath(asked), model_fix(asked))
    assert plan is not None
    done = apply(plan.with_hook(), journal_dir=journals)
    assert dump_hash(root) != before
    assert done.journal is not None
    undo(done.journal)
    assert dump_hash(root) == before


# -- recognising a lineage (pure) ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("asked", "resolved", "expected"),
    [
        ("/etc/letsencrypt/live/a.org/privkey.pem", "/etc/letsencrypt/archive/a.org/privkey3.pem",
         Lineage("/etc/letsencrypt", "a.org")),
        ("/etc/le/archive/a.org/privkey1.pem", "/etc/le/archive/a.org/privkey1.pem",
         Lineage("/etc/le", "a.org")),
        ("/etc/letsencrypt/live/a.org", "/etc/letsencrypt/live/a.org",
         Lineage("/etc/letsencrypt", "a.org")),
        ("/srv/le/live/a.org/fullchain.pem", "/srv/le/archive/a.org/fullchain12.pem",
         Lineage("/srv/le", "a.org")),
        ("/etc/letsencrypt/live/a.org/privkey.pem", "/etc/letsencrypt/archive/b.org/privkey1.pem",
         None),
        ("/etc/ssl/private/a.key", "/etc/ssl/private/a.key", None),
        ("/etc/letsencrypt/live/a.org/README", "/etc/letsencrypt/live/a.org/README", None),
    ],
)  # fmt: skip
def test_lineage_of(asked: str, resolved: str, expected: Lineage | None) -> None:
    assert lineage_of(asked, resolved) == expected


def test_the_plan_keeps_the_keys_group_and_refuses_anything_but_acl_entries() -> None:
    asked = "/etc/letsencrypt/live/a.org/privkey.pem"
    resolved = "/etc/letsencrypt/archive/a.org/privkey2.pem"
    proposed = [
        from_argv(("setfacl", "-m", "u:2200:x", "/etc/letsencrypt/live")),
        from_argv(("setfacl", "-m", "u:2200:r", resolved)),
    ]
    plan = renewal_plan(asked, resolved, proposed, key_group_perm=4)
    assert plan is not None
    assert [a.command for a in plan.actions] == [
        "setfacl -m u:2200:x /etc/letsencrypt/live",
        f"setfacl -m u:2200:r {resolved}",
        "setfacl -d -m g::r,u:2200:r /etc/letsencrypt/archive/a.org",
    ]
    assert plan.hook.path == "/etc/letsencrypt/renewal-hooks/deploy/60-unroot-u2200.sh"
    assert b"setfacl -m u:2200:r" in plan.hook.content
    assert renewal_plan("/etc/ssl/private/a.key", "/etc/ssl/private/a.key", proposed) is None
    with pytest.raises(UsageError, match="ACL entries only"):
        renewal_plan(asked, resolved, [*proposed, from_argv(("chgrp", "2200", resolved))])
    with pytest.raises(UsageError, match="exactly one identity"):
        renewal_plan(asked, resolved, [*proposed, from_argv(("setfacl", "-m", "g:7:r", resolved))])


def test_asked_about_the_live_directory_the_plan_covers_the_current_files() -> None:
    live_dir = "/etc/le/live/a.org"
    current = [f"/etc/le/archive/a.org/{kind}3.pem" for kind in ("cert", "privkey")]
    proposed = [from_argv(("setfacl", "-m", "g:2200:x", "/etc/le/live"))]
    plan = renewal_plan(live_dir, live_dir, proposed, current=current)
    assert plan is not None
    assert [a.command for a in plan.actions] == [
        "setfacl -m g:2200:x /etc/le/live",
        "setfacl -m g:2200:r /etc/le/archive/a.org/cert3.pem",
        "setfacl -m g:2200:r /etc/le/archive/a.org/privkey3.pem",
        "setfacl -d -m g::-,g:2200:r /etc/le/archive/a.org",
    ]


def test_asked_about_the_live_directory_the_key_is_readable_after_the_plan(
    root: Path, journals: str
) -> None:
    asked = root / "live" / NAME
    verdict = access_verdict(gather_tree(str(asked)), str(asked), BLOG, "x", fix_group=2200)
    steps = next(fix.steps for fix in verdict.fixes if fix.steps)
    plan = certbot_plan(str(asked), str(asked), [from_argv(s) for s in steps])
    assert plan is not None
    assert f"setfacl -m g:2200:x {root}/archive" in [a.command for a in plan.actions]
    apply(plan.actions, journal_dir=journals)
    assert can_read(live_key(root))
    renew(root, NAME, 1)
    assert can_read(live_key(root))
