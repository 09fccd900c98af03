"""The image, pod or unit runs its service as uid 0.

What it does
    Reports the final stage of a Dockerfile (or compose's ``build.target``) that runs as root
    — ``USER 0``, ``USER 0:0``, ``USER root:root``, or no ``USER`` at all over a base image that
    does not say it is non-root — unless the workload overrides it (compose ``user:``,
    Kubernetes ``runAsUser``), a wrapper in the entrypoint switches users (gosu, su-exec) or an
    entrypoint script is run (by convention those drop privileges themselves); a compose
    service or Kubernetes container that asks for root explicitly (``user: root``,
    ``runAsUser: 0``); and a systemd system service without ``User=``/``DynamicUser=`` (a
    user unit, in ``/usr/lib/systemd/user`` or ``~/.config/systemd/user``, runs as the user
    whose manager starts it; a unit without ``ExecStart=`` runs nothing: UR100).  Builder
    stages, init containers, privileged containers and ``ExecStart=+…`` (explicitly
    privileged) are not reported, nor ``ExecStart=!…``, which keeps root's credentials because
    the program switches users itself (systemd.service(5): "intended for programs that drop
    privileges themselves") — the unit's ``User=`` is then not missing.  Nor is a Dockerfile
    that sets neither ``USER`` nor ``ENTRYPOINT``/``CMD`` (``FROM postgres:16`` + ``COPY
    initdb/ …``): the base image's own start sequence runs, and the official images'
    entrypoint scripts (postgres, redis, mariadb, rabbitmq, envoy) switch to their service user
    with gosu/su-exec themselves.  A base image
    that sets a non-root ``USER`` of its own (Chainguard, Bitnami, haproxy, grafana,
    ``…:nonroot``; the table in ``unroot.lint.situation``) is not taken for root.

Why is this bad?
    Root in a container is root on the host for every file a bind mount exposes and for every
    kernel bug the seccomp profile lets through; the usual reason — a port below 1024 — has a
    non-root answer: ``cap_net_bind_service`` as a file capability, ``AmbientCapabilities=``,
    Docker's sysctl in a container network, or a socket passed in.  Informational: the image
    may need root for something the linter cannot see.

Example
    A final stage without ``USER``.

Use instead
    ``USER 10001:10001`` (numeric, so ``runAsNonRoot`` can verify it) after the last step that
    needs root; for a low port see UR105's fixes.  systemd: ``DynamicUser=yes`` or ``User=``,
    with ``AmbientCapabilities=CAP_NET_BIND_SERVICE`` or a ``.socket`` unit for low ports.

References
    - hadolint DL3002 (last USER should not be root)
    - Kubernetes Pod Security Standards, restricted: runAsNonRoot
    - systemd.exec(5): User=, DynamicUser=

UR109: a final stage without USER
    # kind: dockerfile
    FROM node:20-slim
    WORKDIR /app
    COPY . .
    CMD ["node", "server.js"]

Okay: root only in the builder stage
    # kind: dockerfile
    FROM golang:1.22 AS build
    USER 0:0
    RUN go build -o /out/app .
    FROM gcr.io/distroless/static-debian12
    COPY --from=build /out/app /app
    USER 65532:65532
    ENTRYPOINT ["/app"]

Okay: the compose service overrides the image's root user
    --- Dockerfile
    FROM node:20-slim
    WORKDIR /app
    COPY . .
    CMD ["node", "server.js"]
    --- compose.yaml
    services:
      app:
        build: .
        user: "1000:1000"

Okay: a derived official image that keeps the base image's entrypoint (it switches users)
    # kind: dockerfile
    FROM postgres:16-bookworm
    COPY initdb/ /docker-entrypoint-initdb.d/

Okay: a base image that runs as a non-root user of its own (uid 65532), no USER restated
    # kind: dockerfile
    FROM cgr.dev/chainguard/nginx:latest
    COPY nginx.default.conf /etc/nginx/conf.d/default.conf
    EXPOSE 8080

Okay: haproxy's official image sets `USER haproxy`
    # kind: dockerfile
    FROM haproxy:2.9-alpine
    COPY haproxy.cfg /usr/local/etc/haproxy/haproxy.cfg
    CMD ["haproxy", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]

UR109: the derived image's own CMD on a base image that runs as root
    # kind: dockerfile
    FROM nginx:1.27-alpine
    COPY nginx.conf /etc/nginx/nginx.conf
    CMD ["nginx", "-g", "daemon off;"]

Okay: `ExecStart=!` leaves the switch to the program (User= is not missing)
    # kind: systemd
    [Service]
    User=www
    ExecStart=!/usr/local/sbin/httpd -u www --port 80

Okay: a user unit runs as its user
    --- u/.config/systemd/user/sync.service
    [Service]
    ExecStart=/usr/bin/rclone sync remote: %h/backup

Okay: a unit whose ExecStart= is commented out runs nothing (UR100 says so, at info)
    # kind: systemd
    [Service]
    #ExecStart=/usr/local/bin/traefik
    Restart=always

UR109: a unit without User=
    # kind: systemd
    [Service]
    ExecStart=/usr/local/bin/exporter --web.listen-address=:9100

Okay: the same unit with DynamicUser=
    # kind: systemd
    [Service]
    DynamicUser=yes
    ExecStart=/usr/local/bin/exporter --web.listen-address=:9100
"""

from __future__ import annotations

from collections.abc import Iterator

from unroot.lint.registry import Report, rule
from unroot.situation import Situation


def _nonroot_path(situation: Situation) -> str:
    low = sorted({b.port.port for b in situation.ports if b.port.port < 1024})
    if low:
        ports = ", ".join(map(str, low))
        return (
            f"the only privilege the linter sees it use is binding port {ports}, which a "
            "non-root user can do with cap_net_bind_service"
        )
    return "nothing the linter sees needs root"


def _fix(situation: Situation) -> str:
    low = any(b.port.port < 1024 for b in situation.ports)
    if situation.kind == "systemd":
        extra = " with AmbientCapabilities=CAP_NET_BIND_SERVICE (or a .socket unit)" if low else ""
        if situation.user is not None and situation.user.location is not None:
            return f"replace User={situation.user.text} with DynamicUser=yes (or User=NAME){extra}"
        return f"add DynamicUser=yes (or User=){extra}"
    if situation.kind == "k8s" and situation.user and situation.user.origin == "workload":
        return "set `runAsUser` to a non-zero uid and `runAsNonRoot: true`"
    if situation.kind == "compose" and situation.user and situation.user.origin == "workload":
        return 'set `user: "10001:10001"` (any non-zero uid:gid)'
    extra = " and give the server cap_net_bind_service=+ep for its low port" if low else ""
    return f"add `USER 10001:10001` after the last instruction that needs root{extra}"


@rule("UR109", topic="runs-as-root", severity="info")
def runs_as_root(situation: Situation) -> Iterator[Report]:
    """The image, pod or unit runs its service as uid 0."""
    user, service_user, workload = situation.user, situation.service_user, situation.workload
    if user is None or service_user is None or not user.is_root or not service_user.is_root:
        return
    if workload is not None and (workload.is_init_container or workload.privileged):
        return
    if workload is not None and ("+" in workload.exec_prefixes or "!" in workload.exec_prefixes):
        return  # explicitly privileged; `!`: the program switches credentials itself
    script = any(link.role == "shell" and link.link.args[:1] != ("-c",) for link in situation.links)
    if script and user.origin != "workload":
        return  # an entrypoint script: by convention it drops privileges itself
    if user.origin == "default" and situation.stage is not None and not situation.links:
        return  # no USER, ENTRYPOINT or CMD: the base image's own start sequence, unseen
    if situation.kind == "systemd" and user.location is not None:
        where = user.location
        how = f"User={user.text} set here"
    elif situation.kind == "systemd":
        where = situation.location
        how = "no User= or DynamicUser="
    elif user.origin == "workload":
        where = user.location or situation.location
        how = f"`{user.text}` set here"
    elif user.location is not None:
        where = user.location
        how = f"USER {user.text}"
    elif situation.stage is not None:
        where = situation.stage.location
        how = f"no USER, and the base image {situation.stage.base} runs as root by default"
    else:
        return
    name = "the unit" if situation.kind == "systemd" else "the container"
    yield Report(
        where,
        f"{name} runs as root ({how}): {_nonroot_path(situation)}",
        fix=_fix(situation),
    )
