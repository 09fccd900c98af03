"""``unroot doctor``: why it fails on this host, the narrowest fix, applied with a journal.

The flags become a :class:`~unroot.doctor.diagnose.Request`; :func:`~unroot.doctor.diagnose.
diagnose` gathers the facts and asks the model; this module renders (text or JSON), prints
the fixes as a script (``--fix``) or performs them (``--apply``, :mod:`unroot.doctor.remedies`).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from unroot import SCHEMA_VERSION
from unroot.errors import UsageError

DESCRIPTION = """\
Answer from this host itself: may this identity bind the ports, read and write the paths,
execute the program — and if not, why (the reason chain, where it was denied) and the
narrowest fix.  With --rootless OWNER the ids are a container's of OWNER's rootless engine
(0 is OWNER, n >= 1 the n-th id of OWNER's /etc/subuid ranges) and --port asks whether that
engine can publish the host port.  --error takes a pasted error message (or - for a log on
stdin) and asks the questions that explain it.  With no question: an overview of the host.
--fix prints the fixes as a script; --apply performs them after writing a journal that
`unroot undo` restores byte for byte.
Exit status: 0 every check passes; 1 a check fails; 2 bad input; 3 an environment problem."""


def _port(text: str) -> Any:
    from unroot.doctor.subject import PortAsk

    number, _, proto = text.partition("/")
    proto = proto.lower() or "tcp"
    if not number.isdigit() or not 0 < int(number) < 65536 or proto not in ("tcp", "udp", "sctp"):
        raise UsageError(
            f"--port {text!r}: expected a port 1..65535, optionally /tcp, /udp or /sctp"
        )
    return PortAsk(int(number), proto, f"--port {text}")


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "doctor",
        help="why it fails on this host, and the narrowest fix (--apply, then unroot undo)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--user", metavar="U", help="user name or uid (a container's with --rootless)"
    )
    parser.add_argument("--group", metavar="G", help="group name or gid")
    parser.add_argument(
        "--port",
        metavar="P[/PROTO]",
        action="append",
        default=[],
        help="a port to bind (repeatable)",
    )
    parser.add_argument(
        "--read", metavar="PATH", action="append", default=[], help="a path to read (repeatable)"
    )
    parser.add_argument(
        "--write", metavar="PATH", action="append", default=[], help="a path to write (repeatable)"
    )
    parser.add_argument("--exe", metavar="PATH", help="the program the service executes")
    parser.add_argument(
        "--container",
        metavar="NAME",
        help="a container of the engine (rootful, or OWNER's with --rootless)",
    )
    parser.add_argument("--compose", metavar="FILE", help="a compose file (with --service)")
    parser.add_argument("--service", metavar="S", help="the compose service")
    parser.add_argument("--unit", metavar="FILE", help="a systemd unit file")
    parser.add_argument(
        "--rootless", metavar="OWNER", help="questions about OWNER's rootless engine"
    )
    parser.add_argument(
        "--engine", choices=("docker", "podman"), help="OWNER's engine (default docker)"
    )
    parser.add_argument(
        "--error", metavar="TEXT", help="an error message, or - to read a log on stdin"
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--fix", action="store_true", help="print the fixes as a shell script")
    action.add_argument("--apply", action="store_true", help="perform the fixes (journal first)")
    parser.add_argument(
        "--restart",
        action="store_true",
        help="with --apply: also restart a rootless daemon when a fix needs it",
    )
    parser.add_argument(
        "--deploy-hook",
        action="store_true",
        help="with --apply: also create the certbot deploy hook that grants new lineages the same",
    )
    parser.set_defaults(handler=handle)


def _error_text(value: str | None) -> str | None:
    if value != "-":
        return value
    data = sys.stdin.buffer.read(16 * 1024 * 1024 + 1)
    if len(data) > 16 * 1024 * 1024:
        raise UsageError("--error -: the log on stdin is over 16 MiB; paste the failing part")
    return data.decode("utf-8", errors="replace")


def handle(args: argparse.Namespace) -> int:
    from unroot.doctor.diagnose import Request, diagnose
    from unroot.doctor.host import Host

    if args.restart and not args.apply:
        raise UsageError("--restart only goes with --apply")
    if args.deploy_hook and not args.apply:
        raise UsageError("--deploy-hook only goes with --apply")
    request = Request(
        user=args.user,
        group=args.group,
        ports=tuple(_port(p) for p in args.port),
        reads=tuple(args.read),
        writes=tuple(args.write),
        exe=args.exe,
        container=args.container,
        compose=args.compose,
        service=args.service,
        unit=args.unit,
        rootless=args.rootless,
        engine=args.engine,
        error=_error_text(args.error),
    )
    for path in (*request.reads, *request.writes, *(p for p in [request.exe] if p)):
        if not path or "\0" in path:
            raise UsageError(f"not a path: {path!r}")
    from unroot.doctor.remedies import apply_report, show_keystore_plans

    host = Host()
    report = diagnose(request, host)
    applied: list[dict[str, str]] = []
    journal = None
    if args.apply:
        applied, journal, report = apply_report(
            report, request, host, restart=args.restart, hook=args.deploy_hook
        )
    data = show_keystore_plans(report).to_json()
    data["applied"], data["journal"] = applied, journal
    failed = report.failed
    if args.format == "json":
        print(json.dumps({"schema_version": SCHEMA_VERSION, **data}, indent=2, ensure_ascii=False))
    else:
        _print_text(data, fix=args.fix)
    return 1 if failed else 0


def _print_text(data: dict[str, Any], *, fix: bool) -> None:
    from unroot.doctor.overview import render
    from unroot.doctor.render import fix_script, render_checks, render_matches

    if fix:
        print("\n".join(fix_script(data["verdicts"])))
        return
    lines: list[str] = []
    if data["host"] is not None:
        lines += render(data["host"])
    lines += render_matches(data["recognised"])
    if data["subject"] is not None or data["verdicts"]:
        lines += render_checks(data["subject"], data["verdicts"])
    for row in data["applied"]:
        lines.append(f"applied: {row['command']}" if isinstance(row, dict) else f"applied: {row}")
    if data["journal"]:
        lines.append(f"journal: {data['journal']}  (undo: unroot undo {data['journal']})")
    checks = data["verdicts"]
    if checks:
        bad = sum(1 for c in checks if c["allowed"] is False)
        unknown = sum(1 for c in checks if c["allowed"] is None)
        lines.append(
            f"{len(checks)} check{'s' if len(checks) != 1 else ''}: "
            f"{len(checks) - bad - unknown} pass, {bad} fail"
            + (f", {unknown} could not run" if unknown else "")
        )
    print("\n".join(lines))
