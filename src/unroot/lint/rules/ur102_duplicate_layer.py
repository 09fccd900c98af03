"""``setcap`` in a later instruction than the one that wrote the file stores it twice.

What it does
    Reports a file of the shipped stage that gets its file capabilities in a ``RUN`` after the
    instruction that wrote it (``COPY``, ``COPY --from``, an earlier ``RUN``), and names that
    instruction: the one known to have written the file, not a later ``RUN`` whose commands lint
    cannot follow (it *may* have rewritten the file; nothing says it did).  A ``COPY
    bin/${TARGETARCH}/x /`` writes ``/x`` whatever the ARG's value; a file no instruction names
    comes from the base image.

Why is this bad?
    A layer stores whole files: changing a file's xattr in a later layer copies the whole file
    up into that layer (overlayfs), so the image carries the binary twice — for a Go or Rust
    server, tens of megabytes pulled by every node.  It also splits the capability from the
    file's creation, where a later edit can lose it again (see UR101).

Example
    ``COPY --from=builder /usr/bin/caddy /usr/bin/caddy`` then ``RUN setcap … /usr/bin/caddy``.

Use instead
    Write the file and set its capability in one ``RUN``: install from a bind mount of the
    build stage (``RUN --mount=type=bind,from=build,source=/out/dp,target=/mnt/dp install -m
    0755 /mnt/dp /usr/local/bin/dp && setcap cap_net_bind_service=+ep /usr/local/bin/dp``, as
    seed 002's image does), or set it in the build stage and ``COPY --from`` under BuildKit,
    which keeps it.

References
    - seed 002 (API gateway image): install + setcap in one bind-mount RUN
    - moby/buildkit#2250; overlayfs copy-up: https://docs.kernel.org/filesystems/overlayfs.html

UR102: COPY --from, then setcap in its own RUN
    # kind: dockerfile
    FROM caddy:2.8-builder AS builder
    RUN xcaddy build --output /usr/bin/caddy
    FROM alpine:3.20
    RUN apk add --no-cache ca-certificates libcap
    COPY --from=builder /usr/bin/caddy /usr/bin/caddy
    RUN setcap cap_net_bind_service=+ep /usr/bin/caddy
    USER 1000:1000
    CMD ["caddy", "run", "--config", "/etc/caddy/Caddyfile"]

UR102: a file of the base image capped in a later layer (the message names the FROM)
    # kind: dockerfile
    FROM registry.k8s.io/ingress-nginx/nginx:v1.0.0
    RUN apk add --no-cache libcap && setcap cap_net_bind_service=+ep /usr/local/nginx/sbin/nginx
    USER www-data
    CMD ["/usr/local/nginx/sbin/nginx"]

Okay: installed and capped in one RUN from a bind mount
    # kind: dockerfile
    FROM caddy:2.8-builder AS builder
    RUN xcaddy build --output /out/caddy
    FROM alpine:3.20
    RUN --mount=type=bind,from=builder,source=/out/caddy,target=/mnt/caddy \\
        apk add --no-cache ca-certificates libcap \\
     && install -m 0755 /mnt/caddy /usr/bin/caddy \\
     && setcap cap_net_bind_service=+ep /usr/bin/caddy
    USER 1000:1000
    CMD ["caddy", "run", "--config", "/etc/caddy/Caddyfile"]
"""

from __future__ import annotations

from collections.abc import Iterator

from unroot.lint.registry import Report, rule
from unroot.lint.rules import last_set, related_lines
from unroot.situation import Situation

_HOW = {
    "copy": "COPY",
    "copy-from": "COPY --from",
    "add": "ADD",
    "run": "RUN",
    "base-image": "base image",
}


@rule("UR102", topic="duplicate-layer", severity="info", kinds=("dockerfile", "compose", "k8s"))
def duplicate_layer(situation: Situation) -> Iterator[Report]:
    """``setcap`` in a later instruction than the one that wrote the file stores it twice."""
    for path, file in sorted(situation.files.items()):
        layers = file.layers_with_content
        set_at = last_set(file)
        if file.file_caps is None or len(layers) < 2 or set_at is None:
            continue
        last = layers[-1]
        if set_at.file != last.file or set_at.line < last.line:
            continue  # the capability was set before the later layers (they did something else)
        how = _HOW.get(file.created_how, file.created_how)
        if file.created_how == "base-image":
            stored = f"the base image (FROM at line {file.created_by.line}) already stores it"
            fix = (
                f"nothing smaller in this Dockerfile: {path} comes from the base image, so its "
                "capability costs one copy of it; set it where the file is built (the base "
                "image's Dockerfile) to store it once"
            )
        else:
            stored = f"the {how} at line {file.created_by.line} already stored it"
            fix = (
                f"write {path} and set its capability in one RUN (install it from "
                "`RUN --mount=type=bind,from=<stage>`, then setcap), or setcap it in the build "
                "stage and COPY --from under BuildKit, which keeps the xattr"
            )
        yield Report(
            last,
            f"the setcap here stores {path} a second time: {stored}, and a capability change "
            "copies the whole file into the new layer",
            fix=fix,
            related=related_lines((file.created_by, f"{how} writes {path}")),
        )
