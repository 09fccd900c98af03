"""The kinds of input unroot reads, in one registry: how a file is recognised (by its name, else
by its content), which parser reads it, which runtime runs what it describes unless the user
chooses one, and how a fix is spelled in its syntax (its :class:`Dialect`).

Adding a kind (Podman Quadlet units, Helm charts, Nomad jobs) is one entry in :data:`KINDS` and
its parser module under ``sources/``; discovery, ``--kind``, the rules' ``kinds``, the joining
of files (:func:`join_files`) and the situation's default runtime all read this table.

By name: ``Dockerfile``, ``Dockerfile.*``, ``Dockerfile-*``, ``Dockerfile_*``,
``*.Dockerfile``, ``Containerfile`` (and the same forms) → dockerfile, except names ending in a
documentation, backup, template or source-code extension (``Dockerfile.md``, ``.orig``,
``.j2``, ``dockerfile_test.go``, …: :data:`NOT_DOCKERFILE_EXTENSIONS`, which the pre-commit
hook's ``exclude`` repeats) and the BuildKit ignore files (``Dockerfile.dockerignore``);
``compose*.y?ml``, ``docker-compose*.y?ml``
→ compose; ``*.service``, ``*.socket`` and their drop-ins (``NAME.service.d/*.conf``, the
type-level ``service.d/*.conf``) → systemd.  Other ``*.yaml``/``*.yml`` by content: a top-level
``apiVersion:`` and ``kind:`` → k8s, a top-level ``services:`` → compose (a key plain or quoted,
``"apiVersion": v1``)
(:func:`kind_by_content`).  JSON with top-level ``apiVersion`` and ``kind`` strings (``kubectl
get -o json``) → k8s (:func:`is_k8s_json`).  Text of no known name (standard input, a file named
explicitly) by :func:`kind_by_text`: the above, then a first line that is a systemd section
(``[Unit]``, ``[Service]``, …) → systemd, a first instruction ``FROM`` or ``ARG`` → dockerfile.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from unroot.errors import UsageError
from unroot.sources.files import Files, Reader
from unroot.sources.parsed import ParsedFile
from unroot.sources.pragmas import attach

Parser = Callable[[str, str, "Reader | None", "str | None"], ParsedFile]
#: the files of one kind given to lint, ``(path, text)``, → their ParsedFiles, each joined with
#: the files it refers to that must be read before it is parsed
Joiner = Callable[[Sequence[tuple[str, str]], Files, "str | None"], list[ParsedFile]]


def _docker_cap_add(items: str, names: str) -> str:
    del items
    return f"run it with `docker run --cap-add {names}` (or compose `cap_add`)"


def _docker_sysctl(port: int) -> str:
    return f"run it with `--sysctl net.ipv4.ip_unprivileged_port_start={port}`"


def _systemd_cap_add(items: str, names: str) -> str:
    del items
    systemd = " ".join(f"CAP_{n}" for n in names.split(","))
    return f"include {systemd} in CapabilityBoundingSet="


@dataclass(frozen=True, slots=True)
class Dialect:
    """How a fix is spelled in a kind's own syntax.

    ``add_caps(items, names)``: the edit that puts capabilities into the bounding set (``items``
    is ``"NET_BIND_SERVICE, NET_RAW"``, ``names`` ``"NET_BIND_SERVICE,NET_RAW"``); ``drop_nnp``:
    the edit that turns no_new_privs off; ``set_sysctl(port)``: the edit that lowers
    ``net.ipv4.ip_unprivileged_port_start`` to ``port``."""

    add_caps: Callable[[str, str], str] = _docker_cap_add
    drop_nnp: str = "run without `--security-opt no-new-privileges`"
    set_sysctl: Callable[[int], str] = _docker_sysctl


@dataclass(frozen=True, slots=True)
class Kind:
    """One kind of input.

    ``parse(text, path, read, builder)``: the file's facts, with the pragma pass beside the
    parser (``read`` reads the other files a compose project pulls in; ``builder`` is the image
    builder for Dockerfiles); None for a kind whose files are joined before they are parsed.
    ``join(given, files, builder)``: the joiner of such a kind (systemd units with their sockets
    and drop-ins, ``sources/units.py``); None: each file is parsed alone (a file that names a
    Dockerfile puts it in ``Workload.dockerfile``, which ``sources/builds.py`` joins for every
    kind).  ``default_runtime``: the runtime profile (``unroot.model.runtimes.PROFILES``) that
    runs it unless ``--runtime`` says otherwise; ``runtime_fixed``: ``--runtime`` does not apply
    (a systemd unit always runs under systemd); ``images``: its workloads run container images,
    which an image map (lint's ``[images]``) may join to Dockerfiles."""

    name: str
    default_runtime: str
    parse: Parser | None = None
    join: Joiner | None = None
    runtime_fixed: bool = False
    images: bool = True
    dialect: Dialect = Dialect()


# Each parser, then the pragma pass over the same text beside it (sources/pragmas.py).
def _parse_dockerfile(text: str, path: str, read: Reader | None, builder: str | None) -> ParsedFile:
    from unroot.sources.dockerfile.buildkit import safe_text
    from unroot.sources.dockerfile.parser import parse_dockerfile

    del read
    parsed = parse_dockerfile(text, path, builder=builder)
    # a standalone ignore= covers every line of the next instruction; '#' after content is the
    # shell's; problems sorted by line, as the parser sorts its own
    return attach(parsed, safe_text(text), statements=parsed.statements, ordered=True)


def _parse_compose(text: str, path: str, read: Reader | None, builder: str | None) -> ParsedFile:
    from unroot.sources.compose.parser import parse_compose

    del builder  # the project: .env, override, extends and include files via read
    texts: dict[str, str] = {path: text}

    def recording(name: str) -> str | None:
        found = read(name) if read is not None else None
        if found is not None:
            texts.setdefault(name, found)
        return found

    parsed = parse_compose(text, path, read=recording if read is not None else None)
    parsed = attach(parsed, text, trailing=True)
    if not parsed.parts:
        return parsed
    parts = tuple(attach(part, texts.get(part.path, ""), trailing=True) for part in parsed.parts)
    return replace(parsed, parts=parts)


def _parse_k8s(text: str, path: str, read: Reader | None, builder: str | None) -> ParsedFile:
    from unroot.sources.k8s import parse_k8s

    del read, builder
    return attach(parse_k8s(text, path), text, trailing=True)


def _join_units(
    given: Sequence[tuple[str, str]], files: Files, builder: str | None
) -> list[ParsedFile]:
    from unroot.sources.units import join_units

    return join_units(given, files, builder)


COMPOSE = Dialect(
    add_caps=lambda items, names: f"add `cap_add: [{items}]` to the service",
    drop_nnp="remove `no-new-privileges` from `security_opt`",
    set_sysctl=lambda port: (
        f"add `sysctls: [net.ipv4.ip_unprivileged_port_start={port}]` to the service"
    ),
)
K8S = Dialect(
    add_caps=lambda items, names: f"add `{items}` to `securityContext.capabilities.add`",
    drop_nnp="set `allowPrivilegeEscalation: true` (or leave it unset)",
    set_sysctl=lambda port: (
        "set the pod sysctl `securityContext.sysctls: [{name: "
        f'net.ipv4.ip_unprivileged_port_start, value: "{port}"}}]` (a safe sysctl since '
        "Kubernetes 1.22; not possible with hostNetwork)"
    ),
)
SYSTEMD = Dialect(
    add_caps=_systemd_cap_add, drop_nnp="drop NoNewPrivileges= and the options that imply it"
)

KINDS: dict[str, Kind] = {
    "dockerfile": Kind("dockerfile", "docker", _parse_dockerfile),
    "compose": Kind("compose", "docker", _parse_compose, dialect=COMPOSE),
    "k8s": Kind("k8s", "containerd2", _parse_k8s, dialect=K8S),
    "systemd": Kind(
        "systemd", "systemd", join=_join_units, runtime_fixed=True, images=False, dialect=SYSTEMD
    ),
}
NAMES = tuple(KINDS)


def parse_file(
    kind: str, text: str, path: str, read: Reader | None = None, builder: str | None = None
) -> ParsedFile:
    """One file of ``kind`` read by its parser, with the pragma pass beside it."""
    parse = KINDS[kind].parse if kind in KINDS else None
    if parse is None:
        raise UsageError(f"{path}: no parser for kind {kind!r}")
    return parse(text, path, read, builder)


def join_files(
    kind: str, given: Sequence[tuple[str, str]], files: Files, builder: str | None = None
) -> list[ParsedFile]:
    """The files of ``kind`` given as ``(path, text)``, each joined with the files it refers to
    (the kind's joiner; else each parsed alone, ``files.read`` reading a compose project's
    other files)."""
    join = KINDS[kind].join if kind in KINDS else None
    if join is not None:
        return join(given, files, builder)
    return [parse_file(kind, text, path, files.read, builder) for path, text in given]


_COMPOSE_NAME = re.compile(r"(?:docker-)?compose[^/]*\.ya?ml", re.I)
_DOCKERFILE_NAME = re.compile(
    r"(?:dockerfile|containerfile)(?:[-._][^/]+)?|[^/]+\.(?:dockerfile|containerfile)", re.I
)
#: ``Dockerfile.md``, ``Dockerfile.orig``, ``Dockerfile.j2``: about a Dockerfile, or one not
#: rendered yet; ``Dockerfile.dockerignore``: BuildKit's ignore file of that Dockerfile;
#: ``dockerfile_test.go``, ``dockerfile-parser.js``: code about Dockerfiles
NOT_DOCKERFILE_EXTENSIONS = (
    "md|markdown|rst|txt|adoc|html?|pdf|orig|rej|bak|old|swp|tmp|dockerignore|j2|jinja2?|tmpl|"
    "tpl|template|in|erb|mustache|sh|bash|zsh|fish|ps1|bat|py|pyi|go|js|mjs|cjs|jsx|ts|tsx|rs|"
    "rb|java|kt|scala|cpp|hpp|cs|php|lua|swift|vim|nix|bzl|json|ya?ml|toml|xml|ini|cfg|lock|"
    "sum|patch|diff|log|png|svg|jpe?g|gif|gz|tgz|zip|tar"
)
_NOT_DOCKERFILE = re.compile(rf".*\.(?:{NOT_DOCKERFILE_EXTENSIONS})", re.I)


def _top_level_key(name: str) -> re.Pattern[str]:
    """A YAML mapping key at the start of a line, plain or quoted (``"apiVersion": v1``)."""
    return re.compile(rf"^(?:{name}|\"{name}\"|'{name}')\s*:", re.M)


_API_VERSION = _top_level_key("apiVersion")
_KIND = _top_level_key("kind")
_SERVICES = _top_level_key("services")
_SYSTEMD_SECTION = re.compile(
    r"\[(?:Unit|Service|Socket|Install|Timer|Path|Mount|Automount|Swap|Slice|Scope)\]\s*"
)
_DOCKERFILE_START = re.compile(r"(?:FROM|ARG)\s+\S", re.I)


def kind_by_name(name: str) -> str | None:
    """The kind a file name alone says, or None (``*.yaml`` needs its content)."""
    from unroot.sources.systemd_dropins import is_dropin

    base = posixpath.basename(name)
    if base.lower().endswith(".dockerignore"):
        return None
    if _DOCKERFILE_NAME.fullmatch(base) and not _NOT_DOCKERFILE.fullmatch(base):
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


def looks_like_k8s_json(head: str) -> bool:
    """Cheap test on a file's first bytes: JSON that may be a Kubernetes object (an object
    naming ``apiVersion`` and ``kind``); :func:`is_k8s_json` decides on the whole text."""
    return head.lstrip().startswith("{") and '"apiVersion"' in head and '"kind"' in head


def is_k8s_json(text: str) -> bool:
    """A JSON object with top-level ``apiVersion`` and ``kind`` strings: a Kubernetes object,
    or a ``List`` of them as ``kubectl get -o json`` prints (``package.json`` is not)."""
    import json

    if not text.lstrip().startswith("{"):
        return False
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        return False
    return (
        isinstance(document, dict)
        and isinstance(document.get("apiVersion"), str)
        and isinstance(document.get("kind"), str)
    )


def _first_line(text: str) -> str:
    """The first line that is not blank or a ``#``/``;`` comment (a Dockerfile's parser
    directives are comments)."""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith(("#", ";")):
            return stripped
    return ""


def kind_by_text(text: str) -> str | None:
    """The kind of text that has no telling name (standard input): Kubernetes JSON, then
    :func:`kind_by_content` (YAML), then a systemd section header or a Dockerfile's first
    instruction (``FROM``, or ``ARG`` before it) on its first line; else None."""
    if is_k8s_json(text):
        return "k8s"
    kind = kind_by_content(text)
    if kind is not None:
        return kind
    first = _first_line(text)
    if _SYSTEMD_SECTION.fullmatch(first):
        return "systemd"
    if _DOCKERFILE_START.match(first):
        return "dockerfile"
    return None
