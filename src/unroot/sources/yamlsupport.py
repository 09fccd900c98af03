"""YAML for the compose and Kubernetes parsers: a typed node tree with a line and column on
every node, built from ruamel.yaml's round-trip *composer* (never its constructor).

Only the composer runs, so no tag ever builds a Python object: ``!!python/object`` and
CloudFormation-style ``!Ref`` are read as plain data and reported as problems.  Anchors and
aliases resolve to the same node; merge keys (``<<: *defaults``, ``<<: [*a, *b]``) are applied
the way YAML 1.1's merge type says (explicit keys win, earlier merged maps win over later
ones) — compose files use them for ``x-`` fragments.  Duplicate keys, recursive aliases,
syntax errors and too-deep nesting (more than 100 levels; absurd ``[``/``{`` nesting is
refused before scanning, as ruamel's scanner is quadratic in it) become problems
``(Location, message)``; loading never raises.  Scalars keep their text as written
(``22:22`` stays a string, as YAML 1.2 and compose's go-yaml v3 read it).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, ReusedAnchorWarning
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from unroot.sources.parsed import Location

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
        super().__init__(line, column, file=file, tag=tag)
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
        super().__init__(line, column, file=file, tag=tag)
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
        super().__init__(line, column, file=file, tag=tag)
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


def load_yaml(text: str, path: str, tags: frozenset[str] = frozenset()) -> YamlLoad:
    """Every document of ``text`` as YNode trees, plus the problems met; never raises.

    Documents before a syntax error are kept; the error is one problem at its position.
    ``tags``: application tags the caller interprets (compose's ``!reset``, ``!override``):
    kept in ``YNode.tag`` and not reported.  Every node's ``file`` is ``path``.
    """
    result = YamlLoad()
    if _flow_depth(text) > _MAX_FLOW_DEPTH:
        result.problems.append((Location(path), "YAML nesting too deep to read"))
        return result
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
        if isinstance(node, ScalarNode):
            kind = _SCALAR_KINDS.get(tag, "str")
            return YScalar(str(node.value), kind, line, column)
        if isinstance(node, SequenceNode):
            seq = YSeq(line, column)
            seq.items = [self.build(item) for item in node.value]
            return seq
        if isinstance(node, MappingNode):
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
