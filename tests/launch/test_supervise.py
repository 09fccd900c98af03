"""``unroot run --supervise``: PID 1 duties, restarts, reloads, readiness, privileges.

Services run as nobody under ``unroot run --supervise`` started as a subprocess (its own
session); the HTTP service is bench/backend/httpd.py (stdlib only), small one-off services are
written to a directory nobody can read.  ``ProcInspector`` (the --ready tcp check) and the
policy helpers are also tested directly against live processes.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from launchutil import UNROOT, as_nobody, free_port, port_is_free

from unroot.launch.inspect import ProcInspector, ProcStat
from unroot.launch.supervise import exit_code, restart_wanted

ROOT = Path(__file__).resolve().parents[2]
HTTPD = ROOT / "bench" / "backend" / "httpd.py"
NOBODY = 65534
PYTHON = shutil.which("python3", path="/usr/bin:/bin") or sys.executable
ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}

root = pytest.mark.root
pytestmark = pytest.mark.unprivileged_reads_checkout


# -- helpers (test_reload_load.py uses them too) -----------------------------------------------
class Supervised:
    """``unroot run --supervise ARGS`` (optionally inside ``unshare --pid``), its stderr lines
    collected by a thread, and the supervisor's pid."""

    def __init__(
        self, args: Sequence[str], *, pidns: bool = False, env: dict[str, str] | None = None
    ) -> None:
        argv = [*UNROOT, "run", "--supervise", *args]
        if pidns:
            argv = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", *argv]
        self.proc = subprocess.Popen(
            argv,
            env=env or ENV,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.pid = self._supervisor_pid(pidns)

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        self.proc.stderr.close()
        with self._cond:
            self.lines.append("<eof>")
            self._cond.notify_all()

    def _supervisor_pid(self, pidns: bool) -> int:
        if not pidns:
            return self.proc.pid
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
            with suppress(OSError):
                kids = children.read_text().split()
                if kids:
                    return int(kids[0])
            time.sleep(0.01)
        raise AssertionError("unshare started no child")

    def wait_for(self, pattern: str, count: int = 1, timeout: float = 20) -> re.Match[str]:
        """The ``count``-th stderr line matching ``pattern`` (waits for it)."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                hits = [m for line in self.lines if (m := regex.search(line))]
                if len(hits) >= count:
                    return hits[count - 1]
                left = deadline - time.monotonic()
                if left <= 0 or "<eof>" in self.lines:
                    raise AssertionError(f"no {count}x {pattern!r} in: {self.lines}")
                self._cond.wait(left)

    def gen_pid(self, number: int, timeout: float = 20) -> int:
        match = self.wait_for(rf"generation {number} started \(pid (\d+)\)", timeout=timeout)
        return int(match.group(1))

    def signal(self, sig: int) -> None:
        os.kill(self.pid, sig)

    def reload(self, number: int, timeout: float = 20) -> int:
        """SIGHUP, then wait until generation ``number`` is ready; its pid."""
        self.signal(signal.SIGHUP)
        match = self.wait_for(rf"generation {number} \(pid (\d+)\) ready", timeout=timeout)
        return int(match.group(1))

    def wait(self, timeout: float = 20) -> int:
        code = self.proc.wait(timeout=timeout)
        self._reader.join(5)
        return code

    def stop(self) -> None:
        if self.proc.poll() is None:
            with suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=15)
        kill_session(self.proc.pid)
        for match in re.finditer(r"generation \d+ started \(pid (\d+)\)", "\n".join(self.lines)):
            kill_session(int(match.group(1)))  # each generation is a session of its own
        with suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        self._reader.join(5)

    def __enter__(self) -> Supervised:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def kill_session(sid: int) -> None:
    """SIGKILL every process left in the session ``sid`` (services change process groups)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with suppress(OSError, IndexError, ValueError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) == sid:  # after the name: state, ppid, pgrp, session
                os.kill(int(entry.name), signal.SIGKILL)


def status_of(pid: int) -> dict[str, str]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if item)
    return {k.decode(): v.decode() for k, v in pairs}


def get(port: int, *, timeout: float = 10) -> str:
    """One HTTP request on a new connection; the X-Gen header (the answering generation)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/", headers={"Connection": "close"})
        response = conn.getresponse()
        response.read()
        assert response.status == 200
        return str(response.getheader("X-Gen"))
    finally:
        conn.close()


def wait_serving(port: int, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return get(port, timeout=2)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def httpd(*extra: str) -> list[str]:
    return [PYTHON, "-I", str(HTTPD), "--listen-fds", *extra]


@contextmanager
def scratch() -> Iterator[Path]:
    """A directory nobody can read and write (for the one-off services and what they record)."""
    path = Path(tempfile.mkdtemp(prefix="unroot-supervise-"))
    path.chmod(0o777)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def script(directory: Path, name: str, body: str) -> str:
    path = directory / name
    path.write_text(textwrap.dedent(body))
    path.chmod(0o755)
    return str(path)


def zombies_of(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with suppress(OSError, IndexError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if fields[0] == "Z" and int(fields[1]) == parent:
                found.append(int(entry.name))
    return found


# -- pure helpers --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "code"),
    [(0, 0), (3 << 8, 3), (signal.SIGKILL, 137), (signal.SIGTERM, 143), (255 << 8, 255)],
)
def test_exit_code_like_a_shell(status: int, code: int) -> None:
    assert exit_code(status) == code


@pytest.mark.parametrize(
    ("policy", "status", "restart"),
    [
        ("on-failure", 0, False),
        ("on-failure", 1 << 8, True),
        ("on-failure", signal.SIGKILL, True),
        ("on-failure", signal.SIGSEGV, True),
        ("on-failure", signal.SIGTERM, False),  # systemd's clean signals
        ("on-failure", signal.SIGINT, False),
        ("always", 0, True),
        ("always", signal.SIGTERM, True),
        ("never", 1 << 8, False),
        ("never", signal.SIGKILL, False),
    ],
)
def test_restart_policy(policy: Any, status: int, restart: bool) -> None:
    assert restart_wanted(policy, status) is restart


# -- the --ready tcp check against live processes ------------------------------------------------
WAITERS = {
    "accept": "s.accept()",
    "poll": "import select; p = select.poll(); p.register(s, select.POLLIN); p.poll()",
    "select": "import select; select.select([s], [], [])",
    "epoll": "import select; e = select.epoll(); e.register(s, select.EPOLLIN); time.sleep(60)",
    "selectors": "import selectors; d = selectors.DefaultSelector(); "
    "d.register(s, selectors.EVENT_READ); d.select()",
    "threaded-accept": "import threading; threading.Thread(target=s.accept).start(); "
    "time.sleep(60)",
    "asleep": "time.sleep(60)",  # holds the listener but does not wait on it
    "other-socket": "import select; o = socket.socket(); o.bind(('127.0.0.1', 0)); o.listen(); "
    "select.select([o], [], [])",
}


@pytest.mark.parametrize("how", sorted(WAITERS))
def test_inspector_sees_who_waits_on_the_listener(how: str) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    inode = os.fstat(listener.fileno()).st_ino
    code = f"import socket, time; s = socket.socket(fileno={listener.fileno()}); {WAITERS[how]}"
    child = subprocess.Popen([sys.executable, "-c", code], pass_fds=[listener.fileno()])
    try:
        inspector = ProcInspector()
        expect = how not in ("asleep", "other-socket")
        deadline = time.monotonic() + (10 if expect else 1.0)
        seen = False
        while time.monotonic() < deadline and not seen:
            seen = inspector.waits_on(child.pid, inode)
            time.sleep(0.02)
        assert seen is expect
    finally:
        child.kill()
        child.wait()
        listener.close()


def test_inspector_reads_stat_and_sessions() -> None:
    inspector = ProcInspector()
    state, ppid, pgrp, session = inspector.stat(os.getpid()) or ("?", 0, 0, 0)
    assert state in "RS"
    assert ppid == os.getppid()
    assert pgrp == os.getpgrp()
    assert session == os.getsid(0)
    assert os.getpid() in inspector.session(os.getsid(0))
    assert inspector.stat(0x7FFFFFF0) is None


def test_inspector_stat_of_a_zombie(tmp_path: Path) -> None:
    """A zombie keeps its session until it is reaped: the notify sender check counts it."""
    (tmp_path / "200").mkdir()
    (tmp_path / "200" / "stat").write_text("200 (sd (notify)) Z 150 150 100 0 -1 4228108 0 0\n")
    inspector = ProcInspector(str(tmp_path))
    assert inspector.stat(200) == ProcStat("Z", 150, 150, 100)
    assert inspector.session(100) == []  # live members only
    assert inspector.stat(201) is None


# -- PID 1 and exit status -----------------------------------------------------------------------
@root
@pytest.mark.parametrize(("body", "code"), [("sys.exit(3)", 3), ("os.kill(os.getpid(), 9)", 137)])
def test_exit_status_is_the_services(body: str, code: int) -> None:
    port = free_port()
    args = ["--restart", "never", "-l", f"127.0.0.1:{port}", "--user", "nobody"]
    with Supervised([*args, "--", PYTHON, "-c", f"import os, sys; {body}"]) as sup:
        assert sup.wait() == code
        sup.wait_for(r"service exited: ")


@root
@pytest.mark.parametrize("pidns", [True, False], ids=["pid1", "subreaper"])
def test_orphans_are_reaped(pidns: bool) -> None:
    """A service double-forks a grandchild that exits after its parent: the grandchild is
    re-parented to unroot (PID 1 in a new pid namespace, else as child subreaper), which must
    reap it — no zombie is left."""
    with scratch() as tmp:
        svc = script(
            tmp,
            "orphan.py",
            f"""\
            import json, os, sys, time
            r, w = os.pipe()
            child = os.fork()
            if child == 0:
                grandchild = os.fork()
                if grandchild == 0:
                    time.sleep(0.3)
                    os._exit(0)
                os.write(w, str(grandchild).encode())
                os._exit(0)
            os.waitpid(child, 0)
            grandchild = int(os.read(r, 32))
            with open(f"/proc/{{grandchild}}/stat") as f:
                adopter = int(f.read().rsplit(")", 1)[1].split()[1])
            time.sleep(1.0)
            zombies = []
            for pid in os.listdir("/proc"):
                if pid.isdigit():
                    try:
                        with open(f"/proc/{{pid}}/stat") as f:
                            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                                zombies.append(int(pid))
                    except OSError:
                        pass
            alive = os.path.exists(f"/proc/{{grandchild}}")
            with open("{tmp}/report.json", "w") as f:
                json.dump({{"ppid": os.getppid(), "zombies": zombies, "alive": alive,
                           "grandchild": grandchild, "adopter": adopter}}, f)
            """,
        )
        port = free_port()
        args = ["--restart", "never", "-l", f"127.0.0.1:{port}", "--user", "nobody"]
        with Supervised([*args, "--", PYTHON, svc], pidns=pidns) as sup:
            assert sup.wait() == 0, sup.lines
            report = json.loads((tmp / "report.json").read_text())
        assert not report["alive"], report  # reaped: no /proc entry left, not even a zombie
        if pidns:
            assert report["ppid"] == 1  # unroot is PID 1 ...
            assert report["adopter"] == 1  # ... the orphan's new parent ...
            assert report["zombies"] == []  # ... and it reaps
        else:
            assert report["adopter"] == sup.pid  # unroot is the child subreaper


@root
@pytest.mark.parametrize("pidns", [True, False], ids=["pid1", "plain"])
def test_signals_are_forwarded(pidns: bool) -> None:
    with scratch() as tmp:
        svc = script(
            tmp,
            "signals.py",
            f"""\
            import os, signal, sys, time
            def record(signum, frame):
                with open("{tmp}/signals", "a") as f:
                    f.write(signal.Signals(signum).name + "\\n")
                if signum == signal.SIGTERM:
                    sys.exit(0)
            for sig in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH, signal.SIGQUIT,
                        signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(sig, record)
            open("{tmp}/ready", "w").close()
            while True:
                time.sleep(1)
            """,
        )
        port = free_port()
        args = ["--restart", "on-failure", "--ready", "none", "-l", f"127.0.0.1:{port}"]
        with Supervised([*args, "--user", "nobody", "--", PYTHON, svc], pidns=pidns) as sup:
            deadline = time.monotonic() + 20
            while not (tmp / "ready").exists():
                assert time.monotonic() < deadline, sup.lines
                time.sleep(0.02)
            sent = [signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH]
            for sig in sent:
                sup.signal(sig)
                time.sleep(0.2)
            sup.signal(signal.SIGTERM)
            assert sup.wait() == 0, sup.lines  # the service handled SIGTERM and exited 0
            recorded = (tmp / "signals").read_text().split()
        assert recorded == ["SIGUSR1", "SIGUSR2", "SIGWINCH", "SIGTERM"]


@root
def test_sigint_stops_without_restart() -> None:
    port = free_port()
    with Supervised(["-l", f"127.0.0.1:{port}", "--user", "nobody", "--", *httpd()]) as sup:
        wait_serving(port)
        sup.signal(signal.SIGINT)
        assert sup.wait() == 0  # httpd drains on SIGINT and exits 0
        assert not any("restarting" in line for line in sup.lines)


# -- privileges and the hand-over ----------------------------------------------------------------
@root
def test_supervisor_and_service_hold_nothing() -> None:
    port = free_port()
    with Supervised(["-l", f"127.0.0.1:{port}", "--user", "nobody", "--", *httpd()]) as sup:
        first = sup.gen_pid(1)
        assert wait_serving(port) == str(first)
        second = sup.reload(2)
        sup.wait_for(rf"generation 1 \(pid {first}\) stopped")
        assert get(port) == str(second)
        for pid in (sup.pid, second):
            status = status_of(pid)
            assert status["Uid"].split() == [str(NOBODY)] * 4, (pid, status["Uid"])
            assert status["Gid"].split() == [str(NOBODY)] * 4
            for key in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
                assert int(status[key], 16) == 0, (pid, key, status[key])
            assert status["NoNewPrivs"] == "1"
        # the supervisor changed uid, so it is not dumpable: nobody cannot ptrace it or read its
        # memory (its /proc files stay root's), while the exec'd service is dumpable as usual
        assert os.stat(f"/proc/{sup.pid}/mem").st_uid == 0
        assert os.stat(f"/proc/{second}/mem").st_uid == NOBODY
        env = environ_of(second)
        assert env["LISTEN_PID"] == str(second)  # set after the fork, in the child
        assert env["LISTEN_FDS"] == "1"
        assert env["LISTEN_FDNAMES"] == "unknown"
        fds = {int(p.name): os.readlink(p) for p in Path(f"/proc/{second}/fd").iterdir()}
        assert fds[3].startswith("socket:[")
        assert sorted(fds)[:4] == [0, 1, 2, 3]
        # the supervisor still holds the very same socket (it outlives every generation)
        held = {os.readlink(p) for p in Path(f"/proc/{sup.pid}/fd").iterdir()}
        assert fds[3] in held


SAME_UID = """\
import os, resource, signal, sys
pid = int(sys.argv[1])
limits = resource.prlimit(pid, resource.RLIMIT_NOFILE)
resource.prlimit(pid, resource.RLIMIT_NOFILE, limits)  # the uids match: allowed
for name in ("fd", "environ", "mem"):
    try:
        os.listdir(f"/proc/{pid}/fd") if name == "fd" else open(f"/proc/{pid}/{name}").close()
    except PermissionError:
        print(name, "denied")
os.kill(pid, signal.SIGHUP)
"""


@root
def test_what_the_supervisor_exposes_to_its_uid() -> None:
    """docs/supervise.md, "What the supervisor exposes to processes of the same uid": any
    process of the service's uid may change its limits and signal it (here: a reload), but not
    read its fds, environment or memory."""
    port = free_port()
    args = ["-l", f"127.0.0.1:{port}", "--user", "nobody", "--ready", "none"]
    with Supervised([*args, "--", *httpd()]) as sup:
        wait_serving(port)
        result = as_nobody([PYTHON, "-c", SAME_UID, str(sup.pid)], cwd="/")
        assert result.returncode == 0, result.stderr
        assert result.stdout.split("\n")[:3] == ["fd denied", "environ denied", "mem denied"]
        sup.wait_for(r"generation 2 \(pid \d+\) ready; stopping generation 1")


@root
def test_kept_capability_reaches_every_generation() -> None:
    port = free_port()
    args = ["-l", f"127.0.0.1:{port}", "--user", "nobody", "--keep-cap", "net_bind_service"]
    with Supervised([*args, "--", *httpd()]) as sup:
        wait_serving(port)
        second = sup.reload(2)
        bit = 1 << 10  # CAP_NET_BIND_SERVICE
        for pid in (sup.pid, second):
            status = status_of(pid)
            for key in ("CapPrm", "CapEff", "CapAmb", "CapBnd"):
                assert int(status[key], 16) == bit, (pid, key)


# -- restarts ------------------------------------------------------------------------------------
@root
def test_restart_with_backoff_refuses_no_connection() -> None:
    """The service crashes (exit 1) after every 5 requests; a client connects in a loop across
    5 crashes: the socket stays bound and listening, so not one connection is refused."""
    port = free_port()
    args = ["-l", f"127.0.0.1:{port}", "--user", "nobody", "--restart", "on-failure"]
    with Supervised([*args, "--", *httpd("--exit-after", "5", "--drain-idle", "0.2")]) as sup:
        wait_serving(port)
        refused, failed, gens = 0, [], set()
        deadline = time.monotonic() + 30
        while len(gens) < 6 and time.monotonic() < deadline:
            try:
                gens.add(get(port))
            except ConnectionRefusedError:
                refused += 1
            except OSError as exc:
                failed.append(repr(exc))
        assert refused == 0
        assert failed == []
        assert len(gens) >= 6, sup.lines
        delays = [float(m) for m in re.findall(r"restarting in ([\d.]+)s", "\n".join(sup.lines))]
        assert delays[:4] == [0.1, 0.2, 0.4, 0.8], sup.lines  # exponential backoff


@root
def test_restart_never_and_always() -> None:
    port = free_port()
    args = ["-l", f"127.0.0.1:{port}", "--user", "nobody"]
    with Supervised([*args, "--restart", "always", "--", PYTHON, "-c", "pass"]) as sup:
        sup.wait_for(r"generation 3 started", timeout=10)  # exit 0, restarted anyway
    with Supervised([*args, "--restart", "never", "--", PYTHON, "-c", "exit(4)"]) as sup:
        assert sup.wait() == 4
        assert not any("restarting" in line for line in sup.lines)


# -- reloads -------------------------------------------------------------------------------------
@root
@pytest.mark.parametrize("ready", ["tcp", "notify", "none"])
def test_reload_switches_generations(ready: str) -> None:
    port = free_port()
    extra = ("--notify",) if ready == "notify" else ()
    args = ["-l", f"127.0.0.1:{port}", "--user", "nobody", "--ready", ready]
    with Supervised([*args, "--", *httpd(*extra)]) as sup:
        first = sup.gen_pid(1)
        assert wait_serving(port) == str(first)
        second = sup.reload(2)
        sup.wait_for(rf"generation 1 \(pid {first}\) stopped: status 0")
        assert get(port) == str(second)
        assert not Path(f"/proc/{first}").exists()


@root
def test_reload_tcp_waits_until_the_new_generation_accepts() -> None:
    """The new generation sleeps 1.5 s before it listens: until then the old one serves."""
    port = free_port()
    args = ["-l", f"127.0.0.1:{port}", "--user", "nobody", "--ready", "tcp"]
    with scratch() as tmp:
        slow = script(
            tmp,
            "slow.sh",
            f"""\
            #!/bin/sh
            if [ -e {tmp}/slow ]; then delay=1.5; else delay=0; fi
            exec {PYTHON} -I {HTTPD} --listen-fds --start-delay $delay
            """,
        )
        with Supervised([*args, "--", slow]) as sup:
            first = sup.gen_pid(1)
            wait_serving(port)
            (tmp / "slow").touch()
            sup.signal(signal.SIGHUP)
            sup.gen_pid(2)
            started = time.monotonic()
            answers = set()
            while time.monotonic() - started < 1.2:
                answers.add(get(port))
            assert answers == {str(first)}
            second = int(sup.wait_for(r"generation 2 \(pid (\d+)\) ready").group(1))
            assert time.monotonic() - started >= 1.4
            sup.wait_for(rf"generation 1 \(pid {first}\) stopped")
            assert get(port) == str(second)


@root
def test_failed_reload_keeps_the_old_generation() -> None:
    port = free_port()
    args = ["-l", f"127.0.0.1:{port}", "--user", "nobody"]
    with scratch() as tmp:
        svc = script(
            tmp,
            "svc.sh",
            f"""\
            #!/bin/sh
            [ -e {tmp}/broken ] && exit 1
            exec {PYTHON} -I {HTTPD} --listen-fds
            """,
        )
        with Supervised([*args, "--", svc]) as sup:
            first = sup.gen_pid(1)
            assert wait_serving(port) == str(first)
            (tmp / "broken").touch()
            sup.signal(signal.SIGHUP)
            sup.wait_for(r"reload failed: generation 2 .* exited before it was ready: status 1")
            assert get(port) == str(first)
            # the command disappears: the exec fails, the old generation keeps serving
            Path(svc).unlink()
            sup.signal(signal.SIGHUP)
            sup.wait_for(r"cannot run .*svc.sh: No such file")
            sup.wait_for(r"reload failed; generation 1 keeps serving")
            assert get(port) == str(first)


FORGER = """\
import os, socket, sys
with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
    s.settimeout(10)
    for _ in range(int(sys.argv[2])):
        s.sendto(b"READY=1", "\\0" + sys.argv[1][1:])
print(os.getpid())
"""


def notify_socket(pid: int, timeout: float = 10) -> str:
    """NOTIFY_SOCKET of a generation, once it has exec'd the service."""
    deadline = time.monotonic() + timeout
    while True:
        with suppress(OSError):
            address = environ_of(pid).get("NOTIFY_SOCKET")
            if address:
                return address
        assert time.monotonic() < deadline, f"pid {pid} has no NOTIFY_SOCKET"
        time.sleep(0.02)


@dataclass
class MutedReload:
    """A reload that waits for a READY=1 generation 2 never sends (``--ready-timeout 2``)."""

    sup: Supervised
    port: int
    first: int  # generation 1's pid, serving
    second: int  # generation 2's pid, pending
    address: str  # generation 2's NOTIFY_SOCKET


@contextmanager
def muted_reload() -> Iterator[MutedReload]:
    port = free_port()
    args = ["-l", f"127.0.0.1:{port}", "--user", "nobody", "--ready", "notify"]
    with scratch() as tmp:
        svc = script(
            tmp,
            "svc.sh",
            f"""\
            #!/bin/sh
            if [ -e {tmp}/mute ]; then exec {PYTHON} -I {HTTPD} --listen-fds; fi
            exec {PYTHON} -I {HTTPD} --listen-fds --notify
            """,
        )
        with Supervised([*args, "--ready-timeout", "2", "--", svc]) as sup:
            first = sup.gen_pid(1)
            assert wait_serving(port) == str(first)
            (tmp / "mute").touch()
            sup.signal(signal.SIGHUP)
            second = sup.gen_pid(2)
            yield MutedReload(sup, port, first, second, notify_socket(second))


@root
def test_notify_readiness_is_checked_by_credentials() -> None:
    """READY=1 from a process outside the new generation is ignored; the reload then times out
    and the old generation keeps serving."""
    with muted_reload() as r:
        assert r.address.startswith("@")
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as forger:
            forger.sendto(b"READY=1", "\0" + r.address[1:])
        r.sup.wait_for(rf"ignored a notify message from pid {os.getpid()} uid 0")
        r.sup.wait_for(r"reload failed: generation 2 .* not ready after 2s")
        r.sup.wait_for(rf"generation 2 \(pid {r.second}\) stopped")
        assert get(r.port) == str(r.first)


@root
def test_notify_ready_from_a_gone_process_of_the_services_uid_is_ignored() -> None:
    """A process of the service's uid, outside the new generation, sends READY=1 and has
    exited (and been reaped) before the supervisor reads it: once taken for a short-lived
    helper of the generation, it promoted the reload.  The supervisor is stopped meanwhile so
    that the forger is surely gone when the message is read."""
    with muted_reload() as r:
        r.sup.signal(signal.SIGSTOP)
        try:
            forger = subprocess.run(
                [PYTHON, "-c", FORGER, r.address, "1"],
                user=NOBODY, group=NOBODY, extra_groups=[],
                capture_output=True, text=True, timeout=20, check=True,
            )  # fmt: skip
        finally:
            r.sup.signal(signal.SIGCONT)
        forger_pid = int(forger.stdout)
        assert not Path(f"/proc/{forger_pid}").exists()
        verdict = r.sup.wait_for(r"generation 2 \(pid \d+\) (ready|not ready)")
        assert verdict.group(1) == "not ready", r.sup.lines
        r.sup.wait_for(rf"ignored a notify message from pid {forger_pid} uid {NOBODY}: ")
        r.sup.wait_for(rf"generation 2 \(pid {r.second}\) stopped")
        assert get(r.port) == str(r.first)


@root
def test_ignored_notify_messages_are_logged_once_a_second() -> None:
    """50 forged READY=1 in a burst: one line, and the count of the others when the generation
    ends (a second line only if the burst straddles a second)."""
    with muted_reload() as r:
        forger = subprocess.run(
            [PYTHON, "-c", FORGER, r.address, "50"],
            capture_output=True, text=True, timeout=20, check=True,
        )  # fmt: skip
        r.sup.wait_for(r"reload failed: generation 2 .* not ready after 2s")
        r.sup.wait_for(rf"generation 2 \(pid {r.second}\) stopped")
        time.sleep(0.2)
        text = "\n".join(r.sup.lines)
    lines = re.findall(rf"ignored a notify message from pid {int(forger.stdout)} uid 0", text)
    assert 1 <= len(lines) <= 2, text
    before = [int(n) for n in re.findall(r"\((\d+) more ignored before\)", text)]
    swept = [int(n) for n in re.findall(r"generation 2: (\d+) more notify messages", text)]
    assert len(lines) + sum(before) + sum(swept) == 50, text


@root
@pytest.mark.skipif(shutil.which("systemd-notify") is None, reason="no systemd-notify")
def test_notify_from_a_systemd_notify_helper() -> None:
    """``systemd-notify --ready`` from a shell script is a short-lived child of the generation;
    it waits until its message is read (BARRIER=1 since systemd 246; its descriptor is dropped
    and closed by the kernel), so it is still a member of the session then."""
    port = free_port()
    args = ["-l", f"127.0.0.1:{port}", "--user", "nobody", "--ready", "notify"]
    with scratch() as tmp:
        svc = script(
            tmp,
            "svc.sh",
            f"""\
            #!/bin/sh
            systemd-notify --ready || exit 1
            exec {PYTHON} -I {HTTPD} --listen-fds
            """,
        )
        with Supervised([*args, "--ready-timeout", "10", "--", svc]) as sup:
            sup.gen_pid(1)
            wait_serving(port)
            second = sup.reload(2)
            sup.wait_for(r"generation 1 \(pid \d+\) stopped")
            assert wait_serving(port) == str(second)
            assert not any("ignored" in line for line in sup.lines), sup.lines


@root
def test_notify_mainpid_moves_the_main_process() -> None:
    """A wrapper forks the real server, which announces MAINPID= and READY=1; the wrapper
    exits 0 and the generation lives on in the server (re-parented to unroot)."""
    port = free_port()
    args = ["-l", f"127.0.0.1:{port}", "--user", "nobody", "--ready", "notify"]
    with scratch() as tmp:
        svc = script(
            tmp,
            "wrapper.py",
            f"""\
            import os, socket, sys
            r, w = os.pipe()
            if os.fork():
                os.read(r, 1)  # exit only once the server has announced itself
                sys.exit(0)
            os.environ["LISTEN_PID"] = str(os.getpid())
            address = "\\0" + os.environ["NOTIFY_SOCKET"][1:]
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
                s.sendto(f"MAINPID={{os.getpid()}}".encode(), address)
            os.write(w, b"x")
            os.execv("{PYTHON}", ["{PYTHON}", "-I", "{HTTPD}", "--listen-fds", "--notify"])
            """,
        )
        with Supervised([*args, "--", PYTHON, svc]) as sup:
            sup.gen_pid(1)
            main = int(sup.wait_for(r"generation 1: main process is now pid (\d+)").group(1))
            assert wait_serving(port) == str(main)
            second = sup.reload(2)
            main2 = int(sup.wait_for(r"generation 2: main process is now pid (\d+)").group(1))
            assert second == main2
            sup.wait_for(rf"generation 1 \(pid {main}\) stopped: status 0")
            sup.signal(signal.SIGTERM)
            assert sup.wait() == 0


@root
def test_stop_during_backoff_and_hup_restarts_at_once() -> None:
    port = free_port()
    args = ["-l", f"127.0.0.1:{port}", "--user", "nobody", "--restart", "on-failure"]
    with Supervised([*args, "--", PYTHON, "-c", "exit(5)"]) as sup:
        sup.wait_for(r"restarting in 0.4s")
        sup.signal(signal.SIGHUP)  # down, in a backoff: start now
        sup.wait_for(r"SIGHUP: the service is not running; starting it now")
        sup.wait_for(r"restarting in 0.8s")
        started = time.monotonic()
        sup.signal(signal.SIGTERM)
        assert sup.wait() == 5  # the last generation's status
        assert time.monotonic() - started < 0.7
        assert not any("generation 5 started" in line for line in sup.lines)


@root
def test_sighup_during_a_reload_queues_one_more() -> None:
    port = free_port()
    args = ["-l", f"127.0.0.1:{port}", "--user", "nobody", "--ready", "none"]
    with Supervised([*args, "--", *httpd()]) as sup:
        wait_serving(port)
        for _ in range(3):
            sup.signal(signal.SIGHUP)
            time.sleep(0.05)
        sup.wait_for(r"generation 2 is starting; one more reload follows")
        sup.wait_for(r"generation 3 \(pid \d+\) ready; stopping generation 2")
        time.sleep(1.5)
        assert not any("generation 4" in line for line in sup.lines)  # coalesced


@root
def test_reload_and_stop_signals_are_chosen_by_flags() -> None:
    """--reload-signal USR2 frees SIGHUP for the service (forwarded); the old generation gets
    --stop-signal QUIT once the new one is ready (nginx's graceful stop)."""
    port = free_port()
    with scratch() as tmp:
        log = tmp / "log"
        svc = script(
            tmp,
            "svc.sh",
            f"""\
            #!/bin/sh
            trap 'echo "$$ HUP" >> {log}' HUP
            trap 'echo "$$ QUIT" >> {log}; exit 0' QUIT
            trap 'echo "$$ TERM" >> {log}; exit 0' TERM
            while :; do sleep 0.05; done
            """,
        )
        args = ["-l", f"127.0.0.1:{port}", "--user", "nobody", "--ready", "none"]
        args += ["--reload-signal", "usr2", "--stop-signal", "SIGQUIT"]
        with Supervised([*args, "--", svc]) as sup:
            first = sup.gen_pid(1)
            time.sleep(0.3)
            sup.signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            while f"{first} HUP" not in (log.read_text() if log.exists() else ""):
                assert time.monotonic() < deadline, sup.lines
                time.sleep(0.05)
            assert not any("generation 2" in line for line in sup.lines)
            sup.signal(signal.SIGUSR2)
            second = int(sup.wait_for(r"generation 2 \(pid (\d+)\) ready").group(1))
            sup.wait_for(rf"generation 1 \(pid {first}\) stopped: status 0")
            assert f"{first} QUIT" in log.read_text()
            assert f"{first} TERM" not in log.read_text()
            sup.signal(signal.SIGTERM)  # the final stop forwards what the supervisor got
            assert sup.wait() == 0
            assert f"{second} TERM" in log.read_text()


@root
def test_stop_timeout_kills_an_old_generation_that_ignores_its_stop_signal() -> None:
    port = free_port()
    with scratch() as tmp:
        svc = script(
            tmp,
            "svc.sh",
            """\
            #!/bin/sh
            trap '' TERM
            while :; do sleep 0.05; done
            """,
        )
        args = ["-l", f"127.0.0.1:{port}", "--user", "nobody", "--ready", "none"]
        args += ["--stop-timeout", "0.5"]
        with Supervised([*args, "--", svc]) as sup:
            first = sup.gen_pid(1)
            sup.reload(2)
            started = time.monotonic()
            sup.wait_for(rf"generation 1 \(pid {first}\) still running after 0.5s; SIGKILL")
            sup.wait_for(rf"generation 1 \(pid {first}\) stopped")
            assert time.monotonic() - started < 3


# -- stops and deaths leave nothing behind -------------------------------------------------------
@root
def test_stop_timeout_bounds_the_stop_of_a_service_that_ignores_it() -> None:
    port = free_port()
    with scratch() as tmp:
        svc = script(
            tmp,
            "svc.sh",
            """\
            #!/bin/sh
            trap '' TERM INT
            touch "$1"
            while :; do sleep 0.05; done
            """,
        )
        armed = Path(tmp) / "armed"
        args = ["-l", f"127.0.0.1:{port}", "--user", "nobody", "--stop-timeout", "0.5", "--"]
        with Supervised([*args, svc, str(armed)]) as sup:
            pid = sup.gen_pid(1)
            deadline = time.monotonic() + 10
            while not armed.exists():  # the trap is set: SIGTERM is ignored from now on
                assert time.monotonic() < deadline
                time.sleep(0.02)
            started = time.monotonic()
            sup.signal(signal.SIGTERM)
            sup.wait_for(rf"generation 1 \(pid {pid}\) still running 0.5s after the stop signal")
            assert sup.wait(timeout=10) == 128 + signal.SIGKILL
            assert time.monotonic() - started < 3
            assert port_is_free(port)


@root
def test_the_service_and_its_workers_do_not_outlive_a_killed_supervisor() -> None:
    port = free_port()
    with scratch() as tmp:
        # A master whose worker keeps serving when the master dies (as nginx's workers do).
        svc = script(
            tmp,
            "svc.sh",
            """\
            #!/bin/sh
            sleep 1000 &
            echo $! > "$1"
            exec sleep 1000
            """,
        )
        worker_file = Path(tmp) / "worker"
        args = ["-l", f"127.0.0.1:{port}", "--user", "nobody", "--ready", "none", "--"]
        with Supervised([*args, svc, str(worker_file)]) as sup:
            main = sup.gen_pid(1)
            deadline = time.monotonic() + 10
            while not worker_file.exists() or not worker_file.read_text().strip():
                assert time.monotonic() < deadline
                time.sleep(0.02)
            worker = int(worker_file.read_text())
            assert not port_is_free(port)
            os.kill(sup.pid, signal.SIGKILL)
            sup.wait(timeout=10)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not port_is_free(port):
                time.sleep(0.02)
            assert port_is_free(port), "an orphan of the service still holds the port"
            for pid in (main, worker):  # dead: a zombie of init, or reaped (the port is freed
                state = "?"  # while the process is still exiting, so give it a moment)
                while time.monotonic() < deadline + 5:
                    try:
                        state = status_of(pid)["State"]
                    except OSError:
                        state = "gone"
                    if state[0] in "Zg":
                        break
                    time.sleep(0.02)
                assert state[0] in "Zg", (pid, state)


@root
def test_a_generation_is_a_session_of_its_own_and_the_supervisor_is_not_dumpable() -> None:
    port = free_port()
    args = ["-l", f"127.0.0.1:{port}", "--user", "nobody", "--", *httpd()]
    with Supervised(args) as sup:
        pid = sup.gen_pid(1)
        wait_serving(port)
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        assert int(fields[2]) == int(fields[3]) == pid  # process group and session: its own
        peek = as_nobody([PYTHON, "-I", "-c", f"import os; os.listdir('/proc/{sup.pid}/fd')"])
        assert peek.returncode != 0
        assert "PermissionError" in peek.stderr
        same_uid = as_nobody([PYTHON, "-I", "-c", f"import os; os.listdir('/proc/{pid}/fd')"])
        assert same_uid.returncode == 0, same_uid.stderr  # the service itself is an ordinary one
