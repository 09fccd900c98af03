"""The libyaml reader and the ruamel one read YAML alike: same documents, trees (kind, text,
line, column, tag, key order, shared aliases) and problems — on every YAML fixture and example,
on the benchmark corpus and on generated documents — except where a test below shows why not.

The differences, each tested here:

* an empty value (``key:`` with nothing after it): libyaml places the null right after the
  indicator, ruamel at the next token (or after the colon when a comment follows); the
  comparison leaves the position of empty scalars out.  No finding points at an empty value
  (``./dev golden check`` is unchanged);
* tabs as separation space, NEL/LS/PS (U+0085, U+2028, U+2029) as line breaks and a BOM at
  the start of a line: libyaml reads them as go-yaml (compose, kubectl) does, ruamel refused
  some tabs or counted those breaks otherwise;
* malformed tags (``!./x``, ``!a:!``, ``!!!x``: libyaml reads a tag, which is reported as
  unsupported; ruamel gave a syntax error) and a top-level block scalar followed by ``---`` or a
  column-0 ``#`` (libyaml ends the scalar there, as YAML 1.2 says); ``...`` twice in a row
  (YAML 1.2 allows it; ruamel gave a syntax error); a quoted key right before ``:`` in a flow
  sequence (``["a":b]``, YAML 1.2's JSON-like keys: libyaml reads ``[{a: b}]``, ruamel gave a
  syntax error).

Everything libyaml does not answer exactly as ruamel (syntax errors, undefined aliases,
``%YAML``/``%TAG``, non-scalar keys, nesting beyond ``MAX_DEPTH``, lone surrogates) is read again
by ruamel: those cases are checked to give ruamel's very problems.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
import time
from pathlib import Path

import pytest
from _parser_fixtures import FIXTURES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_yaml_fuzz import YAML_FIXTURES, YAML_TOKENS, mutated, yaml_text

from unroot.sources import yamlsupport
from unroot.sources.compose.parser import TAGS
from unroot.sources.yamlsupport import (
    LIBYAML,
    YamlLoad,
    YMap,
    YNode,
    YScalar,
    YSeq,
    _load_libyaml,
    load_yaml,
)

pytestmark = pytest.mark.skipif(not LIBYAML, reason="PyYAML without libyaml: ruamel reads all")

ROOT = Path(__file__).resolve().parents[2]
#: UNROOT_FUZZ_EXAMPLES=5000 for a long run (as tests/lint/test_yaml_fuzz.py)
DIFFERENTIAL = settings(
    max_examples=int(os.environ.get("UNROOT_FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


def tree(node: YNode, seen: dict[int, int]) -> object:
    """A node as plain data; a node met again (an alias) by its number; empty scalars without
    their position (see the module docstring)."""
    if id(node) in seen:
        return ("alias", seen[id(node)])
    seen[id(node)] = len(seen)
    empty = isinstance(node, YScalar) and node.text == ""
    head = (type(node).__name__, node.kind, None if empty else (node.line, node.column))
    head += (node.file, node.tag)
    if isinstance(node, YScalar):
        return (*head, node.text)
    if isinstance(node, YSeq):
        return (*head, [tree(item, seen) for item in node])
    assert isinstance(node, YMap)
    return (*head, [(tree(k, seen), tree(v, seen)) for k, v in node.entries()])


def reading(loaded: YamlLoad) -> object:
    documents = []
    for document in loaded.documents:
        root = document.root
        empty = isinstance(root, YScalar) and root.text == ""
        shape = None if root is None else tree(root, {})
        documents.append((document.index, None if empty else document.line, shape))
    return documents, loaded.problems


def both(text: str, tags: frozenset[str] = frozenset()) -> tuple[object, object]:
    fast = reading(load_yaml(text, "f.yaml", tags, loader="libyaml"))
    return fast, reading(load_yaml(text, "f.yaml", tags, loader="ruamel"))


#: Where the readers may differ (the module docstring; each has its test below).
_DIVERGENT = re.compile(
    r"[\t\x85\u2028\u2029]|.\ufeff"  # tabs, YAML 1.1 breaks, a BOM after the start
    r"|![^\s!]*[^\s!\w/-]|![^\s!]+!|!!!"  # malformed tags: odd characters, a second "!"
    r"|(?:^|\n)(?:---)?[ ]*[|>]"  # a top-level block scalar
    r"|(?:^|\n)\.\.\.[^\n]*\n(?:[ ]*(?:#[^\n]*)?\n)*\.\.\."  # "..." again
    r"""|["']:[^\s]""",  # a JSON-like key: "a":b
    re.S,
)


def assert_alike(text: str, tags: frozenset[str] = frozenset()) -> None:
    fast, slow = both(text, tags)
    if fast != slow:
        assert _DIVERGENT.search(text), (text, fast, slow)


# -- the resolver ---------------------------------------------------------------------------------
def test_the_resolver_table_is_ruamels_for_yaml_1_2() -> None:
    from ruamel.yaml.resolver import implicit_resolvers

    theirs = [
        (tag.rsplit(":", 1)[1], list(first), regexp.pattern)
        for versions, tag, regexp, first in implicit_resolvers
        if (1, 2) in versions and not tag.endswith(":yaml")  # "yaml": documentation only
    ]
    assert theirs == yamlsupport._RESOLVERS_1_2


PLAIN = {
    "on": "str", "yes": "str", "y": "str", "off": "str",  # YAML 1.1 booleans: strings in 1.2
    "true": "bool", "False": "bool", "TRUE": "bool",
    "0777": "int", "0o17": "int", "0x1F": "int", "-5": "int", "1_000": "int",
    "1:20": "str", "22:22": "str", "80:80/udp": "str",  # sexagesimal: 1.1 only
    "1e9": "float", "1.5": "float", ".inf": "float", "-.Inf": "float", ".nan": "float",
    "~": "null", "null": "null", "Null": "null", "": "null",
    "2001-01-01": "str", "<<": "str", "=": "str", "nulls": "str", "0x": "str",
}  # fmt: skip


@pytest.mark.parametrize(("value", "kind"), PLAIN.items())
def test_plain_scalars_resolve_as_yaml_1_2_and_as_ruamel(value: str, kind: str) -> None:
    for text in (f"k: {value}\n", f"k: ! {value}\n", f"- {value}\n"):
        fast, slow = both(text)
        assert fast == slow, text
        loaded = load_yaml(text, "f.yaml")
        root = loaded.documents[0].root
        node = root.get("k") if isinstance(root, YMap) else root.items[0]  # type: ignore[union-attr]
        assert isinstance(node, YScalar)
        assert node.kind == kind, text
    quoted = load_yaml(f"k: '{value}'\n", "f.yaml").documents[0].root
    assert isinstance(quoted, YMap)
    assert quoted.get("k").kind == "str"  # type: ignore[union-attr]


# -- files ----------------------------------------------------------------------------------------
def _yaml_files() -> list[Path]:
    return sorted(
        path
        for base in (FIXTURES, ROOT / "examples")
        for path in base.rglob("*")
        if path.suffix in (".yaml", ".yml") and path.is_file()
    )


@pytest.mark.parametrize("path", _yaml_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_yaml_fixture_and_example_reads_alike(path: Path) -> None:
    fast, slow = both(path.read_text(encoding="utf-8"), TAGS)
    assert fast == slow


def test_the_benchmark_corpus_reads_alike(tmp_path: Path) -> None:
    name = "unroot_bench_corpus"
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / "corpus.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    corpus = module.generate(tmp_path / "corpus", 1, 0.2)
    paths = corpus.files["compose"] + corpus.files["k8s"]
    assert len(paths) >= 150
    for path in paths:
        fast, slow = both((corpus.root / path).read_text(encoding="utf-8"), TAGS)
        assert fast == slow, path


# -- generated documents --------------------------------------------------------------------------
@DIFFERENTIAL
@given(yaml_text)
def test_token_soup_reads_alike(text: str) -> None:
    assert_alike(text, TAGS)


@DIFFERENTIAL
@given(mutated(YAML_FIXTURES, YAML_TOKENS))
def test_mutated_manifests_read_alike(text: str) -> None:
    assert_alike(text, TAGS)


@DIFFERENTIAL
@given(st.text(max_size=200))
def test_arbitrary_text_reads_alike(text: str) -> None:
    assert_alike(text)


@st.composite
def documents(draw: st.DrawFn) -> str:
    """Block and flow YAML with anchors, aliases, merges, tags and scalars of every kind."""
    words = st.sampled_from([*PLAIN, "web", "'q'", '"d\\n"', "!!str 5", "!reset x", "!Ref y"])
    anchors: list[str] = []

    def node(depth: int, indent: int) -> str:
        choice = draw(st.integers(0, 5 if depth < 4 else 1))
        prefix = ""
        if draw(st.booleans()) and draw(st.booleans()):
            name = draw(st.sampled_from("abc"))
            anchors.append(name)
            prefix = f"&{name} "
        if choice == 0 and anchors:
            return f"*{draw(st.sampled_from(anchors))}"
        if choice <= 1:
            return prefix + draw(words)
        pad = " " * (indent + 2)
        count = draw(st.integers(1, 3))
        if choice == 2:
            items = [node(depth + 1, indent + 2) for _ in range(count)]
            return prefix + "[" + ", ".join(items) + "]"
        if choice == 3:
            items = [f"{pad}- {node(depth + 1, indent + 4)}" for _ in range(count)]
            return prefix.rstrip() + "\n" + "\n".join(items)
        keys = [draw(st.sampled_from(["k", "x", "<<", "1", "on"])) for _ in range(count)]
        items = [f"{pad}{key}: {node(depth + 1, indent + 2)}" for key in keys]
        return prefix.rstrip() + "\n" + "\n".join(items)

    body = node(0, -2)
    return body if draw(st.booleans()) else "---\n" + body + "\n---\nz: *a\n"


@DIFFERENTIAL
@given(documents())
def test_generated_documents_read_alike(text: str) -> None:
    fast, slow = both(text, TAGS)
    assert fast == slow


# -- the documented differences -------------------------------------------------------------------
def _root(text: str, loader: yamlsupport.Loader) -> YNode | None:
    loaded = load_yaml(text, "f.yaml", loader=loader)
    return loaded.documents[0].root if loaded.documents else None


def test_an_empty_value_is_placed_after_its_colon() -> None:
    text = "c:\nd: 1\n"
    fast, slow = _root(text, "libyaml"), _root(text, "ruamel")
    assert isinstance(fast, YMap)
    assert isinstance(slow, YMap)
    assert (fast.get("c").line, fast.get("c").column) == (1, 3)  # type: ignore[union-attr]
    assert (slow.get("c").line, slow.get("c").column) == (2, 1)  # type: ignore[union-attr]


def test_tabs_as_separation_are_read_as_go_yaml_reads_them() -> None:
    text = "a:\tb\nc: [x,\ty]\n"
    fast = _root(text, "libyaml")
    assert isinstance(fast, YMap)
    assert fast.get_str("a") == "b"
    assert [item.text for item in fast.get_seq("c")] == ["x", "y"]  # type: ignore[attr-defined,union-attr]
    slow = load_yaml(text, "f.yaml", loader="ruamel")
    assert "syntax error" in slow.problems[0][1]


def test_unicode_line_separators_break_lines_as_in_yaml_1_1_and_go_yaml() -> None:
    fast = _root("a: 1\u2028b: 2\n", "libyaml")
    assert isinstance(fast, YMap)
    assert fast.key_node("b").line == 2  # type: ignore[union-attr]


def test_a_document_marker_ends_a_top_level_block_scalar() -> None:
    loaded = load_yaml(">-\n---\nx\n", "f.yaml")
    assert [d.root.text for d in loaded.documents] == ["", "x"]  # type: ignore[union-attr]


def test_a_yaml_1_2_directive_is_read_by_libyaml_itself() -> None:
    text = "%YAML 1.2\n---\na: on\nb: 0777\n...\n%YAML 1.2\n---\nc: 1\n"
    assert _load_libyaml(text, "f.yaml", frozenset()) is not None
    fast, slow = both(text)
    assert fast == slow


def test_a_json_like_key_in_a_flow_sequence_is_a_single_pair() -> None:
    root = _root('p: ["a":b]\n', "libyaml")
    assert isinstance(root, YMap)
    pair = root.get_seq("p").items[0]  # type: ignore[union-attr]
    assert isinstance(pair, YMap)
    assert pair.get_str("a") == "b"
    assert "syntax error" in load_yaml('p: ["a":b]\n', "f.yaml", loader="ruamel").problems[0][1]


def test_document_end_markers_may_repeat() -> None:
    text = "a: 1\n...\n...\n---\nb: 2\n"
    assert len(load_yaml(text, "f.yaml").documents) == 2
    assert "syntax error" in load_yaml(text, "f.yaml", loader="ruamel").problems[0][1]


# -- what ruamel answers --------------------------------------------------------------------------
FALLBACK = {
    "syntax error": "a: [1\nb: 2\n",
    "undefined alias": "a: *nowhere\n",
    "YAML 1.1 directive": "%YAML 1.1\n---\na: yes\nb: 0777\n",
    "TAG directive": "%TAG !e! tag:example.com,2000:\n---\na: !e!x 1\n",
    "a key that is a list": "? [a]\n: !Foo x\nb: 1\n",
    "too deep": "".join(" " * i + "k:\n" for i in range(120)),
    "a lone surrogate": "a: \udc80\n",
    "a NUL": "a: b\x00\n",
    "unclosed quote after a document": "a: 1\n---\nb: 'x\n",
}


@pytest.mark.parametrize("text", FALLBACK.values(), ids=FALLBACK.keys())
def test_what_libyaml_does_not_answer_alike_is_ruamels_answer(text: str) -> None:
    assert _load_libyaml(text, "f.yaml", frozenset()) is None
    fast = load_yaml(text, "f.yaml")
    slow = load_yaml(text, "f.yaml", loader="ruamel")
    assert reading(fast) == reading(slow)


def test_libyaml_answers_anchors_merges_and_problems_itself() -> None:
    text = (
        "base: &b {user: '1000', cap_add: [NET_ADMIN]}\n"
        "a: &a 1\n"
        "a2: &a 2\n"  # an anchor defined again: YAML 1.2 allows it
        "svc:\n  <<: [*b, {image: x}]\n  user: root\n  ref: *a\n"
        "self: &s\n  me: *s\n"  # recursive
        "m:\n  <<: 3\n"  # a merge of a scalar
        "d: 1\nd: 2\n"  # duplicate
        "t: !Ref x\nr: !reset []\n"
    )
    loaded = _load_libyaml(text, "f.yaml", TAGS)
    assert loaded is not None
    assert reading(loaded) == reading(load_yaml(text, "f.yaml", TAGS, loader="ruamel"))
    root = loaded.documents[0].root
    assert isinstance(root, YMap)
    svc = root.get_map("svc")
    assert svc is not None
    assert svc.keys() == ["user", "ref", "cap_add", "image"]
    assert svc.get_str("user") == "root"
    assert svc.get_str("ref") == "2"
    assert root.get("r").tag == "!reset"  # type: ignore[union-attr]
    messages = [message for _, message in loaded.problems]
    assert [m.split(" (")[0].split(";")[0] for m in messages] == [
        "YAML: recursive alias",
        "YAML: a merge key",
        "YAML: duplicate key 'd'",
        "YAML: unsupported tag '!Ref'",
    ]


def test_the_ruamel_loader_is_the_default_without_libyaml(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yamlsupport, "LIBYAML", False)
    called: list[str] = []
    monkeypatch.setattr(yamlsupport, "_load_libyaml", lambda *args: called.append("x"))
    assert load_yaml("a: 1\n", "f.yaml").documents
    assert called == []


# -- bad input: never a traceback, never a hang ---------------------------------------------------
BAD = {
    "every byte": bytes(range(256)).decode("latin-1"),
    "undecodable bytes": b"a: \xff\xfe\x80\n".decode("utf-8", errors="surrogateescape"),
    "lone surrogates": "a: \ud800\udfff\ud800\n",
    "NUL bytes": "a: 1\x00\x00\nb: 2\n",
    "BOM": "\ufeffa: 1\n",
    "BOM twice": "\ufeff\ufeffa: 1\n---\n\ufeffb: 2\n",
    "CRLF": "a: 1\r\nb:\r\n  - x\r\n",
    "1 MB single line": "a: " + "x" * 1_000_000,
    "1 MB flow line": "[" + "1, " * 330_000 + "]",
    "deep block nesting": "- " * 50_000 + "x",
    "deep mapping nesting": "".join(" " * i + "k:\n" for i in range(2000)),
    "deep flow nesting": "[" * 50_000 + "]" * 50_000,
    "flow nesting under the limit": "[" * 250 + "]" * 250,
    "billion laughs": "a: &a [x, x, x, x, x, x, x, x, x]\n"
    + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}]\n" for i in range(20)
    ),
}


@pytest.mark.parametrize("text", BAD.values(), ids=BAD.keys())
def test_bad_input_is_a_problem_never_a_traceback_or_a_hang(text: str) -> None:
    start = time.perf_counter()
    loaded = load_yaml(text, "bad.yaml")
    assert time.perf_counter() - start < 60
    for location, message in loaded.problems:
        assert location.line >= 1
        assert location.column >= 1
        assert "\n" not in message
