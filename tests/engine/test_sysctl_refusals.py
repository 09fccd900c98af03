"""Which ``sysctls`` make the runtime refuse to create a container: the model
(:func:`unroot.model.runtimes.sysctl_refusal`) against the live engine.

The containers are created through the Engine API, as compose does: the ``docker run`` CLI
checks ``--sysctl`` against a whitelist of its own first ("is not whitelisted"), which compose
never does, so only the API shows what runc itself accepts.  Observed on Docker 20.10.24
(runc 1.1.5): a ``net.*`` sysctl with the host network, an IPC sysctl with the host's IPC
namespace, ``kernel.hostname`` and any host-wide sysctl (``vm.*``) are refused at start with
runc's message; everything namespaced is set.
"""

from __future__ import annotations

import http.client
import json
import socket
from typing import Any

import pytest
from _engine import LABEL, Engine

from unroot.model.runtimes import profile, sysctl_refusal

pytestmark = [pytest.mark.root, pytest.mark.engine]

SOCKET = "/var/run/docker.sock"
CASES = [
    ("net.ipv4.ip_unprivileged_port_start", "0", "bridge", ""),
    ("net.ipv4.ip_unprivileged_port_start", "0", "host", ""),
    ("net.ipv4.ip_unprivileged_port_start", "0", "none", ""),
    ("net/ipv4/ip_unprivileged_port_start", "0", "host", ""),
    ("net.core.somaxconn", "1024", "host", ""),
    ("net.ipv4.ping_group_range", "0 2147483647", "bridge", ""),
    ("kernel.shmmax", "1000000", "bridge", ""),
    ("kernel.shmmax", "1000000", "bridge", "host"),
    ("fs.mqueue.msg_max", "20", "bridge", "host"),
    ("fs.mqueue.msg_max", "20", "bridge", ""),
    ("kernel.domainname", "example.org", "bridge", ""),
    ("kernel.hostname", "web", "bridge", ""),
    ("vm.max_map_count", "262144", "bridge", ""),
    ("vm.swappiness", "10", "host", ""),
    ("fs.file-max", "100000", "bridge", ""),
]


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=60)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(60)
        self.sock.connect(self._path)


def _api(method: str, path: str, body: Any = None) -> tuple[int, Any]:
    conn = _UnixConnection(SOCKET)
    try:
        payload = None if body is None else json.dumps(body)
        headers = {"Content-Type": "application/json"} if payload else {}
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if raw.strip() else None
    finally:
        conn.close()


def _start(engine: Engine, sysctl: str, value: str, network: str, ipc: str) -> str | None:
    """Create and start a container the way compose would; runc's error, or None if it ran."""
    host_config: dict[str, Any] = {"Sysctls": {sysctl: value}, "NetworkMode": network}
    if ipc:
        host_config["IpcMode"] = ipc
    spec = {
        "Image": engine.base,
        "Cmd": ["true"],
        "Labels": {LABEL: engine.session},
        "HostConfig": host_config,
    }
    status, created = _api("POST", "/containers/create", spec)
    assert status == 201, created
    container = created["Id"]
    try:
        status, answer = _api("POST", f"/containers/{container}/start")
        if status == 204:
            return None
        return str((answer or {}).get("message"))
    finally:
        _api("DELETE", f"/containers/{container}?force=1")


@pytest.mark.parametrize(("sysctl", "value", "network", "ipc"), CASES)
def test_runc_refusals_match_the_model(
    engine: Engine, sysctl: str, value: str, network: str, ipc: str
) -> None:
    predicted = sysctl_refusal(
        profile("docker"), sysctl, host_network=network == "host", host_ipc=ipc == "host"
    )
    observed = _start(engine, sysctl, value, network, ipc)
    where = f"{sysctl}={value} network={network} ipc={ipc or 'private'} on {engine.describe()}"
    if predicted is None:
        assert observed is None, f"{where}: the model says it starts; the engine: {observed}"
    else:
        assert observed is not None, f"{where}: the model says {predicted!r}; it started"
        runc_says = predicted.split(": ", 1)[1]
        assert runc_says in observed, f"{where}: model {predicted!r}, engine {observed!r}"
