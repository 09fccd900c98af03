"""facts/proc.py: /proc/PID/status, from captured files and from the live kernel.

The captured files are in data/ (see data/README.md for how each was made).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unroot import syscalls
from unroot.errors import EnvironmentProblem, ParseError, UsageError
from unroot.facts import proc
from unroot.facts.proc import ProcStatus, parse_status, read_status
from unroot.model.caps import CapSet
from unroot.model.creds import Creds, Ids

DATA = Path(__file__).parent / "data"
NET_BIND = CapSet.of("cap_net_bind_service")


def fixture(name: str) -> str:
    return (DATA / name).read_text()


# -- captured status files ------------------------------------------------------------------------
def test_root_shell() -> None:
    status = parse_status(fixture("root-shell.status"))
    assert status.name == "cat"
    assert status.pid == 5474
    assert status.uid == Ids.same(0)
    assert status.gid == Ids.same(0)
    assert status.groups == ()
    assert status.inheritable == CapSet()
    # this sandbox's bounding set lacks cap_sys_resource (bit 24)
    assert status.permitted == status.effective == status.bounding == CapSet(0x000001FFFEFFFFFF)
    assert "cap_sys_resource" not in status.bounding
    assert status.ambient == CapSet()
    assert status.no_new_privs is False
    assert status.seccomp == 0


def test_setpriv_uid1000_ambient_no_new_privs() -> None:
    status = parse_status(fixture("uid1000-ambient-nnp.status"))
    assert status.uid == Ids.same(1000)
    assert status.gid == Ids.same(1000)
    assert status.groups == (27, 100)
    for name in ("inheritable", "permitted", "effective", "bounding", "ambient"):
        assert getattr(status, name) == NET_BIND, name
    assert status.no_new_privs is True


def test_seccomp_filter_and_a_comm_with_tab_colon_and_newline() -> None:
    status = parse_status(fixture("seccomp-filter-odd-name.status"))
    assert status.seccomp == 2
    assert status.no_new_privs is True
    # the kernel prints the tab as is and escapes the newline; the colon is part of the name
    assert status.name == "web\tsrv: 80\\n"


def test_user_namespace_with_unmapped_ids() -> None:
    status = parse_status(fixture("userns-unmapped.status"))
    assert status.uid == Ids.same(65534)
    assert status.permitted == CapSet()
    assert status.bounding == CapSet.all()


def test_old_kernel_without_ambient_no_new_privs_or_seccomp_lines() -> None:
    status = parse_status(fixture("handmade-linux-3.x.status"))
    assert status.ambient == CapSet()
    assert status.no_new_privs is None
    assert status.seccomp is None
    assert status.bounding == CapSet.all(36)
    assert status.to_creds().no_new_privs is False


def test_to_creds() -> None:
    status = parse_status(fixture("uid1000-ambient-nnp.status"))
    creds = status.to_creds(securebits=0x10)
    assert creds == Creds(
        uid=Ids.same(1000),
        gid=Ids.same(1000),
        groups=frozenset({27, 100}),
        inheritable=NET_BIND,
        permitted=NET_BIND,
        effective=NET_BIND,
        bounding=NET_BIND,
        ambient=NET_BIND,
        securebits=0x10,
        no_new_privs=True,
    )
    assert creds.invariant_violations() == []


@pytest.mark.parametrize("path", sorted(DATA.glob("*.status")), ids=lambda p: p.name)
def test_every_captured_status_parses_to_consistent_creds(path: Path) -> None:
    creds = parse_status(path.read_text()).to_creds()
    assert creds.invariant_violations() == []


# -- malformed input ------------------------------------------------------------------------------
def _replace(text: str, key: str, value: str | None) -> str:
    lines = []
    for line in text.splitlines():
        if not line.startswith(key + ":"):
            lines.append(line)
        elif value is not None:
            lines.append(f"{key}:\t{value}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("Uid", None, "no Uid line"),
        ("CapBnd", None, "no CapBnd line"),
        ("Uid", "0\t0\t0", "Uid: expected real, effective, saved and fs ids"),
        ("Uid", "0\t0\t0\t4294967295", "Uid: id 4294967295 out of range"),
        ("Gid", "0\t-1\t0\t0", "Gid: expected a number"),
        ("CapEff", "1fffffffffffffffff", "CapEff: expected a hex capability mask"),
        ("CapEff", "zz", "CapEff: expected a hex capability mask"),
        ("CapAmb", "", "CapAmb: expected a hex capability mask"),
        ("NoNewPrivs", "2", "NoNewPrivs: expected 0 or 1"),
        ("Groups", "27 x", "Groups: expected a number"),
        ("Pid", "٣", "Pid: expected a number"),  # an Arabic-Indic digit: int() would take it
    ],
)
def test_malformed_fields_are_parse_errors_naming_the_field(
    key: str, value: str | None, message: str
) -> None:
    text = _replace(fixture("root-shell.status"), key, value)
    with pytest.raises(ParseError, match=message):
        parse_status(text)


def test_empty_text() -> None:
    with pytest.raises(ParseError, match="not a /proc/PID/status text"):
        parse_status("")


def test_first_occurrence_of_a_field_wins() -> None:
    text = fixture("root-shell.status") + "Uid:\t5\t5\t5\t5\n"
    assert parse_status(text).uid == Ids.same(0)


STATUS_KEYS = ["Name", "Pid", "Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd",
               "CapAmb", "NoNewPrivs", "Seccomp", "Umask"]  # fmt: skip


@st.composite
def status_like(draw: st.DrawFn) -> str:
    """Text close to a status file: the right keys with plausible or broken values."""
    value = st.one_of(
        st.text(max_size=30),
        st.from_regex(r"[0-9a-fA-F]{0,18}", fullmatch=True),
        st.lists(st.integers(-2, 2**33).map(str), max_size=5).map("\t".join),
    )
    lines = draw(st.lists(st.tuples(st.sampled_from(STATUS_KEYS), value), max_size=20))
    return "".join(f"{key}:\t{val}\n" for key, val in lines)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(), status_like()))
def test_fuzz_parse_status_raises_only_parse_error(text: str) -> None:
    try:
        status = parse_status(text)
    except ParseError:
        return
    assert isinstance(status, ProcStatus)
    status.to_creds()


@settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(st.integers(0, 60), max_size=8),
    junk=st.text(alphabet=st.characters(codec="utf-8"), max_size=12),
)
def test_fuzz_mutated_real_status(lines: list[int], junk: str) -> None:
    """Real text with some lines replaced by junk: a value or a ParseError, nothing else."""
    real = fixture("uid1000-ambient-nnp.status").splitlines()
    for index in lines:
        if index < len(real):
            key = real[index].partition(":")[0]
            real[index] = f"{key}:{junk}"
    with contextlib.suppress(ParseError):
        parse_status("\n".join(real))


# -- read_status: the procfs root is injectable ----------------------------------------------------
@pytest.fixture
def procfs(tmp_path: Path) -> Path:
    (tmp_path / "1234").mkdir()
    shutil.copy(DATA / "uid1000-ambient-nnp.status", tmp_path / "1234" / "status")
    return tmp_path


def test_read_status_from_an_injected_procfs(procfs: Path) -> None:
    status = read_status(1234, procfs=str(procfs))
    assert status.ambient == NET_BIND


def test_no_such_process_is_a_usage_error(procfs: Path) -> None:
    with pytest.raises(UsageError, match="no such process: 99"):
        read_status(99, procfs=str(procfs))


def test_no_procfs_is_an_environment_problem(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentProblem, match="not mounted"):
        read_status("self", procfs=str(tmp_path / "nothing"))


def test_permission_denied_is_an_environment_problem(
    procfs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def denied(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(proc, "open", denied, raising=False)
    with pytest.raises(EnvironmentProblem, match="Permission denied"):
        read_status(1234, procfs=str(procfs))


def test_other_read_errors_are_environment_problems(procfs: Path) -> None:
    os.remove(procfs / "1234" / "status")
    (procfs / "1234" / "status").mkdir()
    with pytest.raises(EnvironmentProblem, match="Is a directory"):
        read_status(1234, procfs=str(procfs))


# -- the live kernel -------------------------------------------------------------------------------
def test_read_self_agrees_with_the_syscalls() -> None:
    status = read_status("self")
    assert status.pid == os.getpid()
    assert (status.uid.real, status.uid.effective, status.uid.saved) == os.getresuid()
    assert (status.gid.real, status.gid.effective, status.gid.saved) == os.getresgid()
    assert set(status.groups) == set(os.getgroups())
    effective, permitted, inheritable = syscalls.capget()
    assert (status.effective.mask, status.permitted.mask, status.inheritable.mask) == (
        effective,
        permitted,
        inheritable,
    )
    assert status.no_new_privs == syscalls.get_no_new_privs()
    for bit in range(41):
        assert (bit in status.bounding) == syscalls.bounding_has(bit)


def test_read_another_process() -> None:
    status = read_status(os.getppid())
    assert status.pid == os.getppid()
