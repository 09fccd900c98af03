"""Properties of the execve transform that capabilities(7) guarantees for every input."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from unroot.model.caps import CapSet
from unroot.model.creds import SECBIT_KEEP_CAPS, SECBITS_ALL, Creds, Ids
from unroot.model.execve import ExecFile, ExecResult, Kernel, execve
from unroot.model.filecaps import FileCaps

IDS = st.sampled_from([0, 1, 1000, 1001, 65534])
MASKS = st.integers(0, (1 << 41) - 1) | st.sampled_from([0, 0x400, 0xA80425FB, (1 << 41) - 1])
KERNELS = st.sampled_from([Kernel((4, 14)), Kernel((5, 8)), Kernel((6, 16)), Kernel((6, 18))])


@st.composite
def creds(draw: st.DrawFn) -> Creds:
    permitted = draw(MASKS)
    inheritable = draw(MASKS)
    return Creds(
        uid=Ids(draw(IDS), draw(IDS), draw(IDS), draw(IDS)),
        gid=Ids(draw(IDS), draw(IDS), draw(IDS), draw(IDS)),
        groups=frozenset(draw(st.lists(IDS, max_size=3))),
        inheritable=CapSet(inheritable),
        permitted=CapSet(permitted),
        effective=CapSet(draw(MASKS) & permitted),
        bounding=CapSet(draw(MASKS)),
        ambient=CapSet(draw(MASKS) & permitted & inheritable),
        securebits=draw(st.integers(0, SECBITS_ALL)),
        no_new_privs=draw(st.booleans()),
    )


@st.composite
def files(draw: st.DrawFn) -> ExecFile:
    caps = None
    if draw(st.booleans()):
        revision = draw(st.sampled_from([1, 2, 3]))
        limit = (1 << 32) - 1 if revision == 1 else (1 << 64) - 1
        caps = FileCaps(
            CapSet(draw(MASKS | st.integers(0, limit)) & limit),
            CapSet(draw(MASKS) & limit),
            draw(st.booleans()),
            revision,
            draw(st.sampled_from([0, 1000, 100000])) if revision == 3 else None,
        )
    return ExecFile(
        "/srv/prog",
        caps,
        draw(st.none() | IDS),
        draw(st.none() | IDS),
        draw(st.booleans()),
        draw(st.booleans()),
    )


NAMESPACES = st.sampled_from([(0,), (1000, 0), (100000, 0)])


def run(
    old: Creds, file: ExecFile, roots: tuple[int, ...], kernel: Kernel, unsafe: bool
) -> ExecResult:
    return execve(old, file, userns_root_uids=roots, kernel=kernel, unsafe=unsafe)


@settings(max_examples=600)
@given(creds(), files(), NAMESPACES, KERNELS, st.booleans())
def test_invariants(
    old: Creds, file: ExecFile, roots: tuple[int, ...], kernel: Kernel, unsafe: bool
) -> None:
    result = run(old, file, roots, kernel, unsafe)
    new = result.creds
    assert new.invariant_violations() == []
    assert new.ambient.issubset(new.permitted & new.inheritable)
    assert new.effective.issubset(new.permitted)
    assert new.bounding == old.bounding
    assert new.inheritable == old.inheritable
    assert new.groups == old.groups
    assert new.no_new_privs == old.no_new_privs
    assert new.uid.real == old.uid.real
    assert new.gid.real == old.gid.real
    assert result.reasons
    if result.errno is None:
        assert new.uid.saved == new.uid.fs == new.uid.effective
        assert new.gid.saved == new.gid.fs == new.gid.effective
        assert new.securebits == old.securebits & ~SECBIT_KEEP_CAPS
        assert new.ambient.issubset(old.ambient)
    else:
        assert result.errno == "EPERM"
        assert new == old, "EPERM leaves the credentials unchanged"
        assert not result.secure_exec
        assert file.file_caps is not None
        assert file.file_caps.effective


@settings(max_examples=400)
@given(creds(), files(), NAMESPACES, KERNELS, st.booleans())
def test_no_new_privs_never_gains(
    old: Creds, file: ExecFile, roots: tuple[int, ...], kernel: Kernel, unsafe: bool
) -> None:
    old = replace(old, no_new_privs=True)
    new = run(old, file, roots, kernel, unsafe).creds
    assert new.permitted.issubset(old.permitted)
    assert new.uid.effective in (old.uid.effective, old.uid.real)
    assert new.gid.effective in (old.gid.effective, old.gid.real)


@settings(max_examples=300)
@given(creds(), files(), NAMESPACES, KERNELS)
def test_nosuid_file_is_a_plain_file(
    old: Creds, file: ExecFile, roots: tuple[int, ...], kernel: Kernel
) -> None:
    on_nosuid = run(old, replace(file, nosuid=True), roots, kernel, False)
    plain = run(old, ExecFile(file.path), roots, kernel, False)
    assert (on_nosuid.errno, on_nosuid.creds, on_nosuid.secure_exec) == (
        plain.errno,
        plain.creds,
        plain.secure_exec,
    )


@settings(max_examples=300)
@given(creds(), NAMESPACES, KERNELS)
def test_nonroot_plain_exec_keeps_only_ambient(
    old: Creds, roots: tuple[int, ...], kernel: Kernel
) -> None:
    """capabilities(7): a non-root process executing a file without capabilities or set-ID bits
    ends up with pP' = pE' = pA' (ambient capabilities are the only way through)."""
    if old.uid.real == 0 or old.uid.effective == 0:
        old = replace(old, uid=Ids.same(1000))
    result = run(old, ExecFile("/bin/sh"), roots, kernel, False)
    assert result.creds.permitted == result.creds.effective == result.creds.ambient


@settings(max_examples=300)
@given(creds(), files(), NAMESPACES, KERNELS, st.booleans())
def test_running_kernel_agrees_with_old_rules_when_nothing_is_odd(
    old: Creds, file: ExecFile, roots: tuple[int, ...], kernel: Kernel, unsafe: bool
) -> None:
    """The 6.17 change only matters when ruid != euid, rgid != egid, or fsgid/groups differ."""
    old = replace(
        old,
        uid=Ids.same(old.uid.real),
        gid=Ids.same(old.gid.real),
        groups=old.groups - {file.setgid_owner},  # gid 0 too: `or -1` skipped it
    )
    new_rules = run(old, file, roots, Kernel((6, 18)), unsafe)
    old_rules = run(old, file, roots, Kernel((6, 16)), unsafe)
    assert new_rules.creds == old_rules.creds
    assert new_rules.secure_exec == old_rules.secure_exec
