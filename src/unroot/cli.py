"""``unroot``: parse the command line, dispatch, render. No kernel logic lives here.

Every :class:`~unroot.errors.UnrootError` becomes one line on stderr and its exit code
(2 for bad input, 3 for an environment problem); argparse's own errors become one line and 2.
"""

from __future__ import annotations

import sys

from unroot import __version__
from unroot.commands.edge import argument_parser_class, guard_streams, guarded

# `unroot run` must start fast (its latency is the service's start-up): argparse, typing and
# collections are imported only when needed, and `run` has a fast path that needs none of them.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence

    Handler = Callable[[argparse.Namespace], int]

__all__ = ["build_parser", "main"]


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line, or (``only="run"``) just ``unroot run``, which then imports no
    other command module."""
    from unroot.commands import run

    parser_class = argument_parser_class()
    parser = parser_class(
        prog="unroot",
        description="Run network services without root: explain, launch, lint, doctor, verify.",
    )
    parser.add_argument("--version", action="version", version=f"unroot {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=parser_class)
    if only != "run":
        from unroot.commands import (
            bench,
            caps,
            completion,
            doctor,
            explain,
            lint,
            man,
            rules,
            undo,
            verify,
        )

        explain.register(sub)
        caps.register(sub)
        lint.register(sub)
        rules.register(sub)
        doctor.register(sub)
        undo.register(sub)
        verify.register(sub)
        bench.register(sub)
    run.register(sub)
    if only != "run":
        completion.register(sub, parser)
        man.register(sub, parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if argv is None:  # the process's own command line: its streams are the CLI's to guard
        guard_streams()

    def run() -> int:
        if args_list[:1] == ["run"]:
            from unroot.commands import run

            fast = run.parse_fast(args_list[1:])
            if fast is not None:  # a well-formed command line: no argparse at all
                return run.handle(fast)
        parser = build_parser(only="run" if args_list[:1] == ["run"] else None)
        args = parser.parse_args(args_list)
        handler: Handler | None = getattr(args, "handler", None)
        if handler is None:
            parser.print_help(sys.stderr)
            return 2
        return handler(args)

    return guarded(run)
