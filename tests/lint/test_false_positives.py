"""False positives are bugs: configurations that work at run time must lint clean.

Every ``tests/lint/fixtures/negative-*/`` directory models a real deployment (its header says
which one and why it works: official nginx, caddy, traefik and its chart, CoreDNS under
containerd and CRI-O, ingress-nginx, haproxy, distroless, Chainguard and Bitnami bases,
systemd units as distributions ship them, socket activation, multi-stage USER, …).  Each is
linted through the command line (``unroot lint DIR --format json``, its ``.unroot.toml`` found
the way a user's is) under the runtime it is written for, and must produce no warning or error.
``UR109 runs-as-root`` (info) is allowed only where the configuration really starts as root.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from unroot.commands.lint import run_lint
from unroot.lint.engine import lint_texts
from unroot.situation import nonroot_image

FIXTURES = Path(__file__).parent / "fixtures"
NEGATIVES = sorted(p.name for p in FIXTURES.iterdir() if p.name.startswith("negative-"))

#: The fixtures whose service really starts as root (UR109 is true for them).
RUNS_AS_ROOT = frozenset(
    {
        "negative-bind9",  # named starts as root, -u bind
        "negative-caddy-official",  # the official image sets no USER
        "negative-dnsmasq",  # dnsmasq --user=dnsmasq drops after binding
        "negative-dnsmasq-unit",
        "negative-nginx-cap-drop",  # root master with four capabilities
        "negative-nginx-official",  # root master, `user nginx;` workers
        "negative-systemd-haproxy",
        "negative-systemd-nginx",
        "negative-unbound",
    }
)
#: Other info findings that are true of a negative fixture: rule → the messages' subjects.
TRUE_INFO: dict[str, dict[str, set[str]]] = {
    # setcap on two files of the base image copies them into a new layer (a real duplicate)
    "negative-ingress-nginx": {"UR102": {"/usr/bin/dumb-init", "/usr/local/nginx/sbin/nginx"}},
}


def lint(name: str) -> tuple[int, list[dict[str, Any]]]:
    out = io.StringIO()
    code = run_lint([str(FIXTURES / name), "--format", "json"], stdout=out)
    return code, json.loads(out.getvalue())["findings"]


def false_positives(name: str, findings: list[dict[str, Any]]) -> list[str]:
    wrong = []
    for finding in findings:
        rule, message = finding["rule"], finding["message"]
        if finding["severity"] in ("warning", "error"):
            wrong.append(f"{rule} {finding['severity']}: {message}")
        elif rule == "UR109" and name not in RUNS_AS_ROOT:
            wrong.append(f"UR109 on a configuration that does not run as root: {message}")
        elif rule != "UR109":
            subjects = TRUE_INFO.get(name, {}).get(rule, set())
            if not any(f" {subject} " in message for subject in subjects):
                wrong.append(f"{rule} info: {message}")
    return wrong


def test_there_are_enough_negative_fixtures() -> None:
    assert len(NEGATIVES) >= 40


@pytest.mark.parametrize("name", NEGATIVES)
def test_a_working_configuration_lints_clean(name: str) -> None:
    code, findings = lint(name)
    assert false_positives(name, findings) == []
    assert code == 0


@pytest.mark.parametrize("name", NEGATIVES)
def test_each_fixture_says_what_it_models(name: str) -> None:
    files = [p for p in (FIXTURES / name).rglob("*") if p.is_file()]
    headed = [p for p in files if p.read_text().lstrip().startswith("#")]
    assert headed, f"{name}: no file starts with a comment naming the deployment it models"


@pytest.mark.parametrize("name", sorted(RUNS_AS_ROOT))
def test_root_fixtures_are_reported_as_root(name: str) -> None:
    """The allowance is not a blanket one: these really run as root, and UR109 says so."""
    _code, findings = lint(name)
    assert [f["rule"] for f in findings if f["rule"] == "UR109"] == ["UR109"]


TARGETARCH_SOURCES = {
    "copy": "FROM alpine:3.20\nARG TARGETARCH\nCOPY bin/${TARGETARCH}/web /web\n"
    'RUN setcap cap_net_bind_service=+ep /web\nUSER 10001\nENTRYPOINT ["/web"]\n',
    "install": "FROM alpine:3.20\nARG TARGETARCH\n"
    "RUN --mount=type=bind,source=bin,target=/mnt/bin \\\n"
    "    install -m 0755 /mnt/bin/${TARGETARCH}/web /web \\\n"
    ' && setcap cap_net_bind_service=+ep /web\nUSER 10001\nENTRYPOINT ["/web"]\n',
}


@pytest.mark.parametrize("how", sorted(TARGETARCH_SOURCES))
def test_targetarch_in_a_source_path_is_still_a_write(how: str) -> None:
    """``COPY`` then ``setcap`` stores the file twice (UR102 names the COPY); an install and its
    setcap in one RUN store it once (no UR102)."""
    result = lint_texts([("Dockerfile", "dockerfile", TARGETARCH_SOURCES[how])])
    messages = [f.message for f in result.findings if f.rule == "UR102"]
    if how == "copy":
        assert len(messages) == 1
        assert "the COPY at line 3" in messages[0]
    else:
        assert messages == []


@pytest.mark.parametrize(
    ("reference", "nonroot"),
    [
        ("cgr.dev/chainguard/nginx:latest", True),
        ("cgr.dev/chainguard/static@sha256:0123", True),
        ("cgr.dev/chainguard/wolfi-base:latest", False),  # runs as root
        ("bitnami/nginx:1.27", True),
        ("docker.io/bitnami/redis:7.4", True),
        ("bitnami/minideb:bookworm", False),
        ("haproxy:2.9-alpine", True),
        ("docker.io/library/haproxy:lts", True),
        ("haproxytech/haproxy-alpine:2.9", False),
        ("gcr.io/distroless/static-debian12:nonroot", True),
        ("gcr.io/distroless/static-debian12", False),
        ("nginxinc/nginx-unprivileged:1.27", True),
        ("envoyproxy/envoy-distroless:v1.31.2", True),
        ("envoyproxy/envoy:v1.31.2", False),
        ("grafana/grafana:11.2.0", True),
        ("prom/prometheus:v2.54.1", True),
        ("quay.io/keycloak/keycloak:25.0", True),
        ("registry.access.redhat.com/ubi9/python-312", True),
        ("registry.access.redhat.com/ubi9/ubi-minimal", False),
        ("mcr.microsoft.com/dotnet/aspnet:8.0-jammy-chiseled", True),
        ("mcr.microsoft.com/dotnet/aspnet:8.0", False),
        ("nginx:1.27", False),
        ("postgres:16", False),
        ("alpine:3.20", False),
    ],
)
def test_base_images_that_set_a_nonroot_user(reference: str, nonroot: bool) -> None:
    assert nonroot_image(reference) is nonroot


def test_false_positive_summary(capsys: pytest.CaptureFixture[str]) -> None:
    wrong = [w for name in NEGATIVES for w in false_positives(name, lint(name)[1])]
    with capsys.disabled():
        print(f"\n[lint] {len(NEGATIVES)} negative fixtures: {len(wrong)} false positives")
    assert wrong == []


def test_copy_from_a_stage_with_an_unknown_source_leaves_caps_unknown() -> None:
    """BuildKit keeps file capabilities on COPY --from: when the source path holds a platform
    ARG the parser cannot expand, the copied file's capabilities are unknown — no bind or
    sysctl finding may rest on "no file capabilities"."""
    text = (
        "FROM alpine:3.20 AS build\n"
        "RUN cp /bin/busybox /out-amd64 && setcap cap_net_bind_service=+ep /out-amd64\n"
        "FROM alpine:3.20\nARG TARGETARCH\n"
        "COPY --from=build /out-${TARGETARCH} /web\n"
        'USER 10001\nENTRYPOINT ["/web", "--port", "80"]\n'
    )
    result = lint_texts([("Dockerfile", "dockerfile", text)])
    assert {f.rule for f in result.findings} & {"UR101", "UR105", "UR106"} == set()


def _lint_path(path: Path) -> list[dict[str, Any]]:
    out = io.StringIO()
    run_lint([str(path), "--format", "json"], stdout=out)
    findings: list[dict[str, Any]] = json.loads(out.getvalue())["findings"]
    return findings


def test_a_root_unit_may_raise_its_own_nofile_hard_limit(tmp_path: Path) -> None:
    """FRR's unit: LimitNOFILE=2048 as root, whose start script runs `ulimit -n $MAX_FDS`
    (cap_sys_resource raises a hard limit): an info with that assumption, not a warning; the
    same limit for a non-root User= stays a warning."""
    unit = tmp_path / "frr.service"
    unit.write_text("[Service]\nExecStart=/usr/lib/frr/frrinit.sh start\nLimitNOFILE=2048\n")
    (root,) = [f for f in _lint_path(unit) if f["rule"] == "UR110"]
    assert root["severity"] == "info"
    assert "cap_sys_resource" in root["message"]
    unit.write_text(
        "[Service]\nUser=frr\nExecStart=/usr/lib/frr/frrinit.sh start\nLimitNOFILE=2048\n"
    )
    (nonroot,) = [f for f in _lint_path(unit) if f["rule"] == "UR110"]
    assert nonroot["severity"] == "warning"


def test_an_explicit_user_root_is_named_not_called_missing(tmp_path: Path) -> None:
    unit = tmp_path / "netdata.service"
    unit.write_text("[Service]\nUser=root\nExecStart=/usr/sbin/netdata -D\n")
    (finding,) = [f for f in _lint_path(unit) if f["rule"] == "UR109"]
    assert "User=root set here" in finding["message"]
    assert finding["line"] == 2
    assert finding["fix"] is not None
    assert finding["fix"].startswith("replace User=root with DynamicUser=yes")
