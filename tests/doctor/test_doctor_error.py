"""``unroot doctor --error``: each kind of message turns into the checks that explain it, on
this host (the recognition itself is tested on real programs' output in test_patterns.py and
tests/engine/test_error_patterns.py)."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest
from _doctorutil import certbot_tree, doctor_json, one_line_error, unroot

pytestmark = pytest.mark.root


def _kinds(data: dict[str, object]) -> list[tuple[str, str]]:
    verdicts = data["verdicts"]
    assert isinstance(verdicts, list)
    return [(v["kind"], v["subject"]) for v in verdicts]


def test_python_permission_error_asks_the_path(tmp_path: Path) -> None:
    base = Path("/var/tmp") / f"unroot-err-{os.getpid()}"
    base.mkdir(mode=0o755)
    try:
        key = certbot_tree(base / "le")
        message = f"PermissionError: [Errno 13] Permission denied: '{key}'"
        code, data = doctor_json("--user", "2200", "--group", "2200", "--error", message)
        assert code == 1
        recognised = data["recognised"]
        assert isinstance(recognised, list)
        assert recognised[0]["pattern"] == "python-path-eacces"
        ((kind, subject),) = _kinds(data)
        assert (kind, subject) == ("read", str(key))
    finally:
        shutil.rmtree(base)


def test_log_on_stdin_with_a_relative_path() -> None:
    log = "\x1b[31mstarting\x1b[0m\r\nbash: line 1: cd: live: Permission denied\r\n"
    code, data = doctor_json("--user", "nobody", "--error", "-", stdin=log)
    assert code == 0  # nothing failed; one check could not run
    (check,) = data["verdicts"]  # type: ignore[misc]
    assert check["allowed"] is None
    assert "no path on this host" in check["problem"]


def test_go_bind_message_asks_the_port() -> None:
    message = (
        "Error: loading initial config: loading new config: http app module: start: "
        "listening on :80: listen tcp :80: bind: permission denied"
    )
    code, data = doctor_json("--user", "nobody", "--error", message)
    kinds = _kinds(data)
    assert ("bind", "tcp/80") in kinds
    start = int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text())
    assert code == (1 if start > 80 else 0)


def test_exec_eperm_asks_the_program(tmp_path: Path) -> None:
    _code, data = doctor_json(
        "--user", "nobody", "--error", "exec /usr/bin/env: operation not permitted"
    )
    assert ("exec", "/usr/bin/env") in _kinds(data)


def test_too_many_open_files_asks_the_daemons() -> None:
    message = (
        "failed to start shim: fork/exec /home/u/bin/containerd-shim: too many open files: unknown"
    )
    _code, data = doctor_json("--error", message)
    verdicts = data["verdicts"]
    assert isinstance(verdicts, list)
    assert all(v["kind"] == "nofile" for v in verdicts)
    for verdict in verdicts:
        pid = int(str(verdict["subject"]).rsplit("pid ", 1)[1].rstrip(")"))
        limits = Path(f"/proc/{pid}/limits").read_text()
        line = next(x for x in limits.splitlines() if x.startswith("Max open files"))
        soft, hard = line.split()[3:5]
        assert verdict["observed"] == f"soft {soft}, hard {hard}"


def test_newuidmap_message_checks_the_helpers() -> None:
    code, data = doctor_json(
        "--error", "newuidmap: write to uid_map failed: Operation not permitted"
    )
    subjects = [s for _, s in _kinds(data)]
    assert any(s.startswith("/usr/bin/newuidmap") for s in subjects)
    mode = os.stat("/usr/bin/newuidmap").st_mode
    assert code == (0 if mode & stat.S_ISUID else 1)


def test_unknown_text_is_bad_input() -> None:
    assert "no known message" in one_line_error(unroot("doctor", "--error", "all good"))
