"""Table tests of the execve transform.

Each row cites where the rule is written: capabilities(7) "Transformation of capabilities during
execve()" and its neighbouring sections, or the kernel function (security/commoncap.c,
fs/exec.c).  The live kernel agrees with every row (tests/kernel/test_exec_differential.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from unroot.errors import ParseError, UsageError
from unroot.model.caps import CapSet
from unroot.model.creds import SECBIT_KEEP_CAPS, SECBIT_NOROOT, Creds, Ids
from unroot.model.execve import RUNNING, ExecFile, Kernel, execve
from unroot.model.filecaps import FileCaps

DOCKER = CapSet(0xA80425FB)
NBS = CapSet.of("cap_net_bind_service")
RAW = CapSet.of("cap_net_raw")
ALL = CapSet.all()


def user(uid: int = 1000, gid: int | None = None, **sets: Any) -> Creds:
    gid = uid if gid is None else gid
    return Creds(uid=Ids.same(uid), gid=Ids.same(gid), bounding=DOCKER).with_(**sets)


def caps(text: str, **kw: Any) -> FileCaps:
    parsed = FileCaps.from_text(text)
    return FileCaps(parsed.permitted, parsed.inheritable, parsed.effective, **kw)


@dataclass(frozen=True)
class Row:
    id: str
    cite: str
    creds: Creds
    file: ExecFile
    expect: dict[str, Any]
    codes: tuple[str, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


ROWS = [
    # -- seed 002: file capabilities and the bounding set ----------------------------------
    Row(
        "seed002-bounding-lacks-cap-eperm",
        "capabilities(7) Safety checking for capability-dumb binaries; bprm_caps_from_vfs_caps",
        user(10001, bounding=DOCKER - NBS),
        ExecFile("/srv/web", caps("cap_net_bind_service=+ep")),
        {"exec": "EPERM", "uid": [10001] * 3, "permitted": [], "secure_exec": False},
        ("file-caps-eperm",),
    ),
    Row(
        "seed002-drop-all-eperm",
        "bprm_caps_from_vfs_caps: fE set and fP & ~pP' != 0",
        user(10001, bounding=CapSet()),
        ExecFile("/srv/web", caps("cap_net_bind_service=+ep")),
        {"exec": "EPERM", "bounding": []},
        ("file-caps-eperm",),
    ),
    Row(
        "seed002-bounding-has-cap",
        "capabilities(7): P'(permitted) = (P(inheritable) & F(inheritable)) | "
        "(F(permitted) & P(bounding)); P'(effective) = F(effective) ? P'(permitted) : P'(ambient)",
        user(10001),
        ExecFile("/srv/web", caps("cap_net_bind_service=+ep")),
        {
            "exec": "ok",
            "permitted": ["cap_net_bind_service"],
            "effective": ["cap_net_bind_service"],
            "secure_exec": True,
        },
        ("file-caps", "secure-exec"),
    ),
    Row(
        "no-effective-bit-missing-cap-is-silent",
        "bprm_caps_from_vfs_caps: the EPERM check applies only when fE is set",
        user(bounding=CapSet()),
        ExecFile("/srv/web", caps("cap_net_bind_service=p")),
        {"exec": "ok", "permitted": [], "effective": []},
        ("file-caps-not-granted",),
    ),
    Row(
        "permitted-without-effective-bit",
        "capabilities(7): F(effective) clear, so P'(effective) = P'(ambient)",
        user(),
        ExecFile("/srv/web", caps("cap_net_bind_service=p")),
        {"permitted": ["cap_net_bind_service"], "effective": [], "secure_exec": True},
        ("file-caps-not-effective",),
    ),
    Row(
        "inheritable-ignores-bounding",
        "capabilities(7): pI & fI is not limited by the bounding set",
        user(bounding=CapSet(), inheritable=RAW),
        ExecFile("/usr/bin/ping", caps("cap_net_raw=ie")),
        {"exec": "ok", "permitted": ["cap_net_raw"], "effective": ["cap_net_raw"]},
    ),
    Row(
        "inheritable-missing-from-process",
        "capabilities(7): fI only grants what pI also holds",
        user(bounding=CapSet()),
        ExecFile("/usr/bin/ping", caps("cap_net_raw=i")),
        {"exec": "ok", "permitted": []},
    ),
    # -- root ------------------------------------------------------------------------------
    Row(
        "root-gets-bounding-and-inheritable",
        "capabilities(7) Capabilities and execution of programs by root; handle_privileged_root",
        Creds(bounding=DOCKER, inheritable=RAW | NBS),
        ExecFile("/bin/sh"),
        {"exec": "ok", "uid": [0, 0, 0], "permitted": (DOCKER | RAW | NBS).names()},
        ("root-emulation",),
    ),
    Row(
        "root-exec-is-not-secure",
        "cap_bprm_creds_from_file: AT_SECURE only for ruid != 0 gaining caps or id changes",
        Creds(),
        ExecFile("/bin/sh"),
        {"secure_exec": False, "effective": ALL.names()},
    ),
    Row(
        "real-root-only-not-effective",
        "capabilities(7): if the real uid is 0 but the effective uid is not, pE' is empty",
        Creds(uid=Ids(0, 1000, 1000, 1000), permitted=ALL),
        ExecFile("/bin/sh"),
        {"uid": [0, 1000, 1000], "permitted": ALL.names(), "effective": [], "secure_exec": True},
        ("root-emulation",),
    ),
    Row(
        "setuid-root-binary",
        "capabilities(7) Set-user-ID-root programs; bprm_fill_uid, handle_privileged_root",
        user(),
        ExecFile("/usr/bin/passwd", setuid_owner=0),
        {"uid": [1000, 0, 0], "permitted": DOCKER.names(), "effective": DOCKER.names()},
        ("setuid", "root-emulation", "secure-exec"),
    ),
    Row(
        "setuid-root-with-file-caps-gets-file-caps-only",
        "capabilities(7) Set-user-ID-root programs that have file capabilities",
        user(),
        ExecFile("/usr/bin/tool", caps("cap_net_bind_service=ep"), setuid_owner=0),
        {"uid": [1000, 0, 0], "permitted": ["cap_net_bind_service"]},
        ("setuid-root-with-file-caps",),
    ),
    Row(
        "secbit-noroot-root-gets-nothing",
        "capabilities(7) SECBIT_NOROOT; root_privileged()",
        Creds(securebits=SECBIT_NOROOT, permitted=ALL, effective=ALL),
        ExecFile("/bin/sh"),
        {"uid": [0, 0, 0], "permitted": [], "effective": []},
        ("secbit-noroot",),
    ),
    Row(
        "secbit-noroot-root-with-file-caps",
        "capabilities(7) SECBIT_NOROOT: file capabilities still apply",
        Creds(securebits=SECBIT_NOROOT),
        ExecFile("/srv/web", caps("cap_net_bind_service=ep")),
        {"permitted": ["cap_net_bind_service"], "effective": ["cap_net_bind_service"]},
    ),
    Row(
        "keep-caps-cleared-by-exec",
        "capabilities(7) SECBIT_KEEP_CAPS: cleared on execve",
        user(securebits=SECBIT_KEEP_CAPS | SECBIT_NOROOT),
        ExecFile("/bin/true"),
        {"exec": "ok"},
    ),
    # -- nosuid and no_new_privs ------------------------------------------------------------
    Row(
        "nosuid-ignores-setuid",
        "fs/exec.c bprm_fill_uid: mnt_may_suid",
        user(),
        ExecFile("/mnt/passwd", setuid_owner=0, nosuid=True),
        {"uid": [1000] * 3, "permitted": [], "secure_exec": False},
        ("nosuid-ignored-setid",),
    ),
    Row(
        "nosuid-ignores-file-caps-even-eperm",
        "security/commoncap.c get_file_caps: !mnt_may_suid → no file caps",
        user(bounding=CapSet()),
        ExecFile("/mnt/web", caps("cap_net_bind_service=ep"), nosuid=True),
        {"exec": "ok", "permitted": []},
        ("nosuid-ignored-file-caps",),
    ),
    Row(
        "nnp-ignores-setuid",
        "fs/exec.c bprm_fill_uid: task_no_new_privs",
        user(no_new_privs=True),
        ExecFile("/usr/bin/passwd", setuid_owner=0),
        {"uid": [1000] * 3, "permitted": [], "no_new_privs": True},
        ("setuid-ignored-nnp",),
    ),
    Row(
        "nnp-docker-nonroot-file-caps-give-nothing",
        "cap_bprm_creds_from_file: NO_NEW_PRIVS → pP' &= pP (Docker starts non-root with pP = 0)",
        user(no_new_privs=True),
        ExecFile("/srv/web", caps("cap_net_bind_service=ep")),
        {"exec": "ok", "permitted": [], "effective": []},
        ("nnp-dropped-caps",),
    ),
    Row(
        "nnp-cri-nonroot-keeps-file-caps",
        "cap_bprm_creds_from_file: nothing gained over pP, so no_new_privs changes nothing",
        user(no_new_privs=True, permitted=DOCKER, effective=DOCKER),
        ExecFile("/srv/web", caps("cap_net_bind_service=ep")),
        {"permitted": ["cap_net_bind_service"], "effective": ["cap_net_bind_service"]},
    ),
    Row(
        "nnp-resets-euid-when-caps-would-be-gained",
        "cap_bprm_creds_from_file: unsafe & NO_NEW_PRIVS → euid = uid, egid = gid",
        Creds(uid=Ids(1000, 0, 0, 0), gid=Ids.same(1000), no_new_privs=True, bounding=DOCKER),
        ExecFile("/srv/web", caps("cap_net_bind_service=ep")),
        {"uid": [1000] * 3, "permitted": [], "secure_exec": True},
        ("nnp-reset-ids", "nnp-dropped-caps"),
    ),
    # -- set-group-ID -----------------------------------------------------------------------
    Row(
        "setgid-applies-when-group-executable",
        "fs/exec.c bprm_fill_uid: (mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP)",
        user(),
        ExecFile("/usr/bin/wall", setgid_owner=5),
        {"gid": [1000, 5, 5], "secure_exec": True},
        ("setgid",),
    ),
    Row(
        "setgid-without-group-exec-is-mandatory-locking",
        "fs/exec.c bprm_fill_uid: S_ISGID without S_IXGRP",
        user(),
        ExecFile("/srv/data", setgid_owner=5, group_executable=False),
        {"gid": [1000] * 3, "secure_exec": False},
        ("setgid-not-group-executable",),
    ),
    # -- ambient ------------------------------------------------------------------------------
    Row(
        "ambient-preserved",
        "capabilities(7): P'(ambient) = file is privileged ? 0 : P(ambient)",
        user(permitted=NBS, inheritable=NBS, ambient=NBS),
        ExecFile("/usr/bin/python3"),
        {
            "permitted": ["cap_net_bind_service"],
            "effective": ["cap_net_bind_service"],
            "ambient": ["cap_net_bind_service"],
            "secure_exec": False,
        },
        ("ambient-preserved",),
    ),
    Row(
        "ambient-cleared-by-file-caps",
        "capabilities(7): a file with capabilities is privileged → ambient cleared",
        user(permitted=NBS, inheritable=NBS, ambient=NBS),
        ExecFile("/usr/bin/ping", caps("cap_net_raw=ep")),
        {"permitted": ["cap_net_raw"], "ambient": [], "inheritable": ["cap_net_bind_service"]},
        ("ambient-cleared",),
    ),
    Row(
        "ambient-cleared-by-setuid",
        "capabilities(7): a set-user-ID program is privileged → ambient cleared",
        user(permitted=NBS, inheritable=NBS, ambient=NBS),
        ExecFile("/usr/bin/tool", setuid_owner=2000),
        {"uid": [1000, 2000, 2000], "permitted": [], "ambient": []},
        ("ambient-cleared",),
    ),
    Row(
        "nonroot-exec-empties-permitted",
        "capabilities(7): without file caps and ambient, a non-root exec gets pP' = 0",
        user(permitted=DOCKER, effective=DOCKER),
        ExecFile("/bin/sh"),
        {"permitted": [], "effective": [], "bounding": DOCKER.names()},
        ("no-file-caps-nonroot",),
    ),
    # -- namespaced file capabilities ------------------------------------------------------
    Row(
        "v3-rootid-foreign",
        "security/commoncap.c get_vfs_caps_from_disk: !rootid_owns_currentns → -ENODATA",
        user(bounding=CapSet()),
        ExecFile("/srv/web", caps("cap_net_bind_service=ep", revision=3, rootid=100000)),
        {"exec": "ok", "permitted": []},
        ("v3-rootid-foreign",),
    ),
    Row(
        "v3-rootid-of-caller-namespace",
        "rootid_owns_currentns: the rootid maps to 0 in the caller's namespace",
        user(),
        ExecFile("/srv/web", caps("cap_net_bind_service=ep", revision=3, rootid=100000)),
        {"permitted": ["cap_net_bind_service"]},
        (),
        {"userns_root_uids": (100000, 0)},
    ),
    Row(
        "v3-rootid-zero-is-an-ancestor",
        "rootid_owns_currentns walks up to init_user_ns, where rootid 0 is root",
        user(),
        ExecFile("/srv/web", caps("cap_net_bind_service=ep", revision=3, rootid=0)),
        {"permitted": ["cap_net_bind_service"]},
        (),
        {"userns_root_uids": (100000,)},
    ),
    Row(
        "v2-counts-in-any-namespace",
        "get_vfs_caps_from_disk: revision 2 has rootid 0 of the filesystem's namespace",
        user(),
        ExecFile("/srv/web", caps("cap_net_bind_service=ep")),
        {"permitted": ["cap_net_bind_service"]},
        (),
        {"userns_root_uids": (100000, 0)},
    ),
    # -- unsafe exec (ptrace, shared fs) without no_new_privs ------------------------------
    Row(
        "unsafe-without-cap-setuid-keeps-real-ids",
        "cap_bprm_creds_from_file: bprm->unsafe and !ns_capable(CAP_SETUID)",
        user(),
        ExecFile("/usr/bin/passwd", setuid_owner=0),
        {"uid": [1000] * 3, "permitted": []},
        ("nnp-reset-ids",),
        {"unsafe": True},
    ),
    Row(
        "unsafe-with-cap-setuid-changes-ids-but-not-caps",
        "cap_bprm_creds_from_file: with CAP_SETUID only pP' &= pP applies",
        user(permitted=CapSet.of("cap_setuid"), effective=CapSet.of("cap_setuid")),
        ExecFile("/usr/bin/passwd", setuid_owner=0),
        {"uid": [1000, 0, 0], "permitted": ["cap_setuid"]},
        (),
        {"unsafe": True},
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_execve_row(row: Row) -> None:
    result = execve(row.creds, row.file, **row.kwargs)
    document = result.to_json()
    for key, value in row.expect.items():
        assert document[key] == value, f"{key} ({row.cite})"
    codes = [reason.code for reason in result.reasons]
    for code in row.codes:
        assert code in codes, f"missing reason {code} ({row.cite}); got {codes}"
    assert result.reasons, "every answer carries at least one reason"
    if result.errno is not None:
        assert result.creds == row.creds, "a failed exec leaves the credentials unchanged"
        assert result.fixes
    assert not result.creds.securebits & SECBIT_KEEP_CAPS


def test_eperm_fixes_name_the_runtime_flag_and_the_setcap_alternative() -> None:
    result = execve(
        user(bounding=DOCKER - NBS), ExecFile("/srv/web", caps("cap_net_bind_service=+ep"))
    )
    commands = [fix.command for fix in result.fixes]
    assert "docker run --cap-add NET_BIND_SERVICE …" in commands
    assert "setcap 'cap_net_bind_service=p' /srv/web" in commands


# -- behaviour that changed between kernel versions -------------------------------------------
def test_ids_changed_test_before_and_after_6_17() -> None:
    """Commit 337490f0007f (6.17): "ids changed" compares the new euid with the old euid (not the
    real uid), and the new egid with the caller's groups (not the real gid)."""
    # A process running with ruid 1000, euid 1001 and an ambient capability.
    creds = Creds(
        uid=Ids(1000, 1001, 1001, 1001),
        gid=Ids.same(1000),
        permitted=NBS,
        inheritable=NBS,
        ambient=NBS,
    )
    new = execve(creds, ExecFile("/bin/sh"), kernel=Kernel((6, 18)))
    old = execve(creds, ExecFile("/bin/sh"), kernel=Kernel((6, 16)))
    assert new.creds.ambient == NBS
    assert new.creds.effective == NBS
    assert old.creds.ambient == CapSet()
    assert old.creds.effective == CapSet()
    assert new.secure_exec
    assert old.secure_exec


def test_setgid_to_a_group_already_held_is_not_an_id_change_since_6_17() -> None:
    creds = user(groups=frozenset({5}), permitted=NBS, inheritable=NBS, ambient=NBS)
    file = ExecFile("/usr/bin/wall", setgid_owner=5)
    new = execve(creds, file, kernel=Kernel((6, 17)))
    old = execve(creds, file, kernel=Kernel((6, 16)))
    assert new.creds.gid.effective == old.creds.gid.effective == 5
    assert new.creds.ambient == NBS
    assert old.creds.ambient == CapSet()
    assert new.secure_exec  # egid != rgid still sets AT_SECURE


def test_nnp_with_euid_not_ruid_keeps_ids_since_6_17() -> None:
    """Max Kellermann's report: exec with ruid != euid under no_new_privs reset the euid."""
    creds = Creds(uid=Ids(1000, 1001, 1001, 1001), gid=Ids.same(1000), no_new_privs=True)
    assert execve(creds, ExecFile("/bin/true"), kernel=Kernel((6, 18))).creds.uid.effective == 1001
    assert execve(creds, ExecFile("/bin/true"), kernel=Kernel((6, 16))).creds.uid.effective == 1000


@pytest.mark.parametrize(
    ("version", "bit", "eperm"),
    [((5, 4), 38, False), ((5, 8), 38, True), ((5, 8), 40, False), ((6, 18), 40, True)],
)
def test_file_cap_bits_above_cap_last_cap_are_ignored(
    version: tuple[int, int], bit: int, eperm: bool
) -> None:
    """get_vfs_caps_from_disk masks fP/fI with CAP_VALID_MASK (CAP_LAST_CAP per version)."""
    file = ExecFile("/srv/x", FileCaps(CapSet.of(bit), effective=True))
    result = execve(user(bounding=CapSet()), file, kernel=Kernel(version))
    assert (result.errno == "EPERM") is eperm


def test_kernel_parse_and_range() -> None:
    assert Kernel.parse("6.18.44-fc-v657") == RUNNING
    assert Kernel.parse("5.15.0-91-generic").version == (5, 15)
    assert Kernel.parse(" 4.14 ").last_cap == 37
    assert str(Kernel((6, 1))) == "6.1"
    for bad in ("banana", "", "6", "6.x", "v6.1"):
        with pytest.raises(ParseError):
            Kernel.parse(bad)
    with pytest.raises(UsageError):
        Kernel((4, 13))


def test_json_keys_and_verdict() -> None:
    result = execve(
        user(10001, bounding=CapSet()), ExecFile("/srv/web", caps("cap_net_bind_service=+ep"))
    )
    document = result.to_json()
    assert list(document) == [
        "exec",
        "uid",
        "gid",
        "permitted",
        "effective",
        "inheritable",
        "bounding",
        "ambient",
        "secure_exec",
        "no_new_privs",
        "securebits",
        "reasons",
        "fixes",
    ]
    assert all(set(r) == {"code", "text"} for r in document["reasons"])
    assert all(set(f) == {"command", "why"} for f in document["fixes"])
    verdict = result.verdict()
    assert not verdict.allowed
    assert verdict.errno == "EPERM"
    assert verdict.to_json()["exec"] == "EPERM"
    assert execve(Creds(), ExecFile()).verdict().allowed
