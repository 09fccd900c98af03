"""``Acl.modified`` (``setfacl -m``) and ``Acl.base``: properties; the byte-for-byte comparison
with the real setfacl is in tests/doctor/test_apply_undo.py."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from unroot.errors import ParseError
from unroot.model.acl import (
    ACL_GROUP,
    ACL_GROUP_OBJ,
    ACL_MASK,
    ACL_OTHER,
    ACL_USER,
    ACL_USER_OBJ,
    Acl,
    AclEntry,
)

PERM = st.integers(0, 7)
NAMED = st.builds(AclEntry, st.sampled_from([ACL_USER, ACL_GROUP]), st.integers(0, 5), PERM)
BASE = st.builds(
    lambda tag, perm: AclEntry(tag, None, perm),
    st.sampled_from([ACL_USER_OBJ, ACL_GROUP_OBJ, ACL_OTHER]),
    PERM,
)


@given(st.integers(0, 0o777), st.lists(NAMED | BASE, min_size=1, max_size=6))
def test_modified_sets_each_entry_and_the_mask_to_the_group_class(
    mode: int, changes: list[AclEntry]
) -> None:
    result = Acl.from_mode(mode).modified(changes)
    wanted = {(c.tag, c.id): c.perm for c in changes}  # the last change of an entry wins
    got = {(e.tag, e.id): e.perm for e in result.entries}
    assert all(got[key] == perm for key, perm in wanted.items())
    if result.users or result.groups:
        union = result.group_obj
        for perm in [*result.users.values(), *result.groups.values()]:
            union |= perm
        assert result.mask == union
    assert Acl.decode(result.encode()) == result


def test_base_keeps_only_the_three_base_entries() -> None:
    acl = Acl.parse("u::rwx,u:5:rx,g::r-x,g:7:r,m::r-x,o::--x")
    assert acl.base().to_text() == "user::rwx,group::r-x,other::--x"


def test_modified_refuses_an_explicit_mask() -> None:
    with pytest.raises(ParseError, match="mask"):
        Acl.from_mode(0o640).modified([AclEntry(ACL_MASK, None, 7)])
