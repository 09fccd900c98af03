"""doctor/patterns.py: each message as the real program prints it on this machine.

The messages are produced here, now, by running the program as ``nobody`` (``setpriv --reuid
65534 --regid 65534 --clear-groups``): caddy, nginx, Apache httpd, python3 (socket, asyncio,
open), bash, coreutils, newuidmap.  Only where the program cannot print the message on this
host is the text typed, each citing the source line that prints it.  The container engines'
messages (runc, crun, rootless Docker and Podman) are produced in
``tests/engine/test_error_patterns.py``, under the engines' fixtures and locks.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unroot.doctor.patterns import LINE_MAX, PATTERNS, Ask, Match, recognise

NOBODY = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"]
PYTHON = "/usr/bin/python3"
PORT_START = "/proc/sys/net/ipv4/ip_unprivileged_port_start"


def _port_start() -> int:
    return int(Path(PORT_START).read_text().strip())


privileged_80 = pytest.mark.skipif(
    _port_start() <= 80, reason="the host lets anyone bind port 80 (ip_unprivileged_port_start)"
)


def _as_nobody(
    argv: Sequence[str], cwd: str | None = None, env: dict[str, str] | None = None
) -> str:
    """Run ``argv`` as nobody; its stderr and stdout, which must not be empty."""
    done = subprocess.run(
        [*NOBODY, "env", "-i", "PATH=/usr/bin:/bin:/usr/sbin:/sbin", *_env(env), *argv],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=cwd,
    )
    out = done.stderr + done.stdout
    assert out.strip(), f"{argv}: no output (exit {done.returncode})"
    return out


def _env(env: dict[str, str] | None) -> list[str]:
    return [f"{k}={v}" for k, v in (env or {}).items()]


def _needs(*programs: str) -> None:
    for program in programs:
        if shutil.which(program) is None and not os.access(program, os.X_OK):
            pytest.skip(f"{program} is not installed here")


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A temporary directory nobody may enter (0755), under /tmp."""
    top = Path(tempfile.mkdtemp(prefix="unroot-patterns."))
    top.chmod(0o755)
    try:
        yield top
    finally:
        shutil.rmtree(top)


def _only(text: str, pattern: str) -> Match:
    """The one match of ``text``, which must be ``pattern``."""
    found = recognise(text)
    assert [m.pattern for m in found] == [pattern], (text, found)
    return found[0]


def _well_formed(match: Match) -> None:
    assert any(p.id == match.pattern for p in PATTERNS)
    assert match.line
    assert "\n" not in match.line
    assert "\r" not in match.line
    assert match.line == match.line.strip()
    assert len(match.line) <= LINE_MAX
    assert match.meaning
    assert match.source
    assert match.errno in {"EACCES", "EPERM", "EMFILE"}
    assert isinstance(match.asks, Ask)
    assert all(0 < p <= 65535 for p in match.asks.ports)
    assert match.asks.proto in {"tcp", "udp"}
    assert all(isinstance(p, str) and p for p in match.asks.paths)
    assert match.asks.engine in {None, "docker", "podman"}


# -- the table ---------------------------------------------------------------------------------


def test_ids_are_unique_and_hides_name_entries() -> None:
    ids = [p.id for p in PATTERNS]
    assert len(ids) == len(set(ids))
    for entry in PATTERNS:
        assert entry.hides <= set(ids), entry.id
        assert all(n and n == n.lower() for n in entry.needles), entry.id
        assert entry.meaning.strip()
        assert "\n" not in entry.meaning
        assert entry.source.strip()
    # an entry hides only entries tried after it (the table's order is specificity)
    position = {p.id: i for i, p in enumerate(PATTERNS)}
    for entry in PATTERNS:
        assert all(position[h] > position[entry.id] for h in entry.hides), entry.id


def test_module_docstring_names_every_pattern() -> None:
    import unroot.doctor.patterns as module

    doc = module.__doc__ or ""
    for entry in PATTERNS:
        assert f"``{entry.id}``" in doc, entry.id


def test_module_is_pure() -> None:
    """No I/O: the module imports the standard library's text tools only (and may import
    unroot.errors and unroot.model)."""
    import ast

    import unroot.doctor.patterns as module

    tree = ast.parse(Path(module.__file__ or "").read_text())
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    allowed = {"__future__", "re", "bisect", "collections.abc", "dataclasses", "itertools"}
    allowed |= {"typing"}
    assert {m for m in imported if not m.startswith(("unroot.errors", "unroot.model"))} <= allowed


# -- real programs, as nobody ------------------------------------------------------------------


@pytest.mark.root
@privileged_80
def test_caddy_bind(scratch: Path) -> None:
    _needs("caddy")
    (scratch / "Caddyfile").write_text(':80 {\n\trespond "hi"\n}\n')
    home = {"HOME": str(scratch), "XDG_DATA_HOME": str(scratch), "XDG_CONFIG_HOME": str(scratch)}
    out = _as_nobody(
        ["caddy", "run", "--config", str(scratch / "Caddyfile"), "--adapter", "caddyfile"],
        cwd=str(scratch),
        env=home,
    )
    assert "listening on :80: listen tcp :80: bind: permission denied" in out, out
    match = _only(out, "go-bind-eacces")
    assert match.asks == Ask(ports=(80,), proto="tcp")
    assert match.line.startswith("Error: loading initial config: ")


@pytest.mark.root
def test_caddy_key_unreadable(scratch: Path) -> None:
    _needs("caddy", "openssl")
    live = scratch / "live"
    live.mkdir(mode=0o711)
    key, cert = live / "privkey.pem", live / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=x",
         "-days", "1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    key.chmod(0o600)
    cert.chmod(0o644)
    (scratch / "Caddyfile").write_text(
        f'https://localhost:8443 {{\n\ttls {cert} {key}\n\trespond "hi"\n}}\n'
    )
    home = {"HOME": str(scratch), "XDG_DATA_HOME": str(scratch), "XDG_CONFIG_HOME": str(scratch)}
    out = _as_nobody(
        ["caddy", "run", "--config", str(scratch / "Caddyfile"), "--adapter", "caddyfile"],
        cwd=str(scratch),
        env=home,
    )
    assert f"open {key}: permission denied" in out, out
    match = _only(out, "go-path-eacces")
    assert match.asks == Ask(paths=(str(key),), want="r")


def _nginx_conf(scratch: Path, listens: str) -> Path:
    temp = " ".join(
        f"{kind}_temp_path {scratch};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf = scratch / "nginx.conf"
    conf.write_text(
        f"pid {scratch}/nginx.pid;\nerror_log stderr;\nevents {{}}\n"
        f"http {{ access_log off; {temp} server {{ {listens} }} }}\n"
    )
    return conf


@pytest.mark.root
@privileged_80
def test_nginx_bind(scratch: Path) -> None:
    _needs("nginx")
    conf = _nginx_conf(scratch, "listen 80;")
    out = _as_nobody(["nginx", "-p", str(scratch), "-c", str(conf), "-g", "daemon off;"])
    assert "bind() to 0.0.0.0:80 failed (13: Permission denied)" in out, out
    # nginx first tries its compiled-in error log, then logs the bind error with a timestamp
    found = recognise(out)
    binds = [m for m in found if m.pattern == "nginx-bind-eacces"]
    assert [m.asks for m in binds] == [Ask(ports=(80,), proto="tcp")], found
    assert {m.pattern for m in found} <= {"nginx-bind-eacces", "nginx-path-eacces"}


@pytest.mark.root
@privileged_80
def test_nginx_bind_ipv6(scratch: Path) -> None:
    _needs("nginx")
    if not Path("/proc/net/if_inet6").exists():
        pytest.skip("no IPv6 on this host")
    conf = _nginx_conf(scratch, "listen [::]:80;")
    out = _as_nobody(["nginx", "-p", str(scratch), "-c", str(conf), "-g", "daemon off;"])
    assert "bind() to [::]:80 failed (13: Permission denied)" in out, out
    binds = [m for m in recognise(out) if m.pattern == "nginx-bind-eacces"]
    assert [m.asks for m in binds] == [Ask(ports=(80,), proto="tcp")]


@pytest.mark.root
def test_nginx_include_unreadable(scratch: Path, live: Path) -> None:
    """An ``include`` nginx's user may not read: refused while parsing, before any bind."""
    _needs("nginx")
    (live / "tls.conf").write_text("ssl_protocols TLSv1.3;\n")
    conf = _nginx_conf(scratch, f"listen 8080; include {live}/tls.conf;")
    out = _as_nobody(["nginx", "-p", str(scratch), "-c", str(conf), "-g", "daemon off;"])
    assert f'open() "{live}/tls.conf" failed (13: Permission denied)' in out, out
    match = _only(out, "nginx-path-eacces")
    assert match.asks == Ask(paths=(f"{live}/tls.conf",), want="r")


@pytest.mark.root
@privileged_80
def test_apache_bind(scratch: Path) -> None:
    _needs("/usr/sbin/apache2")
    mpm = "/usr/lib/apache2/modules/mod_mpm_event.so"
    conf = scratch / "httpd.conf"
    conf.write_text(
        f"ServerRoot {scratch}\nPidFile {scratch}/httpd.pid\nErrorLog /dev/stderr\n"
        f"ServerName localhost\nLoadModule mpm_event_module {mpm}\nListen 0.0.0.0:80\n"
        "Listen [::]:80\n"
    )
    out = _as_nobody(["/usr/sbin/apache2", "-f", str(conf), "-DFOREGROUND"])
    assert (
        "(13)Permission denied: AH00072: make_sock: could not bind to address 0.0.0.0:80" in out
    ), out
    found = recognise(out)
    # one question (port 80) even though httpd prints [::]:80 and 0.0.0.0:80, and retries
    assert [(m.pattern, m.asks) for m in found] == [
        ("apache-bind-eacces", Ask(ports=(80,), proto="tcp"))
    ], found


@pytest.mark.root
@privileged_80
def test_python_bind_in_a_script(scratch: Path) -> None:
    script = scratch / "serve.py"
    script.write_text("import socket\n\nsock = socket.socket()\nsock.bind(('0.0.0.0', 80))\n")
    out = _as_nobody([PYTHON, str(script)])
    assert out.rstrip().endswith("PermissionError: [Errno 13] Permission denied"), out
    match = _only(out, "python-bind-eacces")
    assert match.asks == Ask(ports=(80,), proto="tcp")
    assert match.line == "PermissionError: [Errno 13] Permission denied"


@pytest.mark.root
@privileged_80
def test_python_http_server(scratch: Path) -> None:
    """``python3 -m http.server 80``: the traceback shows the bind, not the port."""
    out = _as_nobody([PYTHON, "-m", "http.server", "80"], cwd=str(scratch))
    assert "self.socket.bind(self.server_address)" in out, out
    match = _only(out, "python-bind-eacces")
    assert match.asks == Ask()


@pytest.mark.root
@privileged_80
def test_python_without_the_bind_in_sight() -> None:
    """``python3 -c``: the traceback shows no source line, so nothing says it was a bind."""
    out = _as_nobody([PYTHON, "-c", "import socket; socket.socket().bind(('', 80))"])
    assert "PermissionError: [Errno 13] Permission denied" in out, out
    assert recognise(out) == ()


@pytest.mark.root
@privileged_80
def test_python_asyncio_bind() -> None:
    code = (
        "import asyncio\n"
        "async def main():\n"
        "    await asyncio.start_server(lambda r, w: None, '0.0.0.0', 80)\n"
        "asyncio.run(main())\n"
    )
    out = _as_nobody([PYTHON, "-c", code])
    assert "error while attempting to bind on address ('0.0.0.0', 80): permission denied" in out
    match = _only(out, "python-asyncio-bind-eacces")
    assert match.asks == Ask(ports=(80,), proto="tcp")


@pytest.fixture
def live(scratch: Path) -> Path:
    """``scratch/live`` (0700, root's) holding ``privkey.pem`` (0600) — as certbot leaves it."""
    live = scratch / "live"
    live.mkdir(mode=0o700)
    (live / "privkey.pem").write_text("key\n")
    (live / "privkey.pem").chmod(0o600)
    return live


@pytest.mark.root
def test_python_open_key(live: Path) -> None:
    key = live / "privkey.pem"
    out = _as_nobody([PYTHON, "-c", f"open({str(key)!r}).read()"])
    assert f"PermissionError: [Errno 13] Permission denied: '{key}'" in out, out
    match = _only(out, "python-path-eacces")
    assert match.asks == Ask(paths=(str(key),), want="r")


@pytest.mark.root
def test_bash_cd(live: Path) -> None:
    out = _as_nobody(["bash", "-c", "cd live"], cwd=str(live.parent))
    assert out.strip() == "bash: line 1: cd: live: Permission denied", out
    assert _only(out, "path-eacces").asks == Ask(paths=("live",), want="x")


@pytest.mark.root
def test_bash_exec(live: Path) -> None:
    target = live / "run.sh"
    out = _as_nobody(["bash", "-c", str(target)])
    assert out.strip() == f"bash: line 1: {target}: Permission denied", out
    assert _only(out, "path-eacces").asks == Ask(paths=(str(target),), want="x")


@pytest.mark.root
def test_cat(live: Path) -> None:
    key = live / "privkey.pem"
    out = _as_nobody(["cat", str(key)])
    assert out.strip() == f"cat: {key}: Permission denied", out
    assert _only(out, "path-eacces").asks == Ask(paths=(str(key),), want="r")


@pytest.mark.root
def test_ls_quoted(live: Path) -> None:
    out = _as_nobody(["ls", str(live)])
    assert out.strip() == f"ls: cannot open directory '{live}': Permission denied", out
    assert _only(out, "path-eacces").asks == Ask(paths=(str(live),), want="r")


@pytest.mark.root
def test_python_emfile() -> None:
    out = _as_nobody(
        ["bash", "-c", f"ulimit -n 16; {PYTHON} -c \"[open('/dev/null') for _ in range(64)]\""]
    )
    assert "OSError: [Errno 24] Too many open files: '/dev/null'" in out, out
    assert _only(out, "too-many-open-files").asks == Ask(nofile=True)


@pytest.mark.root
def test_loader_emfile() -> None:
    """ld.so cannot open a library at the limit: it prints the errno's number."""
    out = _as_nobody(["bash", "-c", "ulimit -n 3; cat /dev/null"])
    assert "cannot open shared object file: Error 24" in out, out
    assert _only(out, "too-many-open-files").asks == Ask(nofile=True)


@pytest.mark.root
def test_go_runtime_emfile() -> None:
    """A Go program (caddy) started at the limit: the runtime's own message."""
    _needs("caddy")
    out = _as_nobody(["bash", "-c", "ulimit -n 5; caddy version"])
    assert "runtime: pipe failed with 24" in out or "too many open files" in out, out
    assert _only(out, "too-many-open-files").asks == Ask(nofile=True)


# -- newuidmap ---------------------------------------------------------------------------------


@pytest.fixture
def userns_pid() -> Iterator[int]:
    """A process of nobody's in a new user namespace whose maps are not written yet."""
    _needs("unshare", "newuidmap")
    proc = subprocess.Popen([*NOBODY, "unshare", "--user", "sleep", "30"])
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # wait for the exec of sleep in the new namespace
            ns = os.readlink(f"/proc/{proc.pid}/ns/user")
            if ns != os.readlink("/proc/self/ns/user") and _comm(proc.pid) == "sleep":
                break
            time.sleep(0.05)
        else:
            pytest.fail("unshare --user did not start")
        yield proc.pid
    finally:
        proc.kill()
        proc.wait(timeout=10)


def _comm(pid: int) -> str:
    return Path(f"/proc/{pid}/comm").read_text().strip()


@pytest.mark.root
def test_newuidmap_range_not_allowed(userns_pid: int) -> None:
    out = _as_nobody(["newuidmap", str(userns_pid), "0", "100000", "65536"])
    assert out.strip() == "newuidmap: uid range [0-65536) -> [100000-165536) not allowed", out
    assert _only(out, "subid-range-not-allowed").asks == Ask(subuid=True)


@pytest.mark.root
def test_newuidmap_without_cap_setuid(userns_pid: int) -> None:
    """setuid-root newuidmap in a bounding set without CAP_SETUID (a container's): the kernel
    refuses the write.  (Debian's 4.13 build has no capset step, so not 'Could not set
    caps'.)"""
    done = subprocess.run(
        [*NOBODY, "--bounding-set=-setuid", "newuidmap", str(userns_pid), "0", "65534", "1"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    out = done.stderr
    assert done.returncode == 1
    assert out.strip() in {
        "newuidmap: write to uid_map failed: Operation not permitted",
        "newuidmap: Could not set caps",
    }, out
    match = recognise(out)
    assert [m.pattern for m in match] in (["uid-map-write-failed"], ["newuidmap-caps"])
    assert match[0].asks == Ask(subuid=True)


@pytest.mark.root
def test_newuidmap_second_write(userns_pid: int) -> None:
    first = subprocess.run(
        [*NOBODY, "newuidmap", str(userns_pid), "0", "65534", "1"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert first.returncode == 0, first.stderr
    out = _as_nobody(["newuidmap", str(userns_pid), "0", "65534", "1"])
    assert out.strip() == "newuidmap: write to uid_map failed: Operation not permitted", out
    assert _only(out, "uid-map-write-failed").asks == Ask(subuid=True)


# -- typed messages (the program cannot print them on this host) -------------------------------

#: Each: (text, pattern, ask, where the text comes from).
TYPED = [
    (
        # rootlesskit v0.10.0 pkg/port/builtin/parent/parent.go annotateEPERM (4ea2bf8)
        'cannot expose privileged port 80, you might need to add "net.ipv4.ip_unprivileged_port'
        '_start=0" (currently 1024) to /etc/sysctl.conf, or set CAP_NET_BIND_SERVICE on '
        "rootlesskit binary, or choose a larger port number (>= 1024)",
        "rootless-docker-privileged-port",
        Ask(ports=(80,), engine="docker", rootless=True),
    ),
    (
        # runc v1.0.3 libcontainer/standard_init_linux.go:228 newSystemErrorWithCause
        "standard_init_linux.go:228: exec user process caused: operation not permitted",
        "runc-exec-eperm",
        Ask(),
    ),
    (
        # runc 1.0.0-rc9x: the same, quoted by the older errors package
        'standard_init_linux.go:211: exec user process caused "operation not permitted"',
        "runc-exec-eperm",
        Ask(),
    ),
    (
        # shadow lib/idmapping.c write_mapping(): capset() failed (not in Debian's 4.13 build)
        "newuidmap: Could not set caps",
        "newuidmap-caps",
        Ask(subuid=True),
    ),
    (
        # containerd runtime/v2 TaskManager.Create, Go's os/exec fork/exec, docker's ": unknown"
        "docker: Error response from daemon: failed to create task for container: failed to "
        "create shim task: failed to start shim: fork/exec /home/u/bin/containerd-shim: too many"
        " open files: unknown.",
        "shim-too-many-open-files",
        Ask(exe="/home/u/bin/containerd-shim", nofile=True),
    ),
    (
        # Go net: ListenPacket("udp", ":53")
        "listen udp :53: bind: permission denied",
        "go-bind-eacces",
        Ask(ports=(53,), proto="udp"),
    ),
    (
        # Go net, caddy's https listener
        "listen tcp 0.0.0.0:443: bind: permission denied",
        "go-bind-eacces",
        Ask(ports=(443,)),
    ),
    (
        # nginx's accept4() in ngx_event_accept.c, errno 24
        "2024/05/01 10:00:00 [crit] 31#31: accept4() failed (24: Too many open files)",
        "too-many-open-files",
        Ask(nofile=True),
    ),
    (
        # Go net's accept and socket
        "http: Accept error: accept tcp [::]:80: accept4: too many open files; retrying in 5ms",
        "too-many-open-files",
        Ask(nofile=True),
    ),
    ("socket: too many open files", "too-many-open-files", Ask(nofile=True)),
    ("error: EMFILE, open '/x'", "too-many-open-files", Ask(nofile=True)),
]


@pytest.mark.parametrize(("text", "pattern", "ask"), TYPED)
def test_typed(text: str, pattern: str, ask: Ask) -> None:
    assert _only(text, pattern).asks == ask


# -- logs: colours, CRLF, compose prefixes, repeats --------------------------------------------

_WEB = (
    "\x1b[36mweb_1  |\x1b[0m nginx: [emerg] bind() to 0.0.0.0:443 failed "
    "(13: Permission denied)\r\n"
)
COMPOSE_LOG = (
    'Creating network "x_default" with the default driver\r\n'
    "Creating homer ... \x1b[31merror\x1b[0m\r\n"
    "\r\n"
    "ERROR: for homer  Cannot start service homer: driver failed programming external "
    "connectivity on endpoint homer (1f2e): Error starting userland proxy: error while calling "
    "PortManager.AddPort(): cannot expose privileged port 80, you can add "
    "'net.ipv4.ip_unprivileged_port_start=80' to /etc/sysctl.conf (currently 1024), or set "
    "CAP_NET_BIND_SERVICE on rootlesskit binary, or choose a larger port number (>= 1024): "
    "listen tcp4 0.0.0.0:80: bind: permission denied\r\n"
    "\r\n"
    "ERROR: for homer  Cannot start service homer: driver failed programming external "
    "connectivity on endpoint homer (1f2e): Error starting userland proxy: error while calling "
    "PortManager.AddPort(): cannot expose privileged port 80, you can add "
    "'net.ipv4.ip_unprivileged_port_start=80' to /etc/sysctl.conf (currently 1024), or set "
    "CAP_NET_BIND_SERVICE on rootlesskit binary, or choose a larger port number (>= 1024): "
    "listen tcp4 0.0.0.0:80: bind: permission denied\r\n"
    + _WEB
    * 2
    + "\x1b[33mapp_1  |\x1b[0m PermissionError: [Errno 13] Permission denied: "
    "'/etc/letsencrypt/live/x/privkey.pem'\r\n"
    "ERROR: Encountered errors while bringing up the project.\r\n"
)


def test_compose_log() -> None:
    found = recognise(COMPOSE_LOG)
    assert [(m.pattern, m.asks) for m in found] == [
        ("rootless-docker-privileged-port", Ask(ports=(80,), engine="docker", rootless=True)),
        ("nginx-bind-eacces", Ask(ports=(443,))),
        ("python-path-eacces", Ask(paths=("/etc/letsencrypt/live/x/privkey.pem",), want="r")),
    ]
    assert found[0].line.startswith("ERROR: for homer  Cannot start service homer: ")
    assert (
        found[1].line
        == "web_1  | nginx: [emerg] bind() to 0.0.0.0:443 failed (13: Permission denied)"
    )
    for match in found:
        _well_formed(match)


def test_bare_cr_and_nothing_else() -> None:
    assert recognise("") == ()
    assert recognise("\r\n\r\n  \n") == ()
    assert recognise("all good\rlisten tcp :80: bind: permission denied\r")[0].asks.ports == (80,)
    assert recognise("listen tcp :80: bind: address already in use") == ()


def test_long_line_is_shown_around_the_match() -> None:
    text = "x" * 5000 + " listen tcp :80: bind: permission denied " + "y" * 5000
    (match,) = recognise(text)
    assert len(match.line) <= LINE_MAX
    assert "listen tcp :80: bind: permission denied" in match.line


# -- speed: linear time on adversarial input (a hang guard; bench/ measures) -------------------

ADVERSARIAL = [
    "a" * 1_000_000,
    ":" * 1_000_000,
    "listen tcp " * 100_000,
    "listen tcp " + ":" * 1_000_000 + ": bind: permission denied",
    "cannot expose privileged port 8" * 35_000,
    "bind() to " + "[" * 1_000_000,
    "a: " * 350_000 + "Permission denied",
    "x: line 1: cd: " + "a" * 1_000_000 + ": Permission denied",
    "ls: cannot open '" + "'" * 1_000_000 + ": Permission denied",
    "PermissionError: [Errno 13] Permission denied: '" + "a" * 1_000_000,
    "exec /" + "/" * 1_000_000 + ": operation not permitted",
    "exec container process `" + "`" * 1_000_000,
    "open " * 200_000 + ": permission denied",
    "newuidmap: uid range [" + "1" * 1_000_000,
    "\x1b[" * 500_000,
    "error while attempting to bind on address ('" + "a" * 1_000_000,
]


@pytest.mark.parametrize("text", ADVERSARIAL, ids=range(len(ADVERSARIAL)))
def test_adversarial_line_is_linear(text: str) -> None:
    started = time.monotonic()
    for match in recognise(text):
        _well_formed(match)
    assert time.monotonic() - started < 5


def test_large_log_is_linear() -> None:
    block = COMPOSE_LOG + "".join(
        f"line {i}: nothing to see here, all is well\n" for i in range(90)
    )
    text = block * (100_000 // block.count("\n"))
    assert text.count("\n") >= 99_000
    started = time.monotonic()
    found = recognise(text)
    assert time.monotonic() - started < 5
    assert len(found) == 3


# -- fuzz ----------------------------------------------------------------------------------------

_FRAGMENTS = st.sampled_from(
    [
        "cannot expose privileged port ", "rootlessport ", "listen tcp ", "listen udp6 ",
        ": bind: permission denied", "bind() to ", " failed (13: Permission denied)",
        "(13)Permission denied: AH00072: make_sock: could not bind to address ", "[::]:",
        "0.0.0.0:", "80", "99999", "0", "exec ", "/usr/bin/caddy", ": operation not permitted",
        "exec container process `", "`: Operation not permitted", "PermissionError: ",
        "[Errno 13] Permission denied", ": '", "'", '"', "sock.bind(('', ", "))", "\n", "\r\n",
        "\r", "\x1b[31m", "\x1b", "cd: ", "bash: ", "line 1: ", ": Permission denied",
        "too many open files", "EMFILE", "failed to start shim: fork/exec ", "newuidmap: ",
        "write to uid_map failed", "Could not set caps", "uid range [1-2) -> [3-4) not allowed",
        "error while attempting to bind on address ('x', ", "): permission denied", "open ",
    ]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_FRAGMENTS, st.text(max_size=20)), max_size=40))
def test_fuzz_fragments(parts: list[str]) -> None:
    for match in recognise("".join(parts)):
        _well_formed(match)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_fuzz_text(text: str) -> None:
    for match in recognise(text):
        _well_formed(match)


@settings(max_examples=300, deadline=None)
@given(st.binary())
def test_fuzz_bytes(data: bytes) -> None:
    for match in recognise(data.decode("utf-8", errors="replace")):
        _well_formed(match)


def test_dedup_keeps_first_appearance() -> None:
    text = "\n".join(
        [
            "listen tcp :443: bind: permission denied",
            "cat: /a: Permission denied",
            "listen tcp :443: bind: permission denied",
            "listen tcp :80: bind: permission denied",
            "cat: /a: Permission denied",
        ]
    )
    assert [(m.pattern, m.asks.ports, m.asks.paths) for m in recognise(text)] == [
        ("go-bind-eacces", (443,), ()),
        ("path-eacces", (), ("/a",)),
        ("go-bind-eacces", (80,), ()),
    ]


def test_non_ascii_keeps_the_indexes() -> None:
    """Lower-casing "İ" gives two characters; the needles' places must not shift."""
    text = "İstanbul İİİ: listen tcp :80: bind: permission denied\nΣ cat: /ä/ö: Permission denied"
    found = recognise(text)
    assert [(m.pattern, m.asks) for m in found] == [
        ("go-bind-eacces", Ask(ports=(80,))),
        ("path-eacces", Ask(paths=("/ä/ö",), want="r")),
    ]
    assert found[0].line == "İstanbul İİİ: listen tcp :80: bind: permission denied"
