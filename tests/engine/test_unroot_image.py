"""unroot's own container image: the repository's ``Dockerfile`` built FROM the offline base
image and run on the bundled examples.

The build context is the checkout's ``Dockerfile``, ``.dockerignore``, ``pyproject.toml``,
``README.md``, ``LICENSE`` and ``src/``, plus ``wheels/``: hatchling and unroot's dependencies
downloaded on the host by pip (its configured index: a package registry, never a container
registry), passed as ``PIP_ARGS="--no-index --find-links /build/wheels"``.  The debootstrap base
has no Python: the Dockerfile's first stage gets python3 (3.11) from Debian's archive.  Stages are
tagged with the session label and removed with the final image.

The image's ``lint`` of ``examples/`` (mounted read-only, run as the image's non-root user) must
print byte for byte what the installed CLI prints for the same directory, in JSON and text.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from _engine import Lab

from unroot.engine.docker import RunOptions

pytestmark = [pytest.mark.engine, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CONTEXT_FILES = ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md", "LICENSE")
#: What the build needs, read from pyproject.toml: a dependency added there is downloaded too
_PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
REQUIREMENTS = (*_PYPROJECT["build-system"]["requires"], *_PYPROJECT["project"]["dependencies"])


def _context(into: Path) -> Path:
    for name in CONTEXT_FILES:
        shutil.copy2(ROOT / name, into / name)
    shutil.copytree(
        ROOT / "src", into / "src", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    wheels = into / "wheels"
    done = subprocess.run(
        [
            sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
            "--only-binary=:all:", "--implementation", "cp", "--python-version", "3.11",
            "--platform", "manylinux2014_x86_64", "--platform", "manylinux1_x86_64",
            "--dest", str(wheels), *REQUIREMENTS,
        ],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.fail(f"pip download: {done.stderr.strip().splitlines()[-1:]}", pytrace=False)
    return into


@pytest.fixture(scope="module")
def image(module_lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> str:
    context = _context(tmp_path_factory.mktemp("unroot-image"))
    return module_lab.build(
        context,
        "unroot-image",
        build_args={"PIP_ARGS": "--no-index --find-links /build/wheels"},
        stages=("python", "build"),
    )


def _in_image(lab: Lab, image: str, *argv: str) -> tuple[int, str]:
    options = RunOptions(extra=("--volume", f"{ROOT / 'examples'}:/src:ro"))
    done = lab.run(image, argv, options, timeout=120)
    return done.returncode, done.stdout


def _on_host(*argv: str, cwd: Path) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "unroot", *argv],
        cwd=cwd, capture_output=True, text=True, timeout=120, check=False,
        env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1", "COLUMNS": "100"},
    )  # fmt: skip
    return done.returncode, done.stdout


def test_image_config(module_lab: Lab, image: str) -> None:
    config = json.loads(module_lab.docker.call(["image", "inspect", image]).stdout)[0]["Config"]
    assert config["Entrypoint"] == ["unroot"]
    assert config["User"] not in ("", "0", "root")
    assert not config["User"].startswith("0:")
    assert config["WorkingDir"] == "/src"
    code, out = _in_image(module_lab, image, "--version")
    assert (code, out.split()[0]) == (0, "unroot")


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_image_lints_examples_like_the_cli(module_lab: Lab, image: str, fmt: str) -> None:
    in_image = _in_image(module_lab, image, "lint", "--format", fmt, ".")
    on_host = _on_host("lint", "--format", fmt, ".", cwd=ROOT / "examples")
    assert in_image == on_host
    assert in_image[0] == 1  # the examples show broken situations on purpose
    if fmt == "json":
        assert json.loads(in_image[1])["findings"]
