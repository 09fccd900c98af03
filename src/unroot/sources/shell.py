"""Shell scripts as the linter needs them: the simple commands a script runs, in order.

``RUN`` lines, ``sh -c '…'`` strings, compose ``command:`` strings and systemd ``ExecStart=``
shells all come here.  :func:`parse_shell` walks bashlex's tree (``&&``/``||``/``;`` lists,
pipelines, subshells, brace groups, ``if``/``while``/``for`` bodies, here-documents) and flattens
it into :class:`SimpleCommand` values that keep every word *raw* (quotes and ``$`` intact), so the
caller decides how to expand them with the variables it knows (:func:`expand_word`).  bashlex
does not parse everything bash accepts (``case``, ``[[ … ]]``, arithmetic, some here-documents);
then a conservative quote-aware tokenizer splits the script at its top-level operators instead
and marks the result ``exact=False``.  Nothing here raises on any input.

Most scripts are plain lists of simple commands (``apt-get update && apt-get install -y curl``).
For those, :func:`parse_shell` takes a fast path (:func:`_fast_path`): a regular-expression
scanner of exactly the subset it understands — words, quotes, ``$NAME``/``${NAME…}``,
``&&``/``||``/``;``/``&``/``|``, newlines, comments, backslash-newline continuations and the
redirections ``< > >> >| <> >& <& &> &>>`` — that returns the very ``SimpleCommand`` values
the bashlex walk returns, positions, pipeline numbers and bashlex's own quirks included.  It
returns None for anything else (subshells, braces, substitutions, backquotes, ``$'…'``,
here-documents, reserved words in command position, unbalanced quotes, syntax errors), and then
bashlex parses the script as before; bashlex itself is only imported then.
``tests/lint/test_shell_fast.py`` checks the two agree on generated scripts and on every RUN
line of the benchmark corpus and the fixtures.

:func:`expand_word` implements the word rules BuildKit's shell lexer applies to Dockerfile
instructions (``moby/buildkit`` ``frontend/dockerfile/shell/lex.go``): single quotes are
literal, double quotes allow ``$`` expansion, the escape character (``\\`` or the ``# escape=``
directive's) quotes the next character, and ``$NAME``, ``${NAME}``, ``${NAME:-word}``,
``${NAME-word}``, ``${NAME:+word}``, ``${NAME+word}`` are expanded.  A variable whose value is
unknown leaves the word *incomplete* rather than silently empty.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: Values a variable may have: a string, or None when it is declared but its value is unknown
#: (``ARG NAME`` without a default: ``--build-arg`` decides).
Env = Mapping[str, str | None]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BRACED = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-+?=])(?P<word>.*))?", re.S)
_SPECIAL_PARAM = frozenset("@*#?$!-0123456789")
_SHELLS = frozenset({"sh", "bash", "ash", "dash", "zsh", "ksh", "mksh", "busybox"})
#: Hard limits that keep a hostile input from costing more than a normal Dockerfile.
MAX_SCRIPT = 200_000
MAX_COMMANDS = 5_000
MAX_LOOP_ITEMS = 64


# -- words ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Expanded:
    """A word after quote removal and variable expansion."""

    text: str
    complete: bool  # False: a variable/command substitution could not be resolved


def expand_word(
    raw: str, env: Env, escape: str = "\\", *, positional: Sequence[str] = ()
) -> Expanded:
    """Quote removal and ``$`` expansion of one word (see the module doc)."""
    if "$" not in raw and "'" not in raw and '"' not in raw and escape not in raw:
        return Expanded(raw, True)  # nothing to remove or expand: most words
    out: list[str] = []
    complete = _expand_into(raw, _Scope(env, escape, tuple(positional)), out, 0)
    return Expanded("".join(out), complete)


@dataclass(frozen=True, slots=True)
class _Scope:
    """What an expansion sees: the variables, the escape character, ``$1 …``."""

    env: Env
    escape: str
    positional: tuple[str, ...]


def _expand_into(raw: str, scope: _Scope, out: list[str], depth: int) -> bool:
    escape = scope.escape
    complete = True
    i, n = 0, len(raw)
    while i < n:
        ch = raw[i]
        if ch == escape:
            if i + 1 < n:
                if raw[i + 1] != "\n":
                    out.append(raw[i + 1])
                i += 2
            else:
                out.append(ch)
                i += 1
        elif ch == "'":
            end = raw.find("'", i + 1)
            if end < 0:
                out.append(raw[i + 1 :])
                return complete
            out.append(raw[i + 1 : end])
            i = end + 1
        elif ch == '"':
            i += 1
            while i < n and raw[i] != '"':
                c = raw[i]
                if c == escape and i + 1 < n and raw[i + 1] in ('"', "$", escape, "`", "\n"):
                    if raw[i + 1] != "\n":
                        out.append(raw[i + 1])
                    i += 2
                elif c == "$":
                    i, ok = _expand_dollar(raw, i, scope, out, depth)
                    complete &= ok
                else:
                    out.append(c)
                    i += 1
            i += 1  # the closing quote (or past the end when unterminated)
        elif ch == "$":
            i, ok = _expand_dollar(raw, i, scope, out, depth)
            complete &= ok
        else:
            out.append(ch)
            i += 1
    return complete


def _matching(raw: str, start: int, open_: str, close: str) -> int:
    """Index of the bracket closing the one at ``start`` (quotes respected), or -1."""
    level, i, quote = 0, start, ""
    while i < len(raw):
        c = raw[i]
        if quote:
            if c == quote:
                quote = ""
            elif c == "\\" and quote == '"':
                i += 1
        elif c in "'\"":
            quote = c
        elif c == "\\":
            i += 1
        elif c == open_:
            level += 1
        elif c == close:
            level -= 1
            if level == 0:
                return i
        i += 1
    return -1


def _expand_dollar(raw: str, i: int, scope: _Scope, out: list[str], depth: int) -> tuple[int, bool]:
    """Expand the ``$…`` at ``raw[i]``; return the index after it and whether it resolved."""
    env, positional = scope.env, scope.positional
    n = len(raw)
    nxt = raw[i + 1] if i + 1 < n else ""
    if nxt == "{":
        end = _matching(raw, i + 1, "{", "}")
        if end < 0:
            out.append(raw[i:])
            return n, False
        body = raw[i + 2 : end]
        whole = raw[i : end + 1]
        m = _BRACED.fullmatch(body)
        if m is None or depth > 8:
            out.append(whole)
            return end + 1, False
        value = env.get(m.group("name"))
        declared = m.group("name") in env
        op, word = m.group("op"), m.group("word") or ""
        if op is None:
            if value is None:
                out.append(whole)
                return end + 1, False
            out.append(value)
            return end + 1, True
        if op in (":-", "-", ":=", "="):
            use_default = (value is None and not declared) or (op.startswith(":") and not value)
            if value is None and declared and not use_default:
                out.append(whole)
                return end + 1, False
            if use_default:
                return end + 1, _expand_into(word, scope, out, depth + 1)
            out.append(value or "")
            return end + 1, True
        if op in (":+", "+"):
            if value is None:
                if declared:
                    out.append(whole)
                    return end + 1, False
                return end + 1, True  # unset: empty
            if op == ":+" and not value:
                return end + 1, True
            return end + 1, _expand_into(word, scope, out, depth + 1)
        out.append(whole)  # ${NAME:?msg} and friends: leave as written
        return end + 1, value is not None
    if nxt == "(":
        end = _matching(raw, i + 1, "(", ")")
        stop = n if end < 0 else end + 1
        out.append(raw[i:stop])
        return stop, False
    m = _NAME.match(raw, i + 1)
    if m:
        value = env.get(m.group())
        if value is None:
            out.append(m.group().join(("$", "")))
            return m.end(), False
        out.append(value)
        return m.end(), True
    if nxt and nxt in _SPECIAL_PARAM:
        if nxt in ("@", "*"):
            if positional:
                out.append(" ".join(positional))
                return i + 2, True
            out.append("$" + nxt)
            return i + 2, not positional
        if nxt.isdigit() and 1 <= int(nxt) <= len(positional):
            out.append(positional[int(nxt) - 1])
            return i + 2, True
        out.append("$" + nxt)
        return i + 2, False
    out.append("$")
    return i + 1, True


# -- commands ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Redirect:
    """``>``/``>>``/``<``/``<<`` and friends; ``target`` is the raw word (or here-doc body)."""

    op: str
    target: str
    fd: int | None = None


@dataclass(frozen=True, slots=True)
class SimpleCommand:
    """One simple command of a script, its words raw (expand them with :func:`expand_word`)."""

    words: tuple[str, ...]
    assignments: tuple[str, ...] = ()  # NAME=value prefixes, raw
    redirects: tuple[Redirect, ...] = ()
    pipeline: int = 0  # commands with the same number form one pipeline
    pipe_index: int = 0  # position in that pipeline
    scope: tuple[int, ...] = ()  # subshell nesting: a `cd` inside ( … ) does not leak out
    conditional: bool = False  # in an if/while/until body or after ||: it may not run
    bindings: tuple[tuple[str, str], ...] = ()  # for-loop variables (raw values)
    offset: int = 0  # character offset of the command in the script

    @property
    def name(self) -> str:
        return self.words[0] if self.words else ""


@dataclass(frozen=True, slots=True)
class ShellScript:
    """The commands of a script, and whether they come from the real parser."""

    commands: tuple[SimpleCommand, ...]
    exact: bool = True  # False: bashlex failed and the fallback tokenizer split the script
    error: str | None = None  # bashlex's complaint, when it failed


def parse_shell(script: str) -> ShellScript:
    """Parse ``script`` into its simple commands; never raises (see the module doc)."""
    if len(script) > MAX_SCRIPT:
        return ShellScript((), exact=False, error=f"script longer than {MAX_SCRIPT} characters")
    if not script.strip():
        return ShellScript(())
    fast = _fast_path(script)
    if fast is not None:
        return ShellScript(tuple(fast))
    return _parse_bashlex(script)


def _parse_bashlex(script: str) -> ShellScript:
    """The general path: bashlex's tree, walked; the fallback tokenizer when bashlex fails."""
    import bashlex  # type: ignore[import-untyped]  # imported here: 80 ms the fast path saves

    _guard_paramexpand(bashlex.subst)
    try:
        trees = bashlex.parse(script)
        walker = _Walker(script)
        for tree in trees:
            walker.node(tree, scope=(), conditional=False, bindings=())
        return ShellScript(tuple(walker.commands))
    except RecursionError:
        error = "too deeply nested"
    except Exception as exc:  # bashlex raises many types: any of them means "fall back"
        error = f"{type(exc).__name__}: {exc}"[:200]
    return ShellScript(tuple(_fallback(script)), exact=False, error=error)


def _guard_paramexpand(subst: Any) -> None:
    """Make bashlex 0.18 fail instead of looping forever on ``${`` without a ``}``.

    ``subst._paramexpand`` looks for the ``}`` closing ``${`` with ``str.find``; when there is
    none (``"a"'${'``: bashlex re-scans single-quoted text inside a word that starts with a
    double quote) it returns index 0 and ``_expandwordinternal`` starts the word over, forever.
    Raising there sends the script to the fallback tokenizer like any other bashlex failure.
    """
    original = subst._paramexpand
    if getattr(original, "unroot_guard", False):
        return

    def guarded(parser: Any, string: str, sindex: int) -> Any:
        if string.startswith("${", sindex) and string.find("}", sindex + 2) < 0:
            raise ValueError(f"bad substitution: no closing '}}' in {string!r}")
        return original(parser, string, sindex)

    guarded.unroot_guard = True  # type: ignore[attr-defined]
    subst._paramexpand = guarded


class _Walker:
    """bashlex tree → SimpleCommand list."""

    def __init__(self, script: str) -> None:
        self.script = script
        self.commands: list[SimpleCommand] = []
        self.pipelines = 0
        self.subshells = 0

    def raw(self, node: Any) -> str:
        start, end = node.pos
        return self.script[start:end]

    def node(
        self,
        node: Any,
        scope: tuple[int, ...],
        conditional: bool,
        bindings: tuple[tuple[str, str], ...],
        *,
        pipeline: int | None = None,
        pipe_index: int = 0,
    ) -> None:
        if len(self.commands) >= MAX_COMMANDS:
            return
        kind = node.kind
        if kind == "command":
            self.command(
                node, scope, conditional, bindings, pipeline=pipeline, pipe_index=pipe_index
            )
        elif kind == "list":
            after_or = False
            for part in node.parts:
                if part.kind == "operator":
                    after_or = after_or or part.op == "||"
                    continue
                self.node(part, scope, conditional or after_or, bindings)
        elif kind == "pipeline":
            self.pipelines += 1
            number = self.pipelines
            index = 0
            for part in node.parts:
                if part.kind == "pipe":
                    continue
                self.node(part, scope, conditional, bindings, pipeline=number, pipe_index=index)
                index += 1
        elif kind == "compound":
            inner_scope = scope
            words = [p.word for p in node.list if p.kind == "reservedword"]
            if words and words[0] == "(":
                self.subshells += 1
                inner_scope = (*scope, self.subshells)
            for part in node.list:
                if part.kind != "reservedword":
                    self.node(
                        part,
                        inner_scope,
                        conditional,
                        bindings,
                        pipeline=pipeline,
                        pipe_index=pipe_index,
                    )
        elif kind in ("if", "while", "until"):
            for part in node.parts:
                if part.kind not in ("reservedword",):
                    self.node(part, scope, True, bindings)
        elif kind == "for":
            self.for_loop(node, scope, conditional, bindings)
        elif kind == "function":
            return  # defined, not run: calls to it are not followed
        else:
            for part in getattr(node, "parts", ()) or ():
                self.node(part, scope, conditional, bindings)

    def for_loop(
        self,
        node: Any,
        scope: tuple[int, ...],
        conditional: bool,
        bindings: tuple[tuple[str, str], ...],
    ) -> None:
        parts = list(node.parts)
        var = ""
        items: list[str] = []
        body: list[Any] = []
        state = "start"
        for part in parts:
            if part.kind == "reservedword":
                if part.word == "in":
                    state = "items"
                elif part.word == "do":
                    state = "body"
                elif part.word in (";", "\n"):
                    state = "pre-do" if state == "items" else state
                continue
            if state == "start" and part.kind == "word":
                var = part.word
            elif state == "items" and part.kind == "word":
                items.append(self.raw(part))
            elif state == "body":
                body.append(part)
        if not var:
            return
        if not items or len(items) > MAX_LOOP_ITEMS:
            items = [f"${var}"]  # unknown values: the body still runs, its words stay unresolved
        for item in items:
            for part in body:
                self.node(part, scope, conditional, ((var, item), *bindings))

    def command(
        self,
        node: Any,
        scope: tuple[int, ...],
        conditional: bool,
        bindings: tuple[tuple[str, str], ...],
        *,
        pipeline: int | None,
        pipe_index: int,
    ) -> None:
        words: list[str] = []
        assignments: list[str] = []
        redirects: list[Redirect] = []
        for part in node.parts:
            if part.kind == "word":
                words.append(self.raw(part))
            elif part.kind == "assignment":
                if words:
                    words.append(self.raw(part))  # `env A=1 cmd`: an argument, not a prefix
                else:
                    assignments.append(self.raw(part))
            elif part.kind == "redirect":
                redirects.append(self._redirect(part))
        if pipeline is None:
            self.pipelines += 1
            pipeline = self.pipelines
        self.commands.append(
            SimpleCommand(
                words=tuple(words),
                assignments=tuple(assignments),
                redirects=tuple(redirects),
                pipeline=pipeline,
                pipe_index=pipe_index,
                scope=scope,
                conditional=conditional,
                bindings=bindings,
                offset=node.pos[0],
            )
        )

    def _redirect(self, part: Any) -> Redirect:
        fd = part.input if isinstance(getattr(part, "input", None), int) else None
        heredoc = getattr(part, "heredoc", None)
        if heredoc is not None:
            body = str(getattr(heredoc, "value", ""))
            return Redirect(part.type, body, fd)
        output = getattr(part, "output", None)
        if isinstance(output, int):
            return Redirect(part.type, str(output), fd)
        if output is not None and hasattr(output, "pos"):
            return Redirect(part.type, self.raw(output), fd)
        return Redirect(part.type, "", fd)


# -- the fast path ----------------------------------------------------------------------------
#: Text that only bashlex handles, looked for anywhere (quoted or not: bashlex re-scans quoted
#: text when it expands a word): backquotes, ``$(``, ``$[``, ``$'…'``, ``$"…"``, process
#: substitution, here-documents and here-strings, any ``${`` whose body is not plain.  And
#: ``$``, ``<`` or ``>`` before a continuation: bashlex peeks at the next character skipping
#: the continuation, then steps back one character only and reads a newline (the same holds
#: for the operators ``;``, ``&``, ``|``: :meth:`_FastParser.operator`).
_NEEDS_BASHLEX = re.compile(r"""`|\$[(\['"]|[<>]\(|<<|\$\{(?![^{}$`'"\\\n()<>]*\})|[$<>]\\\n""")
_BRACE_BODY = r"""\$\{[^{}$`'"\\\n()<>]*\}"""
#: One word: plain characters, '…', "…" (escapes, $$, ${…}, $), \x (a continuation when x is a
#: newline: kept in the raw text, as bashlex's positions keep it), $$ (the PID: in ``$${A}`` the
#: brace is plain text, as bash reads it), ${…}, $.  The repetitions are
#: possessive: an unterminated "… must fail in linear time, not try every way to split it.
_WORD = re.compile(
    r"""(?:[^ \t\n'"\\$()<>;&|]++|'[^']*+'|"(?:[^"\\$]++|\\[\s\S]|\$\$|"""
    + _BRACE_BODY
    + r"""|\$)*+"|\\[\s\S]|\$\$|"""
    + _BRACE_BODY
    + r"""|\$)++"""
)
_BLANKS = re.compile(r"(?:[ \t]+|\\\n)*")
_CONTINUATIONS = re.compile(r"(?:\\\n)*")
_WORD_BREAK = frozenset(" \t\n;&|()<>")
#: bashlex's reserved words (``valid_reserved_first_command``): in command position they start
#: a compound command, so the script goes to bashlex.
_RESERVED = frozenset(
    {"if", "then", "else", "elif", "fi", "case", "esac", "for", "select", "while", "until", "do",
     "done", "in", "function", "time", "{", "}", "!", "[[", "]]", "coproc"}
)  # fmt: skip
#: Where the scanner is: at the start of a line, in a command, after ``&&``/``||``, ``|``, or
#: ``;``/``&``.  A newline ends the line except after ``&&``, ``||`` and ``|``.
_LINE, _COMMAND, _AFTER_AND_OR, _AFTER_PIPE, _AFTER_SEPARATOR = range(5)


def _end(pattern: re.Pattern[str], text: str, i: int) -> int:
    """Where a match of ``pattern`` at ``i`` ends (``i`` when there is none)."""
    match = pattern.match(text, i)
    return match.end() if match else i


def _is_assignment(value: str) -> bool:
    """bashlex's test (``tokenizer._is_assignment``): a name, then ``=`` or ``+=``."""
    first = value[0]
    if not first.isalpha() and first != "_":
        return False
    for i, ch in enumerate(value):
        if ch == "=" or (ch == "+" and value[i + 1 : i + 2] == "="):
            return True
        if not ch.isalnum() and ch != "_":
            return False
    return False


def _number(value: str) -> int | None:
    """The file descriptor an all-digit word names (bashlex's ``NUMBER`` token), or None."""
    if not value.isdigit():
        return None
    try:
        return int(value)
    except ValueError:  # digits int() rejects (superscripts) or too many of them
        return None


class _NotSimple(Exception):
    """The script leaves the fast path's subset: bashlex parses it."""


class _FastParser:
    """One pass over a script in the fast path's subset → the commands bashlex's walk yields."""

    def __init__(self, script: str) -> None:
        self.script = script
        self.n = len(script)
        self.commands: list[SimpleCommand] = []
        self.pipelines = 0
        self.pipe_index = 0
        self.after_or = False
        self.state = _LINE
        self.open = False  # a command is being read
        self.words: list[str] = []
        self.assignments: list[str] = []
        self.redirects: list[Redirect] = []
        self.offset = 0

    def run(self) -> list[SimpleCommand]:
        script, n = self.script, self.n
        i = 0
        while True:
            i = _end(_BLANKS, script, i)
            c = script[i] if i < n else ""
            if c == "#":
                i = self.comment(i)
                continue
            if c in ("", "\n"):
                if self.state in (_AFTER_AND_OR, _AFTER_PIPE):
                    if not c:
                        raise _NotSimple
                else:
                    self.finish()
                    if not c:
                        break
                    self.state, self.after_or = _LINE, False
                i += 1
                continue
            after = _end(_CONTINUATIONS, script, i + 1)
            d = script[after] if after < n else ""
            if c in "<>" or (c == "&" and d == ">"):
                i = self.redirect(i, i, None)
            elif c in ";&|":
                i = self.operator(c, d, i, after)
            elif c in "()":
                raise _NotSimple
            else:
                i = self.word(i)
        if not self.commands or len(self.commands) > MAX_COMMANDS:
            raise _NotSimple
        return self.commands

    def comment(self, i: int) -> int:
        # bashlex skips the character after each top-level command line, taking it for the
        # newline: a comment is safe only after a blank or a real newline.
        script = self.script
        before = script[i - 1] if i else " "
        if before == "\n":  # a real newline, or the end of a continuation?
            k = i - 2
            while k >= 0 and script[k] == "\\":
                k -= 1
            before = "\\" if (i - 2 - k) % 2 else " "
        if before not in " \t":
            raise _NotSimple
        end = script.find("\n", i)
        return self.n if end < 0 else end

    def operator(self, c: str, d: str, i: int, after: int) -> int:
        if not self.open or (c == ";" and d in (";", "&")) or (c == "|" and d == "&"):
            raise _NotSimple
        if after > i + 1 and not (c in "&|" and d == c):
            raise _NotSimple  # a one-character operator, then a continuation: see _NEEDS_BASHLEX
        self.finish()
        if c == "|" and d != "|":
            self.state = _AFTER_PIPE
            return i + 1
        if c in "&|" and d == c:
            self.after_or = self.after_or or c == "|"
            self.state = _AFTER_AND_OR
            return after + 1
        self.state = _AFTER_SEPARATOR
        return i + 1

    def start(self, offset: int) -> None:
        if self.open:
            return
        if self.state == _AFTER_PIPE:
            self.pipe_index += 1
        else:
            self.pipelines += 1
            self.pipe_index = 0
        self.state = _COMMAND
        self.open = True
        self.offset = offset

    def finish(self) -> None:
        if not self.open:
            return
        self.commands.append(
            SimpleCommand(
                words=tuple(self.words),
                assignments=tuple(self.assignments),
                redirects=tuple(self.redirects),
                pipeline=self.pipelines,
                pipe_index=self.pipe_index,
                conditional=self.after_or,
                offset=self.offset,
            )
        )
        self.open = False
        self.words, self.assignments, self.redirects = [], [], []

    def read_word(self, i: int) -> tuple[str, str, int]:
        """The raw word at ``i``, its value (continuations removed), and where it ends."""
        script = self.script
        end = _end(_WORD, script, i)
        if end == i or (end < self.n and script[end] not in _WORD_BREAK):
            raise _NotSimple  # an unbalanced quote, a lone backslash at the end
        raw = script[i:end]
        value = raw.replace("\\\n", "") if "\\\n" in raw else raw
        if value in ("{", "}"):
            raise _NotSimple  # bashlex lets a reserved word follow these
        return raw, value, end

    def word(self, i: int) -> int:
        raw, value, end = self.read_word(i)
        if end < self.n and self.script[end] in "<>":
            fd = _number(value)
            if fd is not None:
                return self.redirect(i, end, fd)
        self.start(i)
        if not self.words and value in _RESERVED:
            raise _NotSimple
        if not self.words and not self.redirects and "=" in value and _is_assignment(value):
            self.assignments.append(raw)
        else:
            self.words.append(raw)
        return end

    def redirect(self, start: int, i: int, fd: int | None) -> int:
        script, n = self.script, self.n

        def peek(j: int) -> tuple[str, int]:
            j = _end(_CONTINUATIONS, script, j)
            return (script[j] if j < n else ""), j

        c = script[i]
        d, j = peek(i + 1)
        if c == "&":  # &> or &>>
            e, k = peek(j + 1)
            op, i = ("&>>", k + 1) if e == ">" else ("&>", j + 1)
        elif c == ">" and d in (">", "&", "|"):
            op, i = ">" + d, j + 1
        elif c == "<" and d in ("&", ">"):
            op, i = "<" + d, j + 1
        elif c == "<" and d == "<":
            raise _NotSimple
        else:
            op, i = c, i + 1
        i = _end(_BLANKS, script, i)
        if i >= n or script[i] in "#-\n" or script[i] in _WORD_BREAK:
            raise _NotSimple
        raw, value, end = self.read_word(i)
        number = _number(value)
        if op in (">&", "<&"):
            target = raw if number is None else str(number)
        elif number is not None and end < n and script[end] in "<>":
            raise _NotSimple  # bashlex reads a file descriptor where the grammar wants a word
        else:
            target = raw
        self.start(start)
        self.redirects.append(Redirect(op, target, fd))
        return end


def _fast_path(script: str) -> list[SimpleCommand] | None:
    """The commands of a script in the fast path's subset (see the module doc), else None."""
    last = script[:-1] if script.endswith("\n") else script
    if _NEEDS_BASHLEX.search(script) or (len(last) - len(last.rstrip("\\"))) % 2:
        return None  # bashlex fails on a continuation at the very end: keep its answer
    try:
        return _FastParser(script).run()
    except _NotSimple:
        return None


# -- the fallback tokenizer -------------------------------------------------------------------
_OPERATORS = ("&&", "||", ";;", ";", "&", "|", "(", ")", "\n")
_REDIRECT = re.compile(r"(\d*)(>>|>\||>&|<<-|<<<|<<|<&|<>|&>>|&>|>|<)")
_HEREDOC = re.compile(r"""<<(-?)\s*(["']?)([A-Za-z0-9_.-]+)\2""")
_KEYWORDS_OPEN = frozenset({"if", "while", "until", "then", "do", "else", "elif", "case"})
_KEYWORDS_CLOSE = frozenset({"fi", "done", "esac"})


def _tokens(script: str) -> Iterator[tuple[str, str, int]]:
    """Yield ("word"|"op"|"redirect", text, offset); quotes and $( ) kept inside words."""
    i, n = 0, len(script)
    pending_heredocs: list[tuple[str, bool]] = []
    while i < n:
        c = script[i]
        if c == "\n":
            yield ("op", "\n", i)
            i += 1
            while pending_heredocs:
                delim, strip = pending_heredocs.pop(0)
                while i < n:
                    end = script.find("\n", i)
                    line = script[i : end if end >= 0 else n]
                    i = n if end < 0 else end + 1
                    if (line.lstrip("\t") if strip else line) == delim:
                        break
            continue
        if c in " \t\r":
            i += 1
            continue
        if c == "\\" and i + 1 < n and script[i + 1] == "\n":
            i += 2
            continue
        if c == "#":
            end = script.find("\n", i)
            i = n if end < 0 else end
            continue
        m = _REDIRECT.match(script, i)
        if m:
            op = m.group(2)
            j = m.end()
            while j < n and script[j] in " \t":
                j += 1
            start = j
            word_end = _word_end(script, j)
            target = script[start:word_end]
            if op in ("<<", "<<-"):
                hd = _HEREDOC.match(script, i + len(m.group(1)))
                if hd:
                    pending_heredocs.append((hd.group(3), op == "<<-"))
                    word_end = max(word_end, hd.end())
            yield ("redirect", (m.group(1) or "") + op + "\0" + target, i)
            i = word_end
            continue
        op = next((o for o in _OPERATORS if script.startswith(o, i)), None)
        if op is not None:
            yield ("op", op, i)
            i += len(op)
            continue
        end = _word_end(script, i)
        if end == i:  # a lone character no rule consumed: take it as a word
            end = i + 1
        yield ("word", script[i:end], i)
        i = end


def _word_end(script: str, i: int) -> int:
    n = len(script)
    while i < n:
        c = script[i]
        if c in " \t\r\n;&|()<>":
            return i
        if c == "\\":
            i += 2
        elif c in "'\"":
            end = i + 1
            while end < n and script[end] != c:
                end += 2 if (c == '"' and script[end] == "\\") else 1
            i = end + 1
        elif c == "$" and i + 1 < n and script[i + 1] in "({":
            close = _matching(script, i + 1, script[i + 1], ")" if script[i + 1] == "(" else "}")
            i = n if close < 0 else close + 1
        elif c == "`":
            end = script.find("`", i + 1)
            i = n if end < 0 else end + 1
        else:
            i += 1
    return min(i, n)


def _fallback(script: str) -> list[SimpleCommand]:
    commands: list[SimpleCommand] = []
    words: list[str] = []
    assignments: list[str] = []
    redirects: list[Redirect] = []
    scope: list[int] = []
    subshells = 0
    pipeline, pipe_index = 1, 0
    conditional_depth = 0
    after_or = False
    start = 0

    def flush() -> None:
        nonlocal words, assignments, redirects
        if words or assignments or redirects:
            commands.append(
                SimpleCommand(
                    words=tuple(words),
                    assignments=tuple(assignments),
                    redirects=tuple(redirects),
                    pipeline=pipeline,
                    pipe_index=pipe_index,
                    scope=tuple(scope),
                    conditional=conditional_depth > 0 or after_or,
                    offset=start,
                )
            )
        words, assignments, redirects = [], [], []

    for kind, text, offset in _tokens(script):
        if len(commands) >= MAX_COMMANDS:
            break
        if kind == "word":
            if not words and not assignments and not redirects:
                start = offset
                if text in _KEYWORDS_OPEN:
                    conditional_depth += 1
                    continue
                if text in _KEYWORDS_CLOSE:
                    conditional_depth = max(0, conditional_depth - 1)
                    continue
                if text in ("{", "}", "!", "for", "in"):
                    continue
            if not words and "=" in text and _NAME.match(text.split("=", 1)[0] or "-"):
                assignments.append(text)
            else:
                words.append(text)
        elif kind == "redirect":
            op, _, target = text.partition("\0")
            m = re.match(r"(\d*)(.*)", op)
            fd_text, op_only = (m.group(1), m.group(2)) if m else ("", op)
            redirects.append(Redirect(op_only, target, int(fd_text) if fd_text else None))
        else:
            flush()
            if text == "|":
                pipe_index += 1
                continue
            pipeline, pipe_index = pipeline + 1, 0
            if text == "(":
                subshells += 1
                scope.append(subshells)
            elif text == ")" and scope:
                scope.pop()
            elif text == "||":
                after_or = True
            elif text in (";", "\n", "&"):
                after_or = False
    flush()
    return commands


# -- helpers for callers ----------------------------------------------------------------------
def shell_c_script(argv: Sequence[str]) -> tuple[str, tuple[str, ...]] | None:
    """For ``sh -c SCRIPT [NAME [ARGS…]]`` (any shell, ``-ec``/``-lc``/``-o pipefail -c``):
    ``(SCRIPT, (NAME, ARGS…))``; None when ``argv`` is not a shell running a ``-c`` string."""
    if not argv:
        return None
    program = argv[0].rsplit("/", 1)[-1]
    rest = list(argv[1:])
    if program == "busybox":
        if not rest or rest[0] not in _SHELLS:
            return None
        rest = rest[1:]
    elif program not in _SHELLS:
        return None
    command_mode = False
    i = 0
    while i < len(rest):
        arg = rest[i]
        if arg == "--":
            i += 1
            break
        if arg in ("-o", "+o", "-O", "+O"):
            i += 2
            continue
        if arg.startswith("--"):
            i += 1
            continue
        if len(arg) > 1 and arg[0] in "-+" and arg[1:].isalpha():
            command_mode = command_mode or "c" in arg[1:]
            i += 1
            continue
        break
    if not command_mode or i >= len(rest):
        return None
    return rest[i], tuple(rest[i + 1 :])
