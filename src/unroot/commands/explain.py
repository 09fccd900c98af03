"""``unroot explain``: ask the pure model exec, bind and access questions."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser("explain", help="ask the kernel model")
    parser.set_defaults(handler=None)
