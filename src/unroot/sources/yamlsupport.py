"""YAML for the compose and Kubernetes parsers: a typed node tree with a line and column on
every node.

Two readers build the same tree.  The default one (``LOADER = "libyaml"``) composes it from the
events of libyaml's C parser (PyYAML's ``yaml._yaml.CParser``), iteratively, resolving plain
scalars itself with the YAML 1.2 rules of ruamel.yaml's round-trip resolver (libyaml and PyYAML
resolve as YAML 1.1: ``on``, ``0777``, ``1:20``).  The other one (``"ruamel"``, the fallback
when PyYAML has no libyaml and the benchmark's baseline) walks ruamel.yaml's round-trip
*composer*.  Whatever the libyaml reader does not answer exactly as ruamel does — a syntax
error, an undefined alias, a ``%YAML``/``%TAG`` directive, a mapping key that is not a scalar,
nesting deeper than ``MAX_DEPTH``, text libyaml cannot take (lone surrogates) — is read again
by ruamel, so problems and their positions stay the same and no file becomes a syntax error
that ruamel read; tests/lint/test_yaml_loaders.py compares the two trees.

Only composers run, so no tag ever builds a Python object: ``!!python/object`` and
CloudFormation-style ``!Ref`` are read as plain data and reported as problems.  Anchors and
aliases resolve to the same node (an anchor may be defined again, as YAML 1.2 allows); merge
keys (``<<: *defaults``, ``<<: [*a, *b]``) are applied the way YAML 1.1's merge type says
(explicit keys win, earlier merged maps win over later ones) — compose files use them for
``x-`` fragments.  Duplicate keys, recursive aliases, syntax errors and too-deep nesting (more
than 100 levels; absurd ``[``/``{`` nesting is refused before scanning, as ruamel's scanner is
quadratic in it) become problems ``(Location, message)``; loading never raises.  Scalars keep
their text as written (``22:22`` stays a string, as YAML 1.2 and compose's go-yaml v3 read it).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from unroot.sources.parsed import Location

try:  # PyYAML with libyaml: the fast reader; without it, ruamel reads everything
    import yaml as _pyyaml  # type: ignore[import-untyped]  # no stubs: six classes are used
    from yaml._yaml import CParser as _CParser  # type: ignore[import-untyped]

    LIBYAML = bool(_pyyaml.__with_libyaml__)
except ImportError:  # pragma: no cover - PyYAML is a dependency; a wheel-less build may lack C
    LIBYAML = False

if TYPE_CHECKING:
    from ruamel.yaml.nodes import MappingNode, Node

Loader = Literal["libyaml", "ruamel"]
#: The reader ``load_yaml`` uses unless told: libyaml when PyYAML was built with it.
LOADER: Loader = "libyaml" if LIBYAML else "ruamel"

_TAG = "tag:yaml.org,2002:"
_MERGE = _TAG + "merge"
#: YAML's own types: everything else is an application tag we do not interpret.
_KNOWN_TAGS = frozenset(
    _TAG + name
    for name in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp", "binary")
)
_SCALAR_KINDS = {_TAG + k: k for k in ("str", "int", "float", "bool", "null")}
#: Deeper than any deployment file; keeps the recursive composer far from RecursionError.
MAX_DEPTH = 100
_MAX_FLOW_DEPTH = 300
_INTERPRETED = _KNOWN_TAGS | {_MERGE}
_STR, _SEQ, _MAP = _TAG + "str", _TAG + "seq", _TAG + "map"

# The implicit resolvers of ruamel.yaml's VersionedResolver for YAML 1.2 (its default), in its
# order, keyed by the first character as it looks them up: the libyaml reader resolves plain
# scalars exactly as the ruamel one does (tests/lint/test_yaml_loaders.py compares the tables).
# ``=`` resolving to the unknown ``value`` tag (so reported as unsupported) is ruamel's too.
# fmt: off
_RESOLVERS_1_2: list[tuple[str, list[str], str]] = [
    ("bool", list("tTfF"), r"^(?:true|True|TRUE|false|False|FALSE)$"),
    ("float", list("-+0123456789."), r"""^(?:
         [-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |[-+]?\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$"""),
    ("int", list("-+0123456789"), r"""^(?:[-+]?0b[0-1_]+
        |[-+]?0o?[0-7_]+
        |[-+]?[0-9_]+
        |[-+]?0x[0-9a-fA-F_]+)$"""),
    ("merge", list("<"), r"^(?:<<)$"),
    ("null", ["~", "n", "N", ""], r"""^(?: ~
        |null|Null|NULL
        | )$"""),
    ("timestamp", list("0123456789"), r"""^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]
        |[0-9][0-9][0-9][0-9] -[0-9][0-9]? -[0-9][0-9]?
        (?:[Tt]|[ \t]+)[0-9][0-9]?
        :[0-9][0-9] :[0-9][0-9] (?:\.[0-9]*)?
        (?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$"""),
    ("value", list("="), r"^(?:=)$"),
]
# fmt: on


def _first_char_table() -> dict[str, list[tuple[str, re.Pattern[str]]]]:
    table: dict[str, list[tuple[str, re.Pattern[str]]]] = {}
    for name, firsts, pattern in _RESOLVERS_1_2:
        compiled = re.compile(pattern, re.X)
        for char in firsts:
            table.setdefault(char, []).append((_TAG + name, compiled))
    return table


_PLAIN = _first_char_table()
_TRUE = frozenset({"true", "yes", "on", "y"})
_FALSE = frozenset({"false", "no", "off", "n"})


class YNode:
    """A node with its 1-based position (of the node's first character), the file it was read
    from (``""`` when built by hand) and its application tag (``!reset``; ``""`` for YAML's own)."""

    __slots__ = ("column", "file", "line", "tag")

    def __init__(self, line: int, column: int, *, file: str = "", tag: str = "") -> None:
        self.line = line
        self.column = column
        self.file = file
        self.tag = tag

    def location(self, path: str) -> Location:
        return Location(path, self.line, self.column)

    @property
    def kind(self) -> str:
        """``map``, ``seq`` or the scalar kind (``str``, ``int``, ``float``, ``bool``, ``null``)."""
        raise NotImplementedError


class YScalar(YNode):
    """A scalar: ``text`` as written (quotes removed), ``kind`` as YAML 1.2 resolves it."""

    __slots__ = ("_kind", "text")

    def __init__(
        self, text: str, kind: str, line: int, column: int, *, file: str = "", tag: str = ""
    ) -> None:
        self.line = line  # not super().__init__: a file has ~100,000 of these
        self.column = column
        self.file = file
        self.tag = tag
        self.text = text
        self._kind = kind

    @property
    def kind(self) -> str:
        return self._kind

    @property
    def is_null(self) -> bool:
        return self._kind == "null"

    def as_bool(self) -> bool | None:
        """true/false and the YAML 1.1 spellings (yes/no/on/off) go-yaml still accepts for bools."""
        low = self.text.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        return None

    def as_int(self) -> int | None:
        """A YAML integer (``80``, ``0x50``, ``0o17``, ``+5``), or None if not one."""
        text = self.text.strip().replace("_", "")
        try:
            return int(text, 0)
        except ValueError:
            pass
        try:
            return int(text, 10)  # "0080": int(…, 0) refuses leading zeros
        except ValueError:
            return None

    def __repr__(self) -> str:
        return f"YScalar({self.text!r}, {self._kind}, {self.line}:{self.column})"


class YSeq(YNode):
    __slots__ = ("items",)

    def __init__(self, line: int, column: int, *, file: str = "", tag: str = "") -> None:
        self.line = line
        self.column = column
        self.file = file
        self.tag = tag
        self.items: list[YNode] = []

    @property
    def kind(self) -> str:
        return "seq"

    def __iter__(self) -> Iterator[YNode]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


class YMap(YNode):
    """A mapping with string keys (scalar keys by their text), in the order written."""

    __slots__ = ("_entries",)

    def __init__(self, line: int, column: int, *, file: str = "", tag: str = "") -> None:
        self.line = line
        self.column = column
        self.file = file
        self.tag = tag
        self._entries: dict[str, tuple[YScalar, YNode]] = {}

    def copy(self) -> YMap:
        """A shallow copy (same position, file and entries) to change without touching this one."""
        twin = YMap(self.line, self.column, file=self.file)
        twin._entries = dict(self._entries)
        return twin

    def put(self, key: YScalar, value: YNode) -> None:
        """Set ``key`` (a new key goes last; an existing one keeps its place, takes this key)."""
        self._entries[key.text] = (key, value)

    def remove(self, key: str) -> None:
        self._entries.pop(key, None)

    @property
    def kind(self) -> str:
        return "map"

    def get(self, key: str) -> YNode | None:
        entry = self._entries.get(key)
        return entry[1] if entry else None

    def key_node(self, key: str) -> YScalar | None:
        """The key itself: its position is where a setting was written."""
        entry = self._entries.get(key)
        return entry[0] if entry else None

    def entries(self) -> Iterator[tuple[YScalar, YNode]]:
        return iter(self._entries.values())

    def keys(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    # typed look-ups: None when absent *or* of another shape (callers report the shape)
    def get_map(self, key: str) -> YMap | None:
        node = self.get(key)
        return node if isinstance(node, YMap) else None

    def get_seq(self, key: str) -> YSeq | None:
        node = self.get(key)
        return node if isinstance(node, YSeq) else None

    def get_scalar(self, key: str) -> YScalar | None:
        node = self.get(key)
        return node if isinstance(node, YScalar) and not node.is_null else None

    def get_str(self, key: str) -> str | None:
        node = self.get_scalar(key)
        return node.text if node is not None else None

    def get_bool(self, key: str) -> bool | None:
        node = self.get_scalar(key)
        return node.as_bool() if node is not None else None

    def get_int(self, key: str) -> int | None:
        node = self.get_scalar(key)
        return node.as_int() if node is not None else None


def is_absent(node: YNode | None) -> bool:
    """Not written, or written as null (``key:`` / ``key: ~``)."""
    return node is None or (isinstance(node, YScalar) and node.is_null)


def present(node: YNode | None) -> YNode | None:
    """``node``, or None when it is not written or written as null."""
    return None if is_absent(node) else node


def present_seq(
    node: YNode | None, what: str, problem: Callable[[YNode, str], None]
) -> YSeq | None:
    """The list ``node`` is; None when it is absent, or (reported to ``problem``) not a list."""
    node = present(node)
    if node is None:
        return None
    if not isinstance(node, YSeq):
        problem(node, f"{what}: expected a list, found {describe(node)}")
        return None
    return node


def describe(node: YNode | None) -> str:
    """``a mapping`` / ``a list`` / ``the string 'x'``: for problem messages."""
    if node is None:
        return "nothing"
    if isinstance(node, YMap):
        return "a mapping"
    if isinstance(node, YSeq):
        return "a list"
    assert isinstance(node, YScalar)
    if node.is_null:
        return "null"
    shown = node.text if len(node.text) <= 40 else node.text[:37] + "..."
    return f"the {node.kind} {shown!r}"


@dataclass(frozen=True, slots=True)
class YamlDocument:
    """One document of a stream; ``root`` is None for an empty document."""

    index: int
    root: YNode | None
    line: int


@dataclass(slots=True)
class YamlLoad:
    documents: list[YamlDocument] = field(default_factory=list)
    problems: list[tuple[Location, str]] = field(default_factory=list)


def load_yaml(
    text: str, path: str, tags: frozenset[str] = frozenset(), *, loader: Loader | None = None
) -> YamlLoad:
    """Every document of ``text`` as YNode trees, plus the problems met; never raises.

    Documents before a syntax error are kept; the error is one problem at its position.
    ``tags``: application tags the caller interprets (compose's ``!reset``, ``!override``):
    kept in ``YNode.tag`` and not reported.  Every node's ``file`` is ``path``.  ``loader``:
    the reader (default ``LOADER``); ``"libyaml"`` without libyaml reads with ruamel.
    """
    if _flow_depth(text) > _MAX_FLOW_DEPTH:
        result = YamlLoad()
        result.problems.append((Location(path), "YAML nesting too deep to read"))
        return result
    if (loader or LOADER) == "libyaml" and LIBYAML:
        fast = _load_libyaml(text, path, tags)
        if fast is not None:
            return fast
    return _load_ruamel(text, path, tags)


class _RuamelAnswers(Exception):
    """The libyaml reader meets what it does not answer exactly as ruamel: ruamel reads it."""


def _load_libyaml(text: str, path: str, tags: frozenset[str]) -> YamlLoad | None:
    """The documents composed from libyaml's events, or None where ruamel must answer."""
    try:
        parser = _CParser(text)
    except UnicodeError:  # lone surrogates: ruamel names the character and its position
        return None
    try:
        return _EventComposer(path, tags).load(parser.get_event)
    except (_RuamelAnswers, _pyyaml.YAMLError):
        return None
    finally:
        parser.dispose()


class _Open:
    """A sequence or mapping whose end event has not come yet."""

    __slots__ = ("explicit", "is_map", "key", "merged", "node", "tag")

    def __init__(self, node: YSeq | YMap, tag: str) -> None:
        self.node = node
        self.is_map = isinstance(node, YMap)
        self.tag = tag
        self.key: tuple[YScalar, str] | None = None  # a mapping's key waiting for its value
        self.explicit: dict[str, tuple[YScalar, YNode]] = {}
        self.merged: list[YMap] = []


class _EventComposer:
    """YNodes straight from libyaml's events, with an explicit stack (no recursion), the same
    tree and problems (in the same order) as ``_Builder`` makes from ruamel's composer."""

    def __init__(self, path: str, tags: frozenset[str]) -> None:
        self.path = path
        self.tags = tags
        self.problems: list[tuple[Location, str]] = []

    def problem(self, node: YNode, message: str) -> None:
        self.problems.append((Location(self.path, node.line, node.column), message))

    def load(self, next_event: Callable[[], Any]) -> YamlLoad:
        result = YamlLoad(problems=self.problems)
        next_event()  # stream start
        while True:
            event = next_event()
            if type(event) is _pyyaml.StreamEndEvent:
                return result
            if event.version not in (None, (1, 2)) or event.tags:
                raise _RuamelAnswers("a %YAML or %TAG directive")  # ruamel switches resolvers
            root = self.document(next_event)
            next_event()  # document end
            result.documents.append(YamlDocument(len(result.documents), root, root.line))

    def document(self, next_event: Callable[[], Any]) -> YNode:
        path, tags, problems = self.path, self.tags, self.problems
        anchors: dict[str, tuple[YNode, str]] = {}
        open_ids: set[int] = set()  # collections not ended yet: an alias to one is recursive
        reported: set[str] = set()
        stack: list[_Open] = []
        plain: dict[str, str] = {}  # plain scalar → its tag: keys and values repeat a lot
        scalar_event = _pyyaml.ScalarEvent
        alias_event = _pyyaml.AliasEvent
        map_start = _pyyaml.MappingStartEvent
        while True:
            event = next_event()
            kind = type(event)
            node: YNode
            if kind is alias_event:
                target = anchors.get(event.anchor)
                if target is None:
                    raise _RuamelAnswers("undefined alias")  # ruamel's error and position
                node, tag = target
                if id(node) in open_ids:
                    problems.append(
                        (
                            Location(path, node.line, node.column),
                            "YAML: recursive alias (an anchor used inside itself); read as null",
                        )
                    )
                    node = YScalar("", "null", node.line, node.column, file=path)
            elif kind is scalar_event or kind is map_start or kind is _pyyaml.SequenceStartEvent:
                if len(stack) >= MAX_DEPTH:
                    raise _RuamelAnswers("too deep")  # ruamel's message and position
                mark = event.start_mark
                line, column = mark.line + 1, mark.column + 1
                tag = event.tag
                if kind is scalar_event:
                    if tag == "!" or (tag is None and event.implicit[0]):  # ruamel: ``!`` too
                        value = event.value  # (libyaml: not for an empty ``!``)
                        known = plain.get(value)
                        if known is None:
                            known = plain[value] = _resolve_plain(value)
                        tag = known
                    elif tag is None:
                        tag = _STR
                elif tag is None or tag == "!":
                    tag = _MAP if kind is map_start else _SEQ
                if (
                    tag is not _STR  # the common case first
                    and tag not in _INTERPRETED
                    and tag not in tags
                    and tag not in reported
                ):
                    reported.add(tag)
                    problems.append(
                        (
                            Location(path, line, column),
                            f"YAML: unsupported tag {tag!r}; its value is read as plain data",
                        )
                    )
                own_tag = tag if tag in tags else ""
                if kind is scalar_event:
                    node = YScalar(
                        event.value,
                        _SCALAR_KINDS.get(tag, "str"),
                        line,
                        column,
                        file=path,
                        tag=own_tag,
                    )
                    if event.anchor is not None:
                        anchors[event.anchor] = (node, tag)
                else:
                    collection: YSeq | YMap
                    if kind is map_start:
                        collection = YMap(line, column, file=path, tag=own_tag)
                    else:
                        collection = YSeq(line, column, file=path, tag=own_tag)
                    if event.anchor is not None:
                        anchors[event.anchor] = (collection, tag)
                        open_ids.add(id(collection))
                    stack.append(_Open(collection, tag))
                    continue
            else:  # the end of a sequence or a mapping
                done = stack.pop()
                node, tag = done.node, done.tag
                open_ids.discard(id(node))
                if done.is_map:
                    entries = done.explicit
                    for source in done.merged:  # earlier merged maps win; explicit keys win
                        for key, value in source.entries():
                            entries.setdefault(key.text, (key, value))
                    node._entries = entries  # type: ignore[union-attr]
            if not stack:
                return node
            parent = stack[-1]
            if not parent.is_map:
                parent.node.items.append(node)  # type: ignore[union-attr]
            elif parent.key is None:
                if not isinstance(node, YScalar):
                    raise _RuamelAnswers("a key that is not a scalar")  # ruamel skips its value
                parent.key = (node, tag)
            else:
                key, key_tag = parent.key
                parent.key = None
                if key_tag == _MERGE:
                    self.merge(parent, key, node)
                    continue
                previous = parent.explicit.get(key.text)
                if previous is not None:
                    self.problem(
                        key,
                        f"YAML: duplicate key {key.text!r} (first at line {previous[0].line}); "
                        "the last one is used",
                    )
                parent.explicit[key.text] = (key, node)

    def merge(self, parent: _Open, key: YScalar, value: YNode) -> None:
        sources = value.items if isinstance(value, YSeq) else [value]
        maps = [source for source in sources if isinstance(source, YMap)]
        if len(maps) != len(sources):
            self.problem(key, "YAML: a merge key (<<) needs a mapping or a list of mappings")
        parent.merged.extend(maps)


def _resolve_plain(value: str) -> str:
    """The tag of a plain scalar under ruamel's YAML 1.2 rules (first match in its order)."""
    for tag, regexp in _PLAIN.get(value[:1], ()):
        if regexp.match(value):
            return tag
    return _STR


def _load_ruamel(text: str, path: str, tags: frozenset[str]) -> YamlLoad:
    """Every document as ruamel.yaml's round-trip composer reads it (imported only here)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, ReusedAnchorWarning

    result = YamlLoad()
    yaml = YAML(typ="rt")
    yaml.max_depth = MAX_DEPTH
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for index, raw in enumerate(yaml.compose_all(text)):
                builder = _Builder(path, result.problems, tags)
                root = builder.build(raw) if raw is not None else None
                line = raw.start_mark.line + 1 if raw is not None else 1
                result.documents.append(YamlDocument(index, root, line))
        for warning in caught:
            if not issubclass(warning.category, ReusedAnchorWarning):  # YAML 1.2 allows reuse
                first = str(warning.message).strip().splitlines()
                result.problems.append((Location(path), f"YAML: {first[0] if first else ''}"))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Location(path, mark.line + 1, mark.column + 1) if mark else Location(path)
        what = exc.problem or exc.context or "syntax error"
        if "max_depth" in what:  # ruamel's hint names its API, not the file's problem
            what = f"nesting deeper than {MAX_DEPTH} levels"
        context = f" ({exc.context})" if exc.problem and exc.context else ""
        result.problems.append((where, f"YAML syntax error: {what}{context}"))
    except RecursionError:
        result.problems.append((Location(path), "YAML nesting too deep to read"))
    except Exception as exc:  # ruamel raises several unrelated types (ReaderError, …)
        position = getattr(exc, "position", None)
        where = Location(path)
        if isinstance(position, int):
            where = _offset_location(text, path, position)
        message = str(exc).strip().splitlines()
        result.problems.append(
            (where, f"YAML error: {message[0] if message else type(exc).__name__}")
        )
    return result


def _flow_depth(text: str) -> int:
    """A rough upper bound of ``[``/``{`` nesting (quotes ignored): ruamel's scanner is
    quadratic in it, so absurd nesting is refused before scanning."""
    brackets = text.count("[") + text.count("{")
    if brackets <= _MAX_FLOW_DEPTH:
        return brackets  # no deeper than that: the character walk below is for the rare rest
    depth = deepest = 0
    for char in text:
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}" and depth:
            depth -= 1
    return deepest


def _offset_location(text: str, path: str, offset: int) -> Location:
    before = text[:offset]
    line = before.count("\n") + 1
    column = offset - (before.rfind("\n") + 1) + 1
    return Location(path, line, column)


class _Builder:
    """Turns ruamel nodes into YNodes once each (aliases share), breaking alias cycles."""

    def __init__(
        self, path: str, problems: list[tuple[Location, str]], tags: frozenset[str] = frozenset()
    ) -> None:
        from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode  # only when it reads

        self.scalar, self.sequence, self.mapping = ScalarNode, SequenceNode, MappingNode
        self.path = path
        self.problems = problems
        self.tags = tags
        self.done: dict[int, YNode] = {}
        self.active: set[int] = set()
        self.reported_tags: set[str] = set()

    def problem(self, node: Node, message: str) -> None:
        mark = node.start_mark
        self.problems.append((Location(self.path, mark.line + 1, mark.column + 1), message))

    def build(self, node: Node) -> YNode:
        key = id(node)
        known = self.done.get(key)
        if known is not None:
            return known
        line, column = node.start_mark.line + 1, node.start_mark.column + 1
        if key in self.active:
            self.problem(node, "YAML: recursive alias (an anchor used inside itself); read as null")
            return YScalar("", "null", line, column, file=self.path)
        tag = node.tag or ""
        interpreted = tag in _KNOWN_TAGS or tag == _MERGE or tag in self.tags
        if not interpreted and tag not in self.reported_tags:
            self.reported_tags.add(tag)
            self.problem(node, f"YAML: unsupported tag {tag!r}; its value is read as plain data")
        self.active.add(key)
        try:
            built = self._build(node, tag, line, column)
        finally:
            self.active.discard(key)
        built.file = self.path
        if tag in self.tags:
            built.tag = tag
        self.done[key] = built
        return built

    def _build(self, node: Node, tag: str, line: int, column: int) -> YNode:
        if isinstance(node, self.scalar):
            kind = _SCALAR_KINDS.get(tag, "str")
            return YScalar(str(node.value), kind, line, column)
        if isinstance(node, self.sequence):
            seq = YSeq(line, column)
            seq.items = [self.build(item) for item in node.value]
            return seq
        if isinstance(node, self.mapping):
            return self._build_map(node, line, column)
        self.problem(node, "YAML: unexpected node; read as null")  # pragma: no cover - defensive
        return YScalar("", "null", line, column)  # pragma: no cover

    def _build_map(self, node: MappingNode, line: int, column: int) -> YMap:
        mapping = YMap(line, column)
        explicit: dict[str, tuple[YScalar, YNode]] = {}
        merged: list[YMap] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                merged.extend(self._merge_sources(key_node, value_node))
                continue
            key = self.build(key_node)
            if not isinstance(key, YScalar):
                self.problem(key_node, "YAML: a mapping key that is not a scalar is ignored")
                continue
            value = self.build(value_node)
            previous = explicit.get(key.text)
            if previous is not None:
                self.problem(
                    key_node,
                    f"YAML: duplicate key {key.text!r} (first at line {previous[0].line}); "
                    "the last one is used",
                )
            explicit[key.text] = (key, value)
        entries: dict[str, tuple[YScalar, YNode]] = dict(explicit)
        for source in merged:  # earlier merged maps win over later ones; explicit keys win
            for key, value in source.entries():
                entries.setdefault(key.text, (key, value))
        mapping._entries = entries
        return mapping

    def _merge_sources(self, key_node: Node, value_node: Node) -> list[YMap]:
        value = self.build(value_node)
        sources = value.items if isinstance(value, YSeq) else [value]
        maps = [source for source in sources if isinstance(source, YMap)]
        if len(maps) != len(sources):
            self.problem(key_node, "YAML: a merge key (<<) needs a mapping or a list of mappings")
        return maps
