"""``unroot lint``'s settings from its three sources: flags > ``UNROOT_*`` environment
variables > the config file (:mod:`unroot.lint.config`, applied by the engine) > defaults.

Pure: it reads the parsed flags and an environment mapping it is given.  An empty variable
counts as unset (``UNROOT_RUNTIME=`` in a CI file that templates an optional input); a bad
value is a :class:`~unroot.errors.UsageError` naming the variable, as a bad flag names the flag.

=============================  ===========================  =================================
flag                           variable                     config key
=============================  ===========================  =================================
``-f``/``--format``            ``UNROOT_FORMAT``            —
``-c``/``--config``            ``UNROOT_CONFIG``            —
``-t``/``--failure-threshold`` ``UNROOT_FAILURE_THRESHOLD`` ``failure-threshold``
``--no-fail``                  (``…THRESHOLD=none``)        (``failure-threshold = "none"``)
``--runtime``                  ``UNROOT_RUNTIME``           ``runtime``
``--select``                   ``UNROOT_SELECT``            ``select``
``--ignore``                   ``UNROOT_IGNORE``            ``ignore`` (both apply)
``--severity``                 ``UNROOT_SEVERITY``          ``[severity]`` (flag entries win)
``--color``                    ``UNROOT_COLOR``             —
``--sarif-category``           ``UNROOT_SARIF_CATEGORY``    —
=============================  ===========================  =================================

``--output`` has no variable on purpose: an inherited variable that silently moves the report
out of the job log is worse than typing ``-o``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from unroot.errors import UsageError
from unroot.lint.config import COLORS, FORMATS, RUNTIMES, THRESHOLDS
from unroot.lint.engine import parse_selectors, parse_severities

ENV_PREFIX = "UNROOT_"
_CATEGORY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(?:/[A-Za-z0-9][A-Za-z0-9._-]*)*")


@dataclass(frozen=True, slots=True)
class Settings:
    """What the command runs with (None: the config's, else the default)."""

    format: str = "text"
    config: str | None = None
    failure_threshold: str | None = None
    runtime: str | None = None
    select: tuple[str, ...] | None = None
    ignore: tuple[str, ...] = ()
    severity: tuple[tuple[str, str], ...] = ()
    color: str = "auto"
    sarif_category: str | None = None
    #: (where, selectors) of --select/--ignore (or their variables), to warn about unknown ids
    named: tuple[tuple[str, tuple[str, ...]], ...] = ()
    #: where the severity overrides came from (``--severity`` or ``UNROOT_SEVERITY``)
    severity_source: str = "--severity"
    #: where the SARIF category came from (``--sarif-category`` or ``UNROOT_SARIF_CATEGORY``)
    category_source: str = "--sarif-category"


def _env_name(flag: str) -> str:
    return ENV_PREFIX + flag.removeprefix("--").replace("-", "_").upper()


def _pick(flag_value: str | None, flag: str, environ: Mapping[str, str]) -> tuple[str | None, str]:
    """The flag's value when given, else its variable's (unless empty); and which it was."""
    if flag_value is not None:
        return flag_value, flag
    name = _env_name(flag)
    value = environ.get(name, "").strip()
    return (value or None), name


def _choice(
    flag_value: str | None, flag: str, choices: Sequence[str], env: Mapping[str, str]
) -> str | None:
    value, source = _pick(flag_value, flag, env)
    if value is not None and value not in choices:
        raise UsageError(f"{source}: {value!r} is not one of {', '.join(choices)}")
    return value


def resolve(args: Any, environ: Mapping[str, str]) -> Settings:
    """The settings from the parsed flags of ``unroot lint`` and ``environ``."""
    threshold = _choice(args.failure_threshold, "--failure-threshold", THRESHOLDS, environ)
    if args.no_fail:
        threshold = "none"
    select_text, select_source = _pick(args.select, "--select", environ)
    ignore_text, ignore_source = _pick(args.ignore, "--ignore", environ)
    severity_value, severity_source = _pick(
        ",".join(args.severity) if args.severity else None, "--severity", environ
    )
    select = parse_selectors(select_text, select_source) if select_text is not None else None
    ignore = parse_selectors(ignore_text, ignore_source) if ignore_text else ()
    category, category_source = _pick(args.sarif_category, "--sarif-category", environ)
    if category is not None and not _CATEGORY.fullmatch(category):
        raise UsageError(
            f"{category_source}: {category!r} is not a category (words of letters, digits, "
            "'.', '_' and '-', each starting with a letter or digit, joined by '/': web, api/v2)"
        )
    config, _ = _pick(args.config, "--config", environ)
    named = [(select_source, select or ()), (ignore_source, ignore)]
    return Settings(
        format=_choice(args.format, "--format", FORMATS, environ) or "text",
        config=config,
        failure_threshold=threshold,
        runtime=_choice(args.runtime, "--runtime", RUNTIMES, environ),
        select=select,
        ignore=ignore,
        severity=parse_severities(severity_value, severity_source) if severity_value else (),
        color=_choice(args.color, "--color", COLORS, environ) or "auto",
        sarif_category=category,
        named=tuple((where, found) for where, found in named if found),
        severity_source=severity_source,
        category_source=category_source,
    )


#: every ``UNROOT_*`` variable unroot reads (the other commands' too): a name close to one of
#: the lint settings' but not among these is a misspelling worth a warning
_LINT_ENV = tuple(
    ENV_PREFIX + name
    for name in (
        "FORMAT",
        "CONFIG",
        "FAILURE_THRESHOLD",
        "RUNTIME",
        "SELECT",
        "IGNORE",
        "SEVERITY",
        "COLOR",
        "SARIF_CATEGORY",
    )
)
_OTHER_ENV = frozenset(
    ENV_PREFIX + name for name in ("STATE_DIR", "DOCKER", "PODMAN", "BENCH_RUN", "EOF")
)


def warnings(settings: Settings, environ: Mapping[str, str]) -> list[str]:
    """Settings given and ignored: ``--sarif-category`` with another format; an ``UNROOT_*``
    variable whose name is a misspelling of a setting's (``UNROOT_FAILURE_TRESHOLD``)."""
    found: list[str] = []
    if settings.sarif_category is not None and settings.format != "sarif":
        found.append(
            f"{settings.category_source} applies only to --format sarif; ignored with "
            f"--format {settings.format}"
        )
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name in _LINT_ENV or name in _OTHER_ENV:
            continue
        close = difflib.get_close_matches(name, _LINT_ENV, n=1, cutoff=0.8)
        if close:
            found.append(f"{name} is not a setting (ignored): did you mean {close[0]}?")
    return found


def use_color(choice: str, isatty: bool, environ: Mapping[str, str]) -> bool:
    """``--color``: ``always``/``never`` as said; ``auto``: not when ``NO_COLOR`` is set to
    anything but the empty string (https://no-color.org), yes when ``FORCE_COLOR`` is (other
    than ``0``/``false``: a CI log that renders colour), else on a terminal whose ``TERM`` is
    not ``dumb``."""
    if choice != "auto":
        return choice == "always"
    if environ.get("NO_COLOR", ""):
        return False
    if environ.get("FORCE_COLOR", "") not in ("", "0", "false"):
        return True
    return isatty and environ.get("TERM") != "dumb"
