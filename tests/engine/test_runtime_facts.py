"""Differential test: the Docker runtime profile (unroot.model.runtimes) against the live engine.

Each cell runs ``cat /proc/self/status /proc/sys/net/ipv4/ip_unprivileged_port_start`` as the
container's entrypoint (one execve of an uncapped program by runc) and compares, field by field,
uid/gid triples, supplementary groups, the five capability sets and NoNewPrivs with
``execve(start_creds(profile("docker"), …), ExecFile("/usr/bin/cat"))``, and the sysctl with
``unprivileged_port_start(profile("docker"), host_network, host_value)``.

Observed on Docker 20.10.24+dfsg1 (Debian 12 docker.io; containerd 1.6.20, runc 1.1.5), Linux
6.18, cgroup v1, overlay2 — and encoded below as the user table, which the model takes as input
(``start_creds`` does not resolve users):

* ``--user root`` → 0/0, groups [0]; ``--user 1000`` (no passwd entry, no group) → gid 0,
  groups [0]; ``--user 1000:1000`` → groups [1000]; ``--user nobody`` → 65534/65534, groups
  [65534] (runc puts the primary gid into the supplementary groups);
* root: permitted = effective = bounding = 0xa80425fb edited by --cap-add/--cap-drop;
  non-root: only the bounding set, empty permitted/effective/inheritable/ambient;
* ``--security-opt no-new-privileges`` → NoNewPrivs 1, nothing else changes;
* ``ip_unprivileged_port_start`` is 0 in a network namespace of Docker's own (bridge, none),
  the host's value on the host network; ``--sysctl`` sets it in an own netns, and on the host
  network the container is not created at all (runc: "not allowed in host network namespace",
  exit 125).
"""

from __future__ import annotations

import itertools
import os

import pytest
from _engine import Engine, Lab, host_port_start

from unroot.engine.docker import RunOptions
from unroot.facts.proc import parse_status
from unroot.model.creds import Creds
from unroot.model.execve import ExecFile, Kernel, execve
from unroot.model.runtimes import PORT_SYSCTL, profile, start_creds, unprivileged_port_start

pytestmark = [pytest.mark.root, pytest.mark.engine]

DOCKER = profile("docker")
#: --user → (uid, gid, supplementary groups) as Docker resolves it in the base image (observed).
USERS: dict[str, tuple[int, int, tuple[int, ...]]] = {
    "root": (0, 0, (0,)),
    "1000": (1000, 0, (0,)),
    "1000:1000": (1000, 1000, (1000,)),
    "nobody": (65534, 65534, (65534,)),
}
#: (name, cap_add, cap_drop)
CAPS: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = [
    ("default", (), ()),
    ("drop-all", (), ("ALL",)),
    ("drop-all+nbs", ("NET_BIND_SERVICE",), ("ALL",)),
    ("add-sys-admin", ("SYS_ADMIN",), ()),
]
CELLS = list(itertools.product(USERS, CAPS, (False, True), ("bridge", "host")))


def _fields(creds: Creds) -> dict[str, object]:
    return {
        "uid": creds.uid.triple(),
        "gid": creds.gid.triple(),
        "groups": sorted(creds.groups),
        "CapInh": creds.inheritable.hex(),
        "CapPrm": creds.permitted.hex(),
        "CapEff": creds.effective.hex(),
        "CapBnd": creds.bounding.hex(),
        "CapAmb": creds.ambient.hex(),
        "NoNewPrivs": creds.no_new_privs,
    }


@pytest.mark.parametrize(
    "cell", CELLS, ids=[f"{u}-{c[0]}-{'nnp' if n else 'privs'}-{w}" for u, c, n, w in CELLS]
)
def test_start_creds_and_port_sysctl_match_docker(
    lab: Lab,
    engine: Engine,
    cell: tuple[str, tuple[str, tuple[str, ...], tuple[str, ...]], bool, str],
) -> None:
    user, (_, cap_add, cap_drop), nnp, network = cell
    host_network = network == "host"
    options = RunOptions(
        user=user,
        cap_add=cap_add,
        cap_drop=cap_drop,
        no_new_privileges=nnp,
        network=network,
        entrypoint="/usr/bin/cat",
    )
    done = lab.run(
        engine.base,
        ["/proc/self/status", "/proc/sys/net/ipv4/ip_unprivileged_port_start"],
        options,
    )
    assert done.ok, f"docker run failed ({done.returncode}): {done.stderr}"
    status_text, _, sysctl_text = done.stdout.rstrip("\n").rpartition("\n")
    observed = parse_status(status_text)

    uid, gid, groups = USERS[user]
    assert (observed.uid.effective, observed.gid.effective, sorted(observed.groups)) == (
        uid,
        gid,
        sorted(groups),
    ), f"Docker resolved --user {user} differently from the test's table ({engine.describe()})"

    kernel = Kernel.parse(os.uname().release)
    start = start_creds(
        DOCKER,
        uid,
        gid,
        groups,
        cap_add,
        cap_drop,
        nnp,
        host_network,
        last_cap=kernel.last_cap,
    )
    result = execve(start, ExecFile("/usr/bin/cat"), kernel=kernel)
    assert result.ok
    predicted = _fields(result.creds)
    seen = _fields(observed.to_creds())
    wrong = {k: (predicted[k], seen[k]) for k in predicted if predicted[k] != seen[k]}
    assert not wrong, (
        f"model (predicted, observed) disagree with {engine.describe()} for "
        f"{options.flags()}: {wrong}"
    )

    host_value = host_port_start()
    want = unprivileged_port_start(DOCKER, host_network, host_value)
    assert int(sysctl_text) == want, (
        f"ip_unprivileged_port_start on --network {network}: model {want}, "
        f"observed {sysctl_text} (host {host_value})"
    )


@pytest.mark.parametrize(
    ("network", "sysctls"),
    [("none", {}), ("bridge", {PORT_SYSCTL: "80"}), ("bridge", {PORT_SYSCTL: "1024"})],
)
def test_port_sysctl_in_own_netns(
    lab: Lab, engine: Engine, network: str, sysctls: dict[str, str]
) -> None:
    # --network none is a netns of Docker's own too (IsPrivate), so it gets 0; --sysctl wins.
    done = lab.run(
        engine.base,
        ["cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"],
        RunOptions(network=network, sysctls=sysctls),
    )
    assert done.ok, done.stderr
    want = unprivileged_port_start(DOCKER, False, host_port_start(), sysctls)
    assert int(done.stdout) == want, f"{engine.describe()}: --network {network} {sysctls}"


def test_port_sysctl_refused_on_host_network(lab: Lab, engine: Engine) -> None:
    # Observed: the container is not created — runc refuses (exit 125, "sysctl
    # "net.ipv4.ip_unprivileged_port_start" not allowed in host network namespace").  The model's
    # unprivileged_port_start() returns the host's value for this input instead of an error.
    done = lab.run(
        engine.base,
        ["true"],
        RunOptions(network="host", sysctls={PORT_SYSCTL: "80"}),
    )
    assert done.returncode == 125, done
    assert "not allowed in host network namespace" in done.stderr
