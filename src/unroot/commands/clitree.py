"""The command line as data: every command, subcommand, option and positional of ``unroot``'s
argparse parser, read from the parser itself (:func:`command_tree`).

The shell completions (``unroot completion``) and the man pages (``unroot man``) are generated
from this tree, so they cannot drift from the parser: one source of truth, the ``register``
functions of the command modules.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass

#: The width usage lines are wrapped at in generated files (not the terminal's: reproducible).
WIDTH = 78


@dataclass(frozen=True)
class Option:
    flags: tuple[str, ...]
    #: None: a switch; else what the value is called (its metavar, or its choices).
    value: str | None
    choices: tuple[str, ...]
    help: str
    repeatable: bool


@dataclass(frozen=True)
class Positional:
    name: str
    nargs: str | int | None
    help: str
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Command:
    path: tuple[str, ...]  # ("unroot", "explain", "exec")
    summary: str  # the one-line help the parent lists
    description: str
    usage: str
    options: tuple[Option, ...]
    positionals: tuple[Positional, ...]
    subcommands: tuple[Command, ...]

    @property
    def name(self) -> str:
        return " ".join(self.path)

    def walk(self) -> Iterator[Command]:
        """This command and every command below it, depth first, in the parser's order."""
        yield self
        for sub in self.subcommands:
            yield from sub.walk()

    def find(self, path: tuple[str, ...]) -> Command | None:
        return next((c for c in self.walk() if c.path == path), None)


def command_tree(parser: argparse.ArgumentParser) -> Command:
    """The tree of ``parser``: ``unroot``'s whole parser, which ``cli.build_parser`` hands to
    the commands that need it (nothing below the CLI imports ``unroot.cli``)."""
    return _command(parser, ("unroot",), "")


def _command(parser: argparse.ArgumentParser, path: tuple[str, ...], summary: str) -> Command:
    formatter = argparse.HelpFormatter(" ".join(path), width=WIDTH)
    options: list[Option] = []
    positionals: list[Positional] = []
    subcommands: list[Command] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, child in action.choices.items():
                subcommands.append(_command(child, (*path, name), helps.get(name, "")))
            continue
        if action.help == argparse.SUPPRESS and not action.option_strings:
            continue
        text = _help(formatter, action)
        if action.option_strings:
            options.append(
                Option(
                    flags=tuple(action.option_strings),
                    value=_value(action),
                    choices=tuple(str(c) for c in action.choices or ()),
                    help=text,
                    repeatable=isinstance(action, argparse._AppendAction),
                )
            )
        else:
            name = action.metavar if isinstance(action.metavar, str) else action.dest
            choices = tuple(str(c) for c in action.choices or ())
            positionals.append(Positional(name, action.nargs, text, choices))
    usage_formatter = argparse.HelpFormatter(" ".join(path), width=WIDTH)
    usage_formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups, "")
    return Command(
        path=path,
        summary=summary,
        description=parser.description or "",
        usage=usage_formatter.format_help().strip(),
        options=tuple(options),
        positionals=tuple(positionals),
        subcommands=tuple(subcommands),
    )


def _value(action: argparse.Action) -> str | None:
    if action.nargs == 0:
        return None
    if action.choices:
        return "{" + ",".join(str(c) for c in action.choices) + "}"
    if isinstance(action.metavar, str):
        return action.metavar
    return action.dest.upper()


def _help(formatter: argparse.HelpFormatter, action: argparse.Action) -> str:
    if not action.help or action.help == argparse.SUPPRESS:
        return ""
    return " ".join(formatter._expand_help(action).split())
