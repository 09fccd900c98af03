"""doctor/patterns.py on the messages the container engines print here, produced for real.

* runc (through the rootful Docker of the session): ``docker run --user 1000 --cap-drop
  NET_BIND_SERVICE`` of busybox's ``true`` with ``cap_net_bind_service=+ep`` (images/capped) — runc
  1.1's "exec /usr/local/bin/true: operation not permitted";
* crun, run directly on an OCI bundle exported from the same image (no engine here uses crun);
* rootless Docker and rootless Podman of ``scripts/rootless-engines.sh`` (``-p 80:80``), under
  the shared rootless-engines lock, as tests/engine/test_rootless_engines.py does.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from _engine import IMAGES, LABEL, Engine, Lab, host_port_start, rootless_engines_lock

from unroot.doctor.patterns import Ask, recognise
from unroot.engine.docker import RunOptions

pytestmark = [pytest.mark.root, pytest.mark.engine]

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "rootless-engines.sh"
USER = os.environ.get("UNROOT_ROOTLESS_USER", "unroot-rl")
DOCKER_CLI = os.environ.get("UNROOT_DOCKER", "/usr/bin/docker")
CAPPED = "/usr/local/bin/true"
DROPPED = RunOptions(user="1000", cap_drop=("NET_BIND_SERVICE",))


def _run(argv: Sequence[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def capped(module_lab: Lab) -> str:
    return module_lab.build(IMAGES / "capped", "patterns-capped")


# -- runc --------------------------------------------------------------------------------------


def test_runc_exec_eperm(lab: Lab, capped: str) -> None:
    done = lab.run(capped, [CAPPED], DROPPED)
    assert done.returncode != 0
    out = done.stderr + done.stdout
    # runc >= 1.1 (Debian 12: 1.1.5): the exec error reaches the container's stderr
    assert f"exec {CAPPED}: operation not permitted" in out, out
    (match,) = recognise(out)
    assert match.pattern == "runc-exec-eperm"
    assert match.asks == Ask(exe=CAPPED)
    assert match.errno == "EPERM"


def test_runc_exec_eperm_in_logs(lab: Lab, capped: str) -> None:
    """Detached: the same message, read back with ``docker logs``."""
    started = lab.start(capped, [CAPPED], DROPPED)
    assert started.ok, started.stderr
    lab.docker.call(["wait", started.stdout], timeout=60)
    out, err = lab.docker.logs(started.stdout)
    assert [m.pattern for m in recognise(err + out)] == ["runc-exec-eperm"], err + out


def test_runc_allows_it_with_the_capability(lab: Lab, capped: str) -> None:
    """The control: with the capability in the bounding set the same exec succeeds."""
    done = lab.run(capped, [CAPPED], RunOptions(user="1000"))
    assert done.ok, done.stderr
    assert recognise(done.stderr + done.stdout) == ()


@pytest.mark.parametrize(
    ("user", "program", "said"),
    [
        (None, "/etc/passwd", 'exec: "/etc/passwd": permission denied'),
        ("1000", "/root/x", 'exec: "/root/x": stat /root/x: permission denied'),
    ],
)
def test_runc_exec_eacces(
    engine: Engine, lab: Lab, user: str | None, program: str, said: str
) -> None:
    """No execute bit, or a directory the user may not search: runc's LookPath refuses it
    before the exec (docker run itself fails, exit 126)."""
    done = lab.run(engine.base, [program], RunOptions(user=user))
    assert done.returncode == 126, done.stderr
    assert said in done.stderr, done.stderr
    (match,) = recognise(done.stderr)
    assert match.pattern == "runc-exec-eacces"
    assert match.asks == Ask(paths=(program,), want="x", exe=program)


# -- crun --------------------------------------------------------------------------------------


@pytest.fixture
def bundle(engine: Engine, capped: str) -> Iterator[Path]:
    """An OCI bundle whose rootfs is the capped image (file capabilities kept)."""
    if shutil.which("crun") is None:
        pytest.skip("crun is not installed here (apt-get install crun)")
    top = Path(tempfile.mkdtemp(prefix="unroot-crun."))
    rootfs = top / "rootfs"
    rootfs.mkdir()
    created = engine.docker.call(["create", "--label", f"{LABEL}={engine.session}", capped])
    container = created.stdout.strip()
    try:
        tar = top / "rootfs.tar"
        engine.docker.call(["export", "--output", str(tar), container], timeout=120)
        unpacked = _run(
            ["tar", "-x", "--xattrs", "--xattrs-include=security.capability",
             "-f", str(tar), "-C", str(rootfs)]
        )  # fmt: skip
        assert unpacked.returncode == 0, unpacked.stderr
        tar.unlink()
        getcap = _run(["getcap", str(rootfs / CAPPED.lstrip("/"))])
        assert "cap_net_bind_service=ep" in getcap.stdout, getcap.stdout + getcap.stderr
        yield top
    finally:
        engine.docker.remove(container)
        shutil.rmtree(top)


def _crun_spec(bundle: Path, command: list[str], drop: bool) -> None:
    made = subprocess.run(
        ["crun", "spec"], cwd=bundle, capture_output=True, text=True, timeout=30, check=False
    )
    assert made.returncode == 0, made.stderr
    config = json.loads((bundle / "config.json").read_text())
    process = config["process"]
    process["terminal"] = False
    process["args"] = command
    process["user"] = {"uid": 1000, "gid": 1000}
    if drop:
        for kind, caps in process["capabilities"].items():
            process["capabilities"][kind] = [c for c in caps if c != "CAP_NET_BIND_SERVICE"]
    else:
        process["capabilities"]["bounding"].append("CAP_NET_BIND_SERVICE")
    config["linux"].pop("resources", None)
    (bundle / "config.json").write_text(json.dumps(config))


def _crun_run(bundle: Path) -> subprocess.CompletedProcess[str]:
    """``crun run`` in a mount namespace of its own without the cgroup2 hierarchy: crun 1.8
    refuses the hybrid layout (cgroup v1 and /sys/fs/cgroup/unified) this host has."""
    name = f"unroot-patterns-{os.getpid()}"
    script = (
        "mountpoint -q /sys/fs/cgroup/unified && umount /sys/fs/cgroup/unified; "
        f'exec crun --cgroup-manager=disabled --root "$1/state" run -b "$1" {name}'
    )
    try:
        return _run(["unshare", "--mount", "sh", "-c", script, "sh", str(bundle)], timeout=60)
    finally:
        _run(["crun", "--root", str(bundle / "state"), "delete", "--force", name], timeout=30)


def test_crun_exec_eperm(bundle: Path) -> None:
    _crun_spec(bundle, [CAPPED], drop=True)
    done = _crun_run(bundle)
    out = done.stderr + done.stdout
    assert done.returncode != 0
    assert f"exec container process `{CAPPED}`: Operation not permitted" in out, out
    (match,) = recognise(out)
    assert match.pattern == "crun-exec-eperm"
    assert match.asks == Ask(exe=CAPPED)


def test_crun_allows_it_with_the_capability(bundle: Path) -> None:
    _crun_spec(bundle, [CAPPED], drop=False)
    done = _crun_run(bundle)
    assert done.returncode == 0, done.stderr + done.stdout


# -- rootless engines: -p 80:80 ----------------------------------------------------------------


@pytest.fixture(scope="module")
def rootless_env(engine: Engine) -> dict[str, str]:
    """Both rootless engines up (started by the script when needed), or a skip saying why."""
    with rootless_engines_lock():
        done = _run(["bash", str(SCRIPT), "start"], timeout=300)
    if done.returncode != 0:
        why = (done.stderr or done.stdout).strip().splitlines() or ["(no output)"]
        pytest.skip(f"rootless engines not up: {why[-1]}")
    env = _run(["bash", str(SCRIPT), "env"]).stdout.split()
    return dict(line.split("=", 1) for line in env)


@pytest.fixture(autouse=True)
def _rootless_lock() -> Iterator[None]:
    """Shared, as every test that uses the rootless engines holds it."""
    with rootless_engines_lock():
        yield


privileged_80 = pytest.mark.skipif(
    host_port_start() <= 80, reason="the host lets anyone bind port 80"
)


@privileged_80
def test_rootless_docker_privileged_port(engine: Engine, rootless_env: dict[str, str]) -> None:
    label = f"{LABEL}={engine.session}"
    done = _run(
        [DOCKER_CLI, "-H", rootless_env["DOCKER_HOST"], "run", "--rm", "--label", label,
         "-p", "80:80", engine.base, "true"]
    )  # fmt: skip
    assert done.returncode != 0
    out = done.stderr
    assert "or set CAP_NET_BIND_SERVICE on rootlesskit binary" in out, out
    (match,) = recognise(out)
    assert match.pattern == "rootless-docker-privileged-port"
    assert match.asks == Ask(ports=(80,), proto="tcp", engine="docker", rootless=True)
    assert match.line.startswith("docker: Error response from daemon: ")


@privileged_80
def test_rootless_podman_privileged_port(engine: Engine, rootless_env: dict[str, str]) -> None:
    entry = pwd.getpwnam(USER)
    as_user = [
        "setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--init-groups",
        "env", "-i", "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
        f"HOME={entry.pw_dir}", f"USER={USER}", f"LOGNAME={USER}",
        f"XDG_RUNTIME_DIR=/run/user/{entry.pw_uid}",
    ]  # fmt: skip
    label = f"{LABEL}={engine.session}"
    done = subprocess.run(
        [*as_user, "podman", "run", "--rm", "--label", label, "-p", "80:80", engine.base, "true"],
        capture_output=True, text=True, timeout=120, check=False, cwd=entry.pw_dir,
    )  # fmt: skip
    assert done.returncode != 0
    out = done.stderr
    assert "Error: rootlessport cannot expose privileged port 80" in out, out
    (match,) = recognise(out)
    assert match.pattern == "rootless-podman-privileged-port"
    assert match.asks == Ask(ports=(80,), proto="tcp", engine="podman", rootless=True)
