"""The ways to adopt unroot: the GitHub Action (``action.yml``) and the CI examples under
``examples/ci/``, checked structurally (there is no GitHub runner here) and by running the
action's lint script with bash as the runner would; the container image's Dockerfile linted.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from unroot.commands.lint import run_lint
from unroot.lint.config import RUNTIMES, THRESHOLDS

ROOT = Path(__file__).resolve().parents[2]
EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
INPUT_REF = re.compile(r"\binputs\.([A-Za-z0-9_-]+)")
STEP_REF = re.compile(r"\bsteps\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_-]+)")


def _yaml(path: Path) -> Any:
    return YAML(typ="safe", pure=True).load(path.read_text())


@pytest.fixture(scope="module")
def action() -> dict[str, Any]:
    data: dict[str, Any] = _yaml(ROOT / "action.yml")
    return data


def _strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for value in node.values() for s in _strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in _strings(value)]
    return []


def _step(action: dict[str, Any], step_id: str) -> dict[str, Any]:
    step: dict[str, Any] = next(s for s in action["runs"]["steps"] if s.get("id") == step_id)
    return step


def test_action_is_a_composite_with_the_required_keys(action: dict[str, Any]) -> None:
    assert {"name", "description", "inputs", "outputs", "runs"} <= action.keys()
    assert action["runs"]["using"] == "composite"
    for name, spec in action["inputs"].items():
        assert {"description", "required", "default"} <= spec.keys(), name
        assert isinstance(spec["default"], str), name  # inputs are strings on GitHub
    for step in action["runs"]["steps"]:
        assert "name" in step
        assert ("uses" in step) != ("run" in step), step["name"]
        if "run" in step:
            assert step.get("shell") == "bash", step["name"]  # a composite's run needs a shell
    uses = [step["uses"] for step in action["runs"]["steps"] if "uses" in step]
    assert any(u.startswith("actions/setup-python@v") for u in uses)
    assert any(u.startswith("github/codeql-action/upload-sarif@v") for u in uses)


def test_every_input_is_used_and_every_reference_exists(action: dict[str, Any]) -> None:
    steps = action["runs"]["steps"]
    expressions = [e for s in _strings(steps) for e in EXPR.findall(s)]
    used = {name for e in expressions for name in INPUT_REF.findall(e)}
    assert used == set(action["inputs"])
    ids = {step.get("id") for step in steps}
    outputs = [e for s in _strings(action["outputs"]) for e in EXPR.findall(s)]
    for step_id, _ in (ref for e in expressions + outputs for ref in STEP_REF.findall(e)):
        assert step_id in ids
    # No expression inside a script: inputs reach `run:` through env (no script injection).
    for step in steps:
        assert not EXPR.search(step.get("run", "")), step["name"]


def test_the_inputs_offer_what_lint_accepts(action: dict[str, Any]) -> None:
    description = action["inputs"]["failure-threshold"]["description"]
    assert all(t in description for t in (*THRESHOLDS, "none"))
    assert all(r in action["inputs"]["runtime"]["description"] for r in RUNTIMES)
    assert action["inputs"]["format"]["default"] == "sarif"


def test_the_sarif_path_agrees(action: dict[str, Any]) -> None:
    lint = _step(action, "lint")
    upload = next(s for s in action["runs"]["steps"] if "upload-sarif" in s.get("uses", ""))
    assert lint["env"]["ACTION_SARIF_FILE"] == "${{ inputs.sarif-file }}"
    # unroot reads UNROOT_* settings itself: the action's own variables must not look like them
    assert not [name for name in lint["env"] if name.startswith("UNROOT_")]
    assert upload["with"]["sarif_file"] == "${{ inputs.sarif-file }}"
    # success() implied: a lint step that failed (exit 2, no report) skips the upload, while
    # exit 1 (findings) is the lint step's output, not its failure, so the upload runs.
    assert not re.search(r"always\(\)|cancelled\(\)|failure\(\)", upload["if"])
    assert "inputs.format == 'sarif'" in upload["if"]
    assert '--output "$ACTION_SARIF_FILE"' in lint["run"]
    assert "${{ steps.lint.outputs.sarif-file }}" in action["outputs"]["sarif-file"]["value"]


def _run_lint_step(
    action: dict[str, Any], tmp_path: Path, **inputs: str
) -> tuple[int, dict[str, str], str]:
    """The lint step's script under bash as the runner runs it: env from the inputs (defaults
    filled in), GITHUB_OUTPUT a file, unroot on PATH."""
    lint = _step(action, "lint")
    values = {name: spec["default"] for name, spec in action["inputs"].items()} | inputs
    env = {
        key: EXPR.sub(lambda m: values[INPUT_REF.findall(m.group(1))[0]], value)
        for key, value in lint["env"].items()
    }
    output = tmp_path / "github-output"
    output.write_text("")
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", lint["run"]],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
        env={**env, "GITHUB_OUTPUT": str(output), "NO_COLOR": "1",
             "PATH": f"{Path(sys.executable).parent}{os.pathsep}/usr/bin:/bin"},
    )  # fmt: skip
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines())
    return done.returncode, outputs, done.stdout


def test_the_lint_step_runs(action: dict[str, Any], tmp_path: Path) -> None:
    examples = ROOT / "examples" / "lint" / "seed-002"
    code, outputs, log = _run_lint_step(action, tmp_path, paths=f"{examples}\n")
    assert code == 0  # the step itself passes; the last step fails the job on exit-code 1
    assert outputs == {"sarif-file": "unroot.sarif", "exit-code": "1"}
    assert '"version": "2.1.0"' in (tmp_path / "unroot.sarif").read_text()
    assert "error" in log  # the text report in the log too

    code, outputs, _ = _run_lint_step(action, tmp_path, paths=str(examples), **{
        "failure-threshold": "none", "format": "json"})  # fmt: skip
    assert (code, outputs) == (0, {"exit-code": "0"})

    code, outputs, _ = _run_lint_step(action, tmp_path, runtime="no-such-runtime")
    assert (code, outputs["exit-code"]) == (2, "2")


def test_the_workflow_example_uses_the_action(action: dict[str, Any]) -> None:
    workflow = _yaml(ROOT / "examples" / "ci" / "github-workflow.yml")
    assert {"name", "on", "jobs"} <= workflow.keys()
    assert workflow["permissions"]["security-events"] == "write"
    steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
    ours = [step for step in steps if step.get("uses", "").startswith("unroot-dev/unroot@")]
    assert len(ours) == 1
    assert set(ours[0].get("with", {})) <= set(action["inputs"])
    assert steps.index(ours[0]) > 0
    assert steps[0]["uses"].startswith("actions/checkout@")


def test_the_plain_upload_sarif_workflow() -> None:
    """Without the action: the SARIF goes where upload-sarif reads it, --no-fail so the upload
    runs, and a later step fails the job; every unroot command in it parses."""
    workflow = _yaml(ROOT / "examples" / "ci" / "github-upload-sarif.yml")
    assert workflow["permissions"]["security-events"] == "write"
    (steps,) = [job["steps"] for job in workflow["jobs"].values()]
    runs = [step["run"] for step in steps if "run" in step]
    upload = next(s for s in steps if s.get("uses", "").startswith("github/codeql-action/upload"))
    lint = next(r for r in runs if "--format sarif" in r)
    assert f"--output {upload['with']['sarif_file']} --no-fail" in lint
    assert steps.index(upload) < [s.get("run") for s in steps].index(runs[-1])
    from unroot.commands.edge import argument_parser_class
    from unroot.commands.lint import register

    parser = argument_parser_class()(prog="unroot")
    register(parser.add_subparsers())
    for command in (r for r in runs if r.startswith("unroot ")):
        parser.parse_args(command.split()[1:])  # a usage error raises


def test_the_gitlab_and_pre_commit_examples() -> None:
    gitlab = _yaml(ROOT / "examples" / "ci" / "gitlab-ci.yml")
    job = gitlab["unroot-lint"]
    report = job["artifacts"]["reports"]["junit"]
    assert any(
        f"unroot lint --format junit --output {report} --no-fail" in line for line in job["script"]
    )
    assert job["artifacts"]["when"] == "always"  # the report of a failed job too
    config = _yaml(ROOT / "examples" / "ci" / "pre-commit-config.yaml")
    hook_ids = {hook["id"] for hook in _yaml(ROOT / ".pre-commit-hooks.yaml")}
    (repo,) = config["repos"]
    assert re.fullmatch(r"v\d+\.\d+\.\d+", repo["rev"])
    assert {hook["id"] for hook in repo["hooks"]} <= hook_ids


def test_the_examples_pin_the_current_release() -> None:
    from unroot import __version__

    for name in (
        "github-workflow.yml",
        "github-upload-sarif.yml",
        "gitlab-ci.yml",
        "pre-commit-config.yaml",
    ):
        text = (ROOT / "examples" / "ci" / name).read_text()
        assert __version__ in text, name


def test_the_dockerfile_lints_clean(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_lint([str(ROOT / "Dockerfile")]) == 0
    assert capsys.readouterr().out.lower().startswith("no findings in 1 file")
