"""The port binds only because the runtime lowers ``ip_unprivileged_port_start`` for it.

What it does
    Reports a port below 1024 that a service without ``cap_net_bind_service`` binds only
    because the runtime sets ``net.ipv4.ip_unprivileged_port_start=0`` in the container's own
    network namespace (Docker ≥ 20.10, containerd 2 with ``enable_unprivileged_ports``), with
    no ``sysctls`` entry of its own saying so.  The model asks the same bind question with the
    kernel's default of 1024 and reports when the answer flips.

Why is this bad?
    It works — here.  The same image fails with EACCES on the host network (``network_mode:
    host``, ``hostNetwork: true``), under CRI-O and containerd 1.x (which leave the sysctl at
    1024), under rootless Podman, and on Docker before 20.10 (seed 002 found exactly this when
    customers moved the image to ``hostNetwork``).  A warning, not an error.

Example
    A non-root Python server on :80 on Docker's default bridge network.

Use instead
    Give the binary ``cap_net_bind_service=+ep`` in the RUN that installs it (it then binds on
    every runtime and network that keeps ``NET_BIND_SERVICE`` in the bounding set), or state
    the dependency: compose ``sysctls: [net.ipv4.ip_unprivileged_port_start=80]``, pod
    ``securityContext.sysctls``; or listen on a port ≥ 1024.  When the executable is a script
    (copied from a ``.py``/``.sh``/``.pl``/… file of the build context, written by a
    here-document that starts with ``#!``, or named so), the fix never says ``setcap`` on it:
    the kernel ignores file capabilities on scripts (a ``setcap cap_net_bind_service+ep s.sh``
    run as uid 65534 through ``setpriv`` shows ``CapEff: 0``), and one on the interpreter would
    reach every script it runs.  It points to the server binary the script starts (named when
    a here-document script ends by ``exec``-ing it, through gosu, su-exec or setpriv), or to
    passing the socket in; keeping the sysctl, stated, stays an option.  (A script copied from
    the build context is recognised by its name; lint does not read its text yet.)  An
    entrypoint script that picks its program itself (no arguments, or options only) while the
    build gives some file capabilities — coturn's ``docker-entrypoint.sh --log-file=stdout``
    ending in ``exec turnserver``, with ``setcap`` on ``turnserver`` — is not judged from the
    script's own lack of them: the program it runs, and its capabilities, are unknown.

References
    - moby/moby#41030: Docker 20.10 sets ip_unprivileged_port_start=0
    - containerd ``enable_unprivileged_ports`` (default on only from 2.0); CRI-O does not set it
    - seed 002: the image bound :80 in plain Docker and failed with hostNetwork

UR106: a non-root server on :80 on Docker's bridge network
    # kind: dockerfile
    FROM python:3.12-slim
    USER 10001:10001
    CMD ["python3", "-m", "http.server", "80"]

UR106: a Python start-up script: the fix is not `setcap` on the script
    # kind: dockerfile
    FROM debian:12-slim
    RUN useradd -u 953 pdns
    COPY dockerdata/startup.py /usr/local/sbin/pdns_server-startup
    USER pdns
    EXPOSE 53/udp
    ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/sbin/pdns_server-startup"]

Okay: the dependency on the sysctl is stated in the compose file
    --- Dockerfile
    FROM python:3.12-slim
    USER 10001:10001
    CMD ["python3", "-m", "http.server", "80"]
    --- compose.yaml
    services:
      web:
        build: .
        sysctls:
          - net.ipv4.ip_unprivileged_port_start=80

Okay: the entrypoint script picks its program, and the build gives turnserver the capability
    # kind: dockerfile
    FROM debian:12-slim
    COPY turnserver /usr/bin/turnserver
    COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
    RUN setcap CAP_NET_BIND_SERVICE=+ep /usr/bin/turnserver
    USER nobody:nogroup
    EXPOSE 80
    ENTRYPOINT ["docker-entrypoint.sh"]
    CMD ["--log-file=stdout"]

Okay: the binary carries the file capability, so the sysctl does not matter
    # kind: dockerfile
    FROM debian:12-slim
    RUN --mount=type=bind,source=server,target=/mnt/server \\
        install -m 0755 /mnt/server /usr/local/bin/server \\
     && setcap cap_net_bind_service=+ep /usr/local/bin/server
    USER 10001:10001
    ENTRYPOINT ["/usr/local/bin/server", "--port", "80"]
"""

from __future__ import annotations

from collections.abc import Iterator

from unroot.lint.registry import Report, rule
from unroot.lint.rules import file_cap_fix, set_sysctl
from unroot.model.runtimes import PORT_SYSCTL
from unroot.situation import Situation

_BREAKS = {
    "compose": "with network_mode: host, under Podman and on Docker before 20.10",
    "dockerfile": "with --network host, under Kubernetes with CRI-O or containerd 1.x (and "
    "hostNetwork anywhere), under Podman and on Docker before 20.10",
    "k8s": "with hostNetwork: true and under CRI-O or containerd 1.x",
}


@rule(
    "UR106",
    topic="works-only-by-sysctl",
    severity="warning",
    kinds=("dockerfile", "compose", "k8s"),
)
def works_only_by_sysctl(situation: Situation) -> Iterator[Report]:
    """The port binds only because the runtime lowers ``ip_unprivileged_port_start`` for it."""
    seen: set[int] = set()
    service = situation.service
    path = service.path if service is not None else "the service"
    who = situation.service_user.label if situation.service_user else "the service"
    for bind in situation.ports:
        port = bind.port.port
        if bind.who != "service" or port in seen or bind.start_source != "runtime":
            continue
        if not bind.verdict.allowed or bind.portable.allowed:
            continue
        seen.add(port)
        fix = file_cap_fix(situation, port)
        yield Report(
            bind.port.location or situation.entry_location(),
            f"{bind.port.proto} port {port} binds only because {situation.runtime.title} sets "
            f"{PORT_SYSCTL}={bind.start} in the container's network namespace: {who} runs "
            f"{path} without cap_net_bind_service, so the same bind fails with EACCES "
            f"{_BREAKS.get(situation.kind, 'where the sysctl is not lowered')}",
            fix=f"{fix}; or state the dependency: {set_sysctl(situation, port)}",
        )
