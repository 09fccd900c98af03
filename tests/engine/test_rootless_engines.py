"""Ground truth of the rootless engines that `unroot doctor --rootless` and `unroot verify` (issues
10 and 11) will explain: rootless Docker (docker.io's dockerd-rootless.sh under rootlesskit) and
rootless Podman, both run by ``scripts/rootless-engines.sh`` as the test user (``unroot-rl``).

The engines run as that user; the tests run as root and reach them through their sockets
(``docker -H unix:///run/user/UID/docker.sock``, ``podman --remote --url
unix:///run/user/UID/podman/podman.sock``), or run ``podman`` as the user (``setpriv``) where the
message people paste comes from the user's own CLI. Nothing of unroot runs as the user.

Observed on Debian 12 (docker.io 20.10.24+dfsg1, rootlesskit 1.1.0, slirp4netns 1.2.0, podman
4.3.1 with runc, Linux 6.18, cgroup v1 without systemd) — see docs/engines.md:

* rootless Docker, ``-p 80:80``: exit 125, "cannot expose privileged port 80, you can add
  'net.ipv4.ip_unprivileged_port_start=80' to /etc/sysctl.conf (currently 1024), or set
  CAP_NET_BIND_SERVICE on rootlesskit binary, or choose a larger port number (>= 1024): listen
  tcp4 0.0.0.0:80: bind: permission denied" (rootlesskit's builtin port driver binds in the
  host's network namespace, as the user); an unprivileged port serves;
* rootless Podman, ``-p 80:80``: "Error: rootlessport cannot expose privileged port 80, you can
  add 'net.ipv4.ip_unprivileged_port_start=80' to /etc/sysctl.conf (currently 1024), or choose a
  larger port number (>= 1024): listen tcp 0.0.0.0:80: bind: permission denied" — no setcap
  advice: rootlessport runs inside the user namespace;
* rootlesskit has no file capability and its process CapEff is 0; after ``setcap
  cap_net_bind_service=ep`` the running process is unchanged (restart needed) and ``-p 80:80``
  is still refused; after a restart CapEff is 0x400 and ``-p 80:80`` serves;
* container uid n >= 1 is host uid subuid_start + n - 1 (uid_map ``0 UID 1`` + ``1 START
  COUNT``), on both engines.
"""

from __future__ import annotations

import errno
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from _engine import (
    LABEL,
    Engine,
    free_port,
    host_port_start,
    host_privileged_port,
    http_get,
    rootless_engines_lock,
)

pytestmark = [pytest.mark.root, pytest.mark.engine]

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "rootless-engines.sh"
USER = os.environ.get("UNROOT_ROOTLESS_USER", "unroot-rl")
STATE = Path("/run/unroot-rootless") / USER
DOCKER_CLI = os.environ.get("UNROOT_DOCKER", "/usr/bin/docker")
CAP_NET_BIND_SERVICE = 1 << 10
#: Tests that restart the rootless dockerd (see _rootless_lock).
RESTARTS_DOCKERD = {"test_setcap_rootlesskit_needs_restart"}
#: Serves /w/index.html ("ok") on :80 inside the container (busybox httpd of the base image).
HTTPD = ["sh", "-c", "mkdir -p /w && echo ok >/w/index.html && exec httpd -f -p 80 -h /w"]


@dataclass(frozen=True)
class Rootless:
    uid: int
    gid: int
    home: str
    subuid_start: int
    docker_host: str
    podman_url: str
    image: str
    session: str
    summary: str


def _run(
    argv: Sequence[str], timeout: float = 60, cwd: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv), capture_output=True, text=True, timeout=timeout, check=False, cwd=cwd
    )


def _script(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return _run(["bash", str(SCRIPT), *args], timeout=timeout)


def _subid_start(path: str, user: str) -> int:
    for line in Path(path).read_text().splitlines():
        name, start, _count = line.split(":")
        if name == user:
            return int(start)
    raise AssertionError(f"{user} has no range in {path}")


@pytest.fixture(scope="module")
def rootless(engine: Engine) -> Iterator[Rootless]:
    """Both rootless engines up (started by the script when needed), or a skip saying why."""
    done = _script("start")
    if done.returncode != 0:
        why = (done.stderr or done.stdout).strip().splitlines() or ["(no output)"]
        pytest.skip(f"rootless engines not up: {why[-1]}")
    env = dict(line.split("=", 1) for line in _script("env").stdout.split())
    entry = pwd.getpwnam(USER)
    found = Rootless(
        uid=entry.pw_uid,
        gid=entry.pw_gid,
        home=entry.pw_dir,
        subuid_start=_subid_start("/etc/subuid", USER),
        docker_host=env["DOCKER_HOST"],
        podman_url=env["CONTAINER_HOST"],
        image=engine.base,
        session=engine.session,
        summary=done.stdout.strip(),
    )
    yield found
    label = f"label={LABEL}={found.session}"
    for kind in ("docker", "podman"):
        cli = _engine_argv(found, kind)
        ids = _run([*cli, "ps", "-aq", "--filter", label]).stdout.split()
        if ids:
            _run([*cli, "rm", "-f", *_NO_GRACE[kind], *ids], timeout=120)


@pytest.fixture(autouse=True)
def _rootless_lock(request: pytest.FixtureRequest) -> Iterator[None]:
    """Shared while a test uses the engines; exclusive for one that restarts rootless dockerd."""
    with rootless_engines_lock(exclusive=request.node.name in RESTARTS_DOCKERD):
        yield


def _rdocker_argv(rl: Rootless) -> list[str]:
    return [DOCKER_CLI, "-H", rl.docker_host]


def _rpodman_argv(rl: Rootless) -> list[str]:
    return ["podman", "--remote", "--url", rl.podman_url]


def _as_user_argv(rl: Rootless) -> list[str]:
    """Run a command as the test user with the environment of its login."""
    return [
        "setpriv",
        f"--reuid={rl.uid}",
        f"--regid={rl.gid}",
        "--init-groups",
        "env",
        "-i",
        "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
        f"HOME={rl.home}",
        f"USER={USER}",
        f"LOGNAME={USER}",
        f"XDG_RUNTIME_DIR=/run/user/{rl.uid}",
    ]


def _engine_argv(rl: Rootless, name: str) -> list[str]:
    return _rdocker_argv(rl) if name == "docker" else _rpodman_argv(rl)


def _container(
    rl: Rootless, engine: str, *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``run --rm --label ...`` on one rootless engine."""
    label = f"{LABEL}={rl.session}"
    return _run(
        [*_engine_argv(rl, engine), "run", "--rm", "--label", label, *args], timeout=timeout
    )


#: ``rm -f`` without the stop timeout: podman's ``rm -f`` first sends SIGTERM and waits 10 s,
#: which an httpd running as PID 1 ignores; docker's ``rm -f`` kills at once.
_NO_GRACE = {"docker": [], "podman": ["--time", "0"]}


def _wait_http(port: int, seconds: float = 20) -> str | None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        body = http_get(port, "/index.html")
        if body is not None:
            return body
        time.sleep(0.3)
    return None


def _serves(rl: Rootless, kind: str, publish: str, port: int) -> str | None:
    """Start the httpd with ``-p publish``, GET it on 127.0.0.1:port, remove it."""
    label = f"{LABEL}={rl.session}"
    cli = _engine_argv(rl, kind)
    started = _run([*cli, "run", "-d", "--label", label, "-p", publish, rl.image, *HTTPD])
    assert started.returncode == 0, f"{kind} run -p {publish}: {started.stderr.strip()}"
    name = started.stdout.strip()
    try:
        return _wait_http(port)
    finally:
        _run([*cli, "rm", "-f", *_NO_GRACE[kind], name], timeout=60)


def _pid(path: Path) -> int:
    return int(path.read_text().strip())


def _status_field(pid: int, field: str) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def _rootlesskit_pid() -> int:
    pid = _pid(STATE / "dockerd.pid")
    assert Path(f"/proc/{pid}/comm").read_text().strip() == "rootlesskit"
    return pid


def _capeff(pid: int) -> int:
    return int(_status_field(pid, "CapEff"), 16)


def _file_caps(path: str) -> bytes | None:
    try:
        return os.getxattr(path, "security.capability")
    except OSError as exc:
        if exc.errno == errno.ENODATA:
            return None
        raise


def _restore_file_caps(path: str, value: bytes | None) -> None:
    """Put ``security.capability`` back as it was (absent, or these exact bytes)."""
    if value is not None:
        os.setxattr(path, "security.capability", value)
        return
    try:
        os.removexattr(path, "security.capability")
    except OSError as exc:
        if exc.errno != errno.ENODATA:
            raise


def _privileged_refusal_docker(port: int) -> str:
    return (
        f"cannot expose privileged port {port}, you can add "
        f"'net.ipv4.ip_unprivileged_port_start={port}' to /etc/sysctl.conf "
        f"(currently {host_port_start()}), or set CAP_NET_BIND_SERVICE on rootlesskit binary, "
        f"or choose a larger port number (>= {host_port_start()}): "
        f"listen tcp4 0.0.0.0:{port}: bind: permission denied"
    )


def _privileged_refusal_podman(port: int) -> str:
    return (
        f"rootlessport cannot expose privileged port {port}, you can add "
        f"'net.ipv4.ip_unprivileged_port_start={port}' to /etc/sysctl.conf "
        f"(currently {host_port_start()}), or choose a larger port number "
        f"(>= {host_port_start()}): listen tcp 0.0.0.0:{port}: bind: permission denied"
    )


# -- the engines say they are rootless ---------------------------------------------------------


def test_engines_report_rootless(rootless: Rootless) -> None:
    info = _run([*_rdocker_argv(rootless), "info", "--format", "{{json .SecurityOptions}}"])
    assert "name=rootless" in info.stdout, info.stdout + info.stderr
    podman = _run([*_rpodman_argv(rootless), "info", "--format", "{{.Host.Security.Rootless}}"])
    assert podman.stdout.strip() == "true", podman.stderr
    driver = _run([*_rpodman_argv(rootless), "info", "--format", "{{.Store.GraphDriverName}}"])
    assert driver.stdout.strip() == "overlay", "the user's Podman should use native overlay"


# -- privileged ports --------------------------------------------------------------------------


@pytest.mark.skipif(host_port_start() <= 80, reason="the host lets anyone bind port 80")
def test_docker_refuses_privileged_port(rootless: Rootless) -> None:
    done = _container(rootless, "docker", "-p", "80:80", rootless.image, "true")
    assert done.returncode == 126, done.stderr
    assert (
        "Error starting userland proxy: error while calling PortManager.AddPort(): " in done.stderr
    )
    assert _privileged_refusal_docker(80) in done.stderr, done.stderr


@pytest.mark.parametrize("kind", ["docker", "podman"])
def test_unprivileged_port_serves(rootless: Rootless, kind: str) -> None:
    port = free_port()
    assert _serves(rootless, kind, f"{port}:80", port) == "ok\n"


@pytest.mark.skipif(host_port_start() <= 80, reason="the host lets anyone bind port 80")
def test_podman_refuses_privileged_port(rootless: Rootless) -> None:
    # The user's own CLI: the message people paste.
    own = _run(
        [*_as_user_argv(rootless), "podman", "run", "--rm", "-p", "80:80", rootless.image, "true"],
        cwd=rootless.home,
    )
    assert own.returncode == 126, own.stderr
    assert f"Error: {_privileged_refusal_podman(80)}" in own.stderr, own.stderr
    # Through the service (the API adds its own prefix).
    remote = _container(rootless, "podman", "-p", "80:80", rootless.image, "true")
    assert remote.returncode == 126, remote.stderr
    assert re.search(
        r"Error: preparing container [0-9a-f]{64} for attach: "
        + re.escape(_privileged_refusal_podman(80)),
        remote.stderr,
    ), remote.stderr


# -- rootlesskit's capability: the file and the running process --------------------------------


def test_rootlesskit_file_and_process_capability(rootless: Rootless) -> None:
    binary = shutil.which("rootlesskit")
    assert binary == "/usr/bin/rootlesskit"
    pid = _rootlesskit_pid()
    file_caps = _file_caps(binary)
    if file_caps is None:  # Debian's package, as installed
        assert _run(["getcap", binary]).stdout == ""
        assert _capeff(pid) == 0
        assert _status_field(pid, "CapPrm") == "0000000000000000"
    else:  # a host where someone set it: the process has it only if started since
        pytest.skip(f"{binary} carries a file capability here: {_run(['getcap', binary]).stdout}")


# -- the rootless dockerd's open-file limit ----------------------------------------------------


def test_dockerd_open_file_limit(rootless: Rootless) -> None:
    dockerd = _pid(Path(f"/run/user/{rootless.uid}/docker.pid"))
    assert Path(f"/proc/{dockerd}/comm").read_text().strip() == "dockerd"
    limits = Path(f"/proc/{dockerd}/limits").read_text()
    match = re.search(r"^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)\s+files", limits, re.M)
    assert match, limits
    soft, hard = match.groups()
    assert soft == hard, "the script sets soft = hard (ulimit -n)"
    assert f"nofile={soft}" in rootless.summary
    wanted = os.environ.get("UNROOT_ROOTLESS_NOFILE")
    if wanted:
        assert soft == wanted
    # Containers inherit it (no default-ulimits in the rootless daemon.json).
    inside = _container(rootless, "docker", rootless.image, "sh", "-c", "ulimit -n")
    assert inside.returncode == 0, inside.stderr
    assert inside.stdout.strip() == soft


# -- uid mapping -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["docker", "podman"])
def test_uid_mapping_bind_mount(rootless: Rootless, kind: str) -> None:
    """Container uid n >= 1 is host uid subuid_start + n - 1: a 0700 directory owned by
    subuid_start + 1000 is readable by container uid 1001 only."""
    if kind == "docker":
        dockerd = _pid(Path(f"/run/user/{rootless.uid}/docker.pid"))
        uid_map = Path(f"/proc/{dockerd}/uid_map").read_text().split()
        assert uid_map == ["0", str(rootless.uid), "1", "1", str(rootless.subuid_start), "65536"]
    owner = rootless.subuid_start + 1000
    top = tempfile.mkdtemp(prefix="unroot-rl-map.", dir="/var/tmp")
    try:
        os.chmod(top, 0o755)
        shared = Path(top) / "d"
        shared.mkdir(mode=0o700)
        (shared / "marker").write_text("x")
        os.chown(shared / "marker", owner, owner)
        os.chown(shared, owner, owner)
        os.chmod(shared, 0o700)
        mount = f"{shared}:/d"
        readable = _container(
            rootless, kind, "--user", "1001", "-v", mount, rootless.image, "ls", "/d"
        )
        assert readable.returncode == 0, readable.stderr
        assert readable.stdout.split() == ["marker"]
        other = _container(
            rootless, kind, "--user", "1002", "-v", mount, rootless.image, "ls", "/d"
        )
        assert other.returncode != 0
        assert "Permission denied" in other.stderr, other.stderr
        stat = _container(rootless, kind, "-v", mount, rootless.image, "stat", "-c", "%u", "/d")
        assert stat.stdout.strip() == "1001", "seen from inside: container uid 1001"
    finally:
        shutil.rmtree(top)


# -- setcap on rootlesskit: takes effect only after a restart ----------------------------------


@contextmanager
def _term_raises() -> Iterator[None]:
    """SIGTERM (e.g. from `timeout`) raises here, so that ``finally`` restores rootlesskit."""

    def _raise(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _restart_rootless_docker() -> None:
    stopped = _script("stop", "docker", timeout=60)
    assert stopped.returncode == 0, stopped.stderr
    started = _script("start", timeout=180)
    assert started.returncode == 0, started.stderr


@pytest.mark.skipif(host_port_start() <= 80, reason="the host lets anyone bind port 80")
def test_setcap_rootlesskit_needs_restart(rootless: Rootless) -> None:
    binary = "/usr/bin/rootlesskit"
    before = _file_caps(binary)
    if before is not None:
        pytest.skip(f"{binary} already carries a file capability here")
    getfattr_before = _run(["getfattr", "-n", "security.capability", binary])
    old_pid = _rootlesskit_pid()
    restarted = False
    with host_privileged_port(80) as port, _term_raises():
        try:
            setcap = _run(["setcap", "cap_net_bind_service=ep", binary])
            assert setcap.returncode == 0, setcap.stderr
            assert _run(["getcap", binary]).stdout.split() == [binary, "cap_net_bind_service=ep"]
            # The running rootlesskit keeps the capabilities it was executed with.
            assert _rootlesskit_pid() == old_pid
            assert _capeff(old_pid) == 0, "restart needed: the file has it, the process not"
            refused = _container(rootless, "docker", "-p", f"{port}:80", rootless.image, "true")
            assert refused.returncode == 126
            assert _privileged_refusal_docker(port) in refused.stderr, refused.stderr
            restarted = True
            _restart_rootless_docker()
            new_pid = _rootlesskit_pid()
            assert new_pid != old_pid
            assert _capeff(new_pid) == CAP_NET_BIND_SERVICE
            assert _serves(rootless, "docker", f"{port}:80", port) == "ok\n"
        finally:
            _restore_file_caps(binary, before)
            assert _file_caps(binary) == before
            after = _run(["getfattr", "-n", "security.capability", binary])
            assert (after.returncode, after.stdout, after.stderr) == (
                getfattr_before.returncode,
                getfattr_before.stdout,
                getfattr_before.stderr,
            )
            if restarted:
                _restart_rootless_docker()
    assert _capeff(_rootlesskit_pid()) == 0
