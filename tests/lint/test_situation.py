"""Joining facts into situations, and the model's answers each situation carries."""

from __future__ import annotations

import textwrap

import pytest

from unroot.lint.config import LintConfig
from unroot.model.caps import NET_BIND_SERVICE, CapSet
from unroot.situation import NAMED_UID, Situation, build_situations
from unroot.sources.compose.parser import parse_compose
from unroot.sources.dockerfile.parser import parse_dockerfile
from unroot.sources.k8s import parse_k8s
from unroot.sources.parsed import ParsedFile
from unroot.sources.systemd import parse_systemd_units

CAPPED = """
    FROM golang:1.22 AS build
    WORKDIR /src
    COPY . .
    RUN go build -o /out/server . && setcap cap_net_bind_service=+ep /out/server
    FROM debian:12-slim AS runtime
    COPY --from=build /out/server /usr/local/bin/server
    USER 10001:10001
    EXPOSE 80
    ENTRYPOINT ["/usr/local/bin/server"]
    CMD ["--listen", ":80"]
    FROM runtime AS debug
    USER 0:0
"""


def dockerfile(text: str, path: str = "Dockerfile") -> ParsedFile:
    return parse_dockerfile(textwrap.dedent(text).lstrip("\n"), path)


def compose(text: str, path: str = "compose.yaml") -> ParsedFile:
    return parse_compose(textwrap.dedent(text).lstrip("\n"), path)


def situations(
    *files: ParsedFile, config: LintConfig | None = None, runtime: str | None = None
) -> list[Situation]:
    dockerfiles = {f.path: f for f in files if f.kind == "dockerfile"}
    return build_situations(list(files), dockerfiles, config, runtime)


def only(found: list[Situation]) -> Situation:
    assert len(found) == 1, [s.name for s in found]
    return found[0]


def test_a_dockerfile_alone_is_run_by_docker_with_defaults_and_says_so() -> None:
    s = only(situations(dockerfile(CAPPED)))
    assert s.kind == "dockerfile"
    assert s.runtime.name == "docker"
    assert s.stage is not None
    assert s.stage.name == "debug"
    assert s.user is not None
    assert s.user.is_root
    assert any("docker run" in a for a in s.assumptions)
    assert any(a.startswith("runtime: Docker") for a in s.assumptions)


def test_compose_build_target_picks_the_stage_and_the_workload_user_wins() -> None:
    files = (
        dockerfile(CAPPED),
        compose("""
            services:
              api:
                build: {context: ., target: runtime}
                user: "20000"
                network_mode: host
        """),
    )
    s = only(situations(*files))  # the Dockerfile is joined: no standalone situation
    assert s.kind == "compose"
    assert s.stage is not None
    assert s.stage.name == "runtime"
    assert s.user is not None
    assert (s.user.uid, s.user.gid, s.user.origin) == (20000, 0, "workload")
    assert any("gid 0" in a for a in s.assumptions)
    assert s.decidable
    assert s.chain is not None
    assert s.chain.ok
    assert s.final is not None
    assert NET_BIND_SERVICE.issubset(s.final.effective)
    [bind] = s.ports
    assert (bind.port.port, bind.start, bind.start_source) == (80, 1024, "host")
    assert bind.verdict.allowed


def test_builder_decides_what_copy_from_carries() -> None:
    files = (dockerfile(CAPPED), compose("services:\n  a:\n    build: {target: runtime}\n"))
    buildkit = only(situations(*files))
    classic = only(situations(*files, config=LintConfig(builder="classic")))
    assert buildkit.builder == "buildkit"
    assert classic.builder == "classic"
    assert buildkit.service is not None
    assert buildkit.service.file.file_caps is not None
    assert classic.service is not None
    assert classic.service.file.file_caps is None
    assert any("BuildKit" in a for a in buildkit.assumptions)


@pytest.mark.parametrize(
    ("runtime", "start", "source"),
    [
        (None, 0, "runtime"),  # containerd 2: enable_unprivileged_ports
        ("containerd1", 1024, "new-netns"),
        ("cri-o", 1024, "new-netns"),
    ],
)
def test_k8s_joins_its_image_through_config_and_defaults_to_containerd2(
    runtime: str | None, start: int, source: str
) -> None:
    manifest = parse_k8s(
        textwrap.dedent("""
            apiVersion: v1
            kind: Pod
            metadata: {name: web}
            spec:
              containers:
              - name: web
                image: registry.example.org/web:1.4
                securityContext:
                  allowPrivilegeEscalation: false
                  capabilities: {drop: [ALL], add: [NET_BIND_SERVICE]}
        """),
        "pod.yaml",
    )
    config = LintConfig(images=(("registry.example.org/web", "Dockerfile"),))
    s = only(situations(manifest, dockerfile(CAPPED), config=config, runtime=runtime))
    assert s.runtime.name == (runtime or "containerd2")
    assert s.start is not None
    assert s.start.permitted == NET_BIND_SERVICE
    assert s.final is not None
    assert NET_BIND_SERVICE.issubset(s.final.effective)
    assert [(b.start, b.start_source, b.verdict.allowed) for b in s.ports] == [
        (start, source, True)
    ]


def test_k8s_command_replaces_entrypoint_and_drops_cmd() -> None:
    manifest = parse_k8s(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  containers:\n"
        "  - {name: x, image: img, command: [/bin/sh, -c, 'exec /usr/local/bin/server']}\n",
        "pod.yaml",
    )
    s = only(
        situations(manifest, dockerfile(CAPPED), config=LintConfig(images=(("img", "Dockerfile"),)))
    )
    assert [link.role for link in s.links] == ["shell", "service"]
    assert s.service is not None
    assert s.service.link.args == ()


def test_an_image_without_dockerfile_is_unknown_and_undecidable() -> None:
    s = only(situations(compose("services:\n  c:\n    image: caddy:2.8\n    ports: ['80:80']\n")))
    assert s.user is not None
    assert s.user.state == "unknown"
    assert not s.decidable
    assert s.ports == ()
    assert any("not joined to a Dockerfile" in a for a in s.assumptions)


def test_a_missing_dockerfile_is_an_assumption_not_an_error() -> None:
    s = only(situations(compose("services:\n  b:\n    build: ./nowhere\n    user: '1000'\n")))
    assert any("could not be read" in a for a in s.assumptions)


def test_interpreters_from_the_base_image_are_assumed_without_file_caps() -> None:
    text = 'FROM python:3.12-slim\nUSER 10001\nCMD ["python3", "-m", "http.server", "80"]\n'
    s = only(situations(dockerfile(text)))
    assert s.decidable
    assert any("python3 comes from the base image" in a for a in s.assumptions)
    [bind] = s.ports
    assert bind.verdict.allowed
    assert not bind.portable.allowed


def test_unknown_programs_make_the_chain_undecidable() -> None:
    s = only(situations(dockerfile('FROM nginx:1.27\nUSER nginx\nCMD ["nginx"]\n')))
    assert not s.decidable
    assert s.ports == ()


def test_a_setuid_wrapper_switches_user_and_clears_capabilities() -> None:
    text = textwrap.dedent("""
        FROM debian:12-slim
        RUN apt-get update && apt-get install -y gosu
        ENTRYPOINT ["gosu", "1000:1000", "python3", "-m", "http.server", "80"]
    """)
    s = only(situations(dockerfile(text)))
    assert s.user is not None
    assert s.user.is_root
    assert s.service_user is not None
    assert (s.service_user.uid, s.service_user.gid) == (1000, 1000)
    assert s.final is not None
    assert s.final.effective == CapSet()
    assert s.final.uid.effective == 1000


def test_compose_init_puts_docker_init_first() -> None:
    files = (
        dockerfile(CAPPED),
        compose("services:\n  a:\n    build: {target: runtime}\n    init: true\n"),
    )
    s = only(situations(*files))
    assert [link.path for link in s.links] == ["/sbin/docker-init", "/usr/local/bin/server"]


def test_systemd_socket_ports_are_bound_by_systemd() -> None:
    units = parse_systemd_units(
        {
            "app.socket": "[Socket]\nListenStream=80\n",
            "app.service": "[Service]\nUser=www\nExecStart=/usr/bin/app --port 443\n",
        }
    )
    s = only(situations(*units))
    assert s.kind == "systemd"
    assert s.runtime.name == "systemd"
    assert s.user is not None
    assert s.user.uid == NAMED_UID
    assert [b.port.port for b in s.ports] == [443]  # :80 comes from the socket unit
    assert not s.ports[0].verdict.allowed


def test_systemd_ambient_outside_bounding_is_a_start_error() -> None:
    units = parse_systemd_units(
        {
            "a.service": "[Service]\nUser=a\nCapabilityBoundingSet=CAP_CHOWN\n"
            "AmbientCapabilities=CAP_NET_BIND_SERVICE\nExecStart=/usr/bin/a\n"
        }
    )
    s = only(situations(*units))
    assert s.start is None
    assert s.start_error is not None
    assert "218" in s.start_error


@pytest.mark.parametrize(("runtime", "host_uid"), [("docker", 2200), ("docker-rootless", 102199)])
def test_bind_mount_identity_on_the_host(runtime: str, host_uid: int) -> None:
    text = "services:\n  b:\n    image: x\n    user: '2200:2200'\n"
    s = only(situations(compose(text), runtime=runtime))
    assert s.access_creds is not None
    assert s.access_creds.uid.fs == host_uid


def test_explicit_sysctl_is_its_own_source() -> None:
    files = (
        dockerfile('FROM python:3.12-slim\nUSER 1\nCMD ["python3", "-m", "http.server", "80"]\n'),
        compose("""
            services:
              a:
                build: .
                sysctls: {net.ipv4.ip_unprivileged_port_start: 80}
        """),
    )
    [bind] = only(situations(*files)).ports
    assert (bind.start, bind.start_source) == (80, "sysctl")


def test_privileged_gets_every_capability() -> None:
    text = (
        "services:\n  p:\n    image: x\n    user: '0'\n    privileged: true\n    cap_drop: [ALL]\n"
    )
    s = only(situations(compose(text)))
    assert s.start is not None
    assert s.start.bounding == CapSet.all()


@pytest.mark.parametrize(
    ("env_path", "resolved", "known"),
    [
        # the program is looked up in the image's PATH, as the runtime does (bug: the situation
        # searched Docker's default PATH only, so /app/bin/server was never found and the chain
        # stayed undecidable: UR105 was missed)
        ("ENV PATH=/app/bin:/usr/local/bin:/usr/bin:/bin", "/app/bin/server", True),
        # without ENV PATH (or with one unroot cannot expand) Docker's default PATH applies
        ("", "server", False),
        ("ENV PATH=/app/bin:$PATH", "server", False),
    ],
)
def test_programs_are_resolved_in_the_images_path(
    env_path: str, resolved: str, known: bool
) -> None:
    text = f"""
        FROM debian:12-slim
        COPY server /app/bin/server
        {env_path}
        USER 10001
        CMD ["server", "--port", "80"]
    """
    s = only(situations(dockerfile(text), runtime="containerd1"))
    assert [(link.path, link.caps_known) for link in s.links] == [(resolved, known)]
    assert s.decidable is known
    if known:
        assert [p.verdict.errno for p in s.ports] == ["EACCES"]
