"""The service cannot bind its port: no cap_net_bind_service below the netns's threshold.

What it does
    For every port the service listens on (``EXPOSE``, compose ``ports``/``expose``,
    ``containerPort``, ``--port 80``/``--listen :443`` on its command line), asks the model's bind
    rule with the service's effective capabilities *after* its exec chain and the
    ``net.ipv4.ip_unprivileged_port_start`` of the network namespace it runs in: the host's
    (``network_mode: host``, ``hostNetwork: true``: 1024 by default), the value a ``sysctls``
    entry sets, the runtime's (Docker ≥ 20.10 and containerd 2 set 0 in the container's own
    netns; CRI-O and containerd 1.x leave the kernel's 1024).  Rootless engines also bind the
    published host port on the host, as the invoking user — rootless Docker from rootlesskit,
    rootless Podman from rootlessport (or pasta): reported as a warning.

Why is this bad?
    ``bind()`` fails with EACCES and the server exits ("listen tcp :80: bind: permission
    denied").  A non-root process holds no effective capability after execve unless the file
    has file capabilities or an ambient set carries them — ``cap_add`` alone only widens the
    bounding set (kubernetes#56374).  Root is no exception when ``cap_drop: [ALL]`` takes the
    capability out of its bounding set.

Example
    A non-root image on the host network that binds :80 without a file capability.

Use instead
    The smallest change for the situation, in order: add ``NET_BIND_SERVICE`` back for root;
    on the host network give the binary ``cap_net_bind_service=+ep`` in the RUN that installs
    it; in a container network that keeps 1024 (CRI-O, containerd 1.x, Podman), set the
    ``net.ipv4.ip_unprivileged_port_start`` sysctl for the pod/container; or listen on a port
    ≥ 1024 and publish/forward the low one.  A rootless engine's published low port: under
    rootless Docker give rootlesskit the capability (builtin port driver:
    ``setcap cap_net_bind_service=ep $(which rootlesskit)``) or lower the host's sysctl; under
    rootless Podman lower the host's ``net.ipv4.ip_unprivileged_port_start`` (Podman's
    documented way; capabilities on rootlessport are not).

References
    - seed 000: host networking, non-root, ports 80/443 via setcap
    - seed 002: "proxy serve error: Permission denied (os error 13)" on the host network
    - moby/moby#41030 (Docker 20.10 sets ip_unprivileged_port_start=0)
    - kubernetes/kubernetes#56374; containerd ``enable_unprivileged_ports``
    - rootless Docker: https://docs.docker.com/engine/security/rootless/ (exposing privileged
      ports)
    - rootless Podman: https://github.com/containers/podman/blob/main/rootless.md ("Podman can
      not create containers that bind to ports < 1024": modify the
      ``net.ipv4.ip_unprivileged_port_start`` sysctl); containers/podman discussion #24022
      (rootlessport: a maintainer recommends the sysctl over granting it the capability)

UR105: a non-root server on the host network without a file capability
    --- Dockerfile
    FROM golang:1.22 AS build
    WORKDIR /src
    COPY . .
    RUN go build -o /out/blog .
    FROM gcr.io/distroless/static-debian12
    COPY --from=build /out/blog /blog
    USER 2200:2200
    ENTRYPOINT ["/blog", "--listen", ":443"]
    --- compose.yaml
    services:
      blog:
        build: .
        network_mode: host

Okay: the same image on Docker's bridge network (the runtime lowers the sysctl)
    --- Dockerfile
    FROM golang:1.22 AS build
    WORKDIR /src
    COPY . .
    RUN go build -o /out/blog .
    FROM gcr.io/distroless/static-debian12
    COPY --from=build /out/blog /blog
    USER 2200:2200
    ENTRYPOINT ["/blog", "--listen", ":443"]
    --- compose.yaml
    services:
      blog:
        build: .
        ports: ["443:443"]

UR105: setpriv switches to a user and keeps nothing
    --- Dockerfile
    FROM debian:12-slim
    COPY server /usr/local/bin/server
    ENTRYPOINT ["setpriv", "--reuid=10001", "--regid=10001", "--clear-groups", "--"]
    CMD ["/usr/local/bin/server", "--port", "80"]
    --- compose.yaml
    services:
      web:
        build: .
        network_mode: host

Okay: setpriv carries cap_net_bind_service through the switch as an ambient capability
    --- Dockerfile
    FROM debian:12-slim
    COPY server /usr/local/bin/server
    ENTRYPOINT ["setpriv", "--reuid=10001", "--regid=10001", "--clear-groups", \\
                "--inh-caps=+net_bind_service", "--ambient-caps=+net_bind_service", "--"]
    CMD ["/usr/local/bin/server", "--port", "80"]
    --- compose.yaml
    services:
      web:
        build: .
        network_mode: host

UR105: root with every capability dropped
    --- Dockerfile
    FROM python:3.12-slim
    COPY app.py /app/app.py
    CMD ["python3", "-m", "http.server", "80"]
    --- compose.yaml
    services:
      web:
        build: .
        network_mode: host
        cap_drop: [ALL]

Okay: a port above 1024
    --- Dockerfile
    FROM python:3.12-slim
    COPY app.py /app/app.py
    USER 10001
    CMD ["python3", "-m", "http.server", "8080"]
    --- compose.yaml
    services:
      web:
        build: .
        network_mode: host
        cap_drop: [ALL]

UR105: CRI-O keeps 1024 in the pod's network namespace
    --- .unroot.toml
    runtime = "cri-o"
    [images]
    "registry.example.org/echo:1" = "Dockerfile"
    --- Dockerfile
    FROM python:3.12-slim
    USER 10001:10001
    CMD ["python3", "-m", "http.server", "80"]
    --- pod.yaml
    apiVersion: v1
    kind: Pod
    metadata: {name: echo}
    spec:
      containers:
      - name: echo
        image: registry.example.org/echo:1

Okay: the pod sets the sysctl
    --- .unroot.toml
    runtime = "cri-o"
    [images]
    "registry.example.org/echo:1" = "Dockerfile"
    --- Dockerfile
    FROM python:3.12-slim
    USER 10001:10001
    CMD ["python3", "-m", "http.server", "80"]
    --- pod.yaml
    apiVersion: v1
    kind: Pod
    metadata: {name: echo}
    spec:
      securityContext:
        sysctls:
        - {name: net.ipv4.ip_unprivileged_port_start, value: "80"}
      containers:
      - name: echo
        image: registry.example.org/echo:1
"""

from __future__ import annotations

from collections.abc import Iterator

from unroot.lint.registry import Report, rule
from unroot.lint.rules import add_caps, bounding_cause, file_cap_fix, set_sysctl
from unroot.model.caps import NET_BIND_SERVICE
from unroot.model.chain import where_lost
from unroot.model.runtimes import PORT_SYSCTL
from unroot.situation import PortBind, Situation
from unroot.sources.parsed import Location


def _netns(situation: Situation, bind: PortBind) -> str:
    if bind.start_source == "host":
        if situation.kind == "k8s":
            return "the node's network namespace (hostNetwork: true)"
        if situation.kind == "compose":
            return "the host's network namespace (network_mode: host)"
        return "the host's network namespace"
    if bind.start_source == "sysctl":
        return "the container's network namespace (set by its sysctls)"
    return (
        f"the container's own network namespace, which {situation.runtime.title} leaves at the "
        "kernel's default"
    )


def _why(situation: Situation) -> str:
    who = situation.service_user
    service = situation.service
    path = service.path if service is not None else "the service"
    if who is not None and who.is_root:
        return (
            f"root's capabilities are limited to the bounding set, which lacks "
            f"NET_BIND_SERVICE because {bounding_cause(situation, NET_BIND_SERVICE)}"
        )
    label = who.label if who is not None else "the service"
    detail = ""
    if situation.chain is not None:
        loss = where_lost(situation.chain, "cap_net_bind_service")
        if loss is not None and loss.reason.code != "cap-not-granted":
            detail = f" ({loss.reason.text})"
    if situation.workload is not None and situation.workload.cap_add:
        detail += (
            "; the added capability only reaches the bounding set of a non-root process "
            "(no ambient capabilities: kubernetes#56374)"
        )
    lost = ""
    image_file = service.image_file if service is not None else None
    if image_file is not None and any(e.action == "lost" for e in image_file.events):
        lost = " — its file capability is lost in the build (UR101)"
    return f"{label} runs {path} without cap_net_bind_service{lost}{detail}"


def _fix(situation: Situation, bind: PortBind) -> str:
    who = situation.service_user
    bounding = situation.start.bounding if situation.start is not None else None
    missing_bounding = bounding is not None and not NET_BIND_SERVICE.issubset(bounding)
    if who is not None and who.is_root:
        return add_caps(situation, NET_BIND_SERVICE)
    if bind.start_source == "sysctl":
        return f"lower {PORT_SYSCTL} to {bind.port.port} in the service's sysctls"
    if bind.start_source == "new-netns":
        return set_sysctl(situation, bind.port.port)
    fix = file_cap_fix(situation, bind.port.port)
    if missing_bounding:
        fix += f", and {add_caps(situation, NET_BIND_SERVICE)}"
    return fix + f"; or listen on a port ≥ 1024 (e.g. {bind.port.port + 8000})"


def _rootless_publish(situation: Situation, bind: PortBind, where: Location) -> Report:
    """The host port of a rootless engine: its port forwarder binds it as the invoking user."""
    port = bind.port.port
    sysctl = f"`sudo sysctl -w {PORT_SYSCTL}={port}` (persist it in /etc/sysctl.d/)"
    if situation.runtime.name == "podman-rootless":
        forwarder = "rootlessport / pasta"
        fix = (
            f"lower the host's {PORT_SYSCTL} to {port}: {sysctl} — Podman's documented way "
            f"(rootless.md); or publish a port ≥ {bind.start}"
        )
        assumption = (
            f"the host's {PORT_SYSCTL} is the kernel default {bind.start} "
            "(Podman's port forwarder runs without capabilities)"
        )
    else:
        forwarder = "rootlesskit"
        fix = (
            "give rootlesskit the capability and restart the daemon (builtin port driver: "
            "`sudo setcap cap_net_bind_service=ep $(which rootlesskit)`; "
            "`systemctl --user restart docker`), "
            f"or lower the host's {PORT_SYSCTL}: {sysctl}, or publish a port ≥ {bind.start}"
        )
        assumption = "rootlesskit has no cap_net_bind_service (the default install)"
    return Report(
        where,
        f"publishing host port {port} fails with EACCES under {situation.runtime.title}: "
        f"{forwarder} binds it on the host as the invoking user, and {port} is below the "
        f"host's {PORT_SYSCTL}={bind.start}",
        fix=fix,
        severity="warning",
        assumptions=(assumption,),
    )


@rule("UR105", topic="bind-fails", severity="error", kinds=("dockerfile", "compose", "k8s"))
def bind_fails(situation: Situation) -> Iterator[Report]:
    """The service cannot bind its port: no cap_net_bind_service below the netns's threshold."""
    service = situation.service
    has_file_cap = (
        service is not None
        and service.file.file_caps is not None
        and NET_BIND_SERVICE.issubset(service.file.file_caps.permitted)
    )
    reported: set[tuple[str, int]] = set()
    for bind in situation.ports:
        if bind.verdict.allowed or (bind.who, bind.port.port) in reported:
            continue
        reported.add((bind.who, bind.port.port))
        port = bind.port
        where = port.location or situation.entry_location()
        if bind.who == "rootlesskit":
            yield _rootless_publish(situation, bind, where)
            continue
        if has_file_cap:
            continue  # it had the capability and lost it: UR104 (caps-ignored) explains why
        yield Report(
            where,
            f"bind() of {port.proto} port {port.port} fails with EACCES: {_why(situation)}, and "
            f"{port.port} is below {PORT_SYSCTL}={bind.start} of {_netns(situation, bind)}",
            fix=_fix(situation, bind),
        )
