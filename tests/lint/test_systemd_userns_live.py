"""The live kernel agrees with what ``unroot lint`` says about ``PrivateUsers=`` (UR116).

Each probe is a forked process set up the way systemd 252's exec_child sets up a system
service: (``PrivateNetwork=``: unshare the network namespace as root of the initial user
namespace), (``PrivateUsers=``: unshare the user namespace *last*, its maps written from the
parent namespace — ``0 0 1`` and ``UID UID 1``, as setup_private_users() does), then keep-caps,
setresuid to the unit's user and raise CAP_NET_BIND_SERVICE as ambient
(``AmbientCapabilities=``).  The probe then binds a free port below the host's
``ip_unprivileged_port_start``.  The kernel's errno is compared with the linter's verdict for
the equivalent unit, and — for the one layout systemd does not produce (user and network
namespace unshared together) — with the model's bind rule directly.
"""

from __future__ import annotations

import ctypes
import errno
import os
import pickle
import socket
from collections.abc import Callable

import pytest

from unroot import syscalls
from unroot.model.bind import bind_verdict
from unroot.model.caps import NET_BIND_SERVICE
from unroot.situation import build_situations
from unroot.sources.systemd import parse_systemd

pytestmark = pytest.mark.root

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
CAP_NET_BIND_SERVICE = 10
UID = 1000
_libc = ctypes.CDLL(None, use_errno=True)


def _unshare(flags: int) -> None:
    if _libc.unshare(flags) != 0:
        raise OSError(ctypes.get_errno(), "unshare")


def _bind(port: int) -> str:
    with socket.socket() as sock:
        try:
            sock.bind(("0.0.0.0", port))
        except OSError as exc:
            return errno.errorcode[exc.errno or 0]
    return "ok"


def _free_low_port() -> int:
    with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as sysctl:
        start = int(sysctl.read())
    for port in range(min(start, 1024) - 1, 0, -1):
        if _bind(port) == "ok":
            return port
    pytest.skip(f"no free port below ip_unprivileged_port_start={start}")


def _private_users(flags: int) -> None:
    """Unshare ``flags`` (with CLONE_NEWUSER) and have a helper left in the parent user
    namespace write the maps systemd writes."""
    ready_r, ready_w = os.pipe()
    done_r, done_w = os.pipe()
    helper = os.fork()
    if helper == 0:  # pragma: no cover - the helper
        try:
            os.read(ready_r, 1)
            target = os.getppid()
            with open(f"/proc/{target}/setgroups", "w") as out:
                out.write("deny")
            for name in ("gid_map", "uid_map"):
                with open(f"/proc/{target}/{name}", "w") as out:
                    out.write(f"0 0 1\n{UID} {UID} 1\n")
            os.write(done_w, b"x")
        finally:
            os._exit(0)
    _unshare(flags)
    os.write(ready_w, b"x")
    os.read(done_r, 1)
    os.waitpid(helper, 0)


def _probe(port: int, *, netns_first: bool, userns_flags: int, uid: int) -> Callable[[], str]:
    def run() -> str:
        if netns_first:
            _unshare(CLONE_NEWNET)
        if userns_flags:
            _private_users(userns_flags)
        if uid != 0:
            syscalls.set_keepcaps(True)
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
        effective, permitted, inheritable = syscalls.capget()
        bit = 1 << CAP_NET_BIND_SERVICE
        syscalls.capset(effective | bit, permitted, inheritable | bit)
        syscalls.ambient_raise(CAP_NET_BIND_SERVICE)
        assert syscalls.capget()[0] & bit, "the probe must hold cap_net_bind_service"
        return _bind(port)

    return run


def _in_child(fn: Callable[[], str]) -> str:
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            try:
                payload = pickle.dumps(fn())
            except BaseException as exc:
                payload = pickle.dumps(f"error: {exc!r}")
            os.write(write_fd, payload)
        finally:
            os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as inp:
        data = inp.read()
    os.waitpid(pid, 0)
    result = pickle.loads(data)
    assert isinstance(result, str)
    return result


def _linted(unit: str, port: int) -> str:
    parsed = parse_systemd(f"[Service]\n{unit}ExecStart=/srv/probe --port {port}\n", "p.service")
    (situation,) = build_situations([parsed], {})
    (bind,) = situation.ports
    return "ok" if bind.verdict.allowed else str(bind.verdict.errno)


AMBIENT = f"User={UID}\nAmbientCapabilities=CAP_NET_BIND_SERVICE\n"
CASES = [
    # (id, the unit, netns first, userns flags, uid)
    ("ambient-host-netns", AMBIENT, False, 0, UID),
    ("private-users", AMBIENT + "PrivateUsers=yes\n", False, CLONE_NEWUSER, UID),
    (
        "private-network-then-users",
        AMBIENT + "PrivateUsers=yes\nPrivateNetwork=yes\n",
        True,
        CLONE_NEWUSER,
        UID,
    ),
    ("root-private-users", "PrivateUsers=yes\n", False, CLONE_NEWUSER, 0),
]


@pytest.mark.parametrize(
    ("unit", "netns_first", "flags", "uid"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_kernel_and_linter_agree(unit: str, netns_first: bool, flags: int, uid: int) -> None:
    port = _free_low_port()
    kernel = _in_child(_probe(port, netns_first=netns_first, userns_flags=flags, uid=uid))
    assert kernel in ("ok", "EACCES"), kernel
    assert _linted(unit, port) == kernel
    assert kernel == ("ok" if flags == 0 else "EACCES")


def test_a_netns_created_inside_the_user_namespace_lets_it_bind() -> None:
    """Not a layout systemd 252 makes: shown so the EACCES above is the namespace owner's, not
    the user namespace's as such (the model: netns owned by the caller's namespace)."""
    port = _free_low_port()
    kernel = _in_child(
        _probe(port, netns_first=False, userns_flags=CLONE_NEWUSER | CLONE_NEWNET, uid=UID)
    )
    model = bind_verdict(port, effective=NET_BIND_SERVICE, netns_owned_by_caller_userns=True)
    assert kernel == "ok"
    assert model.allowed
