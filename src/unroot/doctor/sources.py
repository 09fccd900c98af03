"""The subject builders of ``--container``, ``--compose``/``--service`` and ``--unit``: who a
container, a compose service or a systemd unit really is on this host (see each module)."""

from unroot.doctor.compose import compose_subject
from unroot.doctor.container import container_subject, runtime_of
from unroot.doctor.identity import rootless_ref
from unroot.doctor.unit import unit_subject

__all__ = [
    "compose_subject",
    "container_subject",
    "rootless_ref",
    "runtime_of",
    "unit_subject",
]
