"""The kubelet's runAsNonRoot check (UR114) and the runtime-correct user assumptions.

The table rows come from the sources the model follows: kubernetes
``pkg/kubelet/kuberuntime/security_context_others.go`` (``verifyRunAsNonRoot``) and
``kuberuntime_container.go`` (``getImageUser``: no uid and no name → uid 0); containerd and CRI-O
``getUserFromImage`` (the part before ``:``; ``strconv.ParseInt`` or a name); apimachinery
``validation.IsValidUserID`` (0 … 2147483647).  The fixtures are real deployments run through
the real CLI.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from unroot.lint.config import LintConfig, config_from_mapping
from unroot.lint.engine import LintOptions, lint_texts
from unroot.situation import MAX_USER_ID, Situation, build_situations, verify_run_as_non_root
from unroot.sources.compose.parser import parse_compose
from unroot.sources.dockerfile.parser import parse_dockerfile
from unroot.sources.k8s import parse_k8s
from unroot.sources.parsed import ParsedFile

FIXTURES = Path(__file__).parent / "fixtures"
NON_NUMERIC = (
    "container has runAsNonRoot and image has non-numeric user ({}), cannot verify user is non-root"
)
AS_ROOT = "container has runAsNonRoot and image will run as root"


# -- the kubelet's check ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("run_as_user", "image_user", "cause"),
    [
        (0, "10001", "run-as-user-root"),  # runAsUser decides alone, the image is not read
        (0, "", "run-as-user-root"),
        (1, "root", None),
        (10001, "nginx", None),
        (None, "", "image-root"),  # no User: getImageUser returns uid 0
        (None, "0", "image-root"),
        (None, "0:0", "image-root"),
        (None, "+0", "image-root"),  # ParseInt takes a sign
        (None, ":10001", "image-root"),  # empty name: neither uid nor name → uid 0
        (None, "root", "image-non-numeric"),  # root is a name
        (None, "root:root", "image-non-numeric"),
        (None, "nginx", "image-non-numeric"),
        (None, "app:app", "image-non-numeric"),
        (None, "nobody", "image-non-numeric"),
        (None, "10001 ", "image-non-numeric"),  # ParseInt takes no blanks
        (None, "9223372036854775808", "image-non-numeric"),  # beyond int64: a name
        (None, "4294967294", "image-invalid-uid"),
        (None, "-1", "image-invalid-uid"),
        (None, "10001", None),
        (None, "10001:app", None),  # only the user part is read
        (None, "65532:65532", None),
        (None, str(MAX_USER_ID), None),
    ],
)
def test_verify_run_as_non_root(
    run_as_user: int | None, image_user: str, cause: str | None
) -> None:
    found = verify_run_as_non_root(run_as_user, image_user)
    assert (found[0] if found else None) == cause


def test_kubelet_messages() -> None:
    assert verify_run_as_non_root(None, "app:app") == (
        "image-non-numeric",
        NON_NUMERIC.format("app"),
    )
    assert verify_run_as_non_root(None, "") == ("image-root", AS_ROOT)
    assert verify_run_as_non_root(0, "") == (
        "run-as-user-root",
        "container's runAsUser breaks non-root policy",
    )


@given(st.one_of(st.none(), st.integers(0, 2**40)), st.text(max_size=30))
def test_verify_never_raises_and_passes_only_for_a_non_zero_uid(
    run_as_user: int | None, image_user: str
) -> None:
    found = verify_run_as_non_root(run_as_user, image_user)
    if run_as_user is not None:
        assert (found is None) == (run_as_user != 0)
        return
    name = image_user.split(":", 1)[0]
    numeric = name.lstrip("+-").isascii() and name.lstrip("+-").isdigit() and name[:1] != " "
    if found is None:
        assert numeric
        assert 0 < int(name) <= MAX_USER_ID


# -- situations ------------------------------------------------------------------------------
IMAGES = {"images": {"registry.example.org/app:1": "Dockerfile"}}


def lint(files: dict[str, str], config: dict[str, object] | None = None) -> list[tuple[str, str]]:
    cfg = config_from_mapping(config or IMAGES, ".unroot.toml")
    inputs = []
    for name, text in files.items():
        kind = "dockerfile" if name.endswith("Dockerfile") else "k8s"
        inputs.append((name, kind, textwrap.dedent(text).lstrip("\n")))
    dedented = {name: text for name, _, text in inputs}
    result = lint_texts(inputs, LintOptions(config=cfg), read=dedented.get)
    return [(f.rule, f.message) for f in result.findings]


def pod(security_context: str, image: str = "registry.example.org/app:1") -> str:
    return f"""
        apiVersion: v1
        kind: Pod
        metadata: {{name: p}}
        spec:
          containers:
          - name: app
            image: {image}
            securityContext: {security_context}
        """


@pytest.mark.parametrize(
    ("dockerfile", "security_context", "expected"),
    [
        ("FROM debian:12\nUSER 0\n", "{runAsNonRoot: true}", {"UR114"}),
        ("FROM debian:12\nUSER 0\n", "{}", {"UR109"}),  # without the check: it runs, as root
        ("FROM debian:12\nUSER 0\n", "{runAsNonRoot: true, runAsUser: 10001}", set()),
        ("FROM scratch\nCOPY app /app\n", "{runAsNonRoot: true}", {"UR114"}),
        ("FROM debian:12\nUSER www\n", "{runAsNonRoot: true}", {"UR114"}),
        ("FROM debian:12\nUSER 10001\n", "{runAsNonRoot: true}", set()),
        ("FROM debian:12\nUSER 10001\n", "{runAsNonRoot: true, runAsUser: 0}", {"UR114"}),
        # multi-stage: the USER inherited through FROM <stage>; ARG defaults expanded
        ("FROM debian:12 AS base\nUSER 101\nFROM base\nRUN true\n", "{runAsNonRoot: true}", set()),
        ("FROM debian:12 AS base\nUSER app\nFROM base\n", "{runAsNonRoot: true}", {"UR114"}),
        ("FROM debian:12\nARG UID=10001\nUSER ${UID}\n", "{runAsNonRoot: true}", set()),
        ("FROM debian:12\nARG UID=0\nUSER ${UID}:${UID}\n", "{runAsNonRoot: true}", {"UR114"}),
        # unknown at lint time: silent
        ("FROM debian:12\nARG UID\nUSER ${UID}\n", "{runAsNonRoot: true}", set()),
        (
            "FROM gcr.io/distroless/static-debian12:nonroot\nCOPY a /a\n",
            "{runAsNonRoot: true}",
            set(),
        ),
        # a later stage that only copies from a named-user stage starts over from its base
        ("FROM debian:12 AS b\nUSER app\nFROM scratch\nUSER 1\n", "{runAsNonRoot: true}", set()),
    ],
)
def test_the_check_over_the_dockerfile(
    dockerfile: str, security_context: str, expected: set[str]
) -> None:
    found = lint({"Dockerfile": dockerfile, "pod.yaml": pod(security_context)})
    rules = {rule for rule, _ in found} & {"UR109", "UR114"}
    assert rules == expected, found


def test_the_base_image_default_is_a_warning_and_says_so() -> None:
    cfg = config_from_mapping(IMAGES, ".unroot.toml")
    text = textwrap.dedent(pod("{runAsNonRoot: true}")).lstrip("\n")
    result = lint_texts(
        [("Dockerfile", "dockerfile", "FROM node:20-slim\n"), ("pod.yaml", "k8s", text)],
        LintOptions(config=cfg),
        read={"Dockerfile": "FROM node:20-slim\n"}.get,
    )
    (finding,) = [f for f in result.findings if f.rule == "UR114"]
    assert finding.severity == "warning"
    assert "node:20-slim is assumed to set none" in finding.message
    assert any("base image's user, assumed root" in a for a in finding.assumptions)


def test_an_unknown_image_is_left_to_the_cluster_with_the_assumption() -> None:
    parsed = parse_k8s(textwrap.dedent(pod("{runAsNonRoot: true}")).lstrip("\n"), "pod.yaml")
    (s,) = build_situations([parsed], {}, LintConfig())
    assert s.nonroot_refusal is None
    assert s.user is not None
    assert not s.user.is_root
    assert any("runAsNonRoot without runAsUser and an unknown image" in a for a in s.assumptions)


def situation(dockerfile: str, security_context: str) -> Situation:
    files: list[ParsedFile] = [
        parse_dockerfile(dockerfile, "Dockerfile"),
        parse_k8s(textwrap.dedent(pod(security_context)).lstrip("\n"), "pod.yaml"),
    ]
    config = config_from_mapping(IMAGES, ".unroot.toml")
    (s,) = build_situations(files, {"Dockerfile": files[0]}, config)
    return s


def test_a_refused_container_has_no_user_no_start_and_no_chain() -> None:
    s = situation(
        'FROM debian:12\nUSER 0\nEXPOSE 80\nCMD ["python3", "-m", "http.server", "80"]\n',
        "{runAsNonRoot: true, capabilities: {drop: [ALL]}}",
    )
    refusal = s.nonroot_refusal
    assert refusal is not None
    assert refusal.cause == "image-root"
    assert refusal.location is not None
    assert refusal.location.line == 2
    assert s.user is None
    assert s.start is None
    assert s.start_error == AS_ROOT
    assert s.chain is None
    assert s.ports == ()


def test_a_resolved_name_gives_its_uid_to_the_fix() -> None:
    found = lint(
        {
            "Dockerfile": "FROM alpine:3.20\nRUN adduser -u 10001 -D app\nUSER app\n",
            "pod.yaml": pod("{runAsNonRoot: true}"),
        }
    )
    (message,) = [m for rule, m in found if rule == "UR114"]
    assert NON_NUMERIC.format("app") in message
    cfg = config_from_mapping(IMAGES, ".unroot.toml")
    text = textwrap.dedent(pod("{runAsNonRoot: true}")).lstrip("\n")
    docker = "FROM alpine:3.20\nRUN adduser -u 10001 -D app\nUSER app\n"
    result = lint_texts(
        [("Dockerfile", "dockerfile", docker), ("pod.yaml", "k8s", text)],
        LintOptions(config=cfg),
        read={"Dockerfile": docker}.get,
    )
    (finding,) = [f for f in result.findings if f.rule == "UR114"]
    assert finding.fix is not None
    assert "`USER 10001`" in finding.fix
    assert "`runAsUser: 10001`" in finding.fix
    assert finding.related == (("Dockerfile", 3, "USER app"),)


def test_init_containers_are_checked_too() -> None:
    text = """
        apiVersion: v1
        kind: Pod
        metadata: {name: p}
        spec:
          securityContext: {runAsNonRoot: true, runAsUser: 10001}
          initContainers:
          - {name: chown, image: busybox:1.36, securityContext: {runAsUser: 0}}
          containers:
          - {name: app, image: registry.example.org/app:1}
        """
    found = lint({"pod.yaml": text})
    assert [m for rule, m in found if rule == "UR114"] == [
        "the pod never starts: init container chown fails the kubelet's runAsNonRoot check on "
        '`runAsUser: 0`: "container\'s runAsUser breaks non-root policy" '
        "(CreateContainerConfigError)"
    ]


def test_run_as_group_alone_keeps_the_image_user() -> None:
    s = situation("FROM debian:12\nUSER 10001\n", "{runAsGroup: 3000}")
    assert s.user is not None
    assert (s.user.state, s.user.uid, s.user.gid) == ("nonroot", 10001, 3000)
    refused = situation("FROM debian:12\nUSER 0\n", "{runAsGroup: 3000, runAsNonRoot: true}")
    assert refused.nonroot_refusal is not None


# -- runtime-correct assumptions -------------------------------------------------------------
ENGINES = {
    "docker": "Docker",
    "docker-rootless": "rootless Docker",
    "podman-rootless": "Podman",
    "containerd1": "containerd",
    "containerd2": "containerd",
    "cri-o": "CRI-O",
}


@pytest.mark.parametrize("runtime", sorted(ENGINES))
def test_a_uid_without_group_names_the_runtime_that_resolves_it(runtime: str) -> None:
    docker = parse_dockerfile('FROM debian:12\nCMD ["sleep", "1"]\n', "Dockerfile")
    service = parse_compose('services:\n  a:\n    build: .\n    user: "10001"\n', "compose.yaml")
    (s,) = build_situations([docker, service], {"Dockerfile": docker}, None, runtime)
    (note,) = [a for a in s.assumptions if "without a group" in a]
    assert note == (
        "user 10001 without a group: gid 0, unless the image's /etc/passwd lists uid 10001 "
        f"({ENGINES[runtime]} then uses that entry's group)"
    )


@pytest.mark.parametrize("runtime", sorted(ENGINES))
def test_a_name_without_group_takes_its_passwd_group(runtime: str) -> None:
    docker = parse_dockerfile(
        "FROM alpine:3.20\nRUN addgroup -g 2000 web && adduser -u 2000 -G web -D web\nUSER web\n"
        'CMD ["sleep", "1"]\n',
        "Dockerfile",
    )
    (s,) = build_situations([docker], {"Dockerfile": docker}, None, runtime)
    (note,) = [a for a in s.assumptions if "without a group" in a]
    assert note == (
        "user web without a group: gid 2000, its entry's group in the image's /etc/passwd "
        f"({ENGINES[runtime]} looks it up)"
    )


@pytest.mark.parametrize("runtime", ["podman-rootless", "containerd1", "containerd2", "cri-o"])
def test_no_docker_wording_under_other_runtimes(runtime: str) -> None:
    docker = parse_dockerfile('FROM debian:12\nUSER 10001\nCMD ["sleep", "1"]\n', "Dockerfile")
    (s,) = build_situations([docker], {"Dockerfile": docker}, None, runtime)
    assert s.assumptions
    assert not [a for a in s.assumptions if "Docker" in a and not a.startswith("builder:")]
    assert "docker run" not in s.name


# -- realistic deployments through the real CLI ----------------------------------------------
#: fixture directory → {file (relative to it): the rules it must produce}
DEPLOYMENTS: dict[str, dict[str, set[str]]] = {
    # runAsUser: 101 makes the named image USER irrelevant; the overlay without it is refused
    "k8s-ingress-nginx": {
        "controller.yaml": set(),
        "controller-overlay.yaml": {"UR114"},
        "rootfs/Dockerfile": {"UR102"},  # setcap on files an earlier layer wrote
    },
    # coredns/coredns#7542: USER nonroot:nonroot refused; #8316's USER 65532:65532 passes
    "k8s-coredns": {"coredns-1.12.yaml": {"UR114"}, "coredns-1.14.yaml": set()},
    # the chart's podSecurityContext gives the uid; with it nulled the named USER is refused
    "k8s-traefik": {"traefik.yaml": set(), "traefik-openshift.yaml": {"UR114"}},
}


def cli_lint(directory: Path) -> tuple[int, dict[str, list[dict[str, object]]]]:
    done = subprocess.run(
        [sys.executable, "-m", "unroot", "lint", str(directory), "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr
    assert "Traceback" not in done.stderr
    by_file: dict[str, list[dict[str, object]]] = defaultdict(list)
    for finding in json.loads(done.stdout)["findings"]:
        path = Path(str(finding["file"]))
        by_file[str(path.relative_to(directory) if path.is_absolute() else path)].append(finding)
    return done.returncode, by_file


@pytest.mark.parametrize("name", sorted(DEPLOYMENTS))
def test_deployment_findings_through_the_cli(name: str) -> None:
    directory = FIXTURES / name
    code, by_file = cli_lint(directory)
    expected = DEPLOYMENTS[name]
    assert set(by_file) <= set(expected), sorted(by_file)
    for file, rules in expected.items():
        assert {str(f["rule"]) for f in by_file.get(file, [])} == rules, (file, by_file.get(file))
    errors = any(f["severity"] == "error" for fs in by_file.values() for f in fs)
    assert code == (1 if errors else 0)


def test_coredns_1_12_reports_the_kubelets_words_and_the_numeric_fix() -> None:
    _, by_file = cli_lint(FIXTURES / "k8s-coredns")
    (finding,) = by_file["coredns-1.12.yaml"]
    assert NON_NUMERIC.format("nonroot") in str(finding["message"])
    assert "CreateContainerConfigError" in str(finding["message"])
    assert finding["severity"] == "error"
    assert finding["line"] == 27  # the container's image: the image's USER is the culprit
    related = finding["related"]
    assert isinstance(related, list)
    assert [(Path(r["file"]).name, r["line"]) for r in related] == [("Dockerfile", 14)]
    assert "`USER <uid>:nonroot`" in str(finding["fix"])


def test_traefik_fix_uses_the_uid_the_build_gives_the_name() -> None:
    _, by_file = cli_lint(FIXTURES / "k8s-traefik")
    (finding,) = by_file["traefik-openshift.yaml"]
    assert NON_NUMERIC.format("traefik") in str(finding["message"])
    assert "`USER 65532`" in str(finding["fix"])
    assert "`runAsUser: 65532`" in str(finding["fix"])
