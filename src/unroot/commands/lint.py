"""``unroot lint``: static analysis of Dockerfiles, compose files, Kubernetes manifests and
systemd units (PRODUCT.md).  Exit 0 when nothing is at or above the failure threshold, 1 when
something is, 2 for a usage or input error (one line on stderr) or when nothing could be read.

``register(sub)`` adds the command to ``unroot``'s parser; :func:`run_lint` runs it from an
argv list (tests, other entry points) with the CLI's error handling.  Settings come from flags,
then ``UNROOT_*`` variables, then the config (:mod:`unroot.lint.settings`).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from unroot.errors import UsageError
from unroot.lint.config import COLORS, FORMATS, RUNTIMES, THRESHOLDS
from unroot.lint.inputs import LIMIT
from unroot.sources.kinds import NAMES as KINDS

TYPE_CHECKING = False
if TYPE_CHECKING:
    from unroot.lint.config import LintConfig
    from unroot.lint.engine import LintResult
    from unroot.lint.settings import Settings


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "lint",
        help="lint Dockerfiles, compose files, Kubernetes manifests and systemd units",
        description="Predict what the kernel will do when these files run: exec EPERM, bind "
        "EACCES, file capabilities lost in the build or ignored, unreadable mounts. Exit 0 when "
        "nothing is at or above the failure threshold, 1 when something is, 2 on bad input "
        "or when nothing could be read. "
        "Settings: flags, then UNROOT_<FLAG> environment variables (UNROOT_FORMAT, "
        "UNROOT_FAILURE_THRESHOLD, …; empty counts as unset), then the config file.",
    )
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="files or directories (default .); - for standard input (its kind told from its "
        f"name or text); only regular files of at most {LIMIT} are read",
    )
    parser.intermixed = "paths"  # paths before, between and after the flags
    parser.add_argument("--kind", choices=KINDS, help="read every file as this kind")
    parser.add_argument(
        "--stdin-filename",
        metavar="NAME",
        help="the name of standard input in findings (alone: lint standard input); its kind is "
        "told from it first",
    )
    parser.add_argument(
        "-f",
        "--format",
        choices=FORMATS,
        help="text (default), json, sarif, gnu (file:line:col: severity: message [rule]), "
        "junit, checkstyle",
    )
    parser.add_argument("--runtime", choices=RUNTIMES, help="the runtime that runs containers")
    parser.add_argument("--select", metavar="IDS", help="only these rules (ids, UR1, topics)")
    parser.add_argument("--ignore", metavar="IDS", help="not these rules (ids, UR1, topics)")
    parser.add_argument(
        "-t",
        "--failure-threshold",
        choices=THRESHOLDS,
        help="exit 1 for findings at or above this severity (default: warning; none: never)",
    )
    parser.add_argument("-c", "--config", metavar="FILE", help=".unroot.toml or pyproject.toml")
    _add_ci_arguments(parser)
    parser.set_defaults(handler=handle)


def _add_ci_arguments(parser: Any) -> None:
    """The flags for CI and editors: the report's destination, severities, colour, layout."""
    parser.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="write the report to FILE (replaced whole once the run succeeds; - for stdout)",
    )
    parser.add_argument(
        "--no-fail",
        action="store_true",
        help="exit 0 whatever is found (same as --failure-threshold none); 2 still means bad input",
    )
    parser.add_argument(
        "--severity",
        action="append",
        metavar="RULE=LEVEL",
        help="report a rule (id, prefix or topic) as error, warning or info, or not at all "
        "(none); comma-separated or repeated: --severity UR106=error,UR109=none",
    )
    parser.add_argument(
        "--color",
        choices=COLORS,
        help="colour the text report (default auto: on a terminal, unless NO_COLOR is set)",
    )
    parser.add_argument(
        "--compact", action="store_true", help="text report without the assumes: lines"
    )
    parser.add_argument(
        "--sarif-category",
        metavar="NAME",
        help="SARIF automationDetails.id unroot/lint/NAME/ (code scanning's category)",
    )


def handle(args: Any, stdout: TextIO | None = None, stdin: TextIO | None = None) -> int:
    from unroot.lint.config import load_config
    from unroot.lint.engine import LintOptions, lint_paths
    from unroot.lint.settings import resolve, warnings
    from unroot.printable import one_line

    out = stdout or sys.stdout
    settings = resolve(args, os.environ)
    for warning in warnings(settings, os.environ):
        print(f"unroot: warning: {warning}", file=sys.stderr)
    destination = _destination(args.output)
    name = args.stdin_filename
    paths: list[str] = list(args.paths) or (["-"] if name else ["."])
    if name is not None and (name.endswith("/") or os.path.basename(name) in ("", ".", "..")):
        what = "an empty name" if not name else "a directory"
        raise UsageError(f"--stdin-filename {name!r}: {what}; give the name of a file")
    if name is not None and "-" not in paths:
        raise UsageError("--stdin-filename names standard input: give - among the paths")
    start = next((p for p in paths if p != "-"), name or ".")
    config = load_config(start, settings.config)
    # the file standard input is named after is an input too (an editor's buffer of it)
    named = (*paths, *((name,) if name else ()))
    if destination is not None:  # refused before any work when it is named
        _refuse_input(destination, (*named, *_config_paths(config)))
    _check_named(settings)
    options = LintOptions(
        kind=args.kind,
        runtime=settings.runtime,
        select=settings.select,
        ignore=settings.ignore,
        failure_threshold=settings.failure_threshold,
        config=config,
        severity=settings.severity,
    )
    stdin_text = None
    if "-" in paths:
        from unroot.lint.inputs import read_stdin

        stdin_text = read_stdin(stdin or sys.stdin, name or "standard input")
    result = lint_paths(paths, options, stdin_text=stdin_text, stdin_name=name)
    for path, reason in result.skipped:
        print(f"unroot: skipped {one_line(path)}: {one_line(reason)}", file=sys.stderr)
    for warning in result.warnings:
        print(f"unroot: warning: {one_line(warning)}", file=sys.stderr)
    if destination is None:
        out.write(_render(settings, args.compact, result, out))
        out.flush()
    else:
        _refuse_input(destination, (*named, *result.read, *_config_paths(config)))
        _write(destination, _render(settings, args.compact, result, None))
    return result.exit_code


def _check_named(settings: Settings) -> None:
    """An unknown rule in --severity is an error; in --select/--ignore a warning."""
    from unroot.lint.engine import unknown_selectors
    from unroot.lint.registry import load_rules
    from unroot.printable import one_line

    rules = load_rules()
    unknown = unknown_selectors((s for s, _ in settings.severity), rules)
    if unknown:
        raise UsageError(
            f"{settings.severity_source}: {unknown[0]!r} names no rule (unroot rules lists them)"
        )
    for where, selectors in settings.named:
        for selector in unknown_selectors(selectors, rules):
            print(
                f"unroot: warning: {one_line(where)}: {selector!r} names no rule (ignored)",
                file=sys.stderr,
            )


def _render(settings: Settings, compact: bool, result: LintResult, stream: TextIO | None) -> str:
    """The report; ``stream`` is the terminal it goes to (None: a file)."""
    from unroot.lint.formatters import FORMATTERS
    from unroot.lint.formatters import text as text_format
    from unroot.lint.settings import use_color
    from unroot.wrapping import output_width

    formatter = FORMATTERS.get(settings.format)
    if formatter is None:
        raise UsageError(f"--format {settings.format}: not available in this build")
    if settings.format == "text":
        isatty = stream is not None and _isatty(stream)
        # a report file gets colour only when asked for by name (not from FORCE_COLOR)
        color = use_color(settings.color, isatty, os.environ if stream is not None else {})
        return text_format.render(
            result.findings,
            result.files,
            result.rules,
            color=color,
            width=output_width(stream),
            compact=compact,
            unread=result.unread,
            not_read=result.not_read,
        )
    if settings.format == "sarif":
        from unroot.lint.formatters import sarif

        return sarif.render(
            result.findings,
            result.files,
            result.rules,
            category=settings.sarif_category,
            skipped=result.skipped,
            unread=result.unread,
        )
    if settings.format == "json":
        from unroot.lint.formatters import json as json_format

        return json_format.render(
            result.findings, result.files, result.rules, skipped=result.skipped
        )
    return formatter(result.findings, result.files, result.rules)


def _isatty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


# -- --output -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Destination:
    """Where ``--output`` writes: ``path`` (a symlink's target, resolved), replaced atomically;
    or, when ``through`` (a device, a FIFO: ``/dev/null``, ``/dev/stdout``), opened and written
    as it is, never replaced."""

    named: str
    path: str
    through: bool = False


def _destination(output: str | None) -> Destination | None:
    """``--output``'s destination (None: standard output), checked before any work is done."""
    import stat

    from unroot.lint.inputs import what_is

    if output is None or output == "-":
        return None
    if not output:
        raise UsageError("--output: empty file name")
    try:
        info: os.stat_result | None = os.stat(output)
    except (FileNotFoundError, NotADirectoryError):  # a new file: its directory is checked
        info = None
    except OSError as exc:
        raise UsageError(f"--output {output}: {exc.strerror or exc}") from exc
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise UsageError(f"--output {output}: is a directory")
    if info is not None and stat.S_ISSOCK(info.st_mode):
        raise UsageError(f"--output {output}: {what_is(info.st_mode)}, not a file")
    if info is not None and not stat.S_ISREG(info.st_mode):
        return Destination(output, output, through=True)
    path = os.path.realpath(output) if os.path.islink(output) else output
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        what = "not a directory" if os.path.exists(directory) else "no such directory"
        raise UsageError(f"--output {output}: {what}: {directory!r}")
    return Destination(output, path)


def _config_paths(config: LintConfig) -> tuple[str, ...]:
    return (config.path,) if config.path else ()


def _refuse_input(destination: Destination, read: Iterable[str]) -> None:
    """UsageError when ``--output`` names a file lint read (an input, a Dockerfile reached
    through a compose ``build:``, the config file): writing the report would destroy it."""
    if destination.through:
        return
    try:
        info = os.stat(destination.path)
    except OSError:
        return  # a new file is no input
    resolved = os.path.realpath(destination.path)
    for path in read:
        if path == "-":
            continue
        try:
            other = os.stat(path)
        except OSError:
            continue
        same = (other.st_dev, other.st_ino) == (info.st_dev, info.st_ino)
        if same or os.path.realpath(path) == resolved:
            raise UsageError(f"--output {destination.named} is one of the inputs (not written)")


def _write(destination: Destination, text: str) -> None:
    """The report into ``destination``: written through a device or FIFO, else atomically."""
    if not destination.through:
        _write_atomically(destination.path, text, named=destination.named)
        return
    try:
        with open(
            destination.path if (fd := _own_descriptor(destination.path)) is None else fd,
            "w",
            encoding="utf-8",
            errors="surrogateescape",
            newline="",
        ) as handle:
            handle.write(text)
    except OSError as exc:
        raise UsageError(
            f"--output {destination.named}: cannot write: {exc.strerror or exc}"
        ) from exc


def _own_descriptor(path: str) -> int | None:
    """A duplicate of this process's standard output or error when ``path`` is it
    (``/dev/stdout``, ``/proc/self/fd/1``): written as it is, not opened again, which a user
    may not be allowed to do (a pipe another user made)."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    for fd in (1, 2):
        try:
            mine = os.fstat(fd)
        except OSError:
            continue
        if (mine.st_dev, mine.st_ino) == (info.st_dev, info.st_ino):
            return os.dup(fd)
    return None


def _write_atomically(path: str, text: str, named: str | None = None) -> None:
    """``text`` into ``path`` through a temporary file in its directory and a rename: a reader
    (or a crash) sees the old file or the whole new one, never half of it.  A file replaced
    keeps its mode and (as root; else its group when allowed) its owner."""
    import tempfile

    directory = os.path.dirname(path) or "."
    try:
        old: os.stat_result | None = os.stat(path)
    except OSError:
        old = None
    if old is not None:
        mode = old.st_mode & 0o7777
    else:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    temporary = None
    try:
        fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.")
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape", newline="") as handle:
            handle.write(text)
        if old is not None:
            _keep_owner(temporary, old)
        os.chmod(temporary, mode)  # after chown, which clears set-id bits
        os.replace(temporary, path)
        temporary = None
    except OSError as exc:
        raise UsageError(f"--output {named or path}: cannot write: {exc.strerror or exc}") from exc
    finally:
        if temporary is not None:
            os.unlink(temporary)


def _keep_owner(path: str, old: os.stat_result) -> None:
    if os.geteuid() == 0:
        os.chown(path, old.st_uid, old.st_gid)
        return
    with contextlib.suppress(PermissionError):  # a user may give it a group of theirs
        os.chown(path, -1, old.st_gid)


def run_lint(argv: Sequence[str], stdout: TextIO | None = None, stdin: TextIO | None = None) -> int:
    """``unroot lint ARGV…`` with the CLI's contract: errors are one line on stderr, exit 2."""
    from unroot.commands.edge import run_command

    return run_command(register, ["lint", *argv], stdout=stdout, stdin=stdin)
