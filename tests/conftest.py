"""Shared fixtures. Tests under tests/kernel/ need root and the live kernel."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]


def _checkout_readable_by_nobody() -> bool:
    """Can an unprivileged user read this checkout (every directory above it searchable)?"""
    probe = REPO / "bench" / "backend" / "httpd.py"
    try:
        done = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
             "test", "-r", str(probe)],
            check=False, capture_output=True, timeout=10,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() != 0:
        skip = pytest.mark.skip(reason="needs root: differential tests run the live kernel")
        for item in items:
            if "root" in item.keywords:
                item.add_marker(skip)
        return
    wanting = [item for item in items if "unprivileged_reads_checkout" in item.keywords]
    if wanting and not _checkout_readable_by_nobody():
        skip = pytest.mark.skip(
            reason=f"an unprivileged user cannot read the checkout {REPO} (a directory above "
            "it is not searchable by others): services run as nobody load files from it"
        )
        for item in wanting:
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
