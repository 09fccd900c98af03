"""What ``unroot lint`` reads (issue 12): empty documents, a StatefulSet's claim templates,
Dockerfile names, kubectl's JSON, standard input (its kind, its name, Helm's ``# Source:``),
bounded reads of regular files only, and directories it cannot read."""

from __future__ import annotations

import io
import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unroot.commands.lint import run_lint
from unroot.errors import UsageError
from unroot.lint.discover import discover
from unroot.lint.engine import lint_paths
from unroot.lint.findings import Finding
from unroot.lint.inputs import MAX_INPUT_BYTES, read_stdin
from unroot.lint.rendered import Rendered, helm_sources, map_rendered
from unroot.sources.k8s import parse_k8s
from unroot.sources.kinds import is_k8s_json, kind_by_name, kind_by_text

FIXTURES = Path(__file__).parent / "fixtures"
UNROOT = Path(sys.executable).with_name("unroot")
SCHEMA = Path(__file__).parents[2] / "src" / "unroot" / "schemas" / "lint.schema.json"


def run(argv: list[str], stdin: str = "") -> tuple[int, str]:
    out = io.StringIO()
    code = run_lint(argv, stdout=out, stdin=io.StringIO(stdin))
    return code, out.getvalue()


def cli(
    *argv: str, stdin: int | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """The installed ``unroot`` as a user runs it; a hang fails the test instead of the run."""
    return subprocess.run(
        [str(UNROOT), *argv],
        stdin=stdin if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# -- Kubernetes documents ---------------------------------------------------------------------
POD = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: x}]\n"


@pytest.mark.parametrize(
    "text",
    [
        POD + "---\n",  # a trailing separator
        POD + "---\n# Source: chart/templates/pdb.yaml\n# disabled\n",  # Helm, nothing rendered
        "# generated\n---\n" + POD,  # a leading comment block
        POD + "---\nnull\n---\n~\n",  # explicit nulls
        "---\n---\n" + POD + "---\n\n\n---\n",
    ],
)
def test_empty_documents_are_skipped_as_kubectl_does(text: str) -> None:
    parsed = parse_k8s(text, "m.yaml")
    assert parsed.problems == ()
    assert [w.name for w in parsed.workloads] == ["Pod/p/container:c"]


@pytest.mark.parametrize(
    ("document", "found"),
    [("hello", "the str 'hello'"), ("- a\n- b", "a list"), ("42", "the int '42'")],
)
def test_a_document_that_is_a_scalar_or_a_list_is_still_a_problem(
    document: str, found: str
) -> None:
    parsed = parse_k8s(POD + "---\n" + document + "\n", "m.yaml")
    assert [m for _, m in parsed.problems] == [f"a manifest is a mapping, found {found}"]


def test_statefulset_claim_templates_are_the_pods_volumes() -> None:
    path = FIXTURES / "k8s-statefulset-claims" / "postgres.yaml"
    parsed = parse_k8s(path.read_text(), str(path))
    assert parsed.problems == ()
    (postgres,) = parsed.workloads
    mounts = {m.target: (m.kind, m.source) for m in postgres.mounts}
    assert mounts == {
        "/var/lib/postgresql/data": ("volume", "data"),  # a PersistentVolumeClaim, per pod
        # the claim template replaces the pod's hostPath volume of the same name
        "/var/lib/postgresql/wal": ("volume", "wal"),
        "/var/run/postgresql": ("volume", "run"),
    }


def test_claim_templates_count_only_in_a_statefulset() -> None:
    deployment = textwrap.dedent("""\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: d}
        spec:
          template:
            spec:
              containers:
              - name: c
                image: x
                volumeMounts: [{name: data, mountPath: /data}]
          volumeClaimTemplates:
          - metadata: {name: data}
        """)
    parsed = parse_k8s(deployment, "d.yaml")
    assert [m for _, m in parsed.problems] == ["volumeMounts: no volume named 'data' in the pod"]
    statefulset = deployment.replace("kind: Deployment", "kind: StatefulSet")
    assert parse_k8s(statefulset, "s.yaml").problems == ()


# -- names and JSON ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("Dockerfile", "dockerfile"),
        ("Dockerfile-auth", "dockerfile"),
        ("Dockerfile-chroot", "dockerfile"),
        ("Dockerfile.distroless", "dockerfile"),
        ("Dockerfile_dev", "dockerfile"),
        ("dockerfile-dev", "dockerfile"),
        ("web.Dockerfile", "dockerfile"),
        ("Containerfile", "dockerfile"),
        ("Containerfile.prod", "dockerfile"),
        ("Containerfile-arm64", "dockerfile"),
        ("Dockerfile.md", None),
        ("Dockerfile.j2", None),
        ("Dockerfile.template", None),
        ("Dockerfile.orig", None),
        ("Dockerfile-auth.dockerignore", None),
        (".dockerignore", None),
        ("Dockerfiles", None),  # a directory name (mailcow's data/Dockerfiles/)
        ("DockerfileLint.yaml", None),
    ],
)
def test_dockerfile_names(name: str, kind: str | None) -> None:
    assert kind_by_name(f"some/dir/{name}") == kind


def test_a_directory_finds_every_dockerfile_name_and_no_other() -> None:
    where = FIXTURES / "dockerfile-names"
    found = {Path(p).name for p, _ in discover([str(where)])}
    assert found == {"Dockerfile-auth", "Dockerfile_dev", "Containerfile.prod", "web.Dockerfile"}
    result = lint_paths([str(where)])
    assert {(Path(f.file).name, f.rule) for f in result.findings} == {
        ("Dockerfile-auth", "UR106"),
        ("Containerfile.prod", "UR106"),
        ("web.Dockerfile", "UR106"),  # Dockerfile_dev binds 8080: nothing to say
    }


def test_a_dockerfile_named_explicitly_is_read_by_its_content(tmp_path: Path) -> None:
    odd = tmp_path / "build-image"
    odd.write_text("# syntax=docker/dockerfile:1\nARG BASE=python:3.12\nFROM $BASE\nUSER 1000\n")
    notes = tmp_path / "NOTES"
    notes.write_text("Remember to update the base image.\n")
    skipped: list[tuple[str, str]] = []
    assert discover([str(odd), str(notes)], skipped=skipped) == [(str(odd), "dockerfile")]
    assert [p for p, _ in skipped] == [str(notes)]
    # named on the command line, a name directory discovery passes over is read too
    template = tmp_path / "Dockerfile.template"
    template.write_text("FROM alpine:3.20\nUSER 1000\n")
    assert discover([str(template)]) == [(str(template), "dockerfile")]
    assert discover([str(tmp_path)]) == []


def test_kubectl_json_is_found_and_other_json_is_not() -> None:
    where = FIXTURES / "k8s-json"
    found = sorted(Path(p).name for p, _ in discover([str(where)]))
    assert found == ["deployments.json", "web-namespace.json"]
    result = lint_paths([str(where)])
    assert result.skipped == ()
    assert [(Path(f.file).name, f.line, f.rule) for f in result.findings] == [
        ("web-namespace.json", 65, "UR108")  # the line of the JSON file itself
    ]
    parsed = parse_k8s((where / "deployments.json").read_text(), "deployments.json")
    assert [w.name for w in parsed.workloads] == ["Deployment/api/container:api"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"apiVersion": "v1", "kind": "List", "items": []}', True),
        ('{"kind": "Pod", "apiVersion": "v1"}', True),
        ('{"name": "ui", "version": "1.0.0"}', False),
        ('{"examples": [{"apiVersion": "v1", "kind": "Pod"}]}', False),  # not top-level
        ('{"apiVersion": 1, "kind": "Pod"}', False),
        ('[{"apiVersion": "v1", "kind": "Pod"}]', False),
        ('{"apiVersion": "v1", "kind": "Pod",', False),  # truncated
        ("{" * 100_000, False),  # nesting that would overflow the stack
    ],
)
def test_is_k8s_json(text: str, *, expected: bool) -> None:
    assert is_k8s_json(text) is expected


# -- standard input ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("# syntax=docker/dockerfile:1\n\nFROM alpine\nUSER 1000\n", "dockerfile"),
        ("ARG VERSION=3.20\nFROM alpine:${VERSION}\n", "dockerfile"),
        ("services:\n  web:\n    image: nginx\n", "compose"),
        (POD, "k8s"),
        ('{"apiVersion": "v1", "kind": "List", "items": []}', "k8s"),
        ("# a unit\n[Unit]\nDescription=x\n[Service]\nExecStart=/bin/true\n", "systemd"),
        ("[Service]\nExecStart=/bin/true\n", "systemd"),
        ("hello\n", None),
        ("", None),
        ("[section]\nkey = 1\n", None),  # TOML/INI is not a unit
        ("{}", None),
    ],
)
def test_kind_by_text(text: str, kind: str | None) -> None:
    assert kind_by_text(text) == kind


BRIDGE = 'FROM python:3.12-slim\nUSER 10001\nCMD ["python3", "-m", "http.server", "80"]\n'


def test_stdin_kind_from_content_and_its_name_in_findings() -> None:
    code, out = run(["-", "--format", "json"], stdin=BRIDGE)
    assert code == 1
    assert [f["file"] for f in json.loads(out)["findings"]] == ["-"]
    code, out = run(["-", "--stdin-filename", "app/Dockerfile", "--format", "json"], stdin=BRIDGE)
    document = json.loads(out)
    assert code == 1
    assert document["files"] == ["app/Dockerfile"]
    assert [(f["file"], f["line"]) for f in document["findings"]] == [("app/Dockerfile", 3)]


def test_stdin_filename_tells_the_kind_first() -> None:
    unit = "[Service]\nUser=www\nExecStart=/usr/bin/python3 -m http.server 80\n"
    code, out = run(["-", "--stdin-filename", "web.service"], stdin=unit)
    assert code == 1
    assert out.startswith("web.service\n")
    # a name that says nothing leaves the kind to the text
    assert run(["-", "--stdin-filename", "input.txt"], stdin=BRIDGE)[0] == 1
    assert run(["-", "--stdin-filename", "input.txt"], stdin="plain words\n")[0] == 2


def test_stdin_of_no_kind_is_one_line_and_exit_2() -> None:
    done = cli("lint", "-", stdin=None)  # /dev/null: empty
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "unroot: standard input: cannot tell what kind of text this is (give --kind "
        "dockerfile|compose|k8s|systemd or --stdin-filename NAME)"
    ]


HELM = FIXTURES / "helm-rendered" / "webapp.yaml"


def test_helm_sources_are_the_documents_each_comment_heads() -> None:
    sources = helm_sources(HELM.read_text())
    assert [(r.template.rsplit("/", 1)[-1], r.first) for r in sources] == [
        ("serviceaccount.yaml", 3),
        ("pdb.yaml", 15),
        ("service.yaml", 18),
        ("deployment.yaml", 39),
        ("statefulset-cache.yaml", 93),
        ("test-connection.yaml", 131),
    ]
    assert all(r.last < s.first for r, s in itertools.pairwise(sources))
    assert helm_sources(POD) == ()


def test_helm_output_on_stdin_names_the_templates() -> None:
    code, out = run(["-", "--format", "json"], stdin=HELM.read_text())
    assert code == 1
    findings = json.loads(out)["findings"]
    assert [(f["file"], f["line"], f["rule"]) for f in findings] == [
        ("webapp/templates/deployment.yaml", 45, "UR108"),
        ("webapp/templates/statefulset-cache.yaml", 27, "UR100"),
    ]
    lines = HELM.read_text().splitlines()
    assert lines[38 + 45 - 1].strip() == "- name: tls"  # line 45 of the rendered document
    assert findings[0]["assumptions"][-1] == (
        "rendered by Helm from webapp/templates/deployment.yaml: line 45 of the document it "
        "rendered (line 83 of standard input); the template's own line may differ"
    )
    # linted as a file, the rendered file's own lines
    code, out = run([str(HELM), "--format", "json"])
    assert [(f["file"], f["line"]) for f in json.loads(out)["findings"]] == [
        (str(HELM), 83),
        (str(HELM), 119),
    ]


def test_map_rendered_leaves_findings_outside_templates() -> None:
    sources = (Rendered("c/templates/a.yaml", 3, 10),)
    before = Finding("-", 2, 1, "UR100", "parse-error", "error", "x", related=(("-", 5, "y"),))
    moved = map_rendered(before, "-", sources)
    assert (moved.file, moved.line) == ("-", 2)
    assert moved.related == (("c/templates/a.yaml", 3, "y"),)
    other = Finding("Dockerfile", 5, 1, "UR101", "t-t", "error", "x")
    assert map_rendered(other, "-", sources) is other


# -- bounded reads ----------------------------------------------------------------------------
@pytest.mark.parametrize("argv", [["--kind", "k8s"], []])
@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_devices_are_refused_without_reading(device: str, argv: list[str]) -> None:
    done = cli("lint", *argv, device, timeout=30)
    assert done.returncode == 2
    assert done.stderr == (
        f"unroot: {device}: a character device, not a regular file (unroot lint reads only files)\n"
    )


@pytest.mark.parametrize("argv", [["--kind", "dockerfile"], []])
def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path, argv: list[str]) -> None:
    fifo = tmp_path / "Dockerfile"
    os.mkfifo(fifo)
    done = cli("lint", *argv, str(fifo), timeout=30)
    assert done.returncode == 2
    assert (
        done.stderr
        == f"unroot: {fifo}: a FIFO, not a regular file (unroot lint reads only files)\n"
    )


def test_a_socket_is_refused_and_a_fifo_in_a_directory_is_passed_over(tmp_path: Path) -> None:
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(tmp_path / "app.service"))
        done = cli("lint", str(tmp_path / "app.service"), timeout=30)
        assert (done.returncode, done.stderr.split(": ", 2)[2]) == (
            2,
            "a socket, not a regular file (unroot lint reads only files)\n",
        )
        os.mkfifo(tmp_path / "Dockerfile")
        (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: nginx\n")
        done = cli("lint", str(tmp_path), timeout=30)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.endswith("no findings in 1 file\n")


def test_a_file_over_the_limit_is_refused_unread(tmp_path: Path) -> None:
    big = tmp_path / "cluster.yaml"
    with big.open("wb") as handle:  # sparse: no disk used
        handle.truncate(MAX_INPUT_BYTES + 1)
    done = cli("lint", "--kind", "k8s", str(big), timeout=30)
    assert done.returncode == 2
    assert done.stderr == f"unroot: {big}: larger than 64 MiB, the limit of one input (not read)\n"
    exact = tmp_path / "Dockerfile"
    with exact.open("wb") as handle:
        handle.write(b"FROM alpine\n")
        handle.truncate(2 * 1024 * 1024)  # a big real manifest's size passes
    assert cli("lint", str(exact), timeout=60).returncode in {0, 1}


def test_stdin_is_read_up_to_the_limit_only() -> None:
    with open("/dev/zero", "rb") as zero:
        done = cli("lint", "--kind", "k8s", "-", stdin=zero.fileno(), timeout=60)
    assert done.returncode == 2
    assert done.stderr == (
        "unroot: standard input: larger than 64 MiB, the limit of one input (not read)\n"
    )
    small = io.StringIO("x" * 10)
    assert read_stdin(small) == "x" * 10
    with pytest.raises(UsageError, match="larger than 64 MiB"):
        read_stdin(io.StringIO("é" * (MAX_INPUT_BYTES // 2 + 1)), "-")


# -- what cannot be read ----------------------------------------------------------------------
def _as_nobody(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", str(UNROOT), *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def shared_tree() -> Iterator[Path]:
    """A tree nobody can walk but for a root-only subdirectory (under /tmp: pytest's tmp_path
    is 0700, and root bypasses permissions, so unroot runs as nobody)."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run unroot as another user")
    if _as_nobody("--version").returncode != 0:
        pytest.skip("nobody cannot run this checkout's unroot")
    top = Path(tempfile.mkdtemp(prefix="unroot-unread-"))
    top.chmod(0o755)
    (top / "app").mkdir(mode=0o755)
    (top / "app" / "Dockerfile").write_text(BRIDGE)
    (top / "secrets").mkdir(mode=0o700)
    (top / "secrets" / "Dockerfile").write_text(BRIDGE)
    yield top
    shutil.rmtree(top)


def test_an_unreadable_subdirectory_is_named_not_silently_skipped(shared_tree: Path) -> None:
    done = _as_nobody("lint", str(shared_tree))
    secrets = shared_tree / "secrets"
    assert done.stderr == f"unroot: skipped {secrets}: permission denied\n"
    assert done.returncode == 1  # app/Dockerfile was linted: its finding decides
    assert done.stdout.splitlines()[-1] == (
        f"1 finding (1 warning) in 1 file; could not read {secrets}: permission denied"
    )
    done = _as_nobody("lint", "--format", "json", str(shared_tree))
    document = json.loads(done.stdout)
    assert document["skipped"] == [{"path": str(secrets), "reason": "permission denied"}]
    jsonschema.validate(document, json.loads(SCHEMA.read_text()))
    assert "skipped" not in json.loads(run([str(shared_tree / "app"), "--format", "json"])[1])


def test_nothing_readable_is_exit_2(shared_tree: Path) -> None:
    secrets = shared_tree / "secrets"
    done = _as_nobody("lint", str(secrets))
    assert done.returncode == 2
    assert done.stderr == f"unroot: skipped {secrets}: permission denied\n"
    assert done.stdout == f"no findings in 0 files; could not read {secrets}: permission denied\n"
    (shared_tree / "app" / "deploy.yaml").write_text(POD)
    (shared_tree / "app" / "deploy.yaml").chmod(0o600)
    done = _as_nobody("lint", str(shared_tree / "app" / "deploy.yaml"))
    assert done.returncode == 2
    assert (
        done.stderr == f"unroot: skipped {shared_tree / 'app' / 'deploy.yaml'}: permission denied\n"
    )


@pytest.mark.parametrize(
    ("path", "passed"),
    [
        ("images/Dockerfile-auth", True),
        ("Dockerfile_dev", True),
        ("Containerfile.prod", True),
        ("web.Dockerfile", True),
        ("deploy/web/list.json", True),
        ("deploy/app.yaml", True),
        ("package.json", False),
        ("charts/web/templates/deployment.yaml", False),
        (".dockerignore", False),
        ("docs/Dockerfile.md", False),
        ("src/dockerfile_parser.py", False),
        ("pkg/build/dockerfile_test.go", False),
        ("lib/dockerfile-utils.ts", False),
        ("images/Dockerfile.j2", False),
        ("deploy/web.service", True),
        ("units/web.service.d/override.conf", True),  # drop-ins: lint reads them with the unit
        ("web.socket.d/10-port.conf", True),
        ("etc/systemd/system/service.d/limits.conf", True),
        ("web.service.d/notes.txt", False),
        ("web.service.d/sub/x.conf", False),
        ("etc/nginx/conf.d/site.conf", False),
        ("web.target.d/x.conf", False),
    ],
)
def test_the_pre_commit_hook_passes_the_names_lint_reads(path: str, *, passed: bool) -> None:
    """The hook's ``files`` and ``exclude`` (.pre-commit-hooks.yaml) as pre-commit applies them."""
    import re

    from ruamel.yaml import YAML

    (hook,) = YAML(typ="safe").load(Path(__file__).parents[2] / ".pre-commit-hooks.yaml")
    matched = re.search(hook["files"], path) and not re.search(hook["exclude"], path)
    assert bool(matched) is passed
    if not path.endswith((".yaml", ".json")):  # the same names lint takes for Dockerfiles
        assert (kind_by_name(path) is not None) is passed


_LINES = st.sampled_from(
    ["---", "# Source: c/templates/a.yaml", "# Source: c/templates/b.yaml", "kind: Pod", "", "x"]
)


@given(st.lists(_LINES, max_size=30), st.integers(min_value=0, max_value=35))
@settings(max_examples=300, deadline=None)
def test_helm_sources_map_each_line_into_its_document(lines: list[str], line: int) -> None:
    text = "\n".join(lines)
    sources = helm_sources(text)
    for rendered in sources:  # a document starts after its comment and holds no separator
        assert lines[rendered.first - 2].startswith("# Source: ")
        assert all(
            lines[n - 1] != "---" and not lines[n - 1].startswith("# Source:")
            for n in range(rendered.first, rendered.last + 1)
        )
    finding = Finding("-", line, 1, "UR100", "parse-error", "error", "m")
    moved = map_rendered(finding, "-", sources)
    holder = [r for r in sources if r.first <= line <= r.last]
    if holder:
        assert (moved.file, moved.line) == (holder[0].template, line - holder[0].first + 1)
        assert moved.line >= 1
    else:
        assert moved == finding


@given(st.text(max_size=300))
@settings(max_examples=300, deadline=None)
def test_kind_by_text_never_raises(text: str) -> None:
    assert kind_by_text(text) in {None, "dockerfile", "compose", "k8s", "systemd"}


def test_stdin_filename_alone_reads_stdin_and_without_dash_is_an_error() -> None:
    code, out = run(["--stdin-filename", "Dockerfile", "--format", "json"], stdin=BRIDGE)
    assert (code, json.loads(out)["files"]) == (1, ["Dockerfile"])
    done = cli("lint", "--stdin-filename", "Dockerfile", ".")
    assert (done.returncode, done.stderr) == (
        2,
        "unroot: --stdin-filename names standard input: give - among the paths\n",
    )


@pytest.mark.parametrize(
    ("name", "what"), [("", "an empty name"), (".", "a directory"), ("..", "a directory"),
                       ("app/", "a directory"), ("/", "a directory")],
)  # fmt: skip
def test_stdin_filename_names_a_file(name: str, what: str) -> None:
    """Findings are named after it: a directory is no name for them (nor for --output's check)."""
    done = cli("lint", "--stdin-filename", name, "-")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"unroot: --stdin-filename {name!r}: {what}; give the name of a file\n"


def test_stdin_filename_finds_the_config_beside_it(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / ".unroot.toml").write_text('ignore = ["UR106"]\n')
    named = str(tmp_path / "app" / "Dockerfile")
    assert run(["-", "--stdin-filename", named], stdin=BRIDGE)[0] == 0  # UR106 ignored there
    assert run(["-"], stdin=BRIDGE)[0] == 1


# -- a UTF-8 byte order mark --------------------------------------------------------------------
_POD_JSON = (
    '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":'
    '[{"name":"c","image":"nginx","securityContext":{"runAsUser":0}}]}}\n'
)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("Dockerfile", "FROM alpine\nUSER root\nEXPOSE 80\n"),
        ("build.txt", "FROM alpine\nUSER root\n"),  # by content: the first instruction
        ("pod.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers:\n"
         "  - {name: c, image: x, securityContext: {runAsUser: 0}}\n"),
        ("pod.json", _POD_JSON),  # line 1 holds the finding: its column must not move
        ("deploy.yaml", "services:\n  web: {image: nginx, user: root}\n"),
        ("a.service", "[Service]\nExecStart=/bin/x --port 80\n"),
    ],
)  # fmt: skip
def test_a_byte_order_mark_is_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, text: str
) -> None:
    """Docker, kubectl and systemd skip a leading UTF-8 BOM: lint reads the same text, from a
    file or standard input, with the same lines and columns."""
    plain = tmp_path / "plain" / name
    bom = tmp_path / "bom" / name
    for path, data in ((plain, text.encode()), (bom, b"\xef\xbb\xbf" + text.encode())):
        path.parent.mkdir()
        path.write_bytes(data)
    monkeypatch.chdir(tmp_path / "plain")
    expected = run(["-f", "gnu", name])
    assert expected[1]  # a finding to compare
    monkeypatch.chdir(tmp_path / "bom")
    assert run(["-f", "gnu", name]) == expected
    with open(name, "rb") as piped_in:
        piped = cli("lint", "-f", "gnu", "--stdin-filename", name, "-", stdin=piped_in.fileno())
    assert (piped.returncode, piped.stdout) == expected
    if not name.endswith(".service"):  # a unit's type is in its name
        with open(name, "rb") as piped_in:
            by_text = cli("lint", "-f", "gnu", "-", stdin=piped_in.fileno())
        assert by_text.stderr == ""
        assert (by_text.returncode, by_text.stdout) == (
            expected[0],
            expected[1].replace(f"{name}:", "-:"),
        )


_HELM_TWO = """---
# Source: web/templates/a.yaml
apiVersion: v1
kind: Pod
metadata: {name: a}
spec:
  containers: [{name: c, image: x, volumeMounts: [{name: nope, mountPath: /x}]}]
---
# Source: web/templates/b.yaml
apiVersion: v1
kind: Pod
metadata: {name: b}
spec:
  containers: [{name: c, image: x, volumeMounts: [{name: nope, mountPath: /x}]}]
---
# Source: web/templates/disabled.yaml
# nothing rendered
"""


def test_helm_stdin_counts_each_template_as_a_file() -> None:
    """The summary counts the files the findings are grouped under: each template."""
    code, out = run(["-", "--format", "gnu"], stdin=_HELM_TWO)
    assert code == 1
    assert [line.split(":")[0] for line in out.splitlines()] == [
        "web/templates/a.yaml",
        "web/templates/b.yaml",
    ]
    assert run(["-"], stdin=_HELM_TWO)[1].endswith("2 findings (2 errors) in 2 files\n")
    code, out = run(["-", "--format", "json"], stdin=_HELM_TWO)
    assert json.loads(out)["files"] == ["web/templates/a.yaml", "web/templates/b.yaml"]


@pytest.mark.parametrize(
    "source",
    [
        "../../etc/passwd",
        "/etc/passwd",
        "web/../../x.yaml",
        # a URI (relative with a colon in its first segment, a SARIF reader takes it for a
        # scheme: file:/etc/passwd is /etc/passwd); Helm's chart names have no colon
        "file:///etc/passwd",
        "file:/etc/passwd",
        "https://example.org/x.yaml",
    ],
)
def test_a_helm_source_out_of_the_chart_is_not_a_file_name(source: str) -> None:
    """``# Source:`` is the input's text: a path that is absolute or climbs out with ``..``
    does not name the findings (a SARIF uri file:///etc/passwd); they stay on ``-``."""
    text = _HELM_TWO.replace("web/templates/b.yaml", source)
    code, out = run(["-", "--format", "sarif"], stdin=text)
    assert code == 1
    uris = [
        location["physicalLocation"]["artifactLocation"]["uri"]
        for result in json.loads(out)["runs"][0]["results"]
        for location in result["locations"]
    ]
    assert sorted(uris) == ["-", "web/templates/a.yaml"]
    assert "file:///etc" not in out
    assert "file:/etc" not in out
    assert run(["-"], stdin=text)[1].endswith("2 findings (2 errors) in 2 files\n")
