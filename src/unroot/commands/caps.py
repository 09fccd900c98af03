"""``unroot caps``: decode masks, read file capabilities, show a process, scan trees.

The libcap tools' answers, in unroot's words and with ``--json``: ``decode`` is
``capsh --decode``, ``file`` is ``getcap``, ``proc`` is ``/proc/PID/status`` plus securebits,
``scan`` is ``getcap -r`` and ``find -type f -perm /6000`` in one walk.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import re
import stat
import sys
import time
from functools import lru_cache
from typing import TYPE_CHECKING, Any, TextIO

from unroot import SCHEMA_VERSION
from unroot.errors import ParseError, UnrootError, UsageError
from unroot.facts import PROCFS_PATH
from unroot.model.caps import MASK_BITS, CapSet, libcap_name
from unroot.model.creds import (
    SECBIT_KEEP_CAPS,
    SECBIT_KEEP_CAPS_LOCKED,
    SECBIT_NO_CAP_AMBIENT_RAISE,
    SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED,
    SECBIT_NO_SETUID_FIXUP,
    SECBIT_NO_SETUID_FIXUP_LOCKED,
    SECBIT_NOROOT,
    SECBIT_NOROOT_LOCKED,
    Ids,
)
from unroot.model.filecaps import FileCaps
from unroot.printable import one_line as _display

if TYPE_CHECKING:
    from collections.abc import Callable

    from unroot.facts.filecaps import PrivilegedFile

_SECBITS = (
    ("SECBIT_NOROOT", SECBIT_NOROOT),
    ("SECBIT_NOROOT_LOCKED", SECBIT_NOROOT_LOCKED),
    ("SECBIT_NO_SETUID_FIXUP", SECBIT_NO_SETUID_FIXUP),
    ("SECBIT_NO_SETUID_FIXUP_LOCKED", SECBIT_NO_SETUID_FIXUP_LOCKED),
    ("SECBIT_KEEP_CAPS", SECBIT_KEEP_CAPS),
    ("SECBIT_KEEP_CAPS_LOCKED", SECBIT_KEEP_CAPS_LOCKED),
    ("SECBIT_NO_CAP_AMBIENT_RAISE", SECBIT_NO_CAP_AMBIENT_RAISE),
    ("SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED", SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED),
)
_MASK = re.compile(r"(?:0x)?([0-9a-f]+)")
_SETS = ("inheritable", "permitted", "effective", "bounding", "ambient")

DECODE_HELP = """\
Print the capabilities in each hex mask, exactly as `capsh --decode=MASK` does
(0x00000000a80425fb=cap_chown,...; bits without a name are shown as numbers).
MASK is hex with or without 0x, e.g. a80425fb or 000001ffffffffff from /proc/PID/status.
JSON: {"mask", "caps"} for one MASK, a list of them for several.
Exit status: 0, or 2 for a MASK that is not hex or wider than 64 bits."""

FILE_HELP = """\
Print each file's capabilities like getcap(8) (symlinks are followed), followed by the
security.capability revision: "PATH cap_net_bind_service=ep [v2]" or "[v3 rootid=1000]".
A file without capabilities prints nothing (like getcap); its JSON entry has "caps": null.
JSON: {"files": [{"path", "caps": {text, permitted, inheritable, effective, revision,
rootid, hex} | null, "error": null | "..."}]}.
Exit status: 0 when every file could be read (with or without capabilities); otherwise each
problem is one line on stderr, the other files are still shown, and the status is 2 (missing
file, invalid security.capability bytes) or 3 (not allowed to read it)."""

PROC_HELP = """\
Show a process's ids, groups, the five capability sets (hex and names), no_new_privs,
securebits and seccomp mode, from /proc/PID/status.  Securebits are not in /proc: they are
read with prctl(PR_GET_SECUREBITS) for `self` (unroot's own process) and shown as unavailable
(JSON null) for any other process.
Exit status: 0; 2 for no such process; 3 when /proc cannot be read."""

SCAN_HELP = """\
List every regular file under DIR that has file capabilities or a setuid/setgid bit: what
`getcap -r DIR` and `find DIR -type f -perm /6000` report, in one walk, sorted by path.
Symlinks are not followed (a DIR given as a symlink is).  Like getcap -r, the walk crosses
into other filesystems unless -x is given, but it never enters pseudo filesystems (proc,
sysfs, cgroup, debugfs, ...) below DIR.  Unreadable directories are warnings on stderr (and
JSON "errors"), not failures.  A progress counter is shown on stderr only when it is a
terminal and the output is text.  In text output, control characters in file names are
shown escaped (\\n, \\x1b), so a name cannot fake a line or repaint the terminal.
Text: "PATH  cap_net_bind_service=ep  [v2]", "PATH  setuid root (4755 root:root)".
JSON: {"files": [{"path", "caps": {...} | null, "caps_error", "setuid_owner", "setgid_owner",
"mode", "uid", "gid"}], "scanned": regular files examined, "directories", "skipped", "errors"}.
Exit status: 0 (finding privileged files is not a failure); 2 when a DIR does not exist;
3 when a DIR cannot be read at all."""


def register(sub: Any) -> None:
    common = argparse.ArgumentParser(add_help=False)
    output = common.add_mutually_exclusive_group()
    output.add_argument(
        "--format", choices=("text", "json"), default="text", help="output format (default: text)"
    )
    output.add_argument(
        "--json", dest="format", action="store_const", const="json", help="same as --format json"
    )

    parser: argparse.ArgumentParser = sub.add_parser(
        "caps",
        help="inspect capabilities: decode masks, files, processes, trees",
        description="Inspect capabilities: decode masks (capsh --decode), read file capabilities "
        "(getcap), show a process's credentials, scan trees (getcap -r, find -perm /6000).",
    )
    parser.set_defaults(handler=lambda args: _usage(parser))
    caps_sub = parser.add_subparsers(dest="caps_command", metavar="SUBCOMMAND")

    def subcommand(
        name: str, summary: str, description: str, handler: Callable[[argparse.Namespace], int]
    ) -> argparse.ArgumentParser:
        command: argparse.ArgumentParser = caps_sub.add_parser(
            name,
            parents=[common],
            help=summary,
            description=description,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.set_defaults(handler=handler)
        return command

    decode = subcommand(
        "decode", "decode hex capability masks (capsh --decode)", DECODE_HELP, run_decode
    )
    decode.add_argument("masks", nargs="+", metavar="MASK")

    file = subcommand("file", "show file capabilities (getcap)", FILE_HELP, run_file)
    file.add_argument("paths", nargs="+", metavar="PATH")

    proc = subcommand("proc", "show a process's credentials and capabilities", PROC_HELP, run_proc)
    proc.add_argument("pid", metavar="PID|self")
    proc.add_argument(
        "--procfs", default=PROCFS_PATH, metavar="DIR", help=f"procfs root (default {PROCFS_PATH})"
    )

    scan = subcommand(
        "scan", "find files with capabilities or setuid/setgid bits", SCAN_HELP, run_scan
    )
    scan.add_argument("dirs", nargs="+", metavar="DIR")
    scan.add_argument(
        "-x",
        "--one-file-system",
        action="store_true",
        help="do not descend into directories on other filesystems",
    )


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


# -- decode ----------------------------------------------------------------------------------
def parse_mask(text: str) -> CapSet:
    """A hex mask as capsh and /proc print it: ``0xa80425fb``, ``000001ffffffffff``."""
    match = _MASK.fullmatch(text.strip().lower())
    if not match or int(match.group(1), 16) >> MASK_BITS:
        raise ParseError(
            f"not a capability mask: {text!r} (expected hex of at most 64 bits, "
            "e.g. 0xa80425fb or 000001ffffffffff)"
        )
    return CapSet(int(match.group(1), 16))


def decode_line(caps: CapSet) -> str:
    """``capsh --decode`` output: 16 hex digits, ``=``, libcap names (numbers when unnamed)."""
    return f"0x{caps.mask:016x}=" + ",".join(libcap_name(bit) for bit in caps)


def _mask_json(caps: CapSet) -> dict[str, Any]:
    return {"mask": f"0x{caps.mask:016x}", "caps": caps.names()}


def run_decode(args: argparse.Namespace) -> int:
    masks = [parse_mask(text) for text in args.masks]
    if args.format == "json":
        items = [_mask_json(caps) for caps in masks]
        _print_json(items[0] if len(items) == 1 else items)
    else:
        for caps in masks:
            print(decode_line(caps))
    return 0


# -- file ------------------------------------------------------------------------------------
def caps_suffix(caps: FileCaps) -> str:
    if caps.rootid is not None:
        return f"[v{caps.revision} rootid={caps.rootid}]"
    return f"[v{caps.revision}]"


def run_file(args: argparse.Namespace) -> int:
    from unroot.facts.filecaps import read_file_caps

    status = 0
    entries = []
    for path in args.paths:
        try:
            caps = read_file_caps(path)
        except UnrootError as exc:
            _warn(str(exc))
            status = max(status, exc.exit_code)
            entries.append({"path": path, "caps": None, "error": _without_path(exc, path)})
            continue
        entries.append(
            {"path": path, "caps": None if caps is None else caps.to_json(), "error": None}
        )
        if caps is not None and args.format == "text":
            print(f"{_display(path)} {caps.to_text()} {caps_suffix(caps)}")
    if args.format == "json":
        _print_json({"files": entries})
    return status


# -- proc ------------------------------------------------------------------------------------
def securebits_names(bits: int) -> list[str]:
    names = [name for name, bit in _SECBITS if bits & bit]
    unknown = bits & ~sum(bit for _, bit in _SECBITS)
    return names + ([f"{unknown:#x}"] if unknown else [])


def _own_securebits(pid: str, procfs: str) -> int | None:
    """prctl(PR_GET_SECUREBITS) answers for the calling process only."""
    if procfs != PROCFS_PATH or pid not in ("self", str(os.getpid())):
        return None
    from unroot import syscalls

    try:
        return syscalls.get_securebits()
    except OSError:
        return None


def run_proc(args: argparse.Namespace) -> int:
    from unroot.facts.proc import SECCOMP_MODES, read_status

    pid = args.pid.strip()
    if pid != "self" and not (pid.isascii() and pid.isdigit() and int(pid) > 0):
        raise UsageError(f"PID must be a process id or 'self', not {args.pid!r}")
    status = read_status(pid, procfs=args.procfs)
    securebits = _own_securebits(pid, args.procfs)
    seccomp = (
        None if status.seccomp is None else SECCOMP_MODES.get(status.seccomp, str(status.seccomp))
    )
    sets = {name: getattr(status, name) for name in _SETS}
    if args.format == "json":
        _print_json(
            {
                "pid": status.pid,
                "name": status.name,
                "uid": _ids_json(status.uid),
                "gid": _ids_json(status.gid),
                "groups": list(status.groups),
                **{name: _mask_json(caps) for name, caps in sets.items()},
                "no_new_privs": status.no_new_privs,
                "securebits": None
                if securebits is None
                else {"value": securebits, "names": securebits_names(securebits)},
                "seccomp": seccomp,
            }
        )
        return 0
    rows = [
        ("process", f"{status.pid} ({status.name})"),
        ("uid", _ids_text(status.uid)),
        ("gid", _ids_text(status.gid)),
        ("groups", ",".join(map(str, status.groups)) or "none"),
        *((name, f"0x{caps.mask:016x} {caps}") for name, caps in sets.items()),
        (
            "no_new_privs",
            "unknown (no NoNewPrivs line: kernel before 4.10)"
            if status.no_new_privs is None
            else str(int(status.no_new_privs)),
        ),
        (
            "securebits",
            "unavailable (prctl reads them for unroot's own process only: use self)"
            if securebits is None
            else f"{securebits:#x} {','.join(securebits_names(securebits)) or 'none'}",
        ),
        (
            "seccomp",
            "unknown (no Seccomp line)"
            if status.seccomp is None
            else f"{status.seccomp} ({seccomp})",
        ),
    ]
    for label, value in rows:
        print(f"{label:<13}{_display(value)}")
    return 0


def _ids_json(ids: Ids) -> dict[str, int]:
    return {"real": ids.real, "effective": ids.effective, "saved": ids.saved, "fs": ids.fs}


def _ids_text(ids: Ids) -> str:
    return f"real {ids.real}  effective {ids.effective}  saved {ids.saved}  fs {ids.fs}"


# -- scan ------------------------------------------------------------------------------------
class _Progress:
    """A counter on a terminal's stderr, redrawn at most ten times a second."""

    def __init__(self, stream: TextIO, enabled: bool) -> None:
        self.stream = stream
        self.enabled = enabled
        self.shown = False
        self.next_draw = 0.0

    def update(self, files: int, directories: int) -> None:
        now = time.monotonic()
        if now < self.next_draw:
            return
        self.next_draw = now + 0.1
        self.stream.write(f"\rscanning: {files} files in {directories} directories")
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self.shown = False

    def warn(self, message: str) -> None:
        self.clear()
        _warn(message, self.stream)


def run_scan(args: argparse.Namespace) -> int:
    from unroot.facts.filecaps import ScanError, scan

    stderr = sys.stderr
    progress = _Progress(stderr, args.format == "text" and _isatty(stderr))

    def on_error(err: ScanError) -> None:
        if not err.root:
            progress.warn(f"warning: {_display(err.path)}: {err.message}")

    result = scan(
        args.dirs,
        one_file_system=args.one_file_system,
        on_error=on_error,
        on_progress=progress.update if progress.enabled else None,
    )
    progress.clear()
    status = 0
    for err in result.errors:
        if err.root:
            _warn(f"{_display(err.path)}: {err.message}")
            status = max(status, 2 if err.errno in _MISSING else 3)
    if args.format == "json":
        _print_json(
            {
                "files": [_scan_json(f) for f in result.files],
                "scanned": result.scanned,
                "directories": result.directories,
                "skipped": list(result.skipped),
                "errors": [{"path": e.path, "error": e.message} for e in result.errors],
            }
        )
        return status
    for found in result.files:
        parts = [_display(found.path)]
        if found.caps is not None:
            parts += [found.caps.to_text(), caps_suffix(found.caps)]
        if found.caps_error is not None:
            parts.append(found.caps_error)
        if found.mode & (stat.S_ISUID | stat.S_ISGID):
            parts.append(_setid_text(found.mode, found.uid, found.gid))
        print("  ".join(parts))
    if progress.enabled:
        _warn(f"{len(result.files)} privileged of {result.scanned} files scanned", stderr)
    return status


_MISSING = frozenset({errno.ENOENT, errno.ENOTDIR, errno.ELOOP})


def _scan_json(found: PrivilegedFile) -> dict[str, Any]:
    return {
        "path": found.path,
        "caps": None if found.caps is None else found.caps.to_json(),
        "caps_error": found.caps_error,
        "setuid_owner": found.setuid_owner,
        "setgid_owner": found.setgid_owner,
        "mode": _octal_mode(found.mode),
        "uid": found.uid,
        "gid": found.gid,
    }


def _setid_text(mode: int, uid: int, gid: int) -> str:
    kinds = []
    if mode & stat.S_ISUID:
        kinds.append(f"setuid {_user(uid)}")
    if mode & stat.S_ISGID:
        kinds.append(f"setgid {_group(gid)}")
    return f"{', '.join(kinds)} ({_octal_mode(mode)} {_user(uid)}:{_group(gid)})"


def _octal_mode(mode: int) -> str:
    """The permission bits of an st_mode as ``find -printf %m`` and ``stat -c %a`` print them,
    padded to four digits (``4755``)."""
    return f"{stat.S_IMODE(mode):04o}"


@lru_cache(maxsize=256)
def _user(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


@lru_cache(maxsize=256)
def _group(gid: int) -> str:
    import grp

    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


# -- output helpers --------------------------------------------------------------------------
def _print_json(value: dict[str, Any] | list[dict[str, Any]]) -> None:
    """A document, or (caps decode of several masks) a list of them, each object starting with
    ``schema_version``."""
    if isinstance(value, list):
        value = [{"schema_version": SCHEMA_VERSION, **item} for item in value]
    else:
        value = {"schema_version": SCHEMA_VERSION, **value}
    print(json.dumps(value, indent=2))


def _warn(message: str, stream: TextIO | None = None) -> None:
    print(f"unroot: {_display(message)}", file=stream or sys.stderr)


def _without_path(exc: UnrootError, path: str) -> str:
    return str(exc).removeprefix(f"{path}: ")


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
