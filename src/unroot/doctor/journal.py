"""The journal ``--apply`` writes before it changes anything, and ``unroot undo`` reads.

One JSON file per apply, mode 0600, fsync'd with its directory, in :func:`journal_dir`
(``$UNROOT_STATE_DIR/journal``, else ``/var/lib/unroot/journal``), named
``YYYYmmddTHHMMSS.ffffffZ-PID.json`` so that names sort by time::

    {"format": "unroot-journal/1", "created": "2026-12-07T02:40:11.123456Z",
     "state": "applying" | "applied",
     "actions": [{"kind", "command", "why", "status": "applied" | "satisfied"}],
     "records": [{"ref": {"node": PATH} | {"group": NAME, "gid": N} | {"sysctl": PATH},
                  "before": STATE, "after": STATE | null}],
     "sha256": hex of the canonical JSON of everything else}

A node's STATE is ``{"type": "absent"}`` or ``{"type", "dev", "ino", "mode", "uid", "gid",
"xattrs": {NAME: hex | null, ...the three names}, "sha256": hex | null}``; a group's
``{"exists": bool, "members": [...]}``; a sysctl's ``{"value": TEXT}``.  ``after`` is null
while ``state`` is ``applying``.  After undo the file is renamed ``….undone.json``; after a
rollback ``….rolledback.json``.

:func:`parse` validates strictly (exact keys, types, ranges, the checksum): anything else is a
:class:`~unroot.errors.UsageError` naming what is wrong.  The checksum catches truncation and
careless edits, not a forger; undo's real guard is that every node must still be in its
recorded after-state.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
from dataclasses import dataclass
from typing import Any

from unroot.doctor.state import (
    NODE_TYPES,
    XATTRS,
    GroupRef,
    GroupState,
    NodeRef,
    NodeState,
    Ref,
    State,
    SysctlRef,
    SysctlState,
    cannot,
)
from unroot.errors import UsageError

FORMAT = "unroot-journal/1"
DEFAULT_DIR = "/var/lib/unroot/journal"
STATUSES = ("applied", "satisfied")
UNDONE_SUFFIX = ".undone.json"
ROLLEDBACK_SUFFIX = ".rolledback.json"
_NAME = re.compile(r"\d{8}T\d{6}\.\d{6}Z-\d+\.json")
_HEX = re.compile(r"(?:[0-9a-f]{2})*")


def journal_dir() -> str:
    """``$UNROOT_STATE_DIR/journal`` when set (tests), else /var/lib/unroot/journal."""
    state = os.environ.get("UNROOT_STATE_DIR")
    return os.path.join(state, "journal") if state else DEFAULT_DIR


@dataclass(frozen=True, slots=True)
class Record:
    ref: Ref
    before: State
    after: State | None = None


@dataclass(frozen=True, slots=True)
class Journal:
    created: str
    state: str  # "applying" or "applied"
    actions: tuple[dict[str, str], ...]
    records: tuple[Record, ...]


# -- to JSON ---------------------------------------------------------------------------------
def _ref_json(ref: Ref) -> dict[str, Any]:
    if isinstance(ref, NodeRef):
        return {"node": ref.path}
    if isinstance(ref, GroupRef):
        return {"group": ref.name, "gid": ref.gid}
    return {"sysctl": ref.path}


def _state_json(state: State) -> dict[str, Any]:
    if isinstance(state, NodeState):
        if state.type == "absent":
            return {"type": "absent"}
        return {
            "type": state.type,
            "dev": state.dev,
            "ino": state.ino,
            "mode": state.mode,
            "uid": state.uid,
            "gid": state.gid,
            "xattrs": dict(state.xattrs),
            "sha256": state.sha256,
        }
    if isinstance(state, GroupState):
        return {"exists": state.exists, "members": list(state.members)}
    return {"value": state.value}


def _checksum(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def to_json(journal: Journal) -> dict[str, Any]:
    body: dict[str, Any] = {
        "format": FORMAT,
        "created": journal.created,
        "state": journal.state,
        "actions": [dict(a) for a in journal.actions],
        "records": [
            {
                "ref": _ref_json(r.ref),
                "before": _state_json(r.before),
                "after": None if r.after is None else _state_json(r.after),
            }
            for r in journal.records
        ],
    }
    return {**body, "sha256": _checksum(body)}


# -- from JSON, strictly ---------------------------------------------------------------------
class _Bad(Exception):
    pass


def _keys(value: object, where: str, keys: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Bad(f"{where} is not an object")
    if set(value) != keys:
        extra, missing = set(value) - keys, keys - set(value)
        detail = f"unexpected {sorted(extra)}" if extra else f"missing {sorted(missing)}"
        raise _Bad(f"{where}: {detail}")
    return value


def _int(value: object, where: str, top: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= top:
        raise _Bad(f"{where} is not an integer within 0..{top}")
    return value


def _str(value: object, where: str) -> str:
    if not isinstance(value, str) or "\0" in value:
        raise _Bad(f"{where} is not a string")
    return value


def _path(value: object, where: str) -> str:
    text = _str(value, where)
    if not text.startswith("/") or os.path.normpath(text) != text:
        raise _Bad(f"{where} is not a normalised absolute path")
    return text


def _hex(value: object, where: str, length: int | None = None) -> str:
    text = _str(value, where)
    if not _HEX.fullmatch(text) or (length is not None and len(text) != length):
        raise _Bad(f"{where} is not lowercase hex")
    return text


def _ref(value: object, where: str) -> Ref:
    if isinstance(value, dict) and "node" in value:
        return NodeRef(_path(_keys(value, where, {"node"})["node"], f"{where}.node"))
    if isinstance(value, dict) and "group" in value:
        data = _keys(value, where, {"group", "gid"})
        name = _str(data["group"], f"{where}.group")
        if not re.fullmatch(r"[a-z_][a-z0-9_-]{0,30}", name):
            raise _Bad(f"{where}.group is not a group name")
        return GroupRef(name, _int(data["gid"], f"{where}.gid", 0xFFFFFFFE))
    data = _keys(value, where, {"sysctl"})
    path = _path(data["sysctl"], f"{where}.sysctl")
    if "/sys/" not in path:
        raise _Bad(f"{where}.sysctl is not a sysctl file")
    return SysctlRef(path)


def _state(ref: Ref, value: object, where: str) -> State:
    if isinstance(ref, NodeRef):
        if isinstance(value, dict) and value.get("type") == "absent":
            _keys(value, where, {"type"})
            return NodeState("absent")
        data = _keys(value, where, {"type", "dev", "ino", "mode", "uid", "gid", "xattrs", "sha256"})
        kind = data["type"]
        if kind not in NODE_TYPES:
            raise _Bad(f"{where}.type is not one of {', '.join(NODE_TYPES)}")
        xattrs = _keys(data["xattrs"], f"{where}.xattrs", set(XATTRS))
        digest = data["sha256"]
        if (digest is None) != (kind != "file"):
            raise _Bad(f"{where}.sha256 belongs to regular files")
        return NodeState(
            kind,
            _int(data["dev"], f"{where}.dev", 2**64 - 1),
            _int(data["ino"], f"{where}.ino", 2**64 - 1),
            _int(data["mode"], f"{where}.mode", 0o7777),
            _int(data["uid"], f"{where}.uid", 0xFFFFFFFE),
            _int(data["gid"], f"{where}.gid", 0xFFFFFFFE),
            tuple(
                (n, None if xattrs[n] is None else _hex(xattrs[n], f"{where}.xattrs.{n}"))
                for n in XATTRS
            ),
            None if digest is None else _hex(digest, f"{where}.sha256", 64),
        )
    if isinstance(ref, GroupRef):
        data = _keys(value, where, {"exists", "members"})
        if not isinstance(data["exists"], bool) or not isinstance(data["members"], list):
            raise _Bad(f"{where} is not a group state")
        members = tuple(_str(m, f"{where}.members") for m in data["members"])
        return GroupState(data["exists"], members)
    data = _keys(value, where, {"value"})
    text = _str(data["value"], f"{where}.value")
    if not re.fullmatch(r"[0-9 \t-]{1,64}", text):
        raise _Bad(f"{where}.value is not a sysctl value")
    return SysctlState(text)


def _parse(data: object) -> Journal:
    top = _keys(data, "the journal", {"format", "created", "state", "actions", "records", "sha256"})
    if top["format"] != FORMAT:
        raise _Bad(f"format is not {FORMAT}")
    body = {k: v for k, v in top.items() if k != "sha256"}
    if _hex(top["sha256"], "sha256", 64) != _checksum(body):
        raise _Bad("its checksum does not match its content (edited or truncated)")
    if top["state"] not in ("applying", "applied"):
        raise _Bad("state is not applying or applied")
    created = _str(top["created"], "created")
    if not isinstance(top["actions"], list) or not isinstance(top["records"], list):
        raise _Bad("actions and records must be lists")
    actions = []
    for i, item in enumerate(top["actions"]):
        action = _keys(item, f"actions[{i}]", {"kind", "command", "why", "status"})
        for key in ("kind", "command", "why"):
            _str(action[key], f"actions[{i}].{key}")
        if action["status"] not in STATUSES:
            raise _Bad(f"actions[{i}].status is not one of {', '.join(STATUSES)}")
        actions.append({k: str(v) for k, v in action.items()})
    records = []
    for i, item in enumerate(top["records"]):
        where = f"records[{i}]"
        record = _keys(item, where, {"ref", "before", "after"})
        ref = _ref(record["ref"], f"{where}.ref")
        before = _state(ref, record["before"], f"{where}.before")
        raw_after = record["after"]
        after = None if raw_after is None else _state(ref, raw_after, f"{where}.after")
        if (after is None) != (top["state"] == "applying"):
            raise _Bad(f"{where}.after must be recorded once applied, and only then")
        records.append(Record(ref, before, after))
    if len({r.ref for r in records}) != len(records):
        raise _Bad("a node is recorded twice")
    return Journal(created, top["state"], tuple(actions), tuple(records))


def parse(text: str | bytes, where: str = "journal") -> Journal:
    """A journal from its text; UsageError (one line) for anything malformed."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise UsageError(f"{where} is not a journal: not JSON ({exc})") from None
    try:
        return _parse(data)
    except _Bad as exc:
        raise UsageError(f"{where} is not a valid unroot journal: {exc}") from None


# -- files -----------------------------------------------------------------------------------
def new_name(now: datetime.datetime | None = None) -> str:
    now = now or datetime.datetime.now(datetime.UTC)
    return f"{now.strftime('%Y%m%dT%H%M%S.%fZ')}-{os.getpid()}.json"


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write(path: str, journal: Journal) -> None:
    """Write (or replace) ``path`` atomically: a 0600 temporary file, fsync, rename, fsync."""
    directory = os.path.dirname(path)
    text = json.dumps(to_json(journal), indent=1, sort_keys=True) + "\n"
    tmp = f"{path}.tmp"
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, text.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
        _fsync_dir(directory)
    except OSError as exc:
        raise cannot(f"write the journal {path}", exc) from None


def read(path: str) -> Journal:
    try:
        with open(path, "rb") as handle:
            data = handle.read(64 << 20)
    except FileNotFoundError:
        for suffix in (UNDONE_SUFFIX, ROLLEDBACK_SUFFIX):
            if os.path.exists(path.removesuffix(".json") + suffix):
                done = "undone" if suffix == UNDONE_SUFFIX else "rolled back when apply failed"
                raise UsageError(f"{path} was already {done}") from None
        raise UsageError(f"no journal {path}") from None
    except OSError as exc:
        raise cannot(f"read {path}", exc) from None
    return parse(data, path)


def mark(path: str, suffix: str) -> str:
    """Rename ``X.json`` to ``X.undone.json`` (or ``.rolledback.json``); the new path."""
    target = path.removesuffix(".json") + suffix
    try:
        os.rename(path, target)
        _fsync_dir(os.path.dirname(path) or ".")
    except OSError as exc:
        raise cannot(f"rename {path}", exc) from None
    return target


def newest(directory: str) -> str:
    """The newest journal in ``directory`` not yet undone; UsageError when there is none."""
    try:
        names = sorted(n for n in os.listdir(directory) if _NAME.fullmatch(n))
    except FileNotFoundError:
        names = []
    except OSError as exc:
        raise cannot(f"list {directory}", exc) from None
    if not names:
        raise UsageError(f"nothing to undo: no journal left in {directory}")
    return os.path.join(directory, names[-1])
