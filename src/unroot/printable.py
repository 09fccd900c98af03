"""Text made safe to print as one line: a file name, a path in an error, a message.

A leaf with no imports: the launcher's fast path (``unroot run``) reaches it through the command
line's edge, and lint's text report, the ``caps`` command and every error line use it.
"""

from __future__ import annotations


def one_line(text: str) -> str:
    """Text safe for a terminal and for line-based readers: exactly one line.

    Bytes that are not UTF-8 (surrogate-escaped file names) are shown as ``\\xNN``; control
    characters, line breaks and other unprintable characters (which a file name may contain: a
    newline, or an escape sequence that would repaint the screen) as ``\\n``, ``\\xNN`` or
    ``\\uNNNN``.
    """
    text = valid_utf8(text)
    if text.isprintable():
        return text
    return "".join(
        ch if ch.isprintable() or ch == " " else ch.encode("unicode_escape").decode("ascii")
        for ch in text
    )


def valid_utf8(text: str) -> str:
    """``text`` with each byte that is not UTF-8 (a file name's, kept by ``surrogateescape``)
    written ``\\xNN``: a string any UTF-8 encoder accepts."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
