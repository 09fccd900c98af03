"""Compose projects read the way ``docker compose`` loads them: ``.env``, the override file,
``extends``, ``include``; findings at the file and line the effective value came from; the
override, extended and included files linted through their project, never on their own."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unroot.commands.lint import run_lint
from unroot.lint.discover import discover
from unroot.lint.engine import lint_paths
from unroot.sources._shared import INTERNAL_ERROR
from unroot.sources.compose.env import interpolate, parse_dotenv
from unroot.sources.compose.merge import Merger, without_resets
from unroot.sources.compose.parser import parse_compose
from unroot.sources.parsed import Location, ParsedFile, Workload
from unroot.sources.yamlsupport import YMap, YNode, YScalar, YSeq, load_yaml

FIXTURES = Path(__file__).parent / "fixtures"
FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)


def project(files: Mapping[str, str], main: str = "compose.yaml", **env: str) -> ParsedFile:
    """Parse ``main`` with the other texts as the files compose would read beside it."""
    texts = {name: textwrap.dedent(text).lstrip("\n") for name, text in files.items()}
    return parse_compose(texts[main], main, env=env or None, read=texts.get)


def service(parsed: ParsedFile, name: str) -> Workload:
    return {w.name: w for w in parsed.workloads}[name]


def cli_json(*argv: str) -> tuple[int, dict[str, list[dict[str, object]]]]:
    out = io.StringIO()
    code = run_lint([*argv, "--format", "json"], stdout=out, stdin=io.StringIO())
    return code, json.loads(out.getvalue())


def where(report: dict[str, list[dict[str, object]]]) -> list[tuple[str, str, int]]:
    return sorted(
        (str(f["rule"]), str(f["file"]).split("fixtures/", 1)[1], int(str(f["line"])))
        for f in report["findings"]
    )


# -- the fixtures, through the command line -------------------------------------------------
FIXTURE_FINDINGS = {
    "compose-override-drop-all": [("UR103", "compose-override-drop-all/compose.override.yaml", 5)],
    "compose-override-cap-add": [],
    "compose-env-host-port": [("UR105", "compose-env-host-port/compose.yaml", 4)],
    "compose-env-high-port": [],
    "compose-extends": [("UR103", "compose-extends/common/services.yml", 9)],
    "compose-include": [("UR105", "compose-include/proxy/compose.yaml", 6)],
}


@pytest.mark.parametrize(("name", "expected"), sorted(FIXTURE_FINDINGS.items()))
def test_fixture_findings_point_where_the_value_was_written(
    name: str, expected: list[tuple[str, str, int]]
) -> None:
    code, report = cli_json(str(FIXTURES / name))
    assert where(report) == expected
    assert code == (1 if expected else 0)
    # every file of the project is listed once; no file was linted as a project of its own
    files = [str(f) for f in report["files"]]
    assert len(files) == len(set(files))


NAME = "compose-env-host-port"


def test_the_installed_command_reads_the_project() -> None:
    """``unroot lint DIR --format json`` as a user runs it."""
    run = subprocess.run(
        [sys.executable, "-m", "unroot", "lint", "--format", "json", str(FIXTURES / NAME)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "API_PORT": "8080"},  # the linter does not read its environment
    )
    assert run.returncode == 1, run.stderr
    report = json.loads(run.stdout)
    assert where(report) == [("UR105", "compose-env-host-port/compose.yaml", 4)]
    assert "port 80 " in report["findings"][0]["message"]
    assert any(str(f).endswith("compose-env-host-port/.env") for f in report["files"])


def test_naming_the_override_lints_its_project(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(FIXTURES / "compose-override-drop-all")
    code, report = cli_json("compose.override.yaml")
    assert code == 1
    assert [(f["rule"], f["file"], f["line"]) for f in report["findings"]] == [
        ("UR103", "compose.override.yaml", 5)
    ]
    assert report["files"] == ["compose.yaml", "compose.override.yaml", "Dockerfile"]


def test_naming_an_extended_file_lints_the_project_that_extends_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(FIXTURES / "compose-extends")
    assert discover(["common/services.yml"]) == [("common/services.yml", "compose")]  # not beside
    _, report = cli_json("compose.yaml", "common/services.yml")
    assert [(f["rule"], f["file"]) for f in report["findings"]] == [
        ("UR103", "common/services.yml")
    ]


def test_pragmas_in_the_override_file_apply(tmp_path: Path) -> None:
    for name in ("Dockerfile", "compose.yaml", "compose.override.yaml"):
        text = (FIXTURES / "compose-override-drop-all" / name).read_text()
        if name == "compose.override.yaml":
            text = text.replace("cap_drop: [ALL]", "cap_drop: [ALL]  # unroot: ignore=UR103")
        (tmp_path / name).write_text(text)
    assert lint_paths([str(tmp_path)]).findings == ()


# -- discovery --------------------------------------------------------------------------------
def layout(root: Path, files: Mapping[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))


def test_discovery_lints_each_project_once(tmp_path: Path) -> None:
    layout(
        tmp_path,
        {
            "compose.yaml": """
                include: [proxy/compose.yaml]
                services:
                  app: {extends: {file: common.compose.yml, service: base}}
            """,
            "compose.override.yaml": "services:\n  app: {user: '1'}\n",
            "docker-compose.override.yml": "services:\n  app: {user: '2'}\n",  # compose ignores it
            "common.compose.yml": "services:\n  base: {image: x}\n",
            "proxy/compose.yaml": "services:\n  proxy: {image: caddy}\n",
            "proxy/compose.override.yml": "services:\n  proxy: {read_only: true}\n",
            "other/docker-compose.yml": "services:\n  other: {image: y}\n",
            "other/compose.override.yml": "services:\n  other: {read_only: true}\n",
            "lonely/compose.override.yaml": "services:\n  s: {image: z}\n",  # no main: a project
            "loop/a.compose.yml": "include: [b.compose.yml]\nservices: {}\n",
            "loop/b.compose.yml": "include: [a.compose.yml]\nservices: {}\n",
        },
    )
    found = {os.path.relpath(path, tmp_path) for path, _ in discover([str(tmp_path)])}
    assert found == {
        "compose.yaml",
        "other/docker-compose.yml",
        "lonely/compose.override.yaml",
        "loop/a.compose.yml",
        "loop/b.compose.yml",
    }


def test_explicit_override_brings_its_main_and_keeps_other_files(tmp_path: Path) -> None:
    layout(
        tmp_path,
        {
            "docker-compose.yml": "services:\n  s: {image: x}\n",
            "docker-compose.override.yml": "services:\n  s: {user: '1'}\n",
            "Dockerfile": "FROM scratch\n",
        },
    )
    override = str(tmp_path / "docker-compose.override.yml")
    dockerfile = str(tmp_path / "Dockerfile")
    assert discover([override, dockerfile]) == [
        (str(tmp_path / "docker-compose.yml"), "compose"),
        (dockerfile, "dockerfile"),
    ]


# -- .env ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("A=1", {"A": "1"}),
        ("export A=1", {"A": "1"}),
        ("  export   A = 1  ", {"A": "1"}),
        ("A: 1", {"A": "1"}),
        ("A=1 # a comment", {"A": "1"}),
        ("A=1# not a comment", {"A": "1# not a comment"}),
        ("A='1 # kept'", {"A": "1 # kept"}),
        ('A="say \\"hi\\"\\n"', {"A": 'say "hi"\n'}),
        ("A='no \\n escapes'", {"A": "no \\n escapes"}),
        ('A="a\nb"', {"A": "a\nb"}),
        ("A='x\n# not a comment\ny'", {"A": "x\n# not a comment\ny"}),
        ("A=x\nB=${A}-$A-${C:-c}", {"A": "x", "B": "x-x-c"}),
        ("A=x\nB='${A}'", {"A": "x", "B": "${A}"}),
        ('A="$$HOME"', {"A": "$HOME"}),
        ('A="\\$HOME"', {"A": "$HOME"}),
        ("A=", {"A": ""}),
        ("A.b-c[0]=1", {"A.b-c[0]": "1"}),
        ("# only a comment\n\n", {}),
        ("FROM_ENV", {"FROM_ENV": "shell"}),
        ("NOT_IN_ENV", {}),
        ("A=${FROM_ENV}", {"A": "shell"}),
        ("FROM_ENV=file", {"FROM_ENV": "file"}),  # compose: the shell's value wins later on
        ("\ufeffA=1\r\nB=2\r\n", {"A": "1", "B": "2"}),
    ],
)
def test_dotenv_values(line: str, expected: dict[str, str]) -> None:
    values, problems = parse_dotenv(line, {"FROM_ENV": "shell"})
    assert (values, problems) == (expected, [])


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        ("A=1\nnot a variable\nB=2", 2, "is not KEY=VALUE"),
        ('A=1\nB="open\nC=3', 2, "unterminated"),
        ("=value", 1, "is not KEY=VALUE"),
        ("A=${B", 1, "missing '}'"),
    ],
)
def test_dotenv_bad_lines_are_problems(text: str, line: int, needle: str) -> None:
    values, problems = parse_dotenv(text)
    assert any(n == line and needle in message for n, message in problems), problems
    assert all(message.startswith("variable ") for _, message in problems)  # UR100 warnings
    if "C=3" in text:
        assert values["C"] == "3"  # the lines after a bad one are still read


def test_dotenv_feeds_interpolation_and_the_environment_wins() -> None:
    files = {
        "compose.yaml": """
            services:
              web:
                image: "nginx:${TAG:?set TAG}"
                user: ${UID}
                ports: ["${PORT:-8080}:80"]
        """,
        ".env": "TAG=1.27\nUID=101\nPORT=80\n",
    }
    parsed = project(files)
    web = service(parsed, "web")
    assert parsed.problems == ()
    assert (web.image, web.user and web.user.uid) == ("nginx:1.27", 101)
    assert [p.host_port for p in web.ports] == [80]
    overridden = service(project(files, PORT="8443"), "web")
    assert [p.host_port for p in overridden.ports] == [8443]
    assert [p.path for p in parsed.parts] == [".env"]


def test_bad_dotenv_is_a_warning_through_the_engine(tmp_path: Path) -> None:
    layout(
        tmp_path,
        {
            "compose.yaml": "services:\n  s:\n    image: x:${TAG}\n    user: '1'\n",
            ".env": "TAG=1\nthis is not a variable\n",
        },
    )
    (finding,) = lint_paths([str(tmp_path)]).findings
    assert (finding.rule, finding.severity, finding.line) == ("UR100", "warning", 2)
    assert finding.file.endswith(".env")


# -- override merge -------------------------------------------------------------------------
def test_override_merge_rules_and_locations() -> None:
    parsed = project(
        {
            "compose.yaml": """
                services:
                  web:
                    image: nginx
                    command: ["nginx", "-g", "daemon off;"]
                    ports: ["80:80", "443:443"]
                    cap_add: [CHOWN]
                    security_opt: ["no-new-privileges:true"]
                    sysctls: {net.core.somaxconn: "1024"}
                    user: "101"
                    volumes: ["./html:/usr/share/nginx/html:ro"]
                    ulimits: {nofile: {soft: 1024, hard: 2048}}
            """,
            "compose.override.yaml": """
                services:
                  web:
                    command: ["nginx-debug"]
                    ports: ["443:443", "8443:8443"]
                    cap_add: [CHOWN, NET_BIND_SERVICE]
                    security_opt: ["no-new-privileges:false"]
                    sysctls: ["net.ipv4.ip_unprivileged_port_start=0"]
                    user: ~
                    volumes: ["./dev-html:/usr/share/nginx/html"]
                    ulimits: {nofile: 65536}
                  extra:
                    image: busybox
            """,
        }
    )
    assert parsed.problems == ()
    web = service(parsed, "web")
    over = "compose.override.yaml"
    assert web.location == Location("compose.yaml", 2, 3)  # the service stays where it began
    assert web.command == ("nginx-debug",)
    assert web.location_of("command") == Location(over, 3, 5)
    assert [(p.port, p.location.file if p.location else "") for p in web.ports] == [
        (80, "compose.yaml"),
        (443, over),
        (8443, over),
    ]
    assert web.cap_add == ("CHOWN", "NET_BIND_SERVICE")
    assert web.caps_location == Location(over, 5, 5)
    assert not web.no_new_privs  # appended: the last one wins
    assert web.sysctls == (
        ("net.core.somaxconn", "1024"),
        ("net.ipv4.ip_unprivileged_port_start", "0"),
    )
    assert web.user is not None  # null keeps the earlier value
    assert web.user.location == Location("compose.yaml", 9, 5)
    assert [(m.source, m.read_only, m.location) for m in web.mounts] == [
        ("dev-html", False, Location(over, 9, 15))  # same target: the later entry, in its place
    ]
    assert web.nofile == (65536, 65536)
    assert service(parsed, "extra").location == Location(over, 11, 3)
    assert [p.path for p in parsed.parts] == [over]


def test_reset_and_override_tags() -> None:
    parsed = project(
        {
            "compose.yaml": """
                services:
                  web:
                    image: nginx
                    ports: ["80:80"]
                    cap_drop: [ALL]
                    network_mode: host
                    expose: ["80"]
            """,
            "compose.override.yml": """
                services:
                  web:
                    ports: !reset []
                    cap_drop: !override [NET_RAW]
                    network_mode: !reset null
                    expose: !override
                      - "8080"
            """,
        }
    )
    assert parsed.problems == ()  # the tags are compose's, not unknown ones
    web = service(parsed, "web")
    assert web.cap_drop == ("NET_RAW",)
    assert web.caps_location == Location("compose.override.yml", 4, 5)
    assert not web.host_network
    assert [(p.port, p.source) for p in web.ports] == [(8080, "expose")]


def test_override_only_for_default_names_and_documents_merge_in_order() -> None:
    other = project(
        {
            "prod.compose.yaml": "services:\n  s: {image: x}\n",
            "compose.override.yaml": "services:\n  s: {user: root}\n",
        },
        main="prod.compose.yaml",
    )
    assert service(other, "s").user is None
    documents = project({"compose.yaml": "services:\n  s: {user: '1'}\n---\nservices:\n  s: {}\n"})
    assert [w.name for w in documents.workloads] == ["s"]
    assert service(documents, "s").user is not None


def test_build_string_merged_with_mapping() -> None:
    parsed = project(
        {
            "app/docker-compose.yml": "services:\n  s:\n    build: ./src\n",
            "app/docker-compose.override.yml": "services:\n  s:\n    build: {target: dev}\n",
        },
        main="app/docker-compose.yml",
    )
    s = service(parsed, "s")
    assert (s.dockerfile, s.build_target) == ("app/src/Dockerfile", "dev")


# -- extends ----------------------------------------------------------------------------------
def test_extends_chain_other_file_and_relative_paths() -> None:
    parsed = project(
        {
            "compose.yaml": """
                services:
                  web:
                    extends: {file: ../shared/base.yml, service: hardened}
                    image: nginx
            """,
            "../shared/base.yml": """
                services:
                  base:
                    volumes: ["./conf:/etc/app:ro"]
                    user: "101"
                  hardened:
                    extends: base
                    cap_drop: [ALL]
            """,
        }
    )
    assert parsed.problems == ()
    web = service(parsed, "web")
    assert web.image == "nginx"
    assert web.cap_drop == ("ALL",)
    assert web.caps_location == Location("../shared/base.yml", 7, 5)
    assert web.user is not None
    assert web.user.location == Location("../shared/base.yml", 4, 5)
    assert web.mounts[0].source == "../shared/conf"  # from the extended file's directory
    assert web.location == Location("compose.yaml", 2, 3)


@pytest.mark.parametrize(
    ("files", "needle"),
    [
        ({"compose.yaml": "services:\n  a: {extends: a}\n"}, "extends cycle: a → a"),
        (
            {"compose.yaml": "services:\n  a: {extends: b}\n  b: {extends: {service: a}}\n"},
            "extends cycle: a → b → a",
        ),
        (
            {
                "compose.yaml": "services:\n  a: {extends: {file: o.yml, service: b}}\n",
                "o.yml": "services:\n  b: {extends: {file: compose.yaml, service: a}}\n",
            },
            "extends cycle",
        ),
        ({"compose.yaml": "services:\n  a: {extends: nope}\n"}, "which compose.yaml does not"),
        (
            {"compose.yaml": "services:\n  a: {extends: {file: gone.yml, service: b}}\n"},
            "cannot read 'gone.yml'",
        ),
        ({"compose.yaml": "services:\n  a: {extends: [x]}\n"}, "extends: expected"),
    ],
)
def test_extends_problems_not_hangs(files: dict[str, str], needle: str) -> None:
    parsed = project(files)
    assert any(needle in message for _, message in parsed.problems), parsed.problems
    assert "a" in {w.name for w in parsed.workloads}


# -- include ----------------------------------------------------------------------------------
def test_include_forms_env_and_paths() -> None:
    parsed = project(
        {
            "compose.yaml": """
                include:
                  - db/compose.yaml
                  - path: [cache/compose.yaml, cache/extra.yaml]
                    project_directory: cache
                    env_file: cache/cache.env
                services:
                  app: {image: "app:${TAG}"}
            """,
            ".env": "TAG=1\nDB_PORT=5432\n",
            "db/compose.yaml": """
                services:
                  db:
                    image: "postgres:${DB_TAG}"
                    ports: ["${DB_PORT}:5432"]
                    volumes: ["./data:/var/lib/postgresql/data"]
            """,
            "db/.env": "DB_TAG=16\nDB_PORT=6543\n",
            "cache/compose.yaml": "services:\n  cache: {image: 'redis:${REDIS_TAG}'}\n",
            "cache/extra.yaml": "services:\n  cache: {user: '999'}\n",
            "cache/cache.env": "REDIS_TAG=7\n",
        }
    )
    assert parsed.problems == ()
    db, cache, app = (service(parsed, n) for n in ("db", "cache", "app"))
    assert db.image == "postgres:16"
    assert [p.host_port for p in db.ports] == [5432]  # the including project's variable wins
    assert db.mounts[0].source == "db/data"
    assert db.location == Location("db/compose.yaml", 2, 3)
    assert (cache.image, cache.user and cache.user.text) == ("redis:7", "999")
    assert app.image == "app:1"


@pytest.mark.parametrize(
    ("files", "needle"),
    [
        ({"compose.yaml": "include: [missing.yaml]\nservices: {}\n"}, "cannot read 'missing.yaml'"),
        (
            {
                "compose.yaml": "include: [b.yaml]\nservices: {}\n",
                "b.yaml": "include: [compose.yaml]\nservices: {}\n",
            },
            "include cycle: compose.yaml → b.yaml → compose.yaml",
        ),
        (
            {
                "compose.yaml": "include: [{path: b.yaml, env_file: nope.env}]\n",
                "b.yaml": "services: {}\n",
            },
            "env_file 'nope.env' not found",
        ),
        ({"compose.yaml": "include: [{project_directory: x}]\n"}, "include: needs a path"),
        ({"compose.yaml": "include: {path: x}\n"}, "include: expected a list"),
    ],
)
def test_include_problems(files: dict[str, str], needle: str) -> None:
    parsed = project(files)
    assert any(needle in message for _, message in parsed.problems), parsed.problems


def test_include_only_file_is_a_compose_file() -> None:
    parsed = project({"compose.yaml": "include: [a.yaml]\n", "a.yaml": "services:\n  s: {}\n"})
    assert parsed.problems == ()
    assert [w.name for w in parsed.workloads] == ["s"]


# -- what a service's values rest on: .env variables, unset defaults ------------------------
def test_notes_name_each_variable_and_where_it_came_from() -> None:
    parsed = project(
        {
            "compose.yaml": """
                services:
                  api:
                    image: registry.example.org/api:${TAG:-latest}
                    ports: ["${API_PORT:-8080}:8080"]
                    user: "${UID_:-10001}"
                    command: ["serve", "$MODE", "${EMPTY:-x}", "${EMPTY-y}", "${API_PORT:+on}"]
                    environment: {NOT_READ: "${NOT_READ_VAR:-z}"}
                  db:
                    image: postgres:16
            """,
            ".env": """
                # settings
                COMPOSE_PROJECT_NAME=edge
                export API_PORT=80   # the public port
                EMPTY=
                MODE="multi
                line"
            """,
        }
    )
    api = service(parsed, "api")
    assert api.notes == (
        "${TAG:-latest}: TAG unset, default used",
        "${UID_:-10001}: UID_ unset, default used",
        "API_PORT=80 from .env:3",
        "MODE=multi\\nline from .env:5",
        "${EMPTY:-x}: EMPTY empty in .env:4, default used",
        "EMPTY= from .env:4",
    )
    assert service(parsed, "db").notes == ()  # no variables: nothing to say
    plain = project({"compose.yaml": "services:\n  s:\n    user: $NOBODY\n"})
    assert service(plain, "s").notes == (
        "$NOBODY: NOBODY unset, compose substitutes an empty string",
    )
    alt = project({"compose.yaml": "services:\n  s:\n    user: ${U:+1}x\n"})
    assert service(alt, "s").notes == ("${U:+1}: U unset, nothing substituted",)


def test_notes_of_an_environment_value_and_an_included_project() -> None:
    parsed = project({"compose.yaml": "services:\n  s:\n    user: ${U}\n"}, U="10001")
    assert service(parsed, "s").notes == ("U=10001 from the environment compose runs in",)
    parsed = parse_compose(
        (FIXTURES / "compose-include" / "compose.yaml").read_text(),
        "compose.yaml",
        read=lambda p: _read(FIXTURES / "compose-include" / p),
    )
    assert service(parsed, "proxy").notes == (
        "PROXY_NETWORK=host from proxy/.env:1",
        "PROXY_PORT=443 from proxy/.env:2",
    )


def _read(path: Path) -> str | None:
    return path.read_text() if path.is_file() else None


def test_findings_list_the_env_values_they_rest_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(FIXTURES)
    _, report = cli_json("compose-env-host-port")
    (finding,) = report["findings"]
    assumptions = finding["assumptions"]
    assert isinstance(assumptions, list)
    assert "API_PORT=80 from compose-env-host-port/.env:3" in assumptions


# -- ipc and network_mode: whose namespace -------------------------------------------------
@pytest.mark.parametrize(
    ("line", "host_ipc"),
    [
        ("ipc: host", True),
        ('ipc: " host "', True),
        ("ipc: ${IPC:-host}", True),
        ("ipc: shareable", False),
        ("ipc: private", False),
        ('ipc: "service:shm"', False),  # shm's namespace: runc sets the sysctl there
        ('ipc: "container:shm"', False),
        ("ipc: [host]", False),  # a problem, not a fact
        ("image: x", False),
    ],
)
def test_ipc(line: str, host_ipc: bool) -> None:
    parsed = project({"compose.yaml": f"services:\n  s:\n    {line}\n  shm:\n    ipc: host\n"})
    workload = service(parsed, "s")
    assert workload.host_ipc is host_ipc
    assert (workload.location_of("host_ipc") is not None) is host_ipc
    if line == "ipc: [host]":
        assert any("ipc: expected a string" in m for _, m in parsed.problems)


@pytest.mark.parametrize(
    ("mode", "host"), [("host", True), ("service:edge", True), ("container:edge_1", False),
                       ("service:app", False), ("bridge", False), ("none", False)]
)  # fmt: skip
def test_network_mode_of_another_container_is_not_the_host(mode: str, host: bool) -> None:
    from unroot.situation import build_situations

    parsed = project(
        {
            "compose.yaml": f"""
                services:
                  edge: {{image: x, network_mode: host}}
                  app: {{image: x}}
                  s:
                    image: x
                    network_mode: "{mode}"
                    sysctls: [net.ipv4.ip_unprivileged_port_start=0]
            """
        }
    )
    assert service(parsed, "s").host_network is host
    (situation,) = [x for x in build_situations([parsed], {}) if x.name.endswith("service s")]
    assert situation.host_network is host


# -- fuzzing ----------------------------------------------------------------------------------
_ENV_ALPHABET = st.sampled_from(
    ["A", "b_", "=", ":", " ", "\t", "#", "'", '"', "\\", "$", "{", "}", "-", "?", "+", "\n",
     "export ", "é", "\r", "[", "]", "."]
)  # fmt: skip


@FUZZ
@given(st.lists(_ENV_ALPHABET, max_size=60).map("".join))
def test_dotenv_never_raises(text: str) -> None:
    values, problems = parse_dotenv(text, {"A": "1"})
    lines = text.replace("\r\n", "\n").count("\n") + 1
    assert all(1 <= line <= lines and "\n" not in message for line, message in problems)
    assert all(isinstance(v, str) for v in values.values())


@FUZZ
@given(
    st.lists(st.sampled_from(["$", "{", "}", ":", "-", "?", "+", "A", "B", "$$", "x"]), max_size=30)
)
def test_interpolation_never_raises(parts: list[str]) -> None:
    result, errors = interpolate("".join(parts), {"A": "a", "B": ""}, [])
    assert isinstance(result, str)
    assert all(isinstance(e, str) for e in errors)
    used: list[tuple[str, str, str, bool]] = []
    interpolate("".join(parts), {"A": "a", "B": ""}, [], used)
    for name, op, expression, substituted in used:
        assert expression in "".join(parts)
        assert name in expression
        assert op in ("", ":-", ":?", ":+", "-", "?", "+")
        assert not substituted or name in ("A", "B")


_KEYS = st.sampled_from(["ports", "cap_add", "command", "build", "sysctls", "ulimits", "x", "s"])
_TAGS = st.sampled_from(["", "", "", "!reset", "!override"])
_SCALARS = st.builds(
    lambda text, tag: YScalar(text, "str", 1, 1, file="f", tag=tag),
    st.sampled_from(["80:80", "ALL", "a=1", ".", "", "x"]),
    _TAGS,
)


def _seq(items: list[YNode], tag: str) -> YSeq:
    seq = YSeq(1, 1, file="f", tag=tag)
    seq.items = items
    return seq


def _map(entries: list[tuple[str, YNode]], tag: str) -> YMap:
    mapping = YMap(1, 1, file="f", tag=tag)
    for key, value in entries:
        mapping.put(YScalar(key, "str", 1, 1, file="f"), value)
    return mapping


_NODES = st.recursive(
    _SCALARS | st.just(YScalar("", "null", 1, 1, file="f")),
    lambda inner: (
        st.builds(_seq, st.lists(inner, max_size=4), _TAGS)
        | st.builds(_map, st.lists(st.tuples(_KEYS, inner), max_size=4), _TAGS)
    ),
    max_leaves=25,
)


def _walk(node: YNode, depth: int = 0) -> int:
    assert depth < 50
    if isinstance(node, YMap):
        return 1 + sum(_walk(v, depth + 1) for _, v in node.entries())
    if isinstance(node, YSeq):
        return 1 + sum(_walk(i, depth + 1) for i in node.items)
    return 1


@FUZZ
@given(_NODES, _NODES, st.sampled_from([(), ("services",), ("services", "s"), ("x", "y", "z")]))
def test_merging_random_trees_never_raises(base: YNode, over: YNode, path: tuple[str, ...]) -> None:
    problems: list[str] = []
    merger = Merger(lambda _node, message: problems.append(message))
    merged = merger.merge(base, over, path)
    _walk(merged)
    assert all(isinstance(m, str) for m in problems)
    _walk(without_resets(over))


_COMPOSE_LINES = st.sampled_from(
    [
        "services:\n",
        "  s:\n",
        "    image: x\n",
        "    extends: s\n",
        "    extends: {file: o.yml, service: s}\n",
        "    ports: !reset []\n",
        "    ports: !override ['80:80']\n",
        "    cap_drop: [ALL]\n",
        "    user: ${U:-1}\n",
        "    ipc: host\n",
        "    ipc: ${IPC:-service:s}\n",
        "    network_mode: ${NET}\n",
        "    image: x:${A:+$B}${A-${B:?e}}\n",
        "include: [o.yml]\n",
        "include: [compose.yaml]\n",
        "include: [{path: o.yml, env_file: .env}]\n",
        "---\n",
        "  t: {extends: t}\n",
    ]
)


@FUZZ
@given(
    st.lists(_COMPOSE_LINES, max_size=8).map("".join),
    st.lists(_COMPOSE_LINES, max_size=8).map("".join),
    st.lists(_ENV_ALPHABET, max_size=30).map("".join),
)
def test_random_projects_never_raise(main: str, other: str, dotenv: str) -> None:
    files = {
        "compose.yaml": main,
        "compose.override.yml": other,
        "o.yml": other,
        ".env": dotenv,
    }
    parsed = parse_compose(main, "compose.yaml", read=files.get)
    for _, message in parsed.problems:
        assert INTERNAL_ERROR not in message, message
    for workload in parsed.workloads:
        assert workload.location.file in files
        assert all(isinstance(n, str) and "\n" not in n for n in workload.notes)
    assert load_yaml(main, "compose.yaml").problems is not None
