"""Differential test: the bind rule (unroot.model.bind) against the live kernel.

Each *session* is a forked child with its own network namespace, a random
``net.ipv4.ip_unprivileged_port_start`` and a random identity, that runs many bind() probes
(random ports around the threshold, TCP/UDP [/SCTP when the kernel has it] by IPv4/IPv6, the
wildcard or the loopback address, cap_net_bind_service in the effective set or not) and
reports allowed/errno for each. Four kinds of session:

* ``own``: root in the initial user namespace unshares a netns, sets the sysctl, then becomes a
  random uid keeping a random permitted set — the netns belongs to the caller's user namespace;
* ``userns-only``: as ``own``, then unshares a user namespace alone (``unshare -U`` without
  ``-n``): full capabilities in the new namespace, but the netns belongs to its parent;
* ``user+net``: unshares both at once — the new user namespace owns the netns;
* ``fd-passing``: a helper (uid 0 or 1000) unshares user+net and passes unbound sockets to a
  process of the parent namespace (euid 0 or 1000, random effective set) that binds them —
  capabilities reach down into child namespaces, and the euid that created the user namespace
  holds every capability in it (security/commoncap.c cap_capable).

Every session also probes sysctl writes (values around the limits) against
``sysctl_write_error``. Seed: UNROOT_DIFF_SEED (printed); cases: UNROOT_DIFF_CASES (default
1200). Needs root; no packages beyond Python (lo is brought up with an ioctl).
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import random
import socket
import struct
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from _forking import run_in_child

from unroot import syscalls
from unroot.model.bind import bind_verdict, sysctl_write_error
from unroot.model.caps import CapSet

pytestmark = [pytest.mark.root, pytest.mark.slow]

CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000
NBS = 10  # cap_net_bind_service
SYSCTL = "/proc/sys/net/ipv4/ip_unprivileged_port_start"
RANGE = "/proc/sys/net/ipv4/ip_local_port_range"
IPPROTO_SCTP = 132
_libc = ctypes.CDLL(None, use_errno=True)


def _unshare(flags: int) -> None:
    if _libc.unshare(flags) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _lo_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifr = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(s, 0x8913, ifr))[1]  # SIOCGIFFLAGS
        fcntl.ioctl(s, 0x8914, struct.pack("16sH22x", b"lo", flags | 1))  # SIOCSIFFLAGS IFF_UP


def _read(path: str) -> str:
    with open(path) as fh:
        return fh.read()


def _write(path: str, value: str) -> str | None:
    try:
        with open(path, "w") as fh:
            fh.write(value)
    except OSError as err:
        return errno.errorcode[err.errno]
    return None


def _set_threshold(start: int) -> None:
    low = int(_read(RANGE).split()[0])
    if start > low:  # the sysctl may not exceed the low end of ip_local_port_range
        assert _write(RANGE, f"{start} {max(start, 60999)}") is None
    assert _write(SYSCTL, str(start)) is None, start
    assert int(_read(SYSCTL)) == start


def _sysctl_probes(rng: random.Random) -> list[dict[str, Any]]:
    """Random writes (then restore); each records the kernel's errno and the local range."""
    out = []
    before = _read(SYSCTL).strip()
    for _ in range(3):
        low = int(_read(RANGE).split()[0])
        value = rng.choice([-1, 65535, 65536, 70000, low, low + 1, rng.randrange(0, 65536)])
        out.append({"value": value, "low": low, "errno": _write(SYSCTL, str(value))})
    assert _write(SYSCTL, before) is None
    return out


def _sock(proto: str, family: str) -> socket.socket:
    fam = socket.AF_INET6 if family == "inet6" else socket.AF_INET
    if proto == "udp":
        return socket.socket(fam, socket.SOCK_DGRAM)
    if proto == "sctp":
        return socket.socket(fam, socket.SOCK_STREAM, IPPROTO_SCTP)
    return socket.socket(fam, socket.SOCK_STREAM)


def _bind(sock: socket.socket, probe: dict[str, Any]) -> str:
    loopback = "::1" if probe["family"] == "inet6" else "127.0.0.1"
    any_addr = "::" if probe["family"] == "inet6" else "0.0.0.0"
    try:
        sock.bind((loopback if probe["loopback"] else any_addr, probe["port"]))
    except OSError as err:
        return errno.errorcode[err.errno]
    finally:
        sock.close()
    return "ok"


def _probe_all(probes: list[dict[str, Any]], permitted: int) -> list[str]:
    results = []
    for probe in probes:
        syscalls.capset(probe["effective"], permitted, 0)
        results.append(_bind(_sock(probe["proto"], probe["family"]), probe))
    return results


def _become(uid: int, permitted: int) -> None:
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    syscalls.set_keepcaps(True)
    os.setresuid(uid, uid, uid)
    syscalls.capset(permitted, permitted, 0)


# -- the scenario generator (parent side) --------------------------------------------------
def _ports(rng: random.Random, start: int) -> list[int]:
    near = [start - 1, start, start + 1, rng.randrange(max(0, start - 40), min(65536, start + 40))]
    fixed = [0, 1, 22, 53, 80, 443, 1023, 1024, 1025, 8080, 65535, rng.randrange(65536)]
    return [p for p in near + fixed if 0 <= p <= 65535]


def _threshold(rng: random.Random) -> int:
    return rng.choice([0, 1, 80, 81, 443, 1024, 1024, 2000, 32768, 65535, rng.randrange(65536)])


def _probes(
    rng: random.Random, start: int, count: int, protos: list[str], permitted: int
) -> list[dict[str, Any]]:
    ports = _ports(rng, start)
    probes = []
    for _ in range(count):
        effective = permitted & rng.getrandbits(64)
        if rng.random() < 0.5:
            effective |= permitted & (1 << NBS)
        probes.append(
            {
                "port": rng.choice(ports),
                "proto": rng.choice(protos),
                "family": rng.choice(["inet", "inet6"]),
                "loopback": rng.random() < 0.5,
                "effective": effective,
            }
        )
    return probes


def _session_own(rng: random.Random, count: int, protos: list[str]) -> dict[str, Any]:
    start = _threshold(rng)
    uid = rng.choice([0, 0, 1000, 65534])
    permitted = rng.choice([0, 1 << NBS, 1 << NBS, (1 << NBS) | 0b11, _full()])
    probes = _probes(rng, start, count, protos, permitted)
    sysctl_seed = rng.getrandbits(32)

    def run() -> dict[str, Any]:
        _unshare(CLONE_NEWNET)
        _lo_up()
        writes = _sysctl_probes(random.Random(sysctl_seed))
        _set_threshold(start)
        _become(uid, permitted)
        return {"results": _probe_all(probes, permitted), "writes": writes}

    out = run_in_child(run, "session failed:\n")
    expect = {"owned": True, "owner": False, "start": start}
    return {"kind": "own", "uid": uid, "probes": probes, **expect, **out}


def _session_userns_only(rng: random.Random, count: int, protos: list[str]) -> dict[str, Any]:
    start = _threshold(rng)
    full = _full()
    probes = _probes(rng, start, count, protos, full)

    def run() -> dict[str, Any]:
        _unshare(CLONE_NEWNET)
        _lo_up()
        _set_threshold(start)
        _unshare(CLONE_NEWUSER)  # now root of a child namespace; the netns stays the parent's
        return {"results": _probe_all(probes, full), "writes": []}

    out = run_in_child(run, "session failed:\n")
    return {
        "kind": "userns-only",
        "probes": probes,
        "owned": False,
        "owner": False,
        "start": start,
        **out,
    }


def _session_user_net(rng: random.Random, count: int, protos: list[str]) -> dict[str, Any]:
    start = _threshold(rng)
    full = _full()
    probes = _probes(rng, start, count, protos, full)
    sysctl_seed = rng.getrandbits(32)

    def run() -> dict[str, Any]:
        _unshare(CLONE_NEWUSER | CLONE_NEWNET)
        _lo_up()
        writes = _sysctl_probes(random.Random(sysctl_seed))
        _set_threshold(start)
        return {"results": _probe_all(probes, full), "writes": writes}

    out = run_in_child(run, "session failed:\n")
    return {
        "kind": "user+net",
        "probes": probes,
        "owned": True,
        "owner": False,
        "start": start,
        **out,
    }


def _session_fd_passing(rng: random.Random, count: int, protos: list[str]) -> dict[str, Any]:
    start = _threshold(rng)
    creator = rng.choice([0, 1000])
    binder = rng.choice([0, 1000])
    permitted = rng.choice([0, 1 << NBS])
    probes = _probes(rng, start, count, protos, permitted)

    def run() -> dict[str, Any]:
        parent_end, child_end = socket.socketpair()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the socket maker
            try:
                parent_end.close()
                if creator:
                    os.setresgid(creator, creator, creator)
                    os.setresuid(creator, creator, creator)
                _unshare(CLONE_NEWUSER | CLONE_NEWNET)
                _lo_up()
                _set_threshold(start)
                socks = [_sock(p["proto"], p["family"]) for p in probes]
                socket.send_fds(child_end, [b"s"], [s.fileno() for s in socks])
                child_end.recv(1)
            finally:
                os._exit(0)
        child_end.close()
        _msg, fds, _flags, _addr = socket.recv_fds(parent_end, 16, len(probes))
        parent_end.send(b"k")
        os.waitpid(pid, 0)
        _become(binder, permitted)
        results = []
        for fd, probe in zip(fds, probes, strict=True):
            syscalls.capset(probe["effective"], permitted, 0)
            results.append(_bind(socket.socket(fileno=fd), probe))
        return {"results": results, "writes": []}

    out = run_in_child(run, "session failed:\n")
    return {
        "kind": "fd-passing",
        "probes": probes,
        "owned": True,
        "owner": creator == binder,
        "start": start,
        "creator": creator,
        "binder": binder,
        **out,
    }


def _full() -> int:
    """Everything this (root) process holds: a sandbox may lack some bits of the full set."""
    return syscalls.capget()[1]


def _have_sctp() -> bool:
    try:
        socket.socket(socket.AF_INET, socket.SOCK_STREAM, IPPROTO_SCTP).close()
    except OSError:
        return False
    return True


# -- the comparison ------------------------------------------------------------------------
def _model(session: dict[str, Any], probe: dict[str, Any]) -> str:
    verdict = bind_verdict(
        probe["port"],
        proto=probe["proto"],
        family=probe["family"],
        effective=CapSet(probe["effective"]),
        unprivileged_port_start=session["start"],
        netns_owned_by_caller_userns=session["owned"],
        caller_owns_netns_userns=session["owner"],
    )
    return "ok" if verdict.allowed else str(verdict.errno)


def test_bind_rule_matches_the_kernel(differential: Callable[..., None]) -> None:
    seed = int(os.environ.get("UNROOT_DIFF_SEED", random.randrange(2**32)))
    target = int(os.environ.get("UNROOT_DIFF_CASES", "1200"))
    print(f"bind differential: UNROOT_DIFF_SEED={seed} UNROOT_DIFF_CASES={target}")
    rng = random.Random(seed)
    protos = ["tcp", "udp"] + (["sctp"] if _have_sctp() else [])
    kinds = [_session_own] * 5 + [_session_userns_only, _session_user_net, _session_fd_passing] * 1
    began = time.monotonic()
    cases = 0
    tally: Counter[str] = Counter()
    disagreements: list[str] = []
    write_cases = 0
    while cases < target:
        session = rng.choice(kinds)(rng, 25, protos)
        for probe, kernel in zip(session["probes"], session["results"], strict=True):
            cases += 1
            model = _model(session, probe)
            tally[f"{session['kind']}:{kernel}"] += 1
            if model != kernel:
                context = {k: v for k, v in session.items() if k not in ("probes", "results")}
                disagreements.append(f"{context} {probe}: kernel {kernel}, model {model}")
        for write in session["writes"]:
            write_cases += 1
            expected = sysctl_write_error(write["value"], write["low"])
            if expected != write["errno"]:
                disagreements.append(f"sysctl write {write}: model {expected}")
    elapsed = time.monotonic() - began
    print(f"{cases} bind cases, {write_cases} sysctl writes in {elapsed:.1f}s: {dict(tally)}")
    differential("bind", seed, cases, len(disagreements), f"(+{write_cases} sysctl writes)")
    assert not disagreements, f"seed {seed}: {len(disagreements)} disagreements:\n" + "\n".join(
        disagreements[:40]
    )
    assert {key.split(":")[1] for key in tally} == {"ok", "EACCES"}


def test_sctp_uses_the_same_rule() -> None:
    if not _have_sctp():
        pytest.skip(
            "SCTP is not compiled into this kernel (socket(IPPROTO_SCTP) fails); "
            "the model treats it like TCP and UDP, as net/sctp/socket.c does"
        )
    rng = random.Random(int(os.environ.get("UNROOT_DIFF_SEED", "0")))
    session = _session_own(rng, 40, ["sctp"])
    for probe, kernel in zip(session["probes"], session["results"], strict=True):
        assert _model(session, probe) == kernel, probe
