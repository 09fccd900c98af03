"""The chart: requests/s bars per method (keep-alive and close, with the ratio to direct bind
written on each bar) and the fixed-rate latency percentile curves (one line per method, the
x axis spread as HdrHistogram's plots are, so p99.9 is as wide as p50..p90), PNG and SVG.

matplotlib is the optional ``chart`` extra (``pip install 'unroot[chart]'``); it is imported
only here, with the non-interactive Agg backend.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from unroot.errors import EnvironmentProblem
from unroot.proxybench.loads import percentile

#: Percentiles of the curves: 0 .. 99.99 %.
CURVE = (0.0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999)
COLORS = {
    "direct": "#333333",
    "unroot-run": "#1b9e77",
    "docker-proxy": "#2b7bba",
    "socat": "#d95f02",
    "nft": "#7570b3",
    "nginx": "#e7298a",
}


def require() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise EnvironmentProblem(
            "bench: --chart needs matplotlib: pip install 'unroot[chart]' (Debian: "
            "apt-get install python3-matplotlib)"
        ) from None


def _x(fraction: float) -> float:
    """HdrHistogram's percentile axis: log10(1 / (1 - p))."""
    return math.log10(1.0 / (1.0 - fraction)) if fraction < 1 else 5.0


def write(doc: dict[str, Any], prefix: Path) -> list[Path]:
    require()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = doc["methods"]
    modes = ("keep-alive", "close")
    fig, axes = plt.subplots(1, 3, figsize=(16, 5.6), gridspec_kw={"width_ratios": [1.25, 1, 1]})
    # -- throughput bars -----------------------------------------------------------------------
    ax = axes[0]
    width = 0.38
    for i, mode in enumerate(modes):
        xs = [j + (i - 0.5) * width for j in range(len(methods))]
        ys = [m["modes"][mode]["throughput"]["median_rps"] or 0 for m in methods]
        bars = ax.bar(
            xs,
            ys,
            width,
            label=mode,
            color=[COLORS.get(m["key"], "#888888") for m in methods],
            alpha=1.0 if mode == "keep-alive" else 0.55,
            edgecolor="black",
            linewidth=0.5,
            hatch="" if mode == "keep-alive" else "//",
        )
        for bar, m in zip(bars, methods, strict=True):
            ratio = m["modes"][mode]["throughput"]["median_ratio"]
            if ratio is not None:
                ax.annotate(
                    f"{ratio:.2f}",
                    (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center",
                    va="bottom",
                    fontsize=8,
                )
    ax.set_xticks(range(len(methods)))
    ax.set_xticklabels([m["key"] for m in methods], rotation=20, ha="right")
    ax.set_ylabel("requests/s (median over rounds; label: ratio to direct)")
    ax.set_title("Maximum throughput (wrk)")
    tallest = max((m["modes"]["keep-alive"]["throughput"]["median_rps"] or 0) for m in methods)
    ax.set_ylim(0, max(tallest, 1) * 1.3)  # room for the legend above the bars
    ax.legend(loc="upper center", ncol=2, fontsize=8, title="ratio to direct bind on each bar",
              title_fontsize=8)  # fmt: skip
    ax.grid(axis="y", alpha=0.3)
    # -- latency percentile curves ---------------------------------------------------------------
    rate = doc["settings"]["rate"]
    for ax, mode in zip(axes[1:], modes, strict=True):
        for m in methods:
            fr = m["modes"][mode]["fixed_rate"]
            hist = {int(k): int(v) for k, v in fr["histogram"]["buckets"]}
            if not hist:
                continue
            growth = fr["histogram"]["growth"]
            ys = [percentile(hist, growth, p, fr["max_us"]) / 1000 for p in CURVE]
            ax.plot(
                [_x(p) for p in CURVE],
                ys,
                marker="o",
                markersize=3,
                label=m["key"],
                color=COLORS.get(m["key"], "#888888"),
            )
        ticks = (0.0, 0.5, 0.9, 0.99, 0.999, 0.9999)
        ax.set_xticks([_x(p) for p in ticks])
        ax.set_xticklabels(["0", "50", "90", "99", "99.9", "99.99"])
        ax.set_xlabel("percentile (%)")
        ax.set_ylabel("latency (ms, log)")
        ax.set_yscale("log")
        ax.set_title(f"Latency at a fixed {rate:g} req/s, {mode} (open loop)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    env = doc["environment"]
    fig.suptitle(
        f"unroot bench: {doc['settings']['rounds']} rounds, {env['cpus']} CPUs, "
        f"kernel {env['kernel']}" + (f", {env['engine']}" if "engine" in env else ""),
        fontsize=10,
    )
    fig.tight_layout()
    written = []
    for suffix in (".png", ".svg"):
        path = prefix.with_name(prefix.name + suffix)
        fig.savefig(path, dpi=110, metadata={"Date": None} if suffix == ".svg" else None)
        written.append(path)
    plt.close(fig)
    return written
