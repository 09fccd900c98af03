"""``unroot lint`` finds the same things whichever way a directory is named: ``.``, ``./``, a
relative subdirectory or an absolute path, and prints paths the way they were given.

A Dockerfile joined through ``[images]`` (whose paths the config resolves to absolute ones), a
compose ``build:`` context, a ``.socket`` paired with its service and a drop-in read with its
unit are each one file, linted once: with ``unroot lint .`` a joined Dockerfile used to be
linted a second time on its own, as ``docker run IMAGE``.
"""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path

import pytest

from unroot.commands.lint import run_lint

FIXTURES = Path(__file__).parents[1] / "lint" / "fixtures"
#: joined through [images], compose build: contexts, sockets, drop-ins (in a tree too)
DIRECTORIES = [
    "k8s-coredns",
    "k8s-traefik",
    "k8s-ingress-nginx",
    "rules/positive/go-classic",
    "rules/positive/k8s-wrapper",
    "rules/positive/k8s-useless-add",
    "rules/negative/restricted-pss",
    "compose/blog",
    "compose/stack",
    "compose-extends",
    "compose-include",
    "compose-env-host-port",
    "systemd",
    "systemd-dropins",
    "systemd-tree",
]


def _lint(cwd: Path, *args: str) -> tuple[int, str]:
    out = io.StringIO()
    previous = os.getcwd()
    os.chdir(cwd)
    try:
        code = run_lint([*args, "--format", "json"], stdout=out)
    finally:
        os.chdir(previous)
    return code, out.getvalue()


def _without(prefix: str, output: str) -> dict[str, object]:
    """The JSON with ``prefix`` (a directory and its ``/``) taken off every path it starts."""
    if prefix:
        output = re.sub(r"(?<![\w./-])" + re.escape(prefix), "", output)
    result: dict[str, object] = json.loads(output)
    return result


@pytest.mark.parametrize("name", DIRECTORIES)
def test_same_findings_whichever_way_the_directory_is_named(name: str) -> None:
    directory = FIXTURES / name
    parent = directory.parent
    base = directory.name
    code, dot = _lint(directory, ".")
    expected = _without("", dot)
    assert all(not os.path.isabs(str(f)) for f in expected["files"])  # type: ignore[attr-defined]
    runs = {
        "./": _lint(directory, "./"),
        "no argument": _lint(directory),
        f"{base}": _lint(parent, base),
        f"./{base}/": _lint(parent, f"./{base}/"),
        "absolute": _lint(Path("/"), str(directory)),
        ". and absolute": _lint(directory, ".", str(directory)),
    }
    prefixes = {f"{base}": f"{base}/", f"./{base}/": f"{base}/", "absolute": f"{directory}/"}
    for how, (other_code, output) in runs.items():
        assert other_code == code, how
        assert _without(prefixes.get(how, ""), output) == expected, how


def test_relative_in_relative_out() -> None:
    """The [images] join's Dockerfile is named relative to the working directory, like the
    manifest that uses it, in the fix, the related locations and the assumptions."""
    _, output = _lint(FIXTURES, "k8s-coredns")
    assert str(FIXTURES) not in output
    (finding,) = json.loads(output)["findings"]
    assert finding["file"] == "k8s-coredns/coredns-1.12.yaml"
    assert finding["related"][0]["file"] == "k8s-coredns/1.12/Dockerfile"
    assert "k8s-coredns/1.12/Dockerfile:14" in finding["fix"]
    assert (
        "the image is built from k8s-coredns/1.12/Dockerfile (the final stage)"
        in (finding["assumptions"])
    )
    _, output = _lint(FIXTURES, str(FIXTURES / "k8s-coredns"))
    (finding,) = json.loads(output)["findings"]
    assert finding["related"][0]["file"] == str(FIXTURES / "k8s-coredns/1.12/Dockerfile")


def test_a_joined_dockerfile_is_not_linted_on_its_own(tmp_path: Path) -> None:
    """Named relatively, the joined Dockerfile (root: USER-less) used to get a `docker run`
    situation of its own, and UR109 besides the pod's."""
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "Dockerfile").write_text('FROM debian:12\nCMD ["sleep", "inf"]\n')
    (tmp_path / ".unroot.toml").write_text('[images]\n"example.org/app:1" = "img/Dockerfile"\n')
    (tmp_path / "pod.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: app}\n"
        "spec:\n  containers:\n    - {name: app, image: example.org/app:1}\n"
    )
    for args in ([], ["."], ["./"], ["pod.yaml", "img/Dockerfile"], ["pod.yaml", "img/"]):
        _, output = _lint(tmp_path, *args)
        result = json.loads(output)
        assert [(f["rule"], f["file"]) for f in result["findings"]] == [
            ("UR109", "img/Dockerfile")  # the pod's: no USER in the image it runs
        ], args
        assert sorted(result["files"]) == ["img/Dockerfile", "pod.yaml"], args
    _, output = _lint(tmp_path, str(tmp_path), "pod.yaml")
    result = json.loads(output)
    assert [f["file"] for f in result["findings"]] == [str(tmp_path / "img/Dockerfile")]
    assert len(result["files"]) == 2


def test_exclude_means_the_same_for_every_form(tmp_path: Path) -> None:
    (tmp_path / "charts" / "x").mkdir(parents=True)
    (tmp_path / "charts" / "x" / "Dockerfile").write_text("FROM debian:12\n")
    (tmp_path / "Dockerfile").write_text("FROM debian:12\nUSER 10001\n")
    (tmp_path / ".unroot.toml").write_text('exclude = ["charts/"]\n')
    for cwd, args in ((tmp_path, ["."]), (tmp_path, []), (Path("/"), [str(tmp_path)])):
        _, output = _lint(cwd, *args)
        assert [os.path.basename(f) for f in json.loads(output)["files"]] == ["Dockerfile"], args


@pytest.mark.parametrize(
    "argv",
    [
        ["compose/blog", "--no-fail", "systemd"],
        ["compose/blog", "-f", "json", "systemd"],
        ["--no-fail", "compose/blog", "-t", "error", "systemd"],
    ],
)
def test_paths_before_and_after_flags(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """Paths may come before, between and after flags (as ruff, eslint and hadolint take them):
    ``unroot lint compose/ --no-fail systemd/`` lints both, not 'unrecognized arguments'."""
    code, out = _lint(FIXTURES, *argv)
    assert capsys.readouterr().err == ""
    assert code in (0, 1)
    files = json.loads(out)["files"]
    assert any(f.startswith("compose/blog/") for f in files)
    assert any(f.startswith("systemd/") for f in files)


def test_an_unknown_flag_among_paths_is_still_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _lint(FIXTURES, "compose/blog", "--bogus", "systemd")
    err = capsys.readouterr().err
    assert (code, out) == (2, "")
    assert err.startswith("unroot: ")
    assert err.count("\n") == 1
    assert "--bogus" in err


def test_after_a_double_dash_everything_is_a_path(capsys: pytest.CaptureFixture[str]) -> None:
    out = io.StringIO()
    previous = os.getcwd()
    os.chdir(FIXTURES)
    try:
        code = run_lint(["-f", "json", "compose/blog", "--no-fail", "--", "systemd"], stdout=out)
    finally:
        os.chdir(previous)
    assert (code, capsys.readouterr().err) == (0, "")
    assert any(f.startswith("systemd/") for f in json.loads(out.getvalue())["files"])
