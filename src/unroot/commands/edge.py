"""The command line's one edge: the parser class, one-line errors and exit codes.

Every command module registers its parser with :func:`argument_parser_class`'s class and lets
an :class:`~unroot.errors.UnrootError` rise; :func:`guarded` turns it into one line on stderr and
its exit code (2 for bad input, 3 for an environment problem).  ``cli.py`` and the ``run_*``
entry points of the commands (tests, benchmarks) both go through it.

`unroot run` must start fast (its latency is the service's start-up): this module imports
neither argparse nor re at import time.
"""

from __future__ import annotations

import os
import sys

from unroot.errors import UnrootError, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence
    from typing import Any, NoReturn

_parser_class: type[argparse.ArgumentParser] | None = None


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
    """Text safe for a terminal and for line-based readers: exactly one line.

    Bytes that are not UTF-8 (surrogate-escaped file names) are shown as ``\\xNN``; control
    characters, line breaks and other unprintable characters (which a file name may contain: a
    newline, or an escape sequence that would repaint the screen) as ``\\n``, ``\\xNN`` or
    ``\\uNNNN``.
    """
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    if text.isprintable():
        return text
    return "".join(
        ch if ch.isprintable() or ch == " " else ch.encode("unicode_escape").decode("ascii")
        for ch in text
    )


def report(exc: UnrootError) -> int:
    """``unroot: <one line>`` on stderr; the error's exit code."""
    print(f"unroot: {one_line(str(exc))}", file=sys.stderr)
    return exc.exit_code


def guarded(run: Callable[[], int]) -> int:
    """``run()`` with the CLI's contract: an UnrootError is one line and its exit code; ^C is
    130; a reader gone away (``unroot caps scan / | head``) is not an error worth a line."""
    try:
        return run()
    except UnrootError as exc:
        return report(exc)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        sys.stderr.close()
        return 0


def run_command(register: Callable[[Any], None], argv: Sequence[str], **streams: Any) -> int:
    """One command (its module's ``register`` and ``handle``) from an argv list, without the
    rest of ``unroot``'s parser: ``run_command(lint.register, ["lint", "."], stdout=out)``."""
    parser_class = argument_parser_class()
    parser = parser_class(prog="unroot")
    sub = parser.add_subparsers(dest="command", parser_class=parser_class)
    register(sub)

    def run() -> int:
        args = parser.parse_args(list(argv))
        handler: Callable[..., int] = args.handler
        return handler(args, **streams)

    return guarded(run)
