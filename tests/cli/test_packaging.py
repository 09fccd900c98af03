"""Packaging for PyPI: the sdist and the wheel built from this checkout (``python -m build
--no-isolation``: hatchling from the test environment, no network), their metadata and contents;
the one version (``unroot.__version__``) in the metadata, the CHANGELOG's latest release and the
pre-commit hook's documented pin.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

from unroot import __version__

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return out


def test_the_wheel(dist: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    assert wheel.name == f"unroot-{__version__}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        meta = Parser().parsestr(archive.read(f"unroot-{__version__}.dist-info/METADATA").decode())
        entry_points = archive.read(f"unroot-{__version__}.dist-info/entry_points.txt").decode()
    assert "unroot/py.typed" in names
    schemas = {n for n in names if n.startswith("unroot/schemas/")}
    shipped = {f"unroot/schemas/{p.name}" for p in (ROOT / "src/unroot/schemas").glob("*.json")}
    assert schemas == shipped
    assert len(shipped) >= 10
    assert f"unroot-{__version__}.dist-info/licenses/LICENSE" in names
    assert not any("__pycache__" in n or n.startswith("tests/") for n in names)
    assert "unroot = unroot.cli:main" in entry_points

    assert meta["Name"] == "unroot"
    assert meta["Version"] == __version__
    assert meta["License-Expression"] == "MIT"
    assert meta["Requires-Python"] == ">=3.11"
    classifiers = set(meta.get_all("Classifier") or ())
    assert {
        "Environment :: Console",
        "Operating System :: POSIX :: Linux",
        "Typing :: Typed",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
    } <= classifiers
    urls = dict(line.split(", ", 1) for line in meta.get_all("Project-URL") or ())
    assert {"Homepage", "Source", "Issues", "Changelog", "Documentation"} <= urls.keys()
    assert meta.get_content_type() == "text/markdown" or "Description-Content-Type" in meta
    assert {
        re.split(r"[<>=!~ ;]", r, maxsplit=1)[0] for r in meta.get_all("Requires-Dist") or ()
    } >= {"ruamel-yaml", "pyyaml", "dockerfile", "bashlex"}


def test_the_sdist(dist: Path) -> None:
    (sdist,) = dist.glob("*.tar.gz")
    assert sdist.name == f"unroot-{__version__}.tar.gz"
    with tarfile.open(sdist) as archive:
        names = {n.removeprefix(f"unroot-{__version__}/") for n in archive.getnames()}
    assert {
        "LICENSE", "README.md", "CHANGELOG.md", "pyproject.toml", "PKG-INFO", "action.yml",
        "Dockerfile", ".pre-commit-hooks.yaml", "src/unroot/py.typed", "src/unroot/cli.py",
    } <= names  # fmt: skip
    assert not any(n.startswith((".venv/", ".git/")) or "__pycache__" in n for n in names)


def test_license_is_mit() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License")
    assert 'license = "MIT"' in (ROOT / "pyproject.toml").read_text()


def test_one_version_everywhere() -> None:
    """The CHANGELOG's newest release is this version, dated; Unreleased sits above it."""
    changelog = (ROOT / "CHANGELOG.md").read_text()
    headings = re.findall(r"^## \[([^\]]+)\](.*)$", changelog, re.M)
    assert headings[0][0] == "Unreleased"
    version, date = headings[1]
    assert version == __version__
    assert re.fullmatch(r" - \d{4}-\d{2}-\d{2}", date)
    assert re.fullmatch(r"\d+\.\d+\.\d+", __version__)  # a release, taggable as v{version}
    assert f"[{__version__}]: " in changelog  # the tag's compare/release link


def test_a_release_tag_at_head_names_this_version() -> None:
    """A ``vX.Y.Z`` tag on the checked-out commit must be this version (the pin pre-commit's
    ``rev:`` and the Action's ``@vX.Y.Z`` use)."""
    done = subprocess.run(
        ["git", "tag", "--points-at", "HEAD", "--list", "v[0-9]*"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.skip("not a git checkout")
    for tag in done.stdout.split():
        assert tag == f"v{__version__}"


def test_pre_commit_hook_manifest() -> None:
    from ruamel.yaml import YAML

    hooks = YAML(typ="safe", pure=True).load((ROOT / ".pre-commit-hooks.yaml").read_text())
    (hook,) = (h for h in hooks if h["id"] == "unroot-lint")
    assert hook["entry"] == "unroot lint"
    assert hook["language"] == "python"
