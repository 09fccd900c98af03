"""``unroot lint`` end to end: the realistic fixtures, exit codes, selection, suppression,
standard input, the output formats and their schema, and robustness."""

from __future__ import annotations

import dataclasses
import io
import json
import textwrap
from pathlib import Path

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unroot.commands.lint import run_lint
from unroot.commands.rules import run_rules
from unroot.errors import UsageError
from unroot.lint import formatters
from unroot.lint.config import load_config, load_config_file
from unroot.lint.engine import LintOptions, LintResult, Unreadable, lint_paths, lint_texts
from unroot.lint.findings import Finding
from unroot.lint.formatters import text as text_format

FIXTURES = Path(__file__).parent / "fixtures"
SCHEMA = Path(__file__).parents[2] / "src" / "unroot" / "schemas" / "lint.schema.json"

#: Every realistic fixture and exactly the rules it must produce (empty: a negative).
EXPECTED: dict[str, set[str]] = {
    "compose/blog": {"UR108"},  # seed 000: uid 2200 and /etc/letsencrypt
    "compose/caddy": set(),
    "compose/pihole": set(),
    "compose/stack": {"UR109", "UR110"},  # worker: user root, nofile 1024
    "k8s/backup-cronjob.yaml": {"UR108"},
    "k8s/coredns.yaml": set(),
    "k8s/dns-daemonset.yaml": set(),
    "k8s/ingress-nginx-controller.yaml": set(),
    "k8s/list.yaml": set(),
    "k8s/traefik.yaml": set(),
    # runAsNonRoot against the image's USER (UR114, tests/lint/test_k8s_nonroot.py); the
    # ingress-nginx image stores its setcap'd binaries twice (UR102)
    "k8s-ingress-nginx": {"UR102", "UR114"},
    "k8s-coredns": {"UR114"},
    "k8s-traefik": {"UR114"},
    "systemd": set(),
    # drop-ins (tests/lint/test_systemd_dropins.py): PrivateUsers=, a reset AmbientCapabilities=,
    # SocketBindDeny=, a type-level LimitNOFILE=; a tree mirroring /etc and /usr/lib
    "systemd-dropins": {"UR110", "UR111", "UR113", "UR116"},
    "systemd-tree": {"UR111"},
    "rules/negative/seed002-gateway": set(),
    "rules/negative/restricted-pss": set(),
    "rules/negative/multistage-user": set(),
    "rules/negative/high-port": set(),
    "rules/negative/dns-ambient": set(),
    "rules/positive/seed002-drop-all": {"UR103"},
    "rules/positive/seed002-nnp-host": {"UR104"},
    "rules/positive/go-classic": {"UR101", "UR105"},
    "rules/positive/caddy-duplicate": {"UR102"},
    "rules/positive/k8s-wrapper": {"UR104"},
    "rules/positive/k8s-useless-add": {"UR106", "UR107"},
    "rules/positive/dns-dynamic-user": {"UR110", "UR113"},
    "rules/positive/bridge-only": {"UR106"},
    # compose projects: .env, override, extends, include (tests/lint/test_compose_project.py)
    "compose-override-drop-all": {"UR103"},  # the override's cap_drop: [ALL]
    "compose-override-cap-add": set(),  # the override's cap_add is appended to the base's
    "compose-env-host-port": {"UR105"},  # port 80 from .env, host network from the override
    "compose-env-high-port": set(),
    "compose-extends": {"UR103"},  # cap_drop: [ALL] inherited through two extends
    "compose-include": {"UR105"},  # the included project's .env: host network, port 443
    # Dockerfile constructs (tests/lint/test_dockerfile_cases.py): find/xargs setcap, ONBUILD
    # triggers replayed in the child stage, ADD of a local archive (capabilities unknown)
    "dockerfile-find-setcap": set(),
    "dockerfile-onbuild": {"UR101", "UR106"},
    "dockerfile-add-archive": set(),
    # inputs (tests/lint/test_inputs.py): Dockerfile-*/Containerfile.* names, kubectl's JSON,
    # a StatefulSet's volumeClaimTemplates with empty documents, Helm's rendered output (its
    # statefulset mounts a volume no pod volume or claim template names)
    "dockerfile-names": {"UR106"},
    "k8s-json": {"UR108"},
    "k8s-statefulset-claims": set(),
    "helm-rendered": {"UR100", "UR108"},
}


def lint_fixture(relative: str, runtime: str | None = None) -> LintResult:
    path = str(FIXTURES / relative)
    return lint_paths([path], LintOptions(runtime=runtime, config=load_config(path)))


@pytest.mark.parametrize(("fixture", "expected"), sorted(EXPECTED.items()))
def test_fixture_findings(fixture: str, expected: set[str]) -> None:
    result = lint_fixture(fixture)
    assert {f.rule for f in result.findings} == expected, [f.message for f in result.findings]


def test_every_fixture_is_covered() -> None:
    covered = {FIXTURES / name for name in EXPECTED}
    # negative-*/: each must lint clean (tests/lint/test_false_positives.py)
    covered |= set(FIXTURES.glob("negative-*"))
    for path in FIXTURES.rglob("*"):
        if path.is_file() and path.name != ".unroot.toml":
            assert any(path == c or c in path.parents for c in covered), path


NEGATIVES = sorted(name for name, rules in EXPECTED.items() if not rules)


def test_false_positive_count_on_negatives(capsys: pytest.CaptureFixture[str]) -> None:
    """Configurations that work, linted for the runtime they are written for (the default per
    kind): any finding at all is a false positive."""
    false_positives = [f for name in NEGATIVES for f in lint_fixture(name).findings]
    with capsys.disabled():
        print(
            f"\n[lint] {len(NEGATIVES)} negative fixtures: {len(false_positives)} false positives"
        )
    assert false_positives == []


#: Errors that are true under a runtime a negative fixture was not written for.
RUNTIME_SPECIFIC = {
    # allowPrivilegeEscalation: false + a capped binary: Docker-style runtimes start a non-root
    # process with an empty permitted set, so no_new_privs leaves the file capability useless
    ("rules/negative/restricted-pss", "docker"): {"UR104"},
    ("rules/negative/restricted-pss", "docker-rootless"): {"UR104"},
}


@pytest.mark.parametrize(
    "runtime",
    ["docker", "docker-rootless", "podman-rootless", "containerd1", "containerd2", "cri-o"],
)
def test_negatives_under_every_runtime_raise_no_unexpected_error(runtime: str) -> None:
    for name in NEGATIVES:
        errors = {f.rule for f in lint_fixture(name, runtime).findings if f.severity == "error"}
        assert errors <= RUNTIME_SPECIFIC.get((name, runtime), set()), (name, errors)


# -- exit codes, selection, thresholds ---------------------------------------------------------
def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


BRIDGE = 'FROM python:3.12-slim\nUSER 10001\nCMD ["python3", "-m", "http.server", "80"]\n'
ROOT = 'FROM node:20-slim\nCMD ["node", "server.js"]\n'


def run(argv: list[str], stdin: str = "") -> tuple[int, str]:
    out = io.StringIO()
    code = run_lint(argv, stdout=out, stdin=io.StringIO(stdin))
    return code, out.getvalue()


def test_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clean = write(tmp_path / "clean", "Dockerfile", 'FROM scratch\nUSER 1\nCMD ["/x"]\n')
    warn = write(tmp_path / "warn", "Dockerfile", BRIDGE)
    info = write(tmp_path / "info", "Dockerfile", ROOT)
    assert run([str(clean)])[0] == 0
    assert run([str(warn)])[0] == 1  # default threshold: warning
    assert run([str(info)])[0] == 0  # info does not fail by default
    assert run([str(info), "--failure-threshold", "info"])[0] == 1
    assert run([str(warn), "--failure-threshold", "error"])[0] == 0
    assert run([str(tmp_path / "nope")])[0] == 2
    assert run(["--kind", "nonsense", str(clean)])[0] == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 2
    assert "Traceback" not in err


HELM_VALUES = "replicaCount: 2\nimage:\n  repository: nginx\n  tag: '1.27'\n"
SKIP_NOTE = (
    "unroot: skipped {}: not a Dockerfile, compose file, Kubernetes manifest or systemd unit "
    "(use --kind)\n"
)


@pytest.mark.parametrize(
    ("argv", "config", "error"),
    [
        ([], "", "no Dockerfile, compose file, Kubernetes manifest or systemd unit found in {}"),
        (["--kind", "systemd"], "", "no systemd unit found in {} (--kind systemd)"),
        ([], 'exclude = ["*"]\n', "no Dockerfile, compose file, Kubernetes manifest or "),
        (["--select", ""], "", "no rule selected: "),
        (["--select", "UR999"], "", "no rule selected: "),
        (["--ignore", "UR"], "", "no rule selected: "),
        ([], "select = []\n", "no rule selected: "),
    ],
)
def test_linting_nothing_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], config: str, error: str
) -> None:
    """A CI gate that lints zero files, or runs no rule, must not pass."""
    tree = tmp_path / "tree"
    tree.mkdir()
    if argv or config:  # else an empty directory
        write(tree, "Dockerfile", BRIDGE)
    if config:
        (tree / ".unroot.toml").write_text(config)
    code, out = run([*argv, "--no-fail", str(tree)])
    assert (code, out) == (2, "")
    *warnings, last = capsys.readouterr().err.splitlines()
    assert last.startswith(f"unroot: {error.format(tree)}")
    assert all(w.startswith("unroot: warning: ") for w in warnings)  # --select UR999's


def test_an_unrecognised_named_file_is_skipped_with_a_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Pre-commit passes every matching name: a Helm values.yaml must not fail the commit."""
    values = write(tmp_path, "values.yaml", HELM_VALUES)
    clean = write(tmp_path / "clean", "Dockerfile", 'FROM scratch\nUSER 1\nCMD ["/x"]\n')
    warn = write(tmp_path / "warn", "Dockerfile", BRIDGE)
    code, out = run([str(values)])
    assert code == 0
    assert out == "no findings in 0 files\n"
    assert capsys.readouterr().err == SKIP_NOTE.format(values)
    assert run([str(values), str(clean)])[0] == 0  # the exit code is the other files'
    assert run([str(values), str(warn)])[0] == 1
    assert capsys.readouterr().err == SKIP_NOTE.format(values) * 2
    code, out = run([str(values), str(clean), "--format", "json"])
    assert code == 0
    assert json.loads(out)["files"] == [str(clean)]  # stdout stays machine-readable
    assert capsys.readouterr().err == SKIP_NOTE.format(values)
    # a path that does not exist is still an input error
    assert run([str(values), str(tmp_path / "nope.yaml")])[0] == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "nope.yaml: no such file or directory" in err
    # with --kind it is read as that kind (not a compose file: a UR100 finding), and no note
    code, out = run(["--kind", "compose", str(values)])
    assert code == 1
    assert "UR100 parse-error" in out
    assert "no top-level 'services:'" in out
    assert capsys.readouterr().err == ""
    result = lint_paths([str(values)], LintOptions(kind="compose"))
    assert result.files == (str(values),)
    assert result.skipped == ()


ROOTLESS_COMPOSE = 'services:\n  web:\n    build: .\n    ports: ["80:8080"]\n'
HIGH = 'FROM python:3.12-slim\nUSER 10001\nCMD ["python3", "-m", "http.server", "8080"]\n'


def _publish_finding(tmp_path: Path, runtime: str) -> Finding:
    write(tmp_path, "Dockerfile", HIGH)
    compose = write(tmp_path, "compose.yaml", ROOTLESS_COMPOSE)
    result = lint_paths([str(compose)], LintOptions(runtime=runtime))
    (finding,) = [f for f in result.findings if f.rule == "UR105"]
    assert finding.severity == "warning"
    assert finding.line == 4
    return finding


def test_rootless_docker_publish_names_rootlesskit(tmp_path: Path) -> None:
    finding = _publish_finding(tmp_path, "docker-rootless")
    assert finding.message == (
        "publishing host port 80 fails with EACCES under rootless Docker: rootlesskit binds it on "
        "the host as the invoking user, and 80 is below the host's "
        "net.ipv4.ip_unprivileged_port_start=1024"
    )
    assert finding.fix is not None
    assert "`sudo setcap cap_net_bind_service=ep $(which rootlesskit)`" in finding.fix
    assert "builtin port driver" in finding.fix
    assert "sysctl -w net.ipv4.ip_unprivileged_port_start=80" in finding.fix
    assert "rootlessport" not in finding.message + finding.fix
    assert "rootlesskit has no cap_net_bind_service (the default install)" in finding.assumptions


def test_rootless_podman_publish_names_rootlessport_and_the_sysctl(tmp_path: Path) -> None:
    finding = _publish_finding(tmp_path, "podman-rootless")
    assert finding.message == (
        "publishing host port 80 fails with EACCES under rootless Podman: rootlessport / pasta "
        "binds it on the host as the invoking user, and 80 is below the host's "
        "net.ipv4.ip_unprivileged_port_start=1024"
    )
    assert finding.fix is not None
    assert finding.fix.startswith(
        "lower the host's net.ipv4.ip_unprivileged_port_start to 80: "
        "`sudo sysctl -w net.ipv4.ip_unprivileged_port_start=80`"
    )
    text = finding.message + finding.fix + " ".join(finding.assumptions)
    assert "rootlesskit" not in text
    assert "setcap" not in text


def test_select_and_ignore(tmp_path: Path) -> None:
    path = str(write(tmp_path, "Dockerfile", BRIDGE))
    assert "UR106" in run([path, "--format", "json"])[1]
    for flags in (
        ["--ignore", "UR106"],
        ["--ignore", "works-only-by-sysctl"],
        ["--select", "UR10"],
    ):
        code, out = run([path, "--format", "json", *flags])
        rules = {f["rule"] for f in json.loads(out)["findings"]}
        assert "UR106" not in rules or flags == ["--select", "UR10"], flags
    code, out = run([path, "--format", "json", "--select", "UR109"])
    assert json.loads(out)["findings"] == []
    assert code == 0
    assert run([path, "--select", "UR1!"])[0] == 2


def test_config_select_ignore_threshold_runtime_builder(tmp_path: Path) -> None:
    write(tmp_path, "Dockerfile", BRIDGE)
    config = write(tmp_path, ".unroot.toml", 'ignore = ["UR106"]\nfailure-threshold = "info"\n')
    assert run([str(tmp_path), "--format", "json"])[1].count('"rule"') == 0
    config.write_text('runtime = "cri-o"\nbuilder = "classic"\n')
    loaded = load_config_file(str(config))
    assert (loaded.runtime, loaded.builder) == ("cri-o", "classic")
    code, out = run([str(tmp_path), "--format", "json"])
    assert code == 1
    assert '"UR105"' in out
    config.write_text('builder = "kaniko"\n')
    assert run([str(tmp_path)])[0] == 2


def test_inline_and_file_ignores(tmp_path: Path) -> None:
    write(tmp_path / "a", "Dockerfile", BRIDGE.replace("CMD", "# unroot: ignore=UR106\nCMD"))
    write(tmp_path / "b", "Dockerfile", "# unroot: ignore-file=works-only-by-sysctl\n" + BRIDGE)
    write(tmp_path / "c", "Dockerfile", BRIDGE.replace("CMD", "# unroot: ignore=UR109\nCMD"))
    for name, expected in (("a", 0), ("b", 0), ("c", 1)):
        _code, out = run([str(tmp_path / name), "--format", "json"])
        assert len(json.loads(out)["findings"]) == expected, (name, out)


def test_yaml_trailing_pragma_and_annotation_ignores(tmp_path: Path) -> None:
    compose = """
        services:
          worker:
            image: registry.example.org/worker:1.4
            user: root  # unroot: ignore=runs-as-root
            ulimits:
              nofile: 1024
          other:
            image: registry.example.org/worker:1.4
            user: "1000"
            ulimits: {nofile: 512}
            x-unroot-ignore: UR110
    """
    write(tmp_path, "compose.yaml", compose)
    _code, out = run([str(tmp_path / "compose.yaml"), "--format", "json"])
    assert [f["rule"] for f in json.loads(out)["findings"]] == ["UR110"]
    pod = """
        apiVersion: v1
        kind: Pod
        metadata:
          name: backup
          annotations: {unroot.dev/ignore: "UR108"}
        spec:
          containers:
          - name: b
            image: x
            securityContext: {runAsUser: 1000}
            volumeMounts: [{name: le, mountPath: /le}]
          volumes: [{name: le, hostPath: {path: /etc/letsencrypt}}]
    """
    write(tmp_path, "pod.yaml", pod)
    assert json.loads(run([str(tmp_path / "pod.yaml"), "--format", "json"])[1])["findings"] == []
    unannotated = pod.replace('annotations: {unroot.dev/ignore: "UR108"}', "labels: {a: b}")
    write(tmp_path, "pod.yaml", unannotated)
    found = json.loads(run([str(tmp_path / "pod.yaml"), "--format", "json"])[1])["findings"]
    assert [f["rule"] for f in found] == ["UR108"]


def test_stdin_kind_given_or_told_from_the_text() -> None:
    code, out = run(["-", "--kind", "dockerfile", "--format", "json"], stdin=BRIDGE)
    document = json.loads(out)
    assert code == 1
    assert document["files"] == ["-"]
    assert [f["file"] for f in document["findings"]] == ["-"]
    assert run(["-", "--format", "json"], stdin=BRIDGE) == (code, out)  # FROM: a Dockerfile
    assert run(["-"], stdin="just some text\n")[0] == 2


def test_unparseable_input_is_a_finding_not_a_traceback(tmp_path: Path) -> None:
    write(tmp_path, "compose.yaml", "services:\n  web:\n    image: [unclosed\n")
    write(tmp_path, "Dockerfile", "FROM\n\x00garbage\n")
    code, out = run([str(tmp_path), "--format", "json"])
    findings = json.loads(out)["findings"]
    assert code == 1
    assert "UR100" in {f["rule"] for f in findings}
    result = lint_texts([("x/Dockerfile", "dockerfile", Unreadable("Permission denied"))])
    assert [f.message for f in result.findings] == ["cannot read this file: Permission denied"]


def test_a_rule_that_raises_becomes_a_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    from unroot.lint import registry

    def broken(situation: object) -> list[registry.Report]:
        raise RuntimeError("boom")

    info = dataclasses.replace(registry.RULES["UR109"], check=broken)
    monkeypatch.setitem(registry.RULES, "UR109", info)
    result = lint_texts([("Dockerfile", "dockerfile", ROOT)])
    assert any("internal error in rule UR109" in f.message for f in result.findings)


# -- output -------------------------------------------------------------------------------------
def test_json_output_validates_against_the_schema() -> None:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    code, out = run([str(FIXTURES), "--format", "json", "--failure-threshold", "info"])
    document = json.loads(out)
    jsonschema.validate(document, schema)
    assert code == 1
    assert document["findings"]
    first = document["findings"][0]
    assert list(first)[:8] == [
        "rule",
        "topic",
        "severity",
        "message",
        "file",
        "line",
        "column",
        "fix",
    ]


def test_text_output_groups_by_file_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    _code, out = run([str(FIXTURES / "rules/positive/seed002-drop-all")])
    assert "\x1b[" not in out  # not a terminal
    lines = out.splitlines()
    assert lines[0].endswith("compose.yaml")
    assert "UR103 exec-eperm" in out
    assert "fix: add `cap_add: [NET_BIND_SERVICE]`" in out
    assert lines[-1] == "1 finding (1 error) in 2 files"
    result = lint_fixture("rules/positive/seed002-drop-all")
    colored = text_format.render(result.findings, result.files, result.rules, color=True)
    assert "\x1b[31m" in colored


def test_text_output_prints_the_assumptions_under_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    # Lint a relative path, as a user in the repository would: the assumptions then name the
    # Dockerfile by a short path, and the wrapping does not depend on where the checkout lives.
    monkeypatch.chdir(FIXTURES)
    path = "rules/positive/seed002-drop-all"
    result = lint_paths([path], LintOptions(config=load_config(path)))
    (finding,) = result.findings
    assert len(finding.assumptions) >= 2
    text = text_format.render(result.findings, result.files, result.rules)
    lines = text.splitlines()
    fix_at = next(i for i, line in enumerate(lines) if line.startswith(" " * 11 + "fix: "))
    assumes_at = next(i for i, line in enumerate(lines) if "assumes: " in line)
    assert assumes_at > fix_at
    assert lines[assumes_at].startswith(" " * 11 + "assumes: runtime: Docker (rootful)")
    assumes = lines[assumes_at : len(lines) - 2]  # then the blank line and the summary
    assert all(len(line) <= text_format.WIDTH for line in assumes)
    assert all(line.startswith(" " * 20) for line in assumes[1:])
    # one line (or a wrapped run of lines) per assumption, each starting on a fresh line
    joined = "\n".join(line.strip().removeprefix("assumes: ") for line in assumes)
    for assumption in finding.assumptions:
        first_word = assumption.split()[0]
        assert any(
            line.strip().removeprefix("assumes: ").startswith(first_word) for line in assumes
        )
        assert " ".join(assumption.split()) in " ".join(joined.split())
    colored = text_format.render(result.findings, result.files, result.rules, color=True)
    assert "\x1b[2m" + " " * 11 + "assumes: runtime: Docker (rootful)" in colored


TEXT_GOLDEN = """\
Dockerfile
      3:1  error    UR105 bind-fails
           bind() of tcp port 80 fails with EACCES: uid 10001 runs python3 without
           cap_net_bind_service, and 80 is below net.ipv4.ip_unprivileged_port_start=1024 of the
           host's network namespace (network_mode: host)
           fix: bind :80 before dropping root and pass the socket in
                (`unroot run -l :80 --user 10001 -- …`, systemd socket activation) — a file
                capability on the interpreter python3 would reach every script it runs; or listen on
                a port ≥ 1024 (e.g. 8080)
           assumes: runtime: Docker (rootful) (the default for compose; --runtime or runtime = … in
                    .unroot.toml changes it)
                    the image is built from Dockerfile (the final stage)
                    user 10001 without a group: gid 0, unless the image's /etc/passwd lists uid
                    10001 (Docker then uses that entry's group)
                    python3 comes from the base image, assumed without file capabilities
                    the host's net.ipv4.ip_unprivileged_port_start is the kernel default 1024 (host
                    network: the runtime's sysctl does not apply)

1 finding (1 error) in 2 files
"""


def test_text_output_golden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "Dockerfile", BRIDGE)
    write(tmp_path, "compose.yaml", "services:\n  web:\n    build: .\n    network_mode: host\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NO_COLOR", "1")
    code, out = run(["compose.yaml"])
    assert code == 1
    assert out == TEXT_GOLDEN


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_color_only_on_a_terminal_and_never_with_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    path = str(FIXTURES / "rules/positive/seed002-drop-all")
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    tty = _Tty()
    run_lint([path], stdout=tty)
    assert "\x1b[" in tty.getvalue()
    monkeypatch.setenv("NO_COLOR", "1")
    tty = _Tty()
    run_lint([path], stdout=tty)
    assert "\x1b[" not in tty.getvalue()


def test_sarif_is_a_usage_error_until_its_formatter_exists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(formatters.FORMATTERS, "sarif", raising=False)
    assert run([str(FIXTURES / "systemd"), "--format", "sarif"])[0] == 2


def test_rules_command(capsys: pytest.CaptureFixture[str]) -> None:
    out = io.StringIO()
    assert run_rules([], stdout=out) == 0
    listing = out.getvalue().splitlines()
    assert listing[0].startswith("UR100  parse-error")
    assert any(line.startswith("UR105  bind-fails") for line in listing)
    out = io.StringIO()
    assert run_rules(["ur105"], stdout=out) == 0
    assert "Why is this bad?" in out.getvalue()
    assert "UR105:" in out.getvalue()
    out = io.StringIO()
    assert run_rules(["caps-ignored"], stdout=out) == 0
    assert "UR104 caps-ignored" in out.getvalue()
    assert "UR113 caps-ignored" in out.getvalue()
    assert run_rules(["UR999"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_bad_threshold_in_options_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        lint_texts([], LintOptions(failure_threshold="fatal"))


# -- robustness ---------------------------------------------------------------------------------
SOURCES = [
    (p, k)
    for p, k in (
        ("rules/negative/seed002-gateway/Dockerfile", "dockerfile"),
        ("rules/positive/go-classic/Dockerfile", "dockerfile"),
        ("compose/stack/docker-compose.prod.yml", "compose"),
        ("compose/blog/compose.yaml", "compose"),
        ("k8s/traefik.yaml", "k8s"),
        ("k8s/backup-cronjob.yaml", "k8s"),
        ("rules/negative/restricted-pss/deploy.yaml", "k8s"),
        ("systemd/dnsdist.service", "systemd"),
        ("rules/positive/dns-dynamic-user/unbound.service", "systemd"),
    )
]


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, str, str]:
    relative, kind = draw(st.sampled_from(SOURCES))
    lines = (FIXTURES / relative).read_text().splitlines()
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["drop", "dup", "edit", "swap"]))
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        if op == "drop":
            del lines[i]
        elif op == "dup":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        else:
            at = draw(st.integers(0, len(lines[i])))
            junk = draw(st.sampled_from(["0", ":", "ALL", " -", "\t", "$", "'", "[", "{", "80"]))
            lines[i] = lines[i][:at] + junk + lines[i][at:]
    name = relative.rsplit("/", 1)[-1]
    return name, kind, "\n".join(lines) + "\n"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(), st.sampled_from([None, "cri-o", "docker-rootless", "podman-rootless"]))
def test_mutated_fixtures_never_raise(case: tuple[str, str, str], runtime: str | None) -> None:
    name, kind, text = case
    result = lint_texts([(name, kind, text)], LintOptions(runtime=runtime))
    assert not [f for f in result.findings if "internal error" in f.message]
    document = json.loads(
        formatters.FORMATTERS["json"](result.findings, result.files, result.rules)
    )
    jsonschema.validate(document, json.loads(SCHEMA.read_text()))
