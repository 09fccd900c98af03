"""``./dev precision`` (bench/precision.py): the scoring of a lint run against hand-judged
verdicts, on a small corpus of our own; and, when the real-world corpus is present beside the
checkout, the real thing: every warning and error on it is judged true and none is missing."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "precision.py"


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("precision", SCRIPT)
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["precision"] = module
    spec.loader.exec_module(module)
    return module


precision = _module()


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    (root / "a+web").mkdir(parents=True)
    # a non-root server that binds :80 only through Docker's sysctl: UR106, judged true
    (root / "a+web" / "Dockerfile").write_text(
        textwrap.dedent("""\
            FROM debian:12
            RUN useradd -u 1000 web
            USER web
            CMD ["python3", "-m", "http.server", "80"]
            """)
    )
    (root / "b+unit").mkdir()
    # root without need: UR109 info, judged nothing
    (root / "b+unit" / "web.service").write_text(
        "[Service]\nExecStart=/usr/bin/python3 -m http.server 8080\n"
    )
    return root


def verdicts(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "verdicts.toml"
    path.write_text(textwrap.dedent(body))
    return path


def test_a_judged_true_alarm_scores_full_precision_and_recall(corpus: Path, tmp_path: Path) -> None:
    table = verdicts(
        tmp_path,
        """\
        [[true]]
        file = "a+web/Dockerfile"
        rule = "UR106"
        severity = "warning"
        why = "python3 as uid 1000 on :80"
        """,
    )
    done = run("--corpus", str(corpus), "--verdicts", str(table), "--check", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    scores = json.loads(done.stdout)
    assert (scores["alarms"], scores["true"], scores["false"], scores["unjudged"]) == (1, 1, 0, 0)
    assert scores["precision"] == 1.0
    assert scores["recall"] == 1.0
    assert scores["files"] == 2
    assert scores["infos"] >= 1


def test_an_unjudged_alarm_and_a_missing_problem_fail_the_check(
    corpus: Path, tmp_path: Path
) -> None:
    table = verdicts(
        tmp_path,
        """\
        [[true]]
        file = "b+unit/web.service"
        rule = "UR111"
        severity = "error"
        why = "a problem the linter does not find"
        """,
    )
    done = run("--corpus", str(corpus), "--verdicts", str(table), "--check")
    assert done.returncode == 1
    assert "UNJUDGED  a+web/Dockerfile:" in done.stdout
    assert "MISSING   b+unit/web.service UR111" in done.stdout
    assert "precision 0.00 (0/1)   recall 0.00 (0/1" in done.stdout


def test_a_false_verdict_is_named(corpus: Path, tmp_path: Path) -> None:
    table = verdicts(
        tmp_path,
        """\
        [[false]]
        file = "a+web/Dockerfile"
        rule = "UR106"
        why = "judged wrong for the test"
        """,
    )
    done = run("--corpus", str(corpus), "--verdicts", str(table))
    assert done.returncode == 0  # without --check it only reports
    assert "FALSE     a+web/Dockerfile:" in done.stdout
    assert "judged: judged wrong for the test" in done.stdout


@pytest.mark.parametrize(
    "body",
    [
        "[[true]]\nrule = 'UR106'\n",
        "[[true]]\nfile = 'x'\n",
        "[[true]]\nfile = 'x'\nrule = 'UR1'\nline = 'ten'\n",
        "[[true]]\nfile = 'x'\nrule = 'UR1'\nseverity = 'fatal'\n",
        "[[maybe]]\nfile = 'x'\nrule = 'UR1'\n",
        "[[true]]\nfile = 'x'\nrule = 'UR1'\nrequired = 'no'\n",
        "true = 3\n",
        "[[true]\n",
        "\xff",
    ],
)
def test_a_bad_verdicts_file_is_one_line_and_exit_2(
    corpus: Path, tmp_path: Path, body: str
) -> None:
    table = tmp_path / "verdicts.toml"
    table.write_bytes(body.encode("latin-1"))
    done = run("--corpus", str(corpus), "--verdicts", str(table))
    assert done.returncode == 2
    assert done.stderr.startswith("precision: ")
    assert done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr


def test_no_corpus_is_said_not_failed(tmp_path: Path) -> None:
    env_absent = run("--corpus", str(tmp_path / "absent"))
    assert env_absent.returncode == 2
    assert "not a directory" in env_absent.stderr
    default = subprocess.run(
        [sys.executable, str(SCRIPT)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={"UNROOT_REALWORLD": str(tmp_path / "absent"), "PATH": "/usr/bin:/bin"},
    )
    assert default.returncode == 0
    assert "no real-world corpus" in default.stdout


@pytest.mark.skipif(
    not precision.default_corpus().is_dir(),
    reason="the real-world corpus is not beside the checkout",
)
def test_the_real_world_corpus_has_no_false_alarm() -> None:
    done = run("--check")
    assert done.returncode == 0, done.stdout + done.stderr


def test_an_optional_true_finding_is_not_missed(corpus: Path, tmp_path: Path) -> None:
    table = verdicts(
        tmp_path,
        """\
        [[true]]
        file = "a+web/Dockerfile"
        rule = "UR106"
        severity = "warning"
        why = "python3 as uid 1000 on :80"

        [[true]]
        file = "b+unit/web.service"
        rule = "UR111"
        severity = "error"
        required = false
        why = "true when reported, not expected from this run"
        """,
    )
    done = run("--corpus", str(corpus), "--verdicts", str(table), "--check")
    assert done.returncode == 0, done.stdout
    assert "recall 1.00 (1/1" in done.stdout
