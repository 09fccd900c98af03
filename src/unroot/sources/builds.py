"""Each workload joined with the Dockerfile that builds its image: the one its file names (compose
``build:``, which the parser puts in ``Workload.dockerfile``), else the one an image map (lint's
``[images]``) gives its image, for a kind whose workloads run images (``Kind.images``).

The Dockerfile is named in one form — the parsed Dockerfile's own path when it is among the
files, else the form of the file that names it — so one reached both ways (``unroot lint .``
with an ``[images]`` join, whose paths are absolute) is one file.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Sequence
from dataclasses import replace

from unroot.sources.files import Files
from unroot.sources.kinds import KINDS, parse_file
from unroot.sources.parsed import ParsedFile, Workload


def join_dockerfiles(
    parsed: Sequence[ParsedFile],
    files: Files,
    dockerfile_for: Callable[[str], str | None],
    builder: str | None = None,
) -> tuple[list[ParsedFile], dict[str, ParsedFile]]:
    """The files with each workload's Dockerfile named in one form, and the Dockerfiles by that
    path (those among ``parsed`` and those ``files.read`` reads)."""
    found: dict[str, ParsedFile] = {
        posixpath.normpath(p.path): p for p in parsed if p.kind == "dockerfile"
    }
    by_key = {files.key(path): path for path in found}
    joined: list[ParsedFile] = []
    for parsed_file in parsed:
        workloads: list[Workload] = []
        for workload in parsed_file.workloads:
            path = workload.dockerfile
            if path is None and workload.image and _runs_images(workload):
                path = dockerfile_for(workload.image)
            if path is None:
                workloads.append(workload)
                continue
            key = files.key(path)
            shown = by_key.get(key) or files.like(path, parsed_file.path)
            workloads.append(replace(workload, dockerfile=shown))
            if shown in found or files.read is None:
                continue
            by_key[key] = shown
            text = files.read(shown)
            if text is not None:
                found[shown] = parse_file("dockerfile", text, shown, None, builder)
        changed = workloads != list(parsed_file.workloads)
        joined.append(replace(parsed_file, workloads=tuple(workloads)) if changed else parsed_file)
    return joined, found


def _runs_images(workload: Workload) -> bool:
    kind = KINDS.get(workload.source_kind)
    return kind is None or kind.images
