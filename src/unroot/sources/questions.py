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

    def kernel_release(self) -> str:
        """The running kernel's ``uname -r`` (a question without ``kernel`` models it)."""


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
        "file_ids_unmapped",
        "noexec",
        "no_exec_bit",
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
        "caller_owns_netns_userns",
        "id",
    }
)
_ACCESS_KEYS = frozenset(
    {
        "kind",
        "path",
        "uid",
        "gid",
        "groups",
        "effective",
        "want",
        "open_flags",
        "uid_map",
        "gid_map",
        "fs",
        "fs_json",
        "id",
    }
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


def _int_list(question: Question, key: str) -> tuple[int, ...]:
    """An integer, ``"100000,101000"`` or a JSON list of integers."""
    value = question.get(key)
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        items = [items]
    numbers = []
    for item in items:
        number = _int({key: item.strip() if isinstance(item, str) else item}, key)
        if number is not None and not 0 <= number <= 0xFFFFFFFE:
            raise ParseError(f"expected a host uid, not {number}", key)
        if number is not None:
            numbers.append(number)
    return tuple(numbers)


def _map(question: Question, key: str) -> Any:
    """A uid_map/gid_map: ``'INSIDE OUTSIDE COUNT'`` lines (newline or ``;`` between them) or
    a JSON list of such strings or of ``[inside, outside, count]`` triples."""
    from unroot.model.userns import IdMap

    value = question.get(key)
    if isinstance(value, list):
        value = "\n".join(
            " ".join(str(v) for v in line) if isinstance(line, list) else str(line)
            for line in value
        )
    if not isinstance(value, str):
        raise ParseError("expected 'INSIDE OUTSIDE COUNT' lines", key)
    try:
        return IdMap.parse(value.replace(";", "\n"), key)
    except ParseError as exc:
        raise ParseError(str(exc), key) from None


def _check_keys(question: Question, allowed: frozenset[str]) -> None:
    unknown = sorted(set(question) - allowed)
    if unknown:
        raise ParseError(f"unknown key(s) {', '.join(unknown)}", question.get("kind"))


def answer_exec(question: Question, live: LiveFacts) -> Answer:
    from unroot.model.creds import SECBITS_ALL, Creds, Ids
    from unroot.model.execve import ExecFile, Kernel, execve, running_kernel
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
    if kernel_text is not None and not isinstance(kernel_text, str):
        raise ParseError("expected a kernel version such as 6.1", "kernel")
    kernel = (
        Kernel.parse(kernel_text)
        if kernel_text is not None
        else running_kernel(live.kernel_release())
    )
    roots = _int_list(question, "userns_root_uid")
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
        ids_mapped=not _bool(question, "file_ids_unmapped"),
        noexec=_bool(question, "noexec"),
        executable=not _bool(question, "no_exec_bit"),
    )
    roots = tuple(dict.fromkeys((*roots, 0)))
    return execve(creds, file, userns_root_uids=roots, kernel=kernel).to_json()


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
        caller_owns_netns_userns=_bool(question, "caller_owns_netns_userns"),
    )
    return verdict.to_json()


def answer_access(question: Question, live: LiveFacts) -> Answer:
    from unroot.model.access import access_verdict, parse_open_flags
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
    userns = None
    if question.get("uid_map") is not None or question.get("gid_map") is not None:
        from unroot.model.userns import IdMap, UserNs

        userns = UserNs(
            _map(question, "uid_map") if question.get("uid_map") is not None else IdMap(),
            _map(question, "gid_map") if question.get("gid_map") is not None else IdMap(),
        )
        creds = _to_host(creds, userns)
    flags = question.get("open_flags")
    if flags is not None and not isinstance(flags, str | list):
        raise ParseError("open_flags: expected e.g. 'append,trunc'", "open_flags")
    open_flags = None
    if flags is not None:
        open_flags = parse_open_flags(flags if isinstance(flags, list) else flags.split(","))
    tree_data = question.get("fs")
    fs_json = question.get("fs_json")
    if tree_data is None and fs_json is not None:
        tree_data = live.read_json(str(fs_json))
    if tree_data is not None:
        from unroot.model.fsjson import load_fs_json

        tree = load_fs_json(tree_data)
        return access_verdict(
            tree, path, creds, want, userns=userns, open_flags=open_flags
        ).to_json()
    path, live_tree, protected = live.access_facts(path)
    return access_verdict(
        live_tree,
        path,
        creds,
        want,
        userns=userns,
        protected_symlinks=protected,
        open_flags=open_flags,
    ).to_json()


def _to_host(creds: Any, userns: Any) -> Any:
    """The caller's ``--uid``/``--gid``/``--groups`` are its own view (inside the namespace);
    the walk compares host ids, so they are mapped out (an unmapped id is refused)."""
    from unroot.model.creds import Ids

    def out(mapping: Any, inside: int, what: str) -> int:
        outside = mapping.to_outside(inside)
        if outside is None:
            raise UsageError(f"{what} {inside} has no mapping in the given {what[:3]}_map")
        return int(outside)

    return creds.with_(
        uid=Ids.same(out(userns.uid_map, creds.uid.effective, "uid")),
        gid=Ids.same(out(userns.gid_map, creds.gid.effective, "gid")),
        groups=frozenset(out(userns.gid_map, g, "gid") for g in creds.groups),
    )


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
