"""The kinds of input unroot reads, in one registry: how a file is recognised (by its name, else
by its content), which parser reads it, and which runtime runs what it describes unless the
user chooses one.

Adding a kind (Podman Quadlet units, Helm charts, Nomad jobs) is one entry in :data:`KINDS` and
its parser module under ``sources/``; discovery, ``--kind``, the rules' ``kinds`` and the
situation's default runtime all read this table.

By name: ``Dockerfile``, ``Dockerfile.*``, ``*.Dockerfile``, ``Containerfile`` (and the same
forms) → dockerfile; ``compose*.y?ml``, ``docker-compose*.y?ml`` → compose; ``*.service``,
``*.socket`` and their drop-ins (``NAME.service.d/*.conf``, the type-level ``service.d/*.conf``)
→ systemd.  Other ``*.yaml``/``*.yml`` by content: a top-level ``apiVersion:`` and ``kind:`` →
k8s, a top-level ``services:`` → compose.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass

from unroot.sources.parsed import ParsedFile

Reader = Callable[[str], "str | None"]
Parser = Callable[[str, str, "Reader | None", "str | None"], ParsedFile]


@dataclass(frozen=True, slots=True)
class Kind:
    """One kind of input.

    ``parse(text, path, read, builder)``: the file's facts (``read`` reads the other files a
    compose project pulls in; ``builder`` is the image builder for Dockerfiles); None for a kind
    whose files are joined before they are parsed (systemd units with their sockets and
    drop-ins).  ``default_runtime``: the runtime profile (``unroot.model.runtimes.PROFILES``)
    that runs it unless ``--runtime`` says otherwise; ``runtime_fixed``: ``--runtime`` does not
    apply (a systemd unit always runs under systemd)."""

    name: str
    default_runtime: str
    parse: Parser | None = None
    runtime_fixed: bool = False


def _parse_dockerfile(text: str, path: str, read: Reader | None, builder: str | None) -> ParsedFile:
    from unroot.sources.dockerfile.parser import parse_dockerfile

    del read
    return parse_dockerfile(text, path, builder=builder)


def _parse_compose(text: str, path: str, read: Reader | None, builder: str | None) -> ParsedFile:
    from unroot.sources.compose.parser import parse_compose

    del builder  # the project: .env, override, extends and include files via read
    return parse_compose(text, path, read=read)


def _parse_k8s(text: str, path: str, read: Reader | None, builder: str | None) -> ParsedFile:
    from unroot.sources.k8s import parse_k8s

    del read, builder
    return parse_k8s(text, path)


KINDS: dict[str, Kind] = {
    "dockerfile": Kind("dockerfile", "docker", _parse_dockerfile),
    "compose": Kind("compose", "docker", _parse_compose),
    "k8s": Kind("k8s", "containerd2", _parse_k8s),
    "systemd": Kind("systemd", "systemd", None, runtime_fixed=True),
}
NAMES = tuple(KINDS)

_COMPOSE_NAME = re.compile(r"(?:docker-)?compose[^/]*\.ya?ml", re.I)
_DOCKERFILE_NAME = re.compile(
    r"(?:dockerfile|containerfile)(?:\.[^/]+)?|[^/]+\.(?:dockerfile|containerfile)", re.I
)
_API_VERSION = re.compile(r"^apiVersion\s*:", re.M)
_KIND = re.compile(r"^kind\s*:", re.M)
_SERVICES = re.compile(r"^services\s*:", re.M)


def kind_by_name(name: str) -> str | None:
    """The kind a file name alone says, or None (``*.yaml`` needs its content)."""
    from unroot.sources.systemd import is_dropin

    base = posixpath.basename(name)
    if base.lower().endswith(".dockerignore"):
        return None
    if _DOCKERFILE_NAME.fullmatch(base):
        return "dockerfile"
    if _COMPOSE_NAME.fullmatch(base):
        return "compose"
    if base.endswith((".service", ".socket")):
        return "systemd"
    if is_dropin(name):
        return "systemd"
    return None


def kind_by_content(text: str) -> str | None:
    """``k8s`` for a top-level apiVersion + kind, ``compose`` for top-level services, else None."""
    if _API_VERSION.search(text) and _KIND.search(text):
        return "k8s"
    if _SERVICES.search(text):
        return "compose"
    return None
