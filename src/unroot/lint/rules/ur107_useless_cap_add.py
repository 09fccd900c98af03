"""A capability is added for a non-root process that has no way to use it.

What it does
    For each capability a compose service (``cap_add``) or Kubernetes container
    (``capabilities.add``) adds, runs the exec chain of its non-root service and reports the
    capability when the service ends up without it *and* nothing on the way could have taken
    it: no program of the chain has it in its file capabilities and the runtime gives no
    ambient route (Docker, containerd and CRI-O have none; rootless Podman does).  Needs the
    image's Dockerfile (compose ``build:`` or ``[images]``) to know the file capabilities.

Why is this bad?
    For a non-root process the added capability only widens the bounding set (Docker) or sits
    in a permitted set the first execve of a file without file capabilities empties
    (containerd, CRI-O): the server still cannot bind :80 — the capability does nothing, and it
    suggests a fix that is not there.  Kubernetes has no ambient capabilities
    (kubernetes#56374), so ``add: [NET_BIND_SERVICE]`` helps a non-root container only through
    file capabilities on its binary.  (A program run later with file capabilities or setuid
    could still draw on the bounding set: only the programs the linter can see are checked.)

Example
    ``capabilities.add: [NET_BIND_SERVICE]`` for ``runAsUser: 101`` running a binary without
    file capabilities.

Use instead
    Give the binary the file capability in the image (``setcap cap_net_bind_service=+ep``),
    which then draws on the added capability; or drop the ``add`` and bind ≥ 1024.

References
    - kubernetes/kubernetes#56374: ambient capabilities
    - moby ``oci/oci.go`` SetCapabilities: non-root users get the list as bounding only
    - ingress-nginx: the controller image sets ``cap_net_bind_service=+ep`` on nginx so that
      ``add: [NET_BIND_SERVICE]`` works for uid 101

UR107: NET_BIND_SERVICE added for uid 101, binary without file capabilities
    --- .unroot.toml
    [images]
    "registry.example.org/edge:2.1" = "images/edge/Dockerfile"
    --- images/edge/Dockerfile
    FROM golang:1.22 AS build
    WORKDIR /src
    COPY . .
    RUN go build -o /out/edge ./cmd/edge
    FROM gcr.io/distroless/static-debian12
    COPY --from=build /out/edge /edge
    USER 101:101
    ENTRYPOINT ["/edge"]
    --- deploy.yaml
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: edge}
    spec:
      template:
        spec:
          containers:
          - name: edge
            image: registry.example.org/edge:2.1
            args: ["--http-port", "8080"]
            securityContext:
              runAsNonRoot: true
              capabilities:
                drop: [ALL]
                add: [NET_BIND_SERVICE]

Okay: the binary carries the file capability the add feeds
    --- .unroot.toml
    [images]
    "registry.example.org/edge:2.1" = "images/edge/Dockerfile"
    --- images/edge/Dockerfile
    FROM golang:1.22 AS build
    WORKDIR /src
    COPY . .
    RUN go build -o /out/edge ./cmd/edge && setcap cap_net_bind_service=+ep /out/edge
    FROM gcr.io/distroless/static-debian12
    COPY --from=build /out/edge /edge
    USER 101:101
    ENTRYPOINT ["/edge"]
    --- deploy.yaml
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: edge}
    spec:
      template:
        spec:
          containers:
          - name: edge
            image: registry.example.org/edge:2.1
            args: ["--http-port", "80"]
            securityContext:
              runAsNonRoot: true
              capabilities:
                drop: [ALL]
                add: [NET_BIND_SERVICE]

Okay: rootless Podman raises added capabilities as ambient
    --- .unroot.toml
    runtime = "podman-rootless"
    --- Dockerfile
    FROM python:3.12-slim
    USER 10001:10001
    CMD ["python3", "-m", "http.server", "80"]
    --- compose.yaml
    services:
      web:
        build: .
        cap_add: [NET_BIND_SERVICE]
"""

from __future__ import annotations

from collections.abc import Iterator

from unroot.errors import UnrootError
from unroot.lint.registry import Report, rule
from unroot.lint.rules import flag
from unroot.model.caps import CapSet
from unroot.model.chain import where_lost
from unroot.situation import Situation


def _offered(situation: Situation, caps: CapSet) -> CapSet:
    """The capabilities a program the linter sees could take from the bounding set."""
    offered = CapSet()
    for link in situation.links:
        if link.file.file_caps is not None:
            offered |= link.file.file_caps.permitted | link.file.file_caps.inheritable
    for file in situation.files.values():
        if file.file_caps is not None:
            offered |= file.file_caps.permitted | file.file_caps.inheritable
        if file.setuid:
            offered |= caps  # a setuid program gets the whole bounding set
    return offered


@rule("UR107", topic="useless-cap-add", severity="warning", kinds=("compose", "k8s"))
def useless_cap_add(situation: Situation) -> Iterator[Report]:
    """A capability is added for a non-root process that has no way to use it."""
    workload, chain, final = situation.workload, situation.chain, situation.final
    who = situation.service_user
    if workload is None or chain is None or final is None or who is None:
        return
    if not workload.cap_add or workload.privileged or who.state != "nonroot":
        return
    if not situation.decidable or not chain.ok:
        return
    try:
        added = CapSet.parse([c for c in workload.cap_add if c.strip().upper() != "ALL"])
    except UnrootError:
        return
    useless = CapSet()
    for bit in added - _offered(situation, added):
        if bit not in final.permitted:
            useless |= CapSet.of(bit)
    if not useless:
        return
    service = situation.service
    path = service.path if service is not None else "the service"
    first = next(iter(useless))
    loss = where_lost(chain, first)
    detail = loss.reason.text if loss is not None else ""
    key = "`capabilities.add`" if situation.kind == "k8s" else "`cap_add`"
    yield Report(
        situation.where("cap_add", "caps"),
        f"{key} {flag(useless)} does nothing for {who.label}: {situation.runtime.title} has no "
        f"ambient route for it and no program it runs has it as a file capability — {detail}",
        fix=(
            f"give {path} the file capability in the image (`setcap "
            f"'{','.join('cap_' + n.lower() for n in flag(useless).split(','))}=+ep' {path}`), "
            f"which then draws on the added capability; or remove {flag(useless)} from {key}"
        ),
    )
