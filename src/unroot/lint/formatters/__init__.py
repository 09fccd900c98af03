"""Output formats of ``unroot lint``: each is ``render(findings, files, rules) -> str``.

``text`` (grouped, wrapped, for people), ``json`` (the schema'd document), ``sarif`` (code
scanning), ``gnu`` (one line per finding, for editors), ``junit`` and ``checkstyle`` (CI
reports).  ``files`` are the paths that were linted (in order); ``rules`` the registry (id →
:class:`~unroot.lint.registry.RuleInfo`), for formats that describe the rules (SARIF).
``sarif`` is registered when :mod:`unroot.lint.formatters.sarif` exists, and imported only when
used.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Mapping, Sequence

from unroot.lint.findings import Finding
from unroot.lint.formatters import checkstyle, gnu, json, junit, text
from unroot.lint.registry import RuleInfo

Formatter = Callable[[Sequence[Finding], Sequence[str], Mapping[str, RuleInfo]], str]


def _sarif(findings: Sequence[Finding], files: Sequence[str], rules: Mapping[str, RuleInfo]) -> str:
    module = importlib.import_module("unroot.lint.formatters.sarif")
    render: Formatter = module.render
    return render(findings, files, rules)


FORMATTERS: dict[str, Formatter] = {
    "text": text.render,
    "json": json.render,
    "gnu": gnu.render,
    "junit": junit.render,
    "checkstyle": checkstyle.render,
}
if importlib.util.find_spec("unroot.lint.formatters.sarif") is not None:
    FORMATTERS["sarif"] = _sarif
