"""systemd's % specifiers (systemd.unit(5)), for system and user units, and the ``$VAR`` /
``${VAR}`` substitution of ``ExecStart=`` from ``Environment=`` (systemd.service(5)); a unit
whose ``ExecStart=`` is commented out runs nothing and is judged for nothing else."""

from __future__ import annotations

import pytest

from unroot.lint.engine import lint_texts
from unroot.sources.systemd import parse_socket_unit, parse_systemd
from unroot.sources.systemd_specifiers import (
    Specifiers,
    is_user_unit,
    parse_environment_file,
    substitute,
)


@pytest.mark.parametrize(
    ("path", "user"),
    [
        ("/usr/lib/systemd/system/podman.socket", False),
        ("/usr/lib/systemd/user/podman.socket", True),
        ("/etc/systemd/user/x.service", True),
        ("/home/me/.config/systemd/user/x.service", True),
        ("deploy/x.service", False),
        ("/srv/systemd/users/x.service", False),
    ],
)
def test_user_units_are_those_in_the_user_unit_paths(path: str, user: bool) -> None:
    assert is_user_unit(path) is user


@pytest.mark.parametrize(
    ("text", "system", "user"),
    [
        ("%t/podman/podman.sock", "/run/podman/podman.sock", "/run/user/UID/podman/podman.sock"),
        ("%h/.ssh", "/root/.ssh", "/home/USER/.ssh"),
        ("%S/%p", "/var/lib/foo-bar", "/home/USER/.local/state/foo-bar"),
        (
            "%C %L %E",
            "/var/cache /var/log /etc",
            "/home/USER/.cache /home/USER/.local/state/log /home/USER/.config",
        ),
        ("%u:%U %g:%G", "root:0 root:0", "USER:UID USER:GID"),
        ("%n %N", "foo-bar@a-b.service foo-bar@a-b", "foo-bar@a-b.service foo-bar@a-b"),
        ("%i %I %j %J %P %f", "a-b a/b bar bar foo/bar /a/b", "a-b a/b bar bar foo/bar /a/b"),
        ("100%%", "100%", "100%"),
    ],
)
def test_specifier_values_for_system_and_user_units(text: str, system: str, user: str) -> None:
    assert Specifiers("foo-bar@a-b.service", "/etc/systemd/system/x").expand(text) == system
    assert Specifiers("foo-bar@a-b.service", "/etc/systemd/user/x").expand(text) == user


def test_unknown_values_are_assumptions_and_an_unknown_specifier_is_none() -> None:
    spec = Specifiers("a.service", "/usr/lib/systemd/user/a.service")
    assert spec.expand("%t/a.sock") == "/run/user/UID/a.sock"
    assert spec.expand("%H") == "HOST_NAME"
    assert spec.notes() == (
        "%t is $XDG_RUNTIME_DIR of the user whose manager runs it: /run/user/UID",
        "%H is this host's host name, written HOST_NAME",
    )
    assert Specifiers("a.service", "a.service").expand("%t/x %Z") is None
    assert Specifiers("a.service", "a.service").expand("%t/x").startswith("/run/")  # type: ignore[union-attr]


def test_a_socket_path_under_percent_t_is_a_unix_socket_not_a_port() -> None:
    """Debian's podman.socket: ``ListenStream=%t/podman/podman.sock``."""
    text = "[Socket]\nListenStream=%t/podman/podman.sock\nSocketMode=0660\n"
    socket = parse_socket_unit(text, "/usr/lib/systemd/system/podman.socket")
    assert (socket.ports, socket.problems, socket.notes) == ((), (), ())
    user = parse_socket_unit(text, "/usr/lib/systemd/user/podman.socket")
    assert (user.ports, user.problems) == ((), ())
    assert user.notes == (
        "%t is $XDG_RUNTIME_DIR of the user whose manager runs it: /run/user/UID",
    )


def test_an_unknown_specifier_drops_the_listen_line_as_systemd_does() -> None:
    socket = parse_socket_unit("[Socket]\nListenStream=%Z/a.sock\nListenStream=80\n", "a.socket")
    assert [p.port for p in socket.ports] == [80]
    ((where, message),) = socket.problems
    assert where.line == 2
    assert "unknown % specifier; systemd ignores this setting" in message


@pytest.mark.parametrize(
    ("words", "env", "expected", "unset"),
    [
        (["/srv", "--port", "${PORT}"], {"PORT": "80"}, ("/srv", "--port", "80"), []),
        (["/srv", "--port=${PORT}"], {"PORT": "80"}, ("/srv", "--port=80"), []),
        (["/srv", "$OPTS"], {"OPTS": "-v  -x"}, ("/srv", "-v", "-x"), []),
        (["/srv", "${OPTS}"], {"OPTS": "-v -x"}, ("/srv", "-v -x"), []),
        (["/srv", "$NOPE", "x"], {}, ("/srv", "x"), ["NOPE"]),
        (["/srv", "${NOPE}"], {}, ("/srv", ""), ["NOPE"]),
        (["/srv", "$$HOME", "a$$b"], {}, ("/srv", "$HOME", "a$b"), []),
    ],
)
def test_environment_substitution(
    words: list[str], env: dict[str, str], expected: tuple[str, ...], unset: list[str]
) -> None:
    found: list[str] = []
    assert substitute(words, env, found) == expected
    assert found == unset


def test_execstart_gets_its_port_from_environment() -> None:
    unit = (
        '[Service]\nUser=web\nEnvironment=PORT=80 "OPTS=-v -x"\n'
        "ExecStart=/usr/bin/web --port ${PORT} $OPTS --state %S/%p\n"
    )
    (workload,) = parse_systemd(unit, "/etc/systemd/system/web.service").workloads
    assert workload.entrypoint == (
        "/usr/bin/web",
        "--port",
        "80",
        "-v",
        "-x",
        "--state",
        "/var/lib/web",
    )
    assert [p.port for p in workload.ports] == [80]
    assert "ExecStart= uses $PORT='80' from Environment=" in workload.notes


def test_colon_prefix_keeps_dollars_and_unset_variables_are_noted() -> None:
    (kept,) = parse_systemd("[Service]\nExecStart=:/bin/echo $HOME\n", "a.service").workloads
    assert kept.entrypoint == ("/bin/echo", "$HOME")
    unit = "[Service]\nEnvironmentFile=-/etc/default/web\nExecStart=/usr/bin/web --port ${PORT}\n"
    (workload,) = parse_systemd(unit, "web.service").workloads
    assert workload.entrypoint == ("/usr/bin/web", "--port", "")
    assert workload.notes == (
        "ExecStart= uses $PORT, taken as empty: it may come from "
        "EnvironmentFile=/etc/default/web, which lint could not read (it is on the host the "
        "unit runs on)",
    )


def test_environment_reset_and_quotes() -> None:
    unit = (
        '[Service]\nEnvironment=A=1 B=2\nEnvironment=\nEnvironment=C="x y"\n'
        "ExecStart=/bin/a ${A} ${C}\n"
    )
    (workload,) = parse_systemd(unit, "a.service").workloads
    assert workload.entrypoint == ("/bin/a", "", "x y")


def test_podman_socket_and_service_lint_clean() -> None:
    """Debian's podman.socket and podman.service (the shape, written here)."""
    socket = "[Socket]\nListenStream=%t/podman/podman.sock\nSocketMode=0660\n"
    service = (
        "[Unit]\nRequires=podman.socket\n[Service]\nDelegate=true\nType=exec\nKillMode=process\n"
        'Environment=LOGGING="--log-level=info"\n'
        "ExecStart=/usr/bin/podman $LOGGING system service\n"
    )
    files = {"s/podman.socket": socket, "s/podman.service": service}
    result = lint_texts(
        [("s/podman.socket", "systemd", socket), ("s/podman.service", "systemd", service)],
        read=files.get,
    )
    assert [(f.rule, f.severity) for f in result.findings] == [("UR109", "info")]
    assert result.exit_code == 0


@pytest.mark.parametrize(
    ("service", "expected"),
    [
        ("[Service]\n#ExecStart=/usr/bin/traefik\nRestart=always\n", "systemd refuses to start"),
        ("[Service]\nType=oneshot\nExecStop=/bin/true\n", "runs only its ExecStop="),
        ("[Service]\nSlice=-.slice\n", "no ExecStart=, ExecStop=, or SuccessAction="),
        ("[Service]\nExecStart=/bin/a 'unbalanced\n", "unbalanced quotes"),
    ],
)
def test_a_unit_without_execstart_is_an_info_and_nothing_else(service: str, expected: str) -> None:
    result = lint_texts([("t.service", "systemd", "[Unit]\nDescription=x\n" + service)])
    assert {f.rule for f in result.findings} == {"UR100"}
    assert any(expected in f.message for f in result.findings)
    assert "UR109" not in {f.rule for f in result.findings}
    assert result.exit_code == (1 if "unbalanced" in expected else 0)


def test_the_same_unit_with_execstart_is_judged() -> None:
    result = lint_texts([("t.service", "systemd", "[Service]\nExecStart=/usr/bin/traefik\n")])
    assert [(f.rule, f.severity) for f in result.findings] == [("UR109", "info")]


def test_a_unit_without_type_and_execstart_is_a_oneshot_with_its_success_action() -> None:
    """systemd-exit.service: no Type=, no ExecStart=, SuccessAction=exit-force."""
    text = "[Unit]\nSuccessAction=exit-force\n[Service]\nSlice=-.slice\n"
    result = lint_texts([("systemd-exit.service", "systemd", text)])
    assert [(f.rule, f.severity) for f in result.findings] == [("UR100", "info")]
    assert "runs only its SuccessAction=" in result.findings[0].message


def test_a_user_unit_runs_as_its_user_not_root() -> None:
    text = "[Service]\nExecStart=/usr/bin/app --socket %t/app.sock\n"
    result = lint_texts([("/usr/lib/systemd/user/app.service", "systemd", text)])
    assert result.findings == ()
    (workload,) = parse_systemd(text, "/usr/lib/systemd/user/app.service").workloads
    assert workload.user is not None
    assert workload.user.is_root is False
    assert workload.entrypoint == ("/usr/bin/app", "--socket", "/run/user/UID/app.sock")
    assert workload.notes[0].startswith("%t is $XDG_RUNTIME_DIR")


_WEB = (
    "[Service]\nUser=web\nEnvironment=PORT=8080\nEnvironmentFile=-/etc/default/web\n"
    "ExecStart=/usr/bin/web --port ${PORT} $OPTS\n"
)


def test_environment_file_is_read_in_a_tree_that_mirrors_a_root() -> None:
    """A unit under …/etc/systemd/system reads /etc/default/web of the same tree; its values
    override Environment= (systemd.exec(5))."""
    files = {
        "t/etc/systemd/system/web.service": _WEB,
        "t/etc/default/web": "# options\nPORT=80\nOPTS='-v  -x'\n",
    }
    result = lint_texts(
        [("t/etc/systemd/system/web.service", "systemd", _WEB)],
        read=files.get,
        list_dir=lambda directory: [],
    )
    (finding,) = [f for f in result.findings if f.rule == "UR111"]
    assert "port 80" in finding.message
    assert "ExecStart= uses $PORT='80' from EnvironmentFile=/etc/default/web" in finding.assumptions


def test_environment_file_of_a_unit_outside_such_a_tree_is_not_read() -> None:
    files = {"deploy/web.service": _WEB, "/etc/default/web": "PORT=80\n"}
    result = lint_texts([("deploy/web.service", "systemd", _WEB)], read=files.get)
    assert "UR111" not in {f.rule for f in result.findings}  # 8080 from Environment=


def test_variables_systemd_sets_are_not_called_empty() -> None:
    unit = "[Service]\nExecStart=-/sbin/agetty -o '-p -- \\\\u' --noclear - $TERM\n"
    (workload,) = parse_systemd(unit, "getty@.service").workloads
    assert "ExecStart= uses $TERM, which systemd sets when it starts the service" in workload.notes


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A=1\n# B=2\n; C=3\nexport D='x y'\nE=\"q\"\n", {"A": "1", "D": "x y", "E": "q"}),
        ("F=a \\\nb\n", {"F": "a b"}),
        ("not an assignment\n=1\n", {}),
    ],
)
def test_environment_file_syntax(text: str, expected: dict[str, str]) -> None:
    assert parse_environment_file(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/opt/%%n/srv", "/opt/%n/srv"),  # expanded once: %% is a literal %
        ("100%%", "100%"),
        ("100%", "100%"),  # a trailing stray % stays (specifier_printf)
        ("%-x %/", "%-x %/"),  # % before a character no specifier can be: kept
        ("%n%", "t.service%"),
        ("%Z", None),  # a letter systemd does not know: -EBADSLT
        ("%9", None),
    ],
)
def test_specifiers_are_resolved_once_as_specifier_printf_does(
    text: str, expected: str | None
) -> None:
    assert Specifiers("t.service", "t.service").expand(text) == expected


def test_execstart_specifiers_are_resolved_once_per_word() -> None:
    unit = "[Service]\nUser=app\nExecStart=/opt/%%n/srv --pct 100%% --x 100% --name %n\n"
    parsed = parse_systemd(unit, "/etc/systemd/system/t.service")
    (workload,) = parsed.workloads
    assert workload.entrypoint == (
        "/opt/%n/srv",
        "--pct",
        "100%",
        "--x",
        "100%",
        "--name",
        "t.service",
    )
    assert parsed.problems == ()


def test_a_trailing_percent_keeps_the_execstart_and_its_port_is_judged() -> None:
    unit = "[Service]\nUser=app\nExecStart=/usr/bin/srv --port 80 --x 100%\n"
    findings = lint_texts([("srv.service", "systemd", unit)]).findings
    assert [f.rule for f in findings] == ["UR111"]


def test_an_unknown_specifier_in_execstart_makes_systemd_refuse_the_unit() -> None:
    unit = "[Service]\nUser=app\nExecStart=/usr/bin/srv --port 80 --id %Z\n"
    parsed = parse_systemd(unit, "srv.service")
    assert parsed.workloads == ()
    ((where, message),) = parsed.problems
    assert where.line == 3
    assert message.startswith("ExecStart= word '%Z': an unknown % specifier")
    assert "Unit configuration has fatal error, unit will not be started" in message
    (finding,) = lint_texts([("srv.service", "systemd", unit)]).findings
    assert (finding.rule, finding.severity) == ("UR100", "error")


def test_an_unknown_specifier_in_a_dash_execstart_drops_only_that_line() -> None:
    unit = "[Service]\nUser=app\nExecStart=-/usr/bin/srv --id %Z\n"
    parsed = parse_systemd(unit, "srv.service")
    messages = [m for _, m in parsed.problems]
    assert messages[0] == ("ExecStart= word '%Z': an unknown % specifier; systemd ignores the line")
    assert messages[1].startswith("no ExecStart=: systemd refuses to start this unit")
    findings = lint_texts([("srv.service", "systemd", unit)]).findings
    assert sorted(f.severity for f in findings) == ["info", "warning"]


def test_a_shell_script_in_execstart_expands_with_the_units_environment() -> None:
    """systemd turns ``$$`` into ``$``; the shell then reads ``${PORT:-80}`` with PORT=8080."""
    unit = (
        "[Service]\nUser=app\nEnvironment=PORT=8080\n"
        "ExecStart=/bin/sh -c 'exec /usr/bin/srv --port $${PORT:-80}'\n"
    )
    (workload,) = parse_systemd(unit, "srv.service").workloads
    assert workload.entrypoint[-1] == "exec /usr/bin/srv --port ${PORT:-80}"
    assert [p.port for p in workload.ports] == [8080]
    unset = unit.replace("Environment=PORT=8080\n", "")
    (default,) = parse_systemd(unset, "srv.service").workloads
    assert [p.port for p in default.ports] == [80]
    assert [f.rule for f in lint_texts([("srv.service", "systemd", unset)]).findings] == ["UR111"]
    assert lint_texts([("srv.service", "systemd", unit)]).findings == ()
