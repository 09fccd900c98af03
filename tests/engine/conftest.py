"""Engine fixtures: a real Docker engine and the offline base image — or a test ERROR.

The session fixture runs ``scripts/docker-engine.sh`` (installs docker.io, starts dockerd) and
``scripts/base-image.sh`` (debootstrap-built ``unroot-base:bookworm``, cached by recipe hash).
Only a non-root run skips; any other failure to get an engine fails the tests that need it, so
the suite cannot pass silently without the engine.  Every container and image the tests create
carries the label ``org.unroot.test=<session>``; each scope removes its own, and the session
removes whatever is left with its label, and BuildKit build cache older than three days (the
cache has no labels; the tests' context files carry random bytes, so each run adds a few MB).
The cached base image is kept.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from _engine import BASE_IMAGE, LABEL, Engine, Lab, new_session, run_script

from unroot.engine.docker import Docker
from unroot.errors import UnrootError

#: BuildKit build cache older than this is pruned when the session ends.
BUILD_CACHE_KEPT = "72h"


def pytest_configure(config: pytest.Config) -> None:
    # Also listed in pyproject.toml; registering here keeps --strict-markers happy either way.
    config.addinivalue_line("markers", "engine: needs a live Docker engine (tests/engine)")


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    if os.geteuid() != 0:
        pytest.skip("needs root: the engine tests install and start dockerd")
    for script, args in (("docker-engine.sh", ()), ("base-image.sh", (BASE_IMAGE,))):
        done = run_script(script, *args)
        if done.returncode != 0:
            pytest.fail(
                f"no engine: scripts/{script} exited {done.returncode}: "
                f"{_last_line(done.stderr or done.stdout)}",
                pytrace=False,
            )
    try:
        docker = Docker()
        version = docker.version()["Server"]
        info = docker.info()
    except UnrootError as exc:
        pytest.fail(f"no engine: {exc}", pytrace=False)
    components = {c["Name"]: c["Version"] for c in version.get("Components") or ()}
    found = Engine(
        docker=docker,
        base=BASE_IMAGE,
        session=new_session(),
        server_version=version["Version"],
        components=components,
        storage_driver=str(info.get("Driver")),
    )
    yield found
    # Safety net: anything a test left behind under this session's label.
    for container in docker.containers(f"{LABEL}={found.session}"):
        docker.remove(container)
    images = docker.call(
        ["image", "ls", "--quiet", "--filter", f"label={LABEL}={found.session}"], check=False
    )
    for image in sorted(set(images.stdout.split())):
        docker.remove_image(image)
    # BuildKit keeps a build cache (no labels to select by): bound it to the last few days'.
    docker.prune_build_cache(until=BUILD_CACHE_KEPT)


@pytest.fixture
def lab(engine: Engine) -> Iterator[Lab]:
    """Per-test builds and containers, removed after the test."""
    scope = Lab(engine)
    yield scope
    scope.cleanup()


@pytest.fixture(scope="module")
def module_lab(engine: Engine) -> Iterator[Lab]:
    """Builds and containers shared by one module's tests, removed after the module."""
    scope = Lab(engine)
    yield scope
    scope.cleanup()
