"""The Compose Specification's merge rules (``13-merge.md``), on YNode trees that keep the file
and line every value was written at.

Used for an override file merged onto the main file, for ``extends`` (the local service merged
onto the one it extends) and for a service an ``include``d project also defines.  The rules are
compose-go's (``override/merge.go``, ``override/uncity.go``), which Docker Compose v2 applies:

* mappings are merged key by key; a scalar of the later file replaces the earlier one; a null
  in the later file keeps the earlier value;
* sequences are appended, except ``command``, ``entrypoint`` and ``healthcheck.test``, which
  are replaced, and ``ulimits.<name>``, replaced as a whole;
* ``build: DIR`` counts as ``build: {context: DIR}``; ``sysctls``, ``environment``, ``labels``,
  ``tmpfs``, ``dns*``, ``env_file`` written as a mapping in one file and a list in the other are
  merged as lists of ``KEY=VALUE``;
* after appending, one entry per unique key is kept, where the first one was, with the later
  value: ``ports`` (the text, or ip:published:target/protocol), ``volumes`` (the target),
  ``cap_add``/``cap_drop``/``dns``/``sysctls``/… (the value, or its ``KEY``), ``expose``;
  ``security_opt`` is appended as is (Docker reads the last no-new-privileges);
* ``!reset`` removes the earlier value (``ports: !reset []``), ``!override`` replaces it
  (``ports: !override ["8443:443"]``) instead of merging.

Nothing here raises; a mapping merged onto a list (compose: "cannot override") is a problem and
the later value is taken.
"""

from __future__ import annotations

from collections.abc import Callable

from unroot.sources.yamlsupport import YMap, YNode, YScalar, YSeq, describe, is_absent

RESET = "!reset"
OVERRIDE = "!override"
TAGS = frozenset({RESET, OVERRIDE})
Problem = Callable[[YNode, str], None]

#: service attributes the later file replaces
_REPLACED = frozenset({"command", "entrypoint"})
#: service attributes merged as lists of KEY=VALUE when written as a mapping in one file
_TO_SEQUENCE = frozenset(
    {
        "annotations",
        "dns",
        "dns_opt",
        "dns_search",
        "env_file",
        "environment",
        "label_file",
        "labels",
        "sysctls",
        "tmpfs",
    }
)


Text = Callable[[YScalar], str]


def _text(node: YNode, text: Text | None = None) -> str:
    if not isinstance(node, YScalar):
        return ""
    return text(node) if text is not None else node.text


def _field(node: YMap, key: str, text: Text) -> str:
    value = node.get_scalar(key)
    return _text(value, text) if value is not None else ""


def _key_value(node: YNode, text: Text) -> str:
    return _text(node, text).split("=", 1)[0].strip()


def _port_key(node: YNode, text: Text) -> str:
    if isinstance(node, YMap):
        host = _field(node, "host_ip", text) or "0.0.0.0"  # noqa: S104 - a key, not a bind
        proto = _field(node, "protocol", text) or "tcp"
        published, target = _field(node, "published", text), _field(node, "target", text)
        return f"{host}:{published}:{target}/{proto}"
    return _text(node, text).strip()


def _volume_key(node: YNode, text: Text) -> str:
    if isinstance(node, YMap):
        return _field(node, "target", text)
    parts = _text(node, text).strip().split(":")
    return parts[1] if len(parts) > 1 else parts[0]


def _plain(node: YNode, text: Text) -> str:
    return _text(node, text).strip()


#: the key an entry of these service lists is unique by
_UNIQUE: dict[str, Callable[[YNode, Text], str]] = {
    "cap_add": _key_value,
    "cap_drop": _key_value,
    "dns": _key_value,
    "dns_opt": _key_value,
    "dns_search": _key_value,
    "environment": _key_value,
    "labels": _key_value,
    "links": _key_value,
    "profiles": _key_value,
    "sysctls": _key_value,
    "tmpfs": _key_value,
    "annotations": _key_value,
    "env_file": _plain,
    "expose": _plain,
    "ports": _port_key,
    "volumes": _volume_key,
    "devices": _volume_key,
}


def without_resets(node: YNode) -> YNode:
    """``node`` with every ``!reset`` entry dropped (what is left when nothing came before).

    Aliased nodes are shared, so both walks remember each node they saw: linear in the nodes
    written, whatever the aliases multiply them to."""
    return _without_resets(node, {}, {})


def _without_resets(node: YNode, seen: dict[int, bool], done: dict[int, YNode]) -> YNode:
    if not _has_reset(node, seen):
        return node
    known = done.get(id(node))
    if known is not None:
        return known
    result: YNode = node
    if isinstance(node, YMap):
        twin = node.copy()
        for key, value in node.entries():
            if value.tag == RESET:
                twin.remove(key.text)
            else:
                twin.put(key, _without_resets(value, seen, done))
        result = twin
    elif isinstance(node, YSeq):
        twin_seq = YSeq(node.line, node.column, file=node.file, tag=node.tag)
        twin_seq.items = [_without_resets(i, seen, done) for i in node.items if i.tag != RESET]
        result = twin_seq
    done[id(node)] = result
    return result


def _has_reset(node: YNode, seen: dict[int, bool]) -> bool:
    """Whether a ``!reset`` is under ``node`` (a recursive alias is already null here)."""
    known = seen.get(id(node))
    if known is not None:
        return known
    seen[id(node)] = False
    children: list[YNode] = []
    if isinstance(node, YMap):
        children = [value for _, value in node.entries()]
    elif isinstance(node, YSeq):
        children = node.items
    found = any(child.tag == RESET or _has_reset(child, seen) for child in children)
    seen[id(node)] = found
    return found


#: merge steps before giving up on absurd alias-multiplied trees (compose-go caps node visits
#: at 100 000 too: loader/reset.go)
MAX_STEPS = 100_000


class Merger:
    """The merge rules; ``text`` gives a scalar's value after interpolation (for unique keys),
    ``problem`` receives what compose would refuse."""

    def __init__(self, problem: Problem, text: Callable[[YScalar], str] | None = None) -> None:
        self.problem = problem
        self.text = text or (lambda node: node.text)
        self.steps = 0

    def merge(self, base: YNode | None, over: YNode, path: tuple[str, ...]) -> YNode:
        """``over`` merged onto ``base`` at ``path`` (``("services", NAME, "ports")``)."""
        self.steps += 1
        if self.steps == MAX_STEPS:
            self.problem(over, "too many values to merge (aliases?): the later file's are taken")
        if base is None or over.tag == OVERRIDE or self.steps >= MAX_STEPS:
            return without_resets(over)
        if is_absent(over):
            return base
        attribute = path[2] if len(path) >= 3 and path[0] == "services" else ""
        if len(path) == 3 and attribute in _REPLACED:
            return without_resets(over)
        if path[2:] == ("healthcheck", "test") or (len(path) == 4 and attribute == "ulimits"):
            return without_resets(over)
        if len(path) == 3 and attribute == "build":
            base, over = _as_build(base), _as_build(over)
        both_maps = isinstance(base, YMap) and isinstance(over, YMap)
        if len(path) == 3 and attribute in _TO_SEQUENCE and not both_maps:
            base, over = _as_sequence(base), _as_sequence(over)
        if isinstance(base, YMap) and isinstance(over, YMap):
            return self.merge_maps(base, over, path)
        if isinstance(base, YSeq) and isinstance(over, YSeq):
            later = without_resets(over)
            merged = YSeq(base.line, base.column, file=base.file)
            merged.items = [*base.items, *(later.items if isinstance(later, YSeq) else ())]
            unique = _UNIQUE.get(attribute) if len(path) == 3 else None
            if unique is not None:
                merged.items = self._unique(merged.items, unique)
            return merged
        if isinstance(base, YScalar) and (isinstance(over, YScalar) or base.is_null):
            return without_resets(over)
        self.problem(over, f"{'.'.join(path)}: cannot merge {describe(over)} onto {describe(base)}")
        return without_resets(over)

    def merge_maps(self, base: YMap, over: YMap, path: tuple[str, ...]) -> YMap:
        """Key by key: later keys win, new keys go last, ``!reset`` removes."""
        merged = base.copy()
        for key, value in over.entries():
            if value.tag == RESET:
                merged.remove(key.text)
                continue
            earlier = base.get(key.text)
            if earlier is None:
                merged.put(key, without_resets(value))
                continue
            result = self.merge(earlier, value, (*path, key.text))
            # a merged mapping (a service) stays where it was first written; anything else is
            # where its effective value was last written (the later file, unless null kept it)
            keep = result is earlier or (isinstance(earlier, YMap) and isinstance(value, YMap))
            merged.put(base.key_node(key.text) or key if keep else key, result)
        return merged

    def _unique(self, items: list[YNode], key_of: Callable[[YNode, Text], str]) -> list[YNode]:
        kept: list[YNode] = []
        where: dict[str, int] = {}
        for item in items:
            key = key_of(item, self.text)
            if key in where:
                kept[where[key]] = item
            else:
                where[key] = len(kept)
                kept.append(item)
        return kept


def _as_build(node: YNode) -> YNode:
    if isinstance(node, YScalar) and not node.is_null:
        mapping = YMap(node.line, node.column, file=node.file)
        mapping.put(YScalar("context", "str", node.line, node.column, file=node.file), node)
        return mapping
    return node


def _as_sequence(node: YNode) -> YNode:
    if isinstance(node, YScalar) and not node.is_null:
        single = YSeq(node.line, node.column, file=node.file)
        single.items = [node]
        return single
    if not isinstance(node, YMap):
        return node
    seq = YSeq(node.line, node.column, file=node.file)
    for key, value in node.entries():
        text = key.text if is_absent(value) else f"{key.text}={_text(value)}"
        seq.items.append(YScalar(text, "str", value.line, value.column, file=value.file))
    return seq
