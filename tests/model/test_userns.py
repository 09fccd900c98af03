"""uid_map/gid_map, /etc/subuid and the rootless mapping — user_namespaces(7), subuid(5)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from unroot.errors import ParseError, UnrootError
from unroot.model.userns import (
    OVERFLOW_ID,
    IdMap,
    IdMapRange,
    SubIdRange,
    UserNs,
    container_to_host,
    host_to_container,
    parse_subid,
    rootless_map,
    subids_of,
)

# /proc/PID/uid_map of a rootless Podman container for uid 1000 with "alice:100000:65536"
PODMAN_UID_MAP = "         0       1000          1\n         1     100000      65536\n"
SUBUID = """\
# /etc/subuid, as useradd(8) writes it
alice:100000:65536
bob:165536:65536

1000:300000:10
"""


def test_parses_the_kernel_format() -> None:
    idmap = IdMap.parse(PODMAN_UID_MAP)
    assert idmap.ranges == (IdMapRange(0, 1000, 1), IdMapRange(1, 100000, 65536))
    assert idmap.to_text() == PODMAN_UID_MAP


@pytest.mark.parametrize(
    ("inside", "outside"),
    [
        (0, 1000),  # user_namespaces(7): "0 1000 1" maps root of the namespace to uid 1000
        (1, 100000),
        (65536, 165535),  # the last id of the second line
        (65537, None),  # beyond every line: not mapped
    ],
)
def test_maps_in_both_directions(inside: int, outside: int | None) -> None:
    idmap = IdMap.parse(PODMAN_UID_MAP)
    assert idmap.to_outside(inside) == outside
    if outside is not None:
        assert idmap.to_inside(outside) == inside


@pytest.mark.parametrize(
    ("host", "shown"),
    [
        (1000, 0),
        (100000, 1),
        (0, OVERFLOW_ID),  # host root is not mapped: stat(2) inside shows 65534 (nobody)
        (2200, OVERFLOW_ID),
    ],
)
def test_unmapped_ids_show_as_overflow(host: int, shown: int) -> None:
    assert IdMap.parse(PODMAN_UID_MAP).shown_inside(host) == shown


def test_identity_map_of_the_initial_namespace() -> None:
    idmap = IdMap.identity()
    assert idmap.to_text().split() == ["0", "0", "4294967295"]
    assert idmap.to_outside(4294967294) == 4294967294
    assert UserNs().maps_inode(0, 0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0 1000\n", "uid_map:1"),  # user_namespaces(7): three numbers per line
        ("0 1000 1\n0 2000 1\n", "overlap"),  # inside ranges overlap
        ("0 1000 10\n10 1005 1\n", "overlap"),  # outside ranges overlap
        ("0 1000 0\n", "count of 0"),
        ("0 4294967295 1\n", "4294967295"),
        ("4294967294 0 2\n", "past"),
        ("-1 0 1\n", "uid_map:1"),
        ("0 0 1\nx y z\n", "uid_map:2"),
        ("".join(f"{i} {i} 1\n" for i in range(341)), "340"),
    ],
)
def test_invalid_maps(text: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        IdMap.parse(text)


def test_subuid_file() -> None:
    ranges = parse_subid(SUBUID)
    assert [r.owner for r in ranges] == ["alice", "bob", "1000"]
    # subuid(5): the owner is a login name or a numeric uid; both count for that user
    mine = subids_of(ranges, name="alice", uid=1000)
    assert mine == (SubIdRange("alice", 100000, 65536), SubIdRange("1000", 300000, 10))


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("alice:100000\n", "/etc/subuid:1"),
        ("# ok\nalice:100000:x\n", "/etc/subuid:2"),
        (":1:2\n", "/etc/subuid:1"),
        ("alice:100000:0\n", "/etc/subuid:1"),
        ("alice:4294967295:1\n", "/etc/subuid:1"),
    ],
)
def test_invalid_subuid_lines_name_the_line(text: str, where: str) -> None:
    with pytest.raises(ParseError, match=where):
        parse_subid(text)


@pytest.mark.parametrize(
    ("container", "host"),
    [
        (0, 1000),  # rootless Docker/Podman: container root is the invoking user (seed 001)
        (1, 100000),  # uid 1 → the first subordinate id
        (65536, 165535),
        (65537, 300000),  # ranges concatenate in file order
        (65546, 300009),
        (65547, None),  # past the last range: the container cannot use this uid
    ],
)
def test_rootless_container_to_host(container: int, host: int | None) -> None:
    subids = subids_of(parse_subid(SUBUID), name="alice", uid=1000)
    assert container_to_host(container, 1000, subids) == host


def test_host_files_seen_from_a_rootless_container() -> None:
    subids = subids_of(parse_subid(SUBUID), name="alice", uid=1000)
    assert host_to_container(1000, 1000, subids) == 0
    assert host_to_container(0, 1000, subids) == OVERFLOW_ID  # a root-owned bind mount
    assert host_to_container(300001, 1000, subids) == 65538


def test_rootless_map_refuses_overlapping_ranges() -> None:
    with pytest.raises(ParseError, match="overlap"):
        rootless_map(100005, [SubIdRange("alice", 100000, 65536)])


# -- properties ------------------------------------------------------------------------------
@st.composite
def idmaps(draw: st.DrawFn) -> IdMap:
    count = draw(st.integers(0, 5))
    starts_in = sorted(draw(st.sets(st.integers(0, 10**6), min_size=count, max_size=count)))
    starts_out = draw(
        st.permutations(
            sorted(draw(st.sets(st.integers(0, 10**6), min_size=count, max_size=count)))
        )
    )
    ranges = []
    for i, (a, b) in enumerate(zip(starts_in, starts_out, strict=True)):
        room_in = (starts_in[i + 1] - a) if i + 1 < count else 1000
        later_out = [o for o in starts_out if o > b]
        room_out = (min(later_out) - b) if later_out else 1000
        ranges.append(IdMapRange(a, b, draw(st.integers(1, max(1, min(room_in, room_out))))))
    return IdMap(tuple(ranges))


@given(idmaps(), st.integers(0, 2 * 10**6))
def test_mapping_is_a_bijection_on_its_ranges(idmap: IdMap, value: int) -> None:
    outside = idmap.to_outside(value)
    if outside is not None:
        assert idmap.to_inside(outside) == value
    inside = idmap.to_inside(value)
    if inside is not None:
        assert idmap.to_outside(inside) == value
    assert IdMap.parse(idmap.to_text()) == idmap


@given(st.text(max_size=200))
def test_fuzz_uid_map_parser(text: str) -> None:
    with contextlib.suppress(UnrootError):
        IdMap.parse(text)


@given(st.text(alphabet="0123456789 \n\t-", max_size=80))
def test_fuzz_uid_map_digits(text: str) -> None:
    with contextlib.suppress(UnrootError):
        IdMap.parse(text)


@given(st.text(max_size=200) | st.text(alphabet="ab:0123456789#\n ", max_size=80))
def test_fuzz_subid_parser(text: str) -> None:
    with contextlib.suppress(UnrootError):
        parse_subid(text)
