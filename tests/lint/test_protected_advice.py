"""Lint's fixes never widen access to credentials or root-equivalents (model/protected.py).

A finding may still say that a host path cannot be read; what it must never do is tell the
operator to ``setfacl``/``chgrp``/``chmod`` /etc/shadow, a CA key or the Docker socket for the
workload's group — root on every node for whoever follows it.
"""

from __future__ import annotations

import io
import json
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
from test_rules_docs import EXAMPLES, run_example

from unroot.commands.lint import run_lint
from unroot.lint.registry import Example
from unroot.model.protected import protection

FIXTURES = Path(__file__).parent / "fixtures"

#: a grant inside a fix's backquoted command: the tool, its options, the paths
_COMMAND = re.compile(r"`([^`]*)`")
_GRANT = re.compile(r"\b(setfacl|chmod|chgrp|chown)\b((?:\s+[^\s&;|`]+)+)")
_PERM = re.compile(r"^(?:[ugo]*[+=-]|[ug]:[^:]*:)([rwxX-]+)$")


def grants(fix: str) -> list[tuple[str, str, bool]]:
    """(tool, path, writes) for every path a backquoted command in ``fix`` widens access to."""
    found = []
    for command in _COMMAND.findall(fix):
        for tool, args in _GRANT.findall(command):
            words = args.split()
            writes = any("w" in m.group(1) for w in words if (m := _PERM.match(w)))
            found.extend((tool, word, writes) for word in words if word.startswith("/"))
    return found


def lint(tmp_path: Path, name: str, text: str) -> list[dict[str, Any]]:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    out = io.StringIO()
    run_lint([str(path), "--format", "json"], stdout=out)
    findings: list[dict[str, Any]] = json.loads(out.getvalue())["findings"]
    return findings


def assert_no_protected_grant(findings: list[dict[str, Any]]) -> None:
    for finding in findings:
        assert_fix_grants_nothing_protected(finding.get("fix") or "")


def assert_fix_grants_nothing_protected(fix: str) -> None:
    if fix:
        for tool, path, writes in grants(fix):
            guard = protection(path, write=writes)
            assert guard is None or guard.narrow, (tool, path, guard, fix)
            assert not (guard and tool in ("chgrp", "chown")), (tool, path, fix)
    assert not re.search(r"\b(setfacl|chmod)\s+-R\b", fix), fix
    assert not re.search(r"\bo[+=:][rwx]", fix), fix


NODE_EXPORTER = """\
    apiVersion: apps/v1
    kind: DaemonSet
    metadata:
      name: node-exporter
      namespace: monitoring
    spec:
      selector:
        matchLabels: {app: node-exporter}
      template:
        metadata:
          labels: {app: node-exporter}
        spec:
          hostNetwork: true
          hostPID: true
          securityContext:
            runAsNonRoot: true
            runAsUser: 65534
            runAsGroup: 65534
          containers:
            - name: node-exporter
              image: quay.io/prometheus/node-exporter:v1.8.2
              args: ["--path.rootfs=/host"]
              volumeMounts:
                - name: root
                  mountPath: /host
                  readOnly: true
                  mountPropagation: HostToContainer
          volumes:
            - name: root
              hostPath:
                path: /
"""


def test_node_exporter_gets_no_grant_on_shadow_ca_key_or_docker_sock(tmp_path: Path) -> None:
    """The issue's DaemonSet: host / mounted read-only at /host, uid/gid 65534."""
    findings = lint(tmp_path, "node-exporter.yaml", NODE_EXPORTER)
    assert_no_protected_grant(findings)
    for finding in findings:
        granted = {path for _tool, path, _w in grants(finding.get("fix") or "")}
        assert not granted & {
            "/etc/shadow",
            "/etc/gshadow",
            "/etc/kubernetes/pki/ca.key",
            "/etc/kubernetes/admin.conf",
            "/run/docker.sock",
            "/var/run/docker.sock",
            "/root",
            "/etc/ssh/ssh_host_ed25519_key",
        }, finding["fix"]
        if "/etc/shadow" in finding["message"]:  # when the rule names it, it says why not
            assert "never widen access to /etc/shadow" in finding["fix"]
            assert "never widen access to /run/docker.sock" in finding["fix"]


@pytest.mark.parametrize(
    ("name", "text", "refused"),
    [
        (
            "pod.yaml",
            """\
            apiVersion: v1
            kind: Pod
            metadata: {name: pki-reader}
            spec:
              securityContext: {runAsUser: 1000, runAsGroup: 1000}
              containers:
                - name: c
                  image: registry.example.org/reader:1
                  args: ["--ca-key=/pki/pki/ca.key"]
                  volumeMounts: [{name: pki, mountPath: /pki, readOnly: true}]
              volumes:
                - {name: pki, hostPath: {path: /etc/kubernetes}}
            """,
            "/etc/kubernetes/pki/ca.key",
        ),
        (
            "compose.yaml",
            """\
            services:
              app:
                image: registry.example.org/app:1
                user: "1000:1000"
                command: ["app", "--passwords", "/host/etc/shadow"]
                volumes:
                  - /etc:/host/etc:ro
            """,
            "/etc/shadow",
        ),
    ],
)
def test_a_mounted_credential_gets_the_refusal_not_a_grant(
    tmp_path: Path, name: str, text: str, refused: str
) -> None:
    """A mount that contains a credential the service names on its command line (a tree that
    merely contains it is no finding: tests/lint/test_ur108_opened_paths.py)."""
    findings = lint(tmp_path, name, text)
    assert_no_protected_grant(findings)
    ur108 = [f for f in findings if f["rule"] == "UR108"]
    assert ur108
    assert f"never widen access to {refused}" in ur108[0]["fix"]
    assert "group_add" not in ur108[0]["fix"]


def test_the_blog_still_gets_its_acl_without_recursion() -> None:
    """Seed 000: gid 2200 and /etc/letsencrypt — the grant the product exists for."""
    out = io.StringIO()
    run_lint([str(FIXTURES / "compose" / "blog"), "--format", "json"], stdout=out)
    findings = json.loads(out.getvalue())["findings"]
    assert_no_protected_grant(findings)
    (ur108,) = [f for f in findings if f["rule"] == "UR108"]
    assert "`setfacl -m g:2200:rx /etc/letsencrypt/live /etc/letsencrypt/archive`" in ur108["fix"]
    assert "deploy hook" in ur108["fix"]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.name)
def test_no_rule_example_gets_a_protected_grant(example: Example) -> None:
    for finding in run_example(example):
        assert_fix_grants_nothing_protected(finding.fix or "")
        if "/run/docker.sock" in finding.message:  # UR108's Traefik example
            assert "never widen access to /run/docker.sock" in (finding.fix or "")
            assert "socket proxy" in (finding.fix or "")
            assert "group_add" not in (finding.fix or "")


@pytest.mark.parametrize(
    "fixture", sorted(p.name for p in FIXTURES.iterdir() if p.is_dir() and p.name != "sarif")
)
def test_no_fixture_gets_a_protected_grant(fixture: str) -> None:
    out = io.StringIO()
    run_lint([str(FIXTURES / fixture), "--format", "json"], stdout=out)
    assert_no_protected_grant(json.loads(out.getvalue())["findings"])


def test_the_grant_reader_reads_grants() -> None:
    fix = (
        "on the host: `setfacl -m g:65534:rx /etc/letsencrypt/live && setfacl -m g:65534:r "
        "/etc/shadow /root && chgrp 65534 /run/docker.sock && chmod g+rw /run/docker.sock`"
    )
    assert grants(fix) == [
        ("setfacl", "/etc/letsencrypt/live", False),
        ("setfacl", "/etc/shadow", False),
        ("setfacl", "/root", False),
        ("chgrp", "/run/docker.sock", False),
        ("chmod", "/run/docker.sock", True),
    ]
