"""PURE: what a stopped container's evidence says happened.

The engine and the kernel report a refused exec and a refused bind in many wordings; each
pattern below is one of them, matched on the container's log, the engine's state error and the
``run`` command's own error (older runcs fail ``docker run`` itself):

* exec refused (EPERM: the file's effective bit with a capability the bounding set lacks) —
  runc ≥ 1.1: ``exec /usr/local/bin/httpd: operation not permitted`` (the log);
  runc < 1.1: ``OCI runtime create failed: … exec: "/x": operation not permitted``;
  crun: ``exec container process `/x`: Operation not permitted``;
* bind refused (EACCES) — busybox: ``httpd: bind: Permission denied``; Go:
  ``listen tcp :80: bind: permission denied``; nginx: ``bind() to 0.0.0.0:80 failed (13:
  Permission denied)``; Rust: ``Permission denied (os error 13)`` after a bind; Python: a
  traceback through ``.bind(`` ending in ``PermissionError: [Errno 13]``.
"""

from __future__ import annotations

import re
from typing import Literal

Outcome = Literal["serving", "exec-eperm", "bind-eacces", "crashed", "timeout"]
OUTCOMES: tuple[Outcome, ...] = ("serving", "exec-eperm", "bind-eacces", "crashed", "timeout")

_EXEC_EPERM = (
    re.compile(r"\bexec\b[^\n]*?:\s*operation not permitted", re.IGNORECASE),
    re.compile(r"exec container process[^\n]*operation not permitted", re.IGNORECASE),
)
_BIND_EACCES = (
    re.compile(r"\bbind\b[^\n]*(permission denied|\bEACCES\b|errno 13|os error 13)", re.I),
    re.compile(r"(permission denied|\bEACCES\b)[^\n]*\bbind\b", re.IGNORECASE),
    re.compile(r"\.bind\([^\n]*\n(?:.*\n)*?.*(PermissionError|\[Errno 13\])", re.IGNORECASE),
)


def classify(evidence: str) -> Outcome:
    """exec-eperm, bind-eacces, or crashed (anything else that stopped the container)."""
    if any(pattern.search(evidence) for pattern in _EXEC_EPERM):
        return "exec-eperm"
    if any(pattern.search(evidence) for pattern in _BIND_EACCES):
        return "bind-eacces"
    return "crashed"


def last_lines(text: str, count: int = 5) -> tuple[str, ...]:
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    return tuple(lines[-count:])
