"""The ways of serving the backend on a port, each started and stopped by ``unroot bench``.

Every process is started in a session of its own (so a Ctrl-C on the terminal reaches only
``unroot bench``, which then stops them) and stopped by its process group; the container carries
the label ``org.unroot.bench=<run id>``; the network namespace is ``unroot-bench-<run id>`` (the
nft table lives in it and goes with it).  :class:`Lab` records each as it is created and
:meth:`Lab.cleanup` removes them all, whatever happened before.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from unroot.errors import EnvironmentProblem, UnrootError, UsageError

HERE = Path(__file__).resolve().parent
NOBODY = 65534
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ENV = {"PATH": SYSTEM_PATH, "LANG": "C.UTF-8"}
LABEL = "org.unroot.bench"
NETNS_PREFIX = "unroot-bench-"
#: Where the internal ports are searched (the privileged one for unroot run and nft first).
HIGH_PORTS = range(20000, 30000)
PRIVILEGED_PORTS = range(600, 1024)


@dataclass(frozen=True)
class MethodInfo:
    key: str
    label: str
    #: The Debian package of the program it needs (exit 3 naming it when missing), or "".
    program: str
    package: str
    #: Where the proxy's CPU time is, when it is not a process's.
    cpu_note: str = ""


METHODS: tuple[MethodInfo, ...] = (
    MethodInfo("direct", "direct bind", "", ""),
    MethodInfo("unroot-run", "unroot run (socket handed over)", "", "", "no proxy process"),
    MethodInfo("docker-proxy", "Docker userland proxy", "docker", "docker.io"),
    MethodInfo("socat", "socat", "socat", "socat"),
    MethodInfo("nft", "nftables redirect", "nft", "nftables", "in the kernel (softirq)"),
    MethodInfo("nft-direct", "direct bind in nft's netns", "nft", "nftables"),
    MethodInfo("nginx", "nginx reverse proxy", "nginx", "nginx-light"),
)
BY_KEY = {m.key: m for m in METHODS}


def parse_methods(text: str) -> tuple[str, ...]:
    """``a,b,c`` → known method keys in the table's order (``direct`` always included)."""
    asked = [w.strip() for w in text.split(",") if w.strip()]
    unknown = [w for w in asked if w not in BY_KEY]
    if unknown:
        raise UsageError(
            f"bench: unknown method {unknown[0]!r} (known: {', '.join(m.key for m in METHODS)})"
        )
    return tuple(m.key for m in METHODS if m.key in asked or m.key == "direct")


def require_programs(keys: Sequence[str]) -> None:
    """Exit 3 naming the Debian package of the first missing program."""
    needed = [("wrk", "wrk"), ("setpriv", "util-linux"), ("ip", "iproute2")]
    needed += [(BY_KEY[k].program, BY_KEY[k].package) for k in keys if BY_KEY[k].program]
    if "docker-proxy" in keys:
        needed.append(("nsenter", "util-linux"))
    for program, package in needed:
        if shutil.which(program, path=SYSTEM_PATH) is None:
            raise EnvironmentProblem(
                f"bench: {program} not found: apt-get install {package}"
                + (
                    f" (or leave the method out with --skip {_key_of(program)})"
                    if _key_of(program)
                    else ""
                )
            )
    if os.geteuid() != 0:
        raise EnvironmentProblem("bench: needs root (privileged ports, namespaces, nft, docker)")


def _key_of(program: str) -> str:
    return next((m.key for m in METHODS if m.program == program), "")


def python_for_nobody() -> str:
    """An interpreter nobody may run (a venv under /root is not one)."""
    for candidate in ("/usr/bin/python3", "/bin/python3", sys.executable):
        if os.access(candidate, os.X_OK):
            return candidate
    raise EnvironmentProblem("bench: no python3 at /usr/bin/python3: apt-get install python3")


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class Endpoint:
    """Where a method serves: the port, and the network namespace to load it from (or None)."""

    key: str
    port: int
    netns: str | None = None
    #: Root pids of the proxy's processes (their trees' CPU time is the proxy's), or a callable
    #: that finds them once it runs (docker-proxy is dockerd's child).
    proxy_pids: Callable[[], list[int]] = field(default=list)
    note: str = ""


def nginx_proxy_conf(tmp: Path, workers: int, backend: int, port: int) -> str:
    """nginx as a keep-alive reverse proxy on 127.0.0.1:``port`` to ``backend``, every file
    it writes under ``tmp`` (also used by bench/bench_proxy_overhead.py)."""
    return textwrap.dedent(
        f"""\
        daemon off;
        worker_processes {workers};
        pid {tmp}/nginx.pid;
        error_log {tmp}/error.log;
        events {{ worker_connections 4096; }}
        http {{
            access_log off;
            client_body_temp_path {tmp}/body;
            proxy_temp_path {tmp}/proxy;
            fastcgi_temp_path {tmp}/fastcgi;
            uwsgi_temp_path {tmp}/uwsgi;
            scgi_temp_path {tmp}/scgi;
            upstream backend {{ server 127.0.0.1:{backend}; keepalive 64; }}
            server {{
                listen 127.0.0.1:{port};
                location / {{
                    proxy_pass http://backend;
                    proxy_http_version 1.1;
                    proxy_set_header Connection "";
                }}
            }}
        }}
        """
    )


@dataclass
class Lab:
    """One run's resources; :meth:`cleanup` removes them all (idempotent)."""

    run_id: str = field(default_factory=lambda: secrets.token_hex(4))
    workers: int = 2
    docker_image: str = "unroot-base:bookworm"
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    netns: list[str] = field(default_factory=list)
    docker_used: bool = False
    tmp: Path | None = None
    _ports: set[int] = field(default_factory=set)

    # -- bookkeeping -------------------------------------------------------------------------
    def workdir(self) -> Path:
        if self.tmp is None:
            self.tmp = Path(tempfile.mkdtemp(prefix=f"unroot-bench-{self.run_id}-"))
            self.tmp.chmod(0o755)  # the backend runs as nobody and reads its script here
            for script in ("httpd.py", "openloop.py"):
                shutil.copy(HERE / script, self.tmp / script)
                (self.tmp / script).chmod(0o644)
        return self.tmp

    def pick_port(self, ports: range) -> int:
        for port in ports:
            if port not in self._ports and port_free(port):
                self._ports.add(port)
                return port
        raise EnvironmentProblem(f"bench: no free port in {ports.start}..{ports.stop - 1}")

    def spawn(
        self, argv: list[str], *, stdout: int = subprocess.DEVNULL
    ) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            argv,
            env={**ENV, "UNROOT_BENCH_RUN": self.run_id},
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            cwd="/",
        )
        self.procs.append(proc)
        return proc

    def backend_argv(self, *how: str) -> list[str]:
        httpd = str(self.workdir() / "httpd.py")
        return [python_for_nobody(), "-I", httpd, *how, "--workers", str(self.workers)]

    def as_nobody(self, argv: list[str]) -> list[str]:
        return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *argv]

    def netns_exec(self, netns: str | None, argv: list[str]) -> list[str]:
        return argv if netns is None else ["ip", "netns", "exec", netns, *argv]

    # -- the methods -------------------------------------------------------------------------
    def start_backend(self) -> int:
        """The shared backend (direct, socat, nginx): it binds 127.0.0.1:HIGH itself."""
        port = self.pick_port(HIGH_PORTS)
        self.spawn(self.as_nobody(self.backend_argv("--host", "127.0.0.1", "--port", str(port))))
        return port

    def start(self, key: str, backend: int) -> Endpoint:
        starter: dict[str, Callable[[int], Endpoint]] = {
            "direct": lambda b: Endpoint("direct", b),
            "unroot-run": self._unroot_run,
            "docker-proxy": self._docker_proxy,
            "socat": self._socat,
            "nft": self._nft,
            "nft-direct": self._nft_direct,
            "nginx": self._nginx,
        }
        return starter[key](backend)

    def _unroot_run(self, backend: int) -> Endpoint:
        port = self.pick_port(PRIVILEGED_PORTS)
        argv = [sys.executable, "-m", "unroot", "run", "-l", f"127.0.0.1:{port}"]
        argv += ["--user", "nobody", "--", *self.backend_argv("--listen-fds")]
        self.spawn(argv)
        return Endpoint("unroot-run", port)

    def _socat(self, backend: int) -> Endpoint:
        port = self.pick_port(HIGH_PORTS)
        listen = f"TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr,backlog=4096"
        proc = self.spawn(["socat", listen, f"TCP:127.0.0.1:{backend}"])
        return Endpoint("socat", port, proxy_pids=lambda: [proc.pid])

    def _nginx(self, backend: int) -> Endpoint:
        port = self.pick_port(HIGH_PORTS)
        tmp = self.workdir() / "nginx"
        tmp.mkdir(exist_ok=True)
        conf = tmp / "nginx.conf"
        conf.write_text(nginx_proxy_conf(tmp, self.workers, backend, port))
        proc = self.spawn(["nginx", "-c", str(conf), "-p", str(tmp)])
        return Endpoint("nginx", port, proxy_pids=lambda: [proc.pid])

    def _nft_direct(self, backend: int) -> Endpoint:
        """The control of the nft method: its namespace's backend loaded on its own port (a
        fresh namespace has no other rules, the host's loopback may have Docker's)."""
        return Endpoint("nft-direct", 8080, netns=self._nft_netns())

    def _nft_netns(self) -> str:
        name = f"{NETNS_PREFIX}{self.run_id}"
        if name not in self.netns:
            self._make_nft_netns(name)
        return name

    def _nft(self, backend: int) -> Endpoint:
        return Endpoint("nft", 80, netns=self._nft_netns())

    def _make_nft_netns(self, name: str) -> None:
        """A namespace of its own: the backend on 127.0.0.1:8080 there, and an nft ``redirect``
        of its port 80 to it (nat, output hook: the load is generated in the namespace too)."""
        self.netns.append(name)
        _check(["ip", "netns", "add", name])
        _check(["ip", "-n", name, "link", "set", "lo", "up"])
        ruleset = textwrap.dedent(
            """\
            table ip unroot_bench {
                chain output {
                    type nat hook output priority -100; policy accept;
                    oif "lo" tcp dport 80 redirect to :8080
                }
            }
            """
        )
        _check(["ip", "netns", "exec", name, "nft", "-f", "-"], stdin=ruleset)
        argv = self.as_nobody(self.backend_argv("--host", "127.0.0.1", "--port", "8080"))
        self.spawn(self.netns_exec(name, argv))

    def _docker_proxy(self, backend: int) -> Endpoint:
        """A container that only holds a network namespace (``sleep``), published on
        127.0.0.1:HIGH → :8080; the same backend runs on the host inside that namespace, so
        the path is docker-proxy → the bridge → the backend, with the daemon's own settings."""
        from unroot.engine.docker import Docker, RunOptions

        docker = Docker(timeout=60)
        self.docker_used = True
        port = self.pick_port(HIGH_PORTS)
        options = RunOptions(
            publish=(f"127.0.0.1:{port}:8080",),
            labels={LABEL: self.run_id},
            extra=("--pull", "never", "--rm"),
        )
        done = docker.start(self.docker_image, ["sleep", "86400"], options)
        if not done.ok:
            raise EnvironmentProblem(
                f"bench: docker run {self.docker_image} failed: "
                f"{(done.stderr.strip().splitlines() or ['?'])[-1]} "
                "(--docker-image names a local image with sleep; none is pulled)"
            )
        pid = int(docker.inspect(done.stdout)["State"]["Pid"])
        argv = self.as_nobody(self.backend_argv("--host", "0.0.0.0", "--port", "8080"))  # noqa: S104 - the container's own namespace
        self.spawn(["nsenter", f"--net=/proc/{pid}/ns/net", *argv])

        def proxies() -> list[int]:
            return docker_proxy_pids(port)

        ends = Endpoint("docker-proxy", port, proxy_pids=proxies)
        if not proxies():
            ends.note = "no docker-proxy process: the daemon's userland proxy is off"
        return ends

    # -- cleanup -----------------------------------------------------------------------------
    def cleanup(self) -> list[str]:
        """Stop every process, remove the container(s), the namespace and the work dir; the
        problems met (each a line), none raised."""
        problems: list[str] = []
        for proc in self.procs:
            _stop(proc)
        self.procs.clear()
        for pid in marked_pids(self.run_id):  # one a signal caught between fork and record
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.docker_used:
            try:
                from unroot.engine.docker import Docker

                docker = Docker(timeout=60)
                for container in docker.containers(f"{LABEL}={self.run_id}"):
                    docker.remove(container)
            except UnrootError as exc:  # cleanup goes on and reports it
                problems.append(f"docker: {exc}")
        for name in self.netns:
            _kill_netns_procs(name)
            done = subprocess.run(
                ["ip", "netns", "delete", name], capture_output=True, text=True, check=False
            )
            if done.returncode != 0 and "No such file" not in done.stderr:
                problems.append(f"ip netns delete {name}: {done.stderr.strip()}")
        self.netns.clear()
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None
        return problems


def _check(argv: list[str], stdin: str | None = None) -> None:
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or ["?"])[-1]
        raise EnvironmentProblem(f"bench: {' '.join(argv[:4])}: {why}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group, SIGKILL after 5 s."""
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if proc.poll() is not None and not _group_alive(proc.pid):
                return
            time.sleep(0.02)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_netns_procs(name: str) -> None:
    done = subprocess.run(
        ["ip", "netns", "pids", name], capture_output=True, text=True, check=False
    )
    for pid in done.stdout.split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)


def marked_pids(run_id: str) -> list[int]:
    """The processes whose environment carries ``UNROOT_BENCH_RUN=<run_id>``: this run's."""
    marker = f"UNROOT_BENCH_RUN={run_id}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def docker_proxy_pids(port: int) -> list[int]:
    """The docker-proxy processes publishing ``port`` (found by their command line)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"docker-proxy") and str(port).encode() in argv:
            found.append(int(entry.name))
    return found


def userland_proxy_setting() -> str:
    """The daemon's ``userland-proxy``: from dockerd's command line, else daemon.json, else
    the default (true)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "dockerd":
                continue
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if os.readlink(entry / "ns" / "user") != os.readlink("/proc/self/ns/user"):
            continue  # a rootless daemon's
        for arg in argv:
            if arg.startswith("--userland-proxy="):
                return f"{arg.split('=', 1)[1]} (dockerd {arg})"
            if arg == "--userland-proxy":
                return "true (dockerd --userland-proxy)"
        try:
            conf = json.loads(Path("/etc/docker/daemon.json").read_text())
        except (OSError, ValueError):
            conf = {}
        if isinstance(conf, dict) and "userland-proxy" in conf:
            return f"{str(conf['userland-proxy']).lower()} (/etc/docker/daemon.json)"
        return "true (the default)"
    return "unknown (no rootful dockerd running)"
