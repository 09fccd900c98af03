"""A file capability set during the build does not reach the image.

What it does
    Follows the ``security.capability`` xattr of every file the build gives file capabilities
    (``setcap``) to the stage that becomes the image (the final stage, or compose's
    ``build.target``), under the builder in use, and reports the instruction that loses it:
    ``COPY``/``ADD`` from the build context, ``COPY --from`` under the classic builder, a later
    ``chown``/``chgrp``, ``cp`` without ``-a``, ``install``, ``tar``/``rsync`` without their
    xattr options, a rewrite of the file, a ``setcap`` run as a non-root ``USER``.  A
    ``setcap`` reached through ``find … -exec``/``-execdir``, ``… | xargs`` or a ``for`` loop
    counts for the files it names as far as they can be known (a ``find`` whose tests unroot
    does not evaluate, ``xargs`` fed by ``ls``, ``$(…)``: the capabilities are unknown and the
    rule is silent); ``ONBUILD RUN setcap`` counts in the stage built ``FROM`` its stage, not in
    its own (both builders run the triggers of an earlier stage of the same Dockerfile:
    moby/buildkit#5490).  ``ADD`` of a local archive extracts its members with the
    ``security.capability`` their ``SCHILY.xattr`` records carry (observed on Docker 20.10 with
    both builders, also with ``--chown``, which does not reach extracted members): what they
    carry is unknown.

Why is this bad?
    The kernel grants file capabilities only from the xattr on the file that is executed.  When
    the build drops it, the image's program starts without the capability the Dockerfile meant
    to give it — usually ``cap_net_bind_service``, so a non-root server cannot bind :80 or
    :443 — and nothing in the build output says so.  Builders differ: BuildKit (the default
    since Docker 23) keeps the xattr on ``COPY --from=<stage>``, the classic builder drops it
    (moby/moby#38132); both drop it on ``COPY`` from the build context (moby/buildkit#2250).
    The message names the builder it assumes; set ``builder = "classic"`` in ``.unroot.toml``
    if you build with the legacy builder.

Example
    ``RUN setcap … /usr/local/bin/server && chown app /usr/local/bin/server``: the chown clears
    the capability the setcap just wrote.

Use instead
    Set the capability last, after every copy and ownership change of the file, in the stage
    that ships — ideally in the RUN that installs the file (seed 002's bind-mount install), or
    use ``COPY --chown`` instead of ``RUN chown``.

References
    - moby/buildkit#2250: COPY from the context drops security.capability
    - moby/moby#38132: COPY --from drops xattrs with the classic builder
    - moby/buildkit#5490, #5578: ONBUILD triggers of a stage run in the stage built FROM it,
      and only there
    - capabilities(7), "File capabilities"; setcap(8)

UR101: the classic builder drops the capability on COPY --from
    --- .unroot.toml
    builder = "classic"
    --- Dockerfile
    FROM golang:1.22 AS build
    WORKDIR /src
    COPY . .
    RUN go build -o /out/server ./cmd/server && setcap cap_net_bind_service=+ep /out/server
    FROM gcr.io/distroless/base-debian12
    COPY --from=build /out/server /server
    USER 65532:65532
    ENTRYPOINT ["/server", "--listen", ":80"]

Okay: BuildKit keeps it on COPY --from
    --- Dockerfile
    FROM golang:1.22 AS build
    WORKDIR /src
    COPY . .
    RUN go build -o /out/server ./cmd/server && setcap cap_net_bind_service=+ep /out/server
    FROM gcr.io/distroless/base-debian12
    COPY --from=build /out/server /server
    USER 65532:65532
    ENTRYPOINT ["/server", "--listen", ":80"]

UR101: a chown after the setcap
    # kind: dockerfile
    FROM debian:12-slim
    RUN apt-get update && apt-get install -y --no-install-recommends libcap2-bin
    COPY server /usr/local/bin/server
    RUN setcap cap_net_bind_service=+ep /usr/local/bin/server \\
     && chown 10001:10001 /usr/local/bin/server
    USER 10001:10001
    CMD ["server", "--port", "80"]

Okay: the capability is set after the ownership change
    # kind: dockerfile
    FROM debian:12-slim
    RUN apt-get update && apt-get install -y --no-install-recommends libcap2-bin
    COPY --chown=10001:10001 server /usr/local/bin/server
    RUN setcap cap_net_bind_service=+ep /usr/local/bin/server
    USER 10001:10001
    CMD ["server", "--port", "80"]

UR101: a chown after a find -exec setcap
    # kind: dockerfile
    FROM debian:12-slim
    COPY webd webctl /usr/local/bin/
    RUN find /usr/local/bin -type f -name 'web*' -exec setcap cap_net_bind_service=+ep {} \\; \\
     && chown -R 10001 /usr/local/bin
    USER 10001
    CMD ["webd", "--listen", ":80"]

Okay: find -exec setcap last (or xargs, or a for loop over the files)
    # kind: dockerfile
    FROM debian:12-slim
    COPY --chown=10001 webd webctl /usr/local/bin/
    RUN find /usr/local/bin -name 'web*' -print0 | xargs -0 -n1 setcap cap_net_bind_service=+ep
    USER 10001
    CMD ["webd", "--listen", ":80"]

UR101: an ONBUILD trigger runs in the stage built FROM its stage, before its chown
    # kind: dockerfile
    FROM debian:12-slim AS base
    COPY httpd /usr/local/bin/httpd
    ONBUILD RUN setcap cap_net_bind_service=+ep /usr/local/bin/httpd
    FROM base
    RUN chown 10001 /usr/local/bin/httpd
    USER 10001
    CMD ["httpd", "-p", "80"]

Okay: an ONBUILD setcap does not run in its own stage: nothing is lost here
    # kind: dockerfile
    FROM debian:12-slim
    COPY httpd /usr/local/bin/httpd
    ONBUILD RUN setcap cap_net_bind_service=+ep /usr/local/bin/httpd
    RUN chown 10001 /usr/local/bin/httpd
    USER 10001
    CMD ["httpd", "-p", "8080"]
"""

from __future__ import annotations

from collections.abc import Iterator

from unroot.lint.registry import Report, rule
from unroot.lint.rules import related_lines
from unroot.situation import Situation
from unroot.sources.parsed import CapsEvent, ImageFile

_BUILDER = {"buildkit": "BuildKit", "classic": "the classic builder"}


def _lost(file: ImageFile) -> tuple[CapsEvent, CapsEvent] | None:
    """(the last setcap, the first loss after it) when the file ends without capabilities."""
    if file.file_caps is not None or not file.caps_known:
        return None
    last_set = None
    for index, event in enumerate(file.events):
        if event.action == "set":
            last_set = index
    if last_set is None:
        return None
    for event in file.events[last_set + 1 :]:
        if event.action in ("lost", "removed"):
            return (file.events[last_set], event) if event.action == "lost" else None
    return None


def _fix(why: str, path: str, caps: str) -> str:
    setcap = f"`setcap '{caps}' {path}`"
    if "classic builder" in why:
        return (
            "build with BuildKit (DOCKER_BUILDKIT=1, the default since Docker 23), which keeps "
            f"it on COPY --from; or run {setcap} in the final stage after the copy"
        )
    if "chown" in why:
        return f"use COPY --chown instead of RUN chown, or run {setcap} after the chown"
    if "non-root USER" in why:
        return f"run {setcap} before the USER instruction (setcap needs CAP_SETFCAP)"
    if "tar" in why:
        return f"create and extract with tar --xattrs --xattrs-include='*', or run {setcap} after"
    if "rsync" in why:
        return f"copy with rsync -X (or -aX), or run {setcap} after the copy"
    if "cp " in why or "cp without" in why:
        return f"copy with cp -a (or --preserve=xattr), or run {setcap} after the copy"
    return (
        f"run {setcap} after the last copy or change of the file, in the stage that ships "
        "(ideally in the RUN that installs it)"
    )


@rule("UR101", topic="caps-lost-in-build", severity="error", kinds=("dockerfile", "compose", "k8s"))
def caps_lost_in_build(situation: Situation) -> Iterator[Report]:
    """A file capability set during the build does not reach the image."""
    builder = _BUILDER.get(situation.builder, situation.builder)
    service = situation.service
    for path, file in sorted(situation.files.items()):
        found = _lost(file)
        if found is None:
            continue
        set_event, lost = found
        caps = set_event.caps.to_text() if set_event.caps else "its file capabilities"
        consequence = ""
        if service is not None and service.path == path:
            who = situation.service_user.label if situation.service_user else "the service"
            consequence = f"; the service starts as {who} without {caps}"
        yield Report(
            lost.location,
            f"under {builder}, {path} loses its file capability {caps} here ({lost.why}): "
            f"the image's {path} has no file capabilities{consequence}",
            fix=_fix(lost.why, path, caps),
            related=related_lines((set_event.location, f"setcap {caps} {path}")),
        )
