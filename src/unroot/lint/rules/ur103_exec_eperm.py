"""The program carries file capabilities the bounding set lacks: execve fails with EPERM.

What it does
    Runs the exec chain of ENTRYPOINT/CMD (through shells, inits and wrappers) with the
    runtime's start credentials and the file capabilities the build leaves each program, and
    reports the exec the kernel refuses: a file whose effective bit is set
    (``cap_…=+ep``) and whose permitted capabilities are not all obtainable — typically
    ``cap_drop: [ALL]`` (or ``capabilities.drop: [ALL]``) without adding
    ``NET_BIND_SERVICE`` back, or a capability the runtime does not grant by default
    (CRI-O's default set has no ``NET_RAW``, Docker's no ``NET_ADMIN``).

Why is this bad?
    The container does not start at all: ``exec /usr/bin/caddy: operation not permitted``.
    capabilities(7): with the file effective bit set, execve fails when a file-permitted
    capability is not in the new permitted set, and for a non-root process that set is
    ``bounding & fP``.  Hardening guides recommend ``drop: [ALL]`` — which breaks every image
    that ships ``cap_net_bind_service=+ep`` unless the capability is added back.

Example
    An image whose server has ``cap_net_bind_service=+ep``, run with ``cap_drop: [ALL]``.

Use instead
    Add the capability back (``cap_add: [NET_BIND_SERVICE]``; Kubernetes'
    ``capabilities.add``, which restricted Pod Security allows for exactly this one); or set the
    file capability without the effective bit (``=+p``) if the program raises it itself.

References
    - seed 002: "a pod that drops ALL capabilities without adding NET_BIND_SERVICE back now
      fails at exec (Operation not permitted)"
    - capabilities(7), "Safety checking for capability-dumb binaries"
    - coredns and ingress-nginx manifests: ``drop: [ALL]`` + ``add: [NET_BIND_SERVICE]``

UR103: drop ALL without adding NET_BIND_SERVICE back
    --- Dockerfile
    FROM golang:1.22 AS build
    WORKDIR /src
    COPY . .
    RUN go build -o /out/server . && setcap cap_net_bind_service=+ep /out/server
    FROM debian:12-slim
    COPY --from=build /out/server /usr/local/bin/server
    USER 10001:10001
    ENTRYPOINT ["/usr/local/bin/server", "--listen", ":80"]
    --- compose.yaml
    services:
      web:
        build: .
        network_mode: host
        cap_drop: [ALL]

Okay: NET_BIND_SERVICE added back
    --- Dockerfile
    FROM golang:1.22 AS build
    WORKDIR /src
    COPY . .
    RUN go build -o /out/server . && setcap cap_net_bind_service=+ep /out/server
    FROM debian:12-slim
    COPY --from=build /out/server /usr/local/bin/server
    USER 10001:10001
    ENTRYPOINT ["/usr/local/bin/server", "--listen", ":80"]
    --- compose.yaml
    services:
      web:
        build: .
        network_mode: host
        cap_drop: [ALL]
        cap_add: [NET_BIND_SERVICE]

UR103: a capability Docker does not grant by default
    # kind: dockerfile
    FROM debian:12-slim
    RUN apt-get update && apt-get install -y --no-install-recommends libcap2-bin
    COPY probe /usr/local/bin/probe
    RUN setcap cap_net_raw,cap_net_admin=+ep /usr/local/bin/probe
    USER 10001
    ENTRYPOINT ["/usr/local/bin/probe"]

Okay: the default set covers cap_net_raw
    # kind: dockerfile
    FROM debian:12-slim
    RUN apt-get update && apt-get install -y --no-install-recommends libcap2-bin
    COPY probe /usr/local/bin/probe
    RUN setcap cap_net_raw=+ep /usr/local/bin/probe
    USER 10001
    ENTRYPOINT ["/usr/local/bin/probe"]
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from unroot.lint.registry import Report, rule
from unroot.lint.rules import add_caps, bounding_cause, flag, last_set, related_lines
from unroot.situation import Situation


@rule("UR103", topic="exec-eperm", severity="error", kinds=("dockerfile", "compose", "k8s"))
def exec_eperm(situation: Situation) -> Iterator[Report]:
    """The program carries file capabilities the bounding set lacks: execve fails with EPERM."""
    chain = situation.chain
    if chain is None or chain.failed_at is None:
        return
    index = chain.failed_at
    link = situation.links[index]
    if not link.caps_known or link.file.file_caps is None:
        return
    step = chain.steps[index]
    caps = link.file.file_caps
    missing = caps.permitted - step.before.bounding
    if not missing:
        return  # an EPERM the bounding set does not explain: not this rule's situation
    file_caps_at = last_set(link.image_file) if link.image_file is not None else None
    location = (
        situation.where("cap_drop", "caps", "privileged")
        if situation.workload is not None and situation.workload.cap_drop
        else file_caps_at or situation.entry_location()
    )
    yield Report(
        location,
        f"exec fails with EPERM: {link.path} carries {caps.to_text()} and the bounding set "
        f"lacks {flag(missing)} because {bounding_cause(situation, missing)} — the container "
        "does not start",
        fix=(
            f"{add_caps(situation, missing)}; or, if the program raises the capability itself, "
            f"set it without the effective bit: `setcap '{replace(caps, effective=False).to_text()}"
            f"' {link.path}`"
        ),
        related=related_lines((file_caps_at, f"setcap {caps.to_text()} {link.path}")),
    )
