"""``unroot caps``: decode masks, read file capabilities, show a process, scan trees."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser("caps", help="inspect capabilities")
    parser.set_defaults(handler=None)
