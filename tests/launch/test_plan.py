"""The launch plan (pure): listen specs, {fd} substitution, identities, options — tables and
properties. Nothing here binds, forks or reads the system's databases."""

from __future__ import annotations

import ipaddress
import signal
from typing import ClassVar

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from unroot.errors import ParseError, UnrootError, UsageError
from unroot.launch.drop import check_status
from unroot.launch.plan import (
    FDNAME_MAX,
    Accounts,
    Invoker,
    LaunchPlan,
    ListenSpec,
    UserEntry,
    _ipv6,
    listen_environment,
    make_plan,
    parse_listen_spec,
    parse_nofile,
    parse_signal,
    substitute_env,
    substitute_fds,
)

# -- listen specs --------------------------------------------------------------------------------
GOOD_SPECS = [
    # text, transport, host, port, family, address
    ("80", "tcp", None, 80, "any", ":80"),
    (":80", "tcp", None, 80, "any", ":80"),
    ("tcp://:80", "tcp", None, 80, "any", ":80"),
    ("0", "tcp", None, 0, "any", ":0"),
    ("127.0.0.1:80", "tcp", "127.0.0.1", 80, "inet", "127.0.0.1:80"),
    ("0.0.0.0:443", "tcp", "0.0.0.0", 443, "inet", "0.0.0.0:443"),
    ("[::]:443", "tcp", "::", 443, "inet6", "[::]:443"),
    ("[::1]:8443", "tcp", "::1", 8443, "inet6", "[::1]:8443"),
    ("tcp://[::1]:65535", "tcp", "::1", 65535, "inet6", "[::1]:65535"),
    ("udp://127.0.0.1:53", "udp", "127.0.0.1", 53, "inet", "udp://127.0.0.1:53"),
    ("udp://:53", "udp", None, 53, "any", "udp://:53"),
    ("udp://[::1]:53", "udp", "::1", 53, "inet6", "udp://[::1]:53"),
    ("[::ffff:127.0.0.1]:80", "tcp", "::ffff:127.0.0.1", 80, "inet6", "[::ffff:127.0.0.1]:80"),
    ("[fe80::1%lo]:80", "tcp", "fe80::1%lo", 80, "inet6", "[fe80::1%lo]:80"),
    ("[1:2:3:4:5:6:7:8]:1", "tcp", "1:2:3:4:5:6:7:8", 1, "inet6", "[1:2:3:4:5:6:7:8]:1"),
    ("unix:/run/app.sock", "unix", None, 0, "unix", "unix:/run/app.sock"),
    ("unix:@app", "unix", None, 0, "unix", "unix:@app"),
]


@pytest.mark.parametrize(("text", "transport", "host", "port", "family", "address"), GOOD_SPECS)
def test_good_specs(  # noqa: PLR0917 - one parameter per table column
    text: str, transport: str, host: str | None, port: int, family: str, address: str
) -> None:
    spec = parse_listen_spec(text)
    assert (spec.transport, spec.host, spec.port, spec.family, spec.address) == (
        transport,
        host,
        port,
        family,
        address,
    )
    assert spec.name is None
    assert spec.text == text


def test_names_and_options() -> None:
    spec = parse_listen_spec("web=127.0.0.1:80,backlog=16")
    assert (spec.name, spec.backlog, spec.v6only) == ("web", 16, None)
    assert parse_listen_spec("[::]:443,v6only=0").v6only is False
    assert parse_listen_spec("[::]:443").v6only is True  # explicit, whatever bindv6only says
    assert parse_listen_spec("[::1]:443").v6only is True
    assert parse_listen_spec("[::ffff:127.0.0.1]:443").v6only is False
    assert parse_listen_spec(":443").v6only is None  # dual-stack, decided at bind time
    assert parse_listen_spec(":443,v6only=1").family == "inet6"  # every address, IPv6 only
    assert parse_listen_spec(":443,v6only=1").address == "[::]:443"
    unix = parse_listen_spec("api=unix:/run/app.sock,mode=0660,owner=www:adm,backlog=5")
    assert (unix.name, unix.path, unix.mode, unix.owner, unix.group, unix.backlog) == (
        "api",
        "/run/app.sock",
        0o660,
        "www",
        "adm",
        5,
    )
    assert parse_listen_spec("unix:/run/a.sock").mode == 0o666  # systemd's SocketMode=
    assert parse_listen_spec("unix:/run/a.sock,owner=www").group is None
    assert parse_listen_spec("unix:@abstract").mode is None
    assert parse_listen_spec("unix:/run/a=b.sock").path == "/run/a=b.sock"  # '=' after ':'
    assert parse_listen_spec("a name=:80").name == "a name"  # sd allows spaces
    assert parse_listen_spec(f"{'n' * FDNAME_MAX}=:80").name == "n" * FDNAME_MAX


BAD_SPECS = [
    ("", "empty"),
    ("http", "port"),
    ("localhost:80", "not an IP address"),
    ("example.org:443", "not an IP address"),
    ("127.0.0.1:65536", "above 65535"),
    ("127.0.0.1:", "port"),
    ("127.0.0.1:-1", "port"),
    ("127.0.0.1:0x50", "port"),
    ("127.0.0.01:80", "not an IP address"),
    ("256.0.0.1:80", "not an IP address"),
    ("1.2.3:80", "not an IP address"),
    ("::1:80", "brackets"),
    ("[::1]80", "[IPV6]:PORT"),
    ("[::1", "[IPV6]:PORT"),
    ("[127.0.0.1]:80", "not an IPv6"),
    ("[1::2::3]:80", "not an IPv6"),
    ("[12345::]:80", "not an IPv6"),
    ("[1:2:3:4:5:6:7:8:9]:80", "not an IPv6"),
    ("[fe80::1%]:80", "scope"),
    ("sctp://:80", "unknown scheme"),
    ("http://:80", "unknown scheme"),
    ("unix:", "absolute path"),
    ("unix:run/app.sock", "absolute path"),
    ("unix:@", "empty abstract"),
    ("unix:/" + "x" * 107, "at most 107 bytes"),
    ("unix:@app,mode=0600", "abstract socket"),
    ("unix:/a,mode=999", "octal"),
    ("unix:/a,mode=1777", "at most 0777"),
    ("unix:/a,mode=", "octal"),
    ("unix:/a,owner=", "USER or USER:GROUP"),
    ("unix:/a,owner=a:", "USER or USER:GROUP"),
    ("unix:/a,owner=a:b:c", "USER or USER:GROUP"),
    ("unix:/a,v6only=1", "unknown option"),
    (":80,mode=0600", "unknown option"),
    ("udp://:53,backlog=5", "unknown option"),
    (":80,backlog=5,backlog=6", "given twice"),
    (":80,backlog=-1", "backlog"),
    (":80,backlog=99999999999", "backlog"),
    (":80,backlog", "OPTION=VALUE"),
    (":80,", "OPTION=VALUE"),
    ("127.0.0.1:80,v6only=1", "IPv6 addresses only"),
    ("[::1]:80,v6only=0", "is IPv6-only"),
    ("[2001:db8::1]:80,v6only=0", "is IPv6-only"),
    ("[::ffff:127.0.0.1]:80,v6only=1", "needs v6only=0"),
    ("[::1.2.3.4.5]:80", "not an IPv6"),
    ("[1.2.3.4]:80", "not an IPv6"),
    ("[:1.2.3.4]:80", "not an IPv6"),
    ("[1:2:3:4:5:6:7:1.2.3.4]:80", "not an IPv6"),
    ("[::1]:80,v6only=yes", "0 or 1"),
    ("=:80", "empty name"),
    (f"{'n' * (FDNAME_MAX + 1)}=:80", "longer than"),
    ("wéb=:80", "printable ASCII"),
    ("tab\t=:80", "printable ASCII"),
    (":8\x000", "NUL"),
]


@pytest.mark.parametrize(("text", "fragment"), BAD_SPECS)
def test_bad_specs(text: str, fragment: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_listen_spec(text)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message


@given(st.text(max_size=40))
@example("[::1]:80")
@example("[::ffff:1.2.3.4]:1")
@example("unix:\udcff")
@example("unix:/\ud800")
@example("web=[fe80::1%eth0]:443,v6only=0,backlog=1")
def test_fuzz_spec_parser(text: str) -> None:
    """Any string is a ListenSpec or a ParseError — never another exception."""
    try:
        spec = parse_listen_spec(text)
    except ParseError:
        return
    assert isinstance(spec, ListenSpec)
    assert spec.transport in ("tcp", "udp", "unix")
    assert 0 <= spec.port <= 65535


_ALPHABET = st.sampled_from([*list("0123456789abcdef:.[]%,=@/ltcpudx"), "unix:", "://"])


@given(st.lists(_ALPHABET, max_size=20).map("".join))
def test_fuzz_spec_parser_near_misses(text: str) -> None:
    """Strings made of the grammar's own pieces: still a spec or a ParseError; and every IP
    literal accepted is one the standard library accepts too."""
    try:
        spec = parse_listen_spec(text)
    except ParseError:
        return
    if spec.host is not None:
        ipaddress.ip_address(spec.host.partition("%")[0])


@given(
    st.one_of(
        st.ip_addresses(v=4).map(lambda a: (str(a), f"{a}")),
        st.ip_addresses(v=6).map(lambda a: (str(a), f"[{a}]")),
        st.ip_addresses(v=6).map(lambda a: (a.exploded, f"[{a.exploded}]")),
    ),
    st.integers(0, 65535),
)
def test_every_ip_literal_parses(host: tuple[str, str], port: int) -> None:
    address, written = host
    spec = parse_listen_spec(f"{written}:{port}")
    assert (spec.host, spec.port) == (address, port)
    assert spec.family == ("inet6" if ":" in address else "inet")


@given(st.ip_addresses(v=6))
def test_ipv6_groups_agree_with_ipaddress(address: ipaddress.IPv6Address) -> None:
    expected = [int(group, 16) for group in address.exploded.split(":")]
    for text in {str(address), address.exploded, address.compressed}:
        assert _ipv6(text, "test") == expected
    if address.ipv4_mapped is not None:
        assert _ipv6(f"::ffff:{address.ipv4_mapped}", "test") == expected


def test_specs_are_frozen_values() -> None:
    spec = parse_listen_spec("web=:80")
    with pytest.raises(AttributeError):
        spec.port = 81  # type: ignore[misc]
    assert spec == parse_listen_spec("web=:80")
    assert hash(spec) == hash(parse_listen_spec("web=:80"))
    assert spec.replace(port=81).port == 81
    assert "port=80" in repr(spec)
    with pytest.raises(TypeError):
        spec.replace(nonsense=1)


# -- {fd} substitution ---------------------------------------------------------------------------
SUBSTITUTIONS = [
    (["srv", "--fd", "{fd}"], [None], ["srv", "--fd", "3"]),
    (["srv", "--bind", "fd://{fd}"], [None], ["srv", "--bind", "fd://3"]),
    (["srv", "{fd:https}", "{fd:http}"], ["http", "https"], ["srv", "4", "3"]),
    (["srv", "fd@{fd:b},fd@{fd:a}"], ["a", "b"], ["srv", "fd@4,fd@3"]),
    (["srv", "{{fd}}"], [None], ["srv", "{fd}"]),
    (["srv", "{{{fd}}}"], [None], ["srv", "{3}"]),
    (["docker", "--format", "{{.Names}}"], [], ["docker", "--format", "{{.Names}}"]),
    (["echo", "{", "}", "{x}"], [], ["echo", "{", "}", "{x}"]),
    (["sh", "-c", "echo {fd} {{"], [None], ["sh", "-c", "echo 3 {"]),
]


@pytest.mark.parametrize(("template", "names", "argv"), SUBSTITUTIONS)
def test_substitution(template: list[str], names: list[str | None], argv: list[str]) -> None:
    assert substitute_fds(template, names) == tuple(argv)


@pytest.mark.parametrize(
    ("template", "names", "fragment"),
    [
        (["srv", "{fd}"], [], "no --listen"),
        (["srv", "{fd}"], ["a", "b"], "{fd:web}"),
        (["srv", "{fd:c}"], ["a", "b"], "no --listen is named 'c' (names: a, b)"),
        (["srv", "{fd:a}"], ["a", "a"], "ambiguous"),
        (["srv", "{fd:a"], ["a"], "unclosed"),
    ],
)
def test_substitution_errors(template: list[str], names: list[str | None], fragment: str) -> None:
    with pytest.raises(UsageError, match=None) as info:
        substitute_fds(template, names)
    assert fragment in str(info.value)


@given(st.lists(st.text(max_size=12), max_size=5), st.lists(st.none() | st.text(max_size=4)))
def test_words_without_fd_pass_through(template: list[str], names: list[str | None]) -> None:
    plain = [w for w in template if "{fd}" not in w and "{fd:" not in w]
    assert substitute_fds(plain, names) == tuple(plain)


@pytest.mark.parametrize(("template", "names", "argv"), SUBSTITUTIONS)
def test_env_values_substitute_like_words(
    template: list[str], names: list[str | None], argv: list[str]
) -> None:
    """-E values follow the command's rules, word for value."""
    env = [(f"V{i}", word) for i, word in enumerate(template)]
    assert substitute_env(env, names) == tuple((f"V{i}", w) for i, w in enumerate(argv))


@pytest.mark.parametrize(
    ("value", "names", "expected"),
    [
        ("{fd:http};{fd:https};", ["http", "https"], "3;4;"),
        ("{fd:b};{fd:a};", ["a", "b"], "4;3;"),
        ("{fd};", ["web"], "3;"),
        ("{{fd}};", [None], "{fd};"),
    ],
)
def test_env_nginx_values(value: str, names: list[str | None], expected: str) -> None:
    assert substitute_env([("NGINX", value)], names) == (("NGINX", expected),)


@pytest.mark.parametrize(
    ("value", "names", "message"),
    [
        ("{fd};", [], "-E NGINX uses {fd}, but there is no --listen"),
        (
            "{fd};",
            ["a", "b"],
            "-E NGINX uses {fd}, but there are 2 sockets: name them (-l web=:80) and write "
            "{fd:web}",
        ),
        ("{fd:c};", ["a", "b"], "{fd:c}: no --listen is named 'c' (names: a, b)"),
        ("{fd:a};", ["a", "a"], "{fd:a} is ambiguous: 2 sockets are named 'a'"),
        ("{fd:a;", ["a"], "unclosed {fd:NAME} in -E 'NGINX={fd:a;'"),
    ],
)
def test_env_substitution_errors(value: str, names: list[str | None], message: str) -> None:
    with pytest.raises(UsageError) as info:
        substitute_env([("NGINX", value)], names)
    assert str(info.value) == message


@given(
    st.lists(st.tuples(st.text(min_size=1, max_size=5), st.text(max_size=12)), max_size=5),
    st.lists(st.none() | st.text(max_size=4)),
)
def test_env_values_without_fd_pass_through(
    env: list[tuple[str, str]], names: list[str | None]
) -> None:
    plain = [(k, v) for k, v in env if "{fd}" not in v and "{fd:" not in v]
    assert substitute_env(plain, names) == tuple(plain)


# -- identities and options ----------------------------------------------------------------------
class TableAccounts(Accounts):
    USERS = (
        UserEntry("root", 0, 0, "/root"),
        UserEntry("nobody", 65534, 65534, "/nonexistent"),
        UserEntry("www", 33, 33, "/var/www"),
        UserEntry("blog", 2200, 2200, "/home/blog"),
    )
    GROUPS: ClassVar[dict[str, int]] = {
        "root": 0,
        "www-data": 33,
        "nogroup": 65534,
        "blog": 2200,
        "ssl-cert": 110,
    }
    MEMBERS: ClassVar[dict[str, tuple[int, ...]]] = {"blog": (110,), "www": (110, 2200)}

    def user_by_name(self, name: str) -> UserEntry | None:
        return next((u for u in self.USERS if u.name == name), None)

    def user_by_uid(self, uid: int) -> UserEntry | None:
        return next((u for u in self.USERS if u.uid == uid), None)

    def group_by_name(self, name: str) -> int | None:
        return self.GROUPS.get(name)

    def grouplist(self, user: str, gid: int) -> tuple[int, ...]:
        return (gid, *self.MEMBERS.get(user, ()))


ROOT = Invoker(0, 0, [0])
DB = TableAccounts()


def plan(*command: str, invoker: Invoker = ROOT, **options: object) -> LaunchPlan:
    return make_plan(accounts=DB, invoker=invoker, command=command or ("srv",), **options)  # type: ignore[arg-type]


def test_user_groups_from_the_database() -> None:
    p = plan(user="blog", listen=["http=:80", "https=:443"])
    assert (p.uid, p.gid, p.groups) == (2200, 2200, (110, 2200))
    assert (p.user_name, p.home, p.set_identity_env) == ("blog", "/home/blog", True)
    assert p.no_new_privs
    assert p.keep_cap_mask == 0
    assert p.nofile is None
    assert p.fd_names() == ("http", "https")


def test_group_overrides_the_primary_gid() -> None:
    p = plan(user="www", group="nogroup")
    assert (p.gid, p.groups) == (65534, (110, 2200, 65534))  # initgroups(user, gid)


def test_groups_and_no_groups() -> None:
    assert plan(user="www", groups="ssl-cert,33").groups == (33, 110)
    assert plan(user="www", no_groups=True).groups == ()
    with pytest.raises(UsageError, match="exclude each other"):
        plan(user="www", groups="33", no_groups=True)
    with pytest.raises(UsageError, match="unknown group 'nope'"):
        plan(user="www", groups="33,nope")
    with pytest.raises(UsageError, match="G1,G2"):
        plan(user="www", groups="33,")


def test_numeric_user_without_entry_needs_group() -> None:
    with pytest.raises(UsageError, match="pass --group"):
        plan(user="4242")
    p = plan(user="4242", group="2200")
    assert (p.uid, p.gid, p.groups, p.user_name, p.set_identity_env) == (
        4242,
        2200,
        (2200,),
        None,
        True,
    )
    # No passwd entry: no name to give, and root's HOME, USER and LOGNAME must not pass on.
    assert p.environment({"HOME": "/root", "USER": "root", "LOGNAME": "root", "A": "1"}) == {
        "HOME": "/",
        "A": "1",
    }
    assert plan(user="65534").user_name == "nobody"


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"user": "nosuch"}, "unknown user 'nosuch'"),
        ({"user": ""}, "unknown user ''"),
        ({"user": "www", "group": "nosuch"}, "unknown group 'nosuch'"),
        ({"user": "root"}, "refusing to run the service as root"),
        ({"user": "0"}, "refusing to run the service as root"),
        ({}, "pass --user USER"),
        ({"user": "www", "keep_caps": ["cap_nonsense"]}, "unknown capability"),
        ({"user": "www", "nofile": "lots"}, "SOFT or SOFT:HARD"),
        ({"user": "www", "nofile": "10:5"}, "above the hard limit"),
        ({"user": "www", "nofile": "4", "listen": [":80", ":81"]}, "needs fds 0..4"),
        ({"user": "www", "env": ["NOEQUALS"]}, "NAME=VALUE"),
        ({"user": "www", "env": ["=x"]}, "NAME=VALUE"),
        ({"user": "www", "env": ["LISTEN_FDS=3"]}, "sets LISTEN_FDS itself"),
        ({"user": "www", "listen": [":80", "80"]}, "repeats"),
        ({"user": "www", "restart": "always"}, "--restart needs --supervise"),
        ({"user": "www", "ready": "tcp"}, "--ready needs --supervise"),
        ({"user": "www", "ready_timeout": "5"}, "--ready-timeout needs --supervise"),
        ({"user": "www", "reload_signal": "USR1"}, "--reload-signal needs --supervise"),
        ({"user": "www", "stop_signal": "QUIT"}, "--stop-signal needs --supervise"),
        ({"user": "www", "stop_timeout": "3"}, "--stop-timeout needs --supervise"),
        ({"user": "www", "supervise": True, "reload_signal": "TERM"}, "TERM, INT and QUIT stop"),
        ({"user": "www", "supervise": True, "reload_signal": "KILL"}, "one of HUP, USR1"),
        ({"user": "www", "supervise": True, "reload_signal": "SIGNOPE"}, "not a signal name"),
        ({"user": "www", "supervise": True, "stop_signal": "SIG_IGN"}, "not a signal name"),
        ({"user": "www", "supervise": True, "stop_signal": "0"}, "not a signal name"),
        ({"user": "www", "supervise": True, "stop_signal": "65"}, "not a signal name"),
        ({"user": "www", "supervise": True, "stop_signal": "NSIG"}, "not a signal name"),
        ({"user": "www", "supervise": True, "stop_timeout": "0"}, "0 < SECONDS"),
        ({"user": "www", "supervise": True, "stop_timeout": "nan"}, "0 < SECONDS"),
        ({"user": "www", "supervise": True, "stop_timeout": "later"}, "expected seconds"),
        ({"user": "www", "supervise": True, "restart": "sometimes"}, "--restart"),
        ({"user": "www", "supervise": True, "ready": "http"}, "--ready"),
        ({"user": "www", "supervise": True, "ready_timeout": "soon"}, "seconds"),
        ({"user": "www", "supervise": True, "ready_timeout": "-1"}, "0 < SECONDS"),
        ({"user": "www", "supervise": True, "ready_timeout": "inf"}, "0 < SECONDS"),
        ({"user": "www", "supervise": True, "ready_timeout": "nan"}, "0 < SECONDS"),
        (
            {"user": "www", "supervise": True, "ready": "tcp", "listen": ["udp://:53"]},
            "stream socket",
        ),
        ({"user": "www", "listen": ["unix:/a,owner=nosuch"]}, "unknown user"),
    ],
)
def test_refusals(options: dict[str, object], fragment: str) -> None:
    with pytest.raises(UsageError) as info:
        plan(**options)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_no_command() -> None:
    with pytest.raises(UsageError, match="no command"):
        make_plan(accounts=DB, invoker=ROOT, command=[], user="www")


def test_root_only_with_allow_root() -> None:
    p = plan(allow_root=True)
    assert (p.uid, p.gid, p.groups, p.allow_root) == (0, 0, (0,), True)
    assert plan(user="root", allow_root=True).uid == 0


def test_non_root_invoker_keeps_itself() -> None:
    me = Invoker(1000, 1000, [1000, 27])
    p = plan(invoker=me)
    assert (p.uid, p.gid, p.groups, p.set_identity_env) == (1000, 1000, (27, 1000), False)
    assert plan(invoker=me, no_groups=True).groups == ()


def test_keep_caps_nofile_env_supervise() -> None:
    p = plan(user="www", keep_caps=["net_bind_service", "CAP_NET_RAW,cap_chown"], nofile="4096")
    assert p.keep_cap_mask == (1 << 10) | (1 << 13) | (1 << 0)
    assert p.keep_caps.names() == ["cap_chown", "cap_net_bind_service", "cap_net_raw"]
    assert p.nofile == (4096, 4096)
    assert parse_nofile("1024:65536") == (1024, 65536)
    p = plan(user="www", allow_new_privs=True, env_clear=True, env=["A=1", "B=x=y", "A=2"])
    assert not p.no_new_privs
    assert p.environment({"PATH": "/bin"}) == {
        "USER": "www",
        "LOGNAME": "www",
        "HOME": "/var/www",
        "SHELL": "/bin/sh",
        "A": "2",
        "B": "x=y",
    }
    defaults = plan(user="www", supervise=True, listen=[":80"])
    assert (defaults.restart, defaults.ready, defaults.ready_timeout) == ("on-failure", "tcp", 30)
    udp = plan(user="www", supervise=True, listen=["udp://:53"])
    assert udp.ready == "none"
    chosen = plan(
        user="www",
        supervise=True,
        restart="always",
        ready="notify",
        ready_timeout="2.5",
        listen=[":80"],
    )
    assert (chosen.restart, chosen.ready, chosen.ready_timeout) == ("always", "notify", 2.5)
    assert (defaults.reload_signal, defaults.stop_signal, defaults.stop_timeout) == (1, 15, 10)
    signals = plan(
        user="www",
        supervise=True,
        reload_signal="usr2",
        stop_signal="SIGQUIT",
        stop_timeout="0.5",
        listen=[":80"],
    )
    assert (signals.reload_signal, signals.stop_signal, signals.stop_timeout) == (
        signal.SIGUSR2,
        signal.SIGQUIT,
        0.5,
    )


@pytest.mark.parametrize("sig", list(signal.Signals))
def test_every_signal_name_and_number_parses(sig: signal.Signals) -> None:
    assert parse_signal(sig.name) == sig
    assert parse_signal(sig.name.removeprefix("SIG").lower()) == sig
    assert parse_signal(str(int(sig))) == sig


def test_environment_drops_stale_listen_vars() -> None:
    p = plan(user="www", env=["X=1"])
    base = {"PATH": "/usr/bin", "LISTEN_FDS": "9", "LISTEN_PID": "1", "LISTEN_FDNAMES": "x"}
    env = p.environment(base)
    assert "LISTEN_FDS" not in env
    assert env["PATH"] == "/usr/bin"
    assert env["X"] == "1"
    assert env["HOME"] == "/var/www"


def test_unix_owner_resolution() -> None:
    p = plan(user="www", listen=["unix:/run/a.sock,owner=blog", "unix:/run/b.sock,owner=www:0"])
    assert (p.listens[0].owner_uid, p.listens[0].owner_gid) == (2200, 2200)
    assert (p.listens[1].owner_uid, p.listens[1].owner_gid) == (33, 0)


def test_listen_environment() -> None:
    specs = [parse_listen_spec(t) for t in (":80", "udp://:53")]
    assert listen_environment(specs, 42) == {
        "LISTEN_FDS": "2",
        "LISTEN_PID": "42",
        "LISTEN_FDNAMES": "unknown:unknown",
    }
    named = [parse_listen_spec(t) for t in ("web=:80", ":81")]
    assert listen_environment(named, 7)["LISTEN_FDNAMES"] == "web:unknown"
    assert listen_environment([], 7) == {}


def test_argv_is_substituted() -> None:
    p = plan("/jakeblog", "--fd", "{fd:http}", user="blog", listen=["http=:80", "https=:443"])
    assert p.argv == ("/jakeblog", "--fd", "3")
    assert p.command == ("/jakeblog", "--fd", "{fd:http}")


def test_env_is_substituted() -> None:
    env = ["NGINX={fd:http};{fd:https};", "GOFMT={{.Names}}", "X={fd:https}"]
    p = plan("nginx", user="blog", listen=["http=:80", "https=:443"], env=env)
    assert p.env_set == (("NGINX", "3;4;"), ("GOFMT", "{{.Names}}"), ("X", "4"))
    assert p.environment({})["NGINX"] == "3;4;"
    with pytest.raises(UsageError, match="-E NGINX uses"):
        plan("nginx", user="blog", listen=["http=:80", "https=:443"], env=["NGINX={fd};"])


def test_plan_errors_are_unroot_errors() -> None:
    """Everything make_plan refuses is a UsageError: one line, exit code 2."""
    with pytest.raises(UnrootError) as info:
        plan(user="www", listen=["nonsense"])
    assert info.value.exit_code == 2


# -- the verification of the drop ---------------------------------------------------------------
STATUS = """Name:\tsleep
Uid:\t65534\t65534\t65534\t65534
Gid:\t65534\t65534\t65534\t65534
Groups:\t65534\t
CapInh:\t0000000000000000
CapPrm:\t0000000000000000
CapEff:\t0000000000000000
CapBnd:\t0000000000000000
CapAmb:\t0000000000000000
NoNewPrivs:\t1
"""


def test_check_status_exact() -> None:
    p = plan(user="nobody")
    assert check_status(p, STATUS) == []
    kept = plan(user="nobody", keep_caps=["net_bind_service"])
    problems = check_status(kept, STATUS)
    assert len(problems) == 5
    assert all("expected 0000000000000400" in x for x in problems)
    assert check_status(kept, STATUS.replace("0000000000000000", "0000000000000400")) == []


@pytest.mark.parametrize(
    ("old", "new", "fragment"),
    [
        ("Uid:\t65534\t65534\t65534\t65534", "Uid:\t65534\t65534\t0\t65534", "Uid is"),
        ("Gid:\t65534\t65534\t65534\t65534", "Gid:\t0\t65534\t65534\t65534", "Gid is"),
        ("Groups:\t65534\t", "Groups:\t0 65534", "Groups are [0, 65534]"),
        ("CapBnd:\t0000000000000000", "CapBnd:\t000001ffffffffff", "CapBnd is"),
        ("CapEff:\t0000000000000000", "CapEff:\t0000000000000400", "CapEff is"),
        ("NoNewPrivs:\t1", "NoNewPrivs:\t0", "NoNewPrivs is 0"),
        ("CapPrm:\t0000000000000000\n", "", "CapPrm missing"),
    ],
)
def test_check_status_catches(old: str, new: str, fragment: str) -> None:
    problems = check_status(plan(user="nobody"), STATUS.replace(old, new))
    assert any(fragment in problem for problem in problems), problems


def test_check_status_without_bounding_cut() -> None:
    """A non-root invoker without CAP_SETPCAP cannot cut the bounding set: not checked then."""
    status = STATUS.replace("CapBnd:\t0000000000000000", "CapBnd:\t000001ffffffffff")
    assert check_status(plan(user="nobody"), status, bounding_cut=False) == []


# -- root by another name ------------------------------------------------------------------------
class RootGroupAccounts(TableAccounts):
    USERS = (*TableAccounts.USERS, UserEntry("operator", 11, 0, "/root", "/sbin/nologin"))
    MEMBERS: ClassVar[dict[str, tuple[int, ...]]] = {**TableAccounts.MEMBERS, "admin": (0,)}


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"user": "www", "group": "0"}, "gid 0 (root's group) from --group 0"),
        ({"user": "www", "group": "root"}, "gid 0 (root's group) from --group root"),
        ({"user": "www", "groups": "33,0"}, "group 0 (root's group) from --groups 33,0"),
        ({"user": "www", "groups": "root"}, "group 0 (root's group) from --groups root"),
        ({"user": "operator"}, "gid 0 (root's group) from the primary group of operator"),
        ({"user": "33", "group": "www-data", "groups": "0"}, "from --groups 0"),
    ],
)
def test_root_group_is_refused_like_uid_0(options: dict[str, object], fragment: str) -> None:
    accounts = RootGroupAccounts()
    with pytest.raises(UsageError) as info:
        make_plan(accounts=accounts, invoker=ROOT, command=["srv"], **options)  # type: ignore[arg-type]
    assert fragment in str(info.value)
    assert "--allow-root" in str(info.value)
    allowed = make_plan(
        accounts=accounts,
        invoker=ROOT,
        command=["srv"],
        allow_root=True,
        **options,  # type: ignore[arg-type]
    )
    assert 0 in (allowed.gid, *allowed.groups)


def test_a_user_in_roots_group_from_the_database_is_refused() -> None:
    class Admin(RootGroupAccounts):
        USERS = (*RootGroupAccounts.USERS, UserEntry("admin", 1000, 1000, "/home/admin"))

    with pytest.raises(UsageError, match="from admin's groups"):
        make_plan(accounts=Admin(), invoker=ROOT, command=["srv"], user="admin")
    kept = make_plan(accounts=Admin(), invoker=ROOT, command=["srv"], user="admin", no_groups=True)
    assert (kept.gid, kept.groups) == (1000, ())


@pytest.mark.parametrize(
    "cap",
    [
        "cap_setuid",
        "cap_setgid",
        "cap_sys_admin",
        "cap_sys_ptrace",
        "cap_sys_module",
        "cap_dac_override",
        "cap_dac_read_search",
        "cap_fowner",
        "cap_chown",
        "cap_setfcap",
        "cap_sys_rawio",
        "cap_bpf",
        "cap_mknod",
        "cap_sys_boot",
    ],
)
def test_keeping_a_root_equivalent_capability_warns(cap: str) -> None:
    p = plan(user="www", keep_caps=["net_bind_service", cap.upper()])
    assert len(p.warnings) == 1
    assert p.warnings[0].startswith(f"--keep-cap {cap} is root by another name")


def test_keeping_narrow_capabilities_is_quiet() -> None:
    assert plan(user="www", keep_caps=["net_bind_service", "net_raw", "setpcap"]).warnings == ()
    assert plan(user="www").warnings == ()


def test_session_variables_of_the_invoker_do_not_reach_the_service() -> None:
    root_shell = {
        "PATH": "/usr/bin:/bin",
        "HOME": "/root",
        "USER": "root",
        "LOGNAME": "root",
        "SHELL": "/bin/bash",
        "MAIL": "/var/mail/root",
        "SUDO_USER": "alice",
        "SUDO_UID": "1000",
        "SUDO_GID": "1000",
        "SUDO_COMMAND": "/usr/bin/unroot run -l :80 --user www -- srv --token s3cret",
        "XDG_RUNTIME_DIR": "/run/user/0",
        "SSH_AUTH_SOCK": "/tmp/ssh-XXXX/agent.1",
        "LANG": "C.UTF-8",
    }
    assert plan(user="www").environment(root_shell) == {
        "PATH": "/usr/bin:/bin",
        "HOME": "/var/www",
        "USER": "www",
        "LOGNAME": "www",
        "SHELL": "/bin/sh",
        "LANG": "C.UTF-8",
    }
    # -E still has the last word, and the same user keeps its own session.
    assert plan(user="www", env=["MAIL=/var/mail/www"]).environment(root_shell)["MAIL"] == (
        "/var/mail/www"
    )
    me = Invoker(1000, 1000, [1000])
    assert plan(invoker=me).environment(root_shell) == root_shell


class NamedGroups(TableAccounts):
    NAMES: ClassVar[dict[int, str]] = {6: "disk", 42: "shadow", 999: "docker", 110: "ssl-cert"}

    def group_name(self, gid: int) -> str | None:
        return self.NAMES.get(gid)


@pytest.mark.parametrize(
    ("groups", "named"), [("6", "disk"), ("42,110", "shadow"), ("999", "docker")]
)
def test_a_root_equivalent_group_warns(groups: str, named: str) -> None:
    p = make_plan(accounts=NamedGroups(), invoker=ROOT, command=["srv"], user="www", groups=groups)
    assert len(p.warnings) == 1
    assert p.warnings[0].startswith(f"group {named} (")
    assert "root by another name" in p.warnings[0]


def test_an_ordinary_group_and_the_invokers_own_groups_are_quiet() -> None:
    assert (
        make_plan(accounts=NamedGroups(), invoker=ROOT, command=["srv"], user="blog").warnings == ()
    )
    me = Invoker(1000, 6, [6])  # not root: the service keeps unroot's own identity, no change
    assert make_plan(accounts=NamedGroups(), invoker=me, command=["srv"]).warnings == ()


def test_xdg_homes_of_the_invoker_are_dropped() -> None:
    env = {"XDG_CONFIG_HOME": "/root/.config", "XDG_CACHE_HOME": "/root/.cache", "A": "1"}
    assert "XDG_CONFIG_HOME" not in plan(user="www").environment(env)
    assert "XDG_CACHE_HOME" not in plan(user="www").environment(env)
