"""Whatever the bytes, the parsers return a ParsedFile: never an exception, never a bad Location."""

from __future__ import annotations

import os
from collections.abc import Callable

from _parser_fixtures import FIXTURES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unroot.sources._shared import INTERNAL_ERROR
from unroot.sources.compose.parser import parse_compose
from unroot.sources.k8s import parse_k8s
from unroot.sources.parsed import Location, ParsedFile
from unroot.sources.systemd import parse_socket_unit, parse_systemd
from unroot.sources.yamlsupport import YMap, YNode, YSeq, load_yaml

#: UNROOT_FUZZ_EXAMPLES=5000 for a long run
FUZZ = settings(
    max_examples=int(os.environ.get("UNROOT_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# token tables read better packed
# fmt: off
YAML_TOKENS = [
    "services:", "  web:", "    ", "  ", "\n", "- ", ": ", ":", "&a ", "*a", "&b ", "*b",
    "<<: ", "<<: [*a, *b]", "{", "}", "[", "]", ", ", "'", '"', "!", "!Ref ", "!!python/object ",
    "!!binary ", "# unroot: ignore=UR104", "# unroot: ignore-file=", "#", "---\n", "...\n",
    "${", "$$", "$X", "${A:-1}", "}", "80:80", '"127.0.0.1:80:80/udp"', "8000-9000:80", "ports:",
    "expose:", "user: ", "0:0", "root", "network_mode: host", "service:web", "cap_add: [ALL]",
    "security_opt: [no-new-privileges]", "volumes:", "/etc/letsencrypt:/etc:ro", "./x:/y",
    "ulimits: {nofile: -1}", "command: ", "sh -c 'echo", "build:", "context: ..", "kind: Pod",
    "kind: List", "items:", "apiVersion: v1", "spec:", "template:", "containers:", "- name: c",
    "initContainers:", "securityContext:", "runAsUser: 0", "allowPrivilegeEscalation: false",
    "capabilities: {add: [NET_BIND_SERVICE]}", "hostNetwork: true", "containerPort: 53",
    "hostPort: ", "protocol: UDP", "volumeMounts:", "hostPath: {path: /}", "jobTemplate:", "\t",
    "%YAML 1.1\n", "? ", "|\n", ">-\n", "~", "null", "0x1F", "1e9", "yes", "é", "\u2028", "\x00",
    "\ufeff", "\r\n", "-1", "65536", "''", "\\",
]
UNIT_TOKENS = [
    "[Service]", "[Socket]", "[Unit]", "\n", "=", "User=", "Group=", "DynamicUser=yes",
    "AmbientCapabilities=", "CapabilityBoundingSet=", "~", "CAP_NET_BIND_SERVICE", "NET_RAW",
    " ", "\\\n", "# c\n", "; c\n", "NoNewPrivileges=", "ProtectKernelTunables=yes",
    "SystemCallFilter=@system-service", "LimitNOFILE=", "infinity", "1024:", "ExecStart=",
    "+", "!", "!!", "@", "-", ":", '"', "'", "\\x4", "\\0", "Sockets=", "ListenStream=",
    "ListenDatagram=", "[::]:443", "0.0.0.0:80", "80", "/run/x.sock", "Accept=yes",
    "Service=", "SocketProtocol=sctp", "# unroot: ignore=UR104", "x", "0", "é", "\x00",
]
# fmt: on

yaml_text = st.lists(st.sampled_from(YAML_TOKENS), max_size=80).map("".join)
unit_text = st.lists(st.sampled_from(UNIT_TOKENS), max_size=80).map("".join)


def _fixtures(pattern: str) -> list[str]:
    return [path.read_text() for path in sorted(FIXTURES.rglob(pattern))]


YAML_FIXTURES = _fixtures("*.y*ml")
UNIT_FIXTURES = _fixtures("*.service") + _fixtures("*.socket")


@st.composite
def mutated(draw: st.DrawFn, sources: list[str], tokens: list[str]) -> str:
    """A valid file with a few edits: cut, insert, duplicate or swap lines, re-indent."""
    text = draw(st.sampled_from(sources))
    for _ in range(draw(st.integers(1, 6))):
        lines = text.split("\n")
        choice = draw(st.integers(0, 5))
        at = draw(st.integers(0, max(len(lines) - 1, 0)))
        if choice == 0 and text:
            start = draw(st.integers(0, len(text) - 1))
            text = text[:start] + text[start + draw(st.integers(1, 40)) :]
            continue
        if choice == 1:
            start = draw(st.integers(0, len(text)))
            text = text[:start] + draw(st.sampled_from(tokens)) + text[start:]
            continue
        if choice == 2:
            lines.insert(at, lines[at] if lines else "")
        elif choice == 3 and len(lines) > 1:
            other = draw(st.integers(0, len(lines) - 1))
            lines[at], lines[other] = lines[other], lines[at]
        elif choice == 4 and lines:
            lines[at] = " " * draw(st.integers(0, 7)) + lines[at].lstrip()
        elif lines:
            del lines[at]
        text = "\n".join(lines)
    return text


def check(parsed: ParsedFile, text: str, path: str, kind: str) -> None:
    assert isinstance(parsed, ParsedFile)
    assert parsed.path == path
    assert parsed.kind == kind
    last_line = 2 + sum(text.count(brk) for brk in "\n\r\x85\u2028\u2029\x0b\x0c\x1c\x1d\x1e")
    locations: list[Location] = [loc for loc, _ in parsed.problems]
    for workload in parsed.workloads:
        locations.append(workload.location)
        locations.extend(p.location for p in workload.ports if p.location)
        locations.extend(m.location for m in workload.mounts if m.location)
        locations.extend(loc for _, loc in workload.field_locations)
        if workload.user and workload.user.location:
            locations.append(workload.user.location)
    for location in locations:
        assert location.line >= 1
        assert location.column >= 1
        if location.file == path:
            assert location.line <= last_line, (location, text)
    for _, message in parsed.problems:
        assert INTERNAL_ERROR not in message, message
        assert "\n" not in message


YAML_PARSERS: list[tuple[Callable[[str, str], ParsedFile], str]] = [
    (parse_compose, "compose"),
    (parse_k8s, "k8s"),
]


@FUZZ
@given(yaml_text)
def test_yaml_token_soup(text: str) -> None:
    for parse, kind in YAML_PARSERS:
        check(parse(text, "fuzz.yaml"), text, "fuzz.yaml", kind)


@FUZZ
@given(st.text(max_size=300))
def test_arbitrary_text(text: str) -> None:
    for parse, kind in YAML_PARSERS:
        check(parse(text, "fuzz.yaml"), text, "fuzz.yaml", kind)
    check(parse_systemd(text, "fuzz.service"), text, "fuzz.service", "systemd")


@FUZZ
@given(mutated(YAML_FIXTURES, YAML_TOKENS))
def test_mutated_manifests(text: str) -> None:
    for parse, kind in YAML_PARSERS:
        check(parse(text, "fuzz.yaml"), text, "fuzz.yaml", kind)


@FUZZ
@given(st.one_of(unit_text, mutated(UNIT_FIXTURES, UNIT_TOKENS)))
def test_units(text: str) -> None:
    socket = parse_socket_unit(text, "fuzz.socket")
    check(parse_systemd(text, "fuzz.service", [socket]), text, "fuzz.service", "systemd")
    check(parse_systemd(text, "fuzz.socket"), text, "fuzz.socket", "systemd")


def _depth(node: YNode | None, seen: set[int]) -> int:
    if node is None or id(node) in seen:
        return 0
    seen.add(id(node))
    if isinstance(node, YMap):
        return 1 + max((_depth(value, seen) for _, value in node.entries()), default=0)
    if isinstance(node, YSeq):
        return 1 + max((_depth(item, seen) for item in node), default=0)
    return 1


@FUZZ
@given(yaml_text)
def test_loader_trees_are_finite_and_positioned(text: str) -> None:
    loaded = load_yaml(text, "f.yaml")
    for document in loaded.documents:
        assert _depth(document.root, set()) <= 200
        if document.root is not None:
            assert document.root.line >= 1


def test_pathological_inputs() -> None:
    laughs = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(20)
    )
    cases = [
        laughs,
        "[" * 5000,
        "- " * 3000 + "x",
        "a: &a\n  b: *a\n",
        "services:\n  s: &s\n    <<: *s\n",
        "x: !!python/object/apply:os.system ['true']\n",
        "\x00\x01\x02",
        "services:\n  s:\n    ports: ['1-65535:1-65535']\n",
    ]
    for text in cases:
        for parse, kind in YAML_PARSERS:
            check(parse(text, "p.yaml"), text, "p.yaml", kind)
