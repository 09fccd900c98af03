"""The rule-doc format, parsed once: a rule module's docstring in ruff's shape — a summary line,
headed sections (an unindented heading, an indented body: What it does / Why is this bad? /
Example / Use instead / References) and ``Okay:`` / ``URxxx:`` examples whose indented block
holds the example's files.

An example's block is one or more files: ``--- NAME`` starts a file; a block without ``---``
lines is one file whose first line may say its kind (``# kind: compose``).
:func:`unroot.lint.registry.examples` turns examples into the test suite's cases,
:mod:`unroot.lint.formatters.sarif` renders the doc as text and Markdown.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass

EXAMPLE = re.compile(r"^(?P<tag>Okay|UR\d{3}):[ \t]*(?P<title>.*)$")
FILE_LINE = re.compile(r"^---[ \t]+(?P<name>\S+)[ \t]*$")
KIND_LINE = re.compile(r"^#\s*kind:\s*(?P<kind>\w+)\s*$")


@dataclass(frozen=True, slots=True)
class DocExample:
    """One ``Okay:`` or ``URxxx:`` example of a rule doc."""

    tag: str  # "Okay" or the rule id it must produce
    title: str
    block: str  # the indented block, dedented, without leading or trailing blank lines
    line: int  # the line of its header in the doc (1-based)

    def files(self) -> Iterator[tuple[str, str, str]]:
        """(name, kind, text) of each file of the block, text without a final newline.

        ``--- NAME`` files have no kind here (it comes from the name); the one file of a block
        without ``---`` lines has no name and the kind of its ``# kind:`` line (else ``""``).
        """
        lines = self.block.splitlines()
        if not lines or FILE_LINE.match(lines[0]) is None:
            kind_line = KIND_LINE.match(lines[0]) if lines else None
            kind = kind_line.group("kind") if kind_line else ""
            yield "", kind, "\n".join(lines[1:] if kind_line else lines)
            return
        files: list[tuple[str, list[str]]] = []
        for line in lines:
            found = FILE_LINE.match(line)
            if found is not None:
                files.append((found.group("name"), []))
            else:
                files[-1][1].append(line)
        for name, chunk in files:
            yield name, "", "\n".join(chunk).strip("\n")


@dataclass(frozen=True, slots=True)
class RuleDoc:
    """A rule docstring: its summary, its sections and its examples, in order."""

    summary: str
    sections: tuple[tuple[str, str], ...]  # (heading, dedented body)
    examples: tuple[DocExample, ...]

    @classmethod
    def parse(cls, doc: str) -> RuleDoc:
        dedented = textwrap.dedent(doc)
        first = len(dedented) - len(dedented.lstrip("\n"))  # blank lines before the summary
        lines = dedented.strip("\n").splitlines()
        summary = lines[0].strip() if lines else ""
        sections: list[tuple[str, str]] = []
        examples: list[DocExample] = []
        i = 1
        while i < len(lines):
            head = lines[i]
            if not head.strip() or head[:1].isspace():
                i += 1
                continue
            line = first + i + 1
            i += 1
            block: list[str] = []
            while i < len(lines) and (not lines[i].strip() or lines[i][:1].isspace()):
                block.append(lines[i])
                i += 1
            body = textwrap.dedent("\n".join(block)).strip("\n")
            example = EXAMPLE.match(head)
            if example is not None:
                examples.append(
                    DocExample(example.group("tag"), example.group("title").strip(), body, line)
                )
            else:
                sections.append((head.strip().rstrip(":"), body))
        return cls(summary, tuple(sections), tuple(examples))

    def section(self, heading: str) -> str:
        return next((body for name, body in self.sections if name == heading), "")
