"""The doctor tests use the engine tests' fixtures (a real Docker engine and the offline base
image, tests/engine/conftest.py) and the rootless engines of scripts/rootless-engines.sh."""

from __future__ import annotations

import importlib.util
import pwd
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ENGINE_TESTS = Path(__file__).resolve().parents[1] / "engine"
if str(ENGINE_TESTS) not in sys.path:
    sys.path.insert(0, str(ENGINE_TESTS))

from _doctor import ROOTLESS_USER, Rootless  # noqa: E402
from _engine import LABEL, Engine, rootless_engines_lock  # noqa: E402

_spec = importlib.util.spec_from_file_location("engine_fixtures", ENGINE_TESTS / "conftest.py")
assert _spec is not None
assert _spec.loader is not None
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)
engine = _fixtures.engine
lab = _fixtures.lab
module_lab = _fixtures.module_lab

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "rootless-engines.sh"


def _subid_start(path: str, user: str) -> int:
    for line in Path(path).read_text().splitlines():
        name, start, _count = line.split(":")
        if name == user:
            return int(start)
    raise AssertionError(f"{user} has no range in {path}")


@pytest.fixture(scope="module")
def rootless(engine: Engine) -> Iterator[Rootless]:
    """Both rootless engines up (started by the script when needed), or a skip saying why;
    the engines' lock held shared meanwhile; this session's containers removed after."""
    with rootless_engines_lock():
        done = subprocess.run(
            ["bash", str(SCRIPT), "start"], capture_output=True, text=True, timeout=600, check=False
        )
        if done.returncode != 0:
            why = (done.stderr or done.stdout).strip().splitlines() or ["(no output)"]
            pytest.skip(f"rootless engines not up: {why[-1]}")
        found = Rootless(
            user=ROOTLESS_USER,
            uid=pwd.getpwnam(ROOTLESS_USER).pw_uid,
            subuid_start=_subid_start("/etc/subuid", ROOTLESS_USER),
            subgid_start=_subid_start("/etc/subgid", ROOTLESS_USER),
            image=engine.base,
            session=engine.session,
        )
        yield found
        for kind in ("docker", "podman"):
            cli = found.cli(kind)
            ids = subprocess.run(
                [*cli, "ps", "-aq", "--filter", f"label={LABEL}={found.session}"],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            if ids.stdout.split():
                extra = ["--time", "0"] if kind == "podman" else []
                subprocess.run(
                    [*cli, "rm", "-f", *extra, *ids.stdout.split()],
                    capture_output=True,
                    timeout=120,
                    check=False,
                )
