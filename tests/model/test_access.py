"""Path access — path_resolution(7), acl(5), capabilities(7), the --fs-json format."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unroot.errors import ParseError, UnrootError
from unroot.model.access import Inode, access_verdict, mode_string, parse_want, resolve
from unroot.model.acl import ACL_GROUP, ACL_USER, Acl
from unroot.model.caps import CapSet
from unroot.model.creds import Creds, Ids
from unroot.model.fsjson import dump_fs_json, load_fs_json
from unroot.model.userns import IdMap, UserNs


def who(
    uid: int, gid: int | None = None, *groups: int, caps: str = "", fsuid: int | None = None
) -> Creds:
    gid = uid if gid is None else gid
    effective = CapSet.parse(caps)
    return Creds(
        uid=Ids(uid, uid, uid, uid if fsuid is None else fsuid),
        gid=Ids.same(gid),
        groups=frozenset(groups),
        effective=effective,
        permitted=effective,
    )


def tree(spec: dict[str, Any]) -> dict[str, Inode]:
    return load_fs_json(spec)


def d(mode: str, uid: int = 0, gid: int = 0, **more: Any) -> dict[str, Any]:
    return {"type": "dir", "mode": mode, "uid": uid, "gid": gid, **more}


def f(mode: str, uid: int = 0, gid: int = 0, **more: Any) -> dict[str, Any]:
    return {"type": "file", "mode": mode, "uid": uid, "gid": gid, **more}


def ln(target: str, uid: int = 0) -> dict[str, Any]:
    return {"type": "symlink", "target": target, "uid": uid}


# -- seed 000: the blog container reading /etc/letsencrypt as gid 2200 -----------------------
LETSENCRYPT = {
    "/etc": d("0755"),
    "/etc/letsencrypt": d("0755"),
    "/etc/letsencrypt/live": d("0700"),
    "/etc/letsencrypt/archive": d("0700"),
    "/etc/letsencrypt/archive/blog": d("0755"),
    "/etc/letsencrypt/archive/blog/privkey1.pem": f("0600"),
    "/etc/letsencrypt/live/blog": d("0755"),
    "/etc/letsencrypt/live/blog/privkey.pem": ln("../../archive/blog/privkey1.pem"),
}
KEY = "/etc/letsencrypt/live/blog/privkey.pem"
BLOG = who(2200, 2200)  # the container runs as uid/gid 2200 (Docker: no user namespace)


def test_seed_000_root_only_letsencrypt_is_denied_at_live() -> None:
    verdict = access_verdict(tree(LETSENCRYPT), KEY, BLOG, fix_group=2200)
    assert (verdict.allowed, verdict.errno) == (False, "EACCES")
    assert verdict.extra["denied_at"] == "/etc/letsencrypt/live"
    assert verdict.reasons[-1].text == (
        "search (x) denied: /etc/letsencrypt/live is drwx------ root:root: uid 2200 is not the "
        "owner, not in group 0 (its groups: 2200), and 'other' has no x; the process has "
        "neither CAP_DAC_READ_SEARCH nor CAP_DAC_OVERRIDE"
    )
    first = verdict.fixes[0].command
    assert first == (
        "setfacl -m g:2200:x /etc/letsencrypt/live /etc/letsencrypt/archive && "
        "setfacl -m g:2200:r /etc/letsencrypt/archive/blog/privkey1.pem"
    )
    # live/ and archive/ are key stores (model/protected.py): no chgrp of a store that serves
    # other services too, and a note on keys that are another service's
    assert not any("chgrp" in (fix.command or "") for fix in verdict.fixes)
    note = verdict.fixes[1]
    assert note.command is None
    assert note.protected is not None
    assert note.protected.kind == "key-store"
    assert "deploy hook" in note.why


def test_seed_000_group_granted_read_via_acl_is_allowed() -> None:
    spec = dict(LETSENCRYPT)
    acl_dir = "user::rwx,group::---,group:2200:r-x,mask::r-x,other::---"
    spec["/etc/letsencrypt/live"] = d("0700", acl=acl_dir)
    spec["/etc/letsencrypt/archive"] = d("0700", acl=acl_dir)
    spec["/etc/letsencrypt/archive/blog/privkey1.pem"] = f(
        "0600", acl="user::rw-,group::---,group:2200:r--,mask::r--,other::---"
    )
    verdict = access_verdict(tree(spec), KEY, BLOG)
    assert verdict.allowed, verdict.reasons
    assert verdict.errno is None
    assert verdict.extra["denied_at"] is None
    assert verdict.reasons[-1].code == "acl-group"
    # the same key, but the container runs as uid 1000 with gid 0 (`--user 1000`, no group)
    assert access_verdict(tree(spec), KEY, who(1000, 0)).errno == "EACCES"


# -- the table ------------------------------------------------------------------------------
BASE = {"/srv": d("0755"), "/tmp": d("1777")}
CASES: list[tuple[str, dict[str, Any], str, Creds, str, str | None, str | None]] = [
    # (why — the man page, tree, path, creds, want, errno, denied_at)
    (
        "path_resolution(7): the owner's bits decide alone, even if group/other grant more",
        {"/srv/f": f("0077", 1000, 1000)},
        "/srv/f",
        who(1000, 1000),
        "r",
        "EACCES",
        "/srv/f",
    ),
    (
        "path_resolution(7): the group bits when the file's group is a supplementary group",
        {"/srv/f": f("0640", 0, 2200)},
        "/srv/f",
        who(1000, 1000, 2200),
        "r",
        None,
        None,
    ),
    (
        "path_resolution(7): group bits deny writes",
        {"/srv/f": f("0646", 0, 2200)},
        "/srv/f",
        who(1000, 1000, 2200),
        "w",
        "EACCES",
        "/srv/f",
    ),
    (
        "path_resolution(7): 'other' for everyone else",
        {"/srv/f": f("0604")},
        "/srv/f",
        who(1000),
        "r",
        None,
        None,
    ),
    (
        "path_resolution(7): search permission on every directory of the path",
        {"/srv/a": d("0700"), "/srv/a/b": d("0755"), "/srv/a/b/f": f("0644")},
        "/srv/a/b/f",
        who(1000),
        "r",
        "EACCES",
        "/srv/a",
    ),
    (
        "path_resolution(7): read permission on a directory is not search permission",
        {"/srv/a": d("0744"), "/srv/a/f": f("0644")},
        "/srv/a/f",
        who(1000),
        "r",
        "EACCES",
        "/srv/a",
    ),
    (
        "acl(5): a named user entry, ANDed with the mask",
        {"/srv/f": f("0600", acl="user::rw-,user:1000:rw-,group::---,mask::r--,other::---")},
        "/srv/f",
        who(1000),
        "w",
        "EACCES",
        "/srv/f",
    ),
    (
        "acl(5): a named user entry grants what the mask lets through",
        {"/srv/f": f("0600", acl="user::rw-,user:1000:rw-,group::---,mask::r--,other::---")},
        "/srv/f",
        who(1000),
        "r",
        None,
        None,
    ),
    (
        "acl(5): a matching group entry that lacks the bits denies without looking at other",
        {"/srv/f": f("0604", acl="user::rw-,group::---,group:2200:---,mask::rw-,other::r--")},
        "/srv/f",
        who(1000, 1000, 2200),
        "r",
        "EACCES",
        "/srv/f",
    ),
    (
        "acl(5): any matching group entry that grants all bits allows",
        {
            "/srv/f": f(
                "0600",
                acl="user::rw-,group::---,group:2200:r--,group:3000:---,mask::r--,other::---",
            )
        },
        "/srv/f",
        who(1000, 3000, 2200),
        "r",
        None,
        None,
    ),
    (
        "acl(5): no entry matches: other:: decides",
        {"/srv/f": f("0604", acl="user::rw-,user:7:rw-,group::---,mask::rw-,other::r--")},
        "/srv/f",
        who(1000),
        "r",
        None,
        None,
    ),
    (
        "fs/namei.c acl_permission_check: an ACL whose mask is --- is not consulted at all",
        {"/srv/f": f("0604", acl="user::rw-,user:1000:r--,group::r--,mask::---,other::r--")},
        "/srv/f",
        who(2000),
        "r",
        None,
        None,
    ),
    (
        "capabilities(7) CAP_DAC_READ_SEARCH: read any file",
        {"/srv/f": f("0000")},
        "/srv/f",
        who(1000, caps="cap_dac_read_search"),
        "r",
        None,
        None,
    ),
    (
        "capabilities(7) CAP_DAC_READ_SEARCH: ... but not write it",
        {"/srv/f": f("0000")},
        "/srv/f",
        who(1000, caps="cap_dac_read_search"),
        "w",
        "EACCES",
        "/srv/f",
    ),
    (
        "capabilities(7) CAP_DAC_READ_SEARCH: read and search directories",
        {"/srv/a": d("0000"), "/srv/a/f": f("0004")},
        "/srv/a/f",
        who(1000, caps="cap_dac_read_search"),
        "r",
        None,
        None,
    ),
    (
        "capabilities(7) CAP_DAC_OVERRIDE: write anything",
        {"/srv/f": f("0000")},
        "/srv/f",
        who(1000, caps="cap_dac_override"),
        "rw",
        None,
        None,
    ),
    (
        "capabilities(7) CAP_DAC_OVERRIDE: not execute a file without any x bit",
        {"/srv/f": f("0644")},
        "/srv/f",
        who(0, caps="cap_dac_override"),
        "x",
        "EACCES",
        "/srv/f",
    ),
    (
        "capabilities(7) CAP_DAC_OVERRIDE: execute when some x bit is set",
        {"/srv/f": f("0100", 7)},
        "/srv/f",
        who(1000, caps="cap_dac_override"),
        "x",
        None,
        None,
    ),
    (
        "capabilities(7) CAP_DAC_OVERRIDE: search a directory without any x bit",
        {"/srv/a": d("0600"), "/srv/a/f": f("0644")},
        "/srv/a/f",
        who(1000, caps="cap_dac_override"),
        "r",
        None,
        None,
    ),
    (
        "credentials(7): the filesystem uid is what counts, not the effective uid",
        {"/srv/f": f("0600", 1000)},
        "/srv/f",
        who(0, fsuid=1000),
        "r",
        None,
        None,
    ),
    (
        "path_resolution(7): ENOENT for a missing component",
        {},
        "/srv/nope/f",
        who(0),
        "r",
        "ENOENT",
        "/srv/nope",
    ),
    (
        "path_resolution(7): ENOTDIR when a non-directory is used as one",
        {"/srv/f": f("0644")},
        "/srv/f/x",
        who(0),
        "r",
        "ENOTDIR",
        "/srv/f",
    ),
    (
        "path_resolution(7): a trailing slash requires a directory",
        {"/srv/f": f("0644")},
        "/srv/f/",
        who(0),
        "r",
        "ENOTDIR",
        "/srv/f",
    ),
    (
        "mount(8) ro: EROFS only after the permission check passed",
        {"/srv/f": f("0644", readonly=True)},
        "/srv/f",
        who(1000),
        "w",
        "EACCES",
        "/srv/f",
    ),
    (
        "mount(8) ro: EROFS once the permission check passed",
        {"/srv/f": f("0644", readonly=True)},
        "/srv/f",
        who(0, caps="all"),
        "w",
        "EROFS",
        "/srv/f",
    ),
    (
        "mount(8) ro: reads are fine",
        {"/srv/f": f("0644", readonly=True)},
        "/srv/f",
        who(1000),
        "r",
        None,
        None,
    ),
    (
        "fs/namei.c sb_permission: a read-only filesystem refuses writes before the DAC check",
        {"/srv/f": f("0600", readonly_fs=True)},
        "/srv/f",
        who(1000),
        "w",
        "EROFS",
        "/srv/f",
    ),
    (
        "open(2)/access(2): devices stay writable on a read-only mount",
        {"/srv/null": {"type": "chr", "mode": "0666", "readonly": True}},
        "/srv/null",
        who(1000),
        "w",
        None,
        None,
    ),
    (
        "chattr(1) +i: nobody may write, not even root",
        {"/srv/f": f("0666", immutable=True)},
        "/srv/f",
        who(0, caps="all"),
        "w",
        "EPERM",
        "/srv/f",
    ),
    (
        "mount(8) noexec: no execution of regular files, even for root",
        {"/srv/f": f("0755", noexec=True)},
        "/srv/f",
        who(0, caps="all"),
        "x",
        "EACCES",
        "/srv/f",
    ),
    (
        "mount(8) noexec: directories stay searchable",
        {"/srv/a": d("0755", noexec=True)},
        "/srv/a",
        who(1000),
        "x",
        None,
        None,
    ),
    (
        "access(2) F_OK: existence needs only search permission on the way",
        {"/srv/f": f("0000")},
        "/srv/f",
        who(1000),
        "",
        None,
        None,
    ),
]


@pytest.mark.parametrize(
    ("spec", "path", "creds", "want", "errno", "denied_at"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_table(
    *,
    spec: dict[str, Any],
    path: str,
    creds: Creds,
    want: str,
    errno: str | None,
    denied_at: str | None,
) -> None:
    verdict = access_verdict(tree({**BASE, **spec}), path, creds, want)
    assert (verdict.errno, verdict.extra["denied_at"]) == (errno, denied_at), verdict.reasons
    assert verdict.allowed is (errno is None)
    assert verdict.to_json()["denied_at"] == denied_at


def test_capabilities_need_the_inode_mapped_in_the_callers_user_namespace() -> None:
    # capabilities(7): "the inode's UID and GID are mapped into the caller's user namespace"
    spec = tree({"/srv/f": f("0600", 0, 0), "/srv/g": f("0600", 1000, 1000)})
    rootless = UserNs(IdMap.parse("0 1000 1\n1 100000 65536"), IdMap.parse("0 1000 1"))
    creds = who(1000, caps="cap_dac_override")  # root of a rootless container: kernel uid 1000
    denied = access_verdict(spec, "/srv/f", creds, "r", userns=rootless)
    assert denied.errno == "EACCES"
    assert "not mapped" in denied.reasons[-1].text
    assert access_verdict(spec, "/srv/f", creds, "r").allowed  # the initial namespace
    mapped = access_verdict(spec, "/srv/g", who(5, caps="cap_dac_override"), "r", userns=rootless)
    assert mapped.allowed


# -- symlinks ---------------------------------------------------------------------------------
SYMLINKS = {
    "/srv": d("0755"),
    "/srv/a": d("0755"),
    "/srv/a/b": d("0711"),
    "/srv/a/b/f": f("0644"),
    "/srv/abs": ln("/srv/a/b"),
    "/srv/a/rel": ln("b/f"),
    "/srv/a/up": ln("../a/b"),
    "/srv/a/dangling": ln("nothing"),
    "/srv/a/self": ln("self"),
    "/srv/c": d("0700"),
    "/srv/c/link": ln("/srv/a/b/f"),
    "/srv/to-c": ln("/srv/c"),
}


@pytest.mark.parametrize(
    ("path", "final", "errno"),
    [
        ("/srv/abs/f", "/srv/a/b/f", None),  # an absolute target restarts from /
        ("/srv/a/rel", "/srv/a/b/f", None),  # relative: from the symlink's directory
        ("/srv/a/up/f", "/srv/a/b/f", None),
        ("/srv/abs/..", "/srv/a", None),  # ".." of a followed link: its target's parent
        ("/srv/a/dangling", None, "ENOENT"),
        ("/srv/a/self", None, "ELOOP"),
        ("/srv/a/rel/", None, "ENOTDIR"),
        ("/srv/./a/../a//b/f", "/srv/a/b/f", None),
        ("/..", "/", None),  # "/.." is "/"
    ],
)
def test_resolution(path: str, final: str | None, errno: str | None) -> None:
    result = resolve(tree(SYMLINKS), path)
    assert (result.path, result.errno) == (final, errno)


def test_search_permission_is_checked_inside_symlink_targets() -> None:
    # /srv/c is drwx------: reaching /srv/c/link needs search on /srv/c, whatever the link
    verdict = access_verdict(tree(SYMLINKS), "/srv/to-c/link", who(1000), "r")
    assert (verdict.errno, verdict.extra["denied_at"]) == ("EACCES", "/srv/c")
    # and through /srv/abs the walk searches /srv/a/b (--x for others: enough)
    assert access_verdict(tree(SYMLINKS), "/srv/abs/f", who(1000), "r").allowed


@pytest.mark.parametrize(("links", "errno"), [(40, None), (41, "ELOOP")])
def test_forty_symlinks_per_lookup(links: int, errno: str | None) -> None:
    # path_resolution(7): "a maximum of 40 symbolic links ... ELOOP"
    spec: dict[str, Any] = {"/srv/f": f("0644")}
    for i in range(links):
        spec[f"/srv/l{i}"] = ln(f"l{i + 1}" if i + 1 < links else "f")
    verdict = access_verdict(tree(spec), "/srv/l0", who(1000), "r")
    assert verdict.errno == errno


def test_protected_symlinks_in_sticky_world_writable_directories() -> None:
    # proc(5) /proc/sys/fs/protected_symlinks
    spec = tree(
        {
            "/tmp": d("1777"),
            "/tmp/evil": ln("/etc/shadow", uid=1000),
            "/tmp/dir": ln("/etc", uid=1000),
            "/etc/shadow": f("0640", 0, 42),
        }
    )
    root = who(0, caps="all")
    denied = access_verdict(spec, "/tmp/evil", root, "r")
    assert (denied.errno, denied.extra["denied_at"]) == ("EACCES", "/tmp/evil")
    assert denied.reasons[-1].code == "protected-symlink"
    assert access_verdict(spec, "/tmp/evil", root, "r", protected_symlinks=False).allowed
    assert access_verdict(spec, "/tmp/evil", who(1000, 42), "r").allowed  # the link's owner
    assert access_verdict(spec, "/tmp/dir/shadow", root, "r").allowed  # not the last component


# -- fixes -----------------------------------------------------------------------------------
def apply_fix(tree_: Mapping[str, Inode], command: str) -> dict[str, Inode]:
    """A small interpreter for the commands the fixes emit (setfacl -m, chmod u+/g+, chgrp)."""
    out = dict(tree_)
    for part in command.split(" && "):
        argv = shlex.split(part)
        if argv[0] == "setfacl":
            assert argv[1] == "-m"
            letter, ident, perms = argv[2].split(":")
            tag = ACL_USER if letter == "u" else ACL_GROUP
            for path in argv[3:]:
                inode = out[path]
                acl = (inode.acl or Acl.from_mode(inode.mode)).with_entry(
                    tag, int(ident), sum({"r": 4, "w": 2, "x": 1}[c] for c in perms)
                )
                out[path] = replace(inode, acl=acl, mode=inode.mode & ~0o777 | acl.mode_bits())
        elif argv[0] == "chmod":
            who_, bits = re.fullmatch(r"([ug])\+([rwx]+)", argv[1]).groups()  # type: ignore[union-attr]
            add = sum({"r": 4, "w": 2, "x": 1}[c] for c in bits) << (6 if who_ == "u" else 3)
            for path in argv[2:]:
                inode = out[path]
                mode = inode.mode | add
                acl = inode.acl.with_chmod(mode) if inode.acl else None
                out[path] = replace(inode, mode=mode, acl=acl)
        elif argv[0] == "chgrp":
            for path in argv[2:]:
                out[path] = replace(out[path], gid=int(argv[1]))
        else:
            raise AssertionError(part)
    return out


def test_fix_commands_apply_and_work() -> None:
    spec = tree(LETSENCRYPT)
    for fix_group in (None, 2200):
        verdict = access_verdict(spec, KEY, BLOG, fix_group=fix_group)
        commands = [fix.command for fix in verdict.fixes if fix.command is not None]
        assert commands
        for command in commands:
            assert access_verdict(apply_fix(spec, command), KEY, BLOG).allowed, command


def test_owner_gets_chmod_not_an_acl() -> None:
    spec = tree({"/srv/f": f("0000", 1000, 1000)})
    verdict = access_verdict(spec, "/srv/f", who(1000), "r")
    assert verdict.fixes[0].command == "chmod u+r /srv/f"


def test_read_only_mount_fix_is_explained() -> None:
    verdict = access_verdict(tree({"/srv/f": f("0644", readonly=True)}), "/srv/f", who(0), "w")
    assert verdict.errno == "EROFS"
    assert "read-only mount" in verdict.fixes[0].why


def test_immutable_fix() -> None:
    verdict = access_verdict(tree({"/srv/f": f("0644", immutable=True)}), "/srv/f", who(0), "w")
    assert verdict.fixes[0].command == "chattr -i /srv/f"


# -- properties ------------------------------------------------------------------------------
PATHS = ["/d", "/d/e", "/d/e/f", "/d/l", "/d/e/", "/d/m/f", "/d/e/f/x", "/d/up/f", "/x"]
modes = st.integers(0, 0o7777).map(lambda m: f"{m:04o}")
ids_ = st.sampled_from([0, 1000, 2200])
acl_texts = st.sampled_from(
    [
        None,
        None,
        "user::rwx,group::r-x,user:1000:r--,mask::r-x,other::---",
        "user::rw-,group::---,group:2200:r--,mask::r--,other::---",
        "user::rw-,group::r--,group:1000:---,mask::rw-,other::r--",
    ]
)


@st.composite
def trees(draw: st.DrawFn) -> dict[str, Inode]:
    def node(kind: str) -> dict[str, Any]:
        return {
            "type": kind,
            "mode": draw(modes),
            "uid": draw(ids_),
            "gid": draw(ids_),
            "acl": draw(acl_texts),
            "readonly": draw(st.booleans()),
        }

    return load_fs_json(
        {
            "/d": node("dir"),
            "/d/e": node("dir"),
            "/d/e/f": node("file"),
            "/d/l": ln(draw(st.sampled_from(["e/f", "/d/e", "e", "l", "../d/e/f"])), draw(ids_)),
            "/d/m": ln(draw(st.sampled_from(["e", "/d/e", "e/f"]))),
            "/d/up": ln("../d/e"),
        }
    )


creds_ = st.builds(
    lambda uid, gid, groups, caps: who(uid, gid, *groups, caps=caps),
    ids_,
    ids_,
    st.lists(ids_, max_size=2),
    st.sampled_from(
        ["", "", "cap_dac_read_search", "cap_dac_override", "cap_dac_override,cap_dac_read_search"]
    ),
)
wants = st.sampled_from(["", "r", "w", "x", "rw", "rx", "wx", "rwx"])


@given(
    trees(),
    st.sampled_from(PATHS),
    creds_,
    wants,
    st.sampled_from(["cap_dac_read_search", "cap_dac_override", "all"]),
)
def test_adding_capabilities_never_turns_allow_into_deny(
    fs: dict[str, Inode], path: str, creds: Creds, want: str, extra: str
) -> None:
    before = access_verdict(fs, path, creds, want)
    more = creds.effective | CapSet.parse(extra)
    after = access_verdict(fs, path, replace(creds, effective=more, permitted=more), want)
    assert after.allowed >= before.allowed


@given(trees(), creds_, wants)
def test_owner_class_decides_alone(fs: dict[str, Inode], creds: Creds, want: str) -> None:
    inode = fs["/d/e/f"]
    mine = {
        **fs,
        "/d": replace(fs["/d"], mode=0o755, acl=None, readonly_mount=False),
        "/d/e": replace(fs["/d/e"], mode=0o755, acl=None),
        "/d/e/f": replace(inode, uid=creds.uid.fs, readonly_mount=False),
    }
    bare = replace(creds, effective=CapSet(), permitted=CapSet())
    verdict = access_verdict(mine, "/d/e/f", bare, want)
    owner_bits = (inode.mode >> 6) & 7
    assert verdict.allowed is (parse_want(want) & ~owner_bits == 0)


@settings(max_examples=200)
@given(trees(), st.sampled_from(PATHS), creds_, wants, st.sampled_from([None, 2200]))
def test_fixes_only_widen_for_the_asked_identity_and_work(
    fs: dict[str, Inode], path: str, creds: Creds, want: str, fix_group: int | None
) -> None:
    verdict = access_verdict(fs, path, creds, want, fix_group=fix_group)
    if verdict.allowed:
        assert verdict.fixes == ()
        return
    for fix in verdict.fixes:
        if fix.command is None or fix.command.startswith("chattr"):
            continue
        assert "o+" not in fix.command
        assert "o:" not in fix.command
        assert "other" not in fix.command
        allowed = (
            {("g", str(fix_group))}
            if fix_group is not None
            else {("u", str(creds.uid.fs)), ("g", str(creds.gid.fs))}
        )  # the user, or its own group
        for entry in re.findall(r"-m ([ug]):(\d+):", fix.command):
            assert entry in allowed
        for gid in re.findall(r"chgrp (\d+)", fix.command):
            assert gid == str(fix_group if fix_group is not None else creds.gid.fs)
        fixed = access_verdict(apply_fix(fs, fix.command), path, creds, want)
        # either the fix is enough, or it says what still stands in the way (a read-only
        # mount, an immutable file, a protected symlink) — and that is no permission bit
        assert fixed.allowed or "then:" in fix.why, (fix, fixed.reasons)
        assert fixed.allowed or fixed.reasons[-1].code not in ("search-denied", "access-denied")


@given(trees())
def test_fs_json_round_trip(fs: dict[str, Inode]) -> None:
    assert load_fs_json(json.loads(json.dumps(dump_fs_json(fs)))) == fs


# -- the --fs-json loader ----------------------------------------------------------------------
def test_fs_json_example_from_the_docs() -> None:
    fs = load_fs_json(
        {
            "/etc": {"type": "dir", "mode": "0755", "uid": 0, "gid": 0},
            "/etc/ssl/key.pem": {
                "type": "file",
                "mode": "0640",
                "uid": 0,
                "gid": 2200,
                "acl": "user::rw-,group::r--,group:2200:r--,mask::r--,other::---",
                "readonly": True,
            },
            "/x": {"type": "symlink", "target": "/etc"},
        }
    )
    assert fs["/etc/ssl"] == Inode("dir", 0o755)  # implied parent
    assert mode_string(fs["/etc/ssl/key.pem"]) == "-rw-r-----+"
    assert fs["/etc/ssl/key.pem"].readonly_mount
    assert access_verdict(fs, "/x/ssl/key.pem", who(5000, 5000, 2200)).allowed
    # a minimal ACL is only a mode, as after setfacl
    minimal = load_fs_json({"/f": {"type": "file", "acl": "u::rw,g::r,o::-"}})
    assert minimal["/f"] == Inode("file", 0o640)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "object"),
        ({"etc": {"type": "dir", "mode": "0755"}}, "absolute"),
        ({"/etc/": {"type": "dir", "mode": "0755"}}, "normalised"),
        ({"/a/../b": {"type": "dir", "mode": "0755"}}, "normalised"),
        ({"/a": {"type": "dir", "mode": 755}}, "octal string"),
        ({"/a": {"type": "dir", "mode": "0999"}}, "octal string"),
        ({"/a": {"type": "dir"}}, "required"),
        ({"/a": {"type": "pipe", "mode": "0644"}}, "type"),
        ({"/a": {"type": "dir", "mode": "0755", "owner": 0}}, "unknown field"),
        ({"/a": {"type": "dir", "mode": "0755", "uid": -1}}, "uid"),
        ({"/a": {"type": "dir", "mode": "0755", "uid": True}}, "uid"),
        ({"/a": {"type": "dir", "mode": "0755", "readonly": "yes"}}, "true or false"),
        ({"/a": {"type": "symlink"}}, "target"),
        ({"/a": {"type": "file", "mode": "0644", "target": "/b"}}, "target"),
        ({"/a": {"type": "file", "mode": "0644", "acl": "user::rw-"}}, "/a"),
        (
            {"/a": {"type": "file", "mode": "0644"}, "/a/b": {"type": "file", "mode": "0644"}},
            "below it",
        ),
        ({"/": {"type": "file", "mode": "0644"}}, "directory"),
    ],
)
def test_fs_json_rejects(data: Any, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        load_fs_json(data)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 70000)
    | st.text(max_size=12)
    | st.sampled_from(["dir", "file", "symlink", "0755", "/etc", "u::rw,g::r,o::-"]),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                ["type", "mode", "uid", "gid", "acl", "target", "readonly", "noexec", "x"]
            ),
            children,
            max_size=5,
        )
    ),
    max_leaves=12,
)


@given(
    st.dictionaries(
        st.sampled_from(["/", "/a", "/a/b", "a", "/a/", "//a"]), json_values, max_size=4
    )
    | json_values
)
def test_fuzz_fs_json_raises_only_unroot_errors(data: Any) -> None:
    try:
        fs = load_fs_json(data)
    except UnrootError:
        return
    for path in ("/a/b", "/a"):
        access_verdict(fs, path, who(1000), "rw")


def test_bad_questions() -> None:
    with pytest.raises(ParseError, match="absolute"):
        access_verdict({}, "etc/passwd", who(0))
    with pytest.raises(ParseError, match="want"):
        access_verdict({}, "/etc", who(0), "read")
    with pytest.raises(ParseError):
        Inode("symlink")
    with pytest.raises(ParseError):
        Inode("file", mode=0o10000)


# -- advice that is never given (model/protected.py) -----------------------------------------
NOBODY = who(65534, 65534)
PROTECTED_TREE = {
    "/etc/shadow": f("0640", 0, 42),
    "/etc/sudoers": f("0440"),
    "/etc/passwd": f("0644"),
    "/etc/kubernetes/pki": d("0755"),
    "/etc/kubernetes/pki/ca.key": f("0600"),
    "/etc/kubernetes/pki/ca.crt": f("0600"),
    "/run/docker.sock": {"type": "sock", "mode": "0660", "uid": 0, "gid": 998},
    "/var/run": ln("/run"),
    "/root": d("0700"),
    "/root/x": f("0644"),
    "/srv": d("0755"),
    "/srv/key": ln("/etc/shadow"),
    "/srv/etc": ln("/etc"),
    "/srv/real": f("0600"),
    "/srv/via-root": ln("/root/../srv/real"),
}


@pytest.mark.parametrize(
    ("path", "want", "kind"),
    [
        ("/etc/shadow", "r", "password-hashes"),
        ("//etc//shadow", "r", "password-hashes"),
        ("/etc/./shadow", "r", "password-hashes"),
        ("/etc/../etc/shadow", "r", "password-hashes"),
        ("/srv/key", "r", "password-hashes"),  # a symlink to /etc/shadow
        ("/srv/etc/shadow", "r", "password-hashes"),  # through a symlink to /etc
        ("/etc/shadow", "w", "password-hashes"),
        ("/etc/sudoers", "r", "sudo-policy"),
        ("/etc/passwd", "w", "account-database"),
        ("/etc/kubernetes/pki/ca.key", "r", "ca-key"),
        ("/run/docker.sock", "rw", "engine-socket"),
        ("/var/run/docker.sock", "rw", "engine-socket"),
        ("/root/x", "r", "root-home"),
        ("/root/missing", "r", "root-home"),
        ("/srv/via-root", "r", "root-home"),  # not below /root, but the lookup searches it
    ],
)
@pytest.mark.parametrize("fix_group", [None, 65534])
def test_no_grant_on_protected_paths(
    path: str, want: str, kind: str, fix_group: int | None
) -> None:
    verdict = access_verdict(tree(PROTECTED_TREE), path, NOBODY, want, fix_group=fix_group)
    assert (verdict.allowed, verdict.errno) == (False, "EACCES")
    assert verdict.reasons[-1].code in ("access-denied", "search-denied")  # still says why
    assert [fix.command for fix in verdict.fixes] == [None]
    (refusal,) = verdict.fixes
    assert refusal.protected is not None
    assert refusal.protected.kind == kind
    assert refusal.why.startswith("no grant is suggested: ")
    assert refusal.to_json()["protected"] == {"path": refusal.protected.path, "class": kind}


def test_reading_passwd_and_a_certificate_still_get_fixes() -> None:
    spec = tree(PROTECTED_TREE)
    assert access_verdict(spec, "/etc/passwd", NOBODY).allowed
    verdict = access_verdict(spec, "/etc/kubernetes/pki/ca.crt", NOBODY)
    assert verdict.fixes[0].command == "setfacl -m u:65534:r /etc/kubernetes/pki/ca.crt"
    assert all(fix.protected is None for fix in verdict.fixes)


def test_a_service_may_still_read_its_own_key_in_a_key_store() -> None:
    """Seed 000: uid 2200 reads its letsencrypt key — ACL entries on exactly the inodes the
    lookup needs, nothing for 'other', nothing recursive, no chgrp of the store."""
    verdict = access_verdict(tree(LETSENCRYPT), KEY, BLOG)
    commands = [fix.command for fix in verdict.fixes if fix.command]
    assert commands == [
        "setfacl -m u:2200:x /etc/letsencrypt/live /etc/letsencrypt/archive && "
        "setfacl -m u:2200:r /etc/letsencrypt/archive/blog/privkey1.pem"
    ]
    note = verdict.fixes[-1]
    assert note.protected is not None
    assert (note.protected.kind, note.protected.path) == (
        "key-store",
        "/etc/letsencrypt/archive/blog/privkey1.pem",
    )
    assert "own copy owned by its group, refreshed by a certbot deploy hook" in note.why
    assert access_verdict(apply_fix(tree(LETSENCRYPT), commands[0]), KEY, BLOG).allowed


def test_writing_a_key_store_is_refused() -> None:
    verdict = access_verdict(tree(LETSENCRYPT), KEY, BLOG, "w")
    assert [fix.command for fix in verdict.fixes] == [None]
    assert verdict.fixes[0].protected is not None
    assert verdict.fixes[0].protected.kind == "key-store-write"


PROTECTED_ROOTS = ["/root", "/var/lib/docker", "/etc/sudoers.d", "/run/crio", "/etc/ssl/private"]


@settings(max_examples=150)
@given(
    trees(),
    st.sampled_from(PATHS),
    creds_,
    wants,
    st.tuples(st.sampled_from(PROTECTED_ROOTS), st.sampled_from([None, 2200])),
)
def test_fixes_never_grant_below_a_protected_root(
    fs: dict[str, Inode], path: str, creds: Creds, want: str, where: tuple[str, int | None]
) -> None:
    root, fix_group = where
    parents = [root.rsplit("/", n)[0] or "/" for n in range(1, root.count("/") + 1)]
    moved: dict[str, Inode] = {**dict.fromkeys(parents, Inode("dir")), root: Inode("dir", 0o700)}
    for key, inode in fs.items():
        target = inode.target
        moved[root + key] = (
            replace(inode, target=root + target)
            if target is not None and target.startswith("/")
            else inode
        )
    verdict = access_verdict(moved, root + path, creds, want, fix_group=fix_group)
    for fix in verdict.fixes:
        if root == "/etc/ssl/private" and "w" not in want:  # a key store: narrow grants only
            assert "chgrp" not in (fix.command or "")
            assert " -R" not in (fix.command or "")
        else:
            assert fix.command is None, fix
