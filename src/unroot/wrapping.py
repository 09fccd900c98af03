"""Wrapping prose for a terminal: to its width, never inside a word, a path or a ``code span``.

The width is ``$COLUMNS`` when set (as :func:`shutil.get_terminal_size` reads it), else the
terminal's when the stream is one, else :data:`DEFAULT_WIDTH` (a pipe, a file, CI logs: the same
bytes whatever launched the command), kept between :data:`MIN_WIDTH` and :data:`MAX_WIDTH`
(longer lines are hard to read; shorter leave no room for a message beside its indent).

Words break only at spaces: a path, an option or a capability name (``cap_net_bind_service``)
stays whole, and a backquoted span (```cap_add: [NET_BIND_SERVICE]```) counts as one word even
with spaces inside — unless it is longer than a line, then it breaks at its spaces.  A word
longer than the line gets a line of its own rather than being cut.
"""

from __future__ import annotations

import os
import re
import textwrap
from typing import TextIO

DEFAULT_WIDTH = 100
MIN_WIDTH = 60
MAX_WIDTH = 120

_SPAN = re.compile(r"`[^`\n]+`")
_GLUE = "\ue000"  # a private-use character: not whitespace, so textwrap never breaks at it


def output_width(stream: TextIO | None = None) -> int:
    """The width to wrap at for ``stream`` ($COLUMNS, its terminal, or the default), clamped."""
    width = DEFAULT_WIDTH
    columns = os.environ.get("COLUMNS", "")
    if columns.strip().isdigit() and int(columns) > 0:
        width = int(columns)
    elif stream is not None and _isatty(stream):
        try:
            width = os.get_terminal_size(stream.fileno()).columns or DEFAULT_WIDTH
        except (AttributeError, ValueError, OSError):  # not a real terminal after all
            width = DEFAULT_WIDTH
    return max(MIN_WIDTH, min(MAX_WIDTH, width))


def _isatty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def wrap(text: str, width: int, initial_indent: str = "", subsequent_indent: str = "") -> list[str]:
    """``text`` as lines of at most ``width`` columns (an over-long word stays whole)."""
    room = width - max(len(initial_indent), len(subsequent_indent))
    glued = _SPAN.sub(
        lambda m: m.group().replace(" ", _GLUE) if len(m.group()) <= room else m.group(), text
    )
    lines = textwrap.wrap(
        glued,
        width,
        initial_indent=initial_indent,
        subsequent_indent=subsequent_indent,
        break_long_words=False,
        break_on_hyphens=False,
    )
    return [line.replace(_GLUE, " ") for line in lines]
