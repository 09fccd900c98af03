"""What the XML formats (JUnit, Checkstyle) share: text XML 1.0 can carry, and serialising."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

# XML 1.0 § 2.2 Char: tab, newline, carriage return, and U+0020 up, without the surrogates
# (undecodable bytes the parsers kept) and U+FFFE/U+FFFF.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: str) -> str:
    """``text`` with every character XML 1.0 cannot carry shown as ``\\xNN``/``\\uNNNN``;
    a lone surrogate (an undecodable byte) as U+FFFD."""
    return _NOT_XML.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    ch = match.group()
    if "\ud800" <= ch <= "\udfff":
        return "\ufffd"
    return ch.encode("unicode_escape").decode("ascii")


def serialise(root: ET.Element) -> str:
    """The document with a UTF-8 declaration, two-space indented, ending in a newline."""
    ET.indent(root, space="  ")
    body = ET.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"
