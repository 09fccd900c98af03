"""``unroot bench``: does the proxy matter?  (seeds 000, 004; :mod:`unroot.proxybench`)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from unroot.errors import EnvironmentProblem, UsageError

DESCRIPTION = """\
Serve one backend (a small epoll HTTP server, as nobody) on this machine through each method —
direct bind, the socket handed over by `unroot run`, Docker's userland proxy (rootful docker
-p), socat, an nftables redirect (in a network namespace of its own) and nginx as a reverse
proxy — and measure, with and without keep-alive, the most requests/s (wrk) and the latencies
of a fixed request rate (an open-loop load: no coordinated omission), interleaved over rounds
after a warm-up.  Prints the ratios to direct bind measured in the same run and each proxy's
CPU time; --chart writes PNG and SVG, --format json the raw histograms and the environment.
Loopback and its own namespace only; removes every process, container, rule and namespace it
created, also on Ctrl-C or SIGTERM.  Needs root.
Exit status: 0 measured; 2 bad input; 3 an environment problem (a missing tool names its
package); 130/143 interrupted."""

QUICK = {
    "rounds": 1,
    "duration": 1,
    "warmup": 0,
    "rate": 200.0,
    "rate_duration": 0.5,
    "connections": 16,
}


class Interrupted(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "bench",
        help="what a proxy in front of the service costs, against direct bind (chart, JSON)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--methods",
        default="direct,unroot-run,docker-proxy,socat,nft,nft-direct,nginx",
        help="comma-separated (default: all): direct, unroot-run, docker-proxy, socat, nft, "
        "nft-direct (nft's control: direct bind inside its namespace), nginx",
    )
    parser.add_argument(
        "--skip", action="append", default=[], metavar="METHOD", help="leave out (repeatable)"
    )
    parser.add_argument("--quick", action="store_true", help="one short round (the test suite)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds after the warm-up (5)")
    parser.add_argument("--duration", type=int, default=2, help="seconds per wrk run (2)")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of warm-up per method (1)")
    parser.add_argument("--rate", type=float, default=250.0, help="fixed-rate req/s (250)")
    parser.add_argument(
        "--rate-duration", type=float, default=4.0, help="seconds per fixed-rate run (4)"
    )
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (64)")
    parser.add_argument("--workers", type=int, default=2, help="backend processes (2)")
    parser.add_argument(
        "--docker-image",
        default=None,
        help="a local image with sleep (never pulled) that holds the network namespace; "
        f"default {DEFAULT_IMAGE}, and without it the docker-proxy method is skipped",
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--chart", metavar="PREFIX", help="write PREFIX.png and PREFIX.svg")
    parser.add_argument(
        "--replay",
        metavar="FILE",
        help="render a saved --format json run (table, chart, JSON) without measuring",
    )
    parser.add_argument(
        "--progress", action="store_true", help="progress lines on stderr even when not a terminal"
    )
    parser.set_defaults(handler=handle)


def _settings(args: argparse.Namespace) -> Any:
    from unroot.proxybench.methods import parse_methods
    from unroot.proxybench.runner import Settings

    keys = parse_methods(args.methods)
    skipped = parse_methods(",".join(args.skip)) if args.skip else ()
    keys = tuple(k for k in keys if k == "direct" or k not in skipped)
    if "direct" in args.skip:
        raise UsageError("bench: direct bind is what the ratios are taken against: not skippable")
    values = {
        "rounds": args.rounds,
        "duration": args.duration,
        "warmup": args.warmup,
        "rate": args.rate,
        "rate_duration": args.rate_duration,
        "connections": args.connections,
    }
    if args.quick:
        values.update(QUICK)
    settings = Settings(
        methods=keys,
        rounds=values["rounds"],
        seconds=values["duration"],
        warmup=values["warmup"],
        rate=values["rate"],
        rate_seconds=values["rate_duration"],
        threads=args.threads,
        connections=max(int(values["connections"]), args.threads),
        workers=args.workers,
        docker_image=args.docker_image or DEFAULT_IMAGE,
    )
    settings.check()
    return settings


DEFAULT_IMAGE = "unroot-base:bookworm"


def _without_missing_image(settings: Any, args: argparse.Namespace, err: TextIO) -> Any:
    """No --docker-image and no local default image: measure the rest, and say so."""
    import dataclasses
    import subprocess

    if args.docker_image is not None or "docker-proxy" not in settings.methods:
        return settings
    try:
        found = subprocess.run(
            ["docker", "image", "inspect", DEFAULT_IMAGE],
            capture_output=True, timeout=30, check=False,
        ).returncode == 0  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        found = False
    if found:
        return settings
    err.write(
        f"bench: docker-proxy skipped: no local image {DEFAULT_IMAGE} "
        "(give --docker-image IMAGE, any local image with sleep)\n"
    )
    methods = tuple(m for m in settings.methods if m != "docker-proxy")
    return dataclasses.replace(settings, methods=methods)


def handle(
    args: argparse.Namespace, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    from unroot.proxybench import report, runner
    from unroot.proxybench.methods import Lab, require_programs

    out = stdout or sys.stdout
    err = stderr or sys.stderr
    chart = Path(args.chart) if args.chart else None
    if chart is not None:
        from unroot.proxybench import chart as charting

        charting.require()
        if not chart.parent.is_dir():
            raise UsageError(f"bench: --chart {args.chart}: no directory {chart.parent}")
    if args.replay:
        return _render(report.load(Path(args.replay)), args, chart, out, err)
    settings = _without_missing_image(_settings(args), args, err)
    require_programs(settings.methods)
    tty = err.isatty()
    show = tty or args.progress

    def progress(text: str) -> None:
        if not show:
            return
        if tty:
            err.write(f"\r\x1b[K{text}")
        else:
            err.write(f"unroot bench: {text}\n")
        err.flush()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise Interrupted(signum)

    lab = Lab()
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    interrupted = 0
    outcome = None
    try:
        if show:
            progress(
                f"about {settings.estimate():.0f} s of measurements; Ctrl-C stops and cleans up"
            )
        outcome = runner.run(settings, lab, progress)
    except Interrupted as exc:
        interrupted = exc.signum
    except KeyboardInterrupt:
        interrupted = signal.SIGINT
    finally:
        for sig in previous:  # a second Ctrl-C must not cut the cleanup short
            signal.signal(sig, signal.SIG_IGN)
        try:
            _cleanup(lab, err, tty)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    if interrupted or outcome is None:
        name = signal.Signals(interrupted or signal.SIGINT).name
        err.write(f"unroot: bench: interrupted ({name}); removed what it started\n")
        return 128 + (interrupted or signal.SIGINT)
    return _render(report.document(outcome), args, chart, out, err)


def _render(
    doc: dict[str, Any], args: argparse.Namespace, chart: Path | None, out: TextIO, err: TextIO
) -> int:
    from unroot.proxybench import report

    if chart is not None:
        from unroot.proxybench import chart as charting

        for path in charting.write(doc, chart):
            err.write(f"unroot bench: wrote {path}\n")
    if args.format == "json":
        json.dump(doc, out, indent=1)
        out.write("\n")
    else:
        out.write(report.table(doc) + "\n")
    return 0


def _cleanup(lab: Any, err: TextIO, tty: bool) -> None:
    problems = lab.cleanup()
    if tty:
        err.write("\r\x1b[K")
    for line in problems:
        err.write(f"unroot: bench: cleanup: {line}\n")
    if problems:
        raise EnvironmentProblem("bench: cleanup left something behind (see above)")
