"""``unroot verify`` on the three engines: every cell of the matrix predicted and observed, and
both equal to the ground truth measured here (issue 11; seed 002 for rootful Docker).

Images: ``images/seed002`` built offline from the base image by the rootful engine (busybox httpd
as USER 10001 with ``cap_net_bind_service=+ep``, and without), then ``docker save | load`` into
the rootless Docker and the rootless Podman of ``scripts/rootless-engines.sh`` (the loaded file
capability becomes a revision 3 xattr with the engine user's uid as rootid). The server listens
on a port below 1024 that :func:`host_privileged_port` holds (80 when free), on every cell —
the host-network cells of rootful Docker and rootless Podman bind in the host's namespace.

The rootless engines are test_rootless_engines.py's fixture (started there when needed, never
restarted here), used under the shared rootless lock. ``unroot verify`` runs as a user would
(``python -m unroot``), labels its containers with the session's label, and must leave none.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from _engine import (
    IMAGES,
    LABEL,
    Engine,
    Lab,
    host_port_start,
    host_privileged_port,
    image_file,
    rootless_engines_lock,
)
from jsonschema import Draft202012Validator
from test_rootless_engines import Rootless
from test_rootless_engines import (
    rootless as _rootless_fixture,  # noqa: F401 - the module-scoped fixture `rootless`, shared
)

pytestmark = [pytest.mark.root, pytest.mark.engine]

SCHEMA = Path(__file__).parents[2] / "src" / "unroot" / "schemas" / "verify.schema.json"
SERVER = "/usr/local/bin/httpd"
ENGINES = ("docker", "docker-rootless", "podman-rootless")
IMAGE_KINDS = {"capped": "cap_net_bind_service=+ep", "plain": ""}
S, E, B = "serving", "exec-eperm", "bind-eacces"
#: (engine, image) → outcomes of bridge then host, each default / drop ALL / drop ALL + NBS /
#: no-new-privileges: issue 11's table (rootless) and test_seed002_matrix.py's (rootful).
GROUND_TRUTH: dict[tuple[str, str], tuple[str, ...]] = {
    ("docker", "capped"): (S, E, S, S, S, E, S, B),
    ("docker", "plain"): (S, S, S, S, B, B, B, B),
    ("docker-rootless", "capped"): (S, E, S, S, S, E, S, B),
    ("docker-rootless", "plain"): (S, S, S, S, B, B, B, B),
    ("podman-rootless", "capped"): (S, E, S, B, B, E, B, B),
    ("podman-rootless", "plain"): (B, B, S, B, B, B, B, B),
}
CASES = [(e, i) for e in ENGINES for i in IMAGE_KINDS]


@pytest.fixture(scope="module")
def rootless(_rootless_fixture: Rootless) -> Rootless:  # noqa: F811 - the imported fixture
    return _rootless_fixture


@pytest.fixture(autouse=True)
def _shared_engines() -> Iterator[None]:
    with rootless_engines_lock(exclusive=False):
        yield


@dataclass(frozen=True)
class Images:
    tags: dict[str, str]
    ids: dict[str, str]


def _engine_argv(rootless: Rootless, engine: str) -> list[str]:
    if engine == "docker-rootless":
        return ["--engine", "docker", "--host", rootless.docker_host]
    if engine == "podman-rootless":
        return ["--engine", "podman", "--host", rootless.podman_url]
    return ["--engine", "docker"]


def _cli(rootless: Rootless, engine: str) -> list[str]:
    if engine == "docker-rootless":
        return ["/usr/bin/docker", "-H", rootless.docker_host]
    if engine == "podman-rootless":
        return ["podman", "--remote", "--url", rootless.podman_url]
    return ["/usr/bin/docker"]


def _run(argv: list[str], timeout: float = 300, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, **kw)


@pytest.fixture(scope="module")
def images(module_lab: Lab, rootless: Rootless) -> Iterator[Images]:
    tags, ids = {}, {}
    for kind, caps in IMAGE_KINDS.items():
        tag = module_lab.build(IMAGES / "seed002", f"verify-{kind}", build_args={"FILECAPS": caps})
        tags[kind] = tag
        ids[kind] = module_lab.docker.inspect(tag, "image")["Id"]
    with rootless_engines_lock(exclusive=False):
        for engine in ("docker-rootless", "podman-rootless"):
            argv = ["/usr/bin/docker", "save", *tags.values()]
            with subprocess.Popen(argv, stdout=subprocess.PIPE) as save:
                load = _run([*_cli(rootless, engine), "load"], stdin=save.stdout)
                assert save.stdout is not None
                save.stdout.close()
            assert load.returncode == 0, f"{engine} load: {load.stderr}"
    yield Images(tags, ids)
    with rootless_engines_lock(exclusive=False):
        for engine in ("docker-rootless", "podman-rootless"):
            _run([*_cli(rootless, engine), "rmi", "--force", *tags.values()], timeout=120)


def _verify(*argv: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return _run([sys.executable, "-m", "unroot", "verify", *argv], timeout=timeout)


def _server(port: int) -> list[str]:
    return ["--port", str(port), "--", SERVER, "-f", "-v", "-p", str(port), "-h", "/www"]


_MATRICES: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}


def _matrix(
    rootless: Rootless, images: Images, engine_session: Engine, engine: str, kind: str
) -> tuple[int, dict[str, Any]]:
    """``verify --matrix --network host --format json`` once per (engine, image)."""
    key = (engine, kind)
    if key not in _MATRICES:
        with host_privileged_port() as port:
            done = _verify(
                "--image", images.tags[kind], "--matrix", "--network", "host",
                "--format", "json", "--timeout", "30",
                "--label", f"{LABEL}={engine_session.session}",
                *_engine_argv(rootless, engine), *_server(port),
            )  # fmt: skip
        assert done.returncode in (0, 1), done.stderr
        _MATRICES[key] = (done.returncode, json.loads(done.stdout))
    return _MATRICES[key]


def _outcomes(data: dict[str, Any], column: str) -> tuple[str, ...]:
    return tuple(cell[column] for cell in data["cells"])


@pytest.mark.skipif(host_port_start() <= 80, reason="the host lets anyone bind port 80")
@pytest.mark.parametrize("case", CASES, ids="-".join)
def test_matrix(rootless: Rootless, images: Images, engine: Engine, case: tuple[str, str]) -> None:
    code, data = _matrix(rootless, images, engine, *case)
    Draft202012Validator(json.loads(SCHEMA.read_text())).validate(data)
    observed, predicted = _outcomes(data, "observed"), _outcomes(data, "predicted")
    cells = [f"{c['network']}/{c['cap_drop']}{c['cap_add']}{c['no_new_privileges']}" for c in
             data["cells"]]  # fmt: skip
    assert predicted == observed, list(zip(cells, predicted, observed, strict=True))
    assert observed == GROUND_TRUTH[case], list(zip(cells, observed, strict=True))
    assert code == (0 if observed[4] == S else 1), "the requested cell is host/default"
    name, rootless_engine = case[0].split("-")[0], case[0].endswith("rootless")
    assert data["engine"]["name"] == name
    assert data["engine"]["rootless"] is rootless_engine
    assert data["digest"] == images.ids[case[1]]
    for cell in data["cells"]:
        evidence = cell["evidence"]
        if cell["observed"] == S:
            assert evidence["cap_eff"] in ("0x0000000000000400", "0x0000000000000000")
            assert evidence["ip_unprivileged_port_start"] is not None
        if cell["observed"] == E:
            assert any("operation not permitted" in line.lower() for line in evidence["logs"])
        if cell["observed"] == B:
            assert any("bind" in line for line in evidence["logs"]), evidence
    if case[0] == "docker-rootless":
        host_cells = [c for c in data["cells"] if c["network"] == "host"]
        assert all("rootlesskit's network namespace" in c["explanation"] for c in host_cells)


@pytest.mark.skipif(host_port_start() <= 80, reason="the host lets anyone bind port 80")
def test_seed002_facts(rootless: Rootless, images: Images, engine: Engine) -> None:
    """Seed 002's three facts on rootful Docker: non-root on the host network serves :80 with
    the file capability; drop ALL without the add fails at exec; without the file capability
    the bind is refused on the host network and works on a bridge only by the runtime's sysctl
    (0 there)."""
    _, capped = _matrix(rootless, images, engine, "docker", "capped")
    _, plain = _matrix(rootless, images, engine, "docker", "plain")
    by = {(c["network"], tuple(c["cap_drop"]), tuple(c["cap_add"]), c["no_new_privileges"]): c
          for c in capped["cells"]}  # fmt: skip
    host_default = by["host", (), (), False]
    assert host_default["observed"] == S
    assert host_default["evidence"]["cap_eff"] == "0x0000000000000400"
    assert by["host", ("ALL",), (), False]["observed"] == E
    assert by["bridge", ("ALL",), (), False]["observed"] == E
    for cell in plain["cells"]:
        if cell["network"] == "host":
            assert cell["observed"] == B
        else:
            assert cell["observed"] == S
            assert cell["evidence"]["ip_unprivileged_port_start"] == 0
            assert cell["evidence"]["cap_eff"] == "0x" + "0" * 16


@pytest.mark.skipif(host_port_start() <= 80, reason="the host lets anyone bind port 80")
@pytest.mark.parametrize("case", CASES, ids="-".join)
def test_predict_only_equals_observed(
    rootless: Rootless, images: Images, engine: Engine, case: tuple[str, str]
) -> None:
    _, observed = _matrix(rootless, images, engine, *case)
    done = _verify(
        "--image", images.tags[case[1]], "--matrix", "--network", "host", "--predict-only",
        "--format", "json", *_engine_argv(rootless, case[0]), "--port", "80",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert _outcomes(data, "observed") == (None,) * 8
    assert _outcomes(data, "predicted") == _outcomes(observed, "observed")
    assert data["digest"] == observed["digest"]


@pytest.mark.skipif(host_port_start() <= 80, reason="the host lets anyone bind port 80")
def test_junit_and_markdown(images: Images, engine: Engine) -> None:
    with host_privileged_port() as port:
        junit = _verify(
            "--image", images.tags["capped"], "--matrix", "--format", "junit", "--timeout", "30",
            "--label", f"{LABEL}={engine.session}", *_server(port),
        )  # fmt: skip
        markdown = _verify(
            "--image", images.tags["plain"], "--matrix", "--format", "markdown",
            "--timeout", "30", "--label", f"{LABEL}={engine.session}", *_server(port),
        )  # fmt: skip
    assert junit.returncode == 0, junit.stderr
    suites = ET.fromstring(junit.stdout.split("\n", 1)[1])
    suite = suites.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures")) == ("8", "0")
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["engine"] == "docker"
    assert props["digest"] == images.ids["capped"]
    assert len(suite.findall("testcase")) == 8
    assert markdown.returncode == 0, markdown.stderr
    rows = [line for line in markdown.stdout.splitlines() if line.startswith("|")]
    assert len(rows) == 10
    assert all(row.count(" | ") == 6 for row in rows[2:])
    assert images.ids["plain"] in markdown.stdout


@pytest.mark.skipif(host_port_start() <= 80, reason="the host lets anyone bind port 80")
@pytest.mark.parametrize("which", ["docker", "podman-rootless"])
def test_ctrl_c_leaves_nothing(
    rootless: Rootless, images: Images, engine: Engine, which: str
) -> None:
    """SIGINT mid-matrix (every cell waits for a page that never comes): exit 130, and no
    container of the run is left."""
    label = f"{LABEL}={engine.session}-int-{which}"
    cli = _cli(rootless, which)

    def present() -> list[str]:
        done = _run([*cli, "ps", "--all", "--quiet", "--filter", f"label={label}"], timeout=60)
        return done.stdout.split()

    with host_privileged_port() as port:
        proc = subprocess.Popen(
            [sys.executable, "-m", "unroot", "verify", "--image", images.tags["capped"],
             "--matrix", "--http", "/never", "--timeout", "60", "--label", label,
             *_engine_argv(rootless, which), *_server(port)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while len(present()) < 2 and time.monotonic() < deadline:
                assert proc.poll() is None, proc.communicate()
                time.sleep(0.3)
            assert len(present()) >= 2, "the matrix never got under way"
            proc.send_signal(signal.SIGINT)
            _out, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 130, err
    assert present() == []


def test_bad_input(images: Images) -> None:
    for argv, says in (
        (["--image", "unroot-no-such-image:never"], "no image"),
        (["--image", images.tags["capped"], "--cap-add", "NOT_A_CAP"], "NOT_A_CAP"),
        (["--image", images.tags["capped"], "--port", "0"], "--port"),
        (["--exec", "/bin/true", "--port", "80", "--matrix"], "--matrix"),
    ):
        done = _verify(*argv)
        assert done.returncode == 2, (argv, done.stderr)
        assert done.stdout == ""
        assert done.stderr.count("\n") == 1, done.stderr
        assert says in done.stderr


@pytest.mark.parametrize("engine_name", ["docker", "podman"])
def test_unreachable_engine(engine_name: str) -> None:
    done = _verify(
        "--image", "x", "--engine", engine_name, "--host", "unix:///nonexistent/verify.sock"
    )
    assert done.returncode == 3, done.stderr
    assert done.stderr.count("\n") == 1
    assert "does not answer" in done.stderr


@pytest.mark.skipif(host_port_start() <= 80, reason="the host lets anyone bind port 80")
def test_keep_on_failure(images: Images, engine: Engine) -> None:
    done = _verify(
        "--image", images.tags["capped"], "--cap-drop", "ALL", "--keep-on-failure",
        "--format", "json", "--label", f"{LABEL}={engine.session}", "--port", "80",
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    (cell,) = json.loads(done.stdout)["cells"]
    assert (cell["predicted"], cell["observed"]) == (E, E)
    kept = cell["evidence"]["container"]
    try:
        state = engine.docker.inspect(kept)["State"]
        assert state["Status"] == "exited"
    finally:
        engine.docker.remove(kept)


@pytest.mark.skipif(host_port_start() <= 80, reason="the host lets anyone bind port 80")
def test_exec_in_own_netns(engine: Engine) -> None:
    """``--exec``: busybox httpd (from the base image) with and without the file capability,
    as nobody, in a network namespace of its own (sysctl 1024, owned by the host's user
    namespace)."""
    busybox = image_file(engine, engine.base, "/bin/busybox")
    top = tempfile.mkdtemp(prefix="unroot-verify-exec.", dir="/var/tmp")
    try:
        os.chmod(top, 0o755)
        (Path(top) / "www").mkdir(mode=0o755)
        (Path(top) / "www" / "index.html").write_text("ok\n")
        for kind, caps in IMAGE_KINDS.items():
            (Path(top) / kind).mkdir(mode=0o755)
            binary = Path(top) / kind / "httpd"
            binary.write_bytes(busybox)
            binary.chmod(0o755)
            if caps:
                assert _run(["setcap", caps, str(binary)]).returncode == 0
        for kind, outcome in (("capped", S), ("plain", B)):
            done = _verify(
                "--exec", f"{top}/{kind}/httpd", "--port", "80", "--user", "nobody",
                "--format", "json", "--timeout", "20", "--", "-f", "-v", "-p", "80",
                "-h", f"{top}/www",
            )  # fmt: skip
            assert done.returncode == (0 if outcome == S else 1), done.stderr
            (cell,) = json.loads(done.stdout)["cells"]
            assert (cell["network"], cell["predicted"], cell["observed"]) == (
                "own",
                outcome,
                outcome,
            )
    finally:
        subprocess.run(["rm", "-rf", top], check=False)
