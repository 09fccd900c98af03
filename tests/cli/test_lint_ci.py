"""``unroot lint`` in CI and editors: short flags, ``--output``, ``--no-fail``, severity
overrides, ``UNROOT_*`` variables, ``--color``, the gnu/junit/checkstyle formats, wrapping to
the terminal, ``--compact``, and the warnings for rule ids no rule has.

Each test lints a copy of ``examples/lint/seed-002`` (two errors: UR103 exec-eperm at
compose.yaml:6:5, UR104 caps-ignored at compose.yaml:10:20) in a scratch git checkout, so no
config of this repository applies.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import stat
import unicodedata
import xml.etree.ElementTree as ET
from pathlib import Path

import junitparser
import pytest

from unroot.commands.lint import run_lint
from unroot.lint.findings import Finding
from unroot.lint.formatters import checkstyle, gnu, junit
from unroot.lint.registry import load_rules
from unroot.wrapping import MAX_WIDTH, MIN_WIDTH, output_width, wrap

SEED = Path(__file__).parents[2] / "examples" / "lint" / "seed-002"
ENV = [
    "UNROOT_FORMAT",
    "UNROOT_CONFIG",
    "UNROOT_FAILURE_THRESHOLD",
    "UNROOT_RUNTIME",
    "UNROOT_SELECT",
    "UNROOT_IGNORE",
    "UNROOT_SEVERITY",
    "UNROOT_COLOR",
    "UNROOT_SARIF_CATEGORY",
    "NO_COLOR",
    "FORCE_COLOR",
    "COLUMNS",
]


@pytest.fixture(autouse=True)
def checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TERM", "xterm")
    (tmp_path / ".git").mkdir()
    shutil.copytree(SEED, tmp_path / "seed")
    monkeypatch.chdir(tmp_path)
    return tmp_path


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def lint(
    capsys: pytest.CaptureFixture[str], *argv: str, stdout: io.StringIO | None = None
) -> tuple[int, str, str]:
    out = stdout if stdout is not None else io.StringIO()
    code = run_lint(list(argv), stdout=out)
    return code, out.getvalue(), capsys.readouterr().err


def findings(text: str) -> list[tuple[str, str]]:
    return [(f["rule"], f["severity"]) for f in json.loads(text)["findings"]]


def one_error_line(err: str, *needles: str) -> None:
    assert err.count("\n") == 1, err
    assert err.startswith("unroot: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err


# -- short flags ------------------------------------------------------------------------------
def test_short_flags_are_the_long_ones(capsys: pytest.CaptureFixture[str], checkout: Path) -> None:
    (checkout / "alt.toml").write_text('failure-threshold = "error"\n')
    long = lint(capsys, "seed", "--format", "json", "--config", "alt.toml")
    short = lint(capsys, "seed", "-f", "json", "-c", "alt.toml")
    assert long == short
    assert long[0] == 1
    assert lint(capsys, "seed", "-t", "error", "-f", "gnu")[0] == 1
    assert lint(capsys, "seed", "-t", "none", "-f", "gnu")[0] == 0


# -- --output ---------------------------------------------------------------------------------
def test_output_writes_the_report_and_nothing_on_stdout(
    capsys: pytest.CaptureFixture[str], checkout: Path
) -> None:
    code, out, _ = lint(capsys, "seed", "-f", "sarif")
    code_file, out_file, err = lint(capsys, "seed", "-f", "sarif", "-o", "report.sarif")
    assert (code_file, out_file, err) == (code, "", "")
    assert (checkout / "report.sarif").read_text(encoding="utf-8") == out
    assert [p.name for p in checkout.iterdir() if p.name.startswith(".report")] == []


def test_output_replaces_a_file_keeping_its_mode(
    capsys: pytest.CaptureFixture[str], checkout: Path
) -> None:
    target = checkout / "report.txt"
    target.write_text("old\n")
    target.chmod(0o640)
    assert lint(capsys, "seed", "-o", str(target), "--color", "always")[0] == 1
    text = target.read_text()
    assert text.startswith("seed/compose.yaml") or "\x1b[" in text  # --color always is obeyed
    assert "\x1b[" in text
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


def test_new_output_file_follows_the_umask(
    capsys: pytest.CaptureFixture[str], checkout: Path
) -> None:
    old = os.umask(0o027)
    try:
        lint(capsys, "seed", "-o", "new.txt")
    finally:
        os.umask(old)
    assert stat.S_IMODE((checkout / "new.txt").stat().st_mode) == 0o640
    assert "\x1b[" not in (checkout / "new.txt").read_text()  # auto: a file is no terminal


def test_force_color_does_not_reach_a_report_file(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, checkout: Path
) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert "\x1b[" in lint(capsys, "seed")[1]  # the log (standard output) is coloured
    lint(capsys, "seed", "-o", "report.txt")
    assert "\x1b[" not in (checkout / "report.txt").read_text()
    lint(capsys, "seed", "-o", "report.txt", "--color", "always")
    assert "\x1b[" in (checkout / "report.txt").read_text()


def test_output_dash_is_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert lint(capsys, "seed", "-f", "gnu", "-o", "-")[1] == lint(capsys, "seed", "-f", "gnu")[1]


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (["-o", "missing/dir/report.sarif"], ["--output missing/dir/report.sarif: no such"]),
        (["-o", "seed"], ["--output seed: is a directory"]),
        (["-o", "report.sarif", "-c", "nothere.toml"], ["nothere.toml"]),
        (["-o", "report.sarif", "--severity", "UR999=error"], ["--severity", "UR999"]),
        (["-o", "report.sarif", "-f", "xml"], ["--format"]),
    ],
)
def test_output_is_untouched_on_exit_2(
    capsys: pytest.CaptureFixture[str], checkout: Path, argv: list[str], needles: list[str]
) -> None:
    (checkout / "report.sarif").write_text("previous run\n")
    before = sorted(p.name for p in checkout.iterdir())
    code, out, err = lint(capsys, "seed", *argv)
    assert (code, out) == (2, "")
    one_error_line(err, *needles)
    assert (checkout / "report.sarif").read_text() == "previous run\n"
    assert sorted(p.name for p in checkout.iterdir()) == before  # no temporary file left


@pytest.mark.parametrize(
    ("target", "needle"),
    [
        ("seed/compose.yaml/report.txt", "not a directory: 'seed/compose.yaml'"),
        ("/proc/unroot-report.txt", "--output /proc/unroot-report.txt: cannot write: "),
    ],
)
def test_output_that_cannot_be_written_is_one_line(
    capsys: pytest.CaptureFixture[str], target: str, needle: str
) -> None:
    """/proc is a directory nobody, not even root, can create a file in: the write fails
    after the run (exit 2, no report anywhere)."""
    if target.startswith("/proc") and not os.path.isdir("/proc"):
        pytest.skip("no /proc")
    code, out, err = lint(capsys, "seed", "-o", target)
    assert (code, out) == (2, "")
    one_error_line(err, needle)


# -- failure threshold ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "argv",
    [["--no-fail"], ["-t", "none"], ["--failure-threshold", "none"], ["--no-fail", "-t", "info"]],
)
def test_never_fail(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, out, _ = lint(capsys, "seed", "-f", "json", *argv)
    assert code == 0
    assert findings(out) == [("UR103", "error"), ("UR104", "error")]  # still reported


def test_config_threshold_none(capsys: pytest.CaptureFixture[str], checkout: Path) -> None:
    (checkout / ".unroot.toml").write_text('failure-threshold = "none"\n')
    assert lint(capsys, "seed")[0] == 0
    assert lint(capsys, "seed", "-t", "error")[0] == 1  # the flag wins


def test_no_fail_still_exits_2_on_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = lint(capsys, "seed", "--no-fail", "--kind", "nope")
    assert code == 2
    one_error_line(err, "--kind")


# -- severity overrides -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--severity", "UR104=warning"], [("UR103", "error"), ("UR104", "warning")]),
        (["--severity", "ur104=Warning,UR103=info"], [("UR103", "info"), ("UR104", "warning")]),
        (["--severity", "UR104=info", "--severity", "UR104=warning"],
         [("UR103", "error"), ("UR104", "warning")]),
        (["--severity", "UR103=none"], [("UR104", "error")]),
        (["--severity", "exec-eperm=off"], [("UR104", "error")]),
        (["--severity", "UR1=info"], [("UR103", "info"), ("UR104", "info")]),
    ],
)  # fmt: skip
def test_severity_flag(
    capsys: pytest.CaptureFixture[str], argv: list[str], expected: list[tuple[str, str]]
) -> None:
    code, out, err = lint(capsys, "seed", "-f", "json", *argv)
    assert findings(out) == expected, err
    assert code == (1 if any(s in ("error", "warning") for _, s in expected) else 0)


def test_severity_decides_the_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["seed", "--severity", "UR103=warning,UR104=warning"]
    assert lint(capsys, *argv, "-t", "error")[0] == 0
    assert lint(capsys, *argv)[0] == 1  # default threshold: warning


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("UR104", "is not RULE=SEVERITY"),
        ("UR104=fatal", "is not RULE=SEVERITY"),
        ("UR104=", "is not RULE=SEVERITY"),
        ("=error", "is not RULE=SEVERITY"),
        ("UR999=error", "'UR999' names no rule"),
        ("bind-fail=error", "'bind-fail' names no rule"),
    ],
)
def test_bad_severity_flag(capsys: pytest.CaptureFixture[str], value: str, needle: str) -> None:
    code, out, err = lint(capsys, "seed", "--severity", value)
    assert (code, out) == (2, "")
    one_error_line(err, "--severity", needle)


def test_severity_in_the_config(capsys: pytest.CaptureFixture[str], checkout: Path) -> None:
    (checkout / ".unroot.toml").write_text('[severity]\nUR103 = "none"\ncaps-ignored = "warning"\n')
    assert findings(lint(capsys, "seed", "-f", "json")[1]) == [("UR104", "warning")]
    # a flag entry wins for its rule; the config's others still apply
    code, out, _ = lint(capsys, "seed", "-f", "json", "--severity", "UR104=info")
    assert (code, findings(out)) == (0, [("UR104", "info")])


def test_unknown_rule_in_config_severity_warns(
    capsys: pytest.CaptureFixture[str], checkout: Path
) -> None:
    (checkout / ".unroot.toml").write_text('[severity]\nUR999 = "error"\nUR104 = "info"\n')
    code, out, err = lint(capsys, "seed", "-f", "json")
    assert findings(out) == [("UR103", "error"), ("UR104", "info")]
    assert code == 1
    config = checkout / ".unroot.toml"
    assert err == f"unroot: warning: {config}: severity: 'UR999' names no rule (ignored)\n"


@pytest.mark.parametrize(
    ("table", "needle"),
    [
        ('[severity]\nUR104 = "fatal"\n', "severity.UR104: 'fatal'"),
        ("[severity]\nUR104 = 3\n", "severity.UR104: 3"),
        ('severity = "UR104=error"\n', "severity: expected a table"),
        ('[severity]\n"UR 104" = "error"\n', "severity.UR 104"),
    ],
)
def test_bad_config_severity_is_exit_2(
    capsys: pytest.CaptureFixture[str], checkout: Path, table: str, needle: str
) -> None:
    (checkout / ".unroot.toml").write_text(table)
    code, _, err = lint(capsys, "seed")
    assert code == 2
    one_error_line(err, ".unroot.toml", needle)


# -- unknown rule ids in ignore/select: warnings ----------------------------------------------
def test_unknown_ignore_flag_warns(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = lint(capsys, "seed", "-f", "gnu", "--ignore", "UR999,UR104")
    assert code == 1
    assert "[UR104]" not in out
    assert "[UR103]" in out
    assert err == "unroot: warning: --ignore: 'UR999' names no rule (ignored)\n"
    _, _, err = lint(capsys, "seed", "--select", "UR103,bind-fail")
    assert err == "unroot: warning: --select: 'bind-fail' names no rule (ignored)\n"


def test_unknown_ignore_in_config_warns(capsys: pytest.CaptureFixture[str], checkout: Path) -> None:
    (checkout / ".unroot.toml").write_text(
        'ignore = ["UR999", "UR104"]\nselect = ["UR1", "nope"]\n'
    )
    _, out, err = lint(capsys, "seed", "-f", "gnu")
    assert "[UR104]" not in out
    config = checkout / ".unroot.toml"
    assert err.splitlines() == [
        f"unroot: warning: {config}: select: 'nope' names no rule (ignored)",
        f"unroot: warning: {config}: ignore: 'UR999' names no rule (ignored)",
    ]


def test_unknown_rule_in_a_pragma_warns(capsys: pytest.CaptureFixture[str], checkout: Path) -> None:
    compose = checkout / "seed" / "compose.yaml"
    text = compose.read_text().replace(
        "    cap_drop: [ALL]\n", "    cap_drop: [ALL]  # unroot: ignore=UR999,UR103\n", 1
    )
    compose.write_text(text + "# unroot: ignore-file=no-such-topic\n")
    code, out, err = lint(capsys, "seed", "-f", "gnu")
    assert "[UR103]" not in out
    assert "[UR104]" in out
    assert code == 1
    assert sorted(err.splitlines()) == [
        "unroot: warning: seed/compose.yaml: # unroot: ignore names no rule: 'UR999'",
        "unroot: warning: seed/compose.yaml: # unroot: ignore names no rule: 'no-such-topic'",
    ]


# -- environment variables --------------------------------------------------------------------
def test_environment_sets_what_flags_do(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, checkout: Path
) -> None:
    monkeypatch.setenv("UNROOT_FORMAT", "json")
    monkeypatch.setenv("UNROOT_SEVERITY", "UR104=warning")
    monkeypatch.setenv("UNROOT_IGNORE", "UR103")
    monkeypatch.setenv("UNROOT_FAILURE_THRESHOLD", "error")
    code, out, _ = lint(capsys, "seed")
    assert (code, findings(out)) == (0, [("UR104", "warning")])
    # flags win over the variables
    code, out, _ = lint(capsys, "seed", "-f", "gnu", "-t", "warning", "--severity", "UR104=error")
    assert code == 1
    assert out.startswith("seed/compose.yaml:10:20: error: ")
    monkeypatch.setenv("UNROOT_SELECT", "UR104")
    monkeypatch.setenv("UNROOT_IGNORE", "")
    monkeypatch.setenv("UNROOT_RUNTIME", "podman-rootless")
    monkeypatch.setenv("UNROOT_SARIF_CATEGORY", "compose")
    _, out, _ = lint(capsys, "seed", "-f", "sarif")
    run = json.loads(out)["runs"][0]
    assert run["automationDetails"] == {"id": "unroot/lint/compose/"}
    assert {r["ruleId"] for r in run["results"]} <= {"UR104"}


def test_environment_beats_the_config(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, checkout: Path
) -> None:
    (checkout / ".unroot.toml").write_text('failure-threshold = "none"\n')
    assert lint(capsys, "seed")[0] == 0
    monkeypatch.setenv("UNROOT_FAILURE_THRESHOLD", "error")
    assert lint(capsys, "seed")[0] == 1
    (checkout / "other.toml").write_text('[severity]\nUR1 = "info"\n')
    monkeypatch.delenv("UNROOT_FAILURE_THRESHOLD")
    monkeypatch.setenv("UNROOT_CONFIG", "other.toml")
    assert findings(lint(capsys, "seed", "-f", "json")[1]) == [("UR103", "info"), ("UR104", "info")]


def test_empty_variables_count_as_unset(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ENV[:9]:
        monkeypatch.setenv(name, "")
    code, out, err = lint(capsys, "seed", "-f", "json")
    assert (code, findings(out), err) == (1, [("UR103", "error"), ("UR104", "error")], "")


@pytest.mark.parametrize(
    ("name", "value", "needle"),
    [
        ("UNROOT_FORMAT", "xml", "UNROOT_FORMAT: 'xml' is not one of text, json, sarif"),
        ("UNROOT_FAILURE_THRESHOLD", "fatal", "UNROOT_FAILURE_THRESHOLD: 'fatal'"),
        ("UNROOT_RUNTIME", "lxc", "UNROOT_RUNTIME: 'lxc'"),
        ("UNROOT_COLOR", "yes", "UNROOT_COLOR: 'yes'"),
        ("UNROOT_SEVERITY", "UR104", "UNROOT_SEVERITY: 'UR104' is not RULE=SEVERITY"),
        ("UNROOT_SEVERITY", "UR999=info", "UNROOT_SEVERITY: 'UR999' names no rule"),
        ("UNROOT_SELECT", "UR1;", "UNROOT_SELECT: 'UR1;'"),
        ("UNROOT_IGNORE", "%", "UNROOT_IGNORE: '%'"),
        ("UNROOT_CONFIG", "nothere.toml", "nothere.toml: no such config file"),
        ("UNROOT_SARIF_CATEGORY", "a b", "UNROOT_SARIF_CATEGORY: 'a b'"),
    ],
)
def test_bad_variable_is_exit_2_naming_it(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    value: str,
    needle: str,
) -> None:
    monkeypatch.setenv(name, value)
    code, out, err = lint(capsys, "seed")
    assert (code, out) == (2, "")
    one_error_line(err, needle)


# -- --color ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "env", "tty", "colored"),
    [
        ([], {}, True, True),
        ([], {}, False, False),
        ([], {"NO_COLOR": "1"}, True, False),
        ([], {"NO_COLOR": ""}, True, True),  # no-color.org: set *and not empty*
        ([], {"TERM": "dumb"}, True, False),
        ([], {"FORCE_COLOR": "1"}, False, True),
        ([], {"FORCE_COLOR": "0"}, False, False),
        (["--color", "always"], {"NO_COLOR": "1"}, False, True),  # the flag overrides NO_COLOR
        (["--color", "never"], {"FORCE_COLOR": "1"}, True, False),
        (["--color", "auto"], {"NO_COLOR": "1", "FORCE_COLOR": "1"}, True, False),
        ([], {"UNROOT_COLOR": "always"}, False, True),
        (["--color", "never"], {"UNROOT_COLOR": "always"}, True, False),
    ],
)
def test_color(  # noqa: PLR0917 - pytest passes the parameters by name
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    env: dict[str, str],
    tty: bool,
    colored: bool,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    _, out, _ = lint(capsys, "seed", *argv, stdout=Tty() if tty else io.StringIO())
    assert ("\x1b[" in out) == colored


def test_color_only_in_the_text_format(capsys: pytest.CaptureFixture[str]) -> None:
    for fmt in ("json", "gnu", "junit", "checkstyle", "sarif"):
        assert "\x1b[" not in lint(capsys, "seed", "-f", fmt, "--color", "always")[1]


# -- wrapping and --compact -------------------------------------------------------------------
def _words(text: str) -> list[str]:
    return text.split()


@pytest.mark.parametrize("columns", ["60", "72", "80", "100", "120"])
def test_text_wraps_at_columns_without_breaking_words(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, columns: str
) -> None:
    monkeypatch.setenv("COLUMNS", columns)
    _, out, _ = lint(capsys, "seed", "-f", "text")
    _, data, _ = lint(capsys, "seed", "-f", "json")
    lines = out.splitlines()
    for line in lines:
        assert len(line) <= int(columns) or " " not in line.strip(), line
    body = " ".join(lines)
    for finding in json.loads(data)["findings"]:
        for word in _words(finding["message"]) + _words(finding["fix"]):
            assert word in body.split(), (columns, word)  # every word whole
        for span in re.findall(r"`[^`]+`", finding["fix"]):
            if len(span) <= int(columns) - len(" " * 11 + "fix: "):  # fits: on one line
                assert span in out, (columns, span)


def test_width_on_a_terminal_and_off_it(monkeypatch: pytest.MonkeyPatch) -> None:
    assert output_width(io.StringIO()) == 100  # a pipe, a file: stable
    monkeypatch.setenv("COLUMNS", "20")
    assert output_width(io.StringIO()) == MIN_WIDTH
    monkeypatch.setenv("COLUMNS", "400")
    assert output_width(None) == MAX_WIDTH
    monkeypatch.setenv("COLUMNS", "wide")
    assert output_width(io.StringIO()) == 100


def test_wrap_keeps_words_paths_and_spans_whole() -> None:
    text = "set `cap_add: [NET_BIND_SERVICE]` on /usr/local/bin/a-very-long-gateway-name now"
    lines = wrap(text, 32, "", "  ")
    assert "`cap_add: [NET_BIND_SERVICE]`" in "\n".join(lines)
    assert "  /usr/local/bin/a-very-long-gateway-name" in lines  # longer than 32: its own line
    assert wrap("cap_net_bind_service " * 3, 10) == ["cap_net_bind_service"] * 3
    long_span = "`" + " ".join(["word"] * 20) + "`"
    assert max(len(line) for line in wrap(long_span, 40)) <= 40  # longer than a line: breaks


def test_compact_drops_the_assumptions(capsys: pytest.CaptureFixture[str]) -> None:
    _, full, _ = lint(capsys, "seed")
    _, compact, _ = lint(capsys, "seed", "--compact")
    assert "assumes:" in full
    assert "assumes:" not in compact
    kept = [line for line in full.splitlines() if line in compact.splitlines()]
    assert len(kept) == len(compact.splitlines())  # only lines were dropped


# -- gnu ----------------------------------------------------------------------------------------
GNU = re.compile(
    r"(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<sev>error|warning|info): "
    r"(?P<msg>.+) \[(?P<rule>UR\d{3})\]"
)


def test_gnu_one_line_per_finding(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = lint(capsys, "seed", "-f", "gnu")
    _, data, _ = lint(capsys, "seed", "-f", "json")
    expected = json.loads(data)["findings"]
    lines = out.splitlines()
    assert code == 1
    assert len(lines) == len(expected)
    for line, finding in zip(lines, expected, strict=True):
        match = GNU.fullmatch(line)
        assert match, line
        assert match["file"] == finding["file"]
        assert int(match["line"]) == finding["line"]
        assert int(match["col"]) == finding["column"]
        assert match["rule"] == finding["rule"]
        assert match["msg"] == finding["message"]
    assert lint(capsys, "seed", "-f", "gnu", "--ignore", "UR1")[1] == ""  # clean: no output


ODD = Finding(
    file="we\u0301ird <&>\x1b[31m.yaml",
    line=0,
    column=0,
    rule="UR105",
    topic="bind-fails",
    severity="warning",
    message='bind "80" <fails>\n & \x00 \udcff\tagain',
    fix="use `a && b` <here>",
    assumptions=("x < y",),
)


def test_gnu_escapes_what_would_break_a_line() -> None:
    (line,) = gnu.render([ODD], [ODD.file], {}).splitlines()
    assert GNU.fullmatch(line), line
    assert "\x1b" not in line
    assert "\x00" not in line
    assert line.startswith("we\u0301ird <&>\\x1b[31m.yaml:1:1: warning: bind")


# -- junit --------------------------------------------------------------------------------------
def test_junit_is_read_by_a_junit_reader(
    capsys: pytest.CaptureFixture[str], checkout: Path
) -> None:
    code, _, _ = lint(capsys, "seed", "-f", "junit", "-o", "report.xml")
    assert code == 1
    xml = junitparser.JUnitXml.fromfile(str(checkout / "report.xml"))
    suites = {suite.name: suite for suite in xml}
    assert set(suites) == {"seed/compose.yaml", "seed/Dockerfile"}
    assert (xml.tests, xml.failures, xml.errors) == (3, 2, 0)
    compose = suites["seed/compose.yaml"]
    cases = list(compose)
    assert [c.name for c in cases] == ["UR103 exec-eperm at 6:5", "UR104 caps-ignored at 10:20"]
    assert all(c.classname == "seed/compose.yaml" and not c.is_passed for c in cases)
    (failure,) = cases[0].result
    assert failure.type == "error"
    assert failure.message.startswith("exec fails with EPERM")
    assert failure.text.startswith("seed/compose.yaml:6:5: error: exec fails")
    assert "\nfix: add `cap_add: [NET_BIND_SERVICE]`" in failure.text
    assert "\nassumes: runtime: Docker (rootful)" in failure.text
    (clean,) = list(suites["seed/Dockerfile"])
    assert clean.is_passed
    assert clean.name == "unroot lint"


def test_junit_escapes_and_names_cases_uniquely() -> None:
    twice = [ODD, ODD.__class__(**{**_fields(ODD), "message": "other"})]
    text = junit.render(twice, ["clean.yaml"], load_rules())
    root = ET.fromstring(text.encode("utf-8"))  # parses: valid XML 1.0
    assert root.tag == "testsuites"
    assert root.get("tests") == "3"
    assert root.get("failures") == "2"
    cases = root.findall("./testsuite/testcase")
    names = [(c.get("classname"), c.get("name")) for c in cases]
    assert len(set(names)) == len(names) == 3
    failure = cases[1].find("failure")
    assert failure is not None
    assert failure.get("message") == 'bind "80" <fails> & \\x00 \ufffd again'
    assert "\\x1b[31m" in (cases[1].get("classname") or "")
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n')


def _fields(finding: Finding) -> dict[str, object]:
    return {name: getattr(finding, name) for name in Finding.__slots__}


# -- checkstyle -------------------------------------------------------------------------------
def test_checkstyle(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = lint(capsys, "seed", "-f", "checkstyle")
    assert code == 1
    root = ET.fromstring(out.encode("utf-8"))
    assert root.tag == "checkstyle"
    assert root.get("version") == "4.3"
    files = {f.get("name"): f.findall("error") for f in root.findall("file")}
    assert set(files) == {"seed/compose.yaml", "seed/Dockerfile"}
    assert files["seed/Dockerfile"] == []
    first, second = files["seed/compose.yaml"]
    assert first.attrib["line"] == "6"
    assert first.attrib["column"] == "5"
    assert first.attrib["severity"] == "error"
    assert first.attrib["source"] == "UR103"
    assert first.attrib["message"].startswith("exec fails with EPERM")
    assert "\nFix: add `cap_add: [NET_BIND_SERVICE]`" in first.attrib["message"]
    assert second.attrib["source"] == "UR104"


def test_checkstyle_escapes() -> None:
    root = ET.fromstring(checkstyle.render([ODD], [], {}).encode("utf-8"))
    (element,) = root.findall("file/error")
    assert element.attrib["line"] == "1"
    assert element.attrib["severity"] == "warning"
    assert element.attrib["message"].startswith('bind "80" <fails>\n & \\x00 \ufffd\tagain')
    assert "Fix: use `a && b` <here>" in element.attrib["message"]


def test_every_format_has_a_formatter() -> None:
    from unroot.lint.config import FORMATS
    from unroot.lint.formatters import FORMATTERS

    assert set(FORMATTERS) == set(FORMATS)


def test_unknown_rule_in_an_ignore_annotation_warns(
    capsys: pytest.CaptureFixture[str], checkout: Path
) -> None:
    compose = checkout / "seed" / "compose.yaml"
    text = compose.read_text().replace(
        "  drop-all:            #", "  drop-all:\n    x-unroot-ignore: [UR999, UR103]  #", 1
    )
    compose.write_text(text)
    code, out, err = lint(capsys, "seed", "-f", "gnu")
    assert "[UR103]" not in out
    assert "[UR104]" in out
    assert code == 1
    assert err == (
        "unroot: warning: seed/compose.yaml:3: ignore annotation names no rule: 'UR999'\n"
    )
    pod = checkout / "pod.yaml"
    pod.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n"
        "  annotations: {unroot.dev/ignore: 'runs-as-rot, UR109'}\n"
        "spec:\n  containers:\n  - name: c\n    image: nginx:1.27\n"
    )
    _, _, err = lint(capsys, "pod.yaml", "-f", "gnu")
    assert err.startswith("unroot: warning: pod.yaml:")
    assert err.lower().endswith(": ignore annotation names no rule: 'runs-as-rot'\n")


# -- messages and settings given and ignored ----------------------------------------------------
def test_severity_accepts_spaces_around_equals_and_commas(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = lint(capsys, "-f", "json", "--severity", "UR103 = info, UR104=info", "seed")
    assert (code, err) == (0, "")
    assert {s for r, s in findings(out) if r in ("UR103", "UR104")} <= {"info"}
    code, _, err = lint(capsys, "--severity", "UR103 = inf, UR104=info", "seed")
    assert code == 2
    one_error_line(err, "'UR103=inf' is not RULE=SEVERITY")


def test_a_bad_sarif_category_message_says_what_is_allowed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = lint(capsys, "-f", "sarif", "--sarif-category", "../..", "seed")
    assert code == 2
    one_error_line(err, "'../..' is not a category", "each starting with a letter or digit")


def test_a_too_deep_yaml_names_the_limit_not_ruamels_api(
    capsys: pytest.CaptureFixture[str], checkout: Path
) -> None:
    deep = "a:\n" + "".join("  " * i + "k:\n" for i in range(1, 150)) + "  " * 150 + "v: 1\n"
    (checkout / "compose.yaml").write_text(deep)
    _, out, _ = lint(capsys, "-f", "json", "compose.yaml")
    (message,) = [f["message"] for f in json.loads(out)["findings"]]
    assert message == "YAML syntax error: nesting deeper than 100 levels"


def test_sarif_category_with_another_format_is_a_warning(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, err = lint(capsys, "--sarif-category", "web", "seed")
    assert "unroot: warning: --sarif-category applies only to --format sarif" in err
    monkeypatch.setenv("UNROOT_SARIF_CATEGORY", "web")
    _, _, err = lint(capsys, "-f", "sarif", "seed")
    assert "warning" not in err


def test_selecting_only_rules_turned_off_is_a_warning(capsys: pytest.CaptureFixture[str]) -> None:
    _, _, err = lint(capsys, "--select", "UR103", "--severity", "UR103=none", "seed")
    assert "every selected rule (UR103) has severity none: no rule runs" in err
    _, _, err = lint(capsys, "--select", "UR103,UR104", "--severity", "UR103=none", "seed")
    assert "severity none" not in err


def test_a_misspelt_setting_variable_is_a_warning(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UNROOT_FAILURE_TRESHOLD", "none")
    monkeypatch.setenv("UNROOT_SOMETHING_ELSE", "1")
    _, _, err = lint(capsys, "seed")
    assert (
        "unroot: warning: UNROOT_FAILURE_TRESHOLD is not a setting (ignored): did you mean "
        "UNROOT_FAILURE_THRESHOLD?\n"
    ) in err
    assert "UNROOT_SOMETHING_ELSE" not in err


def test_columns_sets_the_width_of_piped_output_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """As argparse and rich do: COLUMNS wins, on a terminal or not (docs/lint.md says so)."""
    monkeypatch.setenv("COLUMNS", "80")
    assert output_width(io.StringIO()) == output_width(None) == 80
    monkeypatch.delenv("COLUMNS")
    assert output_width(io.StringIO()) == 100


def test_wrap_counts_wide_characters_as_two_columns() -> None:
    text = "所有者 " * 30 + "`cap_net_bind_service` ok"
    for line in wrap(text, 61, "  ", "  "):
        width = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in line)
        assert width <= 61, line
    assert [*wrap("abc def", 60)] == ["abc def"]
