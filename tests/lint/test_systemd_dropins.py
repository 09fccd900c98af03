"""systemd drop-ins: where systemd finds them, in which order, how their lines merge with the
unit's, where findings point, and the command line (systemd 252: src/shared/dropin.c,
src/core/load-fragment.c, src/core/service.c)."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
from _parser_fixtures import FIXTURES, line_of
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unroot.commands.lint import run_lint
from unroot.lint.discover import discover
from unroot.lint.engine import lint_paths, lint_texts
from unroot.sources.kinds import kind_by_name
from unroot.sources.parsed import Location, ParsedFile, Workload
from unroot.sources.systemd import parse_systemd, parse_systemd_units
from unroot.sources.systemd_dropins import dropin_dirs, dropin_unit, is_dropin, order_dropins
from unroot.sources.units import parse_units

DROPINS = FIXTURES / "systemd-dropins"
TREE = FIXTURES / "systemd-tree"


def merged(unit: str, *dropins: str, path: str = "app.service") -> Workload:
    files = [(f"{path}.d/{i:02d}.conf", "[Service]\n" + text) for i, text in enumerate(dropins)]
    parsed = parse_systemd("[Service]\n" + unit, path, dropins=files)
    (workload,) = parsed.workloads
    return workload


# -- where and in which order ------------------------------------------------------------------
def test_dropin_dirs_most_specific_first() -> None:
    assert dropin_dirs("x/foo-bar-baz.service") == [
        "x/foo-bar-baz.service.d",
        "x/foo-bar-.service.d",
        "x/foo-.service.d",
        "x/service.d",
    ]
    assert dropin_dirs("getty@tty1.service") == [
        "getty@tty1.service.d",
        "getty@.service.d",
        "service.d",
    ]
    assert dropin_dirs("a-b@i.service") == [
        "a-b@i.service.d",
        "a-b@.service.d",
        "a-@i.service.d",
        "a-@.service.d",
        "service.d",
    ]
    assert dropin_dirs("web.socket") == ["web.socket.d", "socket.d"]
    assert dropin_dirs("-") == []


def test_dash_prefix_rules() -> None:
    # a leading dash or a trailing one (chopped once) as unit_file_find_dirs does
    assert dropin_dirs("-foo.service") == ["-foo.service.d", "service.d"]
    assert dropin_dirs("foo-.service") == ["foo-.service.d", "service.d"]
    assert dropin_dirs("a-b-.service") == ["a-b-.service.d", "a-.service.d", "service.d"]


def test_mirrored_tree_searches_every_unit_path() -> None:
    dirs = dropin_dirs("root/usr/lib/systemd/system/web.service")
    assert dirs.index("root/etc/systemd/system/web.service.d") < dirs.index(
        "root/usr/lib/systemd/system/web.service.d"
    )
    assert dirs[-1] == "root/lib/systemd/system/service.d"
    assert "root/run/systemd/system.control/web.service.d" in dirs


def test_order_by_file_name_and_the_more_specific_directory_hides() -> None:
    paths = [
        "service.d/10-a.conf",
        "app.service.d/20-b.conf",
        "service.d/20-b.conf",  # hidden by app.service.d/20-b.conf
        "app.service.d/05-z.conf",
        "app.service.d/notes.txt",
        "other.service.d/00.conf",
    ]
    assert order_dropins("app.service", paths) == [
        "app.service.d/05-z.conf",
        "service.d/10-a.conf",
        "app.service.d/20-b.conf",
    ]


@pytest.mark.parametrize(
    ("path", "dropin", "unit"),
    [
        ("a/caddy.service.d/override.conf", True, "a/caddy.service"),
        ("caddy.service.d/x.conf", True, "caddy.service"),
        ("service.d/x.conf", True, None),
        ("web.socket.d/x.conf", True, "web.socket"),
        ("caddy.service.d/x.txt", False, None),
        ("etc/x.conf", False, None),
    ],
)
def test_is_dropin(path: str, dropin: bool, unit: str | None) -> None:
    assert is_dropin(path) is dropin
    assert kind_by_name(path) == ("systemd" if dropin else None)
    if dropin:
        assert dropin_unit(path) == unit


# -- merging ------------------------------------------------------------------------------------
def test_exec_start_override_pattern_points_at_the_dropin() -> None:
    w = merged(
        "User=app\nExecStart=/usr/bin/app --port 8080\n", "ExecStart=\nExecStart=/x --port 80\n"
    )
    assert w.entrypoint == ("/x", "--port", "80")
    assert w.location_of("entrypoint") == Location("app.service.d/00.conf", 3)
    assert [(p.port, p.location) for p in w.ports] == [(80, Location("app.service.d/00.conf", 3))]


def test_second_exec_start_without_reset_is_refused() -> None:
    parsed = parse_systemd(
        "[Service]\nExecStart=/usr/bin/app\n",
        "app.service",
        dropins=[("app.service.d/override.conf", "[Service]\nExecStart=/usr/bin/app -v\n")],
    )
    assert parsed.workloads == ()
    ((where, message),) = parsed.problems
    assert where == Location("app.service.d/override.conf", 2)
    assert "more than one ExecStart=" in message
    assert "empty `ExecStart=`" in message
    assert "app.service:2" in message


def test_oneshot_may_have_several_exec_start() -> None:
    w = merged("Type=oneshot\nExecStart=/bin/a\n", "ExecStart=/bin/b\n")
    assert w.entrypoint == ("/bin/a",)


def test_ambient_reset_in_a_dropin_is_remembered() -> None:
    w = merged("User=dns\nAmbientCapabilities=CAP_NET_BIND_SERVICE\n", "AmbientCapabilities=\n")
    assert w.ambient_caps == ()
    assert w.location_of("ambient_caps") == Location("app.service.d/00.conf", 2)


@pytest.mark.parametrize(
    ("unit", "dropins", "expected"),
    [
        # config_parse_capability_set: across files exactly as within one
        ("CAP_NET_BIND_SERVICE CAP_CHOWN", ["~CAP_CHOWN"], ("cap_net_bind_service",)),
        ("CAP_CHOWN", ["CAP_KILL"], ("cap_chown", "cap_kill")),
        ("CAP_CHOWN", ["", "CAP_KILL"], ("cap_kill",)),
        ("CAP_CHOWN", [""], ()),  # empty: the empty bounding set
        ("CAP_CHOWN", ["~"], None),  # "~": every capability, i.e. not limited
        # a first inverted line (or one after "~") replaces; a later inverted line removes
        ("~CAP_SYS_ADMIN", ["~CAP_NET_RAW"], "all but 2"),
        ("CAP_CHOWN", ["~", "~CAP_NET_RAW"], "all but 1"),
    ],
)
def test_bounding_set_across_files(
    unit: str, dropins: list[str], expected: tuple[str, ...] | str | None
) -> None:
    w = merged(
        f"CapabilityBoundingSet={unit}\n",
        *(f"CapabilityBoundingSet={line}\n" for line in dropins),
    )
    if isinstance(expected, str):
        assert w.bounding_caps is not None
        assert len(w.bounding_caps) == 41 - int(expected.rsplit(" ", 1)[1])
    else:
        assert w.bounding_caps == expected


def test_bounding_set_location_is_the_last_line_that_set_it() -> None:
    w = merged("CapabilityBoundingSet=CAP_A CAP_CHOWN\n", "CapabilityBoundingSet=~CAP_CHOWN\n")
    assert w.location_of("bounding_caps") == Location("app.service.d/00.conf", 2)


def test_later_dropin_wins_and_user_reset() -> None:
    w = merged("User=www\nNoNewPrivileges=yes\n", "User=\n", "NoNewPrivileges=no\n")
    assert w.user is not None
    assert w.user.text == "root"
    assert not w.no_new_privs


def test_unreadable_boolean_in_a_dropin_keeps_the_earlier_value() -> None:
    parsed = parse_systemd(
        "[Service]\nNoNewPrivileges=yes\nExecStart=/bin/true\n",
        "a.service",
        dropins=[("a.service.d/x.conf", "[Service]\nNoNewPrivileges=\n")],
    )
    assert parsed.workloads[0].no_new_privs
    ((where, message),) = parsed.problems
    assert where == Location("a.service.d/x.conf", 2)
    assert "not a boolean" in message


def test_socket_dropin_changes_the_listener() -> None:
    files = {
        "web.socket": "[Socket]\nListenStream=8080\n",
        "web.socket.d/override.conf": "[Socket]\nListenStream=\nListenStream=80\n",
        "web.service": "[Service]\nUser=www\nExecStart=/srv/web\n",
    }
    by_path = {p.path: p for p in parse_systemd_units(files)}
    (web,) = by_path["web.service"].workloads
    assert [(p.port, p.location) for p in web.ports] == [
        (80, Location("web.socket.d/override.conf", 3))
    ]
    assert by_path["web.socket.d/override.conf"].workloads == ()


def test_units_pick_only_their_own_dropins() -> None:
    files = {
        "a.service": "[Service]\nUser=a\nExecStart=/a\n",
        "b.service": "[Service]\nUser=b\nExecStart=/b\n",
        "a.service.d/x.conf": "[Service]\nUser=x\n",
        "service.d/y.conf": "[Service]\nLimitNOFILE=1024\n",
    }
    found = {w.name: w for p in parse_systemd_units(files) for w in p.workloads}
    assert found["a.service"].user is not None
    assert found["a.service"].user.text == "x"
    assert found["b.service"].user is not None
    assert found["b.service"].user.text == "b"
    assert found["b.service"].nofile_location == Location("service.d/y.conf", 2)


def test_dropin_pragmas_and_problems_are_its_own() -> None:
    files = {
        "a.service": "[Service]\nExecStart=/a\n",
        "a.service.d/x.conf": "# unroot: ignore-file=UR109\n[Service]\nnot an assignment\n",
    }
    by_path = {p.path: p for p in parse_units(files)}  # with the pragma pass
    dropin = by_path["a.service.d/x.conf"]
    assert dropin.file_ignores == ("UR109",)
    assert [loc for loc, _ in dropin.problems] == [Location("a.service.d/x.conf", 3)]


# -- the realistic fixtures through the command line ----------------------------------------------
def lint_json(*paths: Path | str) -> tuple[int, dict[str, object]]:
    out = io.StringIO()
    code = run_lint([*map(str, paths), "--format", "json"], stdout=out, stdin=io.StringIO())
    return code, json.loads(out.getvalue())


def findings_of(data: dict[str, object]) -> list[dict[str, object]]:
    found = data["findings"]
    assert isinstance(found, list)
    return found


def test_cli_fixture_findings_point_into_the_dropins() -> None:
    code, data = lint_json(DROPINS)
    assert code == 1
    got = {
        (f["rule"], Path(str(f["file"])).relative_to(DROPINS).as_posix(), f["line"])
        for f in findings_of(data)
    }
    override = (DROPINS / "caddy.service.d/override.conf").read_text()
    coredns = (DROPINS / "coredns.service").read_text()
    dnsdist = (DROPINS / "dnsdist.service").read_text()
    assert got == {
        # PrivateUsers= from 50-hardening.conf; the port from override.conf's ExecStart=
        ("UR116", "caddy.service.d/override.conf", line_of(override, "ExecStart=/usr")),
        # AmbientCapabilities= emptied by override.conf, NoNewPrivileges=true in the unit
        ("UR113", "coredns.service", line_of(coredns, "ExecStart=")),
        # SocketBindAllow=udp:53 only: TCP 53 is refused (EPERM), a warning
        ("UR111", "dnsdist.service", line_of(dnsdist, "ExecStart=")),
        # the type-level service.d/10-defaults.conf; caddy's own 10-defaults.conf hides it
        ("UR110", "service.d/10-defaults.conf", 3),
    }
    by_rule = {f["rule"]: f for f in findings_of(data)}
    ur116 = by_rule["UR116"]
    assert "caddy.service.d/50-hardening.conf:5" in str(ur116["message"])
    assert "AmbientCapabilities=CAP_NET_BIND_SERVICE" in str(ur116["message"])
    assert any("PrivateUsers=" in r["message"] for r in ur116["related"])  # type: ignore[index,union-attr]
    ur113 = by_rule["UR113"]
    related = [(Path(r["file"]).name, r["line"]) for r in ur113["related"]]  # type: ignore[index,union-attr]
    assert ("override.conf", 3) in related
    ur111 = by_rule["UR111"]
    assert ur111["severity"] == "warning"
    assert "EPERM" in str(ur111["message"])
    assert any("BPF_FRAMEWORK" in a for a in ur111["assumptions"])  # type: ignore[union-attr]
    files = data["files"]
    assert isinstance(files, list)
    assert str(DROPINS / "service.d/10-defaults.conf") in files


def test_cli_mirrored_tree() -> None:
    code, data = lint_json(TREE)
    assert code == 1
    (finding,) = findings_of(data)
    assert finding["rule"] == "UR111"
    assert str(finding["file"]).endswith("usr/lib/systemd/system/web.service")
    (related,) = finding["related"]  # type: ignore[misc]
    assert related["file"].endswith("etc/systemd/system/web.service.d/override.conf")  # type: ignore[index]


def test_dropin_named_alone_lints_its_unit(capsys: pytest.CaptureFixture[str]) -> None:
    code, data = lint_json(DROPINS / "caddy.service.d/50-hardening.conf")
    assert code == 1
    assert {f["rule"] for f in findings_of(data)} == {"UR116"}
    assert capsys.readouterr().err == ""


def test_dropin_without_its_unit_is_skipped_with_a_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "gone.service.d").mkdir()
    (tmp_path / "service.d").mkdir()
    orphan = tmp_path / "gone.service.d" / "override.conf"
    orphan.write_text("[Service]\nPrivateUsers=yes\n")
    typed = tmp_path / "service.d" / "10.conf"
    typed.write_text("[Service]\nLimitNOFILE=1024\n")
    code, data = lint_json(orphan, typed)
    assert code == 0
    assert findings_of(data) == []
    err = capsys.readouterr().err
    assert f"skipped {orphan}: a systemd drop-in without its unit gone.service beside it" in err
    assert f"skipped {typed}: a systemd drop-in without a unit beside it" in err
    skipped: list[tuple[str, str]] = []
    assert discover([str(orphan)], skipped=skipped) == []


def test_an_explicit_unit_reads_its_dropins(tmp_path: Path) -> None:
    shutil.copytree(DROPINS, tmp_path / "units")
    result = lint_paths([str(tmp_path / "units" / "coredns.service")])
    assert {f.rule for f in result.findings} == {"UR110", "UR113"}
    assert str(tmp_path / "units" / "coredns.service.d" / "override.conf") in result.files


def test_dropin_pragma_suppresses_a_finding_located_in_it(tmp_path: Path) -> None:
    (tmp_path / "app.service.d").mkdir()
    (tmp_path / "app.service").write_text("[Service]\nUser=app\nExecStart=/srv/app --port 8080\n")
    (tmp_path / "app.service.d" / "override.conf").write_text(
        "[Service]\nExecStart=\n# unroot: ignore=UR111\nExecStart=/srv/app --port 80\n"
    )
    assert lint_paths([str(tmp_path / "app.service")]).findings == ()
    (tmp_path / "app.service.d" / "override.conf").write_text(
        "[Service]\nExecStart=\nExecStart=/srv/app --port 80\n"
    )
    (finding,) = lint_paths([str(tmp_path)]).findings
    assert (finding.rule, Path(finding.file).name, finding.line) == ("UR111", "override.conf", 3)


# -- fuzzing ------------------------------------------------------------------------------------
_KEYS = [
    "User",
    "Group",
    "DynamicUser",
    "AmbientCapabilities",
    "CapabilityBoundingSet",
    "NoNewPrivileges",
    "ExecStart",
    "Type",
    "LimitNOFILE",
    "PrivateUsers",
    "PrivateNetwork",
    "NetworkNamespacePath",
    "RestrictAddressFamilies",
    "SocketBindAllow",
    "SocketBindDeny",
    "SecureBits",
    "PermissionsStartOnly",
    "IPAddressDeny",
    "ProtectKernelTunables",
    "SupplementaryGroups",
    "Sockets",
]
_VALUES = [
    "",
    "~",
    "yes",
    "no",
    "self",
    "root",
    "www",
    "0",
    "CAP_NET_BIND_SERVICE",
    "~CAP_NET_BIND_SERVICE CAP_CHOWN",
    "cap_sys_admin 21 99",
    "/usr/bin/app --port 80",
    "+/usr/bin/app --listen :53",
    "!!/bin/sh -c 'exec app -p 443'",
    "oneshot",
    "1024:524288",
    "infinity",
    "AF_INET AF_INET6",
    "~AF_INET",
    "none",
    "ipv4:tcp:80",
    "ipv6:udp:1-1023",
    "any",
    "tcp:0",
    "udp:",
    "noroot keep-caps bogus",
    '"unbalanced',
    "\\",
]
_LINE = st.one_of(
    st.tuples(st.sampled_from(_KEYS), st.sampled_from(_VALUES)).map(lambda kv: f"{kv[0]}={kv[1]}"),
    st.sampled_from(["[Service]", "[Unit]", "[Socket]", "ListenStream=80", "# c", "garbage"]),
    st.text(max_size=30),
)
_FILE = st.lists(_LINE, max_size=12).map(lambda lines: "[Service]\n" + "\n".join(lines) + "\n")
_DROPIN_PATH = st.tuples(
    st.sampled_from(
        ["app.service.d", "app@.service.d", "ap-.service.d", "service.d", "app.socket.d"]
    ),
    st.sampled_from(["override.conf", "10-a.conf", "50-b.conf"]),
).map("/".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    unit=_FILE,
    socket=st.one_of(st.none(), _FILE),
    dropins=st.dictionaries(_DROPIN_PATH, _FILE, max_size=5),
    name=st.sampled_from(["app.service", "app@i.service", "ap-p.service"]),
)
def test_merge_never_raises(
    unit: str, socket: str | None, dropins: dict[str, str], name: str
) -> None:
    files = {name: unit, **dropins}
    if socket is not None:
        files["app.socket"] = socket
    for parsed in parse_systemd_units(files):
        assert isinstance(parsed, ParsedFile)
        assert not any("internal error" in m for _, m in parsed.problems), parsed.problems
    result = lint_texts([(p, "systemd", t) for p, t in files.items()], read=files.get)
    assert not [f for f in result.findings if "internal error" in f.message]
