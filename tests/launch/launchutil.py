"""Helpers for the launch tests: run ``unroot run`` for real and look at what it started.

The services run as ``nobody``, who may not execute the virtualenv's interpreter when it lives
under /root (pyenv, uv and friends put it there; /root is 0700). :func:`service_python` finds an
interpreter nobody can execute that has the same major.minor version (so compiled extensions in
the virtualenv's site-packages load), trying the virtualenv's own first and then the system's;
the services get the virtualenv's site-packages and ``src/`` on PYTHONPATH. Both must be
readable by nobody: :func:`service_python` checks that too, by importing from them as nobody.
Nothing on the machine is chmod'ed.
"""

from __future__ import annotations

import functools
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest

from unroot.facts.proc import ProcStatus, read_status

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
EXAMPLES = ROOT / "examples" / "run"
PROBE = Path(__file__).resolve().parent / "probe.py"
_SCRIPT = Path(sys.executable).parent / "unroot"
UNROOT = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "unroot"]
NOBODY = 65534
SITE_PACKAGES = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
PYTHONPATH = os.pathsep.join([str(SRC), str(EXAMPLES), *SITE_PACKAGES])


def as_nobody(argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run argv as nobody:nogroup with no supplementary groups and no capabilities."""
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    kwargs.setdefault("timeout", 60)
    return subprocess.run(
        list(argv), user=NOBODY, group=NOBODY, extra_groups=[], check=False, **kwargs
    )


@functools.cache
def service_python() -> str | None:
    """An interpreter nobody can run, of our major.minor, that imports unroot and the servers."""
    wanted = f"{sys.version_info[0]}.{sys.version_info[1]}"
    candidates = [os.path.realpath(sys.executable), f"/usr/bin/python{wanted}", "/usr/bin/python3"]
    candidates += [p for p in (shutil.which(f"python{wanted}"),) if p]
    check = "import sys; v = '%d.%d' % sys.version_info[:2]; import unroot.activation; print(v)"
    for candidate in dict.fromkeys(candidates):
        if not os.path.exists(candidate):
            continue
        try:
            result = as_nobody([candidate, "-c", check], env=service_env(), cwd="/", timeout=30)
        except OSError:
            continue
        if result.returncode == 0 and result.stdout.strip() == wanted:
            return candidate
    return None


def need_service_python() -> str:
    python = service_python()
    if python is None:
        pytest.skip(
            f"no Python {sys.version_info[0]}.{sys.version_info[1]} that nobody can execute "
            "and that can read src/ and the virtualenv's site-packages"
        )
    return python


def service_env(**extra: str) -> dict[str, str]:
    """A small, known environment for unroot run and its services."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "PYTHONPATH": PYTHONPATH,
        "PYTHONDONTWRITEBYTECODE": "1",
        "LANG": "C.UTF-8",
    }
    env.update(extra)
    return env


#: Ports handed out this session: two calls in one test (``a, b = free_port(), free_port()``)
#: must not get the same port, since neither is bound until the test binds it.
_GIVEN: set[int] = set()


def free_port(low: int = 600, high: int = 1023, *, udp: bool = False, v6: bool = False) -> int:
    """A port in [low, high] that nothing uses on 127.0.0.1 (and ::1 with v6) right now, and
    that no earlier call of this session returned (while the range lasts)."""
    candidates = [p for p in range(low, high + 1) if p not in _GIVEN]
    if len(candidates) < 20:  # the range is used up: start over
        _GIVEN.difference_update(range(low, high + 1))
        candidates = list(range(low, high + 1))
    for port in random.sample(candidates, min(200, len(candidates))):
        ok = True
        for family, host in [(socket.AF_INET, "127.0.0.1")] + (
            [(socket.AF_INET6, "::1")] if v6 else []
        ):
            for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM) if udp else (socket.SOCK_STREAM,):
                with socket.socket(family, kind) as probe:
                    if kind == socket.SOCK_STREAM:
                        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    try:
                        probe.bind((host, port))
                    except OSError:
                        ok = False
        if ok:
            _GIVEN.add(port)
            return port
    raise RuntimeError(f"no free port in {low}..{high}")


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@contextmanager
def private_dir() -> Iterator[Path]:
    """A temporary directory nobody can search (pytest's tmp_path is 0700 root)."""
    path = Path(tempfile.mkdtemp(prefix="unroot-launch-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class Service:
    """``unroot run ARGS`` started as a subprocess in its own session (and process group)."""

    def __init__(
        self, args: Sequence[str], *, env: dict[str, str] | None = None, **popen: Any
    ) -> None:
        self.args = [*UNROOT, "run", *args]
        popen.setdefault("stdin", subprocess.PIPE)
        popen.setdefault("stdout", subprocess.PIPE)
        popen.setdefault("stderr", subprocess.PIPE)
        self.proc = subprocess.Popen(
            self.args, env=env or service_env(), start_new_session=True, text=True, **popen
        )
        self.pid = self.proc.pid

    def report(self, timeout: float = 30) -> dict[str, Any]:
        """The probe's JSON line (fails with unroot's stderr if it exited instead)."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        line = ""
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.startswith("{"):
                return dict(json.loads(line))
            if not line and self.proc.poll() is not None:
                break
        err = self.proc.stderr.read() if self.proc.stderr else ""
        raise AssertionError(f"no report from {self.args}: rc={self.proc.poll()} {line!r} {err}")

    def wait_exec(self, argv0: str, timeout: float = 20) -> None:
        """Until /proc/PID/cmdline starts with argv0: unroot has exec'd the service."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                cmdline = Path(f"/proc/{self.pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                cmdline = []
            if cmdline and cmdline[0].decode() == argv0:
                return
            if self.proc.poll() is not None:
                err = self.proc.stderr.read() if self.proc.stderr else ""
                raise AssertionError(f"{self.args} exited {self.proc.returncode}: {err}")
            time.sleep(0.01)
        raise AssertionError(f"{self.args} did not exec {argv0} in {timeout}s")

    def status(self) -> ProcStatus:
        return read_status(self.pid)

    def fds(self) -> dict[int, str]:
        base = Path(f"/proc/{self.pid}/fd")
        return {int(entry.name): os.readlink(entry) for entry in base.iterdir()}

    def environ(self) -> dict[str, str]:
        raw = Path(f"/proc/{self.pid}/environ").read_bytes()
        pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if item)
        return {key.decode(): value.decode() for key, value in pairs}

    def stop(self) -> None:
        if self.proc.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> Service:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_unroot(args: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """``unroot run ARGS`` to completion (for the refusals)."""
    kwargs.setdefault("env", service_env())
    return subprocess.run(
        [*UNROOT, "run", *args], capture_output=True, text=True, timeout=60, check=False, **kwargs
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int, *parts: str) -> None:
    assert result.returncode == code, (result.returncode, result.stderr)
    assert result.stdout == ""
    assert result.stderr.startswith("unroot: "), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    for part in parts:
        assert part in result.stderr, (part, result.stderr)


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True
