"""engine/rootless.py: the rootless engines of this host's users, from their own reports.

The pure parsers run everywhere; the live test asks the rootless Docker and Podman of the test
user (``scripts/rootless-engines.sh``) under the shared rootless-engines lock.
"""

from __future__ import annotations

import json
import os
import pwd
import resource
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from _engine import rootless_engines_lock

from unroot.engine.rootless import (
    RootlessEngine,
    needs_restart,
    owners,
    parse_docker_info,
    parse_passwd,
    parse_podman_info,
    port_driver,
    rootless_engines,
)
from unroot.errors import ParseError
from unroot.facts.limits import parse_limits, read_limits
from unroot.facts.listeners import parse_unix
from unroot.facts.proc import read_status
from unroot.facts.processes import ancestors, read_process
from unroot.model.caps import CapSet
from unroot.model.filecaps import FileCaps

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "rootless-engines.sh"
USER = os.environ.get("UNROOT_ROOTLESS_USER", "unroot-rl")

LIMITS = """\
Limit                     Soft Limit           Hard Limit           Units     
Max cpu time              unlimited            unlimited            seconds   
Max stack size            8388608              unlimited            bytes     
Max open files            20000                1048576              files     
Max nice priority         0                    0                    
"""  # noqa: W291 - the kernel pads the units column with spaces


def test_parse_docker_info() -> None:
    info = {"ServerVersion": "20.10.24+dfsg1"}
    text = json.dumps(
        {**info, "SecurityOptions": ["name=seccomp,profile=default", "name=rootless"]}
    )
    assert parse_docker_info(text).rootless
    assert parse_docker_info(text).version == "20.10.24+dfsg1"
    rootful = json.dumps({**info, "SecurityOptions": ["name=apparmor", "name=seccomp,profile=x"]})
    assert not parse_docker_info(rootful).rootless
    assert not parse_docker_info(json.dumps({**info, "SecurityOptions": None})).rootless
    for bad in ("", "[]", '{"SecurityOptions": "name=rootless"}'):
        with pytest.raises(ParseError):
            parse_docker_info(bad)


def test_parse_podman_info() -> None:
    text = json.dumps({"host": {"security": {"rootless": True}}, "version": {"Version": "4.3.1"}})
    assert parse_podman_info(text).rootless
    assert parse_podman_info(text).version == "4.3.1"
    with pytest.raises(ParseError, match=r"host\.security\.rootless"):
        parse_podman_info(json.dumps({"host": {"security": {}}}))


@pytest.mark.parametrize(
    ("argv", "driver"),
    [
        (["rootlesskit", "--net=slirp4netns", "--port-driver=builtin", "dockerd"], "builtin"),
        (["rootlesskit", "--port-driver", "slirp4netns", "dockerd"], "slirp4netns"),
        (["rootlesskit", "--net=slirp4netns", "dockerd"], "none"),
        (["rootlesskit", "--", "dockerd", "--port-driver=builtin"], "none"),
    ],
)
def test_port_driver(argv: list[str], driver: str) -> None:
    assert port_driver(argv) == driver


def test_needs_restart() -> None:
    bind = FileCaps(permitted=CapSet.of("cap_net_bind_service"), effective=True)
    assert needs_restart(bind, CapSet())
    assert not needs_restart(bind, CapSet.of("cap_net_bind_service"))
    assert not needs_restart(None, CapSet())
    assert not needs_restart(FileCaps(permitted=CapSet.of("cap_chown")), CapSet())


def test_limits() -> None:
    limits = parse_limits(LIMITS)
    assert limits["Max open files"].soft == 20000
    assert limits["Max open files"].hard == 1048576
    assert limits["Max cpu time"].soft is None
    assert limits["Max nice priority"].hard == 0
    with pytest.raises(ParseError):
        parse_limits("Max open files 1 2\n")
    soft, hard = (
        None if v == resource.RLIM_INFINITY else v
        for v in resource.getrlimit(resource.RLIMIT_NOFILE)
    )
    assert read_limits("self")["Max open files"].soft == soft
    assert read_limits("self")["Max open files"].hard == hard


def test_parse_unix() -> None:
    text = (
        "Num       RefCount Protocol Flags    Type St Inode Path\n"
        "0000000000000000: 00000002 00000000 00010000 0001 01 4225093 /run/user/1001/docker.sock\n"
        "0000000000000000: 00000003 00000000 00000000 0001 03 4225094 /run/user/1001/docker.sock\n"
        "0000000000000000: 00000002 00000000 00000000 0002 01 17\n"
        "0000000000000000: 00000002 00000000 00010000 0001 01 99 /tmp/with space\n"
    )
    assert parse_unix(text) == {"/run/user/1001/docker.sock": (4225093,), "/tmp/with space": (99,)}


def test_passwd_and_owners(tmp_path: Path) -> None:
    passwd = tmp_path / "passwd"
    passwd.write_text("root:x:0:0::/root:/bin/sh\nbroken\nrl:x:1001:1001::/home/rl:/bin/sh\n")
    assert parse_passwd(passwd.read_text()) == (("root", 0), ("rl", 1001))
    (tmp_path / "run" / "1001").mkdir(parents=True)
    (found,) = owners(str(passwd), str(tmp_path / "run"))
    assert (found.name, found.uid) == ("rl", 1001)
    assert rootless_engines(str(passwd), str(tmp_path / "run")) == ()  # no socket: no engine


def test_process_table() -> None:
    me = read_process(os.getpid())
    assert me is not None
    assert me.uid == os.getuid()
    assert me.ppid == os.getppid()
    assert me.exe == os.path.realpath("/proc/self/exe")
    if os.getppid() > 1:
        assert ancestors(os.getpid())[0].pid == os.getppid()
    assert read_process(2**22 + 1) is None


# -- the live engines ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def engines() -> Iterator[tuple[RootlessEngine, ...]]:
    if os.geteuid() != 0:
        pytest.skip("needs root: the rootless engines are another user's")
    with rootless_engines_lock():
        done = subprocess.run(
            ["bash", str(SCRIPT), "start"], capture_output=True, text=True, timeout=600, check=False
        )
        if done.returncode != 0:
            why = (done.stderr or done.stdout).strip().splitlines() or ["(no output)"]
            pytest.skip(f"scripts/rootless-engines.sh cannot start the engines: {why[-1]}")
        yield rootless_engines()


@pytest.mark.root
@pytest.mark.engine
def test_live_rootless_engines(engines: tuple[RootlessEngine, ...]) -> None:
    uid = pwd.getpwnam(USER).pw_uid
    mine = {e.engine: e for e in engines if e.uid == uid}
    assert set(mine) == {"docker", "podman"}, engines
    docker, podman = mine["docker"], mine["podman"]
    for engine in (docker, podman):
        assert engine.problem == ""
        assert engine.rootless
        assert engine.user == USER
        assert engine.version
        assert engine.daemon_pid is not None
        assert engine.daemon_nofile is not None
        assert engine.daemon_nofile == read_limits(engine.daemon_pid)["Max open files"]
    assert docker.socket == f"/run/user/{uid}/docker.sock"
    assert podman.socket == f"/run/user/{uid}/podman/podman.sock"
    assert docker.daemon_pid is not None
    assert Path(f"/run/user/{uid}/docker.pid").read_text().strip() == str(docker.daemon_pid)
    dockerd = read_process(docker.daemon_pid)
    assert dockerd is not None
    assert dockerd.comm == "dockerd"
    assert podman.daemon_pid is not None
    service = read_process(podman.daemon_pid)
    assert service is not None
    assert service.argv[:3] == ("podman", "system", "service")
    assert podman.rootlesskit is None
    kit = docker.rootlesskit
    assert kit is not None
    assert kit.binary == os.path.realpath(kit.binary)
    assert kit.port_driver == "builtin"  # docker.io's dockerd-rootless.sh default
    assert kit.effective == read_status(kit.pid).effective
    getcap = subprocess.run(["getcap", kit.binary], capture_output=True, text=True, check=False)
    assert ("cap_net_bind_service" in getcap.stdout) == (kit.file_caps is not None)
    assert kit.restart_needed == needs_restart(kit.file_caps, kit.effective)
    assert kit.nofile is not None
