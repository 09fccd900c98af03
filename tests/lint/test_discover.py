"""Which files `unroot lint` reads, and as what."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from unroot.errors import UsageError
from unroot.lint.discover import MAX_DEPTH, TOO_DEEP, UNKNOWN_KIND, discover
from unroot.sources.kinds import kind_by_content, kind_by_name

K8S = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n"
COMPOSE = "services:\n  web:\n    image: nginx\n"


def write(root: Path, relative: str, text: str = "") -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("Dockerfile", "dockerfile"),
        ("dockerfile", "dockerfile"),
        ("Dockerfile.prod", "dockerfile"),
        ("api.Dockerfile", "dockerfile"),
        ("Containerfile", "dockerfile"),
        ("Containerfile.arm64", "dockerfile"),
        ("web.containerfile", "dockerfile"),
        ("Dockerfile.dockerignore", None),
        ("compose.yaml", "compose"),
        ("compose.yml", "compose"),
        ("compose.override.yaml", "compose"),
        ("docker-compose.yml", "compose"),
        ("docker-compose.prod.yaml", "compose"),
        ("docker-compose-dev.yml", "compose"),
        ("caddy.service", "systemd"),
        ("caddy.socket", "systemd"),
        ("getty@.service", "systemd"),
        ("deployment.yaml", None),
        ("compose.json", None),
        ("README.md", None),
    ],
)
def test_kind_by_name(name: str, kind: str | None) -> None:
    assert kind_by_name(f"some/dir/{name}") == kind


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        (K8S, "k8s"),
        ("---\n# comment\napiVersion: v1\nkind: List\nitems: []\n", "k8s"),
        ("kind: Pod\napiVersion: v1\n", "k8s"),
        (COMPOSE, "compose"),
        ("version: '3'\nservices: {}\n", "compose"),
        ("spec:\n  apiVersion: v1\n  kind: x\n", None),  # not top-level
        ("apiVersion: v2\nname: chart\n", None),  # a Helm Chart.yaml has no kind
        ("replicaCount: 1\n", None),
        ('"apiVersion": v1\n"kind": Pod\n', "k8s"),  # quoted keys are the same keys
        ("'apiVersion': v1\nkind: Pod\n", "k8s"),
        ("'services':\n  web: {image: nginx}\n", "compose"),
        ('"services" :\n  web: {image: nginx}\n', "compose"),
        ("\"apiVersion': v1\nkind: Pod\n", None),  # not one quoted key
        ("x: 'services':\n", None),
    ],
)
def test_kind_by_content(text: str, kind: str | None) -> None:
    assert kind_by_content(text) == kind


def test_walks_directories_sorted_and_skips_vendor_dirs(tmp_path: Path) -> None:
    write(tmp_path, "app/Dockerfile", "FROM scratch\n")
    write(tmp_path, "app/compose.yaml", COMPOSE)
    write(tmp_path, "deploy/k8s/web.yaml", K8S)
    write(tmp_path, "deploy/k8s/values.yaml", "replicaCount: 1\n")
    write(tmp_path, "deploy/stack.yml", COMPOSE)
    write(tmp_path, "units/web.service", "[Service]\n")
    write(tmp_path, "units/web.socket", "[Socket]\n")
    for skipped in (".git", "node_modules", "vendor", ".venv", "__pycache__", ".tox"):
        write(tmp_path, f"{skipped}/Dockerfile", "FROM scratch\n")
    write(
        tmp_path, "charts/web/templates/deploy.yaml", "apiVersion: v1\nkind: {{ .Values.kind }}\n"
    )
    found = discover([str(tmp_path)])
    relative = [(os.path.relpath(path, tmp_path), kind) for path, kind in found]
    assert relative == [
        ("app/Dockerfile", "dockerfile"),
        ("app/compose.yaml", "compose"),
        ("deploy/k8s/web.yaml", "k8s"),
        ("deploy/stack.yml", "compose"),
        ("units/web.service", "systemd"),
        ("units/web.socket", "systemd"),
    ]


def test_kind_filter_and_exclude(tmp_path: Path) -> None:
    write(tmp_path, "Dockerfile", "FROM scratch\n")
    write(tmp_path, "compose.yaml", COMPOSE)
    write(tmp_path, "generated/compose.yaml", COMPOSE)
    write(tmp_path, "k8s/a.generated.yaml", K8S)
    only_compose = discover([str(tmp_path)], kind="compose", exclude=["generated"])
    assert [os.path.relpath(p, tmp_path) for p, _ in only_compose] == ["compose.yaml"]
    no_generated = discover([str(tmp_path)], exclude=["*.generated.yaml"])
    assert {os.path.relpath(p, tmp_path) for p, _ in no_generated} == {
        "Dockerfile",
        "compose.yaml",
        "generated/compose.yaml",
    }


def test_symlink_loops_are_cut(tmp_path: Path) -> None:
    write(tmp_path, "a/compose.yaml", COMPOSE)
    (tmp_path / "a" / "loop").symlink_to(tmp_path / "a", target_is_directory=True)
    (tmp_path / "a" / "up").symlink_to(tmp_path, target_is_directory=True)
    (tmp_path / "a" / "broken.service").symlink_to(tmp_path / "missing")
    found = discover([str(tmp_path)])
    assert [os.path.relpath(p, tmp_path) for p, _ in found] == ["a/compose.yaml"]


def test_a_deep_tree_is_walked_without_recursion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """2000 levels (os.walk's recursion raised RecursionError): the search stops at MAX_DEPTH
    with a note, and what lies above it is found."""
    write(tmp_path, "Dockerfile", "FROM alpine\n")
    deep = tmp_path
    monkeypatch.chdir(tmp_path)  # relative names: the full path of 2000 levels is over PATH_MAX
    name = "d"
    for _ in range(2000):
        os.mkdir(name)
        os.chdir(name)
    os.chdir(tmp_path)
    write(tmp_path, "/".join(["d"] * 5) + "/compose.yaml", COMPOSE)
    unread: list[tuple[str, str]] = []
    try:
        found = discover([str(deep)], unread=unread)
    finally:  # shutil.rmtree (pytest's clean-up) recurses too: remove the chain bottom up
        os.remove(os.path.join(*["d"] * 5, "compose.yaml"))
        os.chdir(os.path.join(*["d"] * 2000))
        for _ in range(2000):
            os.chdir("..")
            os.rmdir("d")
        os.chdir(tmp_path)
    assert [os.path.relpath(p, tmp_path) for p, _ in found] == [
        "Dockerfile",
        "d/d/d/d/d/compose.yaml",
    ]
    ((path, reason),) = unread
    assert reason == TOO_DEEP
    assert os.path.relpath(path, tmp_path) == "/".join(["d"] * (MAX_DEPTH + 1))


def test_symlinked_directories_are_not_followed(tmp_path: Path) -> None:
    """A link out of the tree (to another directory, as a link to / would be) is not followed,
    nor a file link whose target is outside; a file link inside the tree is read."""
    root = tmp_path / "repo"
    outside = tmp_path / "elsewhere"
    write(outside, "Dockerfile", "FROM alpine\n")
    write(outside, "web.service", "[Service]\nExecStart=/bin/true\n")
    write(root, "app/compose.yaml", COMPOSE)
    (root / "hostroot").symlink_to(outside, target_is_directory=True)
    (root / "web.service").symlink_to(outside / "web.service")
    (root / "Dockerfile").symlink_to(root / "app" / "compose.yaml")  # inside: read
    found = discover([str(root)])
    assert [os.path.relpath(p, root) for p, _ in found] == ["Dockerfile", "app/compose.yaml"]


def test_a_link_loop_named_explicitly_says_so(tmp_path: Path) -> None:
    (tmp_path / "loop1").symlink_to(tmp_path / "loop1")
    with pytest.raises(UsageError, match="loop1: too many levels of symbolic links"):
        discover([str(tmp_path / "loop1")])


def test_explicit_files(tmp_path: Path) -> None:
    web = write(tmp_path, "web.yaml", K8S)
    odd = write(tmp_path, "deploy.conf", "[Service]\nUser=x\n")
    templated = write(tmp_path, "tpl.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {{ x }}\n")
    assert discover([str(web)]) == [(str(web), "k8s")]
    assert discover([str(odd)], kind="systemd") == [(str(odd), "systemd")]
    skipped: list[tuple[str, str]] = []
    assert discover([str(templated)], skipped=skipped) == []  # a template: noted, not read
    assert [p for p, _ in skipped] == [str(templated)]
    assert skipped[0][1].startswith("a Helm/Go template (`{{` at line 3), not read")
    assert discover([str(web), str(web)]) == [(str(web), "k8s")]
    with pytest.raises(UsageError, match="cannot tell what kind"):
        discover([str(odd)])


def test_unrecognised_explicit_files_are_skipped_when_asked(tmp_path: Path) -> None:
    """The command line passes a list: pre-commit names every matching file (Helm values)."""
    values = write(tmp_path, "values.yaml", "replicaCount: 1\nimage: {repository: nginx}\n")
    web = write(tmp_path, "web.yaml", K8S)
    skipped: list[tuple[str, str]] = []
    found = discover([str(values), str(web), str(values)], skipped=skipped)
    assert found == [(str(web), "k8s")]
    assert skipped == [(str(values), UNKNOWN_KIND)]
    assert "(use --kind)" in UNKNOWN_KIND
    skipped.clear()
    assert discover([str(values)], kind="k8s", skipped=skipped) == [(str(values), "k8s")]
    assert skipped == []
    with pytest.raises(UsageError, match="no such file"):
        discover([str(tmp_path / "nope.yaml")], skipped=skipped)


def test_stdin_needs_a_kind() -> None:
    assert discover(["-"], kind="compose") == [("-", "compose")]
    with pytest.raises(UsageError, match="needs --kind"):
        discover(["-"])


def test_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file"):
        discover([str(tmp_path / "nope")])
    with pytest.raises(UsageError, match="unknown --kind"):
        discover([str(tmp_path)], kind="helm")


def test_binary_and_unreadable_yaml_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "blob.yaml").write_bytes(b"apiVersion: v1\nkind: Pod\n\0\0\0")
    write(tmp_path, "ok.yaml", K8S)
    found = discover([str(tmp_path)])
    assert [os.path.basename(p) for p, _ in found] == ["ok.yaml"]


def test_default_is_the_current_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "compose.yaml", COMPOSE)
    monkeypatch.chdir(tmp_path)
    assert discover([]) == [("compose.yaml", "compose")]


def test_a_file_named_in_two_forms_is_found_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "Dockerfile", "FROM scratch\n")
    write(tmp_path, "sub/compose.yaml", COMPOSE)
    monkeypatch.chdir(tmp_path)
    assert discover([".", str(tmp_path), "./sub/", "sub/compose.yaml"]) == [
        ("Dockerfile", "dockerfile"),
        ("sub/compose.yaml", "compose"),
    ]
    assert discover([str(tmp_path / "Dockerfile"), "Dockerfile"]) == [
        (str(tmp_path / "Dockerfile"), "dockerfile")
    ]


@pytest.mark.parametrize("form", [".", "./", "ABS"])
def test_exclude_patterns_are_relative_to_the_directory_searched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, form: str
) -> None:
    write(tmp_path, "Dockerfile", "FROM scratch\n")
    write(tmp_path, "charts/web/Dockerfile", "FROM scratch\n")
    write(tmp_path, "deploy/charts/Dockerfile", "FROM scratch\n")
    write(tmp_path, "deploy/charts.Dockerfile", "FROM scratch\n")
    write(tmp_path, "deploy/x/Dockerfile", "FROM scratch\n")
    monkeypatch.chdir(tmp_path)
    top = str(tmp_path) if form == "ABS" else form

    def found(*exclude: str) -> list[str]:
        return [os.path.relpath(p, top) for p, _ in discover([top], exclude=exclude)]

    assert found("charts/") == ["Dockerfile", "deploy/charts.Dockerfile", "deploy/x/Dockerfile"]
    assert found("deploy/x") == [
        "Dockerfile",
        "charts/web/Dockerfile",
        "deploy/charts.Dockerfile",
        "deploy/charts/Dockerfile",
    ]
    assert found("*.Dockerfile", "deploy/") == ["Dockerfile", "charts/web/Dockerfile"]
