"""``unroot doctor`` on this host, run as a user would: the seed-000 key store, a port held by
another process, file capabilities defeated by a nosuid mount, a read-only mount, the overview,
and bad input.  Everything is real (root, the live kernel, real mounts); nothing is mocked."""

from __future__ import annotations

import grp
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from _doctorutil import certbot_tree, doctor_json, one_line_error, tree_state, unroot
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

pytestmark = pytest.mark.root

SCHEMAS = Path(__file__).parents[2] / "src" / "unroot" / "schemas"


def _validate(document: object) -> None:
    import json

    resources = [
        (s["$id"], Resource.from_contents(s))
        for s in (json.loads(p.read_text()) for p in SCHEMAS.glob("*.schema.json"))
    ]
    schema = json.loads((SCHEMAS / "doctor.schema.json").read_text())
    Draft202012Validator(schema, registry=Registry().with_resources(resources)).validate(document)


@pytest.fixture
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(dir="/var/tmp") as name:
        os.chmod(name, 0o755)
        yield Path(name)


def test_seed000_key_store_diagnosed_without_change(scratch: Path) -> None:
    key = certbot_tree(scratch / "letsencrypt")
    before = tree_state(scratch)
    code, data = doctor_json("--user", "2200", "--group", "2200", "--read", str(key))
    assert tree_state(scratch) == before
    _validate(data)
    assert code == 1
    (check,) = data["verdicts"]
    assert check["kind"] == "read"
    assert check["identity"] == {"uid": 2200, "gid": 2200, "groups": []}
    assert (check["allowed"], check["errno"]) == (False, "EACCES")
    assert check["denied_at"] == str(scratch / "letsencrypt" / "live")
    first = check["fixes"][0]["command"]
    root = f"{scratch}/letsencrypt"
    try:
        grp.getgrgid(2200)
    except KeyError:  # no host group has gid 2200: the fix makes one first
        assert first.startswith("groupadd -g 2200 unroot-2200 && ")
    assert f"setfacl -m g:2200:x {root}/live " in first
    assert f"setfacl -m g:2200:r {root}/archive/example.org/privkey1.pem" in first  # the target
    assert first.endswith(f"setfacl -d -m g::-,g:2200:r {root}/archive/example.org")  # renewals
    assert "renewal-hooks/deploy/60-unroot-2200.sh" in check["fixes"][1]["command"]
    assert all(
        "o+" not in (f["command"] or "") and "-R" not in (f["command"] or "")
        for f in check["fixes"]
    )


def test_text_view_marks_each_check(scratch: Path) -> None:
    key = certbot_tree(scratch / "le")
    done = unroot("doctor", "--user", "nobody", "--read", str(key), "--read", str(scratch))
    assert done.returncode == 1, done.stderr
    assert f"✗ read {key.resolve()}" not in done.stdout  # the path asked about is shown as asked
    assert f"✗ read {key}: EACCES at {scratch}/le/live" in done.stdout
    assert f"✓ read {scratch}: ok" in done.stdout
    assert "observed:" in done.stdout
    assert "expected:" in done.stdout
    assert "2 checks: 1 pass, 1 fail" in done.stdout


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_port_held_by_another_process() -> None:
    port = _free_port()
    holder = subprocess.Popen(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c",
         "import socket,sys,time\n"
         f"s=socket.socket(); s.bind(('127.0.0.1', {port})); s.listen(); print('up', flush=True)\n"
         "time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "up"
        code, data = doctor_json("--user", "2200", "--port", str(port))
        (check,) = data["verdicts"]
        assert code == 1
        assert (check["allowed"], check["errno"]) == (False, "EADDRINUSE")
        assert f"pid {holder.pid}" in check["observed"]
        assert "uid 65534" in check["observed"]
        code, data = doctor_json("--user", "nobody", "--port", str(port))
        assert code == 0, data  # its own listener: already serving
        assert data["verdicts"][0]["reasons"][-1]["code"] == "listening"
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()


def _privileged_free_port() -> int:
    for port in range(990, 900, -1):
        with socket.socket() as probe:
            try:
                probe.bind(("0.0.0.0", port))
            except OSError:
                continue
            return port
    pytest.skip("no free port in 901..990")


@pytest.fixture
def nosuid_mount(scratch: Path) -> Iterator[Path]:
    mount = scratch / "mnt"
    mount.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "nosuid,size=16m", "tmpfs", str(mount)], check=True
    )
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_nosuid_mount_defeats_file_caps(scratch: Path, nosuid_mount: Path) -> None:
    port = _privileged_free_port()
    for where in (scratch, nosuid_mount):
        binary = where / "server"
        binary.write_bytes(Path("/usr/bin/true").read_bytes())
        binary.chmod(0o755)
        subprocess.run(["setcap", "cap_net_bind_service=+ep", str(binary)], check=True)
    code, data = doctor_json(
        "--user", "nobody", "--exe", str(scratch / "server"), "--port", str(port)
    )
    assert code == 0, data
    assert [c["kind"] for c in data["verdicts"]] == ["exec", "bind"]
    code, data = doctor_json(
        "--user", "nobody", "--exe", str(nosuid_mount / "server"), "--port", str(port)
    )
    assert code == 1
    exec_check, bind_check = data["verdicts"]
    assert exec_check["allowed"] is True
    assert "nosuid" in exec_check["observed"]
    assert "nosuid" in " ".join(r["text"] for r in exec_check["reasons"])
    assert (bind_check["allowed"], bind_check["errno"]) == (False, "EACCES")
    assert "effective: none" in bind_check["observed"]


def test_read_only_mount_gives_erofs(scratch: Path) -> None:
    data_dir, view = scratch / "data", scratch / "ro"
    data_dir.mkdir()
    view.mkdir()
    (data_dir / "log").write_text("")
    (data_dir / "log").chmod(0o666)
    subprocess.run(["mount", "--bind", str(data_dir), str(view)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(view)], check=True)
        code, data = doctor_json("--user", "nobody", "--write", str(view / "log"))
        (check,) = data["verdicts"]
        assert (code, check["kind"], check["errno"]) == (1, "write", "EROFS")
        code, data = doctor_json("--user", "nobody", "--write", str(data_dir / "log"))
        assert code == 0
    finally:
        subprocess.run(["umount", "-l", str(view)], check=False)


def test_overview_with_no_question() -> None:
    code, data = doctor_json()
    _validate(data)
    assert code == 0
    host = data["host"]
    start = int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text())
    assert host["unprivileged_port_start"] == start
    assert data["verdicts"] == []
    assert data["subject"] is None
    done = unroot("doctor")
    assert done.returncode == 0
    assert f"net.ipv4.ip_unprivileged_port_start = {start}" in done.stdout
    assert "binaries with file capabilities" in done.stdout


def test_fix_prints_a_script_and_changes_nothing(scratch: Path) -> None:
    key = certbot_tree(scratch / "le")
    before = tree_state(scratch)
    done = unroot("doctor", "--user", "2200", "--group", "2200", "--read", str(key), "--fix")
    assert done.returncode == 1
    assert done.stdout.startswith("#!/bin/sh\n")
    assert "setfacl -m g:2200:x" in done.stdout
    assert tree_state(scratch) == before


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--user", "no-such-user-x"], "no user 'no-such-user-x'"),
        (["--group", "no-such-group-x", "--user", "1"], "no group"),
        (["--user", "1", "--read", "/no/such/path"], "no such file"),
        (["--port", "0"], "expected a port"),
        (["--port", "80/icmp"], "expected a port"),
        (["--port", "99999"], "expected a port"),
        (["--engine", "docker"], "--rootless"),
        (["--rootless", "root"], "no subordinate ids"),
        (["--rootless", "no-such-owner-x"], "no such user"),
        (["--service", "web"], "--compose"),
        (["--restart"], "--apply"),
        (["--error", "everything is fine"], "no known message"),
        (["--fix", "--apply"], "not allowed with"),
        (["--format", "yaml"], "invalid choice"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv: list[str], words: str) -> None:
    line = one_line_error(unroot("doctor", *argv))
    assert words in line


def test_unit_bind_fixed_by_an_ambient_drop_in(scratch: Path) -> None:
    port = _privileged_free_port()
    unit = scratch / "blog.service"
    unit.write_text(f"[Service]\nUser=nobody\nExecStart=/usr/bin/env true --port {port}\n")
    env = {**os.environ, "UNROOT_STATE_DIR": str(scratch / "state")}
    argv = [sys.executable, "-m", "unroot", "doctor", "--format", "json", "--unit", str(unit)]
    argv += ["--port", str(port)]
    before = tree_state(scratch)
    done = subprocess.run([*argv, "--apply"], capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads(done.stdout)
    assert [row["kind"] for row in data["applied"]] == ["systemd"]
    drop_in = scratch / "blog.service.d" / "60-unroot.conf"
    assert drop_in.read_text() == "[Service]\nAmbientCapabilities=CAP_NET_BIND_SERVICE\n"
    assert all(v["allowed"] for v in data["verdicts"])  # checked again, with the drop-in
    undone = subprocess.run(
        [sys.executable, "-m", "unroot", "undo", data["journal"]],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert undone.returncode == 0, undone.stderr
    assert not drop_in.parent.exists()
    shutil.rmtree(scratch / "state")
    assert tree_state(scratch) == before
