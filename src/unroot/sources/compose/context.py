"""What the compose parser carries while it reads a project: the variables (with the ``.env``
line each came from), and the context of one pass — the problems met, the variables left unset
and where an empty one made a value unreadable (said once, as about the variable), each file's
variables and directory — with the interpolating readers of scalars the field readers use.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field

from unroot.sources.compose.env import Use, interpolate
from unroot.sources.parsed import Location
from unroot.sources.yamlsupport import YMap, YNode, YScalar, YSeq, describe, present

#: how a problem about an unset variable starts (UR100 reads it)
VARIABLE = "variable "


class Vars(dict[str, str]):
    """A project's variables, with the ``.env`` line that defined each (absent: the
    environment compose runs in, which ``unroot lint`` never passes)."""

    def __init__(
        self, values: Mapping[str, str] | None = None, origins: Mapping[str, Location] | None = None
    ) -> None:
        super().__init__(values or {})
        self.origins: dict[str, Location] = dict(origins or {})
        #: variables lint gives a value compose would get from elsewhere, with why
        self.assumed: dict[str, str] = dict(values.assumed) if isinstance(values, Vars) else {}


@dataclass
class Ctx:
    path: str
    env: Mapping[str, str]
    problems: list[tuple[Location, str]] = field(default_factory=list)
    unset: list[str] = field(default_factory=list)
    #: the variables the current service's values referred to (its notes)
    used: list[tuple[Use, Mapping[str, str]]] = field(default_factory=list)
    #: per file read: the variables it is interpolated with, the directory its paths resolve from
    envs: dict[str, Mapping[str, str]] = field(default_factory=dict)
    dirs: dict[str, str] = field(default_factory=dict)
    #: per scalar (its location): the variables left empty in its value and the field it is in;
    #: a value that then cannot be read is not checked, which is said once, as about the variable
    empty: dict[Location, tuple[tuple[str, ...], str]] = field(default_factory=dict)

    def file_of(self, node: YNode) -> str:
        return node.file or self.path

    def base_of(self, node: YNode) -> str:
        file = self.file_of(node)
        if file in self.dirs:
            return self.dirs[file]
        return posixpath.dirname(file) if file != "-" else ""

    def env_of(self, node: YNode) -> Mapping[str, str]:
        return self.envs.get(self.file_of(node), self.env)

    def loc(self, node: YNode) -> Location:
        return Location(self.file_of(node), node.line, node.column)

    def problem(self, node: YNode, message: str) -> None:
        location = self.loc(node)
        found = self._emptied(node)
        if found is None or message.startswith(VARIABLE):
            self.problems.append((location, message))
            return
        # the value could not be read because a variable in it is empty: not a second error
        where, (names, what) = found
        empty = " and ".join(names)
        note = f"not checked: with {empty} empty, {message}"
        for index, (at, said) in enumerate(self.problems):
            if at == where and said.startswith(VARIABLE) and " not checked: " not in said:
                self.problems[index] = (at, f"{said}; {note}")
                return
        field = f" in {what}" if what else ""
        verb = "is" if len(names) == 1 else "are"
        self.problems.append((where, f"variable {empty} {verb} not set{field}: {note}"))

    def _emptied(self, node: YNode) -> tuple[Location, tuple[tuple[str, ...], str]] | None:
        """The scalar (``node`` or one of its mapping's values) whose value has an empty
        variable in it, with those variables and its field."""
        nodes = (
            [node, *(value for _, value in node.entries())] if isinstance(node, YMap) else [node]
        )
        for each in nodes:
            location = self.loc(each)
            if location in self.empty:
                return location, self.empty[location]
        return None

    def quiet_text(self, node: YScalar) -> str:
        """The value after interpolation, problems not reported (for merge keys)."""
        if node.kind != "str" or "$" not in node.text:
            return node.text
        return interpolate(node.text, self.env_of(node))[0]

    def text(self, node: YScalar, what: str = "") -> str:
        """The scalar's value after interpolation (numbers and bools as written); ``what`` names
        the field for the message about a variable that is not set."""
        if node.kind != "str" or "$" not in node.text:
            return node.text
        before = len(self.unset)
        env = self.env_of(node)
        uses: list[Use] = []
        required: list[tuple[str, str]] = []
        result, errors = interpolate(node.text, env, self.unset, uses, required)
        self.used.extend((use, env) for use in uses)
        field = f" in {what}" if what else ""
        demanded = dict(required)
        for name in self.unset[before:]:
            if name in demanded:
                continue
            self.problem(
                node,
                f"variable {name} is not set{field}: compose substitutes an empty string unless "
                "the shell that runs it sets it (set it in .env or give it a default: ${"
                + name
                + ":-value})",
            )
        for name, message in required:
            if name in self.unset:
                continue
            self.unset.append(name)
            self.problem(
                node,
                f"variable {name} is not set{field}: it is required (${{{name}:?{message}}}), so "
                "docker compose refuses the project until the shell that runs it or .env sets it",
            )
        for error in errors:
            self.problem(node, error)
        emptied = [name for name, op, _, present in uses if not present and not op.endswith("-")]
        if emptied:
            self.empty[self.loc(node)] = (tuple(dict.fromkeys(emptied)), what)
        return result

    def scalar(self, node: YNode | None, what: str) -> str | None:
        node = present(node)
        if node is None:
            return None
        if isinstance(node, YScalar):
            return self.text(node, what)
        self.problem(node, f"{what}: expected a string, found {describe(node)}")
        return None

    def strings(self, node: YNode | None, what: str) -> list[tuple[str, YNode]]:
        """A list of scalars (a lone scalar counts as a list of one)."""
        node = present(node)
        if node is None:
            return []
        items = node.items if isinstance(node, YSeq) else [node]
        found: list[tuple[str, YNode]] = []
        for item in items:
            value = self.scalar(item, what)
            if value is not None:
                found.append((value, item))
        return found

    def boolean(self, node: YNode | None, what: str) -> bool | None:
        node = present(node)
        if node is None:
            return None
        if isinstance(node, YScalar):
            value = YScalar(self.text(node, what), "str", node.line, node.column).as_bool()
            if value is not None:
                return value
        self.problem(node, f"{what}: expected true or false, found {describe(node)}")
        return None
