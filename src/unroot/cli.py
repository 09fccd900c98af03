"""``unroot``: parse the command line, dispatch, render. No kernel logic lives here.

Every :class:`~unroot.errors.UnrootError` becomes one line on stderr and its exit code
(2 for bad input, 3 for an environment problem); argparse's own errors become one line and 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from unroot import __version__
from unroot.errors import UnrootError, UsageError

Handler = Callable[[argparse.Namespace], int]


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2 (no usage dump)."""

    def error(self, message: str) -> NoReturn:
        where = self.prog.removeprefix("unroot").strip()
        raise UsageError(f"{where}: {message}" if where else message)


def one_line(text: str) -> str:
    """Escape control characters and line breaks so an error is exactly one line."""
    return "".join(
        ch if ch.isprintable() or ch == " " else ch.encode("unicode_escape").decode("ascii")
        for ch in text
    )


def build_parser() -> ArgumentParser:
    from unroot.commands import caps, explain

    parser = ArgumentParser(
        prog="unroot",
        description="Run network services without root: explain, launch, lint, doctor, verify.",
    )
    parser.add_argument("--version", action="version", version=f"unroot {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    explain.register(sub)
    caps.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
        args = parser.parse_args(args_list)
        handler: Handler | None = getattr(args, "handler", None)
        if handler is None:
            parser.print_help(sys.stderr)
            return 2
        return handler(args)
    except UnrootError as exc:
        print(f"unroot: {one_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (``unroot caps scan / | head``): not an error worth a line.
        sys.stderr.close()
        return 0
