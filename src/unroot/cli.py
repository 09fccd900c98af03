"""``unroot``: parse the command line, dispatch, render. No kernel logic lives here.

Every :class:`~unroot.errors.UnrootError` becomes one line on stderr and its exit code
(2 for bad input, 3 for an environment problem); argparse's own errors become one line and 2.
"""

from __future__ import annotations

import os
import sys

from unroot import __version__
from unroot.errors import UnrootError, UsageError

# `unroot run` must start fast (its latency is the service's start-up): argparse, typing and
# collections are imported only when needed, and `run` has a fast path that needs none of them.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence
    from typing import NoReturn

    Handler = Callable[[argparse.Namespace], int]

_parser_class: type[argparse.ArgumentParser] | None = None


def __getattr__(name: str) -> object:
    if name == "ArgumentParser":  # the class is built on first use, with argparse
        return argument_parser_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def argument_parser_class() -> type[argparse.ArgumentParser]:
    """argparse.ArgumentParser, but a usage error is one line and exit code 2 (no usage dump)."""
    global _parser_class  # noqa: PLW0603 - built once, on first use
    if _parser_class is None:
        import argparse

        class ArgumentParser(argparse.ArgumentParser):
            __doc__ = argument_parser_class.__doc__

            def error(self, message: str) -> NoReturn:
                where = self.prog.removeprefix("unroot").strip()
                raise UsageError(f"{where}: {message}" if where else message)

            def _get_formatter(self) -> argparse.HelpFormatter:
                # argparse builds a formatter for every add_argument(); without a width the
                # formatter imports shutil (and zlib, bz2, lzma): milliseconds of start-up.
                return self.formatter_class(prog=self.prog, width=_columns() - 2)  # type: ignore[call-arg]

        _parser_class = ArgumentParser
    return _parser_class


def _columns() -> int:
    """shutil.get_terminal_size().columns: $COLUMNS, the terminal on stdout, or 80."""
    try:
        return int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        pass
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns or 80  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):  # no stdout, or not a terminal
        return 80


def one_line(text: str) -> str:
    """Escape control characters and line breaks so an error is exactly one line."""
    return "".join(
        ch if ch.isprintable() or ch == " " else ch.encode("unicode_escape").decode("ascii")
        for ch in text
    )


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
        from unroot.commands import caps, explain, lint, rules

        explain.register(sub)
        caps.register(sub)
        lint.register(sub)
        rules.register(sub)
    run.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
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
    except UnrootError as exc:
        print(f"unroot: {one_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (``unroot caps scan / | head``): not an error worth a line.
        sys.stderr.close()
        return 0
