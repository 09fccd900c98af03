"""The command line's one edge: one-line errors and exit codes, shared by every command."""

from __future__ import annotations

import pytest

from unroot.commands.edge import guarded, run_command
from unroot.commands.rules import register
from unroot.errors import EnvironmentProblem, UsageError
from unroot.printable import one_line


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain text", "plain text"),
        ("two\nlines", "two\\nlines"),
        ("tab\there", "tab\\there"),
        ("bad-\udcff-byte", "bad-\\xff-byte"),  # a file name that is not UTF-8
        ("\x1b[2Jrepaint", "\\x1b[2Jrepaint"),
        ("sep\u2028line", "sep\\u2028line"),
        ("ünïcode", "ünïcode"),
    ],
)
def test_one_line(text: str, shown: str) -> None:
    assert one_line(text) == shown
    assert "\n" not in one_line(text)


def test_guarded_turns_errors_into_one_line_and_exit_codes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def bad_input() -> int:
        raise UsageError("first\nsecond")

    def no_engine() -> int:
        raise EnvironmentProblem("docker is not reachable")

    assert guarded(bad_input) == 2
    assert capsys.readouterr().err == "unroot: first\\nsecond\n"
    assert guarded(no_engine) == 3
    assert capsys.readouterr().err == "unroot: docker is not reachable\n"


def test_run_command_parses_with_the_shared_parser(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_command(register, ["rules", "UR999"]) == 2
    assert capsys.readouterr().err.startswith("unroot: rules: unknown rule 'UR999'")
    assert run_command(register, ["rules", "--bogus"]) == 2
    assert capsys.readouterr().err.startswith("unroot: unrecognized arguments: --bogus")
