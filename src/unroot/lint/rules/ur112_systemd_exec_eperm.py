"""systemd refuses to start a unit whose ambient capabilities are outside its bounding set.

What it does
    Asks the model for the unit's start credentials; ``AmbientCapabilities=`` naming a
    capability that ``CapabilityBoundingSet=`` leaves out (directly or through a ``~`` list)
    cannot be raised, and systemd fails the unit before the program runs.

Why is this bad?
    The service never starts: ``status=218/CAPABILITIES``.  It typically happens when a
    hardening drop-in narrows ``CapabilityBoundingSet=`` and forgets the capability the unit
    grants as ambient, e.g. ``CAP_NET_BIND_SERVICE``.

Example
    ``AmbientCapabilities=CAP_NET_BIND_SERVICE`` with ``CapabilityBoundingSet=CAP_CHOWN``.

Use instead
    Keep every ambient capability in the bounding set:
    ``CapabilityBoundingSet=CAP_NET_BIND_SERVICE`` with
    ``AmbientCapabilities=CAP_NET_BIND_SERVICE``.

References
    - systemd.exec(5): AmbientCapabilities=, CapabilityBoundingSet=
    - capabilities(7): "the ambient set … must be a subset of permitted and inheritable"

UR112: the ambient capability is not in the bounding set
    # kind: systemd
    [Service]
    User=coredns
    CapabilityBoundingSet=CAP_CHOWN
    AmbientCapabilities=CAP_NET_BIND_SERVICE
    ExecStart=/usr/bin/coredns -dns.port=53

Okay: both name it
    # kind: systemd
    [Service]
    User=coredns
    CapabilityBoundingSet=CAP_NET_BIND_SERVICE
    AmbientCapabilities=CAP_NET_BIND_SERVICE
    ExecStart=/usr/bin/coredns -dns.port=53
"""

from __future__ import annotations

from collections.abc import Iterator

from unroot.lint.registry import Report, rule
from unroot.situation import Situation


@rule("UR112", topic="exec-eperm", severity="error", kinds=("systemd",))
def systemd_exec_eperm(situation: Situation) -> Iterator[Report]:
    """systemd refuses to start a unit whose ambient capabilities are outside its bounding set."""
    error = situation.start_error
    if error is None or "AmbientCapabilities" not in error:
        return
    yield Report(
        situation.where("ambient_caps", "bounding_caps", "caps"),
        f"the unit does not start: {error}",
        fix="add the ambient capabilities to CapabilityBoundingSet= (or drop them from "
        "AmbientCapabilities=)",
    )
