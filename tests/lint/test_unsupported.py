"""Inputs lint recognises but does not read (issue 12, second corpus): templates (Jinja, Helm),
meson/autoconf unit templates (``*.service.in``) and Podman Quadlet units — skipped with a
note, counted in the summary, never a parse error; a file that only holds ``{{`` in a string
is read as usual."""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path

import pytest

from unroot.commands.lint import run_lint
from unroot.lint.discover import discover
from unroot.lint.engine import LintOptions, lint_paths
from unroot.sources.unsupported import quadlet_section, template_line

JINJA_COMPOSE = textwrap.dedent("""\
    {% set env='app.env' %}
    # Generated for {{ flavor }}
    services:
      web:
        image: nginx:1.27
        env_file: {{ env }}
        ports:
          - "80:80"
        {% if resolver %}
        dns:
          - {{ dns }}
        {% endif %}
    """)
HELM_DEPLOYMENT = textwrap.dedent("""\
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: {{ include "app.fullname" . }}
      labels:
        {{- include "app.labels" . | nindent 4 }}
    spec:
      template:
        spec:
          containers:
            - name: app
              image: "{{ .Values.image }}"
    """)
# Go templates inside strings: a compose file that parses, and must be linted as one
COMPOSE_WITH_GO_TEMPLATES = textwrap.dedent("""\
    services:
      proxy:
        image: traefik:v3.1
        user: "1000:1000"
        command: ["traefik", "--providers.docker.defaultRule=Host(`{{ normalize .Name }}`)"]
        ports:
          - "80:80"
        labels:
          traefik.http.routers.web.rule: "Host(`{{ .Name }}.example.com`)"
        logging:
          driver: json-file
          options:
            tag: "{{.Name}}"
    """)
# alert templates in a block scalar open their lines with {{ and are still YAML
CONFIGMAP_WITH_ALERTS = textwrap.dedent("""\
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: alerts
    data:
      rules.yaml: |
        summary: down
        {{ $labels.instance }} has been down for 5 minutes
    """)
UNIT_WITH_GO_TEMPLATE = textwrap.dedent("""\
    [Service]
    User=app
    ExecStart=/usr/bin/docker run --log-opt tag={{.Name}} --rm app
    ExecStop=/usr/bin/docker ps --format '{{.Names}}'
    """)
JINJA_UNIT = textwrap.dedent("""\
    [Service]
    {% if user %}
    User={{ user }}
    {% endif %}
    ExecStart=/usr/bin/app
    """)
MESON_UNIT = textwrap.dedent("""\
    [Unit]
    Description=Resolver

    [Service]
    ExecStart=@rootlibexecdir@/resolved
    User=resolve
    @SERVICE_WATCHDOG@

    [Install]
    WantedBy=multi-user.target
    """)
QUADLET = textwrap.dedent("""\
    [Unit]
    Description=Web container

    [Container]
    Image=docker.io/library/nginx:1.27
    PublishPort=80:80
    # Quadlet refuses User= in [Service]; the container's user is [Container] User=

    [Install]
    WantedBy=default.target
    """)
NETWORKD = "[Match]\nName=en*\n\n[Network]\nDHCP=yes\n"


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def run(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    code = run_lint(argv, stdout=out)
    return code, out.getvalue()


# -- what is a template ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "kind", "line"),
    [
        (JINJA_COMPOSE, "compose", 1),
        (HELM_DEPLOYMENT, "k8s", 6),  # the first marker opening a line
        (HELM_DEPLOYMENT.replace("    {{- include", "    # {{- include"), "k8s", 4),
        (COMPOSE_WITH_GO_TEMPLATES, "compose", None),
        (CONFIGMAP_WITH_ALERTS, "k8s", None),
        (UNIT_WITH_GO_TEMPLATE, "systemd", None),
        (JINJA_UNIT, "systemd", 2),
        ("FROM alpine:3.20\nRUN docker ps --format '{{.Names}}'\n", "dockerfile", None),
        ("FROM alpine:3.20\n{% if dev %}\nRUN apk add gdb\n{% endif %}\n", "dockerfile", 2),
        ("services: {}\n# {{ only in a comment }}\n", "compose", None),
    ],
)
def test_template_line(text: str, kind: str, line: int | None) -> None:
    assert template_line(text, kind) == line


def test_quadlet_by_name_and_section() -> None:
    assert quadlet_section("web.container", QUADLET) == "Container"
    assert quadlet_section("web.pod", "[Pod]\nPodName=web\n") == "Pod"
    assert quadlet_section("web.service", QUADLET) is None  # a unit's name: not Quadlet
    assert quadlet_section("web.container", "[Service]\nUser=x\n") is None  # no [Container]
    assert quadlet_section("20-wired.network", NETWORKD) is None  # systemd-networkd's
    assert quadlet_section("app.network", "[Network]\nSubnet=10.0.0.0/24\n") == "Network"


# -- a directory walk ----------------------------------------------------------------------------
def _tree(root: Path) -> None:
    write(root, "compose/docker-compose.yml", JINJA_COMPOSE)
    write(root, "chart/templates/deployment.yaml", HELM_DEPLOYMENT)
    write(root, "units/resolved.service.in", MESON_UNIT)
    write(root, "quadlet/web.container", QUADLET)
    write(root, "network/20-wired.network", NETWORKD)  # networkd, not Quadlet: ignored silently
    write(root, "README.md", "# {{ not an input }}\n")
    write(root, "app.py", "print('{{x}}')\n")
    write(root, "proxy/compose.yaml", COMPOSE_WITH_GO_TEMPLATES)


def test_a_walk_notes_what_it_does_not_read(tmp_path: Path) -> None:
    _tree(tmp_path)
    result = lint_paths([str(tmp_path)])
    assert result.files == (str(tmp_path / "proxy/compose.yaml"),)  # Go templates in strings
    assert not [f for f in result.findings if f.rule == "UR100"]
    assert sorted((Path(p).relative_to(tmp_path).as_posix(), w) for p, w in result.not_read) == [
        ("chart/templates/deployment.yaml", "template"),
        ("compose/docker-compose.yml", "template"),
        ("quadlet/web.container", "Quadlet unit"),
        ("units/resolved.service.in", "unit template"),
    ]
    reasons = {Path(p).name: r for p, r in result.skipped}
    assert set(reasons) == {"deployment.yaml", "docker-compose.yml", "web.container"} | {
        "resolved.service.in"
    }
    assert reasons["docker-compose.yml"].startswith("a Jinja template (`{%` at line 1)")
    assert "`… | unroot lint --kind compose -`" in reasons["docker-compose.yml"]
    assert "helm template CHART | unroot lint -" in reasons["deployment.yaml"]
    assert "Quadlet" in reasons["web.container"]
    assert "--kind systemd" in reasons["resolved.service.in"]
    assert result.exit_code == 0  # the skips do not fail a run
    assert not result.unread


def test_a_walk_with_a_kind_notes_only_that_kind(tmp_path: Path) -> None:
    _tree(tmp_path)
    result = lint_paths([str(tmp_path)], LintOptions(kind="k8s"))
    assert [(Path(p).name, w) for p, w in result.not_read] == [("deployment.yaml", "template")]
    # a unit template is read only when named: in a directory it stays noted, not read
    result = lint_paths([str(tmp_path)], LintOptions(kind="systemd"))
    assert result.files == ()
    assert sorted((Path(p).name, w) for p, w in result.not_read) == [
        ("resolved.service.in", "unit template"),
        ("web.container", "Quadlet unit"),
    ]


def test_the_summary_counts_them_and_json_lists_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _tree(tmp_path)
    write(tmp_path, "chart/templates/service.yaml", HELM_DEPLOYMENT.replace("Deployment", "Svc"))
    code, out = run([str(tmp_path)])
    assert code == 0
    assert out.splitlines()[-1] == (
        "no findings in 1 file; skipped 3 templates, 1 unit template and 1 Quadlet unit "
        "(not read: listed on stderr)"
    )
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 5
    assert all(line.startswith(f"unroot: skipped {tmp_path}/") for line in err)
    code, out = run(["--format", "json", str(tmp_path)])
    assert code == 0
    skipped = json.loads(out)["skipped"]
    assert len(skipped) == 5
    assert {Path(s["path"]).name for s in skipped} >= {"web.container", "resolved.service.in"}


def test_a_run_that_skips_nothing_keeps_its_summary(tmp_path: Path) -> None:
    write(tmp_path, "compose.yaml", COMPOSE_WITH_GO_TEMPLATES)
    code, out = run([str(tmp_path)])
    assert (code, out) == (0, "no findings in 1 file\n")


# -- files named explicitly ----------------------------------------------------------------------
@pytest.mark.parametrize("kind", [None, "compose"])
def test_a_named_template_is_one_line_not_a_parse_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str | None
) -> None:
    path = write(tmp_path, "docker-compose.yml", JINJA_COMPOSE)
    code, out = run([*(["--kind", kind] if kind else []), str(path)])
    assert code == 0
    assert "UR100" not in out
    assert out.endswith("skipped 1 template (not read: listed on stderr)\n")
    assert capsys.readouterr().err == (
        f"unroot: skipped {path}: a Jinja template (`{{%` at line 1), not read: lint what it "
        f"renders (the generator's output: `… | unroot lint --kind {kind or 'compose'} -`)\n"
    )


def test_a_named_unit_template_needs_kind_and_its_placeholders_are_not_errors(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "resolved.service.in", MESON_UNIT)
    skipped: list[tuple[str, str]] = []
    assert discover([str(path)], skipped=skipped) == []
    assert "meson/autoconf" in skipped[0][1]
    result = lint_paths([str(path)], LintOptions(kind="systemd"))
    assert result.files == (str(path),)
    assert [f for f in result.findings if f.rule == "UR100"] == []
    assert result.not_read == ()


def test_a_placeholder_line_is_an_assumption_of_the_findings() -> None:
    from unroot.lint.engine import lint_texts

    # runs as root with nothing needing it: a UR109 info whose assumptions name the placeholder
    text = MESON_UNIT.replace("User=resolve\n", "")
    result = lint_texts([("resolved.service.in", "systemd", text)])
    assert [f.rule for f in result.findings if f.severity != "info"] == []
    found = [f for f in result.findings if f.rule == "UR109"]
    assert found
    assert any(
        a.startswith("@SERVICE_WATCHDOG@ (resolved.service.in:6) is a build-time placeholder")
        for a in found[0].assumptions
    )
    # without the placeholder lines being passed over it would be a UR100 error
    assert not [f for f in result.findings if f.rule == "UR100"]


@pytest.mark.parametrize("kind", [None, "systemd", "compose"])
def test_a_quadlet_unit_is_not_read_as_a_plain_unit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str | None
) -> None:
    path = write(tmp_path, "web.container", QUADLET)
    code, out = run([*(["--kind", kind] if kind else []), str(path)])
    assert code == 0
    assert out == "no findings in 0 files; skipped 1 Quadlet unit (not read: listed on stderr)\n"
    err = capsys.readouterr().err
    assert err.startswith(f"unroot: skipped {path}: a Podman Quadlet unit ([Container])")
    if kind == "systemd":
        assert "not a plain systemd unit" in err
    assert "User=" not in out


def test_a_unit_with_a_go_template_in_a_command_is_linted(tmp_path: Path) -> None:
    path = write(tmp_path, "app.service", UNIT_WITH_GO_TEMPLATE)
    result = lint_paths([str(path)])
    assert result.files == (str(path),)
    assert result.not_read == ()
    assert not [f for f in result.findings if f.rule == "UR100"]


def test_a_template_on_standard_input_is_said_too(capsys: pytest.CaptureFixture[str]) -> None:
    out = io.StringIO()
    code = run_lint(["--kind", "k8s", "-"], stdout=out, stdin=io.StringIO(HELM_DEPLOYMENT))
    assert code == 0
    assert out.getvalue() == (
        "no findings in 0 files; skipped 1 template (not read: listed on stderr)\n"
    )
    assert capsys.readouterr().err.startswith(
        "unroot: skipped -: a Helm/Go template (`{{` at line 6)"
    )


def test_the_template_check_does_not_report_an_unreadable_file_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Dockerfile that cannot be read is one UR100 where it is read (its name tells its
    kind), not also a "could not read" note from the template check."""
    import unroot.lint.discover as discovery

    dockerfile = write(tmp_path, "Dockerfile", "FROM alpine:3.20\n")
    real = discovery.read_bytes

    def refuse(path: str, limit: int | None = None) -> bytes:
        if Path(path).name == "Dockerfile":
            raise PermissionError(13, "Permission denied", path)
        return real(path, limit)

    monkeypatch.setattr(discovery, "read_bytes", refuse)
    unread: list[tuple[str, str]] = []
    skipped: list[tuple[str, str]] = []
    found = discover([str(tmp_path)], skipped=skipped, unread=unread)
    assert found == [(str(dockerfile), "dockerfile")]
    assert (unread, skipped) == ([], [])
