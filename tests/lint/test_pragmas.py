"""parse_pragmas: ``# unroot: ignore=`` / ``ignore-file=`` for every '#'-commented format."""

from __future__ import annotations

import textwrap

import pytest
from hypothesis import given
from hypothesis import strategies as st

from unroot.sources.pragmas import Pragmas, parse_pragmas


def pragmas(text: str, **kwargs: object) -> Pragmas:
    return parse_pragmas(textwrap.dedent(text).lstrip("\n"), **kwargs)  # type: ignore[arg-type]


def test_next_statement_every_line_of_it() -> None:
    result = pragmas(
        """
        FROM alpine
        # unroot: ignore=UR104,UR105
        RUN apk add libcap \\
         && setcap cap_net_bind_service=+ep /usr/sbin/nginx
        USER nginx
        """,
        statements=[(1, 1), (3, 4), (5, 5)],
    )
    assert result.line_ignores == ((3, "UR104"), (3, "UR105"), (4, "UR104"), (4, "UR105"))
    assert result.file_ignores == ()
    assert result.problems == ()


def test_next_non_blank_non_comment_line_without_statements() -> None:
    result = pragmas("""
        services:
          web:
            # unroot: ignore=UR120

            # another comment
            user: root
        """)
    assert result.line_ignores == ((6, "UR120"),)


def test_trailing_pragma_applies_to_its_own_line_when_allowed() -> None:
    text = 'ports: ["80:80"]  # unroot: ignore=UR104 -- the sysctl is set by the chart\n'
    assert parse_pragmas(text, trailing=True).line_ignores == ((1, "UR104"),)
    assert parse_pragmas(text).line_ignores == ()  # Dockerfile: '#' belongs to the shell


def test_file_wide_and_spelling_variants() -> None:
    result = pragmas("""
        #unroot:ignore-file=ur110
        # unroot: ignore-file = UR111 , caps-lost-in-build
        [Service]
        #  UNROOT : ignore=UR200 reason: the unit file is generated
        User=www
        """)
    assert result.file_ignores == ("UR110", "UR111", "caps-lost-in-build")
    assert result.line_ignores == ((5, "UR200"),)
    assert result.problems == ()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("# unroot: ignor=UR104", "malformed"),
        ("# unroot: ignore=", "malformed"),
        ("# unroot: ignore=UR10A", "unknown rule"),
        ("# unroot: ignore=UR104;UR105", "unknown rule"),
        ("# unroot: ignore=UR104,", "malformed"),
    ],
)
def test_malformed_pragmas_are_problems(line: str, message: str) -> None:
    result = parse_pragmas(f"{line}\nUSER root\n")
    assert result.problems
    assert result.problems[0][0] == 1
    assert message in result.problems[0][1]


def test_a_pragma_with_nothing_after_it_is_a_problem() -> None:
    result = parse_pragmas("FROM alpine\n# unroot: ignore=UR104\n", statements=[(1, 1)])
    assert result.line_ignores == ()
    assert [line for line, _ in result.problems] == [2]


def test_ordinary_comments_mentioning_unroot_are_not_pragmas() -> None:
    result = parse_pragmas("# built with unroot in mind\n# see unroot docs: ignore nothing\nX\n")
    assert result == Pragmas()


@given(st.text(max_size=200), st.booleans())
def test_never_raises(text: str, trailing: bool) -> None:
    result = parse_pragmas(text, trailing=trailing)
    lines = len(text.splitlines())
    assert all(1 <= line <= lines for line, _ in result.line_ignores)
