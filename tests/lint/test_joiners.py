"""The kinds registry's joiners (``sources/kinds.py``: ``join_files``) and the Dockerfile join
(``sources/builds.py``): pure, the filesystem passed in as :class:`Files`, so a front end other
than lint (doctor) joins files the way lint does."""

from __future__ import annotations

import posixpath

from unroot.sources.builds import join_dockerfiles
from unroot.sources.files import Files
from unroot.sources.kinds import KINDS, join_files

DISK = {
    "a.socket": "[Socket]\nListenStream=80\n",
    "a.service.d/x.conf": "# unroot: ignore-file=UR104\n[Service]\nUser=www\n",
    "app/Dockerfile": "FROM alpine\n# unroot: ignore=UR105\nUSER root\n",
}


def list_conf(directory: str) -> list[str]:
    return sorted(
        posixpath.basename(p)
        for p in DISK
        if posixpath.dirname(p) == directory and p.endswith(".conf")
    )


def test_only_systemd_is_joined_before_it_is_parsed() -> None:
    assert [name for name, kind in KINDS.items() if kind.join is not None] == ["systemd"]
    assert all((kind.parse is None) == (kind.join is not None) for kind in KINDS.values())


def test_a_unit_is_joined_with_its_socket_and_dropins() -> None:
    files = Files(read=DISK.get, list_dir=list_conf)
    parsed = join_files("systemd", [("a.service", "[Service]\nExecStart=/a\n")], files)
    assert [p.path for p in parsed] == ["a.service", "a.service.d/x.conf"]  # the socket: not linted
    (service,) = parsed[0].workloads
    assert service.socket_unit == "a.socket"
    assert service.user is not None
    assert service.user.text == "www"
    assert parsed[1].file_ignores == ("UR104",)  # the pragma pass ran over the drop-in


def test_without_files_a_unit_is_parsed_alone() -> None:
    (parsed,) = join_files("systemd", [("a.service", "[Service]\nExecStart=/a\n")], Files())
    (service,) = parsed.workloads
    assert service.socket_unit is None


def test_a_compose_build_is_joined_with_its_dockerfile() -> None:
    compose = "services:\n  app:\n    build: app\n"
    files = Files(read=DISK.get)
    parsed = join_files("compose", [("compose.yaml", compose)], files)
    joined, dockerfiles = join_dockerfiles(parsed, files, lambda image: None)
    (app,) = joined[0].workloads
    assert app.dockerfile == "app/Dockerfile"
    assert dockerfiles["app/Dockerfile"].line_ignores == ((3, "UR105"),)
