"""PURE: an exec, bind or access *question* → the model's JSON answer.

A question is a dict whose keys are ``unroot explain``'s flag names with underscores (one line
of ``explain batch``); :func:`answer` parses it, asks :mod:`unroot.model` and returns the JSON
answer.  The only facts an answer may need from the live system — the inodes on a path, the
``fs.protected_symlinks`` sysctl, a ``--fs-json`` file — come through the :class:`LiveFacts`
the caller passes (:data:`unroot.facts.questions.LIVE`), so the command line (``unroot
explain``) and other front ends (``doctor``) share this module without importing each other.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from unroot.errors import ParseError, UsageError

if TYPE_CHECKING:
    from unroot.model.access import Inode

Question = Mapping[str, Any]
Answer = dict[str, Any]


class LiveFacts(Protocol):
    """What an answer may need from the live system (:mod:`unroot.facts.questions`)."""

    def read_json(self, name: str) -> Any:
        """The JSON document in file ``name`` (a ``--fs-json`` tree)."""

    def access_facts(self, path: str) -> tuple[str, Mapping[str, Inode], bool]:
        """``path`` made absolute, the inodes its lookup reaches, ``fs.protected_symlinks``."""


SET_KEYS = ("bounding", "inheritable", "permitted", "effective", "ambient")
_EXEC_KEYS = frozenset(
    {
        "kind",
        "uid",
        "gid",
        "groups",
        *SET_KEYS,
        "file_caps",
        "file_caps_hex",
        "setuid_owner",
        "setgid_owner",
        "group_executable",
        "nnp",
        "nosuid",
        "secbits",
        "userns_root_uid",
        "kernel",
        "path",
        "id",
    }
)
_BIND_KEYS = frozenset(
    {
        "kind",
        "port",
        "proto",
        "family",
        "effective",
        "unprivileged_port_start",
        "netns",
        "netns_foreign",
        "netns_owned_by_caller_userns",
        "id",
    }
)
_ACCESS_KEYS = frozenset(
    {"kind", "path", "uid", "gid", "groups", "effective", "want", "fs", "fs_json", "id"}
)


# -- question → answer (shared by flags and batch) ---------------------------------------------
def _capset(question: Question, key: str, default: Any = None) -> Any:
    from unroot.model.caps import CapSet

    value = question.get(key, default)
    if isinstance(value, CapSet):
        return value
    if value is not None and not isinstance(value, str | list):
        raise ParseError(f"{key} must be a list of capability names or a hex string", key)
    try:
        return CapSet.parse(value)
    except ParseError as exc:
        raise ParseError(str(exc), key) from None


def _int(question: Question, key: str, default: int | None = None) -> int | None:
    value = question.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ParseError(f"expected an integer, not {value!r}", key)
    try:
        return int(value, 0) if isinstance(value, str) else value
    except ValueError:
        raise ParseError(f"expected an integer, not {value!r}", key) from None


def _bool(question: Question, key: str) -> bool:
    value = question.get(key, False)
    if not isinstance(value, bool):
        raise ParseError(f"expected true or false, not {value!r}", key)
    return value


def _groups(question: Question) -> frozenset[int]:
    value = question.get("groups")
    if value is None or value == "":
        return frozenset()
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ParseError("expected a list of gids", "groups")
    try:
        return frozenset(int(g) for g in items if str(g).strip() != "")
    except (TypeError, ValueError):
        raise ParseError(f"groups must be numeric gids, not {value!r}", "groups") from None


def _check_keys(question: Question, allowed: frozenset[str]) -> None:
    unknown = sorted(set(question) - allowed)
    if unknown:
        raise ParseError(f"unknown key(s) {', '.join(unknown)}", question.get("kind"))


def answer_exec(question: Question, live: LiveFacts) -> Answer:
    from unroot.model.creds import SECBITS_ALL, Creds, Ids
    from unroot.model.execve import ExecFile, Kernel, execve
    from unroot.model.filecaps import FileCaps

    _check_keys(question, _EXEC_KEYS)
    uid = Ids.parse(question.get("uid", 0))
    gid = Ids.parse(question.get("gid", 0))
    root = uid.effective == 0
    bounding = _capset(question, "bounding", "all")
    permitted = _capset(question, "permitted", "all" if root else None)
    effective = _capset(question, "effective", permitted.names() if root else None)
    creds = Creds(
        uid=uid,
        gid=gid,
        groups=_groups(question),
        bounding=bounding,
        permitted=permitted,
        effective=effective,
        inheritable=_capset(question, "inheritable"),
        ambient=_capset(question, "ambient"),
        securebits=_int(question, "secbits", 0) or 0,
        no_new_privs=_bool(question, "nnp"),
    )
    problems = creds.invariant_violations()
    if not 0 <= creds.securebits <= SECBITS_ALL:
        problems.append(f"secbits must be within 0..{SECBITS_ALL:#x}")
    if problems:
        raise UsageError(f"impossible process state: {problems[0]}")

    text, raw = question.get("file_caps"), question.get("file_caps_hex")
    if text is not None and raw is not None:
        raise UsageError("give --file-caps or --file-caps-hex, not both")
    file_caps = None
    if isinstance(text, str) and text.strip():
        file_caps = FileCaps.from_text(text)
    elif isinstance(raw, str) and raw.strip():
        file_caps = FileCaps.from_hex(raw)
    elif text is not None and not isinstance(text, str):
        raise ParseError("expected setcap text such as cap_net_bind_service=+ep", "file_caps")
    elif raw is not None and not isinstance(raw, str):
        raise ParseError("expected the xattr bytes as a hex string", "file_caps_hex")

    kernel_text = question.get("kernel")
    kernel = Kernel.parse(kernel_text) if kernel_text is not None else None
    userns_root = _int(question, "userns_root_uid", 0) or 0
    path = question.get("path", "the program")
    if not isinstance(path, str) or not path:
        raise ParseError("path must be the program's path", "path")
    file = ExecFile(
        path=path,
        file_caps=file_caps,
        setuid_owner=_int(question, "setuid_owner"),
        setgid_owner=_int(question, "setgid_owner"),
        group_executable=question.get("group_executable", True) is not False,
        nosuid=_bool(question, "nosuid"),
    )
    roots = (userns_root, 0) if userns_root else (0,)
    result = (
        execve(creds, file, userns_root_uids=roots, kernel=kernel)
        if kernel is not None
        else execve(creds, file, userns_root_uids=roots)
    )
    return result.to_json()


def answer_bind(question: Question, live: LiveFacts) -> Answer:
    from unroot.model.bind import bind_verdict

    _check_keys(question, _BIND_KEYS)
    port = _int(question, "port")
    if port is None:
        raise ParseError("a bind question needs a port", "port")
    netns = question.get("netns", "caller")
    if netns not in ("caller", "foreign", "owned", "owned-by-caller-userns"):
        raise ParseError("netns must be 'caller' or 'foreign'", "netns")
    foreign = netns == "foreign" or _bool(question, "netns_foreign")
    if question.get("netns_owned_by_caller_userns") is False:
        foreign = True
    proto, family = question.get("proto", "tcp"), question.get("family", "inet")
    if not isinstance(proto, str) or not isinstance(family, str):
        raise ParseError("proto and family are strings (tcp|udp|sctp, inet|inet6)")
    verdict = bind_verdict(
        port,
        proto=proto.lower(),
        family=family.lower(),
        effective=_capset(question, "effective"),
        unprivileged_port_start=_int(question, "unprivileged_port_start", 1024) or 0,
        netns_owned_by_caller_userns=not foreign,
    )
    return verdict.to_json()


def answer_access(question: Question, live: LiveFacts) -> Answer:
    from unroot.model.access import access_verdict
    from unroot.model.caps import CapSet
    from unroot.model.creds import Creds, Ids

    _check_keys(question, _ACCESS_KEYS)
    path = question.get("path")
    if not isinstance(path, str) or not path:
        raise ParseError("an access question needs a path", "path")
    want = question.get("want", "r")
    if not isinstance(want, str) or not want or set(want) - set("rwx"):
        raise ParseError(f"want must be r, w, x or a combination, not {want!r}", "want")
    uid, gid = _int(question, "uid"), _int(question, "gid")
    if uid is None or gid is None:
        raise ParseError("an access question needs --uid and --gid", "uid")
    creds = Creds(
        uid=Ids.same(uid),
        gid=Ids.same(gid),
        groups=_groups(question),
        effective=_capset(question, "effective"),
        permitted=CapSet(),
    )
    creds = creds.with_(permitted=creds.effective)
    tree_data = question.get("fs")
    fs_json = question.get("fs_json")
    if tree_data is None and fs_json is not None:
        tree_data = live.read_json(str(fs_json))
    if tree_data is not None:
        from unroot.model.fsjson import load_fs_json

        tree = load_fs_json(tree_data)
        return access_verdict(tree, path, creds, want).to_json()
    path, live_tree, protected = live.access_facts(path)
    return access_verdict(live_tree, path, creds, want, protected_symlinks=protected).to_json()


ANSWERERS: dict[str, Callable[[Question, LiveFacts], Answer]] = {
    "exec": answer_exec,
    "bind": answer_bind,
    "access": answer_access,
}


def answer(question: Question, live: LiveFacts) -> Answer:
    """Answer one question (a dict with ``kind`` and the flag names as keys)."""
    if not isinstance(question, Mapping):
        raise ParseError("each line must be a JSON object")
    kind = question.get("kind")
    answerer = ANSWERERS.get(kind) if isinstance(kind, str) else None
    if answerer is None:
        raise ParseError(f"kind must be one of exec, bind, access, not {kind!r}", "kind")
    try:
        result = answerer(question, live)
    except RecursionError:
        raise ParseError("input nested too deeply") from None
    if "id" in question:
        result = {"id": question["id"], **result}
    return result
