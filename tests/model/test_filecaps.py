"""The security.capability codec: exact bytes, round trips, rejection, fuzzing, and the real
setcap(8)/getcap(8) (libcap2-bin) on a real file."""

from __future__ import annotations

import contextlib
import os
import shutil
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unroot.errors import ParseError, UnrootError
from unroot.model.caps import CAP_LAST_CAP, CapSet
from unroot.model.filecaps import XATTR_NAME_CAPS, FileCaps

ANY_CAPS = st.integers(0, (1 << (CAP_LAST_CAP + 1)) - 1).map(CapSet)
ANY_MASK = st.integers(0, (1 << 64) - 1).map(CapSet)


def words(*values: int) -> bytes:
    return struct.pack(f"<{len(values)}I", *values)


# -- exact bytes ----------------------------------------------------------------------------------
def test_net_bind_service_ep_is_the_documented_bytes() -> None:
    """KERNEL-NOTES: ``cap_net_bind_service=ep`` is 01000002 00040000 00000000 00000000 00000000
    (little-endian words: magic 0x02000001, permitted bit 10)."""
    caps = FileCaps.from_text("cap_net_bind_service=ep")
    assert caps.encode() == bytes.fromhex("0100000200040000000000000000000000000000")
    assert caps.encode() == words(0x02000001, 0x400, 0, 0, 0)
    assert FileCaps.decode(caps.encode()) == caps
    assert FileCaps.from_hex("01000002 00040000 00000000 00000000 00000000") == caps


@pytest.mark.parametrize(
    ("caps", "data"),
    [
        (FileCaps(CapSet.of(0), revision=1), words(0x01000000, 1, 0)),
        (FileCaps(CapSet(), CapSet.of(31), True, 1), words(0x01000001, 0, 1 << 31)),
        (FileCaps(CapSet.of(40), CapSet.of(32)), words(0x02000000, 0, 0, 1 << 8, 1)),
        (
            FileCaps(CapSet.of(13), effective=True, revision=3, rootid=100000),
            words(0x03000001, 1 << 13, 0, 0, 0, 100000),
        ),
    ],
)
def test_exact_bytes_per_revision(caps: FileCaps, data: bytes) -> None:
    assert caps.encode() == data
    assert FileCaps.decode(data) == caps


# -- round trips ----------------------------------------------------------------------------------
@given(ANY_MASK, ANY_MASK, st.booleans(), st.integers(0, (1 << 32) - 1))
def test_round_trip_every_revision(
    permitted: CapSet, inheritable: CapSet, effective: bool, rootid: int
) -> None:
    low = CapSet(0xFFFFFFFF)
    v1 = FileCaps(permitted & low, inheritable & low, effective, 1)
    v2 = FileCaps(permitted, inheritable, effective, 2)
    v3 = FileCaps(permitted, inheritable, effective, 3, rootid)
    for caps, size in ((v1, 12), (v2, 20), (v3, 24)):
        data = caps.encode()
        assert len(data) == size
        assert FileCaps.decode(data) == caps
        assert FileCaps.from_hex(data.hex()) == caps


@given(ANY_CAPS, ANY_CAPS, st.booleans())
def test_text_round_trip(permitted: CapSet, inheritable: CapSet, effective: bool) -> None:
    caps = FileCaps(permitted, inheritable, effective and bool(permitted | inheritable))
    assert FileCaps.from_text(caps.to_text()) == caps


# -- rejection ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x01\x00\x00",
        words(0x01000000, 0),  # rev 1 needs 12 bytes
        words(0x01000000, 0, 0, 0, 0),  # rev 1 with rev 2's size
        words(0x02000000, 0, 0, 0),  # rev 2 needs 20
        words(0x02000000, 0, 0, 0, 0, 0),  # rev 2 with rev 3's size
        words(0x03000000, 0, 0, 0, 0),  # rev 3 needs 24
        words(0x03000000, 0, 0, 0, 0, 0, 0),
        words(0x04000000, 0, 0, 0, 0),  # unknown revision
        words(0x00000000, 0, 0, 0, 0),
        words(0x02000002, 0, 0, 0, 0),  # a flag other than the effective bit
        words(0x02800000, 0, 0, 0, 0),
    ],
)
def test_invalid_xattr_rejected(data: bytes) -> None:
    with pytest.raises(ParseError):
        FileCaps.decode(data)


def test_invalid_values_rejected() -> None:
    with pytest.raises(ParseError):
        FileCaps(revision=4)
    with pytest.raises(ParseError):
        FileCaps(revision=2, rootid=0)
    with pytest.raises(ParseError):
        FileCaps(revision=3)
    with pytest.raises(ParseError):
        FileCaps(CapSet.of(40), revision=1)
    for text in ("zz", "0x1", "01 00 00 02 00"):
        with pytest.raises(ParseError):
            FileCaps.from_hex(text)


# -- fuzzing: nothing but the project's own errors ------------------------------------------------
PLAUSIBLE = st.builds(
    lambda magic, body: struct.pack("<I", magic) + body,
    st.sampled_from([0x01000000, 0x02000000, 0x03000000, 0x02000001, 0x03000003, 0xFF000000]),
    st.sampled_from([8, 16, 20, 24]).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
)


@settings(max_examples=2000)
@given(st.binary(max_size=40) | PLAUSIBLE)
def test_decode_fuzz_raises_only_parse_error(data: bytes) -> None:
    try:
        caps = FileCaps.decode(data)
    except ParseError:
        return
    assert caps.encode() == data


TOKENS = st.sampled_from(
    [
        "cap_",
        "net_bind_service",
        "chown",
        "all",
        "ALL",
        "none",
        "0x",
        "ff",
        "41",
        "63",
        "64",
        *list(",=+-eip \t"),
    ]
)
TEXT = st.lists(TOKENS, max_size=12).map("".join) | st.text(max_size=30)


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
@given(TEXT)
def test_text_parsers_raise_only_unroot_errors(text: str) -> None:
    for parse in (FileCaps.from_text, CapSet.parse):
        with contextlib.suppress(UnrootError):
            parse(text)


# -- the real setcap/getcap ----------------------------------------------------------------------
@pytest.fixture
def capfile(tmp_path: Path) -> Iterator[Path]:
    if shutil.which("setcap") is None or shutil.which("getcap") is None:
        pytest.skip("needs setcap/getcap (Debian: libcap2-bin)")
    target = tmp_path / "prog"
    shutil.copyfile("/bin/true", target)
    target.chmod(0o755)
    return target


def getcap(path: Path) -> tuple[str, str]:
    out = subprocess.run(
        ["getcap", "-n", str(path)], capture_output=True, text=True, check=True
    ).stdout
    text = out.strip().removeprefix(str(path)).strip()
    caps, _, rootid = text.partition(" [rootid=")
    return caps, rootid.rstrip("]")


SETCAP_TEXTS = [
    "cap_net_bind_service=ep",
    "cap_net_bind_service,cap_net_raw=p",
    "cap_chown=eip",
    "cap_sys_admin=i cap_net_raw=p",
    "cap_net_raw+ep cap_sys_admin+eip",
    "all=ep",
    "cap_perfmon,cap_bpf,cap_checkpoint_restore=ei",
    "=",
]


@pytest.mark.root
@pytest.mark.parametrize("text", SETCAP_TEXTS)
def test_setcap_writes_what_from_text_encodes(capfile: Path, text: str) -> None:
    subprocess.run(["setcap", text, str(capfile)], check=True, capture_output=True)
    raw = os.getxattr(capfile, XATTR_NAME_CAPS)
    assert FileCaps.decode(raw) == FileCaps.from_text(text)
    assert raw == FileCaps.from_text(text).encode()
    assert getcap(capfile)[0] == FileCaps.decode(raw).to_text()


@pytest.mark.root
def test_setcap_rootid_writes_revision_3(capfile: Path) -> None:
    subprocess.run(
        ["setcap", "-n", "100000", "cap_net_raw=ep", str(capfile)], check=True, capture_output=True
    )
    caps = FileCaps.decode(os.getxattr(capfile, XATTR_NAME_CAPS))
    assert caps == FileCaps(CapSet.of("cap_net_raw"), effective=True, revision=3, rootid=100000)
    assert getcap(capfile) == ("cap_net_raw=ep", "100000")


@pytest.mark.root
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ANY_CAPS, ANY_CAPS, st.booleans(), st.sampled_from([None, 1000, 100000]))
def test_encoded_xattr_reads_back_through_getcap(
    capfile: Path, permitted: CapSet, inheritable: CapSet, effective: bool, rootid: int | None
) -> None:
    caps = FileCaps(permitted, inheritable, effective, 3 if rootid else 2, rootid)
    os.setxattr(capfile, XATTR_NAME_CAPS, caps.encode())
    text, seen_rootid = getcap(capfile)
    if not permitted and not inheritable and not effective:
        assert text in ("", "=")
    else:
        assert text == caps.to_text()
    assert seen_rootid == (str(rootid) if rootid else "")
    assert FileCaps.from_text(text or "=") == FileCaps(
        permitted, inheritable, effective and bool(permitted | inheritable)
    )
