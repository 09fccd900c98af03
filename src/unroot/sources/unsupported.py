"""Inputs unroot recognises but does not read: templates not rendered yet, build-time unit
templates (``*.service.in``) and Podman Quadlet units.  Pure: text in, a reason out.

A **template** is a file whose template markers (Jinja ``{%``/``{{``/``{#``, Helm's and Go's
``{{``) make it something other than its kind: a marker that opens a line (``{% if %}``,
``{{- include … }}``) of a Dockerfile or unit, or, in YAML, a marker in a file that does not
load as YAML.  A marker inside a string of a file that parses — a Traefik label
``{{.Name}}``, ``docker ps --format '{{.Names}}'``, ``--log-opt tag={{.Name}}`` — is text,
and the file is read as usual.  Comments (``#`` lines) do not count.

A **unit template** is ``NAME.service.in`` or ``NAME.socket.in``, which meson or autoconf turn
into the unit (``@rootlibexecdir@`` replaced, a line ``@SERVICE_WATCHDOG@`` becoming
``WatchdogSec=3min``).  Read with ``--kind systemd``, a line that is only a placeholder is
passed over (``sources/systemd.py``).

A **Quadlet unit** (podman-systemd.unit(5)) is ``NAME.container``, ``.pod``, ``.kube``,
``.network``, ``.volume``, ``.image`` or ``.build`` with the section its suffix names
(``[Container]`` …); a ``.network`` with a ``[Match]`` section is systemd-networkd's, not
Quadlet's.  Quadlet generates the service from it; read as a plain unit its
``[Container]`` keys would be lost and ``User=`` — which Quadlet refuses — suggested.
"""

from __future__ import annotations

import posixpath
import re
from typing import Literal

from unroot.sources.yamlsupport import load_yaml

#: what a file not read is, for the summary's counts
What = Literal["template", "unit template", "Quadlet unit"]

_MARKER = re.compile(r"\{\{|\{%|\{#")
#: a marker that opens a line (after indentation or a YAML list dash)
_OPENING = re.compile(r"\s*(?:-\s+)?(?:\{\{|\{%|\{#)")
_UNIT_TEMPLATE = (".service.in", ".socket.in")
QUADLET_SECTIONS = {
    ".container": "Container",
    ".pod": "Pod",
    ".kube": "Kube",
    ".network": "Network",
    ".volume": "Volume",
    ".image": "Image",
    ".build": "Build",
}
_YAML_KINDS = ("compose", "k8s")
#: compose's application tags (``sources/compose``), which are not problems here
_COMPOSE_TAGS = frozenset({"!reset", "!override"})


def template_line(text: str, kind: str | None) -> int | None:
    """The line of the template marker that makes ``text`` a template, or None.

    A Dockerfile or unit is one when a marker opens a line.  YAML (compose, Kubernetes) is one
    when it has a marker and does not load (a syntax error, or a problem on a line with a
    marker): a block scalar may hold lines that open with ``{{`` (alert templates in a
    ConfigMap) and still be YAML.  Text of no known kind is one either way."""
    lines = text.split("\n")
    marked = [
        number
        for number, line in enumerate(lines, start=1)
        if not line.lstrip().startswith(("#", ";")) and _MARKER.search(line)
    ]
    if not marked:
        return None
    opening = next((n for n in marked if _OPENING.match(lines[n - 1])), None)
    if kind not in _YAML_KINDS and (opening is not None or kind is not None):
        return opening
    load = load_yaml(text, "-", _COMPOSE_TAGS)
    for where, message in load.problems:
        on_marker = 0 < where.line <= len(lines) and _MARKER.search(lines[where.line - 1])
        if message.startswith(("YAML syntax error", "YAML error")) or on_marker:
            return opening or marked[0]
    return None


def template_reason(text: str, line: int, kind: str | None) -> str:
    """Why a template is skipped, and how to lint what it renders: Helm's output for a
    Kubernetes template, the generator's for a Jinja one (``{%``/``{#`` anywhere)."""
    marker = _MARKER.search(text.split("\n")[line - 1])
    shown = marker.group(0) if marker else "{{"
    jinja = "{%" in text or "{#" in text
    what = "a Jinja template" if jinja else "a Helm/Go template"
    if not jinja and kind in ("k8s", None):
        how = "`helm template CHART | unroot lint -`"
    else:
        how = f"the generator's output: `… | unroot lint --kind {kind or 'KIND'} -`"
    return f"{what} (`{shown}` at line {line}), not read: lint what it renders ({how})"


def is_unit_template(path: str) -> bool:
    """``NAME.service.in`` / ``NAME.socket.in``: a unit the build generates."""
    return posixpath.basename(path).endswith(_UNIT_TEMPLATE)


UNIT_TEMPLATE_REASON = (
    "a build-time unit template (meson/autoconf `.in`), not read: lint the unit the build "
    "generates, or give --kind systemd (lines that are only an `@NAME@` placeholder are "
    "passed over)"
)


def quadlet_section(path: str, text: str) -> str | None:
    """The Quadlet section (``Container``) of a file whose name and content say it is a Quadlet
    unit (``web.container`` with a ``[Container]`` header), else None."""
    base = posixpath.basename(path)
    suffix = base[base.rfind(".") :] if "." in base else ""
    section = QUADLET_SECTIONS.get(suffix)
    if section is None:
        return None
    headers = {line.strip() for line in text.split("\n") if line.strip().startswith("[")}
    if f"[{section}]" not in headers or (section == "Network" and "[Match]" in headers):
        return None
    return section


def quadlet_reason(section: str, kind: str | None) -> str:
    """Why a Quadlet unit is skipped (with ``--kind``: why that kind does not read it)."""
    what = f"a Podman Quadlet unit ([{section}])"
    if kind == "systemd":
        return (
            f"{what}, not a plain systemd unit: read as one, its [{section}] keys would be lost "
            "(Quadlet is not read yet)"
        )
    return f"{what}, not read yet: unroot lint does not read Quadlet files"


def not_read(path: str, text: str, kind: str | None) -> tuple[What, str] | None:
    """What ``path`` is and why it is not read, when it is a Quadlet unit or a template;
    ``kind`` is what it would be read as (``--kind``, its name or content), None unknown.  A
    unit template is not decided here: ``--kind systemd`` reads it (:func:`is_unit_template`)."""
    section = quadlet_section(path, text)
    if section is not None:
        return "Quadlet unit", quadlet_reason(section, kind)
    line = template_line(text, kind)
    if line is not None:
        return "template", template_reason(text, line, kind)
    return None
