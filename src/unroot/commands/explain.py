"""``unroot explain``: ask the pure model an exec, bind or access question.

The single commands and ``explain batch`` share one path: flags become a *question* — a dict
whose keys are the flag names with underscores — and :func:`answer` turns a question into the
JSON answer.  Text output is rendered from that same answer.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from unroot.errors import ParseError, UnrootError, UsageError

Question = Mapping[str, Any]
Answer = dict[str, Any]

_SET_KEYS = ("bounding", "inheritable", "permitted", "effective", "ambient")
_EXEC_KEYS = frozenset(
    {
        "kind",
        "uid",
        "gid",
        "groups",
        *_SET_KEYS,
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


def answer_exec(question: Question) -> Answer:
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


def answer_bind(question: Question) -> Answer:
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


def answer_access(question: Question) -> Answer:
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
        tree_data = _read_json_file(str(fs_json))
    if tree_data is not None:
        from unroot.model.fsjson import load_fs_json

        tree = load_fs_json(tree_data)
        return access_verdict(tree, path, creds, want).to_json()
    from unroot.facts.fs import absolute_path, gather_tree, protected_symlinks

    path = absolute_path(path)
    tree = gather_tree(path)
    return access_verdict(
        tree, path, creds, want, protected_symlinks=protected_symlinks()
    ).to_json()


def _read_json_file(name: str) -> Any:
    try:
        with open(name, encoding="utf-8") as handle:
            return json.load(handle)
    except OSError as exc:
        raise UsageError(f"cannot read {name}: {exc.strerror}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ParseError(f"not valid JSON: {exc}", name) from None


ANSWERERS: dict[str, Callable[[Question], Answer]] = {
    "exec": answer_exec,
    "bind": answer_bind,
    "access": answer_access,
}


def answer(question: Question) -> Answer:
    """Answer one question (a dict with ``kind`` and the flag names as keys)."""
    if not isinstance(question, Mapping):
        raise ParseError("each line must be a JSON object")
    kind = question.get("kind")
    answerer = ANSWERERS.get(kind) if isinstance(kind, str) else None
    if answerer is None:
        raise ParseError(f"kind must be one of exec, bind, access, not {kind!r}", "kind")
    try:
        result = answerer(question)
    except RecursionError:
        raise ParseError("input nested too deeply") from None
    if "id" in question:
        result = {"id": question["id"], **result}
    return result


# -- rendering ----------------------------------------------------------------------------------
def _render_text(kind: str, result: Answer, out: TextIO) -> None:
    if kind == "exec":
        head = "exec: ok" if result["exec"] == "ok" else f"exec: fails with {result['exec']}"
        out.write(head + "\n")
        if result["exec"] == "ok":
            out.write(f"  uid {result['uid']}  gid {result['gid']}\n")
            for key in _SET_KEYS:
                out.write(f"  {key:<12} {','.join(result[key]) or '(empty)'}\n")
            out.write(f"  secure_exec  {str(result['secure_exec']).lower()}\n")
    elif result["allowed"]:
        out.write(f"{kind}: allowed\n")
    else:
        where = f" at {result['denied_at']}" if result.get("denied_at") else ""
        out.write(f"{kind}: denied with {result['errno']}{where}\n")
    reasons = result.get("reasons", [])
    if reasons:
        out.write("why:\n")
        for reason in reasons:
            out.write(f"  - {reason['text']}\n")
    fixes = result.get("fixes", [])
    if fixes:
        out.write("fix:\n")
        for fix in fixes:
            out.write(f"  - {fix['why']}\n")
            if fix.get("command"):
                command = fix["command"].replace("\n", "\n        ")
                out.write(f"      $ {command}\n")


def _allowed(kind: str, result: Answer) -> bool:
    return bool(result["exec"] == "ok" if kind == "exec" else result["allowed"])


def _run_single(kind: str, args: argparse.Namespace) -> int:
    question = {
        key: value
        for key, value in vars(args).items()
        if key not in ("handler", "command", "explain_kind", "json") and value is not None
    }
    question["kind"] = kind
    for flag in ("nnp", "nosuid", "netns_foreign"):
        if question.get(flag) is False:
            del question[flag]
    result = answer(question)
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _render_text(kind, result, sys.stdout)
    return 0 if _allowed(kind, result) else 1


def _run_batch(args: argparse.Namespace) -> int:
    source: TextIO
    if args.input in (None, "-"):
        source = sys.stdin
    else:
        try:
            source = open(args.input, encoding="utf-8")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise UsageError(f"cannot read {args.input}: {exc.strerror}") from None
    out = sys.stdout
    try:
        for line in source:
            if not line.strip():
                continue
            try:
                question = json.loads(line)
                result = answer(question)
            except (ValueError, UnicodeDecodeError) as exc:
                result = {"error": f"not valid JSON: {exc}"}
            except UnrootError as exc:
                result = {"error": str(exc)}
            out.write(json.dumps(result, separators=(",", ":")) + "\n")
            if args.flush:
                out.flush()
    finally:
        if source is not sys.stdin:
            source.close()
    return 0


# -- argparse -----------------------------------------------------------------------------------
def register(sub: Any) -> None:
    parser = sub.add_parser(
        "explain",
        help="ask the kernel model: may this exec, bind, open?",
        description="Answer exec, bind and access questions with the pure kernel model "
        "(no side effects). Exit 0 when allowed, 1 when the kernel would refuse, 2 on bad input.",
    )
    kinds = parser.add_subparsers(dest="explain_kind", metavar="KIND", parser_class=type(parser))
    parser.set_defaults(handler=None)

    caps_help = "capability set: names in any spelling, comma-separated; all; none; 0xMASK"
    ex = kinds.add_parser("exec", help="what execve(2) does to a process's credentials")
    ex.add_argument("--json", action="store_true", help="print JSON")
    ex.add_argument("--uid", metavar="R[,E[,S]]", help="uids before exec (default 0)")
    ex.add_argument("--gid", metavar="R[,E[,S]]", help="gids before exec (default 0)")
    ex.add_argument("--groups", metavar="G1,G2", help="supplementary gids")
    for key in _SET_KEYS:
        default = {"bounding": "all", "permitted": "all if euid is 0, else none"}.get(key)
        if key == "effective":
            default = "the permitted set if euid is 0, else none"
        ex.add_argument(
            f"--{key}", metavar="SET", help=f"{caps_help} (default: {default or 'none'})"
        )
    ex.add_argument("--path", metavar="FILE", help="the program's path, to name it in reasons")
    ex.add_argument("--file-caps", metavar="TEXT", help="setcap text: cap_net_bind_service=+ep")
    ex.add_argument("--file-caps-hex", metavar="HEX", help="raw security.capability bytes")
    ex.add_argument("--setuid-owner", metavar="UID", help="the file is setuid to this uid")
    ex.add_argument("--setgid-owner", metavar="GID", help="the file is setgid to this gid")
    ex.add_argument("--nnp", action="store_true", help="no_new_privs is set")
    ex.add_argument("--nosuid", action="store_true", help="the file is on a nosuid mount")
    ex.add_argument("--secbits", metavar="N", help="securebits (SECBIT_NOROOT=1, …)")
    ex.add_argument(
        "--userns-root-uid",
        metavar="K",
        help="host uid that is root of the caller's user namespace (default 0: the init ns)",
    )
    ex.add_argument("--kernel", metavar="X.Y", help="model this kernel version (default: 6.18)")
    ex.set_defaults(handler=lambda a: _run_single("exec", a))

    bd = kinds.add_parser("bind", help="may this process bind(2) the port?")
    bd.add_argument("--json", action="store_true", help="print JSON")
    bd.add_argument("--port", required=True, metavar="P")
    bd.add_argument("--proto", choices=("tcp", "udp", "sctp"), default="tcp")
    bd.add_argument("--family", choices=("inet", "inet6"), default="inet")
    bd.add_argument("--effective", metavar="SET", help=caps_help + " (default: none)")
    bd.add_argument(
        "--unprivileged-port-start", metavar="N", help="the netns's sysctl (default 1024)"
    )
    owner = bd.add_mutually_exclusive_group()
    owner.add_argument(
        "--netns-owned-by-caller-userns",
        dest="netns_foreign",
        action="store_false",
        help="the netns belongs to the caller's user namespace (default)",
    )
    owner.add_argument(
        "--netns-foreign",
        dest="netns_foreign",
        action="store_true",
        help="the netns belongs to an ancestor user namespace (e.g. rootless on host network)",
    )
    bd.set_defaults(handler=lambda a: _run_single("bind", a), netns_foreign=False)

    ac = kinds.add_parser("access", help="may this identity open the path?")
    ac.add_argument("path", metavar="PATH")
    ac.add_argument("--json", action="store_true", help="print JSON")
    ac.add_argument("--uid", required=True, metavar="U")
    ac.add_argument("--gid", required=True, metavar="G")
    ac.add_argument("--groups", metavar="G1,G2", help="supplementary gids")
    ac.add_argument("--effective", metavar="SET", help=caps_help + " (default: none)")
    ac.add_argument("--want", default="r", choices=("r", "w", "x", "rw", "rx", "wx", "rwx"))
    ac.add_argument("--fs-json", metavar="FILE", help="a hypothetical tree instead of the disk")
    ac.set_defaults(handler=lambda a: _run_single("access", a))

    bt = kinds.add_parser(
        "batch",
        help="JSON lines in, one JSON answer per line out",
        description='One question per line: {"kind": "exec"|"bind"|"access", ...flag names '
        'with underscores}. A malformed line gets {"error": "..."}; the batch goes on.',
    )
    bt.add_argument("input", nargs="?", metavar="FILE", help="read questions from FILE (default -)")
    bt.add_argument("--flush", action="store_true", help="flush after every answer")
    bt.set_defaults(handler=_run_batch)
