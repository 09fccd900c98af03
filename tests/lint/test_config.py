"""`.unroot.toml` / `[tool.unroot]` / `--config FILE`."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from unroot.errors import UsageError
from unroot.lint.config import LintConfig, find_config, load_config, load_config_file

FULL = """\
select = ["UR1", "bind-fails"]
ignore = ["ur105"]
failure-threshold = "warning"
runtime = "containerd2"
exclude = ["charts/", "*.generated.yaml"]

[images]
"registry.example.org/web:1.4" = "images/web/Dockerfile"
"ghcr.io/acme/api" = "../api/Containerfile"
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_full_file(tmp_path: Path) -> None:
    config_path = write(tmp_path / "repo" / ".unroot.toml", FULL)
    config = load_config_file(str(config_path))
    assert config.path == str(config_path)
    assert config.select == ("UR1", "bind-fails")
    assert config.ignore == ("UR105",)
    assert config.failure_threshold == "warning"
    assert config.runtime == "containerd2"
    assert config.exclude == ("charts/", "*.generated.yaml")
    repo = str(tmp_path / "repo")
    assert config.images == (
        ("registry.example.org/web:1.4", f"{repo}/images/web/Dockerfile"),
        ("ghcr.io/acme/api", f"{tmp_path}/api/Containerfile"),
    )
    assert config.dockerfile_for("registry.example.org/web:1.4") == f"{repo}/images/web/Dockerfile"
    assert config.dockerfile_for("registry.example.org/web:1.5") is None  # a tag pins it
    assert config.dockerfile_for("ghcr.io/acme/api:2.0") == f"{tmp_path}/api/Containerfile"
    assert config.dockerfile_for("ghcr.io/acme/api@sha256:abc") == f"{tmp_path}/api/Containerfile"


def test_found_in_a_parent_and_stops_at_the_repo_root(tmp_path: Path) -> None:
    write(tmp_path / ".unroot.toml", 'runtime = "docker"\n')  # above the repository: not used
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    deep = repo / "deploy" / "k8s"
    deep.mkdir(parents=True)
    assert find_config(str(deep)) is None
    assert load_config(str(deep)) == LintConfig()
    write(repo / ".unroot.toml", 'runtime = "cri-o"\n')
    assert load_config(str(deep)).runtime == "cri-o"
    assert load_config(str(deep / "web.yaml")).runtime == "cri-o"  # a file: its directory


def test_pyproject_tool_table_and_precedence(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    write(tmp_path / "pyproject.toml", '[project]\nname = "x"\n')
    sub = tmp_path / "svc"
    write(sub / "pyproject.toml", '[tool.unroot]\nignore = ["UR104"]\n')
    assert find_config(str(sub)) == str(sub / "pyproject.toml")
    assert load_config(str(sub)).ignore == ("UR104",)
    assert find_config(str(tmp_path)) is None  # pyproject without [tool.unroot] does not count
    write(sub / ".unroot.toml", 'ignore = ["UR105"]\n')
    assert load_config(str(sub)).ignore == ("UR105",)  # .unroot.toml wins in one directory


def test_explicit_config(tmp_path: Path) -> None:
    explicit = write(tmp_path / "conf" / "lint.toml", 'failure-threshold = "info"\n')
    write(tmp_path / ".unroot.toml", 'failure-threshold = "error"\n')
    assert load_config(str(tmp_path), explicit=str(explicit)).failure_threshold == "info"
    pyproject = write(tmp_path / "other" / "pyproject.toml", '[tool.unroot]\nruntime = "docker"\n')
    assert load_config(explicit=str(pyproject)).runtime == "docker"
    with pytest.raises(UsageError, match="no such config file"):
        load_config(explicit=str(tmp_path / "missing.toml"))


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('selcet = ["UR1"]\n', "selcet: unknown key"),
        ('failure_threshold = "error"\n', "did you mean 'failure-threshold'"),
        ('failure-threshold = "fatal"\n', "failure-threshold: 'fatal'"),
        ('runtime = "lxc"\n', "runtime: 'lxc'"),
        ("select = 3\n", "select: expected a list"),
        ('ignore = ["UR1 04"]\n', "ignore: 'UR1 04' is not a rule ID"),
        ("exclude = [1]\n", "exclude: expected a list of glob patterns"),
        ('images = "x"\n', "images: expected a table"),
        ("[images]\nweb = 1\n", "images.web: expected a Dockerfile path"),
        ("select = [\n", "invalid TOML"),
    ],
)
def test_bad_config_is_one_usage_error_line(tmp_path: Path, text: str, needle: str) -> None:
    path = write(tmp_path / ".unroot.toml", text)
    with pytest.raises(UsageError) as info:
        load_config(str(tmp_path))
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert needle in message
    assert "\n" not in message


def test_pyproject_without_tool_table_given_explicitly(tmp_path: Path) -> None:
    path = write(tmp_path / "pyproject.toml", '[project]\nname = "x"\n')
    with pytest.raises(UsageError, match=r"tool\.unroot: no \[tool\.unroot\] table"):
        load_config_file(str(path))


def test_selectors_as_a_comma_string(tmp_path: Path) -> None:
    path = write(tmp_path / ".unroot.toml", 'select = "UR104, caps-ignored"\n')
    assert load_config_file(str(path)).select == ("UR104", "caps-ignored")


def test_unreadable_file(tmp_path: Path) -> None:
    directory = tmp_path / "conf.toml"
    directory.mkdir()
    with pytest.raises(UsageError, match="cannot read"):
        load_config_file(str(directory))


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / ".unroot.toml"
    path.write_bytes(b'runtime = "\xff"\n')
    with pytest.raises(UsageError, match="invalid TOML"):
        load_config_file(str(path))


def test_images_resolve_from_the_config_directory_whatever_its_form(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same file however the config was named (the engine compares by absolute path), and
    absolute when the config is found by walking up, as the command line finds it."""
    write(tmp_path / "repo" / ".unroot.toml", '[images]\n"web" = "images/../web/Dockerfile"\n')
    (tmp_path / "repo" / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    expected = f"{tmp_path}/repo/web/Dockerfile"
    for path in ("repo/.unroot.toml", "./repo/.unroot.toml", str(tmp_path / "repo/.unroot.toml")):
        ((_, dockerfile),) = load_config_file(path).images
        assert os.path.abspath(dockerfile) == expected
    for start in ("repo", "./repo/sub", str(tmp_path / "repo")):
        assert load_config(start).images == (("web", expected),)


def test_severity_table_and_threshold_none(tmp_path: Path) -> None:
    path = write(
        tmp_path / ".unroot.toml",
        'failure-threshold = "none"\n[severity]\nur106 = "Error"\nruns-as-root = "off"\n'
        'UR1 = "info"\nUR109 = "none"\n',
    )
    config = load_config_file(str(path))
    assert config.failure_threshold == "none"
    # in the file's order (a later entry wins), ids upper-cased, "off" is "none"
    assert config.severity == (
        ("UR106", "error"),
        ("runs-as-root", "none"),
        ("UR1", "info"),
        ("UR109", "none"),
    )
    pyproject = write(
        tmp_path / "p" / "pyproject.toml", '[tool.unroot.severity]\nUR104 = "warning"\n'
    )
    assert load_config_file(str(pyproject)).severity == (("UR104", "warning"),)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('[severity]\nUR104 = "fatal"\n', "severity.UR104: 'fatal': expected"),
        ('[severity]\n"UR104 UR105" = "error"\n', "severity.UR104 UR105"),
        ("severity = []\n", "severity: expected a table"),
        (
            'failure-threshold = "never"\n',
            "failure-threshold: 'never': expected error|warning|info|none",
        ),
    ],
)
def test_bad_severity_table(tmp_path: Path, text: str, needle: str) -> None:
    path = write(tmp_path / ".unroot.toml", text)
    with pytest.raises(UsageError, match=re.escape(needle)):
        load_config_file(str(path))


def test_a_byte_order_mark_is_dropped(tmp_path: Path) -> None:
    """Windows editors write one; tomllib refuses it ("Invalid statement" at line 1)."""
    path = tmp_path / ".unroot.toml"
    path.write_bytes(b'\xef\xbb\xbfselect = ["UR105"]\n')
    assert load_config_file(str(path)).select == ("UR105",)
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_bytes(b'\xef\xbb\xbf[tool.unroot]\nignore = ["UR106"]\n')
    assert load_config_file(str(pyproject)).ignore == ("UR106",)


@pytest.mark.parametrize("make", ["directory", "fifo", "broken link"])
def test_a_found_config_that_is_no_file_is_an_error(tmp_path: Path, make: str) -> None:
    """Not passed over for a parent's config (whose rules the user did not mean)."""
    (tmp_path / ".git").mkdir()
    write(tmp_path / ".unroot.toml", 'ignore = ["UR106"]\n')
    sub = tmp_path / "app"
    sub.mkdir()
    bad = sub / ".unroot.toml"
    if make == "directory":
        bad.mkdir()
    elif make == "fifo":
        os.mkfifo(bad)
    else:
        bad.symlink_to("nowhere")
    said = {"directory": "is a directory", "fifo": "a FIFO", "broken link": "a symbolic link"}
    with pytest.raises(UsageError, match=said[make]):
        find_config(str(sub))
