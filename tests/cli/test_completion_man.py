"""``unroot completion bash|zsh`` and ``unroot man``: generated from the parser, so every
command and every flag of the parser must appear in both — checked here against argparse
directly, not through the generator's own tree — and the scripts must complete in a real bash
and zsh (zsh's completion builtins stubbed: they print what they would offer).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from unroot.cli import build_parser, main


def _parser_commands() -> Iterator[tuple[tuple[str, ...], list[str], argparse.ArgumentParser]]:
    """(path, its option flags, its parser) for unroot and every command below it."""
    todo: list[tuple[tuple[str, ...], argparse.ArgumentParser]] = [(("unroot",), build_parser())]
    while todo:
        path, parser = todo.pop(0)
        flags = [f for a in parser._actions for f in a.option_strings]
        yield path, flags, parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                todo += [((*path, name), child) for name, child in action.choices.items()]


COMMANDS = list(_parser_commands())


def _out(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def test_every_command_is_covered() -> None:
    names = {" ".join(path) for path, _, _ in COMMANDS}
    assert {"unroot lint", "unroot explain exec", "unroot caps scan", "unroot man"} <= names
    assert len(names) >= 19


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_every_command_and_flag_is_in_the_completion(
    capsys: pytest.CaptureFixture[str], shell: str
) -> None:
    script = _out(capsys, "completion", shell)
    lines = script.splitlines()
    for path, flags, _ in COMMANDS:
        key = " ".join(path)
        if len(path) > 1:  # listed among its parent's subcommands
            parent = " ".join(path[:-1])
            assert any(
                line.lstrip().startswith(f"'{parent}'") and f" {path[-1]}" in line.replace("'", " ")
                for line in lines
            ), key
        option_lines = [line for line in lines if line.lstrip().startswith(f"'{key}'")]
        for flag in flags:
            assert any(f" {flag} " in line.replace("'", " ") for line in option_lines), (key, flag)


def test_every_command_and_flag_is_in_its_man_page(capsys: pytest.CaptureFixture[str]) -> None:
    for path, flags, parser in COMMANDS:
        page = _out(capsys, "man", *path[1:2])
        roff = lambda text: text.replace("-", "\\-")  # noqa: E731
        assert f'.TH "{"-".join(path[:2]).upper()}" "1"' in page
        if len(path) > 2:
            assert f'.SS "{roff(" ".join(path))}"' in page
        for flag in flags:
            assert f"\\fB{roff(flag)}\\fR" in page, (path, flag)
        if parser.description:
            assert roff(parser.description.split(".")[0][:40]) in page.replace("\n", " ")


def test_man_pages_render_without_warnings(capsys: pytest.CaptureFixture[str]) -> None:
    if shutil.which("man") is None:
        pytest.skip("no man (man-db) here")
    for path, _, _ in COMMANDS:
        if len(path) > 2:
            continue
        page = _out(capsys, "man", *path[1:])
        done = subprocess.run(
            ["man", "--warnings", "-l", "-"], input=page, capture_output=True, text=True,
            env={"MANWIDTH": "80", "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stderr == "", (path, done.stderr)
        assert " ".join(path).upper().replace(" ", "-") in done.stdout


def test_man_output_dir(tmp_path: Path) -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["man", "--output-dir", str(tmp_path)]) == 0
    top = [" ".join(p) for p, _, _ in COMMANDS if len(p) <= 2]
    expected = {f"{name.replace(' ', '-')}.1" for name in top}
    assert {p.name for p in tmp_path.iterdir()} == expected
    assert set(out.getvalue().splitlines()) == {str(tmp_path / name) for name in expected}


def test_man_and_completion_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["man", "nosuch"]) == 2
    assert "unknown command 'nosuch'" in capsys.readouterr().err
    assert main(["man", "lint", "--output-dir", "/"]) == 2
    assert main(["completion", "fish"]) == 2
    assert "invalid choice" in capsys.readouterr().err


# Bash: COMP_WORDS/COMP_CWORD as readline sets them, then _unroot, then COMPREPLY.
BASH_CASES = [
    ("unroot ", {"lint", "explain", "caps", "run", "completion", "man"}),
    ("unroot li", {"lint"}),
    ("unroot lint --fo", {"--format"}),
    ("unroot lint --format s", {"sarif"}),
    ("unroot lint --runtime docker-r", {"docker-rootless"}),
    ("unroot explain e", {"exec"}),
    ("unroot explain exec --u", {"--uid", "--userns-root-uid"}),
    ("unroot explain exec --uid 1 --ne", set()),
    ("unroot explain exec --uid 1 --nn", {"--nnp"}),
    ("unroot caps scan -", {"-h", "--help", "--format", "--json", "-x", "--one-file-system"}),
    ("unroot lint --config comp", {"compose.yaml"}),
    ("unroot lint comp", {"compose.yaml"}),
    ("unroot completion ", {"bash", "zsh"}),  # a positional's choices
]


def _bash_complete(script: str, line: str, cwd: Path) -> set[str]:
    words = line.split(" ")
    program = (
        f"{script}\n"
        f"COMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}\n"
        '_unroot; printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", program],
        cwd=cwd, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return {w for w in done.stdout.splitlines() if w}


@pytest.mark.parametrize(("line", "expected"), BASH_CASES)
def test_bash_completes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, line: str, expected: set[str]
) -> None:
    script = _out(capsys, "completion", "bash")
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    got = _bash_complete(script, line, tmp_path)
    if line == "unroot completion ":
        assert got == expected  # not the files
    else:
        assert (
            got == expected
            if line.endswith(("--fo", "--format s", "-", "--ne"))
            else got >= expected
        )


def test_bash_completes_a_command_after_double_dash(capsys: pytest.CaptureFixture[str]) -> None:
    script = _out(capsys, "completion", "bash")
    got = _bash_complete(script, "unroot run -l :80 --user www -- bas", Path.cwd())
    assert "bash" in got


ZSH_STUBS = """
compadd() { [[ $1 == -- ]] && shift; print -rl -- "$@"; }
_describe() { print -rl -- "${(@P)4}"; }
_files() { print -r -- '<files>'; }
_command_names() { print -r -- '<commands>'; }
compdef() { :; }
"""


@pytest.mark.skipif(shutil.which("zsh") is None, reason="no zsh here (./dev test installs it)")
@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("unroot li", {"lint:lint Dockerfiles, compose files, Kubernetes manifests and "
                       "systemd units"}),
        ("unroot lint --fo", None),
        ("unroot lint --format s", {"text", "json", "sarif", "gnu", "junit", "checkstyle"}),
        ("unroot explain exec --uid 1 --nn", None),
        ("unroot lint --config x", {"<files>"}),
        ("unroot run -- x", {"<commands>"}),
        ("unroot completion ", {"bash:", "zsh:"}),
    ],
)  # fmt: skip
def test_zsh_completes(
    capsys: pytest.CaptureFixture[str], line: str, expected: set[str] | None
) -> None:
    script = _out(capsys, "completion", "zsh")
    words = line.split(" ")
    program = (
        f"{ZSH_STUBS}\n{script}\n"
        f"words=({' '.join(repr(w) for w in words)}); CURRENT={len(words)}\n_unroot\n"
    )
    done = subprocess.run(["zsh", "-f", "-c", program], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    got = set(done.stdout.splitlines())
    if expected is None:  # the options of the command: the flags of the parser
        path = tuple(w for w in words[:-1] if not w.startswith("-") and not w.isdigit())
        (flags,) = [f for p, f, _ in COMMANDS if p == path]
        assert got == set(flags)
    elif line == "unroot li":
        assert expected <= got
        assert "explain:ask the kernel model\\: may this exec, bind, open?" in got
    else:
        assert got == expected
