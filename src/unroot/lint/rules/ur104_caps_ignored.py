"""The program's file capabilities are ignored: no_new_privs, or a wrapper exec'd first.

What it does
    Runs the exec chain and asks the model where the capability a program's file capabilities
    promise goes missing (:func:`unroot.model.chain.where_lost`).  It reports when the kernel
    ignores them because of no_new_privs — compose ``security_opt: [no-new-privileges:true]``,
    Kubernetes ``allowPrivilegeEscalation: false`` — under a runtime that starts a non-root
    process with an empty permitted set (Docker), or because a program without file
    capabilities (``sh -c``, an init, an entrypoint script) is executed first and empties the
    permitted set that containerd/CRI-O had filled.  For ``cap_net_bind_service`` it reports
    only when a bind then fails; other capabilities are reported as warnings.

Why is this bad?
    Under no_new_privs execve may not grant anything the process did not already have
    (capabilities(7): ``pP' &= pP``).  Docker gives a non-root user an empty permitted set, so
    ``cap_net_bind_service=+ep`` on the binary gives nothing: the server starts and its
    ``bind()`` of :80 fails with EACCES (seed 002's matrix: "--security-opt
    no-new-privileges on the host network → EACCES").  containerd puts the added capabilities
    in the permitted set, so a capped binary executed *directly* keeps them under
    ``allowPrivilegeEscalation: false``, but ``sh -c`` in front of it empties the set first.

Example
    A capped server with ``no-new-privileges`` on the host network.

Use instead
    Under Docker: drop ``no-new-privileges`` for this service (file capabilities need it off),
    or leave the bind to a privileged launcher.  Under Kubernetes: exec the server directly
    (exec-form ``command``, no ``sh -c``), keep ``capabilities.add: [NET_BIND_SERVICE]``.

References
    - capabilities(7), no_new_privs; prctl(2) PR_SET_NO_NEW_PRIVS
    - kubernetes/kubernetes#56374 (no ambient capabilities)
    - ingress-nginx: allowPrivilegeEscalation had to stay true for the capped nginx binary
      (kubernetes/ingress-nginx#4061)

UR104: no-new-privileges makes the file capability useless on the host network
    --- Dockerfile
    FROM debian:12-slim
    RUN --mount=type=bind,source=dp,target=/mnt/dp \\
        install -m 0755 /mnt/dp /usr/local/bin/dp \\
     && setcap cap_net_bind_service=+ep /usr/local/bin/dp
    USER 10001:10001
    ENTRYPOINT ["/usr/local/bin/dp", "--listen", ":80"]
    --- compose.yaml
    services:
      dp:
        build: .
        network_mode: host
        security_opt: ["no-new-privileges:true"]

Okay: without no-new-privileges the file capability works
    --- Dockerfile
    FROM debian:12-slim
    RUN --mount=type=bind,source=dp,target=/mnt/dp \\
        install -m 0755 /mnt/dp /usr/local/bin/dp \\
     && setcap cap_net_bind_service=+ep /usr/local/bin/dp
    USER 10001:10001
    ENTRYPOINT ["/usr/local/bin/dp", "--listen", ":80"]
    --- compose.yaml
    services:
      dp:
        build: .
        network_mode: host

UR104: a shell wrapper empties the permitted set containerd filled
    --- .unroot.toml
    [images]
    "registry.example.org/dp:1.0" = "Dockerfile"
    --- Dockerfile
    FROM debian:12-slim
    RUN --mount=type=bind,source=dp,target=/mnt/dp \\
        install -m 0755 /mnt/dp /usr/local/bin/dp \\
     && setcap cap_net_bind_service=+ep /usr/local/bin/dp
    USER 10001:10001
    ENTRYPOINT ["/usr/local/bin/dp"]
    --- deploy.yaml
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: dp}
    spec:
      template:
        spec:
          hostNetwork: true
          containers:
          - name: dp
            image: registry.example.org/dp:1.0
            command: ["sh", "-c", "exec /usr/local/bin/dp --listen :80"]
            securityContext:
              runAsNonRoot: true
              allowPrivilegeEscalation: false
              capabilities: {drop: [ALL], add: [NET_BIND_SERVICE]}

Okay: restricted Pod Security with the capped binary executed directly
    --- .unroot.toml
    [images]
    "registry.example.org/dp:1.0" = "Dockerfile"
    --- Dockerfile
    FROM debian:12-slim
    RUN --mount=type=bind,source=dp,target=/mnt/dp \\
        install -m 0755 /mnt/dp /usr/local/bin/dp \\
     && setcap cap_net_bind_service=+ep /usr/local/bin/dp
    USER 10001:10001
    ENTRYPOINT ["/usr/local/bin/dp"]
    --- deploy.yaml
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: dp}
    spec:
      template:
        spec:
          hostNetwork: true
          containers:
          - name: dp
            image: registry.example.org/dp:1.0
            args: ["--listen", ":80"]
            securityContext:
              runAsNonRoot: true
              allowPrivilegeEscalation: false
              capabilities: {drop: [ALL], add: [NET_BIND_SERVICE]}
"""

from __future__ import annotations

from collections.abc import Iterator

from unroot.lint.registry import Report, rule
from unroot.lint.rules import drop_nnp, nnp_cause, related_lines
from unroot.model.caps import NET_BIND_SERVICE, cap_name
from unroot.model.chain import where_lost
from unroot.situation import Situation

_IGNORED = ("nnp-dropped-caps", "cap-dropped-by-earlier-exec")


def _fix(situation: Situation, code: str, service: str) -> str:
    if code == "cap-dropped-by-earlier-exec":
        return (
            f"exec {service} directly (an exec-form command without `sh -c` or a wrapper), so "
            "the capabilities the runtime puts in the permitted set reach it"
        )
    if situation.runtime.nonroot_start == "bounding-only":
        return (
            f"{drop_nnp(situation)} for this service: {situation.runtime.title} starts a non-root "
            "user with an empty permitted set, so only an exec that may raise privileges can "
            "use file capabilities"
        )
    return f"{drop_nnp(situation)}, or give the process the capability before this exec"


@rule("UR104", topic="caps-ignored", severity="error", kinds=("dockerfile", "compose", "k8s"))
def caps_ignored(situation: Situation) -> Iterator[Report]:
    """The program's file capabilities are ignored: no_new_privs, or a wrapper exec'd first."""
    chain = situation.chain
    if chain is None or not chain.ok or not situation.decidable:
        return
    service = situation.service
    if service is None or service.file.file_caps is None:
        return
    failing = [b for b in situation.ports if b.who == "service" and not b.verdict.allowed]
    for bit in service.file.file_caps.permitted:
        loss = where_lost(chain, bit)
        if loss is None:
            continue
        codes = {loss.reason.code} | {r.code for r in chain.steps[max(loss.step, 0)].result.reasons}
        code = next((c for c in _IGNORED if c in codes), None)
        if code is None:
            continue
        name = cap_name(bit)
        why = loss.reason.text
        if code == "nnp-dropped-caps":
            who = situation.service_user.label if situation.service_user else "the process"
            switch = next((k for k in situation.links if k.role == "setuid-wrapper"), None)
            if switch is not None:
                began = f"{switch.path} switches to {who}, which clears the permitted set,"
            else:
                held = chain.start.permitted
                start = f"the permitted set {held}" if held else "an empty permitted set"
                began = f"{situation.runtime.title} starts {who} with {start}"
            why = f"{began} and {nnp_cause(situation)} sets no_new_privs: {why}"
        where = (
            situation.where("no_new_privs")
            if code == "nnp-dropped-caps"
            else situation.entry_location()
        )
        fix = _fix(situation, code, service.path)
        if bit in NET_BIND_SERVICE:
            if not failing:
                continue  # harmless here (the sysctl lets it bind); UR106 says where it breaks
            ports = ", ".join(str(b.port.port) for b in failing)
            yield Report(
                where,
                f"bind() of port {ports} fails with EACCES: {service.path}'s file capability "
                f"{service.file.file_caps.to_text()} is ignored — {why}",
                fix=fix,
                related=related_lines((failing[0].port.location, f"port {failing[0].port.port}")),
            )
            continue
        yield Report(
            where,
            f"{service.path} runs without {name}: its file capability is ignored — {why}",
            fix=fix,
            severity="warning",
        )
