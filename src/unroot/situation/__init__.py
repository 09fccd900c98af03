"""PURE facts + a runtime profile → situations: what runs, as whom, and the model's verdicts.

:mod:`.build` joins the parsed files (compose service + Dockerfile, Kubernetes container,
systemd unit + socket) and asks the model; :mod:`.types` holds what a situation is;
:mod:`.nonroot` the image knowledge and the kubelet's runAsNonRoot check.  Nothing here imports
a front end (lint/, commands/, launch/).
"""

from unroot.situation.build import NO_CAPS_PROGRAMS, build_situations
from unroot.situation.nonroot import MAX_USER_ID, nonroot_image, verify_run_as_non_root
from unroot.situation.types import (
    NAMED_UID,
    Link,
    NonRootRefusal,
    PortBind,
    Situation,
    UserView,
)

__all__ = [
    "MAX_USER_ID",
    "NAMED_UID",
    "NO_CAPS_PROGRAMS",
    "Link",
    "NonRootRefusal",
    "PortBind",
    "Situation",
    "UserView",
    "build_situations",
    "nonroot_image",
    "verify_run_as_non_root",
]
