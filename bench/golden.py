"""Golden outputs: what ``unroot`` prints, byte for byte, so that a refactor can prove it changed
nothing a user sees.

    .venv/bin/python bench/golden.py record DIR [--rev REV]
    .venv/bin/python bench/golden.py check DIR [--rev REV]

``record`` runs ``unroot`` as a subprocess for every case below and writes one file per case
into ``DIR``: its stdout, then its stderr and exit code.  ``check`` records into a temporary
directory and compares with ``DIR``; it prints the cases that differ (a unified diff of the
first few) and exits 1 when any does.  ``--rev REV`` records the code of a git revision
(``git archive REV src``) instead of the working tree's; the inputs always come from the working
tree, so ``record DIR --rev main`` then ``check DIR`` compares a branch with main.

The cases:

* ``unroot lint --format json|sarif|text`` over the whole bench corpus (``bench/corpus.py``,
  seed 1, scale 1), and ``--format json`` again with the rootless runtimes;
* ``unroot lint --format json|sarif|text`` over every top-level fixture under
  ``tests/lint/fixtures`` and ``examples/lint``, and ``--format json`` over every file in them;
* ``unroot explain batch`` over ``bench/golden/questions.jsonl``, and the text and JSON
  renderings of a few ``explain`` command lines;
* ``unroot rules``, ``unroot rules ID`` and ``unroot rules TOPIC`` for every rule, and
  ``unroot rules --format json``;
* ``unroot completion bash|zsh`` and ``unroot man [COMMAND]`` for every command;
* ``--help`` of every command and subcommand.

Every command runs from a fixed directory with relative paths, ``COLUMNS=100`` and no colour, so
nothing depends on where the checkout lives.  ``./dev golden`` runs this script.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import difflib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INPUTS = ROOT / "bench" / "golden"
FORMATS = ("json", "sarif", "text")
RUNTIMES = ("docker-rootless", "podman-rootless")  # the default (docker) is above
HELP = (
    (),
    ("explain",),
    ("explain", "exec"),
    ("explain", "bind"),
    ("explain", "access"),
    ("explain", "batch"),
    ("caps",),
    ("caps", "decode"),
    ("caps", "file"),
    ("caps", "proc"),
    ("caps", "scan"),
    ("lint",),
    ("rules",),
    ("completion",),
    ("man",),
    ("run",),
)
#: unroot's commands: the man pages recorded (unroot.1 too), and the help of the new ones.
COMMANDS = (
    "explain",
    "caps",
    "lint",
    "rules",
    "doctor",
    "undo",
    "verify",
    "run",
    "completion",
    "man",
)
EXPLAIN = (
    ("exec", "--uid", "10001", "--file-caps", "cap_net_bind_service=+ep"),
    ("exec", "--uid", "10001", "--bounding", "", "--file-caps", "cap_net_bind_service=+ep"),
    ("exec", "--uid", "0", "--nnp", "--setuid-owner", "0"),
    (
        "exec",
        "--uid",
        "1000",
        "--userns-root-uid",
        "100000",
        "--file-caps-hex",
        "0100000300040000000000000000000000000000a0860100",
    ),
    ("bind", "--port", "80"),
    ("bind", "--port", "80", "--effective", "net_bind_service", "--netns", "foreign"),
    (
        "access",
        "/run/docker.sock",
        "--uid",
        "1000",
        "--gid",
        "1000",
        "--want",
        "rw",
        "--fs-json",
        "docker.json",
    ),
    (
        "access",
        "/etc/letsencrypt/live/blog/privkey.pem",
        "--uid",
        "2200",
        "--gid",
        "2200",
        "--fs-json",
        "le.json",
    ),
)


@dataclass(frozen=True)
class Case:
    name: str  # the output file's name
    cwd: Path
    argv: tuple[str, ...]
    stdin: Path | None = None
    subprocess: bool = False  # else run by cli.main in a worker process, many cases per process


def cases(corpus: Path, rules: list[str]) -> Iterator[Case]:
    for fmt in FORMATS:
        yield Case(f"lint-corpus.{fmt}", corpus, ("lint", ".", "--format", fmt), subprocess=True)
    for runtime in RUNTIMES:
        yield Case(
            f"lint-corpus.{runtime}.json",
            corpus,
            ("lint", ".", "--runtime", runtime, "--format", "json"),
            subprocess=True,
        )
    for base in (ROOT / "tests" / "lint" / "fixtures", ROOT / "examples" / "lint"):
        label = base.relative_to(ROOT).as_posix().replace("/", "_")
        for entry in sorted(base.iterdir()):
            for fmt in FORMATS:
                yield Case(
                    f"{label}/{entry.name}.{fmt}", base, ("lint", entry.name, "--format", fmt)
                )
            if entry.is_dir():
                for path in sorted(p for p in entry.rglob("*") if p.is_file()):
                    rel = path.relative_to(base).as_posix()
                    yield Case(f"{label}/files/{rel}.json", base, ("lint", rel, "--format", "json"))
    yield Case("explain-batch.jsonl", INPUTS, ("explain", "batch", "questions.jsonl"))
    yield Case(
        "explain-batch-stdin.jsonl",
        INPUTS,
        ("explain", "batch"),
        INPUTS / "questions.jsonl",
        subprocess=True,
    )
    for index, argv in enumerate(EXPLAIN):
        yield Case(f"explain/{index:02}.text", INPUTS, ("explain", *argv))
        yield Case(f"explain/{index:02}.json", INPUTS, ("explain", *argv, "--json"))
    yield Case("rules.list", INPUTS, ("rules",))
    yield Case("rules.json", INPUTS, ("rules", "--format", "json"))
    for shell in ("bash", "zsh"):
        yield Case(f"completion.{shell}", INPUTS, ("completion", shell))
    for command in ("", *COMMANDS):
        yield Case(
            f"man/{'-'.join(('unroot', command)).rstrip('-')}.1",
            INPUTS,
            ("man", command) if command else ("man",),
        )
    for rule in rules:
        yield Case(f"rules/{rule}", INPUTS, ("rules", rule))
    for argv in HELP:
        yield Case(
            f"help/{'-'.join(('unroot', *argv))}", INPUTS, (*argv, "--help"), subprocess=True
        )


def _environment(src: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UNROOT", "PYTHON"))}
    env.update(COLUMNS="100", NO_COLOR="1", TERM="dumb", LC_ALL="C.UTF-8", PYTHONPATH=str(src))
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _run(case: Case, env: dict[str, str]) -> bytes:
    stdin = case.stdin.read_bytes() if case.stdin else b""
    done = subprocess.run(
        [sys.executable, "-P", "-m", "unroot", *case.argv],
        cwd=case.cwd,
        env=env,
        input=stdin,
        capture_output=True,
        check=False,
    )
    return _frame(case.cwd, case.argv, done.stdout, done.stderr, done.returncode)


def _frame(cwd: Path, argv: tuple[str, ...], stdout: bytes, stderr: bytes, code: int) -> bytes:
    """One case's output file.  SARIF names the directory lint ran in (``%SRCROOT%``) as an
    absolute URI: it is written as ``file:///CWD/`` so that the checkout's place does not show."""
    stdout = stdout.replace(f"{cwd.as_uri()}/".encode(), b"file:///CWD/")
    return (
        stdout
        + f"\n--- stderr of `unroot {' '.join(argv)}`\n".encode()
        + stderr
        + f"--- exit {code}\n".encode()
    )


def _run_many(chunk: list[Case], env: dict[str, str]) -> list[bytes]:
    """Run ``chunk`` by ``unroot.cli.main`` in one worker process (``golden.py _worker``)."""
    request = json.dumps([[str(c.cwd), list(c.argv), str(c.stdin or "")] for c in chunk])
    done = subprocess.run(
        [sys.executable, "-P", __file__, "_worker", "-"],
        env=env,
        input=request.encode(),
        capture_output=True,
        check=True,
    )
    return [base64.b64decode(item) for item in json.loads(done.stdout)]


def _worker() -> int:
    """The worker: cases as JSON on stdin, their framed outputs as JSON (base64) on stdout."""
    from unroot.cli import main as unroot_main

    results = []
    for cwd, argv, stdin in json.loads(sys.stdin.read()):
        os.chdir(cwd)
        out, err = io.StringIO(), io.StringIO()
        real_stdin = sys.stdin
        sys.stdin = io.StringIO(Path(stdin).read_text() if stdin else "")
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    code = unroot_main(argv)
                except SystemExit as exc:
                    code = exc.code if isinstance(exc.code, int) else 1
        finally:
            sys.stdin = real_stdin
        framed = _frame(
            Path(cwd), tuple(argv), out.getvalue().encode(), err.getvalue().encode(), code
        )
        results.append(base64.b64encode(framed).decode())
    sys.__stdout__.write(json.dumps(results))  # type: ignore[union-attr]
    return 0


def _rule_names(env: dict[str, str]) -> list[str]:
    listing = _run(Case("rules", INPUTS, ("rules",)), env).decode().split("\n--- stderr")[0]
    names: list[str] = []
    for line in listing.splitlines():
        fields = line.split()
        if len(fields) >= 2:
            names += fields[:2]
    return names


def record(out: Path, src: Path) -> int:
    env = _environment(src)
    with tempfile.TemporaryDirectory(prefix="unroot-golden-") as work:
        corpus = Path(work) / "corpus"
        subprocess.run(
            [sys.executable, str(ROOT / "bench" / "corpus.py"), str(corpus), "--seed", "1"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        todo = list(cases(corpus, _rule_names(env)))
        alone = [case for case in todo if case.subprocess]
        together = [case for case in todo if not case.subprocess]
        workers = os.cpu_count() or 2
        chunks = [together[i::workers] for i in range(workers)]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            single = pool.map(lambda case: _run(case, env), alone)
            many = pool.map(lambda chunk: _run_many(chunk, env), chunks)
            got = dict(zip(alone, single, strict=True))
            for chunk, outputs in zip(chunks, many, strict=True):
                got.update(zip(chunk, outputs, strict=True))
    if out.exists():
        shutil.rmtree(out)
    for case in todo:
        target = out / case.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(got[case])
    print(f"golden: {len(todo)} outputs in {out}")
    return 0


def check(expected: Path, src: Path) -> int:
    with tempfile.TemporaryDirectory(prefix="unroot-golden-now-") as work:
        actual = Path(work) / "now"
        record(actual, src)
        want = {p.relative_to(expected) for p in expected.rglob("*") if p.is_file()}
        got = {p.relative_to(actual) for p in actual.rglob("*") if p.is_file()}
        differ = sorted(
            name
            for name in want & got
            if (expected / name).read_bytes() != (actual / name).read_bytes()
        )
        for name in sorted(want - got):
            print(f"golden: missing now: {name}")
        for name in sorted(got - want):
            print(f"golden: new: {name}")
        for name in differ[:5]:
            before = (expected / name).read_text(errors="replace").splitlines()
            after = (actual / name).read_text(errors="replace").splitlines()
            diff = difflib.unified_diff(before, after, f"before/{name}", f"now/{name}", lineterm="")
            print("\n".join(list(diff)[:60]))
        for name in differ:
            print(f"golden: differs: {name}")
        if differ or want != got:
            return 1
        print(f"golden: all {len(want)} outputs identical to {expected}")
        return 0


def main(argv: list[str] | None = None) -> int:
    if (argv if argv is not None else sys.argv[1:])[:1] == ["_worker"]:
        return _worker()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("record", "check"))
    parser.add_argument("dir", type=Path)
    parser.add_argument("--rev", help="record this git revision's src/ instead of the tree's")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="unroot-golden-src-") as tree:
        src = ROOT / "src"
        if args.rev:
            archive = subprocess.run(
                ["git", "-C", str(ROOT), "archive", args.rev, "src"],
                check=True,
                capture_output=True,
            ).stdout
            subprocess.run(["tar", "-x", "-C", tree], input=archive, check=True)
            src = Path(tree) / "src"
        if args.action == "record":
            return record(args.dir.resolve(), src)
        return check(args.dir.resolve(), src)


if __name__ == "__main__":
    sys.exit(main())
