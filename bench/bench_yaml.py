"""How much faster is YAML through libyaml than through ruamel.yaml, for what ``unroot lint`` reads?

    .venv/bin/python bench/bench_yaml.py [-n 3] [--scale 1.0] [--seed 1] [--real-world DIR]

``unroot.sources.yamlsupport.load_yaml`` reads YAML with libyaml's C parser (PyYAML) and keeps
ruamel.yaml's round-trip composer as the fallback; ``LOADER = "ruamel"`` (or ``loader="ruamel"``)
is the reader as it was before, the *baseline* here, measured in the same run, interleaved run by
run with the new reader so that background load hits both alike.  The unroot package is
byte-compiled first, as an installed wheel is.  Timed, on the compose and Kubernetes files of the
corpus of ``bench/corpus.py`` (generated in a temporary directory) and on the YAML files of the
real-world corpus (``--real-world``, default /work/shared/corpus/real-world; one line says so and
those rows are skipped when it is absent):

* in-process, ``load_yaml`` on every file's text (no file reads, no interpreter start-up);
* ``unroot lint FILES --format json`` in a subprocess, the same YAML files for both;
* ``unroot lint DIR --format json`` over the whole real-world corpus (Dockerfiles, units and all).

Every contender runs once untimed first (warm page cache).  Prints medians (min-max), and the
ratios baseline / libyaml (the speed-up), and whether both readers gave the same trees, problems
and ``unroot lint`` reports.  Nothing is asserted.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench_lint import interleaved, ratio_line, run
from corpus import generate

REAL_WORLD = Path("/work/shared/corpus/real-world")
_LINT = (
    "import sys; import unroot.sources.yamlsupport as y; y.LOADER = {loader!r}; "
    "from unroot.cli import main; sys.exit(main(['lint', *sys.argv[1:]]))"
)
BASELINE = ", baseline (ruamel)"


def lint_command(loader: str) -> list[str]:
    """``unroot lint`` as the console script runs it, with the YAML reader chosen."""
    return [sys.executable, "-c", _LINT.format(loader=loader)]


def yaml_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())


def row(name: str, samples: list[float], files: int, size: int) -> str:
    median = statistics.median(samples)
    spread = f"{min(samples):.2f}-{max(samples):.2f}"
    rate = f"{files / median:7.0f} files/s {size / median / 1e6:6.2f} MB/s"
    return f"  {name:<62} {median:8.3f} s  ({spread})  {rate}"


def tree(node: object, seen: dict[int, int]) -> object:
    """A node as plain data (kind, position, tag, text, children; aliases by number), without
    the position of empty scalars (``key:``), which the readers place differently on purpose
    (tests/lint/test_yaml_loaders.py)."""
    from unroot.sources.yamlsupport import YMap, YScalar, YSeq

    if id(node) in seen:
        return seen[id(node)]
    seen[id(node)] = len(seen)
    assert isinstance(node, YScalar | YSeq | YMap)
    empty = isinstance(node, YScalar) and node.text == ""
    head = (node.kind, None if empty else (node.line, node.column), node.tag)
    if isinstance(node, YScalar):
        return (*head, node.text)
    if isinstance(node, YSeq):
        return (*head, [tree(item, seen) for item in node])
    return (*head, [(tree(k, seen), tree(v, seen)) for k, v in node.entries()])


def same_reading(texts: list[tuple[str, str]]) -> str:
    """How many files both readers read alike (documents, trees with positions, problems)."""
    from unroot.sources.yamlsupport import load_yaml

    def reading(text: str, path: str, loader: str) -> object:
        loaded = load_yaml(text, path, loader=loader)
        docs = [(d.index, d.root and tree(d.root, {})) for d in loaded.documents]
        return docs, loaded.problems

    alike = sum(
        reading(text, path, "libyaml") == reading(text, path, "ruamel") for path, text in texts
    )
    return f"{alike}/{len(texts)} files read alike by both (trees, positions, problems)"


def in_process(label: str, texts: list[tuple[str, str]]) -> dict[str, Callable[[], object]]:
    from unroot.sources.yamlsupport import load_yaml

    def load(loader: str) -> None:
        for path, text in texts:
            load_yaml(text, path, loader=loader)

    name = f"in-process: load_yaml, {label}"
    return {name: lambda: load("libyaml"), name + BASELINE: lambda: load("ruamel")}


def subprocess_lint(label: str, args: list[str], cwd: Path) -> dict[str, Callable[[], object]]:
    new, old = lint_command("libyaml"), lint_command("ruamel")
    name = f"unroot lint {label} --format json"
    return {
        name: lambda: run([*new, *args, "--format", "json"], cwd),
        name + BASELINE: lambda: run([*old, *args, "--format", "json"], cwd),
    }


def same_report(args: list[str], cwd: Path) -> str:
    new = run([*lint_command("libyaml"), *args, "--format", "json"], cwd).stdout
    old = run([*lint_command("ruamel"), *args, "--format", "json"], cwd).stdout
    report = json.loads(new)
    same = "identical" if json.loads(old) == report else "DIFFERENT"
    return f"{len(report['files'])} files, {len(report['findings'])} findings, {same} to baseline"


def measure(  # noqa: PLR0917  (one call site each, read in order)
    title: str,
    contenders: dict[str, Callable[[], object]],
    repetitions: int,
    files: int,
    size: int,
    notes: list[str],
) -> list[str]:
    times = interleaved(contenders, repetitions)
    out = [f"{title}: {files} files, {size / 1e6:.1f} MB", *(f"  {note}" for note in notes)]
    out.extend(row(name, samples, files, size) for name, samples in times.items())
    out.extend(
        ratio_line(f"  speed-up, {name}", times[name + BASELINE], samples)
        for name, samples in times.items()
        if name + BASELINE in times
    )
    return out


def section(
    title: str, root: Path, paths: list[Path], repetitions: int, whole: bool = False
) -> list[str]:
    """In-process and subprocess timings of the YAML files ``paths`` under ``root``."""
    relative = [str(p.relative_to(root)) for p in paths]
    texts = [(rel, p.read_text(encoding="utf-8")) for rel, p in zip(relative, paths, strict=True)]
    size = sum(len(text.encode()) for _, text in texts)
    contenders = in_process(title, texts)
    contenders.update(subprocess_lint("YAMLFILES", relative, root))
    notes = [same_reading(texts), f"unroot lint YAMLFILES: {same_report(relative, root)}"]
    out = measure(title, contenders, repetitions, len(paths), size, notes)
    if whole:
        every = [p for p in root.rglob("*") if p.is_file()]
        total = sum(p.stat().st_size for p in every)
        notes = [f"unroot lint .: {same_report(['.'], root)}"]
        contenders = subprocess_lint(".", ["."], root)
        out.extend(measure(f"{title}, whole", contenders, repetitions, len(every), total, notes))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-n", "--repetitions", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--real-world", type=Path, default=REAL_WORLD)
    args = parser.parse_args(argv)

    import unroot
    from unroot.sources import yamlsupport

    compileall.compile_dir(str(Path(unroot.__file__).parent), quiet=1)
    print(f"libyaml available: {yamlsupport.LIBYAML} (default reader: {yamlsupport.LOADER})")
    print(f"medians of {args.repetitions} interleaved runs after one warm-up each (min-max)")
    sys.stdout.flush()
    with tempfile.TemporaryDirectory(prefix="unroot-yaml-bench-") as scratch:
        corpus = generate(Path(scratch) / "corpus", args.seed, args.scale)
        paths = [corpus.root / p for kind in ("compose", "k8s") for p in corpus.files[kind]]
        previous = os.getcwd()
        os.chdir(corpus.root)
        try:
            print("\n".join(section("bench corpus YAML", corpus.root, paths, args.repetitions)))
        finally:
            os.chdir(previous)
    sys.stdout.flush()
    if args.real_world.is_dir():
        paths = yaml_files(args.real_world)
        lines = section("real-world YAML", args.real_world, paths, args.repetitions, whole=True)
        print("\n".join(lines))
    else:
        print(f"real-world corpus: {args.real_world} is absent; its rows are skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
