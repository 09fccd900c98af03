"""The runtime refuses to start the container because of a ``sysctls`` entry.

What it does
    Asks the runtime model (:func:`unroot.model.runtimes.sysctl_refusal`) about every sysctl a
    compose service or a pod sets, in the namespaces it will have.  Reports the ones that make
    runc refuse to create the container — a ``net.*`` sysctl on the host network, an IPC sysctl
    with the host's IPC namespace, ``kernel.hostname``, and any host-wide sysctl (``vm.*``,
    ``fs.file-max``, ``kernel.pid_max``) — and, under Kubernetes, the ones the kubelet's sysctl
    admission rejects (``SysctlForbidden``).

Why is this bad?
    The container never starts: ``docker compose up`` fails with ``OCI runtime create failed:
    runc create failed: sysctl "net.ipv4.ip_unprivileged_port_start" not allowed in host
    network namespace``, a pod stays ``SysctlForbidden``.  The port sysctl is the usual way in:
    someone moves a service that binds :80 by ``ip_unprivileged_port_start=0`` to
    ``network_mode: host`` and keeps the sysctl — but on the host network the container shares
    the host's network namespace, whose sysctl only the host can set.  Host-wide sysctls
    (Elasticsearch's ``vm.max_map_count``) can never be set per container.

    ``ipc: service:NAME`` / ``container:NAME`` joins another container's IPC namespace; runc
    counts that as the container's own and sets the sysctl there — even when NAME runs with
    ``ipc: host``, where it changes the host's value (observed on Docker 20.10.24) — so it is
    not reported.  The same holds for ``network_mode: container:NAME`` unless NAME is on the
    host network, which runc does detect (``service:NAME`` of a host-network service is
    reported).

Example
    ``network_mode: host`` together with ``sysctls: [net.ipv4.ip_unprivileged_port_start=0]``;
    ``ipc: host`` (a shared-memory database tuned with ``kernel.shmmax``).

Use instead
    For the port: give the server ``cap_net_bind_service`` (a file capability set in the RUN
    that installs it, or ``cap_add`` for a root process), or set the sysctl on the host
    (``/etc/sysctl.d/``), or leave the host network.  For a host-wide sysctl: set it on the
    host (a node-tuning DaemonSet under Kubernetes), not in the container.  For the host name:
    ``hostname:``.

References
    - runc ``libcontainer/configs/validate/validator.go`` (``sysctl``); observed on Docker
      20.10.24 / runc 1.1.5 (tests/engine/test_sysctl_refusals.py; ``IpcMode: host`` with
      ``kernel.shmmax``: "is not allowed in the hosts ipc namespace")
    - kubernetes ``pkg/kubelet/sysctl/allowlist.go``; "Using sysctls in a Kubernetes Cluster"
    - docker/compose#4498 (``vm.max_map_count`` "is not in a separate kernel namespace")
    - moby/moby#41030 (Docker ≥ 20.10 sets ``ip_unprivileged_port_start=0`` in its own netns)

UR118: the port sysctl on the host network
    # kind: compose
    services:
      proxy:
        image: registry.example.org/proxy:2.1
        user: "10001"
        network_mode: host
        sysctls:
          net.ipv4.ip_unprivileged_port_start: 0

Okay: the same sysctl in the container's own network namespace
    # kind: compose
    services:
      proxy:
        image: registry.example.org/proxy:2.1
        user: "10001"
        ports: ["80:80"]
        sysctls:
          net.ipv4.ip_unprivileged_port_start: 0

UR118: an IPC sysctl with the host's IPC namespace
    # kind: compose
    services:
      db:
        image: registry.example.org/db:11
        ipc: host
        sysctls:
          kernel.shmmax: 1000000

Okay: the same IPC sysctl in the container's own IPC namespace
    # kind: compose
    services:
      db:
        image: registry.example.org/db:11
        sysctls:
          kernel.shmmax: 1000000

Okay: an IPC sysctl with another container's IPC namespace (set there, not refused)
    # kind: compose
    services:
      shm:
        image: registry.example.org/shm:1
        ipc: shareable
      db:
        image: registry.example.org/db:11
        ipc: "service:shm"
        sysctls:
          kernel.shmmax: 1000000

UR118: a net sysctl in the network namespace of a host-network service
    # kind: compose
    services:
      edge:
        image: registry.example.org/edge:3
        network_mode: host
      sidecar:
        image: registry.example.org/sidecar:1
        network_mode: "service:edge"
        sysctls:
          net.ipv4.ip_unprivileged_port_start: 0

Okay: a net sysctl in another container's own network namespace
    # kind: compose
    services:
      app:
        image: registry.example.org/app:3
      sidecar:
        image: registry.example.org/sidecar:1
        network_mode: "container:app_1"
        sysctls:
          net.ipv4.ip_unprivileged_port_start: 0

UR118: a host-wide sysctl
    # kind: compose
    services:
      search:
        image: registry.example.org/search:8.15
        sysctls:
          - vm.max_map_count=262144

UR118: a pod on the node network with the port sysctl
    # kind: k8s
    apiVersion: v1
    kind: Pod
    metadata:
      name: dns
    spec:
      hostNetwork: true
      securityContext:
        sysctls:
          - name: net.ipv4.ip_unprivileged_port_start
            value: "53"
      containers:
        - name: dns
          image: registry.example.org/dns:1.11

UR118: a pod on the node's IPC namespace with an IPC sysctl
    # kind: k8s
    apiVersion: v1
    kind: Pod
    metadata:
      name: db
    spec:
      hostIPC: true
      securityContext:
        sysctls:
          - name: kernel.shm_rmid_forced
            value: "1"
      containers:
        - name: db
          image: registry.example.org/db:11

Okay: the same IPC sysctl in the pod's own IPC namespace
    # kind: k8s
    apiVersion: v1
    kind: Pod
    metadata:
      name: db
    spec:
      securityContext:
        sysctls:
          - name: kernel.shm_rmid_forced
            value: "1"
      containers:
        - name: db
          image: registry.example.org/db:11

Okay: a safe sysctl in the pod's own network namespace
    # kind: k8s
    apiVersion: v1
    kind: Pod
    metadata:
      name: dns
    spec:
      securityContext:
        sysctls:
          - name: net.ipv4.ip_unprivileged_port_start
            value: "53"
      containers:
        - name: dns
          image: registry.example.org/dns:1.11
"""

from __future__ import annotations

from collections.abc import Iterator

from unroot.lint.registry import Report, rule
from unroot.model.runtimes import PORT_SYSCTL, sysctl_key, sysctl_namespace, sysctl_refusal
from unroot.situation import Situation


@rule("UR118", topic="sysctl-refused", severity="error", kinds=("compose", "k8s"))
def sysctl_refused(situation: Situation) -> Iterator[Report]:
    """The runtime refuses to start the container because of a ``sysctls`` entry."""
    workload = situation.workload
    if workload is None or not workload.sysctls:
        return
    for name, value in workload.sysctls:
        why = sysctl_refusal(
            situation.runtime,
            name,
            host_network=situation.host_network,
            host_ipc=workload.host_ipc,
        )
        if why is None:
            continue
        yield Report(
            situation.where("sysctls"),
            f"the container never starts: {why}",
            fix=_fix(situation, sysctl_key(name), value),
        )


def _fix(situation: Situation, name: str, value: str) -> str:
    host_net = "`network_mode: host`" if situation.kind == "compose" else "`hostNetwork: true`"
    namespace = sysctl_namespace(name)
    if name == "kernel.hostname":
        where = "`hostname:`" if situation.kind == "compose" else "the pod's `hostname`"
        return f"remove the sysctl and set the name with {where}"
    if namespace is None or (namespace == "uts" and situation.kind == "k8s"):
        on_host = f"`sysctl -w {name}={value}` in /etc/sysctl.d/ on every host"
        if situation.kind == "k8s":
            on_host += " (a node-tuning DaemonSet)"
        return (
            f"remove it from the container: it is host-wide, set it on the host instead ({on_host})"
        )
    if namespace == "ipc" and situation.workload is not None and situation.workload.host_ipc:
        host_ipc = "`ipc: host`" if situation.kind == "compose" else "`hostIPC: true`"
        return (
            f"remove the sysctl and set {name} on the host (/etc/sysctl.d/): with {host_ipc} the "
            f"container uses the host's IPC namespace; or drop {host_ipc}"
        )
    if name == PORT_SYSCTL and situation.host_network:
        return (
            f"remove the sysctl: with {host_net} the container binds in the host's network "
            "namespace, so give the server cap_net_bind_service instead (a file capability set "
            "in the RUN that installs it), set the sysctl on the host, or drop " + host_net
        )
    return f"remove the sysctl (set it on the host), or drop {host_net}"
