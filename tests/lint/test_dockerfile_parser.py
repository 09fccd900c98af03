"""parse_dockerfile: stages, users, ports, exec form, the security.capability history per builder.

The Dockerfiles are written for these tests, modelled on patterns of public deployments (seed
002's bind-mount install, the caddy image's COPY-then-setcap, Go/distroless multi-stage builds).
"""

from __future__ import annotations

import textwrap
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unroot.sources.dockerfile.parser import parse_dockerfile
from unroot.sources.kinds import parse_file
from unroot.sources.parsed import ImageFile, ParsedFile, Stage

NET_BIND = "cap_net_bind_service=ep"


def parse(text: str) -> ParsedFile:
    return parse_dockerfile(textwrap.dedent(text).lstrip("\n"), "Dockerfile")


def final(parsed: ParsedFile) -> Stage:
    assert parsed.dockerfile is not None, parsed.problems
    return parsed.dockerfile.final


def file_of(parsed: ParsedFile, path: str, builder: str = "buildkit", stage: int = -1) -> ImageFile:
    assert parsed.dockerfile is not None, parsed.problems
    files = parsed.dockerfile.stages[stage].files[builder]
    assert path in files, f"{path} not among {sorted(files)}"
    return files[path]


def caps_text(file: ImageFile) -> str | None:
    return file.file_caps.to_text() if file.file_caps else None


def lines(file: ImageFile) -> list[int]:
    return [layer.line for layer in file.layers_with_content]


def actions(file: ImageFile) -> list[tuple[str, int]]:
    return [(event.action, event.location.line) for event in file.events]


# -- the stories ------------------------------------------------------------------------------
SEED_002 = """
    # syntax=docker/dockerfile:1.7
    FROM rust:1.79-bookworm AS build
    WORKDIR /src
    COPY . .
    RUN cargo build --release --locked && install -D -m 0755 target/release/dp /out/dp

    FROM debian:12-slim
    RUN --mount=type=bind,from=build,source=/out/dp,target=/mnt/dp \\
        apt-get update \\
     && apt-get install -y --no-install-recommends libcap2-bin ca-certificates \\
     && install -m 0755 /mnt/dp /usr/local/bin/dp \\
     && setcap cap_net_bind_service=+ep /usr/local/bin/dp \\
     && apt-get purge -y --auto-remove libcap2-bin \\
     && rm -rf /var/lib/apt/lists/*
    USER 10001:10001
    EXPOSE 80 443
    ENTRYPOINT ["/usr/local/bin/dp"]
    CMD ["serve", "--proxy-addr", "0.0.0.0:80"]
"""


@pytest.mark.parametrize("builder", ["classic", "buildkit"])
def test_seed_002_install_and_setcap_in_one_bind_mount_run(builder: str) -> None:
    parsed = parse(SEED_002)
    assert parsed.problems == ()
    dp = file_of(parsed, "/usr/local/bin/dp", builder)
    assert caps_text(dp) == NET_BIND
    assert dp.created_how == "run"
    assert dp.created_by.line == 8
    assert lines(dp) == [8]  # one layer: created and capped by the same RUN
    assert actions(dp) == [("set", 12)]  # the physical line of the setcap
    stage = final(parsed)
    assert stage.user is not None
    assert (stage.user.uid, stage.user.gid) == (10001, 10001)
    assert stage.installed_packages == ("ca-certificates",)  # libcap2-bin purged again
    assert {(p.port, p.source) for p in stage.exposed} == {
        (80, "expose"),
        (443, "expose"),
        (80, "command-line"),
    }


def test_caddy_style_copy_from_then_setcap_stores_the_binary_twice() -> None:
    parsed = parse("""
        FROM caddy:2.8-builder AS builder
        RUN xcaddy build --with github.com/caddy-dns/cloudflare --output /usr/bin/caddy

        FROM alpine:3.20
        RUN apk add --no-cache ca-certificates libcap mailcap
        COPY --from=builder /usr/bin/caddy /usr/bin/caddy
        RUN setcap cap_net_bind_service=+ep /usr/bin/caddy
        USER caddy
        CMD ["caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]
    """)
    for builder in ("classic", "buildkit"):
        caddy = file_of(parsed, "/usr/bin/caddy", builder)
        assert caps_text(caddy) == NET_BIND
        assert caddy.created_how == "copy-from"
        assert lines(caddy) == [6, 7]  # COPY at line 6, the setcap RUN at line 7


@pytest.mark.parametrize("chown", ["", "--chown=nonroot:nonroot "])
def test_setcap_in_builder_then_copy_from_differs_per_builder(chown: str) -> None:
    parsed = parse(f"""
        FROM golang:1.22 AS build
        WORKDIR /app
        COPY . .
        RUN CGO_ENABLED=0 go build -o /out/server ./cmd/server \\
         && setcap 'cap_net_bind_service=+ep' /out/server

        FROM gcr.io/distroless/static-debian12
        COPY --from=build {chown}/out/server /server
        USER nonroot
        ENTRYPOINT ["/server", "-addr", ":443"]
    """)
    classic = file_of(parsed, "/server", "classic")
    buildkit = file_of(parsed, "/server", "buildkit")
    assert classic.file_caps is None
    assert actions(classic) == [("set", 5), ("lost", 8)]
    assert "classic builder" in classic.events[-1].why
    assert caps_text(buildkit) == NET_BIND  # fsutil copies xattrs after chown
    assert actions(buildkit) == [("set", 5), ("kept", 8)]
    assert lines(buildkit) == [8]
    assert [(p.port, p.source) for p in final(parsed).exposed] == [(443, "command-line")]


def test_setcap_then_recursive_chown_of_a_parent_loses_the_capability() -> None:
    parsed = parse("""
        FROM node:20-bookworm-slim
        RUN apt-get update && apt-get install -y libcap2-bin \\
         && setcap cap_net_bind_service=+ep /usr/local/bin/node
        WORKDIR /app
        COPY --chown=node:node . .
        RUN chown -R node:node /usr/local/bin
        USER node
        CMD ["node", "server.js"]
    """)
    node = file_of(parsed, "/usr/local/bin/node")
    assert node.file_caps is None
    assert actions(node) == [("set", 3), ("lost", 6)]
    assert "even to the same owner" in node.events[-1].why
    assert node.owner == "node:node"
    assert node.created_how == "base-image"  # the node binary comes with the image
    assert lines(node) == [1, 2, 6]  # the base image's layer, then two more copies


def test_chown_of_the_directory_without_r_keeps_the_file_caps() -> None:
    parsed = parse("""
        FROM debian:12
        RUN cp /bin/true /srv/web && setcap cap_net_bind_service=+ep /srv/web && chown app /srv
    """)
    assert caps_text(file_of(parsed, "/srv/web")) == NET_BIND


COPY_TOOLS = [
    ("cp /opt/web /usr/local/bin/web", False),
    ("cp -p /opt/web /usr/local/bin/web", False),
    ("cp -a /opt/web /usr/local/bin/web", True),
    ("cp -av /opt/web /usr/local/bin/", True),
    ("cp --preserve=xattr /opt/web /usr/local/bin/web", True),
    ("cp --preserve=all /opt/web /usr/local/bin/web", True),
    ("cp -a --no-preserve=xattr /opt/web /usr/local/bin/web", False),
    ("cp -t /usr/local/bin -a /opt/web", True),
    ("install -m 0755 /opt/web /usr/local/bin/web", False),
    ("install -D /opt/web /usr/local/bin/", False),
    ("mv /opt/web /usr/local/bin/web", True),
    ("rsync -a /opt/web /usr/local/bin/web", False),
    ("rsync -aX /opt/web /usr/local/bin/web", True),
    ("tar -C /opt -cf - web | tar -C /usr/local/bin -xf -", False),
    ("tar --xattrs -C /opt -cf - web | tar --xattrs -C /usr/local/bin -xf -", False),
    (
        "tar --xattrs -C /opt -cf - web "
        "| tar --xattrs --xattrs-include='*' -C /usr/local/bin -xf -",
        True,
    ),
    (
        "tar --xattrs -cf /tmp/w.tar -C /opt web && tar --xattrs-include='security.*' "
        "-xf /tmp/w.tar -C /usr/local/bin",
        True,
    ),
]


@pytest.mark.parametrize(("command", "kept"), COPY_TOOLS, ids=[c for c, _ in COPY_TOOLS])
def test_copying_a_capped_file(command: str, kept: bool) -> None:
    parsed = parse(f"""
        FROM debian:12-slim
        RUN cp /bin/true /opt/web && setcap cap_net_bind_service=+ep /opt/web
        RUN {command}
        ENTRYPOINT ["/usr/local/bin/web"]
    """)
    web = file_of(parsed, "/usr/local/bin/web")
    assert (caps_text(web) == NET_BIND) is kept
    if command.startswith("mv "):  # a rename: no copy, the xattr simply stays
        assert actions(web) == [("set", 2)]
        assert lines(web) == [2, 3]
        return
    assert web.events[-1].action == ("kept" if kept else "lost")
    assert web.events[-1].location.line == 3


@pytest.mark.parametrize(
    ("command", "why"),
    [
        ("sed -i 's/8080/80/' /opt/web", "sed -i"),
        ("strip --strip-unneeded /opt/web", "strip"),
        ("upx --best /opt/web", "upx"),
        ("printf 'patched' > /opt/web", "redirection"),
        ("chgrp www-data /opt/web", "chown/chgrp"),
    ],
)
def test_writes_and_ownership_changes_remove_the_capability(command: str, why: str) -> None:
    parsed = parse(f"""
        FROM debian:12-slim
        RUN cp /bin/true /opt/web && setcap cap_net_bind_service=+ep /opt/web
        RUN {command}
    """)
    web = file_of(parsed, "/opt/web")
    assert web.file_caps is None
    assert web.events[-1].action == "lost"
    assert why in web.events[-1].why
    assert lines(web) == [2, 3]


def test_chmod_and_touch_keep_the_capability_but_store_the_file_again() -> None:
    parsed = parse("""
        FROM debian:12-slim
        RUN cp /bin/true /opt/web && setcap cap_net_bind_service=+ep /opt/web
        RUN chmod 4755 /opt/web && touch /opt/web
    """)
    web = file_of(parsed, "/opt/web")
    assert caps_text(web) == NET_BIND
    assert web.setuid
    assert not web.setgid
    assert lines(web) == [2, 3]


def test_copy_from_the_context_over_a_capped_file_replaces_it() -> None:
    parsed = parse("""
        FROM debian:12-slim
        RUN apt-get update && apt-get install -y nginx libcap2-bin \\
         && setcap cap_net_bind_service=+ep /usr/sbin/nginx
        COPY nginx /usr/sbin/nginx
    """)
    nginx = file_of(parsed, "/usr/sbin/nginx", "classic")
    assert nginx.file_caps is None
    assert nginx.created_how == "copy"
    assert actions(nginx) == [("set", 3), ("lost", 4)]
    assert "moby/buildkit#2250" in nginx.events[-1].why
    # the capped binary was installed and capped in one RUN: its first copy is one layer
    assert file_of(parsed, "/usr/sbin/nginx", "buildkit").file_caps is None


@pytest.mark.parametrize(
    ("setcap", "expected"),
    [
        ("setcap cap_net_bind_service=+ep /srv/app", NET_BIND),
        ("setcap 'cap_net_bind_service=+ep' /srv/app", NET_BIND),
        (
            'setcap "cap_net_bind_service,cap_net_raw+ep" /srv/app',
            "cap_net_bind_service,cap_net_raw=ep",
        ),
        ("setcap -q CAP_NET_BIND_SERVICE=+eip /srv/app", "cap_net_bind_service=eip"),
        ("setcap cap_net_bind_service=+p /srv/app", "cap_net_bind_service=p"),
        ("setcap -v cap_net_bind_service=+ep /srv/app", None),  # -v only verifies
        ("setcap cap_net_bind_service=+ep /srv/app && setcap -r /srv/app", None),
        ("setcap cap_bogus=+ep /srv/app", None),  # setcap fails: nothing set
        ("setcap $CAPS /srv/app", NET_BIND),  # from ENV
    ],
)
def test_setcap_forms(setcap: str, expected: str | None) -> None:
    parsed = parse(f"""
        FROM debian:12-slim
        ENV CAPS=cap_net_bind_service=+ep
        COPY app /srv/app
        RUN {setcap}
        ENTRYPOINT ["/srv/app"]
    """)
    assert caps_text(file_of(parsed, "/srv/app")) == expected


def test_setcap_v3_rootid_and_one_file_per_capability_text() -> None:
    parsed = parse("""
        FROM debian:12-slim
        COPY a b /srv/
        RUN setcap -n 1000 cap_net_raw=ep /srv/a cap_net_admin=ep /srv/b
    """)
    a = file_of(parsed, "/srv/a")
    b = file_of(parsed, "/srv/b")
    assert a.file_caps is not None
    assert (a.file_caps.revision, a.file_caps.rootid) == (3, 1000)
    assert caps_text(b) == "cap_net_admin=ep"


def test_setcap_as_a_non_root_user_does_nothing() -> None:
    parsed = parse("""
        FROM debian:12-slim
        COPY app /srv/app
        USER 1000
        RUN setcap cap_net_bind_service=+ep /srv/app || true
        ENTRYPOINT ["/srv/app"]
    """)
    app = file_of(parsed, "/srv/app")
    assert app.file_caps is None
    assert app.events == ()


def test_heredoc_run_is_parsed_as_a_script() -> None:
    parsed = parse("""
        # syntax=docker/dockerfile:1
        FROM alpine:3.20
        RUN <<EOF
        set -eux
        apk add --no-cache libcap
        cp /bin/busybox /usr/local/bin/httpd
        setcap cap_net_bind_service=+ep /usr/local/bin/httpd
        EOF
        COPY --chmod=0755 <<'EOF' /docker-entrypoint.sh
        #!/bin/sh
        exec "$@"
        EOF
        ENTRYPOINT ["/docker-entrypoint.sh"]
        CMD ["httpd", "-f", "-p", "80"]
    """)
    assert parsed.problems == ()
    httpd = file_of(parsed, "/usr/local/bin/httpd")
    assert caps_text(httpd) == NET_BIND
    assert actions(httpd) == [("set", 7)]
    assert lines(httpd) == [3]
    script = file_of(parsed, "/docker-entrypoint.sh")
    assert script.created_how == "copy"
    assert script.file_caps is None
    assert [(p.port, p.source) for p in final(parsed).exposed] == [(80, "command-line")]


def test_heredoc_fed_to_a_shell_and_sh_c_one_level_deep() -> None:
    parsed = parse("""
        FROM debian:12-slim
        RUN <<EOF bash -ex
        cp /bin/true /srv/a
        setcap cap_net_raw=ep /srv/a
        EOF
        RUN ["/bin/bash", "-c", "cp /bin/true /srv/b && setcap cap_net_raw=ep /srv/b"]
        RUN sh -c 'cp /bin/true /srv/c; setcap "cap_net_raw=ep" /srv/c'
    """)
    for name in ("a", "b", "c"):
        assert caps_text(file_of(parsed, f"/srv/{name}")) == "cap_net_raw=ep"


# -- users --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("user", "uid", "gid", "is_root"),
    [
        ("www", None, None, False),
        ("0", 0, None, True),
        ("0:0", 0, 0, True),
        ("root", 0, 0, True),
        ("root:root", 0, 0, True),
        ("10001:10001", 10001, 10001, False),
        ("nobody", 65534, 65534, False),
        ("nobody:nogroup", 65534, 65534, False),
        ("app", 10001, 10001, False),  # from the useradd/groupadd below
        ("app:app", 10001, 10001, False),
        ("10001", 10001, 10001, False),  # the useradd gives its primary group
        ("$UID:$GID", 999, 998, False),  # ARG defaults
        ("${UNSET}", None, None, None),  # None: not checked (UserFact.is_root says False)
    ],
)
def test_user_forms(user: str, uid: int | None, gid: int | None, is_root: bool | None) -> None:
    parsed = parse(f"""
        FROM debian:12-slim
        ARG UID=999
        ARG GID=998
        RUN groupadd -g 10001 app && useradd -u 10001 -g app -M app
        USER {user}
    """)
    fact = final(parsed).user
    assert fact is not None
    assert fact.location is not None
    assert fact.location.line == 5
    assert (fact.uid, fact.gid) == (uid, gid)
    if is_root is not None:
        assert fact.is_root is is_root


def test_alpine_adduser_and_addgroup() -> None:
    parsed = parse("""
        FROM alpine:3.20
        RUN addgroup -S -g 101 caddy && adduser -S -D -H -u 100 -G caddy -g "Caddy web" caddy
        USER caddy
    """)
    fact = final(parsed).user
    assert fact is not None
    assert (fact.uid, fact.gid) == (100, 101)


def test_user_is_inherited_through_from_stage_and_overridden() -> None:
    parsed = parse("""
        FROM debian:12-slim AS base
        RUN useradd --uid 10001 --system app
        USER app
        FROM base AS dev
        USER 0:0
        FROM base AS final
        EXPOSE 8080
    """)
    assert parsed.dockerfile is not None
    base, dev, last = parsed.dockerfile.stages
    assert dev.base_stage == 0
    assert last.base_stage == 0
    assert dev.user is not None
    assert dev.user.is_root
    assert dev.user.location is not None
    assert dev.user.location.line == 5
    assert last.user is not None
    assert (last.user.text, last.user.uid) == ("app", 10001)
    assert last.user.location is not None
    assert last.user.location.line == 3
    assert base.user == last.user


def test_no_user_anywhere_is_none() -> None:
    stage = final(parse("FROM nginx:1.27\nEXPOSE 80\n"))
    assert stage.user is None


# -- ARG / ENV substitution, FROM ---------------------------------------------------------------
def test_arg_substitution_in_from_copy_expose_and_user() -> None:
    parsed = parse("""
        ARG REGISTRY=docker.io
        ARG GO_VERSION=1.22
        FROM ${REGISTRY}/library/golang:${GO_VERSION}-bookworm AS build
        RUN go build -o /out/app .
        FROM scratch
        ARG PORT=8443
        ARG APP_UID=65532
        ARG BIN=/app
        COPY --from=build /out/app ${BIN}
        USER ${APP_UID}:${APP_GID:-65532}
        EXPOSE ${PORT}/tcp ${METRICS_PORT:-9100}
        ENTRYPOINT ["/app"]
    """)
    assert parsed.dockerfile is not None
    build, image = parsed.dockerfile.stages
    assert build.base == "docker.io/library/golang:1.22-bookworm"
    assert image.base == "scratch"
    assert image.user is not None
    assert (image.user.uid, image.user.gid) == (65532, 65532)
    assert [(p.port, p.proto) for p in image.exposed] == [(8443, "tcp"), (9100, "tcp")]
    app = file_of(parsed, "/app", "buildkit")
    assert app.created_how == "copy-from"
    assert app.file_caps is None
    assert app.caps_known


def test_expose_forms() -> None:
    stage = final(parse("FROM x\nEXPOSE 80 80/tcp 53/udp 8000-8002 5060/sctp\n"))
    assert [(p.port, p.proto) for p in stage.exposed] == [
        (80, "tcp"),
        (80, "tcp"),
        (53, "udp"),
        (8000, "tcp"),
        (8001, "tcp"),
        (8002, "tcp"),
        (5060, "sctp"),
    ]
    assert all(p.source == "expose" and p.location is not None for p in stage.exposed)


def test_stage_references_by_name_index_and_platform() -> None:
    parsed = parse("""
        FROM --platform=$BUILDPLATFORM golang:1.22 AS Build
        RUN go build -o /out/a . && setcap cap_net_raw=ep /out/a
        FROM build AS test
        FROM alpine
        COPY --from=0 /out/a /a
        COPY --from=BUILD /out/a /b
    """)
    assert parsed.dockerfile is not None
    stages = parsed.dockerfile.stages
    assert stages[0].name == "build"
    assert stages[1].base_stage == 0
    assert caps_text(file_of(parsed, "/out/a", stage=1)) == "cap_net_raw=ep"  # inherited
    assert caps_text(file_of(parsed, "/a")) == "cap_net_raw=ep"
    assert caps_text(file_of(parsed, "/b")) == "cap_net_raw=ep"


def test_copy_from_an_external_image_has_unknown_caps_under_buildkit() -> None:
    parsed = parse("""
        FROM alpine:3.20
        COPY --from=caddy:2.8 /usr/bin/caddy /usr/bin/caddy
        ENTRYPOINT ["caddy", "run"]
    """)
    buildkit = file_of(parsed, "/usr/bin/caddy", "buildkit")
    classic = file_of(parsed, "/usr/bin/caddy", "classic")
    assert buildkit.file_caps is None
    assert not buildkit.caps_known
    assert classic.file_caps is None
    assert classic.caps_known


# -- ENTRYPOINT / CMD -------------------------------------------------------------------------
def test_exec_and_shell_forms() -> None:
    parsed = parse("""
        FROM python:3.12-slim
        SHELL ["/bin/bash", "-o", "pipefail", "-c"]
        ENV PORT=80
        COPY app.py /srv/app.py
        ENTRYPOINT python -m http.server $PORT --directory /srv
    """)
    stage = final(parsed)
    assert stage.entrypoint == (
        "/bin/bash",
        "-o",
        "pipefail",
        "-c",
        "python -m http.server $PORT --directory /srv",
    )
    assert stage.entrypoint_location is not None
    assert stage.entrypoint_location.line == 5
    assert [(p.port, p.source) for p in stage.exposed] == [(80, "command-line")]


def test_command_line_ports_are_located_where_they_are_written() -> None:
    stage = final(
        parse("""
            FROM alpine
            ENTRYPOINT ["/srv/app", "--metrics-addr", ":9090"]
            CMD ["--port", "80"]
        """)
    )
    located = [(p.port, p.location.line if p.location else 0) for p in stage.exposed]
    assert located == [(9090, 2), (80, 3)]


def test_entrypoint_resets_an_inherited_cmd() -> None:
    parsed = parse("""
        FROM debian AS base
        CMD ["bash"]
        FROM base
        ENTRYPOINT ["/usr/bin/tini", "--"]
    """)
    assert final(parsed).cmd is None
    kept = parse('FROM debian\nCMD ["serve"]\nENTRYPOINT ["/app"]\n')
    assert final(kept).cmd == ("serve",)


def test_files_exec_d_by_entrypoint_through_wrappers_and_directory_copies() -> None:
    parsed = parse("""
        FROM debian:12-slim AS build
        RUN mkdir -p /out/bin && cp /bin/true /out/bin/server \\
         && setcap cap_net_bind_service=+ep /out/bin/server
        FROM debian:12-slim
        COPY --from=build /out/bin/ /usr/local/bin/
        COPY scripts/ /opt/scripts/
        ENTRYPOINT ["/usr/bin/tini", "--", "/opt/scripts/entrypoint.sh"]
        CMD ["gosu", "app", "server", "--listen", ":80"]
    """)
    server = file_of(parsed, "/usr/local/bin/server", "buildkit")
    assert caps_text(server) == NET_BIND
    assert server.created_how == "copy-from"
    assert file_of(parsed, "/usr/local/bin/server", "classic").file_caps is None
    script = file_of(parsed, "/opt/scripts/entrypoint.sh")
    assert script.created_how == "copy"
    files = final(parsed).files["buildkit"]
    assert "/usr/bin/tini" not in files  # from the base image: not written by this Dockerfile


def test_symlinked_entrypoint_resolves_to_the_real_file() -> None:
    parsed = parse("""
        FROM alpine
        COPY traefik /usr/local/bin/traefik
        RUN ln -s /usr/local/bin/traefik /usr/bin/proxy \\
         && setcap cap_net_bind_service=+ep /usr/local/bin/traefik
        ENTRYPOINT ["proxy"]
    """)
    assert caps_text(file_of(parsed, "/usr/local/bin/traefik")) == NET_BIND


# -- problems, pragmas ----------------------------------------------------------------------
def test_problems_name_the_line() -> None:
    parsed = parse("""
        FROM alpine:3.20
        CMD ["serve", 80]
        FOOBAR x
        EXPOSE 80/tcp http
        USER
        RUN <<EOF
        never closed
    """)
    problems = {(loc.line, message.split(":")[0]) for loc, message in parsed.problems}
    assert (2, "Dockerfile parse error") in problems  # JSON array with a number
    assert (3, "unknown instruction FOOBAR") in problems
    assert (4, "EXPOSE") in problems
    assert (6, "Dockerfile parse error") in problems  # unterminated heredoc
    assert all(loc.file == "Dockerfile" for loc, _ in parsed.problems)
    stage = final(parsed)  # the valid parts still parse
    assert [(p.port, p.proto) for p in stage.exposed] == [(80, "tcp")]


def test_instruction_before_from_and_empty_files() -> None:
    parsed = parse("RUN echo hi\nFROM alpine\n")
    assert [(loc.line, m) for loc, m in parsed.problems] == [
        (1, "RUN before the first FROM (only ARG may come before it)")
    ]
    empty = parse_dockerfile("", "Dockerfile")
    assert empty.dockerfile is None
    assert empty.problems
    comments = parse_dockerfile("# syntax=docker/dockerfile:1\n# nothing\n", "Dockerfile")
    assert comments.dockerfile is None
    assert comments.problems


def test_nul_and_invalid_utf8_are_problems_not_crashes() -> None:
    parsed = parse_dockerfile("FROM alpine\nRUN echo \x00\nUSER \ud800\n", "Dockerfile")
    assert [loc.line for loc, _ in parsed.problems] == [2, 3]
    assert parsed.dockerfile is not None


def test_valid_dockerfiles_have_no_problems() -> None:
    parsed = parse("""
        # syntax=docker/dockerfile:1
        # escape=`
        FROM mcr.microsoft.com/windows/servercore:ltsc2022
        RUN echo one `
            two
        LABEL org.opencontainers.image.source="https://example.org"
        HEALTHCHECK --interval=30s CMD curl -f http://localhost/ || exit 1
        ONBUILD RUN echo child
        STOPSIGNAL SIGQUIT
        VOLUME ["/data"]
        MAINTAINER nobody
    """)
    assert parsed.problems == ()


def test_pragmas() -> None:
    """The pragma pass beside the parser: a standalone ignore= covers every line of the next
    instruction."""
    text = textwrap.dedent("""
        # unroot: ignore-file=UR110
        FROM alpine
        # unroot: ignore=UR104,caps-lost-in-build
        RUN cp /bin/true /x \\
         && setcap cap_net_raw=ep /x
        # unroot: ignore=ur105
        USER root
    """).lstrip("\n")
    assert parse_dockerfile(text, "Dockerfile").line_ignores == ()
    parsed = parse_file("dockerfile", text, "Dockerfile")
    assert parsed.file_ignores == ("UR110",)
    assert set(parsed.line_ignores) == {
        (4, "UR104"),
        (4, "caps-lost-in-build"),
        (5, "UR104"),
        (5, "caps-lost-in-build"),
        (7, "UR105"),
    }


# -- never raises -------------------------------------------------------------------------------
VALID = textwrap.dedent(SEED_002).lstrip("\n") + textwrap.dedent("""
    FROM base AS extra
    RUN <<EOF
    cp -a /usr/local/bin/dp /opt/dp && chown -R app /opt
    EOF
    COPY --from=0 --chown=app /out/ /srv/
    USER $APP:$APP
""")
_ALPHABET = [
    *"\\`\"'#$={}[]<>:,-/ \t\n\r",
    "RUN ",
    "FROM ",
    "COPY ",
    "USER ",
    "<<EOF\n",
    "EOF\n",
    "# escape=`\n",
    "--from=",
    "\\\n",
    "setcap ",
    "chown -R ",
    "&& ",
    '["a", 1]',
    "\x00",
    "é",
]


def _check(parsed: ParsedFile) -> None:
    assert isinstance(parsed, ParsedFile)
    assert not any("internal error" in message for _, message in parsed.problems), parsed.problems


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_random_text_never_raises(text: str) -> None:
    _check(parse_dockerfile(text, "Dockerfile"))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.integers(0, len(VALID)),
            st.integers(0, 3),
            st.one_of(st.sampled_from(_ALPHABET), st.text(max_size=3)),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_mutated_dockerfile_never_raises(edits: list[tuple[int, int, str]]) -> None:
    text = VALID
    for wanted, deleted, inserted in edits:
        position = min(wanted, len(text))
        text = text[:position] + inserted + text[position + deleted :]
    _check(parse_dockerfile(text, "Dockerfile"))


def _parse_cost(stages: int) -> float:
    text = "".join(f"FROM debian:12 AS s{i}\n" for i in range(stages))
    best = float("inf")
    for _ in range(2):
        start = time.process_time()
        parse_dockerfile(text, "Dockerfile")
        best = min(best, time.process_time() - start)
    return best


def test_parse_time_is_linear_in_the_number_of_from_lines() -> None:
    """Each FROM looks its base stage up by name in O(1), not by a scan of the earlier stages
    (quadratic: 40k FROMs took minutes).  Four times the stages: about four times the time."""
    assert _parse_cost(8000) / _parse_cost(2000) < 9


@pytest.mark.parametrize("before", ["", "FROM debian:12\n"])
def test_a_line_longer_than_docker_accepts_is_one_clear_problem(before: str) -> None:
    """BuildKit reads lines with Go's bufio.Scanner (64 KiB): 65535 bytes pass, 65536 fail."""
    fits = parse_dockerfile(f"FROM debian:12\nRUN echo {'a' * (65535 - 9)}\n", "Dockerfile")
    assert fits.problems == ()
    text = f"{before}RUN echo {'a' * (65536 - 9)}\nUSER 1000\n"
    problems = [(where.line, m) for where, m in parse_dockerfile(text, "Dockerfile").problems]
    line = 2 if before else 1
    assert (
        line,
        "a line of 65536 bytes: Docker's Dockerfile parser refuses a line longer than 65535 "
        'bytes ("dockerfile line greater than max allowed size of 65535"), so docker build '
        "fails",
    ) in problems
    assert not any("no instructions" in m or "parse error" in m for _, m in problems)
