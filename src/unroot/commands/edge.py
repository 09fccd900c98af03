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
from unroot.printable import one_line

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
            #: the dest of a positional list (a command's paths) that also takes what stands
            #: after its flags, as ruff and eslint do: ``lint a --no-fail b`` (argparse alone
            #: says "unrecognized arguments: b"); None: argparse's own order
            intermixed: str | None = None

            def parse_known_args(self, *args: Any, **kwargs: Any) -> Any:
                namespace, extras = super().parse_known_args(*args, **kwargs)
                if self.intermixed is None or not extras:
                    return namespace, extras
                paths = list(getattr(namespace, self.intermixed, None) or [])
                unknown: list[str] = []
                dashes = False
                for arg in extras:
                    if dashes or arg == "-" or not arg.startswith("-"):
                        paths.append(arg)
                    elif arg == "--":
                        dashes = True
                    else:  # an unknown flag stays an error
                        unknown.append(arg)
                setattr(namespace, self.intermixed, paths)
                return namespace, unknown

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


def report(exc: UnrootError) -> int:
    """``unroot: <one line>`` on stderr; the error's exit code."""
    print(f"unroot: {one_line(str(exc))}", file=sys.stderr)
    return exc.exit_code


class _Closed:
    """What stands for a standard stream the process was started without (``>&-``, ``<&-``):
    reading or writing it is one line and exit 2, not an AttributeError on None."""

    def __init__(self, name: str) -> None:
        self.name = name

    def _fail(self, *_: object) -> NoReturn:
        raise _OutputError(f"{self.name} is closed")

    read = readline = write = _fail

    def fileno(self) -> int:
        """As a closed descriptor's would: callers that probe (isatty) already expect it."""
        raise OSError(9, "Bad file descriptor")  # EBADF

    @property
    def buffer(self) -> _Closed:
        return self

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


class _Wrapped:
    """A standard stream with its own ``write``/``flush``; everything else is the stream's."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class _Checked(_Wrapped):
    """Standard output whose write errors (a full disk, an I/O error) are one line and exit 2:
    a report that could not be written must never look like a run with findings (exit 1)."""

    def write(self, text: str) -> int:
        try:
            return int(self._stream.write(text))
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise _write_failed(exc) from exc

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise _write_failed(exc) from exc


class _Unheard(_Wrapped):
    """Standard error that cannot be written (a full disk, an I/O error): nothing can be said
    there, and saying it must not change the exit code (an uncaught OSError is exit 1, which
    means findings).  The first failure points descriptor 2 at /dev/null, so the
    interpreter's flush at exit does not fail again."""

    def write(self, text: str) -> int:
        try:
            return int(self._stream.write(text))
        except OSError:
            self._silence()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError:
            self._silence()

    def _silence(self) -> None:
        if _to_devnull(self._stream):
            import contextlib  # here: not on `unroot run`'s path

            with contextlib.suppress(OSError, ValueError):
                self._stream.flush()  # what was buffered goes to /dev/null now


def _to_devnull(stream: Any) -> bool:
    """Point ``stream``'s file descriptor at /dev/null (True when it could): what the
    interpreter flushes at exit then goes nowhere instead of failing again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, UnrootError, AttributeError, ValueError):
        return False
    return True


class _OutputError(UsageError):
    """Standard output could not be written."""


def _write_failed(exc: OSError) -> UsageError:
    return _OutputError(f"cannot write standard output: {exc.strerror or exc}")


def guard_streams() -> None:
    """The process's standard streams as the CLI needs them: a closed one is :class:`_Closed`,
    standard output reports a failed write as an UnrootError (see :func:`guarded`).

    A descriptor 0, 1 or 2 the process started without is opened on /dev/null first, as
    daemons do: a file or socket opened later (the report, ``unroot run``'s listening socket)
    must not take its number and be read or written as a standard stream."""
    closed = sys.stdin is None or sys.stdout is None or sys.stderr is None
    if closed:  # before anything opens a file: it would land on fd 0, 1 or 2
        from unroot.launch.sockets import ensure_std_fds

        ensure_std_fds()  # /dev/null, inheritable: `unroot run`'s service gets them too
    if sys.stdin is None:
        sys.stdin = _Closed("standard input")
    if sys.stderr is None:  # nowhere to say anything: say it nowhere (not on stdout)
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115 - fd 2 is /dev/null now
    elif not isinstance(sys.stderr, _Unheard):
        sys.stderr = _Unheard(sys.stderr)
    if sys.stdout is None:
        sys.stdout = _Closed("standard output")
    elif not isinstance(sys.stdout, _Checked):
        sys.stdout = _Checked(sys.stdout)


def _discard_stdout() -> None:
    """Point file descriptor 1 at /dev/null: the interpreter's flush at exit must not fail
    again (a second message, exit 120) once the failure was said.  Only in the process the
    CLI guards (:func:`guard_streams`), never in a test calling a command in-process."""
    if not isinstance(sys.stdout, _Checked):
        return
    import contextlib  # here: not on `unroot run`'s path

    with contextlib.suppress(OSError, UnrootError):
        sys.stdout.flush()
    _to_devnull(sys.stdout)


def guarded(run: Callable[[], int]) -> int:
    """``run()`` with the CLI's contract: an UnrootError is one line and its exit code; ^C is
    130; a reader gone away (``unroot caps scan / | head``) is not an error worth a line; a
    standard output that cannot be written (closed, full) is one line and 2."""
    try:
        code = run()
        sys.stdout.flush()  # a failure to write the end of the report is this run's failure
        return code
    except UnrootError as exc:
        if isinstance(exc, _OutputError):
            _discard_stdout()
        return report(exc)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        _discard_stdout()
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
