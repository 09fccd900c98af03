"""``unroot doctor --rootless`` against the live rootless engines of the test user: why a
privileged port cannot be published (rootlesskit's capability vs rootlessport), the uid
mapping of a bind mount, the daemon's open-file limit — compared with what the engines do.

The engines, their fixture and helpers are those of ``test_rootless_engines.py`` (the ground
truth); this file asks doctor the same questions and compares."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from _engine import host_port_start, host_privileged_port, rootless_engines_lock
from test_rootless_engines import (
    USER,
    Rootless,
    _capeff,
    _container,
    _file_caps,
    _pid,
    _privileged_refusal_docker,
    _privileged_refusal_podman,
    _restart_rootless_docker,
    _restore_file_caps,
    _rootlesskit_pid,
    _run,
    _serves,
    _term_raises,
)
from test_rootless_engines import (
    rootless as _rootless_fixture,  # noqa: F401 - the module-scoped fixture `rootless`, shared
)

pytestmark = [pytest.mark.root, pytest.mark.engine]


@pytest.fixture(scope="module")
def rootless(_rootless_fixture: Rootless) -> Rootless:  # noqa: F811 - the imported fixture
    """The engines of test_rootless_engines.py's fixture (started there, cleaned up there)."""
    return _rootless_fixture


#: Tests that restart rootless dockerd: they hold the engines' lock alone.
RESTARTS_DOCKERD = {"test_apply_setcap_restart_serves_undo"}


@pytest.fixture(autouse=True)
def _engines_lock(request: pytest.FixtureRequest) -> Iterator[None]:
    with rootless_engines_lock(exclusive=request.node.name in RESTARTS_DOCKERD):
        yield


def _unroot(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "unroot", *argv],
        capture_output=True, text=True, timeout=120, check=False,
        env=None if env is None else {**os.environ, **env},
    )  # fmt: skip


def _doctor(*argv: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, object]]:
    done = _unroot("doctor", "--format", "json", *argv, env=env)
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


def _verdicts(data: dict[str, object]) -> list[dict[str, object]]:
    verdicts = data["verdicts"]
    assert isinstance(verdicts, list)
    return verdicts


@pytest.mark.skipif(host_port_start() <= 80, reason="the host lets anyone bind port 80")
def test_docker_privileged_port_explained(rootless: Rootless) -> None:
    refused = _container(rootless, "docker", "-p", "80:80", rootless.image, "true")
    assert _privileged_refusal_docker(80) in refused.stderr, refused.stderr
    code, data = _doctor("--rootless", USER, "--port", "80")
    assert code == 1
    (check,) = _verdicts(data)
    assert (check["kind"], check["allowed"], check["errno"]) == ("bind", False, "EACCES")
    assert check["identity"]["uid"] == rootless.uid  # type: ignore[index]
    commands = [f["command"] for f in check["fixes"]]  # type: ignore[attr-defined]
    assert commands[0] == "setcap cap_net_bind_service=ep /usr/bin/rootlesskit"
    assert "net.ipv4.ip_unprivileged_port_start=80" in commands[1]
    assert not any("=0" in c for c in commands), "never the sysctl at 0"
    codes = [r["code"] for r in check["reasons"]]  # type: ignore[attr-defined]
    assert "rootlesskit-binds" in codes


@pytest.mark.skipif(host_port_start() <= 80, reason="the host lets anyone bind port 80")
def test_podman_privileged_port_explained_without_setcap(rootless: Rootless) -> None:
    refused = _container(rootless, "podman", "-p", "80:80", rootless.image, "true")
    assert _privileged_refusal_podman(80) in refused.stderr, refused.stderr
    code, data = _doctor("--rootless", USER, "--engine", "podman", "--port", "80")
    assert code == 1
    (check,) = _verdicts(data)
    assert (check["allowed"], check["errno"]) == (False, "EACCES")
    commands = [f["command"] for f in check["fixes"]]  # type: ignore[attr-defined]
    assert commands
    assert all("setcap" not in c for c in commands)
    assert "net.ipv4.ip_unprivileged_port_start=80" in commands[0]


def test_unprivileged_port_publishes(rootless: Rootless) -> None:
    for engine in ("docker", "podman"):
        code, data = _doctor("--rootless", USER, "--engine", engine, "--port", "8080")
        assert code == 0, data
        assert _verdicts(data)[0]["allowed"] is True


@pytest.mark.parametrize("kind", ["docker", "podman"])
def test_uid_mapping_agrees_with_the_engine(rootless: Rootless, kind: str) -> None:
    """A 0700 directory owned by subuid_start + 1000: doctor and the engine agree that
    container uid 1001 reads it and 1002 does not."""
    owner = rootless.subuid_start + 1000
    top = tempfile.mkdtemp(prefix="unroot-doctor-map.", dir="/var/tmp")
    try:
        os.chmod(top, 0o755)
        shared = Path(top) / "d"
        shared.mkdir(mode=0o700)
        os.chown(shared, owner, owner)
        for uid, allowed in (("1001", True), ("1002", False)):
            ran = _container(
                rootless, kind, "--user", uid, "-v", f"{shared}:/d", rootless.image, "ls", "/d"
            )
            assert (ran.returncode == 0) is allowed, ran.stderr
            _code, data = _doctor(
                "--rootless", USER, "--engine", kind, "--user", uid, "--read", str(shared)
            )
            (check,) = _verdicts(data)
            assert check["allowed"] is allowed
            assert data["subject"]["uid"] == rootless.subuid_start + int(uid) - 1  # type: ignore[index]
            assert data["subject"]["container_uid"] == int(uid)  # type: ignore[index]
    finally:
        shutil.rmtree(top)


def test_container_root_is_the_owner(rootless: Rootless) -> None:
    _code, data = _doctor("--rootless", USER, "--user", "0", "--read", "/etc/hostname")
    subject = data["subject"]
    assert isinstance(subject, dict)
    assert (subject["uid"], subject["container_uid"]) == (rootless.uid, 0)
    assert f"container uid 0 is {USER} (uid {rootless.uid}) itself" in subject["evidence"]


def test_daemon_open_file_limit_from_proc(rootless: Rootless) -> None:
    dockerd = _pid(Path(f"/run/user/{rootless.uid}/docker.pid"))
    limits = Path(f"/proc/{dockerd}/limits").read_text()
    match = re.search(r"^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)", limits, re.M)
    assert match, limits
    _code, data = _doctor("--rootless", USER)
    (check,) = [c for c in _verdicts(data) if c["kind"] == "nofile"]
    assert f"pid {dockerd}" in str(check["subject"])
    assert check["observed"] == f"soft {match[1]}, hard {match[2]}"
    assert check["allowed"] is (match[1] == "unlimited" or int(match[1]) >= 65536)


@pytest.mark.skipif(host_port_start() <= 80, reason="the host lets anyone bind port 80")
def test_apply_setcap_restart_serves_undo(rootless: Rootless, tmp_path: Path) -> None:
    """Seed 003's setcap on rootlesskit, done by doctor: applied, "restart needed" until the
    daemon restarts, then `-p 80:80` serves; undo restores rootlesskit's xattr exactly."""
    binary = "/usr/bin/rootlesskit"
    before = _file_caps(binary)
    if before is not None:
        pytest.skip(f"{binary} already carries a file capability here")
    getfattr_before = _run(["getfattr", "-n", "security.capability", binary])
    env = {"UNROOT_STATE_DIR": str(tmp_path)}
    restarted = False
    with host_privileged_port(80) as port, _term_raises():
        try:
            code, data = _doctor("--rootless", USER, "--port", str(port), "--apply", env=env)
            assert code == 1, "restart needed: still refused"
            assert [row["command"] for row in data["applied"]] == [  # type: ignore[union-attr]
                f"setcap cap_net_bind_service=ep {binary}"
            ]
            journal = data["journal"]
            assert isinstance(journal, str)
            assert journal.startswith(f"{tmp_path}/journal/")
            (check,) = _verdicts(data)
            assert check["allowed"] is False
            assert "restart-needed" in [r["code"] for r in check["reasons"]]  # type: ignore[attr-defined]
            assert "restart needed" in str(check["observed"])
            assert _capeff(_rootlesskit_pid()) == 0
            again, data = _doctor("--rootless", USER, "--port", str(port), "--apply", env=env)
            assert (again, data["applied"], data["journal"]) == (1, [], None), "nothing to do"
            restarted = True
            _restart_rootless_docker()
            code, data = _doctor("--rootless", USER, "--port", str(port), env=env)
            assert code == 0, data
            assert _serves(rootless, "docker", f"{port}:80", port) == "ok\n"
            undone = _unroot("undo", journal, env=env)
            assert undone.returncode == 0, undone.stderr
            after = _run(["getfattr", "-n", "security.capability", binary])
            assert (after.returncode, after.stdout, after.stderr) == (
                getfattr_before.returncode,
                getfattr_before.stdout,
                getfattr_before.stderr,
            )
            assert _file_caps(binary) is None
        finally:
            _restore_file_caps(binary, before)
            if restarted:
                _restart_rootless_docker()
    assert _capeff(_rootlesskit_pid()) == 0
