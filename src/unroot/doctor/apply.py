"""``--apply`` and ``unroot undo``: snapshot, journal, change; check, restore, verify.

:func:`apply` first asks every action whether it is already satisfied (skipped, recorded as
such) or refused (nothing at all is done: one line), snapshots everything the others touch,
writes the journal (fsync'd) *before* the first change, performs the actions in order, and
records each node's after-state.  A failure halfway restores everything from the snapshot and
raises one line; the journal is renamed ``….rolledback.json``.  When every action is already
satisfied nothing changes and **no journal is written** (``Applied.journal`` is None).

:func:`undo` refuses, changing nothing, unless every recorded thing is exactly in its
after-state (type, inode number, mode, owner, the three xattrs, a file's content hash; a group
and its members; a sysctl's value) and every directory to remove holds only files to remove;
then it restores each record's before-state in reverse order, verifies it, and renames the
journal ``….undone.json``.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Sequence
from dataclasses import dataclass

from unroot.doctor import journal as jrnl
from unroot.doctor.actions import Action
from unroot.doctor.state import (
    GroupRef,
    NodeRef,
    NodeState,
    Pins,
    Ref,
    State,
    differs,
    restore,
    snapshot,
)
from unroot.errors import EnvironmentProblem, UnrootError, UsageError


@dataclass(frozen=True, slots=True)
class Outcome:
    action: Action
    status: str  # "applied" or "satisfied"


@dataclass(frozen=True, slots=True)
class Applied:
    """What :func:`apply` did: each action's status, and the journal (None: nothing changed)."""

    outcomes: tuple[Outcome, ...]
    journal: str | None

    @property
    def changed(self) -> bool:
        return self.journal is not None

    def to_json(self) -> list[dict[str, str]]:
        return [{**o.action.to_json(), "status": o.status} for o in self.outcomes]


@dataclass(frozen=True, slots=True)
class Undone:
    journal: str  # the renamed journal
    restored: tuple[str, ...]  # one line per record


def _describe(ref: Ref) -> str:
    if isinstance(ref, GroupRef):
        return f"group {ref.name}"
    return ref.path


def apply(actions: Sequence[Action], *, journal_dir: str | None = None) -> Applied:
    """Perform ``actions`` in order after journaling the previous state (see the module doc)."""
    pending = []
    outcomes = []
    for action in actions:
        done = action.satisfied() if action.touches() else False
        outcomes.append(Outcome(action, "satisfied" if done else "applied"))
        if not done:
            pending.append(action)
    for action in pending:
        reason = action.refusal()
        if reason is not None:
            raise UsageError(f"not applying anything: {reason}")
    if not pending:
        return Applied(tuple(outcomes), None)
    refs: list[Ref] = list(dict.fromkeys(ref for a in pending for ref in a.touches()))
    before = {ref: snapshot(ref) for ref in refs}
    directory = journal_dir or jrnl.journal_dir()
    path = os.path.join(directory, jrnl.new_name())
    created = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    listed = tuple({**o.action.to_json(), "status": o.status} for o in outcomes)
    records = tuple(jrnl.Record(ref, before[ref]) for ref in refs)
    journal = jrnl.Journal(created, "applying", listed, records)
    jrnl.write(path, journal)
    pins = Pins(
        {
            r.path: s
            for r, s in before.items()
            if isinstance(r, NodeRef) and isinstance(s, NodeState)
        }
    )
    for action in pending:
        try:
            action.apply(pins)
        except UnrootError as exc:
            _rollback(refs, before)
            jrnl.mark(path, jrnl.ROLLEDBACK_SUFFIX)
            raise type(exc)(
                f"applying `{action.command}` failed ({exc}); everything applied before it was "
                "rolled back"
            ) from None
    after = tuple(jrnl.Record(ref, before[ref], snapshot(ref)) for ref in refs)
    jrnl.write(path, jrnl.Journal(created, "applied", listed, after))
    return Applied(tuple(outcomes), path)


def _rollback(refs: list[Ref], before: dict[Ref, State]) -> None:
    """Restore what differs from the snapshot; a node that is no longer the recorded inode was
    not changed by this apply (the pins refused it) and is left alone."""
    problems = []
    for ref in reversed(refs):
        want = before[ref]
        try:
            live = snapshot(ref)
            if isinstance(want, NodeState) and isinstance(live, NodeState):
                replaced = want.type != "absent" and (live.dev, live.ino) != (want.dev, want.ino)
                if replaced:
                    continue
            if live != want:
                restore(ref, want)
        except UnrootError as exc:
            problems.append(str(exc))
    if problems:
        raise EnvironmentProblem(f"rollback incomplete: {'; '.join(problems)}")


def undo(journal_path: str) -> Undone:
    """Restore the before-state a journal records (see the module doc)."""
    journal = jrnl.read(journal_path)
    if journal.state != "applied":
        raise UsageError(
            f"{journal_path} records an apply that never finished; nothing restored (its "
            "before-states are in the file)"
        )
    changed = []
    for record in journal.records:
        assert record.after is not None
        problem = differs(record.ref, record.after, snapshot(record.ref))
        if problem is not None:
            changed.append(problem)
    if changed:
        more = f" (and {len(changed) - 1} more)" if len(changed) > 1 else ""
        raise UsageError(f"undo refused, nothing changed: {changed[0]}{more} since the apply")
    removed = {
        r.ref.path
        for r in journal.records
        if isinstance(r.ref, NodeRef)
        and isinstance(r.before, NodeState)
        and r.before.type == "absent"
    }
    for record in journal.records:
        if isinstance(record.ref, NodeRef) and record.ref.path in removed:
            assert isinstance(record.after, NodeState)
            if record.after.type == "dir":
                extra = [
                    name
                    for name in os.listdir(record.ref.path)
                    if os.path.join(record.ref.path, name) not in removed
                ]
                if extra:
                    raise UsageError(
                        f"undo refused, nothing changed: {record.ref.path} now also holds "
                        f"{extra[0]}, which the apply did not create"
                    )
    lines = []
    for record in reversed(journal.records):
        restore(record.ref, record.before)
        lines.append(f"restored {_describe(record.ref)}")
    wrong = [
        p for r in journal.records if (p := differs(r.ref, r.before, snapshot(r.ref))) is not None
    ]
    if wrong:
        raise EnvironmentProblem(f"undo could not restore {wrong[0]}")
    return Undone(jrnl.mark(journal_path, jrnl.UNDONE_SUFFIX), tuple(reversed(lines)))
