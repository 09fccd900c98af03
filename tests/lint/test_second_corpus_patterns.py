"""Patterns of the second hand-judged corpus (issue 12) that lint reported falsely.

Each test is a small configuration written for the pattern (never a copy of a corpus file),
linted through the command line, with the finding judged true and the one judged false.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

from unroot.commands.lint import run_lint
from unroot.sources.compose.parser import interpolate, parse_compose
from unroot.sources.exec_argv import exec_chain_argv


def lint(path: Path, *args: str) -> list[dict[str, Any]]:
    out = io.StringIO()
    run_lint([str(path), "--format", "json", *args], stdout=out)
    findings: list[dict[str, Any]] = json.loads(out.getvalue())["findings"]
    return findings


def loud(findings: list[dict[str, Any]]) -> list[str]:
    return [f"{f['rule']} {f['message']}" for f in findings if f["severity"] != "info"]


# -- 1. a value that cannot be read only because a variable in it is unset --------------------
def test_a_value_broken_by_an_unset_variable_is_one_info_naming_it(tmp_path: Path) -> None:
    compose = tmp_path / "compose.yaml"
    compose.write_text(
        "services:\n"
        "  calls:\n"
        "    image: calls:1\n"
        "    read_only: ${RO}\n"
        "    ports:\n"
        '      - "${CALLS_PORT}:${CALLS_PORT}/udp"\n'
        '      - "${CALLS_PORT}:${CALLS_PORT}/tcp"\n'
        "    volumes:\n"
        "      - ${KUBECONFIG:?}:${KUBECONFIG:?}\n"
        "      - ${KUBECONFIG:?}:/kube\n"
    )
    findings = lint(compose)
    assert loud(findings) == []
    by_line: dict[int, list[str]] = {}
    for finding in findings:
        if finding["rule"] == "UR100":
            by_line.setdefault(finding["line"], []).append(finding["message"])
    # one finding per value, naming the variable, saying the value is not checked
    assert all(len(messages) == 1 for messages in by_line.values()), by_line
    assert by_line[4][0].startswith("variable RO is not set in read_only: ")
    assert "not checked: with RO empty, read_only: expected true or false" in by_line[4][0]
    assert "not checked: with CALLS_PORT empty, ports: cannot read ':/udp'" in by_line[6][0]
    assert by_line[7][0].startswith("variable CALLS_PORT is not set in ports: not checked")
    assert "it is required (${KUBECONFIG:?})" in by_line[9][0]
    assert "volumes: cannot read ':'" in by_line[9][0]
    assert 10 not in by_line  # KUBECONFIG was said once; this value reads fine (a volume)
    # the same values, set, are read and checked with nothing to say about them
    (tmp_path / ".env").write_text("RO=true\nCALLS_PORT=8443\nKUBECONFIG=/k/config\n")
    assert [f for f in lint(compose) if f["rule"] == "UR100"] == []


def test_an_unreadable_value_with_its_variables_set_is_still_an_error() -> None:
    parsed = parse_compose(
        'services:\n  s:\n    image: x\n    ports: ["${P}:/udp"]\n', "c.yaml", env={"P": "80"}
    )
    assert [m for _, m in parsed.problems] == [
        "ports: cannot read '80:/udp' (expected [[IP:]HOST:]CONTAINER[/tcp|udp])"
    ]


def test_a_required_variable_is_an_error_only_without_a_collector() -> None:
    """.env files keep compose's error; a compose value hands it to the parser."""
    assert interpolate("${NEED:?set it}", {})[1] == [
        "required variable NEED is missing a value: set it"
    ]
    required: list[tuple[str, str]] = []
    assert interpolate("a${NEED:?set it}", {}, None, None, required) == ("a", [])
    assert required == [("NEED", "set it")]


# -- 2. variables compose's own run sets --------------------------------------------------------
def test_pwd_is_the_project_directory_with_an_assumption(tmp_path: Path) -> None:
    text = "services:\n  gw:\n    image: kong:3\n    volumes: ['${PWD}/kong.yml:/kong.yml:ro']\n"
    parsed = parse_compose(text, f"{tmp_path}/compose.yaml")
    assert parsed.problems == ()
    (gateway,) = parsed.workloads
    assert gateway.mounts[0].source == f"{tmp_path}/kong.yml"
    assert gateway.mounts[0].kind == "bind"
    assert gateway.notes == (
        f"PWD={tmp_path} (assumed: compose is run from the project directory)",
    )
    # a relative project: "." is its directory, a bind mount resolved from it
    relative = parse_compose(text, "deploy/compose.yaml").workloads[0]
    assert (relative.mounts[0].source, relative.mounts[0].kind) == ("deploy/kong.yml", "bind")
    # the shell's own PWD, when lint is given one, wins
    given = parse_compose(text, "deploy/compose.yaml", env={"PWD": "/srv/app"}).workloads[0]
    assert given.mounts[0].source == "/srv/app/kong.yml"


def test_compose_project_name_from_name_or_the_directory() -> None:
    body = "services:\n  app:\n    image: ${COMPOSE_PROJECT_NAME}-app:1\n"
    named = parse_compose("name: My_Stack\n" + body, "/srv/deploy/compose.yaml")
    assert named.problems == ()
    assert named.workloads[0].image == "my_stack-app:1"
    assert "COMPOSE_PROJECT_NAME=my_stack (assumed: from the top-level name:)" in (
        named.workloads[0].notes
    )
    by_directory = parse_compose(body, "/srv/Web.Site/compose.yaml").workloads[0]
    assert by_directory.image == "website-app:1"
    # no directory to name the project by ("-", or a bare file name): still unset
    assert [m.split(":")[0] for _, m in parse_compose(body, "compose.yaml").problems] == [
        "variable COMPOSE_PROJECT_NAME is not set in image"
    ]


# -- 3. an entrypoint script that picks its program, and a binary with file capabilities ------
_TURN = (
    "FROM debian:12-slim\n"
    "COPY turnserver /usr/bin/turnserver\n"
    "COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh\n"
    "{setcap}"
    "USER nobody:nogroup\n"
    "EXPOSE 3478/udp\n"
    'ENTRYPOINT ["docker-entrypoint.sh"]\n'
    'CMD ["--log-file=stdout"]\n'
)
_TURN_COMPOSE = (
    "services:\n  turn:\n    build: .\n    network_mode: {net}\n    ports: ['80:80', '443:443']\n"
)


def _turn(tmp_path: Path, setcap: bool, net: str = "bridge") -> Path:
    line = "RUN setcap CAP_NET_BIND_SERVICE=+ep /usr/bin/turnserver\n" if setcap else ""
    (tmp_path / "Dockerfile").write_text(_TURN.format(setcap=line))
    (tmp_path / "compose.yaml").write_text(_TURN_COMPOSE.format(net=net))
    return tmp_path / "compose.yaml"


def test_a_script_that_may_exec_a_capable_binary_is_not_blamed(tmp_path: Path) -> None:
    compose = _turn(tmp_path, setcap=True)
    assert loud(lint(compose)) == []
    rootless = loud(lint(compose, "--runtime", "podman-rootless"))
    # the host-side publish still fails under rootless Podman; the container's bind is not judged
    assert len(rootless) == 2
    assert all("publishing host port" in f for f in rootless)


def test_without_any_file_capability_the_script_is_still_judged(tmp_path: Path) -> None:
    compose = _turn(tmp_path, setcap=False)
    docker = [f for f in lint(compose) if f["rule"] == "UR106"]
    assert len(docker) == 2
    assert all("docker-entrypoint.sh" in f["message"] for f in docker)
    errors = [f for f in lint(compose, "--runtime", "podman-rootless") if f["severity"] == "error"]
    assert {f["rule"] for f in errors} == {"UR105"}


def test_a_heredoc_script_that_execs_a_capable_binary_is_not_blamed(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(
        "FROM debian:12-slim\n"
        "COPY turnserver /usr/bin/turnserver\n"
        "RUN setcap CAP_NET_BIND_SERVICE=+ep /usr/bin/turnserver\n"
        'COPY --chmod=755 <<EOF /entrypoint\n#!/bin/sh\nset -e\nexec turnserver "$@"\nEOF\n'
        "USER nobody\nEXPOSE 80\n"
        'ENTRYPOINT ["/entrypoint"]\nCMD ["-n"]\n'
    )
    findings = lint(tmp_path / "Dockerfile", "--runtime", "podman-rootless")
    assert loud(findings) == []
    assert any("ends by exec'ing turnserver" in a for f in findings for a in f["assumptions"])


# -- 4. a script's arguments are the next command only by the containers' convention ----------
def test_an_init_script_verb_is_not_a_program() -> None:
    unit = exec_chain_argv(["/usr/lib/frr/frrinit.sh", "start"], None, container=False)
    assert [(link.program, link.role) for link in unit] == [("/usr/lib/frr/frrinit.sh", "shell")]
    wrapped = exec_chain_argv(["/usr/local/bin/wrap.sh", "/usr/sbin/nginx"], None, container=False)
    assert [link.program for link in wrapped] == ["/usr/local/bin/wrap.sh", "/usr/sbin/nginx"]
    # a container's entrypoint script: `docker-entrypoint.sh nginx -g …` runs nginx
    entry = exec_chain_argv(["docker-entrypoint.sh"], ["nginx", "-g", "daemon off;"])
    assert [link.program for link in entry] == ["docker-entrypoint.sh", "nginx"]


def test_a_unit_running_an_init_script_names_no_verb_as_a_program(tmp_path: Path) -> None:
    unit = tmp_path / "frr.service"
    unit.write_text("[Service]\nExecStart=/usr/lib/frr/frrinit.sh start\n")
    notes = [a for f in lint(unit) for a in f["assumptions"]]
    assert notes
    assert not any("getcap start" in a for a in notes)


# -- 5. a whole /run mounted for metrics; the placeholder uid of an unknown user --------------
_AGENT = """\
apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: agent}}
spec:
  selector: {{matchLabels: {{app: agent}}}}
  template:
    metadata: {{labels: {{app: agent}}}}
    spec:
      securityContext: {{runAsNonRoot: true}}
      containers:
        - name: agent
          image: example/agent:1
          volumeMounts:
            - {{name: run, mountPath: {target}}}
      volumes:
        - {{name: run, hostPath: {{path: {source}}}}}
"""


def test_a_host_run_directory_mounted_for_metrics_is_not_a_socket_use(tmp_path: Path) -> None:
    manifest = tmp_path / "agent.yaml"
    manifest.write_text(_AGENT.format(target="/node/run", source="/run"))
    assert [f for f in lint(manifest) if f["rule"] == "UR108"] == []


def test_an_unknown_uid_is_never_printed_as_the_placeholder(tmp_path: Path) -> None:
    manifest = tmp_path / "agent.yaml"
    manifest.write_text(_AGENT.format(target="/var/run/docker.sock", source="/var/run/docker.sock"))
    findings = lint(manifest)
    (mount,) = [f for f in findings if f["rule"] == "UR108"]
    assert mount["message"].startswith("the image's user (unknown uid) (gid 0) cannot connect")
    assert "2000000000" not in json.dumps(findings)
    compose = tmp_path / "compose.yaml"
    compose.write_text(
        "services:\n  a:\n    image: example/agent:1\n    user: agent\n"
        "    volumes: ['/var/run/docker.sock:/var/run/docker.sock']\n"
    )
    for runtime in ("docker", "podman-rootless"):
        found = lint(compose, "--runtime", runtime)
        assert "2000000000" not in json.dumps(found), runtime
    (named,) = [f for f in lint(compose) if f["rule"] == "UR108"]
    assert "user agent is not the owner" in named["message"]


# -- 6. masked units; a user unit's runtime --------------------------------------------------
def test_a_masked_unit_is_skipped_never_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    masked = tmp_path / "cryptdisks.service"
    masked.symlink_to(os.devnull)
    out = io.StringIO()
    assert run_lint([str(masked)], stdout=out) == 0
    assert f"skipped {masked}: a masked unit (a link to /dev/null)" in capsys.readouterr().err
    empty = tmp_path / "rc.service"
    empty.write_text("")  # systemd masks an empty unit file too
    (finding,) = lint(empty)
    assert (finding["rule"], finding["severity"]) == ("UR100", "info")
    assert finding["message"].startswith("an empty unit file is masked")
    # a file of one blank line is not empty (systemd's null_or_empty() reads the size): an error
    (tmp_path / "rc.service").write_text("\n")
    assert loud(lint(empty)) == ["UR100 no [Service] section: not a service unit?"]


def test_a_user_unit_is_judged_as_a_user_service(tmp_path: Path) -> None:
    text = "[Service]\nExecStart=/usr/bin/app --listen :80\n"
    user_dir = tmp_path / ".config" / "systemd" / "user"
    user_dir.mkdir(parents=True)
    (user_dir / "app.service").write_text(text)
    (tmp_path / "app.service").write_text(text)
    user_notes = {a for f in lint(user_dir / "app.service") for a in f["assumptions"]}
    assert "runtime: systemd (user service, host network namespace)" in user_notes
    system_notes = {a for f in lint(tmp_path / "app.service") for a in f["assumptions"]}
    assert "runtime: systemd (system service, host network namespace)" in system_notes


def test_a_copied_script_fix_says_lint_cannot_see_the_binary(tmp_path: Path) -> None:
    """PowerDNS: startup.py copied in, which execs a program it computes."""
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(
        "FROM debian:12-slim\nCOPY dockerdata/startup.py /usr/local/sbin/pdns_server-startup\n"
        'USER 953\nEXPOSE 53/udp\nENTRYPOINT ["/usr/local/sbin/pdns_server-startup"]\n'
    )
    (finding,) = [f for f in lint(dockerfile) if f["rule"] == "UR106"]
    assert "the server binary the script starts, which lint cannot see" in finding["fix"]
    assert "BINARY" in finding["fix"]
