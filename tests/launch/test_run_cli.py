"""``unroot run``'s fast command-line path against argparse (differential), in-process.

cli.main parses ``unroot run ...`` with commands.run.parse_fast, which never imports argparse;
anything it is unsure of goes to argparse. Whatever it accepts must be exactly what argparse
makes of the same words.
"""

from __future__ import annotations

import argparse
import contextlib
import io
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unroot.cli import build_parser, main
from unroot.commands.run import parse_fast
from unroot.errors import UsageError

KEYS = (
    "listen",
    "user",
    "group",
    "groups",
    "no_groups",
    "keep_cap",
    "nofile",
    "allow_new_privs",
    "allow_root",
    "supervise",
    "restart",
    "ready",
    "ready_timeout",
    "reload_signal",
    "stop_signal",
    "stop_timeout",
    "env_clear",
    "env",
    "command",
)


def by_argparse(argv: list[str]) -> dict[str, Any] | None:
    parser = build_parser(only="run")
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            args = parser.parse_args(["run", *argv])
    except (UsageError, SystemExit):
        return None
    return {key: getattr(args, key) for key in KEYS}


def by_fast_path(argv: list[str]) -> dict[str, Any] | None:
    args = parse_fast(argv)
    return None if args is None else {key: getattr(args, key) for key in KEYS}


VALUE_OPTIONS = ["-l", "--listen", "--user", "--group", "--groups", "--keep-cap", "--nofile"]
VALUE_OPTIONS += ["--restart", "--ready", "--ready-timeout", "-E"]
VALUE_OPTIONS += ["--reload-signal", "--stop-signal", "--stop-timeout"]
FLAGS = ["--no-groups", "--allow-new-privs", "--allow-root", "--supervise", "--env-clear"]
VALUES = [":80", "127.0.0.1:80", "web=[::1]:8443", "nobody", "0", "always", "on-failure", "tcp"]
VALUES += ["notify", "none", "A=1", "x y", "", "1.5", "net_bind_service", "USR1", "SIGQUIT"]
ODD = ["-h", "--help", "-", "--", "--us", "--user=", "-l=:80", "-l:80", "-EA=1", "-x", "-5"]
ODD += ["--no-groups=1", "--listen=:81", "--bogus", "-lE", "--ready=notify", "--restart=never"]
ODD += ["srv", "--fd", "{fd}", "-c", "run"]

any_word = st.sampled_from(VALUE_OPTIONS + FLAGS + VALUES + ODD)


@settings(max_examples=600)
@given(st.lists(any_word, max_size=9))
def test_fast_path_agrees_with_argparse(argv: list[str]) -> None:
    fast = by_fast_path(argv)
    if fast is not None:
        assert fast == by_argparse(argv)


@st.composite
def plain_command_lines(draw: st.DrawFn) -> list[str]:
    words: list[str] = []
    for option in draw(st.lists(st.sampled_from(VALUE_OPTIONS + FLAGS), max_size=6)):
        if option in FLAGS:
            words.append(option)
            continue
        choices = {"--restart": ["always", "never"], "--ready": ["tcp", "notify", "none"]}
        value = draw(st.sampled_from(choices.get(option, [":80", "nobody", "A=1", "1.5", ""])))
        if draw(st.booleans()) and option.startswith("--"):
            words.append(f"{option}={value}")
        elif value and draw(st.booleans()) and not option.startswith("--"):
            words.append(option + value)
        else:
            words += [option, value]
    if any(word.startswith("--groups") for word in words):  # they exclude each other
        words = [word for word in words if word != "--no-groups"]
    command = draw(st.lists(st.sampled_from(["srv", "-c", "--fd", "{fd}", "--", "x"]), max_size=4))
    if draw(st.booleans()) or (command and command[0].startswith("-")):
        words.append("--")
    return words + command


@settings(max_examples=300)
@given(plain_command_lines())
def test_plain_command_lines_take_the_fast_path(argv: list[str]) -> None:
    fast = by_fast_path(argv)
    assert fast is not None, argv
    assert fast == by_argparse(argv)


def test_fast_path_does_not_import_argparse() -> None:
    """In a fresh interpreter: `unroot run` with a plain command line imports no argparse,
    dataclasses, typing, json, YAML, rich, model or linter module (each costs milliseconds of
    every launch) — of the model only its error classes (``model/errors.py``, which
    ``unroot.errors`` re-exports), and the empty package around them. Every module of the exec
    path is imported by then (handle imports them before it decides anything)."""
    import subprocess
    import sys

    code = (
        "import sys; from unroot.cli import main\n"
        "rc = main(['run', '--user', 'nosuch-user-xyz', '--', 'true'])\n"
        "heavy = [m for m in ('argparse', 'dataclasses', 'typing', 'shutil', 'inspect', "
        "'json', 'yaml', 'rich', 'unroot.facts', 'unroot.lint') "
        "if m in sys.modules]\n"
        "heavy += sorted(m for m in sys.modules if m.startswith('unroot.model.') "
        "and m != 'unroot.model.errors')\n"
        "print(rc, heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "2 []"


def test_help_goes_to_argparse(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "usage: unroot run [OPTIONS] [-l SPEC]... -- COMMAND [ARG...]" in out
    for flag in VALUE_OPTIONS + FLAGS:
        assert flag in out


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["run", "--bogus", "--", "true"], "unrecognized arguments: --bogus"),
        (["run", "--ready", "http", "--", "true"], "invalid choice: 'http'"),
        (["run", "--groups", "a", "--no-groups", "--", "true"], "not allowed with argument"),
        (["run", "--user"], "expected one argument"),
        (["run", "--user", "nosuch-user-xyz", "--", "true"], "unknown user 'nosuch-user-xyz'"),
        (["run", "--user", "nobody", "-l", "web=localhost:80", "--", "true"], "not an IP"),
        (
            ["run", "-l", "a=:80", "-l", "b=:81", "--user", "nobody", "-E", "NGINX={fd};", "true"],
            "-E NGINX uses {fd}, but there are 2 sockets",
        ),
        (
            ["run", "-l", "http=:80", "--user", "nobody", "-E", "NGINX={fd:https};", "true"],
            "{fd:https}: no --listen is named 'https' (names: http)",
        ),
    ],
)
def test_errors_are_one_line_exit_2(
    argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("unroot: ")
    assert fragment in err


def test_namespace_shapes_match() -> None:
    """Both paths hand the same attributes to commands.run.handle."""
    argv = ["-l", ":80", "--user", "nobody", "--", "srv", "--fd", "{fd}"]
    fast = parse_fast(argv)
    assert fast is not None
    slow = build_parser(only="run").parse_args(["run", *argv])
    assert isinstance(slow, argparse.Namespace)
    assert fast.handler is slow.handler
    assert {key: getattr(fast, key) for key in KEYS} == {key: getattr(slow, key) for key in KEYS}
