"""Wrapping prose for a terminal: to its width, never inside a word, a path or a ``code span``.

The width is ``$COLUMNS`` when set, on a terminal or not (as :func:`shutil.get_terminal_size`,
argparse and rich read it: ``COLUMNS=80 unroot lint … | less``), else the
terminal's when the stream is one, else :data:`DEFAULT_WIDTH` (a pipe, a file, CI logs: the same
bytes whatever launched the command), kept between :data:`MIN_WIDTH` and :data:`MAX_WIDTH`
(longer lines are hard to read; shorter leave no room for a message beside its indent).

Widths are display widths: a Wide or Fullwidth character (East Asian Width ``W``/``F``: CJK)
counts two columns.  Words break only at spaces: a path, an option or a capability name
(``cap_net_bind_service``) stays whole, and a backquoted span (```cap_add:
[NET_BIND_SERVICE]```) counts as one word even with spaces inside — unless it is longer than a
line, then it breaks at its spaces.  A word longer than the line gets a line of its own rather
than being cut.
"""

from __future__ import annotations

import functools
import os
import re
import textwrap
import unicodedata
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
    if not text.isascii():  # a wide character (CJK) takes two columns: a marker makes it two long
        text = _wide_characters().sub(lambda m: m.group() + _WIDE, text)
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
    return [line.replace(_GLUE, " ").replace(_WIDE, "") for line in lines]


@functools.cache
def _wide_characters() -> re.Pattern[str]:
    """The code points East Asian Width calls Wide or Fullwidth (built once, when needed)."""
    ranges: list[str] = []
    start = None
    for code in range(0x1100, 0x40000):
        wide = unicodedata.east_asian_width(chr(code)) in "WF"
        if wide and start is None:
            start = code
        elif not wide and start is not None:
            ranges.append(f"{re.escape(chr(start))}-{re.escape(chr(code - 1))}")
            start = None
    return re.compile("[" + "".join(ranges) + "]")


_WIDE = "\ue001"  # after each wide character while wrapping: counts its second column
