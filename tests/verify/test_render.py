"""The four formats of a verify report, from a report built by hand: JSON against the shipped
schema, JUnit parsed as XML, markdown as a table, text with predicted beside observed."""

from __future__ import annotations

import json
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from unroot.model.caps import CapSet
from unroot.situation.image import CellPrediction, RunCell
from unroot.verify.observe import Observation
from unroot.verify.render import render
from unroot.verify.run import CellReport, Report

sys.path.insert(0, str(Path(__file__).parents[1] / "cli"))
from _cliutil import validate_schema

DIGEST = "sha256:" + "ab" * 32


def _report(predict_only: bool = False) -> Report:
    serving = CellPrediction("serving", CapSet.of("net_bind_service"), 1024, ("why | ok",))
    eperm = CellPrediction("exec-eperm", None, 0, ("bounding lacks it",))
    cells = [
        CellReport("default", RunCell("host"), "10001", serving, requested=True),
        CellReport("drop ALL", RunCell("bridge", ("ALL",)), "10001", eperm),
    ]
    if not predict_only:
        cells[0].observed = Observation(
            "serving", "GET / → 200", ("log line",), "0x0000000000000400", 1024, seconds=1.5
        )
        cells[1].observed = Observation(
            "crashed", "exit status 1", ("exec /x: no such file",), None, 0, "kept-1", 0.4
        )
    return Report(
        "img:1",
        DIGEST,
        {"name": "docker", "version": "20.10.24", "rootless": True},
        80,
        "GET / on 127.0.0.1:80 → 200",
        cells,
        predict_only,
        True,
        ["engine: rootless Docker"],
    )


@pytest.mark.parametrize("predict_only", [False, True])
def test_json_matches_schema(predict_only: bool) -> None:
    document = json.loads(render(_report(predict_only), "json"))
    validate_schema("verify", document)
    assert document["engine"] == {"name": "docker", "version": "20.10.24", "rootless": True}
    assert document["digest"] == DIGEST
    cell = document["cells"][1]
    for key in ("network", "user", "cap_drop", "cap_add", "no_new_privileges", "predicted",
                "observed", "explanation"):  # fmt: skip
        assert key in cell
    assert cell["observed"] == (None if predict_only else "crashed")


def test_exit_codes() -> None:
    report = _report()
    assert report.exit_code() == 1  # the drop ALL cell differs
    report.cells[1].observed = Observation("exec-eperm", "exit status 1")
    assert report.exit_code() == 0
    report.cells[0].observed = Observation("bind-eacces", "exit status 1")
    assert report.exit_code() == 1
    predicted = _report(predict_only=True)
    assert predicted.exit_code() == 0  # --matrix: the table was made
    predicted.matrix = False
    assert predicted.exit_code() == 0  # the requested cell is predicted to serve


def test_junit_is_well_formed() -> None:
    root = ET.fromstring(render(_report(), "junit").split("\n", 1)[1])
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures")) == ("2", "1")
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["digest"] == DIGEST
    assert props["engine.rootless"] == "true"
    cases = suite.findall("testcase")
    assert [c.find("failure") is None for c in cases] == [True, False]


def test_markdown_table() -> None:
    text = render(_report(), "markdown")
    rows = [line for line in text.splitlines() if line.startswith("|")]
    assert len(rows) == 4
    assert all(row.count(" | ") == 6 for row in rows[2:])  # 7 columns, no stray pipes
    assert DIGEST in text


def test_text_shows_both_columns() -> None:
    text = render(_report(), "text")
    assert re.search(r"host +default +serving +serving +ok, \(requested\)", text), text
    assert "DIFFERS" in text
    assert "kept: container kept-1" in text
