"""``unroot run`` for real, as root: what the launched service holds, read from /proc.

Each test starts ``unroot run ... -- SERVICE`` and inspects the service process (the same pid:
unroot execs it) through /proc/PID/status, /proc/PID/fd and /proc/PID/environ, and through the
probe's own report (tests/launch/probe.py: what it sees on its fds, what setuid(0) does).
Refusals must be one line on stderr, exit 2 (or 3 when the system refuses), and leave nothing
behind: no socket bound, no socket file, no process.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import subprocess
import time
from pathlib import Path

import pytest
from launchutil import (
    PROBE,
    SRC,
    UNROOT,
    Service,
    as_nobody,
    assert_one_line_error,
    free_port,
    ipv6_loopback,
    need_service_python,
    port_is_free,
    private_dir,
    run_unroot,
    service_env,
)

from unroot.model.caps import CapSet

pytestmark = pytest.mark.root

NET_BIND_SERVICE = CapSet.of("cap_net_bind_service")
EMPTY = CapSet()


def probe_argv(*extra: str) -> list[str]:
    return [need_service_python(), "-I", "-S", str(PROBE), *extra]


def assert_dropped(service: Service, *, groups: tuple[int, ...], kept: CapSet = EMPTY) -> None:
    status = service.status()
    assert (status.uid.real, status.uid.effective, status.uid.saved, status.uid.fs) == (65534,) * 4
    assert (status.gid.real, status.gid.effective, status.gid.saved, status.gid.fs) == (65534,) * 4
    assert tuple(sorted(status.groups)) == groups
    for name in ("inheritable", "permitted", "effective", "bounding", "ambient"):
        assert getattr(status, name) == kept, name
    assert status.no_new_privs is True


# -- the drop ------------------------------------------------------------------------------------
def test_python_service_on_a_privileged_port() -> None:
    port = free_port()
    extra_r, extra_w = os.pipe()  # an fd unroot inherits: the service must not
    try:
        with Service(
            ["-l", f"127.0.0.1:{port}", "--user", "nobody", "--", *probe_argv()],
            pass_fds=(extra_r,),
        ) as service:
            report = service.report()
            assert report["pid"] == service.pid
            assert_dropped(service, groups=tuple(sorted(os.getgrouplist("nobody", 65534))))
            fds = service.fds()
            assert sorted(fds) == [0, 1, 2, 3]
            assert fds[3].startswith("socket:")
            assert report["setuid0"] == "EPERM"
            assert report["uid"] == [65534] * 3
            assert report["env"] == {
                "LISTEN_FDS": "1",
                "LISTEN_PID": str(service.pid),
                "LISTEN_FDNAMES": "unknown",
            }
            (sock,) = report["fds"]
            assert (sock["family"], sock["type"], sock["proto"]) == ("AF_INET", "SOCK_STREAM", 6)
            assert sock["sockname"] == repr(("127.0.0.1", port))
            assert sock["listening"] == 1
            assert sock["reuseaddr"] == 1
            assert sock["cloexec"] is False
            soft, hard = report["nofile"]
            assert soft == hard  # the default raises the soft limit to the hard one
            with socket.create_connection(("127.0.0.1", port), timeout=5):
                pass  # the kernel accepts into the service's backlog
            environ = service.environ()
            assert environ["LISTEN_PID"] == str(service.pid)
            assert (environ["USER"], environ["HOME"]) == ("nobody", "/nonexistent")
    finally:
        os.close(extra_r)
        os.close(extra_w)


def test_plain_binary_service() -> None:
    """Not Python: sleep(1) gets the socket and the drop just the same."""
    port = free_port()
    sleep = "/bin/sleep" if os.path.exists("/bin/sleep") else "/usr/bin/sleep"
    with Service(["-l", f"127.0.0.1:{port}", "--user", "nobody", "--", sleep, "30"]) as service:
        service.wait_exec(sleep)
        assert_dropped(service, groups=tuple(sorted(os.getgrouplist("nobody", 65534))))
        fds = service.fds()
        assert sorted(fds) == [0, 1, 2, 3]
        assert fds[3].startswith("socket:")
        environ = service.environ()
        assert (environ["LISTEN_FDS"], environ["LISTEN_PID"]) == ("1", str(service.pid))
        assert environ["LISTEN_FDNAMES"] == "unknown"
        assert not port_is_free(port)
    assert port_is_free(port)


def test_closed_standard_fds_get_dev_null() -> None:
    """Started with fds 0-2 closed, unroot opens /dev/null there: no socket may land on them."""
    port = free_port()
    sleep = "/bin/sleep" if os.path.exists("/bin/sleep") else "/usr/bin/sleep"
    argv = ["sh", "-c", 'exec 0<&- 1>&- 2>&- "$@"', "sh", *UNROOT, "run"]
    argv += ["-l", f"127.0.0.1:{port}", "--user", "nobody", "--", sleep, "30"]
    proc = subprocess.Popen(argv, env=service_env(), start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{proc.pid}/exe") == os.path.realpath(sleep):
                    break
            time.sleep(0.01)
        fds = {
            int(fd): os.readlink(f"/proc/{proc.pid}/fd/{fd}")
            for fd in os.listdir(f"/proc/{proc.pid}/fd")
        }
        assert [fds[fd] for fd in (0, 1, 2)] == ["/dev/null"] * 3
        assert sorted(fds) == [0, 1, 2, 3]
        assert fds[3].startswith("socket:")
    finally:
        proc.kill()
        proc.wait()


def test_keep_cap_net_bind_service() -> None:
    port, own = free_port(), free_port()
    argv = ["-l", f"127.0.0.1:{port}", "--user", "nobody", "--keep-cap", "net_bind_service"]
    with Service([*argv, "--", *probe_argv("--bind-port", str(own))]) as service:
        report = service.report()
        assert_dropped(
            service, groups=tuple(sorted(os.getgrouplist("nobody", 65534))), kept=NET_BIND_SERVICE
        )
        assert report["own_bind"] == "ok"  # the ambient capability works after exec
        assert report["setuid0"] == "EPERM"


def test_without_keep_cap_the_service_cannot_bind_low_ports() -> None:
    port, own = free_port(), free_port()
    argv = ["-l", f"127.0.0.1:{port}", "--user", "nobody"]
    with Service([*argv, "--", *probe_argv("--bind-port", str(own))]) as service:
        assert service.report()["own_bind"] == "EACCES"


@pytest.mark.parametrize(
    ("options", "groups"),
    [
        (["--groups", "nogroup,daemon"], (1, 65534)),
        (["--groups", "4"], (4,)),
        (["--no-groups"], ()),
    ],
)
def test_supplementary_groups(options: list[str], groups: tuple[int, ...]) -> None:
    port = free_port()
    argv = ["-l", f"127.0.0.1:{port}", "--user", "nobody", *options, "--", *probe_argv()]
    with Service(argv) as service:
        report = service.report()
        assert_dropped(service, groups=groups)
        assert tuple(report["groups"]) == groups


def test_group_overrides_the_primary_gid() -> None:
    port = free_port()
    argv = ["-l", f"127.0.0.1:{port}", "--user", "nobody", "--group", "daemon"]
    with Service([*argv, "--", *probe_argv()]) as service:
        report = service.report()
        status = service.status()
        assert (status.gid.real, status.gid.effective, status.gid.saved, status.gid.fs) == (1,) * 4
        assert report["gid"] == [1, 1, 1]
        assert tuple(sorted(status.groups)) == tuple(sorted(os.getgrouplist("nobody", 1)))


def test_root_target_with_allow_root_has_no_capabilities() -> None:
    port = free_port()
    with Service(["-l", f"127.0.0.1:{port}", "--allow-root", "--", *probe_argv()]) as service:
        report = service.report()
        status = service.status()
        assert status.uid.real == 0
        for name in ("inheritable", "permitted", "effective", "bounding", "ambient"):
            assert getattr(status, name) == EMPTY, name
        assert status.no_new_privs is True
        assert report["uid"] == [0, 0, 0]


# -- sockets -------------------------------------------------------------------------------------
def test_unix_socket_mode_and_owner() -> None:
    with private_dir() as directory:
        path = directory / "app.sock"
        spec = f"api=unix:{path},mode=0660,owner=nobody:daemon"
        with Service(["-l", spec, "--user", "nobody", "--", *probe_argv()]) as service:
            report = service.report()
            info = path.lstat()
            assert stat.S_ISSOCK(info.st_mode)
            assert stat.S_IMODE(info.st_mode) == 0o660
            assert (info.st_uid, info.st_gid) == (65534, 1)
            (sock,) = report["fds"]
            assert (sock["family"], sock["type"], sock["listening"]) == (
                "AF_UNIX",
                "SOCK_STREAM",
                1,
            )
            assert sock["sockname"] == repr(str(path))
            assert report["env"]["LISTEN_FDNAMES"] == "api"
            with socket.socket(socket.AF_UNIX) as client:
                client.connect(str(path))


def test_unix_socket_default_mode_stale_file_and_abstract() -> None:
    with private_dir() as directory:
        path = directory / "app.sock"
        stale = socket.socket(socket.AF_UNIX)
        stale.bind(str(path))
        stale.close()  # a socket file nobody listens on: removed and replaced
        name = f"@unroot-test-{os.getpid()}"
        argv = ["-l", f"unix:{path}", "-l", f"unix:{name}", "--user", "nobody"]
        with Service([*argv, "--", *probe_argv()]) as service:
            report = service.report()
            assert stat.S_IMODE(path.lstat().st_mode) == 0o666
            assert path.lstat().st_uid == 0
            kinds = [(s["family"], s["type"]) for s in report["fds"]]
            assert kinds == [("AF_UNIX", "SOCK_STREAM")] * 2
            assert report["fds"][1]["sockname"] == repr(b"\0" + name[1:].encode())


def test_unix_socket_refusals_leave_things_alone() -> None:
    with private_dir() as directory:
        regular = directory / "not-a-socket"
        regular.write_text("data")
        result = run_unroot(["-l", f"unix:{regular}", "--user", "nobody", "--", "true"])
        assert_one_line_error(result, 2, "exists and is not a socket")
        assert regular.read_text() == "data"
        live = directory / "live.sock"
        with socket.socket(socket.AF_UNIX) as server:
            server.bind(str(live))
            server.listen()
            result = run_unroot(["-l", f"unix:{live}", "--user", "nobody", "--", "true"])
            assert_one_line_error(result, 2, f"unix:{live} is already in use")
            assert stat.S_ISSOCK(live.lstat().st_mode)
        missing = directory / "no" / "such.sock"
        result = run_unroot(["-l", f"unix:{missing}", "--user", "nobody", "--", "true"])
        assert_one_line_error(result, 2, "no such directory")


def test_udp_ipv6_and_dual_stack() -> None:
    if not ipv6_loopback():
        pytest.skip("no IPv6 on the loopback interface")
    udp, v6, v6dual, v4, dual = (free_port(udp=True, v6=True) for _ in range(5))
    argv = ["-l", f"udp://127.0.0.1:{udp}", "-l", f"[::1]:{v6}", "-l", f"[::]:{v6dual},v6only=0"]
    argv += ["-l", f"127.0.0.1:{v4}", "-l", f":{dual}", "--user", "nobody"]
    with Service([*argv, "--", *probe_argv()]) as service:
        report = service.report()
        fds = report["fds"]
        assert [(s["family"], s["type"]) for s in fds] == [
            ("AF_INET", "SOCK_DGRAM"),
            ("AF_INET6", "SOCK_STREAM"),
            ("AF_INET6", "SOCK_STREAM"),
            ("AF_INET", "SOCK_STREAM"),
            ("AF_INET6", "SOCK_STREAM"),
        ]
        assert fds[0]["listening"] == 0
        assert fds[0]["reuseaddr"] == 0  # no SO_REUSEADDR for UDP: no port sharing
        assert fds[1]["v6only"] == 1  # [::1] → IPv6 only, set explicitly
        assert fds[2]["v6only"] == 0
        assert fds[2]["sockname"].startswith("('::', ")
        assert fds[4]["v6only"] == 0  # :P → dual-stack [::]
        assert fds[4]["sockname"].startswith("('::', ")
        assert sorted(service.fds()) == [0, 1, 2, 3, 4, 5, 6, 7]


def test_fd_substitution_and_names() -> None:
    a, b = free_port(), free_port()
    argv = ["-l", f"a=127.0.0.1:{a}", "-l", f"b=127.0.0.1:{b}", "--user", "nobody"]
    argv += ["-E", "NGINX={fd:b};{fd:a};", "-E", "KEEP={{.Names}} {fd", "--"]
    argv += probe_argv("--fd", "{fd:b}", "fd://{fd:a}", "{{fd}}", "{{.Names}}")
    with Service(argv) as service:
        report = service.report()
        assert report["argv"] == ["--fd", "4", "fd://3", "{fd}", "{{.Names}}"]
        environ = service.environ()
        assert (environ["NGINX"], environ["KEEP"]) == ("4;3;", "{{.Names}} {fd")
        assert report["env"]["LISTEN_FDNAMES"] == "a:b"
        assert [s["sockname"] for s in report["fds"]] == [
            repr(("127.0.0.1", a)),
            repr(("127.0.0.1", b)),
        ]


@pytest.mark.parametrize(("value", "limits"), [("1000:2000", [1000, 2000]), ("512", [512, 512])])
def test_nofile(value: str, limits: list[int]) -> None:
    port = free_port()
    argv = ["-l", f"127.0.0.1:{port}", "--user", "nobody", "--nofile", value, "--"]
    with Service([*argv, *probe_argv()]) as service:
        assert service.report()["nofile"] == limits


def test_environment_clear_and_set() -> None:
    port = free_port()
    argv = ["-l", f"127.0.0.1:{port}", "--user", "nobody", "--env-clear", "-E", "A=1", "--"]
    with Service([*argv, *probe_argv()], env=service_env(MARKER="x")) as service:
        service.report()
        environ = service.environ()
        assert set(environ) == {
            "A",
            "USER",
            "LOGNAME",
            "HOME",
            "SHELL",
            "LISTEN_FDS",
            "LISTEN_PID",
            "LISTEN_FDNAMES",
        }
    with Service(
        ["-l", f"127.0.0.1:{port}", "--user", "nobody", "--", *probe_argv()],
        env=service_env(MARKER="x", LISTEN_FDNAMES="stale", LISTEN_FDS="7"),
    ) as service:
        service.report()
        environ = service.environ()
        assert environ["MARKER"] == "x"
        assert (environ["LISTEN_FDS"], environ["LISTEN_FDNAMES"]) == ("1", "unknown")


# -- refusals ------------------------------------------------------------------------------------
def test_port_in_use_leaves_nothing_behind() -> None:
    with private_dir() as directory:
        first, busy = free_port(), free_port()
        path = directory / "app.sock"
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", busy))
            holder.listen()
            args = ["-l", f"127.0.0.1:{first}", "-l", f"unix:{path}", "-l", f"127.0.0.1:{busy}"]
            result = run_unroot([*args, "--user", "nobody", "--", "sleep", "30"])
        assert_one_line_error(result, 2, f"127.0.0.1:{busy} is already in use")
        assert port_is_free(first)
        assert not path.exists()


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["--user", "no-such-user-x", "--", "true"], 2, "unknown user 'no-such-user-x'"),
        (["--user", "nobody", "--group", "no-such-group-x", "--", "true"], 2, "unknown group"),
        (["--", "true"], 2, "pass --user USER"),
        (["--user", "root", "--", "true"], 2, "refusing to run the service as root"),
        (["--user", "0", "--", "true"], 2, "refusing to run the service as root"),
        (["--user", "nobody", "--", "no-such-command-x"], 2, "no-such-command-x: command not"),
        (["--user", "nobody", "--", "/no/such/file"], 2, "/no/such/file: no such file"),
        (["--user", "nobody", "--", "/etc"], 2, "/etc: not an executable file"),
        (["--user", "nobody", "-l", "web=localhost:80", "--", "true"], 2, "not an IP address"),
        (["--user", "nobody", "-l", "127.0.0.1:70000", "--", "true"], 2, "above 65535"),
        (["--user", "nobody", "-l", "192.0.2.7:80", "--", "true"], 2, "no such local address"),
        (["--user", "nobody", "--bogus", "--", "true"], 2, "unrecognized arguments"),
        (["--user", "nobody", "--", "echo", "{fd:x}"], 2, "no --listen is named 'x'"),
        (["--user", "nobody", "-E", "NGINX={fd:x};", "--", "true"], 2, "no --listen is named 'x'"),
        (["--user", "nobody", "-l", "127.0.0.1:0", "-E", "N={fd}", "--", "true"], 2, "-E N uses"),
        (["--user", "nobody", "--nofile", "99999999", "--", "true"], 2, "fs.nr_open"),
    ],
)
def test_refusals(args: list[str], code: int, fragment: str) -> None:
    port = free_port()
    result = run_unroot(["-l", f"127.0.0.1:{port}", *args])
    assert_one_line_error(result, code, fragment)
    assert port_is_free(port)


def test_command_the_target_cannot_execute() -> None:
    """PATH lookup happens as the target: a program only root can reach is refused first."""
    with private_dir() as directory:
        hidden = directory / "hidden"
        hidden.mkdir(mode=0o700)
        program = hidden / "srv"
        program.write_text("#!/bin/sh\nexit 0\n")
        program.chmod(0o755)
        port = free_port()
        env = service_env(PATH=f"{hidden}:/usr/bin:/bin")
        result = run_unroot(["-l", f"127.0.0.1:{port}", "--user", "nobody", "--", "srv"], env=env)
        assert_one_line_error(result, 2, f"uid 65534 cannot execute {program}")
        assert port_is_free(port)


# -- bind() refused: the model explains --------------------------------------------------------
def test_eacces_is_explained_with_the_smallest_fix() -> None:
    python = need_service_python()
    port = free_port()
    result = as_nobody(
        [python, "-m", "unroot", "run", "-l", f"127.0.0.1:{port}", "--", "true"],
        env=service_env(),
        cwd="/",
    )
    assert_one_line_error(
        result,
        3,
        f"cannot bind 127.0.0.1:{port} as uid 65534",
        "ip_unprivileged_port_start=1024",
        "lacks cap_net_bind_service",
        f"sysctl -w net.ipv4.ip_unprivileged_port_start={port}",
        "start unroot run as root",
    )
    assert port_is_free(port)


SYSCTL_SESSION = """
import os, sys
start, port, python = int(sys.argv[1]), sys.argv[2], sys.argv[3]
with open("/proc/sys/net/ipv4/ip_unprivileged_port_start", "w") as f:
    f.write(str(start))
os.setgroups([]); os.setresgid(65534, 65534, 65534); os.setresuid(65534, 65534, 65534)
os.execv(python, [python, "-m", "unroot", "run", "-l", f"0.0.0.0:{port}", "--", "true"])
"""


@pytest.mark.parametrize("offset", [0, 1])
def test_the_sysctl_fix_works_in_a_fresh_netns(offset: int) -> None:
    """In a new network namespace, the model's fix (lower the sysctl to the port) makes an
    unprivileged `unroot run` bind; one above it, EACCES with that very fix."""
    if not os.path.exists("/usr/bin/unshare"):
        pytest.skip("unshare (util-linux) not installed")
    python = need_service_python()
    port = 700
    result = subprocess.run(
        ["unshare", "-n", python, "-c", SYSCTL_SESSION, str(port + offset), str(port), python],
        capture_output=True,
        text=True,
        env=service_env(),
        cwd="/",
        timeout=60,
        check=False,
    )
    if offset == 0:
        assert (result.returncode, result.stderr) == (0, "")
    else:
        assert_one_line_error(
            result,
            3,
            f"ip_unprivileged_port_start={port + 1}",
            f"sysctl -w net.ipv4.ip_unprivileged_port_start={port}",
        )


def test_service_python_is_not_the_tests_concern() -> None:
    """The probe runs from the source tree, readable by nobody (no chmod anywhere)."""
    assert os.access(SRC, os.R_OK | os.X_OK)
    assert Path(PROBE).stat().st_mode & 0o004


# -- hardening: root by another name, the environment, refusals that leave nothing ----------------
@pytest.mark.parametrize(
    "options", [["--group", "0"], ["--groups", "0"], ["--groups", "nogroup,root"]]
)
def test_root_group_is_refused(options: list[str]) -> None:
    port = free_port()
    result = run_unroot(
        ["-l", f"127.0.0.1:{port}", "--user", "nobody", *options, "--", "/bin/true"]
    )
    assert_one_line_error(result, 2, "root's group", "--allow-root")
    assert port_is_free(port)


def test_keeping_a_root_equivalent_capability_is_said_on_stderr() -> None:
    port = free_port()
    argv = ["-l", f"127.0.0.1:{port}", "--user", "nobody", "--keep-cap", "cap_setuid", "--"]
    with Service([*argv, *probe_argv()]) as service:
        report = service.report()
        assert report["uid"][0] == 65534
        assert service.proc.stdin is not None
        service.proc.stdin.close()  # the probe waits for stdin to close
        service.proc.wait(timeout=10)
        assert service.proc.stderr is not None
        warning = service.proc.stderr.read()
    assert "warning: --keep-cap cap_setuid is root by another name" in warning
    assert "setuid(0)" in warning


def test_allow_root_is_not_called_unprivileged() -> None:
    result = run_unroot(["--help"])
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "--allow-root" in text
    assert "not unprivileged" in text


def umask_of(pid: int) -> str:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return next(line.split()[1] for line in lines if line.startswith("Umask:"))


ROOT_SESSION = {
    "HOME": "/root",
    "USER": "root",
    "LOGNAME": "root",
    "SHELL": "/bin/bash",
    "MAIL": "/var/mail/root",
    "SUDO_USER": "alice",
    "SUDO_UID": "1000",
    "SUDO_GID": "1000",
    "SUDO_COMMAND": "/usr/bin/unroot run --user nobody -- srv",
    "PWD": "/root",
}


@pytest.mark.parametrize(
    ("user", "identity"),
    [
        (
            ["--user", "nobody"],
            {
                "HOME": "/nonexistent",
                "USER": "nobody",
                "LOGNAME": "nobody",
                "SHELL": "/usr/sbin/nologin",
            },
        ),
        (["--user", "4242", "--group", "4242"], {"HOME": "/"}),
    ],
)
def test_the_service_gets_its_own_identity_not_roots_session(
    user: list[str], identity: dict[str, str]
) -> None:
    port = free_port()
    argv = ["-l", f"127.0.0.1:{port}", *user, "--"]
    if user[1] != "nobody":  # uid 4242 cannot run the checkout's probe: any program will do
        argv += ["/bin/sleep", "30"]
    else:
        argv += probe_argv()
    env = service_env(**ROOT_SESSION)
    os.umask(old := os.umask(0))
    with Service(argv, env=env, cwd="/root") as service:
        if user[1] == "nobody":
            service.report()
        else:
            service.wait_exec("/bin/sleep")
        environ = service.environ()
        for key, value in identity.items():
            assert environ[key] == value, key
        for key in ("USER", "LOGNAME", "SHELL"):
            if key not in identity:
                assert key not in environ, (key, environ)
        assert not [key for key in environ if key.startswith("SUDO_") or key == "MAIL"], environ
        # /root is 0700: the service starts in / (and says so in PWD), with at least umask 022.
        assert os.readlink(f"/proc/{service.pid}/cwd") == "/"
        assert environ["PWD"] == "/"
        assert umask_of(service.pid) == "0022"
    os.umask(old)


def test_a_usable_working_directory_and_a_stricter_umask_are_kept() -> None:
    port = free_port()
    argv = ["-l", f"127.0.0.1:{port}", "--user", "nobody", "--", "/bin/sleep", "30"]
    old = os.umask(0o077)
    try:
        with Service(argv, env=service_env(PWD="/usr/share"), cwd="/usr/share") as service:
            service.wait_exec("/bin/sleep")
            assert os.readlink(f"/proc/{service.pid}/cwd") == "/usr/share"
            assert service.environ()["PWD"] == "/usr/share"
            assert umask_of(service.pid) == "0077"
    finally:
        os.umask(old)


@pytest.mark.parametrize("supervise", [[], ["--supervise", "--restart", "never"]])
def test_nofile_counts_the_services_fds_not_unroots(supervise: list[str]) -> None:
    ports = [free_port(), free_port()]
    listen = [f"-l127.0.0.1:{port}" for port in ports]
    shell = "ulimit -Sn; ulimit -Hn; ls /proc/self/fd | wc -l"
    # 5 = fds 0-2 and the two sockets: unroot itself gets through (its own fds on the way do not
    # count); the dynamic loader of /bin/sh then has no fd left for libc, which is the service's
    # business, and says so.
    tight = run_unroot([*listen, *supervise, "--user", "nobody", "--nofile", "5", "--", "/bin/sh"])
    assert "Traceback" not in tight.stderr
    assert "cannot verify" not in tight.stderr
    assert "Error 24" in tight.stderr  # EMFILE in ld.so: the service was exec'd with limit 5
    args = [*listen, *supervise, "--user", "nobody", "--nofile", "8", "--", "/bin/sh", "-c", shell]
    result = run_unroot(args)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["8", "8", "6"]  # 0-2, two sockets, ls's own directory fd
    too_small = run_unroot([*listen, *supervise, "--user", "nobody", "--nofile", "4", "--", "true"])
    assert_one_line_error(too_small, 2, "--nofile 4", "needs fds 0..4")
    assert all(port_is_free(port) for port in ports)


@pytest.mark.parametrize("supervise", [[], ["--supervise"]])
def test_a_refused_exec_removes_the_socket_file_it_created(supervise: list[str]) -> None:
    with private_dir() as tmp:
        broken = tmp / "broken"
        broken.write_text("#!/nonexistent/interpreter\n")
        broken.chmod(0o755)
        path = tmp / "app.sock"
        args = [f"-lunix:{path}", *supervise, "--user", "nobody", "--", str(broken)]
        result = run_unroot(args)
        assert result.returncode in (2, 127), result.stderr
        assert "Traceback" not in result.stderr
        deadline = time.monotonic() + 5
        while path.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not path.exists(), "the socket file outlived the refusal"
        # and a service that runs keeps it
        kept = run_unroot([f"-lunix:{path}", *supervise, "--user", "nobody", "--", "/bin/true"])
        assert kept.returncode == 0, kept.stderr
        time.sleep(0.2)
        assert path.exists()
