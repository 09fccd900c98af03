"""Every rule's docstring is its documentation and its test (flake8's ``Okay:``/``E201:``).

A ``URxxx:`` example must produce at least one finding of that rule, an ``Okay:`` example none
of the rule whose doc holds it; no example may trip an internal error.  The format is defined
by :func:`unroot.lint.registry.examples`.
"""

from __future__ import annotations

import tomllib

import pytest

from unroot.lint.config import LintConfig, config_from_mapping
from unroot.lint.engine import LintOptions, lint_texts
from unroot.lint.findings import Finding
from unroot.lint.registry import Example, RuleInfo, examples, load_rules, rule
from unroot.sources.kinds import kind_by_content, kind_by_name

RULES = load_rules()
EXAMPLES = [example for info in RULES.values() for example in examples(info)]
HEADINGS = ("What it does", "Why is this bad?", "Example", "Use instead", "References")
TOPICS = {
    "parse-error",
    "caps-lost-in-build",
    "duplicate-layer",
    "exec-eperm",
    "caps-ignored",
    "bind-fails",
    "works-only-by-sysctl",
    "useless-cap-add",
    "root-only-mount",
    "runs-as-root",
    "low-nofile",
    "nonroot-check-fails",
    "sysctl-refused",
}


def run_example(example: Example) -> tuple[Finding, ...]:
    files = dict(example.files)
    config = LintConfig()
    if ".unroot.toml" in files:
        config = config_from_mapping(tomllib.loads(files.pop(".unroot.toml")), ".unroot.toml")
    inputs = []
    for path, text in files.items():
        kind = kind_by_name(path) or kind_by_content(text)
        assert kind is not None, f"{example.name}: cannot tell the kind of {path}"
        inputs.append((path, kind, text))
    return lint_texts(inputs, LintOptions(config=config), read=files.get).findings


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.name)
def test_docstring_example(example: Example) -> None:
    findings = run_example(example)
    internal = [f for f in findings if "internal error" in f.message]
    assert not internal, internal
    mine = [f for f in findings if f.rule == example.rule]
    if example.expect is None:
        assert not mine, f"Okay example '{example.title}' produced {[f.message for f in mine]}"
    else:
        assert example.expect == example.rule, "a URxxx example belongs in that rule's doc"
        assert mine, f"'{example.title}' produced no {example.expect}: {findings}"
        for finding in mine:
            assert finding.message
            assert finding.severity in ("error", "warning", "info")


@pytest.mark.parametrize("info", list(RULES.values()), ids=lambda i: i.id)
def test_rule_doc_has_headings_and_both_kinds_of_example(info: RuleInfo) -> None:
    for heading in HEADINGS:
        assert f"\n{heading}\n" in info.doc, f"{info.id}: missing heading {heading!r}"
    assert len(info.summary) <= 100
    assert info.summary.endswith(".")
    mine = list(examples(info))
    assert any(e.expect == info.id for e in mine), f"{info.id} has no {info.id}: example"
    assert any(e.expect is None for e in mine), f"{info.id} has no Okay: example"


def test_ids_and_topics() -> None:
    assert list(RULES) == sorted(RULES)
    assert {info.topic for info in RULES.values()} == TOPICS
    assert RULES["UR100"].scope == "file"
    # several ids may share a topic; the systemd rules do
    assert {i.id for i in RULES.values() if i.topic == "bind-fails"} == {"UR105", "UR111", "UR116"}


def test_an_id_cannot_be_taken_twice() -> None:
    with pytest.raises(ValueError, match="already taken"):
        rule("UR105", topic="something-else", severity="error")(lambda s: iter(()))
    with pytest.raises(ValueError, match="UR"):
        rule("X1", topic="a-b", severity="error")
    with pytest.raises(ValueError, match="severity"):
        rule("UR999", topic="a-b", severity="fatal")


def _doc_rule(doc: str) -> RuleInfo:
    return RuleInfo("UR998", "a-b", "error", ("compose",), "situation", lambda s: (), doc)


def test_example_format() -> None:
    doc = """Summary.

UR998: two files
    --- Dockerfile
    FROM scratch
    --- compose.yaml
    services:
      a: {build: .}

Okay: one file by kind
    # kind: systemd
    [Service]
    ExecStart=/bin/true
"""
    found = list(examples(_doc_rule(doc)))
    assert [(e.expect, e.title) for e in found] == [
        ("UR998", "two files"),
        (None, "one file by kind"),
    ]
    assert found[0].files == (
        ("Dockerfile", "FROM scratch\n"),
        ("compose.yaml", "services:\n  a: {build: .}\n"),
    )
    assert found[1].files == (("app.service", "[Service]\nExecStart=/bin/true\n"),)


@pytest.mark.parametrize(
    "body", ["Okay: nothing follows\n", "Okay: no kind\n    services: {}\n"], ids=["empty", "kind"]
)
def test_example_format_errors(body: str) -> None:
    with pytest.raises(ValueError, match="UR998"):
        list(examples(_doc_rule("Summary.\n\n" + body)))
