"""Seed 002 for real: a non-root image binding :80, under Docker's standard grid, vs the model.

``images/seed002/Dockerfile``: USER 10001, a busybox httpd copy that gets
``cap_net_bind_service=+ep`` in the same RUN that installed it (and, with ``FILECAPS=""``, the
same image without file caps). Each cell runs it detached with one capability setting on the
bridge network (published on a random 127.0.0.1 port) or the host network (127.0.0.1:80 — or,
when other work on this machine holds :80 for more than a few seconds, another free port below
1024 given on the command line: the bind rule is the same), then observes: ``serving`` (an HTTP
200 with the page), ``exec-eperm`` (runc's "exec …: operation not permitted"), ``bind-eacces``
(httpd's "bind: Permission denied"), ``crashed`` or ``timeout``.

The prediction is the model's chain: ``start_creds(profile("docker"), <the image's USER>)`` →
``execve`` with the file caps ``getcap`` reads in the image → ``bind_verdict(80)`` with the
effective set and ``unprivileged_port_start`` (0 on the bridge, the host's value on the host).
Every cell must agree.

Observed on Docker 20.10.24+dfsg1 (Debian 12 docker.io, containerd 1.6.20, runc 1.1.5), Linux
6.18, host ip_unprivileged_port_start 1024 — and identical to KERNEL-NOTES' table:

============================  ===========  ============
cell                          file caps    no file caps
============================  ===========  ============
bridge, default caps          serving      serving
bridge, --cap-drop ALL        exec-eperm   serving
bridge, drop ALL + add NBS    serving      serving
bridge, no-new-privileges     serving      serving
host, default caps            serving      bind-eacces
host, --cap-drop ALL          exec-eperm   bind-eacces
host, drop ALL + add NBS      serving      bind-eacces
host, no-new-privileges       bind-eacces  bind-eacces
============================  ===========  ============

How the failures look on this version: ``docker run -d`` succeeds in both; an exec EPERM
surfaces as exit status 1 with ``exec /usr/local/bin/httpd: operation not permitted`` in the
container's log (runc ≥ 1.1 execs after start; older runcs fail ``docker run`` itself with an
OCI runtime error, also classified exec-eperm), a refused bind as exit status 1 with
``httpd: bind: Permission denied``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from _engine import (
    IMAGES,
    Engine,
    Lab,
    free_port,
    host_port_start,
    host_privileged_port,
    parse_getcap,
    run_and_observe,
)

from unroot.engine.docker import RunOptions
from unroot.model.bind import bind_verdict
from unroot.model.execve import ExecFile, Kernel, execve
from unroot.model.filecaps import FileCaps
from unroot.model.runtimes import profile, start_creds, unprivileged_port_start

pytestmark = [pytest.mark.root, pytest.mark.engine]

DOCKER = profile("docker")
SERVER = "/usr/local/bin/httpd"
SERVE = (SERVER, "-f", "-v", "-h", "/www")  # the image's CMD without its "-p 80"
PAGE = "unroot-seed002"
WAIT = 15.0  # seconds for a cell to serve or fail
FILECAPS = {"filecaps": "cap_net_bind_service=+ep", "nofilecaps": ""}


@dataclass(frozen=True)
class Cell:
    name: str
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    no_new_privileges: bool = False


GRID = (
    Cell("default"),
    Cell("drop-all", cap_drop=("ALL",)),
    Cell("drop-all+nbs", cap_add=("NET_BIND_SERVICE",), cap_drop=("ALL",)),
    Cell("nnp", no_new_privileges=True),
)
NETWORKS = ("bridge", "host")
#: (image, network, cell) → outcome, as observed on 20.10.24 with the host sysctl at 1024.
OBSERVED_20_10 = {
    **{("filecaps", "bridge", c): "serving" for c in ("default", "drop-all+nbs", "nnp")},
    ("filecaps", "bridge", "drop-all"): "exec-eperm",
    ("filecaps", "host", "default"): "serving",
    ("filecaps", "host", "drop-all"): "exec-eperm",
    ("filecaps", "host", "drop-all+nbs"): "serving",
    ("filecaps", "host", "nnp"): "bind-eacces",
    **{("nofilecaps", "bridge", c.name): "serving" for c in GRID},
    **{("nofilecaps", "host", c.name): "bind-eacces" for c in GRID},
}
CASES = [(image, net, cell) for image in FILECAPS for net in NETWORKS for cell in GRID]


@dataclass(frozen=True)
class Image:
    tag: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    file_caps: FileCaps | None


def _docker_user(spec: str) -> tuple[int, int, tuple[int, ...]]:
    """Numeric ``USER uid[:gid]`` as Docker resolves it when /etc/passwd has no entry
    (observed: no group → gid 0; the primary gid is also the one supplementary group)."""
    match = re.fullmatch(r"(\d+)(?::(\d+))?", spec)
    assert match, f"not a numeric USER: {spec!r}"
    gid = int(match.group(2) or 0)
    return int(match.group(1)), gid, (gid,)


@pytest.fixture(scope="module")
def images(module_lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Image]:
    built = {}
    context = IMAGES / "seed002"
    for name, caps in FILECAPS.items():
        tag = module_lab.build(context, f"seed002-{name}", build_args={"FILECAPS": caps})
        user = module_lab.docker.inspect(tag, "image")["Config"]["User"]
        done = module_lab.run(tag, [SERVER], RunOptions(entrypoint="getcap"))
        assert done.ok, done.stderr
        found = parse_getcap(done.stdout)
        file_caps = FileCaps.from_text(found[SERVER]) if SERVER in found else None
        assert (file_caps is not None) == bool(caps), f"{tag}: getcap says {done.stdout!r}"
        built[name] = Image(tag, *_docker_user(user), file_caps)
    return built


def predict(
    image: Image, network: str, cell: Cell, host_value: int, port: int = 80
) -> tuple[str, str]:
    """The model's outcome for one cell, and its explanation."""
    kernel = Kernel.parse(os.uname().release)
    host = network == "host"
    creds = start_creds(
        DOCKER,
        image.uid,
        image.gid,
        image.groups,
        cell.cap_add,
        cell.cap_drop,
        cell.no_new_privileges,
        host,
        last_cap=kernel.last_cap,
    )
    result = execve(creds, ExecFile(SERVER, file_caps=image.file_caps), kernel=kernel)
    why = [r.text for r in result.reasons]
    if result.errno == "EPERM":
        return "exec-eperm", "; ".join(why)
    start = unprivileged_port_start(DOCKER, host, host_value)
    verdict = bind_verdict(port, effective=result.creds.effective, unprivileged_port_start=start)
    why += [r.text for r in verdict.reasons]
    return ("serving" if verdict.allowed else "bind-eacces"), "; ".join(why)


def observe(
    lab: Lab, image: Image, network: str, cell: Cell, host_port: int = 80
) -> tuple[str, str]:
    """Run one cell; (outcome, evidence). On the host network the server listens on
    ``host_port`` (the image's command says 80; another port replaces the command)."""
    port = host_port if network == "host" else free_port()
    command = () if port == 80 or network != "host" else (*SERVE, "-p", str(port))
    options = RunOptions(
        cap_add=cell.cap_add,
        cap_drop=cell.cap_drop,
        no_new_privileges=cell.no_new_privileges,
        network=network,
        publish=() if network == "host" else (f"127.0.0.1:{port}:80",),
    )
    return run_and_observe(lab, image.tag, command, options, port=port, page=PAGE, wait=WAIT)


@pytest.mark.parametrize("case", CASES, ids=[f"{i}-{n}-{c.name}" for i, n, c in CASES])
def test_seed002_cell(
    lab: Lab, engine: Engine, images: dict[str, Image], case: tuple[str, str, Cell]
) -> None:
    name, network, cell = case
    image = images[name]
    host_value = host_port_start()
    if network == "host":
        with host_privileged_port() as port:
            observed, evidence = observe(lab, image, network, cell, port)
    else:
        port = 80
        observed, evidence = observe(lab, image, network, cell)
    predicted, why = predict(image, network, cell, host_value, port)
    assert observed == predicted, (
        f"{name} --network {network} {cell}: model predicts {predicted} ({why}), "
        f"{engine.describe()} did {observed} ({evidence})"
    )
    if host_value > port:
        assert observed == OBSERVED_20_10[(name, network, cell.name)], (
            f"{engine.describe()} differs from the table observed on 20.10.24: {evidence}"
        )


def test_grid_is_complete() -> None:
    assert set(OBSERVED_20_10) == {(i, n, c.name) for i, n, c in CASES}
    assert Path(IMAGES / "seed002" / "Dockerfile").is_file()
