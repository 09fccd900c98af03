"""``unroot lint`` configuration: ``.unroot.toml``, ``[tool.unroot]`` in pyproject.toml, or
``--config FILE``.

Found by walking up from the scanned directory: in each directory ``.unroot.toml`` wins over
``pyproject.toml`` (which counts only with a ``[tool.unroot]`` table); the walk stops after the
repository root (a directory holding ``.git``) or at the filesystem root.  Keys::

    select = ["UR1", "bind-fails"]        # rule IDs, ID prefixes or topic slugs
    ignore = ["UR105"]
    failure-threshold = "warning"         # error | warning | info | none (never fail)
    runtime = "docker"                    # docker | docker-rootless | podman-rootless | ...
    exclude = ["charts/", "*.generated.yaml"]
    builder = "buildkit"                  # buildkit (Docker >= 23 default) | classic

    [images]                              # image reference → Dockerfile, relative to this file
    "registry.example.org/web:1.4" = "images/web/Dockerfile"

    [severity]                            # rule id, prefix or topic → error|warning|info|none
    UR106 = "error"
    runs-as-root = "none"                 # none (or off): the rule reports nothing

A rule id in ``[severity]``, ``select`` or ``ignore`` that no rule has is not an error here
(the file may be read by another unroot version): the engine warns about it.

``[images]`` paths are resolved from the config file's directory (absolute when the config was
found by walking up); the engine compares them with the files it lints by absolute path and
names each joined Dockerfile in the form of the file that uses it (relative in, relative out).

A bad file is a :class:`UsageError` naming the file and the key, on one line.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass

from unroot.errors import UsageError
from unroot.lint.findings import SEVERITIES
from unroot.lint.inputs import BOM
from unroot.model.runtimes import CONTAINER_PROFILES

CONFIG_NAME = ".unroot.toml"
PYPROJECT = "pyproject.toml"
#: --failure-threshold: a severity, or ``none`` (never fail: exit 0 whatever is found).
THRESHOLDS = (*SEVERITIES, "none")
#: A severity override: a severity, or ``none``/``off`` (the rule reports nothing).
OVERRIDES = (*SEVERITIES, "none", "off")
#: The container runtimes, from the model's runtime profiles.
RUNTIMES = tuple(profile.name for profile in CONTAINER_PROFILES)
BUILDERS = ("buildkit", "classic")
#: ``--format`` (``unroot.lint.formatters``) and ``--color``: flags and UNROOT_* variables only
FORMATS = ("text", "json", "sarif", "gnu", "junit", "checkstyle")
COLORS = ("auto", "always", "never")
_SELECTOR = re.compile(r"UR\d*|[a-z][a-z0-9]*(?:-[a-z0-9]+)*", re.I)
_KEYS = (
    "select",
    "ignore",
    "failure-threshold",
    "runtime",
    "exclude",
    "images",
    "builder",
    "severity",
)


@dataclass(frozen=True, slots=True)
class LintConfig:
    """The settings; ``path`` is the file they came from (None: built-in defaults)."""

    path: str | None = None
    select: tuple[str, ...] | None = None  # None: every rule
    ignore: tuple[str, ...] = ()
    failure_threshold: str | None = None
    runtime: str | None = None
    exclude: tuple[str, ...] = ()
    images: tuple[tuple[str, str], ...] = ()  # (image reference, Dockerfile path)
    builder: str | None = None  # None: BuildKit (the default builder since Docker 23)
    #: ``[severity]``: (selector, severity or "none"), in the file's order
    severity: tuple[tuple[str, str], ...] = ()

    def dockerfile_for(self, image: str) -> str | None:
        """The Dockerfile ``[images]`` joins to ``image`` (as written, else without a tag)."""
        table = dict(self.images)
        if image in table:
            return table[image]
        untagged = _strip_tag(image)
        for reference, dockerfile in self.images:
            if _strip_tag(reference) == untagged and ":" not in reference.rsplit("/", 1)[-1]:
                return dockerfile
        return None


def _strip_tag(image: str) -> str:
    name = image.split("@", 1)[0]
    head, _, last = name.rpartition("/")
    repo = last.split(":", 1)[0]
    return f"{head}/{repo}" if head else repo


def _fail(path: str, key: str | None, message: str) -> UsageError:
    where = f"{path}: {key}: " if key else f"{path}: "
    return UsageError(where + message)


def _selectors(path: str, key: str, value: object) -> tuple[str, ...]:
    items: list[object]
    if isinstance(value, str):
        items = [part for part in re.split(r"[\s,]+", value) if part]
    elif isinstance(value, list):
        items = list(value)
    else:
        raise _fail(path, key, "expected a list of rule IDs or topics")
    found: list[str] = []
    for item in items:
        if not isinstance(item, str) or not _SELECTOR.fullmatch(item.strip()):
            raise _fail(path, key, f"{item!r} is not a rule ID (UR104), prefix (UR1) or topic")
        text = item.strip()
        found.append(text.upper() if text.upper().startswith("UR") else text)
    return tuple(found)


def severity_override(selector: str, severity: str) -> tuple[str, str] | None:
    """``("ur106", "Error")`` → ``("UR106", "error")``; ``off`` is ``none``; None when either
    is malformed."""
    name, level = selector.strip(), severity.strip().lower()
    if not _SELECTOR.fullmatch(name) or level not in OVERRIDES:
        return None
    name = name.upper() if name.upper().startswith("UR") else name.lower()
    return name, "none" if level == "off" else level


def _severities(path: str, value: object) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict):
        raise _fail(path, "severity", 'expected a table of rule = "error|warning|info|none"')
    found: list[tuple[str, str]] = []
    for selector, level in value.items():
        override = severity_override(selector, level) if isinstance(level, str) else None
        if override is None:
            raise _fail(
                path,
                f"severity.{selector}",
                f"{level!r}: expected a rule ID, prefix or topic = {'|'.join(OVERRIDES)}",
            )
        found.append(override)
    return tuple(found)


def config_from_mapping(data: Mapping[str, object], path: str) -> LintConfig:
    """Validate one settings table (``[tool.unroot]`` or a whole ``.unroot.toml``)."""
    for key in data:
        if key not in _KEYS:
            hint = f" (did you mean {key.replace('_', '-')!r}?)" if "_" in key else ""
            raise _fail(path, key, f"unknown key{hint}; known: {', '.join(_KEYS)}")
    select = _selectors(path, "select", data["select"]) if "select" in data else None
    ignore = _selectors(path, "ignore", data["ignore"]) if "ignore" in data else ()
    threshold = data.get("failure-threshold")
    if threshold is not None and threshold not in THRESHOLDS:
        raise _fail(path, "failure-threshold", f"{threshold!r}: expected {'|'.join(THRESHOLDS)}")
    runtime = data.get("runtime")
    if runtime is not None and runtime not in RUNTIMES:
        raise _fail(path, "runtime", f"{runtime!r}: expected one of {', '.join(RUNTIMES)}")
    builder = data.get("builder")
    if builder is not None and builder not in BUILDERS:
        raise _fail(path, "builder", f"{builder!r}: expected {'|'.join(BUILDERS)}")
    exclude_value = data.get("exclude", [])
    if isinstance(exclude_value, str):
        exclude_value = [exclude_value]
    if not isinstance(exclude_value, list) or not all(isinstance(x, str) for x in exclude_value):
        raise _fail(path, "exclude", "expected a list of glob patterns")
    images_value = data.get("images", {})
    if not isinstance(images_value, dict):
        raise _fail(path, "images", "expected a table of image = Dockerfile path")
    base = os.path.dirname(path)
    images: list[tuple[str, str]] = []
    for reference, dockerfile in images_value.items():
        if not isinstance(dockerfile, str) or not dockerfile.strip():
            raise _fail(path, f"images.{reference}", "expected a Dockerfile path (a string)")
        joined = dockerfile if os.path.isabs(dockerfile) else os.path.join(base, dockerfile)
        images.append((reference, os.path.normpath(joined)))
    severity = _severities(path, data["severity"]) if "severity" in data else ()
    return LintConfig(
        path=path,
        severity=severity,
        select=select,
        ignore=ignore,
        failure_threshold=threshold if isinstance(threshold, str) else None,
        runtime=runtime if isinstance(runtime, str) else None,
        exclude=tuple(exclude_value),
        images=tuple(images),
        builder=builder if isinstance(builder, str) else None,
    )


def _read_toml(path: str) -> dict[str, object]:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
        # a byte order mark (Windows editors write one) is no TOML: dropped, as from inputs
        return tomllib.loads(data.removeprefix(BOM).decode("utf-8"))
    except OSError as exc:
        raise _fail(path, None, f"cannot read: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise _fail(path, None, f"invalid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise _fail(path, None, "invalid TOML: not UTF-8") from exc


def load_config_file(path: str) -> LintConfig:
    """``--config FILE``: a ``.unroot.toml``-style file, or a pyproject.toml's [tool.unroot]."""
    data = _read_toml(path)
    if os.path.basename(path) == PYPROJECT:
        tool = data.get("tool")
        table = tool.get("unroot") if isinstance(tool, dict) else None
        if not isinstance(table, dict):
            raise _fail(path, "tool.unroot", "no [tool.unroot] table")
        return config_from_mapping(table, path)
    return config_from_mapping(data, path)


def _check_config_file(path: str) -> None:
    """UsageError naming what ``--config``/UNROOT_CONFIG's ``path`` is when it is no readable
    regular file: missing, a directory, a device, not readable."""
    import stat

    from unroot.lint.inputs import what_is

    try:
        info = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise UsageError(f"{path}: config file: a symbolic link to nothing") from None
        raise UsageError(f"{path}: no such config file") from None
    except OSError as exc:
        raise UsageError(f"{path}: config file: {(exc.strerror or str(exc)).lower()}") from exc
    if stat.S_ISDIR(info.st_mode):
        raise UsageError(f"{path}: config file: is a directory")
    if not stat.S_ISREG(info.st_mode):
        raise UsageError(f"{path}: config file: {what_is(info.st_mode)}, not a regular file")
    if not os.access(path, os.R_OK):
        raise UsageError(f"{path}: config file: permission denied")


def find_config(start: str) -> str | None:
    """The config file that governs ``start`` (a directory or a file), or None."""
    directory = os.path.abspath(start if os.path.isdir(start) else os.path.dirname(start) or ".")
    while True:
        candidate = os.path.join(directory, CONFIG_NAME)
        if os.path.isfile(candidate):
            return candidate
        if os.path.lexists(candidate):  # a directory, a FIFO, a broken link: not passed over
            _check_config_file(candidate)
        pyproject = os.path.join(directory, PYPROJECT)
        if os.path.isfile(pyproject) and _has_tool_unroot(pyproject):
            return pyproject
        parent = os.path.dirname(directory)
        if os.path.exists(os.path.join(directory, ".git")) or parent == directory:
            return None
        directory = parent


def _has_tool_unroot(path: str) -> bool:
    tool = _read_toml(path).get("tool")
    return isinstance(tool, dict) and "unroot" in tool


def load_config(start: str = ".", explicit: str | None = None) -> LintConfig:
    """``--config FILE`` when given, else the file found from ``start``, else the defaults."""
    if explicit is not None:
        _check_config_file(explicit)
        return load_config_file(explicit)
    found = find_config(start)
    return load_config_file(found) if found else LintConfig()
