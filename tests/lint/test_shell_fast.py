"""The fast path of :func:`unroot.sources.shell.parse_shell` agrees with the bashlex walk.

Whenever ``_fast_path`` accepts a script, its commands must equal, field by field (words,
assignments, redirects, pipeline numbers, positions, ``conditional``), what bashlex's tree
walk gives for the same script, and bashlex must have parsed it (``exact``).  Checked on
scripts generated from a grammar of the constructs the fast path accepts (plus the near
misses it must refuse), on random shell-ish text, on every script ``unroot lint`` parses in
the benchmark corpus (``bench/corpus.py``) and in ``tests/lint/fixtures``, and on the rule
documentation examples.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from unroot.lint.engine import lint_paths
from unroot.lint.registry import examples, load_rules
from unroot.sources import shell
from unroot.sources.shell import (
    Env,
    SimpleCommand,
    _fast_path,
    _parse_bashlex,
    expand_word,
    parse_shell,
)

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"


def assert_agrees(script: str) -> bool:
    """The fast path's answer equals bashlex's when it gives one; True when it did."""
    fast = _fast_path(script)
    if fast is None:
        return False
    slow = _parse_bashlex(script)
    assert slow.exact, (script, slow.error)
    assert tuple(fast) == slow.commands, script
    return True


# -- a grammar of what the fast path accepts, and of its near misses ----------------------------
_PLAIN = st.text(alphabet="abxyz019_-./=+:,@%*?[]!~é²\r#{}", min_size=1, max_size=5)
_QUOTED_TEXT = st.text(alphabet="ab 1\n\t;&|<>#{}$=\\\"'-", max_size=6)
_DOLLAR = st.sampled_from(
    ["$A", "$_x1", "$1", "$@", "$*", "$?", "$$", "$#", "$!", "$-", "$", "${A}", "${A:-b c}",
     "${#A}", "${A%%.*}", "${A/x/y}", "${}", "${A:+;&|}", "$é"]
)  # fmt: skip
_ESCAPE = st.sampled_from(list(" \n;&|<>'\"$\\#{}ab1")).map(lambda c: "\\" + c)
_CONTINUATION = st.just("\\\n")
_SINGLE = _QUOTED_TEXT.map(lambda t: "'" + t.replace("'", "") + "'")
_DOUBLE = st.lists(
    st.one_of(
        st.text(alphabet="ab 1\n\t;&|<>#{}='-", min_size=1, max_size=4),
        _DOLLAR.filter(lambda d: d != "$"),
        _ESCAPE,
    ),
    max_size=4,
).map(lambda parts: '"' + "".join(parts) + '"')
_PIECE = st.one_of(_PLAIN, _PLAIN, _SINGLE, _DOUBLE, _ESCAPE, _DOLLAR, _CONTINUATION)
_WORD = st.one_of(
    st.lists(_PIECE, min_size=1, max_size=4).map("".join),
    st.sampled_from(
        ["if", "then", "done", "{", "}", "!", "[[", "time", "in", "function", "for", "{}",
         "A=1", "A+=x", "_b=", "A=\"x y\"", "1A=x", "A\"b\"=x", "é=1", "A\\\n=1", "A[1]=x",
         "2", "007", "²", "-", "#", "#x"]
    ),
)  # fmt: skip
_REDIRECT = st.builds(
    lambda fd, op, gap, target: fd + op + gap + target,
    st.sampled_from(["", "", "0", "2", "12", "007", "²", "2\\\n"]),
    st.sampled_from([">", ">>", "<", ">&", "<&", "&>", "&>>", ">|", "<>", ">\\\n>", "&\\\n>"]),
    st.sampled_from(["", " ", "\\\n", " \\\n "]),
    st.one_of(_WORD, st.sampled_from(["1", "2", "02", "-", "2x"])),
)
_BLANK = st.sampled_from([" ", " ", "  ", "\t", " \\\n ", " \\\n", "\\\n "])
_COMMAND = st.builds(
    lambda items, gaps: "".join(item + gap for item, gap in zip(items, gaps, strict=False)),
    st.lists(st.one_of(_WORD, _WORD, _REDIRECT), min_size=1, max_size=5),
    st.lists(_BLANK, min_size=5, max_size=5),
)
_PIPE = st.sampled_from(["|", " | ", " |\n ", "|\\\n", " | # c\n", "|&", "||"])
_PIPELINE = st.lists(_COMMAND, min_size=1, max_size=3).flatmap(
    lambda cmds: st.lists(_PIPE, min_size=len(cmds), max_size=len(cmds)).map(
        lambda pipes: "".join(c + p for c, p in zip(cmds, pipes, strict=True))[: -len(pipes[-1])]
    )
)
_OPERATOR = st.sampled_from(
    ["&&", " && ", "||", " || ", "; ", " ;\t", "& ", " & ", "\n", "\n\n", " && \\\n ", "&&\n",
     "||\n\n", " # c\n", ";# c\n", "&# c\n", ";\n", " ;\n# c\n", "\\\n&&", "&\\\n&", ";;", "(",
     ")", "\n;", " &&# c\n "]
)  # fmt: skip
_TRAIL = st.sampled_from(["", "", ";", " &", "\n", " # c", "\n# c", "\\\n", "&&", "\\"])
_LEAD = st.sampled_from(["", "", "\n", "# c\n", " \\\n", "\t"])


@st.composite
def scripts(draw: st.DrawFn) -> str:
    pipelines = draw(st.lists(_PIPELINE, min_size=1, max_size=4))
    operators = draw(st.lists(_OPERATOR, min_size=len(pipelines), max_size=len(pipelines)))
    body = "".join(p + o for p, o in zip(pipelines, operators, strict=True))
    return draw(_LEAD) + body[: -len(operators[-1])] + draw(_TRAIL)


@pytest.mark.parametrize(
    "script",
    ["$${A:-b c}", 'echo "$${A:-b c}" x', "a$$${A}", "echo $$ ${A:-b c}"],
)
def test_dollar_dollar_before_a_brace_is_the_pid(script: str) -> None:
    """``$$`` is the PID: in ``$${A:-b c}`` the brace is plain text and the space splits the
    word, as bash (and bashlex) read it; hypothesis found the fast path reading ``${…}``."""
    assert_agrees(script)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scripts())
def test_fast_path_equals_bashlex_near_its_edges(script: str) -> None:
    event("fast path" if assert_agrees(script) else "bashlex")


# -- the subset alone: the fast path must take every one of these -------------------------------
_RESERVED = shell._RESERVED
_NEEDS_BASHLEX = shell._NEEDS_BASHLEX  # the text it leaves to bashlex, wherever it appears
_FIRST = "abxyz019_-./=+:,@%*?[]~é²\r"
_C_PLAIN = st.builds(
    str.__add__,
    st.text(alphabet=_FIRST, min_size=1, max_size=1),
    st.text(alphabet=_FIRST + "#{}!", max_size=4),
)
_C_SINGLE = st.text(alphabet='ab 1\n\t;&|#{}="-', max_size=6).map(lambda t: f"'{t}'")
_C_DOLLAR = _DOLLAR.filter(lambda d: d != "$")
_C_ESCAPE = st.sampled_from(list(" ;&|'\"\\#{}ab1")).map(lambda c: "\\" + c)
_C_DOUBLE = st.lists(
    st.one_of(st.text(alphabet="ab 1\n\t;&|#{}='-", min_size=1, max_size=4), _C_DOLLAR, _C_ESCAPE),
    max_size=4,
).map(lambda parts: '"' + "".join(parts) + '"')
_C_WORD = st.builds(
    str.__add__,
    st.one_of(_C_PLAIN, _C_SINGLE, _C_DOUBLE, _C_ESCAPE, _C_DOLLAR),
    st.lists(
        st.one_of(_C_PLAIN, _C_SINGLE, _C_DOUBLE, _C_ESCAPE, _C_DOLLAR, _CONTINUATION),
        max_size=3,
    ).map("".join),
).filter(lambda w: w.replace("\\\n", "") not in _RESERVED and not _NEEDS_BASHLEX.search(w))
_C_ASSIGNMENT = st.builds(
    lambda name, op, value: name + op + value,
    st.sampled_from(["A", "_b", "x1", "é", "A\\\n"]),
    st.sampled_from(["=", "+="]),
    st.one_of(st.just(""), _C_WORD),
)
_C_REDIRECT = st.one_of(
    st.builds(
        lambda fd, op, gap, target: fd + op + gap + target,
        st.sampled_from(["", "", "0", "2", "12", "007", "2\\\n", "²"]),
        st.sampled_from([">", ">>", "<", "&>", "&>>", ">|", "<>", "&\\\n>"]),
        st.sampled_from(["", " ", " \\\n "]),
        _C_WORD.filter(lambda w: w[0] not in "-#"),
    ),
    st.builds(
        lambda fd, op, gap, target: fd + op + gap + target,
        st.sampled_from(["", "1", "2"]),
        st.sampled_from([">&", "<&"]),
        st.sampled_from(["", " "]),
        st.sampled_from(["1", "2", "02", "2x", "file", "$F"]),
    ),
)
_C_COMMAND = st.builds(
    lambda items, gaps: "".join(gap + item for gap, item in zip(gaps, items, strict=False))[
        len(gaps[0]) :
    ],
    st.builds(
        list.__add__,
        st.lists(_C_ASSIGNMENT, max_size=2),
        st.lists(st.one_of(_C_WORD, _C_WORD, _C_REDIRECT), max_size=4),
    ).filter(bool),
    st.lists(_BLANK, min_size=6, max_size=6),
)
_C_PIPELINE = st.lists(_C_COMMAND, min_size=1, max_size=3).flatmap(
    lambda cmds: st.lists(
        st.sampled_from(["| ", " | ", " |\n ", " | # c\n"]), min_size=len(cmds), max_size=len(cmds)
    ).map(lambda pipes: "".join(c + p for c, p in zip(cmds, pipes, strict=True))[: -len(pipes[-1])])
)
_C_OPERATOR = st.sampled_from(
    ["&&", " && ", "||", " || ", "; ", " ;\t", "& ", " & ", "\n", "\n\n", " && \\\n ", "&&\n",
     "||\n\n", " # c\n", ";\n", " ;\n# c\n", "&&\\\n", "\\\n&&"]
)  # fmt: skip


@st.composite
def simple_scripts(draw: st.DrawFn) -> str:
    pipelines = draw(st.lists(_C_PIPELINE, min_size=1, max_size=4))
    operators = draw(st.lists(_C_OPERATOR, min_size=len(pipelines), max_size=len(pipelines)))
    body = "".join(p + o for p, o in zip(pipelines, operators, strict=True))
    lead = draw(st.sampled_from(["", "", "\n", "# c\n", " \\\n", "\t"]))
    trail = draw(st.sampled_from(["", "", ";", " &", "\n", " # c", "\n# c"]))
    script = lead + body[: -len(operators[-1])] + trail
    assume(not _NEEDS_BASHLEX.search(script))  # `$$` before a continuation, say
    return script + "\n" if script.endswith("\\\n") else script  # bashlex fails on that


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(simple_scripts())
def test_fast_path_takes_and_equals_bashlex_on_its_subset(script: str) -> None:
    assert assert_agrees(script), script


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet="ab1= \t\n;&|<>'\"\\$#{}2-", max_size=24))
def test_fast_path_equals_bashlex_on_random_text(script: str) -> None:
    event("fast path" if assert_agrees(script) else "bashlex")


def test_typical_run_lines_take_the_fast_path() -> None:
    script = "A=1 apt-get install -y \"$PKG\" 'x y' >/dev/null 2>&1 && rm -rf /var/lib/apt/lists/*"
    assert assert_agrees(script)
    assert assert_agrees("set -eux; \\\n  addgroup -S app || true\n  adduser app | tee log &")


@pytest.mark.parametrize(
    ("script", "fast"),
    [
        ("echo $(id -u)", False),  # command substitution
        ("(cd /x && make)", False),  # subshell
        ("if true; then a; fi", False),
        ("cat <<EOF\nx\nEOF", False),
        ("echo 'a", False),  # unbalanced
        ("a;;b", False),  # syntax error: bashlex's error and fallback stay
        ("# only a comment", False),  # bashlex fails on it: keep its answer
        ("a ;# not a comment to bashlex\nb", False),
        ("a && b || c; d", True),
        ("x=1 y=2", True),
    ],
)
def test_what_takes_the_fast_path(script: str, fast: bool) -> None:
    assert (_fast_path(script) is not None) is fast
    assert parse_shell(script) == _parse_bashlex(script)


def test_conditional_follows_bashlex_lists() -> None:
    """After ``||`` the rest of the line may not run; a newline starts a new list."""
    commands = parse_shell("a || b; c\nd").commands
    assert [(c.words, c.conditional) for c in commands] == [
        (("a",), False),
        (("b",), True),
        (("c",), True),
        (("d",), False),
    ]


# -- every script unroot lint parses in the corpus and the fixtures ------------------------------
def _recorded(paths: list[str], monkeypatch: pytest.MonkeyPatch) -> set[str]:
    seen: set[str] = set()
    original = shell._fast_path

    def record(script: str) -> list[SimpleCommand] | None:
        seen.add(script)
        return original(script)

    monkeypatch.setattr(shell, "_fast_path", record)
    lint_paths(paths)
    monkeypatch.setattr(shell, "_fast_path", original)
    return seen


def _corpus_module() -> object:
    name = "unroot_bench_corpus"
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / "corpus.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_every_script_of_the_benchmark_corpus(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = _corpus_module().generate(tmp_path / "corpus", 1, 1.0)  # type: ignore[attr-defined]
    monkeypatch.chdir(corpus.root)
    scripts = _recorded(["."], monkeypatch)
    assert len(scripts) > 500
    fast = [script for script in sorted(scripts) if assert_agrees(script)]
    assert len(fast) >= 0.95 * len(scripts), set(scripts) - set(fast)


def test_every_script_of_the_fixtures(monkeypatch: pytest.MonkeyPatch) -> None:
    scripts = _recorded([str(FIXTURES)], monkeypatch)
    assert scripts
    for script in sorted(scripts):
        assert_agrees(script)


def _doc_scripts() -> Iterator[str]:
    for info in load_rules().values():
        for example in examples(info):
            for text in dict(example.files).values():
                for line in text.splitlines():
                    if line.startswith("RUN "):
                        yield line[4:]


def test_every_run_line_of_the_rule_docs() -> None:
    scripts = sorted(set(_doc_scripts()))
    assert scripts
    for script in scripts:
        assert_agrees(script)


# -- expand_word's shortcut for words with nothing to expand -------------------------------------
@settings(max_examples=500, deadline=None)
@given(
    st.text(alphabet="ab/-.=$'\"\\`{}:", max_size=12),
    st.sampled_from(["\\", "`"]),
    st.dictionaries(st.sampled_from(["a", "b", "A"]), st.one_of(st.none(), st.text(max_size=3))),
)
def test_expand_word_shortcut_is_the_full_expansion(raw: str, escape: str, env: Env) -> None:
    out: list[str] = []
    complete = shell._expand_into(raw, shell._Scope(env, escape, ()), out, 0)
    assert expand_word(raw, env, escape) == shell.Expanded("".join(out), complete)


@pytest.mark.parametrize("script", ["echo \"a\"'${'", "\"x\"'${' '}'", "A=\"\"'${'"])
def test_bashlex_does_not_loop_forever_on_an_unclosed_brace(script: str) -> None:
    """bashlex 0.18 loops forever on these; parse_shell falls back to its tokenizer."""
    parsed = parse_shell(script)
    assert not parsed.exact
    assert parsed.error is not None
    assert "no closing" in parsed.error


@pytest.mark.parametrize(
    "script", ['echo "' + "ab" * 50_000, "echo '" + "a b" * 50_000, "a" * 100_000 + '"']
)
def test_unbalanced_quotes_are_refused_in_linear_time(script: str) -> None:
    """A greedy regex would try every way to split the unterminated run (exponential)."""
    assert _fast_path(script) is None
