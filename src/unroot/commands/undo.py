"""``unroot undo [JOURNAL]``: restore what ``unroot doctor --apply`` changed, byte for byte.

Without JOURNAL: the newest journal in the journal directory not yet undone
(``$UNROOT_STATE_DIR/journal``, else ``/var/lib/unroot/journal``).  A node changed since the
apply, a journal undone already, edited or malformed: one line, exit 2, nothing changed.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, TextIO


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "undo",
        help="restore what `unroot doctor --apply` changed",
        description="Restore the modes, owners, ACL and capability xattrs, groups, sysctls and "
        "files an apply changed, from its journal (default: the newest one not undone). Refuses, "
        "changing nothing, when anything changed since the apply.",
    )
    parser.add_argument("journal", nargs="?", metavar="JOURNAL", help="a journal file")
    parser.set_defaults(handler=handle)


def handle(args: Any, stdout: TextIO | None = None) -> int:
    from unroot.doctor import journal
    from unroot.doctor.apply import undo

    out = stdout or sys.stdout
    path = args.journal or journal.newest(journal.journal_dir())
    done = undo(path)
    for line in done.restored:
        out.write(f"{line}\n")
    out.write(f"undone: {path} (now {done.journal})\n")
    return 0


def run_undo(argv: Sequence[str], stdout: TextIO | None = None) -> int:
    """``unroot undo ARGV…`` with the CLI's contract."""
    from unroot.commands.edge import run_command

    return run_command(register, ["undo", *argv], stdout=stdout)
