"""``unroot undo`` as a user types it, and the journal parser under fuzzing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _certbot import dump_hash
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unroot.doctor import journal as jrnl
from unroot.doctor.actions import AclSpec, CreateFile, SetAcl
from unroot.doctor.apply import apply
from unroot.doctor.state import GroupRef, GroupState, NodeRef, NodeState, SysctlRef, SysctlState
from unroot.errors import UsageError

UNROOT = str(Path(sys.executable).parent / "unroot")


def run_undo(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "UNROOT_STATE_DIR": str(state)}
    return subprocess.run(
        [UNROOT, "undo", *args], capture_output=True, text=True, env=env, check=False, timeout=60
    )


@pytest.fixture
def applied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, str, str]:
    """A tree, the state dir, the tree's hash before, and the journal of an apply to it."""
    tree = tmp_path / "tree"
    (tree / "d").mkdir(parents=True)
    (tree / "d" / "key").write_bytes(b"k")
    (tree / "d" / "key").chmod(0o600)
    state = tmp_path / "state"
    monkeypatch.setenv("UNROOT_STATE_DIR", str(state))
    before = dump_hash(tree)
    done = apply(
        [
            SetAcl(str(tree / "d"), (AclSpec("g", 2200, 1),)),
            SetAcl(str(tree / "d" / "key"), (AclSpec("g", 2200, 4),)),
            CreateFile(str(tree / "hooks" / "60-unroot.sh"), b"#!/bin/sh\n", 0o755),
        ]
    )
    assert done.journal is not None
    assert done.journal.startswith(str(state / "journal") + "/")
    return tree, state, before, done.journal


@pytest.mark.root
def test_undo_without_argument_undoes_the_newest_journal_once(
    applied: tuple[Path, Path, str, str],
) -> None:
    tree, state, before, journal = applied
    done = run_undo(state)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines() == [
        f"restored {tree}/d",
        f"restored {tree}/d/key",
        f"restored {tree}/hooks",
        f"restored {tree}/hooks/60-unroot.sh",
        f"undone: {journal} (now {journal.removesuffix('.json')}.undone.json)",
    ]
    assert dump_hash(tree) == before
    again = run_undo(state)
    assert again.returncode == 2
    assert again.stderr == f"unroot: nothing to undo: no journal left in {state}/journal\n"
    named = run_undo(state, journal)
    assert (named.returncode, named.stderr) == (2, f"unroot: {journal} was already undone\n")


@pytest.mark.root
def test_undo_refuses_a_node_changed_since_with_one_line(
    applied: tuple[Path, Path, str, str],
) -> None:
    tree, state, _, journal = applied
    os.chmod(tree / "d" / "key", 0o644)
    after = dump_hash(tree)
    done = run_undo(state)
    assert done.returncode == 2
    assert done.stderr == (
        f"unroot: undo refused, nothing changed: {tree}/d/key: mode 0640, now 0644 "
        "since the apply\n"
    )
    assert dump_hash(tree) == after
    assert os.path.exists(journal)


def _edit_mode(data: dict[str, Any]) -> None:
    data["records"][1]["after"]["mode"] = 0o644


def _edit_and_rehash(data: dict[str, Any]) -> None:
    data["records"][1]["after"]["mode"] = 0o644
    data["sha256"] = jrnl._checksum({k: v for k, v in data.items() if k != "sha256"})


def _edit_before_extra_key(data: dict[str, Any]) -> None:
    data["records"][0]["before"]["extra"] = 1
    data["sha256"] = jrnl._checksum({k: v for k, v in data.items() if k != "sha256"})


CORRUPTIONS: dict[str, Any] = {
    "edited": (_edit_mode, "its checksum does not match its content"),
    "edited-and-rehashed": (_edit_and_rehash, "undo refused, nothing changed: "),
    "extra-key": (_edit_before_extra_key, "records[0].before: unexpected ['extra']"),
    "truncated": (lambda text: text[: len(text) // 2], "not JSON"),
    "garbage": (lambda text: "\x00\xff garbage", "not JSON"),
    "empty": (lambda text: "", "not JSON"),
    "a list": (lambda text: "[]", "the journal is not an object"),
}


@pytest.mark.root
@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_a_bad_journal_is_one_line_and_exit_2(
    applied: tuple[Path, Path, str, str], corruption: str
) -> None:
    tree, state, _, journal = applied
    edit, expected = CORRUPTIONS[corruption]
    text = Path(journal).read_text()
    if corruption.startswith(("edited", "extra")):
        data = json.loads(text)
        edit(data)
        text = json.dumps(data)
    else:
        text = edit(text)
    Path(journal).write_text(text, errors="surrogateescape")
    after = dump_hash(tree)
    done = run_undo(state, journal)
    assert done.returncode == 2
    assert done.stderr.startswith("unroot: ")
    assert done.stderr.count("\n") == 1
    assert expected in done.stderr
    assert dump_hash(tree) == after


@pytest.mark.root
def test_an_apply_that_never_finished_is_not_undone(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"x")
    f.chmod(0o600)
    ref = NodeRef(str(f))
    from unroot.doctor.state import node_state

    path = str(tmp_path / "j" / jrnl.new_name())
    jrnl.write(path, jrnl.Journal("now", "applying", (), (jrnl.Record(ref, node_state(str(f))),)))
    done = run_undo(tmp_path / "unused", path)
    assert done.returncode == 2
    assert "never finished" in done.stderr


# -- fuzzing the parser ------------------------------------------------------------------------
def _sample() -> dict[str, Any]:
    node = NodeState(
        "file", 2049, 12, 0o640, 0, 0,
        (("system.posix_acl_access", "02000000"), ("system.posix_acl_default", None),
         ("security.capability", None)),
        "ab" * 32,
    )  # fmt: skip
    records = (
        jrnl.Record(NodeRef("/etc/k"), NodeState("absent"), node),
        jrnl.Record(GroupRef("unroot-2200", 2200), GroupState(False), GroupState(True)),
        jrnl.Record(SysctlRef("/proc/sys/net/ipv4/x"), SysctlState("1024"), SysctlState("80")),
    )
    action = {"kind": "acl", "command": "setfacl", "why": "w", "status": "applied"}
    return jrnl.to_json(jrnl.Journal("2026", "applied", (action,), records))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def test_the_sample_journal_parses() -> None:
    parsed = jrnl.parse(json.dumps(_sample()))
    assert len(parsed.records) == 3


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), JSON, st.booleans())
def test_a_mutated_journal_parses_or_is_a_usage_error(
    data: st.DataObject, replacement: Any, rehash: bool
) -> None:
    sample = _sample()
    paths = [p for p in _paths(sample) if p and p[0] != "sha256"]
    where = data.draw(st.sampled_from(paths))
    target: Any = sample
    for key in where[:-1]:
        target = target[key]
    if data.draw(st.booleans()) and isinstance(target, dict):
        del target[where[-1]]
    else:
        target[where[-1]] = replacement
    if rehash:
        sample["sha256"] = jrnl._checksum({k: v for k, v in sample.items() if k != "sha256"})
    message = ""
    try:
        jrnl.parse(json.dumps(sample))
    except UsageError as exc:
        message = str(exc)
    assert "\n" not in message


@given(st.binary(max_size=200) | st.text(max_size=200))
def test_random_bytes_are_a_usage_error(blob: bytes | str) -> None:
    with pytest.raises(UsageError):
        jrnl.parse(blob)
