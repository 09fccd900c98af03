"""UR108 reports a mount only for the paths the service is known to open — the mount names them,
a path on its command line, in its environment or in a configuration file lint can read leads
into them, or the tree exists only for them (certbot's) — never for what a mounted tree merely
contains (node-exporter's read-only host /, /etc/ssl mounted for the CA bundle)."""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path
from typing import Any

from unroot.commands.lint import run_lint


def lint(tmp_path: Path, files: dict[str, str]) -> tuple[list[dict[str, Any]], int]:
    for name, text in files.items():
        (tmp_path / name).write_text(textwrap.dedent(text))
    out = io.StringIO()
    code = run_lint([str(tmp_path / next(iter(files))), "--format", "json"], stdout=out)
    return [f for f in json.loads(out.getvalue())["findings"] if f["rule"] == "UR108"], code


_EXPORTER = """\
    apiVersion: apps/v1
    kind: DaemonSet
    metadata: {name: node-exporter}
    spec:
      selector: {matchLabels: {app: ne}}
      template:
        metadata: {labels: {app: ne}}
        spec:
          securityContext: {runAsUser: 65534, runAsGroup: 65534, runAsNonRoot: true}
          containers:
            - name: node-exporter
              image: quay.io/prometheus/node-exporter:v1.8.2
              args: [--path.rootfs=/host/root, --path.procfs=/host/root/proc, ARGS]
              volumeMounts: [{name: root, mountPath: /host/root, readOnly: true}]
          volumes:
            - {name: root, hostPath: {path: /}}
    """


def test_host_root_mounted_for_statistics_is_no_finding(tmp_path: Path) -> None:
    findings, code = lint(tmp_path, {"ds.yaml": _EXPORTER.replace(", ARGS", "")})
    assert (findings, code) == ([], 0)


def test_a_key_named_through_the_host_root_mount_is_reported(tmp_path: Path) -> None:
    text = _EXPORTER.replace("ARGS", "--web.tls-key=/host/root/etc/letsencrypt/live/x/privkey.pem")
    findings, _ = lint(tmp_path, {"ds.yaml": text})
    (finding,) = findings
    assert "/etc/letsencrypt/live, /etc/letsencrypt/archive" in finding["message"]
    assert "/etc/shadow" not in finding["message"]
    assert "/run/docker.sock" not in finding["message"]
    assert finding["assumptions"][0] == (
        "the service opens /host/root/etc/letsencrypt/live/x/privkey.pem, which is "
        "/etc/letsencrypt/live/x/privkey.pem on the host "
        "(`--web.tls-key=/host/root/etc/letsencrypt/live/x/privkey.pem` on its command line)"
    )


_SSL = """\
    services:
      web:
        image: nginx:1.27
        user: "101:101"
        volumes:
          - /etc/ssl:/etc/ssl:ro
    """


def test_etc_ssl_mounted_for_the_ca_bundle_is_no_finding(tmp_path: Path) -> None:
    text = _SSL.replace(
        "    volumes:",
        "    environment: [SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt]\n    volumes:",
    )
    assert lint(tmp_path, {"compose.yaml": text}) == ([], 0)


def test_a_key_named_in_the_environment_is_reported(tmp_path: Path) -> None:
    text = _SSL.replace(
        "        volumes:",
        "        environment: {TLS_KEY: /etc/ssl/private/site.key}\n        volumes:",
    )
    (finding,), code = lint(tmp_path, {"compose.yaml": text})
    assert "/etc/ssl/private" in finding["message"]
    assert "($TLS_KEY)" in finding["assumptions"][0]
    assert code == 1


def test_a_key_named_in_a_mounted_nginx_conf_is_reported(tmp_path: Path) -> None:
    text = textwrap.dedent(_SSL) + "      - ./nginx.conf:/etc/nginx/nginx.conf:ro\n"
    conf = """\
        # ssl_certificate_key /etc/ssl/private/commented.key;
        server {
            listen 8443 ssl;
            ssl_certificate     /etc/ssl/certs/site.pem;
            ssl_certificate_key /etc/ssl/private/site.key;
        }
        """
    (finding,), _ = lint(tmp_path, {"compose.yaml": text, "nginx.conf": conf})
    assert finding["assumptions"][0] == (
        "the service opens /etc/ssl/private/site.key (nginx.conf:5)"
    )
    conf_without = conf.replace("ssl_certificate_key /etc/ssl/private/site.key;", "")
    assert lint(tmp_path, {"compose.yaml": text, "nginx.conf": conf_without}) == ([], 0)


def test_the_certbot_tree_is_there_for_its_keys(tmp_path: Path) -> None:
    """Mounting /etc/letsencrypt (or a live/DOMAIN below it) has no other purpose."""
    for mount in ("/etc/letsencrypt:/etc/letsencrypt", "/etc/letsencrypt/live/x:/certs"):
        text = _SSL.replace("/etc/ssl:/etc/ssl", mount)
        (finding,), _ = lint(tmp_path, {"compose.yaml": text})
        assert "/etc/letsencrypt/" in finding["message"]
        assert finding["assumptions"][0].startswith(
            (
                "/etc/letsencrypt is mounted for what it holds",
                "the service opens what it mounts: /etc/letsencrypt/live/x",
            )
        )
