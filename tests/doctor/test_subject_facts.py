"""The pure parts the subject builders stand on: inspect output, account files, in-root paths,
and bad compose input (no engine needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from unroot.doctor.identity import Evidence, resolve_user
from unroot.doctor.sources import compose_subject, rootless_ref, unit_subject
from unroot.doctor.subject import RootlessRef
from unroot.engine.inspect import PortBinding, parse_container, parse_image
from unroot.errors import ParseError, UsageError
from unroot.facts.accounts import Accounts, parse_group, parse_passwd, read_accounts
from unroot.facts.rootfs import resolve_in_root

#: Trimmed from ``podman container inspect`` (Podman 4.3.1, rootless): CapAdd/CapDrop relative
#: to Docker's defaults, the entrypoint as one string, BoundingCaps/EffectiveCaps of its own.
PODMAN = {
    "Id": "477b",
    "Name": "web",
    "ImageName": "localhost/unroot-base:bookworm",
    "State": {"Running": True, "Pid": 18992},
    "Config": {
        "User": "1001:1001",
        "Entrypoint": "/usr/bin/tini --",
        "Cmd": ["httpd", "-f"],
        "Env": ["PATH=/bin", "PATH=/usr/bin:/bin"],
        "WorkingDir": "/",
    },
    "HostConfig": {
        "CapAdd": [],
        "CapDrop": ["CAP_AUDIT_WRITE", "CAP_MKNOD", "CAP_NET_RAW"],
        "SecurityOpt": ["no-new-privileges:false"],
        "NetworkMode": "slirp4netns",
        "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8081"}]},
    },
    "Mounts": [{"Type": "bind", "Source": "/srv/x", "Destination": "/data", "RW": False}],
    "BoundingCaps": ["CAP_CHOWN", "CAP_NET_BIND_SERVICE"],
    "EffectiveCaps": ["CAP_NET_BIND_SERVICE"],
}


def test_podman_inspect() -> None:
    facts = parse_container(PODMAN)
    assert facts.pid == 18992
    assert facts.entrypoint == ("/usr/bin/tini", "--")
    assert facts.cmd == ("httpd", "-f")
    assert facts.env_value("PATH") == "/usr/bin:/bin"
    assert not facts.no_new_privileges
    assert not facts.host_network
    assert facts.bindings == (PortBinding(80, "tcp", 8081, ""),)
    assert facts.bounding_caps == ("CAP_CHOWN", "CAP_NET_BIND_SERVICE")
    assert facts.mounts[0].rw is False


@pytest.mark.parametrize(
    ("options", "on"),
    [
        (["no-new-privileges"], True),
        (["no-new-privileges:true"], True),
        (["no-new-privileges=true"], True),
        (["no-new-privileges:false"], False),
        (["seccomp=unconfined"], False),
    ],
)
def test_no_new_privileges_spellings(options: list[str], on: bool) -> None:
    data = {**PODMAN, "HostConfig": {"SecurityOpt": options}, "State": {"Running": False}}
    facts = parse_container(data)
    assert facts.no_new_privileges is on
    assert facts.pid is None


PASSWD = "root:x:0:0::/root:/bin/sh\nwww:x:2300:2300::/:/sbin/nologin\nbroken\n+nis\n"
GROUP = "root:x:0:\nwww:x:2300:\ncerts:x:2400:www,other\nssl:x:2500:www\n"


@pytest.mark.parametrize(
    ("text", "extra", "expected"),
    [
        ("www", (), (2300, 2300, (2400, 2500), "www")),
        ("2300", (), (2300, 2300, (2400, 2500), "www")),
        ("www:certs", ("77", "ssl"), (2300, 2400, (2500, 77), "www")),
        ("4242", (), (4242, 0, (), None)),  # no entry: gid 0 (GetExecUser)
        ("4242:4243", (), (4242, 4243, (), None)),
        ("", (), (0, 0, (), "root")),
    ],
)
def test_resolve_user(text: str, extra: tuple[str, ...], expected: tuple[object, ...]) -> None:
    accounts = Accounts(parse_passwd(PASSWD), parse_group(GROUP), "c:/etc")
    who = resolve_user(text, accounts, extra, Evidence(), where="test")
    assert who is not None
    assert (who.uid, who.gid, who.groups, who.name) == expected


def test_unresolvable_names_say_why() -> None:
    ev = Evidence()
    assert resolve_user("nobody", Accounts(where="c:/etc", found=False), (), ev, where="t") is None
    assert ev.lines == ["t: user 'nobody' is a name and c:/etc/passwd is not readable"]


def test_paths_resolve_inside_the_root(tmp_path: Path) -> None:
    """An absolute symlink inside the root points into the root, never to the host's files."""
    (tmp_path / "usr" / "bin").mkdir(parents=True)
    (tmp_path / "etc").mkdir()
    (tmp_path / "usr" / "bin" / "dash").write_text("")
    (tmp_path / "bin").symlink_to("usr/bin")
    (tmp_path / "usr" / "bin" / "sh").symlink_to("/bin/dash")
    (tmp_path / "etc" / "passwd").symlink_to("/../../../../etc/shadow-of-the-root")
    (tmp_path / "etc" / "group").write_text(GROUP)
    assert resolve_in_root(str(tmp_path), "/bin/sh") == "/usr/bin/dash"
    assert resolve_in_root(str(tmp_path), "../../usr/../bin/sh") == "/usr/bin/dash"
    with pytest.raises(FileNotFoundError):  # ".." after a symlink is its target's parent
        resolve_in_root(str(tmp_path), "/bin/../usr/bin/sh")  # /usr/usr/bin/sh
    with pytest.raises(FileNotFoundError):
        resolve_in_root(str(tmp_path), "/etc/passwd")  # /etc/shadow-of-the-root in the root
    accounts = read_accounts(str(tmp_path), shown="c:/etc")
    assert accounts.users == ()
    assert accounts.group("certs") is not None
    (tmp_path / "loop").symlink_to("loop")
    with pytest.raises(OSError, match="Too many levels"):
        resolve_in_root(str(tmp_path), "/loop")


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        ("services: [unclosed\n", ParseError, "YAML syntax error"),
        ("services:\n  web:\n    image: x\n    user: www\n", UsageError, "runs as 'www', a name"),
        ("version: '3'\n", ParseError, "not a compose file"),
    ],
)
def test_bad_compose_files(tmp_path: Path, text: str, error: type[Exception], message: str) -> None:
    path = tmp_path / "compose.yaml"
    path.write_text(text)
    with pytest.raises(error, match=message):
        compose_subject(str(path), "web" if "web" in text else None)


def test_missing_compose_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="No such file"):
        compose_subject(str(tmp_path / "compose.yaml"), "web")


_FIELDS = st.sampled_from(
    [
        "User",
        "Entrypoint",
        "Cmd",
        "Env",
        "ExposedPorts",
        "WorkingDir",
        "CapAdd",
        "CapDrop",
        "SecurityOpt",
        "NetworkMode",
        "Sysctls",
        "GroupAdd",
        "PortBindings",
        "HostPort",
        "Running",
        "Pid",
        "Type",
        "Source",
        "RW",
        "Data",
        "UpperDir",
        "LowerDir",
        "Name",
        "80/tcp",
    ]
) | st.text(max_size=6)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_FIELDS, inner, max_size=5),
    max_leaves=16,
)
_KEYS = ("Name", "Config", "HostConfig", "State", "Mounts", "BoundingCaps", "GraphDriver")


@given(st.dictionaries(st.sampled_from(_KEYS), _JSON, max_size=7))
def test_inspect_parsers_never_crash(data: dict[str, object]) -> None:
    """Whatever an engine prints (or a newer engine's shape), parsing gives facts, not a crash."""
    parse_container(data)
    parse_image(data, "x")


def test_rootless_ref(tmp_path: Path) -> None:
    (tmp_path / "passwd").write_text("rl:x:1001:1001::/home/rl:/bin/sh\n")
    assert rootless_ref("rl", "podman", str(tmp_path)) == RootlessRef("rl", 1001, "podman")
    assert rootless_ref("1001", "docker", str(tmp_path)) == RootlessRef("rl", 1001, "docker")
    with pytest.raises(UsageError, match="--rootless nobody: no such user"):
        rootless_ref("nobody", "docker", str(tmp_path))


def test_a_directory_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="is a directory"):
        unit_subject(str(tmp_path))
    with pytest.raises(UsageError, match="is a directory"):
        compose_subject(str(tmp_path))


def test_subids_missing_for_the_owner(tmp_path: Path) -> None:
    (tmp_path / "passwd").write_text("rl:x:1001:1001::/home/rl:/bin/sh\n")
    (tmp_path / "subuid").write_text("other:100000:65536\n")
    (tmp_path / "subgid").write_text("")
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: x\n    user: '10'\n")
    with pytest.raises(UsageError, match="rl has no subordinate ids in"):
        compose_subject(
            str(tmp_path / "compose.yaml"),
            rootless=RootlessRef("rl", 1001, "docker"),
            etc=str(tmp_path),
        )


def test_compose_service_without_user_or_image(tmp_path: Path) -> None:
    path = tmp_path / "compose.yaml"
    path.write_text("services:\n  web:\n    build: .\n")
    with pytest.raises(UsageError, match="sets no user: and its image is not in the engine's"):
        compose_subject(str(path))
