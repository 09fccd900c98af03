"""A verify report as text, JSON (PRODUCT.md's keys plus ``engine``; schemas/verify.schema.json),
a markdown compatibility table, or JUnit XML (one testcase per cell)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

from unroot import SCHEMA_VERSION
from unroot.verify.run import CellReport, Report

FORMATS = ("text", "json", "markdown", "junit")


def _observed(cell: CellReport) -> str:
    return cell.observed.outcome if cell.observed is not None else "-"


def _mark(cell: CellReport, requested: bool = False) -> str:
    marks = [] if cell.observed is None else ["ok" if cell.agrees else "DIFFERS"]
    if cell.predicted.caveat:
        marks.append(f"* {cell.predicted.caveat}")
    if requested and cell.requested:
        marks.append("(requested)")
    return ", ".join(marks)


def _engine_line(report: Report) -> str:
    engine = report.engine
    kind = "rootless" if engine["rootless"] else "rootful"
    return f"{engine['name']} {engine['version']} ({kind})"


def to_json(report: Report) -> dict[str, Any]:
    return {
        "image": report.image,
        "digest": report.digest,
        "engine": report.engine,
        "port": report.port,
        "probe": report.probe,
        "cells": [
            {
                "network": c.cell.network,
                "user": c.user,
                "cap_drop": list(c.cell.cap_drop),
                "cap_add": list(c.cell.cap_add),
                "no_new_privileges": c.cell.no_new_privileges,
                "predicted": c.predicted.outcome,
                "observed": c.observed.outcome if c.observed is not None else None,
                "explanation": c.predicted.explanation,
                "requested": c.requested,
                "evidence": c.observed.to_json() if c.observed is not None else None,
            }
            for c in report.cells
        ],
        "notes": report.notes,
    }


def render_json(report: Report) -> str:
    return json.dumps({"schema_version": SCHEMA_VERSION, **to_json(report)}, indent=2) + "\n"


def _subject(report: Report) -> str:
    if report.exec_path is not None:
        return f"{report.exec_path} (a network namespace of its own)"
    return f"{report.image} ({report.digest})"


def render_text(report: Report) -> str:
    lines = [f"{_subject(report)} on {_engine_line(report)}, port {report.port}: {report.probe}"]
    rows = [("network", "cell", "predicted", "observed", "")]
    rows += [
        (
            c.cell.network,
            c.name,
            c.predicted.outcome + ("*" if c.predicted.caveat else ""),
            _observed(c) + ("*" if c.predicted.caveat and _observed(c) == "serving" else ""),
            _mark(c, report.matrix),
        )
        for c in report.cells
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        lines.append(
            "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=False)) + "  " + row[4]
        )
    for c in report.cells:
        if not report.matrix or not c.agrees or (c.requested and c.observed is not None):
            lines.append(f"{c.cell.network} / {c.name}: {c.predicted.explanation}")
            if c.observed is not None:
                obs = c.observed
                lines.append(
                    f"  observed: {obs.outcome} ({obs.detail}); CapEff {_seen(obs.cap_eff)}, "
                    f"ip_unprivileged_port_start {_seen(obs.port_start)}"
                )
                lines += [f"  | {line}" for line in obs.logs]
                if obs.container:
                    lines.append(f"  kept: container {obs.container}")
    lines += [f"note: {note}" for note in report.notes]
    return "\n".join(lines) + "\n"


def _seen(value: str | int | None) -> str:
    return "not seen (the process was gone)" if value is None else str(value)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(report: Report) -> str:
    lines = [
        f"**{_md(_subject(report))}** on {_md(_engine_line(report))}, port {report.port}"
        f" ({_md(report.probe)})",
        "",
        "| network | capabilities | predicted | observed | CapEff | port start | |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in report.cells:
        obs = c.observed
        lines.append(
            f"| {c.cell.network} | {_md(c.name)} | {c.predicted.outcome} | {_observed(c)} | "
            f"{obs.cap_eff if obs and obs.cap_eff else ''} | "
            f"{obs.port_start if obs and obs.port_start is not None else ''} | "
            f"{_md(_mark(c, report.matrix))} |"
        )
    lines.append("")
    lines += [f"- {_md(note)}" for note in report.notes]
    return "\n".join(lines) + "\n"


def render_junit(report: Report) -> str:
    failures = sum(1 for c in report.cells if not c.agrees)
    suite = ET.Element(
        "testsuite",
        name=f"unroot verify {report.image or report.exec_path}",
        tests=str(len(report.cells)),
        failures=str(failures),
        errors="0",
        skipped=str(len(report.cells) if report.predict_only else 0),
    )
    props = ET.SubElement(suite, "properties")
    for key, value in (
        ("engine", report.engine["name"]),
        ("engine.version", report.engine["version"]),
        ("engine.rootless", str(report.engine["rootless"]).lower()),
        ("image", report.image or ""),
        ("digest", report.digest),
        ("port", str(report.port)),
    ):
        ET.SubElement(props, "property", name=key, value=value)
    for c in report.cells:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"unroot.verify.{c.cell.network}",
            name=c.name,
            time=f"{c.observed.seconds:.2f}" if c.observed else "0",
        )
        if c.observed is None:
            ET.SubElement(case, "skipped", message=f"predicted {c.predicted.outcome}")
        elif not c.agrees:
            fail = ET.SubElement(
                case,
                "failure",
                message=f"predicted {c.predicted.outcome}, observed {c.observed.outcome}",
                type="prediction",
            )
            fail.text = c.predicted.explanation
        out = ET.SubElement(case, "system-out")
        obs = c.observed
        out.text = "\n".join(
            [f"predicted: {c.predicted.outcome}: {c.predicted.explanation}"]
            + (
                [
                    f"observed: {obs.outcome} ({obs.detail}); CapEff {obs.cap_eff}, "
                    f"ip_unprivileged_port_start {obs.port_start}",
                    *obs.logs,
                ]
                if obs
                else []
            )
        )
    suites = ET.Element("testsuites")
    suites.append(suite)
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, "unicode") + "\n"


def render(report: Report, fmt: str) -> str:
    return {
        "text": render_text,
        "json": render_json,
        "markdown": render_markdown,
        "junit": render_junit,
    }[fmt](report)
