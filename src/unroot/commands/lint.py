"""``unroot lint``: static analysis of Dockerfiles, compose files, Kubernetes manifests and
systemd units (PRODUCT.md).  Exit 0 when nothing is at or above the failure threshold, 1 when
something is, 2 for a usage or input error (one line on stderr) or when nothing could be read.

``register(sub)`` adds the command to ``unroot``'s parser; :func:`run_lint` runs it from an
argv list (tests, other entry points) with the CLI's error handling.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from unroot.errors import UsageError
from unroot.lint.config import RUNTIMES, THRESHOLDS
from unroot.lint.inputs import LIMIT
from unroot.sources.kinds import NAMES as KINDS

FORMATS = ("text", "json", "sarif")


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "lint",
        help="lint Dockerfiles, compose files, Kubernetes manifests and systemd units",
        description="Predict what the kernel will do when these files run: exec EPERM, bind "
        "EACCES, file capabilities lost in the build or ignored, unreadable mounts. Exit 0 when "
        "nothing is at or above the failure threshold, 1 when something is, 2 on bad input "
        "or when nothing could be read.",
    )
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="files or directories (default .); - for standard input (its kind told from its "
        f"name or text); only regular files of at most {LIMIT} are read",
    )
    parser.add_argument("--kind", choices=KINDS, help="read every file as this kind")
    parser.add_argument(
        "--stdin-filename",
        metavar="NAME",
        help="the name of standard input in findings (alone: lint standard input); its kind is "
        "told from it first",
    )
    parser.add_argument("--format", choices=FORMATS, default="text", help="default: text")
    parser.add_argument("--runtime", choices=RUNTIMES, help="the runtime that runs containers")
    parser.add_argument("--select", metavar="IDS", help="only these rules (ids, UR1, topics)")
    parser.add_argument("--ignore", metavar="IDS", help="not these rules (ids, UR1, topics)")
    parser.add_argument(
        "--failure-threshold",
        choices=THRESHOLDS,
        help="exit 1 for findings at or above this severity (default: warning)",
    )
    parser.add_argument("--config", metavar="FILE", help=".unroot.toml or pyproject.toml")
    parser.set_defaults(handler=handle)


def handle(args: Any, stdout: TextIO | None = None, stdin: TextIO | None = None) -> int:
    from unroot.lint.config import load_config
    from unroot.lint.engine import LintOptions, lint_paths, parse_selectors
    from unroot.lint.formatters import FORMATTERS
    from unroot.lint.formatters import json as json_format
    from unroot.lint.formatters import text as text_format

    out = stdout or sys.stdout
    paths: list[str] = list(args.paths) or (["-"] if args.stdin_filename else ["."])
    if args.stdin_filename is not None and "-" not in paths:
        raise UsageError("--stdin-filename names standard input: give - among the paths")
    start = next((p for p in paths if p != "-"), args.stdin_filename or ".")
    config = load_config(start, args.config)
    options = LintOptions(
        kind=args.kind,
        runtime=args.runtime,
        select=parse_selectors(args.select, "--select") if args.select is not None else None,
        ignore=parse_selectors(args.ignore, "--ignore") if args.ignore else (),
        failure_threshold=args.failure_threshold,
        config=config,
    )
    stdin_text = None
    if "-" in paths:
        from unroot.lint.inputs import read_stdin

        stdin_text = read_stdin(stdin or sys.stdin, args.stdin_filename or "standard input")
    result = lint_paths(paths, options, stdin_text=stdin_text, stdin_name=args.stdin_filename)
    for path, reason in result.skipped:
        print(f"unroot: skipped {path}: {reason}", file=sys.stderr)
    formatter = FORMATTERS.get(args.format)
    if formatter is None:
        raise UsageError(f"--format {args.format}: not available in this build")
    if args.format == "text":
        rendered = text_format.render(
            result.findings, result.files, result.rules, color=_color(out), unread=result.unread
        )
    elif args.format == "json":
        rendered = json_format.render(
            result.findings, result.files, result.rules, skipped=result.skipped
        )
    else:
        rendered = formatter(result.findings, result.files, result.rules)
    out.write(rendered)
    out.flush()
    return result.exit_code


def _color(stream: TextIO) -> bool:
    if "NO_COLOR" in os.environ or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def run_lint(argv: Sequence[str], stdout: TextIO | None = None, stdin: TextIO | None = None) -> int:
    """``unroot lint ARGV…`` with the CLI's contract: errors are one line on stderr, exit 2."""
    from unroot.commands.edge import run_command

    return run_command(register, ["lint", *argv], stdout=stdout, stdin=stdin)
