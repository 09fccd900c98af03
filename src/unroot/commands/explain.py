"""``unroot explain``: ask the pure model an exec, bind or access question.

The single commands and ``explain batch`` share one path: flags become a *question* — a dict
whose keys are the flag names with underscores — and :func:`answer` turns a question into the
JSON answer (:mod:`unroot.sources.questions`, with the live facts of
:mod:`unroot.facts.questions`).  Text output is rendered from that same answer.  This module is
only the command line: flags, batch lines, rendering.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from unroot import SCHEMA_VERSION
from unroot.errors import UnrootError, UsageError
from unroot.facts.questions import LIVE
from unroot.sources.questions import SET_KEYS, Answer, Question
from unroot.sources.questions import answer as _answer
from unroot.wrapping import output_width, wrap


def answer(question: Question) -> Answer:
    """Answer one question about the live system (see :func:`unroot.sources.questions.answer`)."""
    return _answer(question, LIVE)


# -- rendering ----------------------------------------------------------------------------------
def _render_text(kind: str, result: Answer, out: TextIO) -> None:
    """The answer for a person: reasons and fixes wrapped to the terminal (or $COLUMNS, else
    100 columns), never inside a word, a path or a ``code span``; commands are not wrapped."""
    width = output_width(out)
    if kind == "exec":
        head = "exec: ok" if result["exec"] == "ok" else f"exec: fails with {result['exec']}"
        out.write(head + "\n")
        if result["exec"] == "ok":
            out.write(f"  uid {result['uid']}  gid {result['gid']}\n")
            for key in SET_KEYS:
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
            out.writelines(line + "\n" for line in wrap(reason["text"], width, "  - ", "    "))
    fixes = result.get("fixes", [])
    if fixes:
        out.write("fix:\n")
        for fix in fixes:
            out.writelines(line + "\n" for line in wrap(fix["why"], width, "  - ", "    "))
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
    for flag in (
        "nnp",
        "nosuid",
        "netns_foreign",
        "caller_owns_netns_userns",
        "file_ids_unmapped",
        "noexec",
        "no_exec_bit",
    ):
        if question.get(flag) is False:
            del question[flag]
    result = answer(question)
    if args.json:
        json.dump({"schema_version": SCHEMA_VERSION, **result}, sys.stdout, indent=2)
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
            document = {"schema_version": SCHEMA_VERSION, **result}
            out.write(json.dumps(document, separators=(",", ":")) + "\n")
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
    ex.add_argument("--uid", metavar="R[,E[,S[,FS]]]", help="uids before exec (default 0)")
    ex.add_argument("--gid", metavar="R[,E[,S[,FS]]]", help="gids before exec (default 0)")
    ex.add_argument("--groups", metavar="G1,G2", help="supplementary gids")
    for key in SET_KEYS:
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
    ex.add_argument(
        "--no-group-exec",
        dest="group_executable",
        action="store_false",
        default=None,
        help="the file has no group execute bit (S_ISGID then marks mandatory locking)",
    )
    ex.add_argument(
        "--file-ids-unmapped",
        action="store_true",
        help="the file's owner or group has no mapping in the caller's user namespace",
    )
    ex.add_argument("--noexec", action="store_true", help="the file is on a noexec mount")
    ex.add_argument(
        "--no-exec-bit", action="store_true", help="the caller may not execute the file (EACCES)"
    )
    ex.add_argument("--nnp", action="store_true", help="no_new_privs is set")
    ex.add_argument("--nosuid", action="store_true", help="the file is on a nosuid mount")
    ex.add_argument("--secbits", metavar="N", help="securebits (SECBIT_NOROOT=1, …)")
    ex.add_argument(
        "--userns-root-uid",
        metavar="K[,K2…]",
        help="host uids that are root of the caller's user namespace and of its ancestors "
        "(default 0: the init ns)",
    )
    ex.add_argument(
        "--kernel", metavar="X.Y", help="model this kernel version (default: the running one)"
    )
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
    bd.add_argument(
        "--caller-owns-netns-userns",
        action="store_true",
        help="the caller's euid created the user namespace that owns the netns (its creator "
        "holds every capability there)",
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
    ac.add_argument(
        "--open-flags",
        metavar="FLAGS",
        help="answer open(2) instead of faccessat(2), with these flags: append, trunc "
        "(comma-separated; '' for none)",
    )
    ac.add_argument(
        "--uid-map",
        metavar="'IN OUT N'",
        help="the caller's user namespace uid_map (lines split by ';'); --uid/--gid/--groups "
        "are then ids inside it",
    )
    ac.add_argument("--gid-map", metavar="'IN OUT N'", help="its gid_map (as --uid-map)")
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
