"""``unroot.activation``: receive sockets (LISTEN_FDS) and notify readiness (NOTIFY_SOCKET).

The Python API of PRODUCT.md; the implementation lives in :mod:`unroot.launch.activation`.
Importing it costs only ``os`` and ``socket``.
"""

from unroot.launch.activation import (
    SD_LISTEN_FDS_START,
    ActivationError,
    listen_fds,
    listeners,
    notify,
    notify_ready,
    notify_stopping,
)

__all__ = [
    "SD_LISTEN_FDS_START",
    "ActivationError",
    "listen_fds",
    "listeners",
    "notify",
    "notify_ready",
    "notify_stopping",
]
