"""Shared fixtures. Tests under tests/kernel/ need root and the live kernel."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root: differential tests run the live kernel")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)


_DIFFERENTIAL = pytest.StashKey[list[str]]()


@pytest.fixture
def differential(request: pytest.FixtureRequest) -> Callable[..., None]:
    """Record a differential run (kind, seed, cases, disagreements) for the terminal summary."""
    lines = request.config.stash.setdefault(_DIFFERENTIAL, [])

    def record(kind: str, seed: int, cases: int, disagreements: int, note: str = "") -> None:
        lines.append(
            f"{kind:<7} UNROOT_DIFF_SEED={seed:<10} cases={cases:<5} "
            f"disagreements={disagreements}{'  ' + note if note else ''}"
        )

    return record


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    lines = config.stash.get(_DIFFERENTIAL, [])
    if lines:
        terminalreporter.section("differential tests against the live kernel")
        for line in lines:
            terminalreporter.write_line(line)
