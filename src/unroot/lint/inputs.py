"""Reading lint's inputs, bounded: only regular files, at most :data:`MAX_INPUT_BYTES` each, and
standard input with the same cap.

A FIFO, a character device (``/dev/zero``, ``/dev/urandom``), a socket or a directory named as a
file would hang the run or grow it without end; a file over the cap is not a configuration file
anyone wrote.  Both are :class:`~unroot.errors.UsageError` (one line, exit 2).  A file is opened
with ``O_NONBLOCK`` (opening a FIFO does not wait for a writer) and checked with ``fstat`` on
the descriptor read, so a file swapped for a FIFO after discovery looked at it is refused too;
at most cap + 1 bytes are ever read.  A UTF-8 byte order mark that starts a file or standard
input is dropped (:data:`BOM`).
"""

from __future__ import annotations

import os
import stat
from typing import BinaryIO, TextIO

from unroot.errors import UsageError

#: The largest input read: far above a 2 MB argo-cd ``install.yaml`` or a ``kubectl get -A -o
#: yaml`` dump of a large cluster, far below what would exhaust memory.
MAX_INPUT_BYTES = 64 * 1024 * 1024
#: the limit as the messages and ``--help`` say it
LIMIT = f"{MAX_INPUT_BYTES // (1024 * 1024)} MiB"
#: UTF-8's byte order mark, which editors on Windows write first: Docker, kubectl, compose and
#: systemd skip it, so lint drops it before it tells the kind or parses (columns stay right)
BOM = b"\xef\xbb\xbf"
_TYPES = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a directory"),
)


def what_is(mode: int) -> str:
    """``a FIFO``, ``a character device``, … for a file mode that is not a regular file."""
    return next((name for test, name in _TYPES if test(mode)), "not a regular file")


def not_regular(path: str, mode: int) -> UsageError:
    return UsageError(f"{path}: {what_is(mode)}, not a regular file (unroot lint reads only files)")


def too_big(path: str) -> UsageError:
    return UsageError(f"{path}: larger than {LIMIT}, the limit of one input (not read)")


def check_file(path: str) -> None:
    """UsageError unless ``path`` (links followed) is a regular file within the cap."""
    try:
        info = os.stat(path)
    except OSError:
        return  # reading it reports why
    if not stat.S_ISREG(info.st_mode):
        raise not_regular(path, info.st_mode)
    if info.st_size > MAX_INPUT_BYTES:
        raise too_big(path)


def read_bytes(path: str, limit: int | None = None) -> bytes:
    """A regular file's bytes (at most ``limit``, else the whole file within the cap).

    OSError when it cannot be opened or read; UsageError when it is not a regular file or
    over the cap (``limit`` None only)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise not_regular(path, mode)
        data = handle.read(MAX_INPUT_BYTES + 1 if limit is None else limit)
    if limit is None and len(data) > MAX_INPUT_BYTES:
        raise too_big(path)
    return data.removeprefix(BOM)


def read_stdin(stream: TextIO, name: str = "-") -> str:
    """Standard input as text, at most the cap (UsageError beyond it; ``name`` names it)."""
    raw: BinaryIO | None = getattr(stream, "buffer", None)
    if raw is not None:
        data = raw.read(MAX_INPUT_BYTES + 1)
        if len(data) > MAX_INPUT_BYTES:
            raise too_big(name)
        return data.removeprefix(BOM).decode("utf-8", errors="surrogateescape")
    text = stream.read(MAX_INPUT_BYTES + 1)  # a text stream passed in (tests): bounded too
    if len(text.encode("utf-8", errors="surrogateescape")) > MAX_INPUT_BYTES:
        raise too_big(name)
    return text.removeprefix("\ufeff")
