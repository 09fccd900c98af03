"""Shared fixtures. Tests under tests/kernel/ need root and the live kernel."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root: differential tests run the live kernel")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)
