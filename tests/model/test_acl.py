"""The system.posix_acl_access codec and getfacl text — acl(5), fs/posix_acl.c."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from unroot.errors import ParseError, UnrootError
from unroot.model.acl import (
    ACL_GROUP,
    ACL_GROUP_OBJ,
    ACL_MASK,
    ACL_OTHER,
    ACL_USER,
    ACL_USER_OBJ,
    Acl,
    AclEntry,
    parse_perm,
    perm_text,
)

# `touch f && setfacl -m u:1000:r-x,g:2200:r-- f` on ext4 (Linux 6.18), read back with getxattr:
SETFACL_BYTES = bytes.fromhex(
    "02000000"
    "01000600ffffffff"  # user::rw-
    "02000500e8030000"  # user:1000:r-x
    "04000400ffffffff"  # group::r--
    "0800040098080000"  # group:2200:r--
    "10000500ffffffff"  # mask::r-x
    "20000400ffffffff"  # other::r--
)
SETFACL_TEXT = "user::rw-,user:1000:r-x,group::r--,group:2200:r--,mask::r-x,other::r--"


def test_decodes_what_setfacl_wrote() -> None:
    acl = Acl.decode(SETFACL_BYTES)
    assert acl.to_text() == SETFACL_TEXT
    assert acl.users == {1000: 5}
    assert acl.groups == {2200: 4}
    assert acl.mask == 5
    assert acl.mode_bits() == 0o654  # ls -l shows -rw-r-xr--+: group bits are the mask
    assert acl.encode() == SETFACL_BYTES


GETFACL_OUTPUT = """\
# file: acltest
# owner: 0
# group: 0
user::rw-
user:1000:r-x
group::r--
group:2200:r--
mask::r-x
other::r--
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # acl(5) "ACL TEXT FORMS": long form, one entry per line, comments allowed
        (GETFACL_OUTPUT, SETFACL_TEXT),
        # acl(5): the short form with abbreviated tags and perms without dashes
        ("u::rw,u:1000:rx,g::r,g:2200:r,m::rx,o::r", SETFACL_TEXT),
        # getfacl -e prints "#effective:" notes after masked entries
        (
            "user::rw-\nuser:1000:rwx\t#effective:r-x\ngroup::r--\nmask::r-x\nother::---",
            "user::rw-,user:1000:rwx,group::r--,mask::r-x,other::---",
        ),
        # entries in any order: setfacl sorts them (acl_calc/acl_sort)
        ("o::-,g::r,u::rwx", "user::rwx,group::r--,other::---"),
        # a minimal ACL: only the three base entries (acl(5) "ACL TYPES")
        ("user::rwx,group::r-x,other::r-x", "user::rwx,group::r-x,other::r-x"),
        # the seed-000 key: group 2200 granted read through a named group entry
        (
            "user::rw-,group::---,group:2200:r--,mask::r--,other::---",
            "user::rw-,group::---,group:2200:r--,mask::r--,other::---",
        ),
    ],
)
def test_text_forms(text: str, expected: str) -> None:
    assert Acl.parse(text).to_text() == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # posix_acl_valid(): a named entry needs a mask entry (acl(5) "VALID ACLs")
        ("user::rw-,user:1000:r--,group::r--,other::---", "mask"),
        # exactly one user:: / group:: / other:: entry
        ("user::rw-,group::r--", "other::"),
        ("group::r--,other::---", "user::"),
        ("user::rw-,user::r--,group::r--,other::---", "duplicate"),
        ("user::rw-,user:7:r--,user:7:r-x,group::r--,mask::r-x,other::---", "duplicate"),
        # perms are r, w, x (acl(5): "X" is a setfacl extension, not an ACL perm)
        ("user::rwX,group::r--,other::---", "permission"),
        ("user::rwxr,group::r--,other::---", "permission"),
        # default entries are not access ACL entries (acl(5) "ACL TYPES")
        ("default:user::rwx,user::rw-,group::r--,other::---", "default"),
        # names need the passwd database; the model takes numeric ids
        ("user::rw-,user:alice:r--,group::r--,mask::r--,other::---", "numeric"),
        ("mask:7:r--,user::rw-,group::r--,other::---", "no qualifier"),
        ("nobody::r--", "tag"),
        ("user:rw-", "tag:qualifier:perms"),
        ("", "empty"),
    ],
)
def test_invalid_text(text: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        Acl.parse(text)


def _raw(*entries: tuple[int, int, int], version: int = 2) -> bytes:
    return struct.pack("<I", version) + b"".join(struct.pack("<HHI", *e) for e in entries)


U = 0xFFFFFFFF


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not 4"),  # posix_acl_from_xattr: size < header
        (_raw((1, 6, U), (4, 4, U), (0x20, 4, U))[:-1], "not 4"),  # not 4 + 8n bytes
        (_raw((1, 6, U), (4, 4, U), (0x20, 4, U), version=1), "version"),
        (_raw(), "no entries"),
        (_raw((1, 6, U), (0x40, 4, U), (0x20, 4, U)), "unknown ACL tag"),
        (_raw((1, 8, U), (4, 4, U), (0x20, 4, U)), "rwx"),  # posix_acl_valid: perm & ~7
        (_raw((4, 4, U), (1, 6, U), (0x20, 4, U)), "order"),  # group:: before user::
        (_raw((1, 6, U), (2, 4, 5), (4, 4, U), (0x20, 4, U)), "mask"),  # named, no mask
        (_raw((1, 6, U), (4, 4, U), (0x10, 4, U), (0x10, 4, U), (0x20, 4, U)), "more than one"),
        (_raw((1, 6, U), (2, 4, U), (4, 4, U), (0x10, 4, U), (0x20, 4, U)), "undefined id"),
    ],
)
def test_invalid_bytes(data: bytes, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        Acl.decode(data)


def test_kernel_order_is_checked_but_named_ids_need_not_be_sorted() -> None:
    # posix_acl_valid() walks tags only; it neither sorts nor deduplicates named ids
    data = _raw((1, 6, U), (2, 4, 9), (2, 4, 3), (4, 4, U), (0x10, 4, U), (0x20, 0, U))
    assert Acl.decode(data).users == {9: 4, 3: 4}
    # the id of a non-named entry is ignored on input (posix_acl_from_xattr)
    assert Acl.decode(_raw((1, 6, 77), (4, 4, 0), (0x20, 4, 12))).to_text() == (
        "user::rw-,group::r--,other::r--"
    )


def test_setfacl_m_recalculates_the_mask() -> None:
    acl = Acl.from_mode(0o640)
    assert acl.to_text() == "user::rw-,group::r--,other::---"
    widened = acl.with_entry(ACL_USER, 1000, 1)
    # setfacl(1): "the mask entry is recalculated ... union of all permissions of the group
    # class": group:: r-- | user:1000 --x
    assert widened.to_text() == "user::rw-,user:1000:--x,group::r--,mask::r-x,other::---"
    assert widened.mode_bits() == 0o650
    assert widened.with_chmod(0o600).to_text() == (
        "user::rw-,user:1000:--x,group::r--,mask::---,other::---"
    )  # chmod g-… sets the mask, not group:: (acl(5) "CORRESPONDENCE BETWEEN ACL ENTRIES")


def test_perm_helpers() -> None:
    assert [perm_text(p) for p in (0, 5, 7)] == ["---", "r-x", "rwx"]
    assert parse_perm("r-x") == parse_perm("rx") == 5
    assert parse_perm("") == parse_perm("-") == 0


def test_entries_validate_their_fields() -> None:
    with pytest.raises(ParseError):
        AclEntry(ACL_USER, None, 4)
    with pytest.raises(ParseError):
        AclEntry(ACL_OTHER, 3, 4)
    with pytest.raises(ParseError):
        AclEntry(0x40, None, 4)


# -- properties ------------------------------------------------------------------------------
ids = st.integers(0, 0xFFFFFFFE)
perms = st.integers(0, 7)


@st.composite
def acls(draw: st.DrawFn) -> Acl:
    entries = [
        AclEntry(ACL_USER_OBJ, None, draw(perms)),
        AclEntry(ACL_GROUP_OBJ, None, draw(perms)),
        AclEntry(ACL_OTHER, None, draw(perms)),
    ]
    users = draw(st.dictionaries(ids, perms, max_size=4))
    groups = draw(st.dictionaries(ids, perms, max_size=4))
    entries += [AclEntry(ACL_USER, i, p) for i, p in users.items()]
    entries += [AclEntry(ACL_GROUP, i, p) for i, p in groups.items()]
    if users or groups or draw(st.booleans()):
        entries.append(AclEntry(ACL_MASK, None, draw(perms)))
    return Acl.of(draw(st.permutations(entries)))


@given(acls())
def test_bytes_round_trip(acl: Acl) -> None:
    assert Acl.decode(acl.encode()) == acl


@given(acls())
def test_text_round_trip(acl: Acl) -> None:
    assert Acl.parse(acl.to_text()) == acl
    assert Acl.parse(acl.to_text().replace(",", "\n")) == acl


@given(acls(), st.integers(0, 0o777))
def test_chmod_then_mode_bits_is_the_mode(acl: Acl, mode: int) -> None:
    assert acl.with_chmod(mode).mode_bits() == mode


@given(st.binary(max_size=80))
def test_fuzz_decode_raises_only_parse_errors(data: bytes) -> None:
    try:
        acl = Acl.decode(data)
    except ParseError:
        return
    assert Acl.decode(acl.encode()) == acl


TAGS = st.sampled_from([1, 2, 4, 8, 0x10, 0x20, 0, 3, 0x40])


@given(st.lists(st.tuples(TAGS, st.integers(0, 9), st.sampled_from([0, 5, 1000, U])), max_size=8))
def test_fuzz_structured_entries(entries: list[tuple[int, int, int]]) -> None:
    """Well-formed framing, random tags/perms/ids: accepted exactly when posix_acl_valid is."""
    try:
        acl = Acl.decode(_raw(*entries))
    except ParseError:
        return
    tags = [tag for tag, _, _ in entries]
    assert tags.count(ACL_USER_OBJ) == tags.count(ACL_GROUP_OBJ) == tags.count(ACL_OTHER) == 1
    assert tags == sorted(tags)
    assert all(perm <= 7 for _, perm, _ in entries)
    assert (ACL_MASK in tags) >= (ACL_USER in tags or ACL_GROUP in tags)
    assert acl.encode() == _raw(*((t, p, i if t in (2, 8) else U) for t, p, i in entries))


@given(st.text(alphabet="ugmo:rwx-,0123456789#\n dfault", max_size=60) | st.text(max_size=40))
def test_fuzz_text_raises_only_unroot_errors(text: str) -> None:
    with contextlib.suppress(UnrootError):
        Acl.parse(text)
