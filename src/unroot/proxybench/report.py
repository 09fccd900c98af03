"""The outcome as a document (``--format json``, schemas/bench.schema.json) and as a table."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

from unroot.errors import UsageError
from unroot.proxybench.loads import percentile
from unroot.proxybench.methods import BY_KEY
from unroot.proxybench.runner import MODES, PERCENTILES, Outcome, Series, median

SCHEMA_VERSION = 1


def _num(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 4)


def _pct_name(fraction: float) -> str:
    return "p" + f"{fraction * 100:g}"


def mode_doc(s: Series, cpu_note: str) -> dict[str, Any]:
    total_requests = sum(s.requests)
    cpu_us = sum(s.cpu) / total_requests * 1e6 if s.cpu and total_requests else float("nan")
    return {
        "throughput": {
            "rps": [round(v, 1) for v in s.rps],
            "median_rps": _num(median(s.rps)),
            "ratio_to_direct": [round(v, 4) for v in s.ratio],
            "median_ratio": _num(median(s.ratio)),
            "requests": s.requests,
            "errors": s.errors,
            "wrk_latency_s": s.wrk_latency,
        },
        "cpu": {
            "seconds": [round(v, 3) for v in s.cpu],
            "us_per_request": _num(cpu_us),
            "note": cpu_note or None,
        },
        "fixed_rate": {
            "requests": s.rate_requests,
            "completed": s.rate_completed,
            "errors": s.rate_errors,
            "percentiles_us": {
                _pct_name(p): _num(percentile(s.histogram, s.growth, p, s.rate_max_us))
                for p in PERCENTILES
            },
            "max_us": s.rate_max_us,
            "histogram": {
                "unit": "us",
                "growth": s.growth,
                "buckets": [[k, s.histogram[k]] for k in sorted(s.histogram)],
            },
        },
    }


def document(outcome: Outcome) -> dict[str, Any]:
    methods = []
    for key, ep in outcome.endpoints.items():
        info = BY_KEY[key]
        methods.append(
            {
                "key": key,
                "label": info.label,
                "port": ep.port,
                "netns": ep.netns is not None,
                "note": ep.note or None,
                "modes": {
                    mode: mode_doc(outcome.series[(key, mode)], info.cpu_note) for mode in MODES
                },
            }
        )
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": outcome.run_id,
        "settings": {
            k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(outcome.settings).items()
        },
        "environment": outcome.environment,
        "elapsed_s": round(outcome.elapsed, 1),
        "methods": methods,
    }


def load(path: Path) -> dict[str, Any]:
    """A saved ``--format json`` document (``--replay``); UsageError when it is not one."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"bench: --replay {path}: {exc}") from None
    if not isinstance(doc, dict) or doc.get("schema_version") != SCHEMA_VERSION:
        raise UsageError(f"bench: --replay {path}: not an unroot bench JSON (schema_version 1)")
    return doc


def _ms(us: float | None) -> str:
    return "-" if us is None else f"{us / 1000:.2f}"


def table(doc: dict[str, Any]) -> str:
    """The ratio table: per mode, each method's median requests/s and its median ratio to direct
    bind (range over the rounds), the fixed-rate latencies and the proxy's CPU per request."""
    settings = doc["settings"]
    env = doc["environment"]
    out = [
        f"unroot bench: {settings['rounds']} round(s), wrk -t{settings['threads']} "
        f"-c{settings['connections']} {settings['seconds']:g} s per run; fixed rate "
        f"{settings['rate']:g} req/s for {settings['rate_seconds']:g} s per run; backend "
        f"{settings['workers']} worker(s); {env['cpus']} CPUs, kernel {env['kernel']}, "
        f"load {env['loadavg_at_start'][0]:.2f} at start",
    ]
    if "userland_proxy" in env:
        out.append(f"docker: {env.get('engine')}, userland-proxy {env['userland_proxy']}")
    header = (
        f"{'method':32} {'req/s':>8} {'ratio':>5} {'range':>11} | {'p50':>6} {'p99':>6} "
        f"{'p99.9':>6} {'max':>7} ms | {'CPU µs/req':>10} {'err':>4}"
    )
    for mode in MODES:
        out += ["", f"{mode}:", header, "-" * len(header)]
        for m in doc["methods"]:
            d = m["modes"][mode]
            t, fr, cpu = d["throughput"], d["fixed_rate"], d["cpu"]
            ratios = t["ratio_to_direct"]
            rng = f"{min(ratios):.2f}..{max(ratios):.2f}" if ratios else "-"
            ratio = "-" if t["median_ratio"] is None else f"{t['median_ratio']:.2f}"
            p = fr["percentiles_us"]
            if cpu["us_per_request"] is not None:
                cpu_text = f"{cpu['us_per_request']:.1f}"
            else:
                cpu_text = "kernel" if m["key"] == "nft" else "0 (none)"
            over = (t["median_rps"] or 0) < settings["rate"]
            label = m["label"] + (" *" if m["note"] else "") + (" !" if over else "")
            errors = t["errors"] + fr["errors"]
            out.append(
                f"{label:32} {t['median_rps'] or 0:>8.0f} {ratio:>5} {rng:>11} | "
                f"{_ms(p['p50']):>6} {_ms(p['p99']):>6} {_ms(p['p99.9']):>6} "
                f"{_ms(fr['max_us']):>7}    | {cpu_text:>10} {errors:>4}"
            )
    out += [
        "",
        "req/s: median over the rounds (wrk, closed loop); ratio: median over the rounds of the",
        "ratio to a direct-bind run right before or after it (range: min..max); p50..max: the",
        "fixed-rate open-loop load (latency from each request's due time); CPU: user+system time",
        "of the proxy's processes (/proc/PID/stat) per request of the wrk runs.",
    ]
    if any(
        (m["modes"][mode]["throughput"]["median_rps"] or 0) < settings["rate"]
        for m in doc["methods"]
        for mode in MODES
    ):
        out.append(
            f"! its maximum throughput is below the fixed rate ({settings['rate']:g} req/s): "
            "its latencies measure a growing queue."
        )
    by_key = {m["key"]: m for m in doc["methods"]}
    if "nft" in by_key and "nft-direct" in by_key:
        parts = []
        for mode in MODES:
            mine = by_key["nft"]["modes"][mode]["throughput"]["median_rps"]
            base = by_key["nft-direct"]["modes"][mode]["throughput"]["median_rps"]
            if mine and base:
                parts.append(f"{mode} {mine / base:.2f}")
        out.append("nft redirect / direct bind in the same namespace: " + ", ".join(parts))
    out += [f"* {m['label']}: {m['note']}" for m in doc["methods"] if m["note"]]
    return "\n".join(out)
