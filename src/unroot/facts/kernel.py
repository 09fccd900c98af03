"""Adapter: the running kernel (``uname -r``) as the model's :class:`~unroot.model.execve.Kernel`.

Live questions (``explain``, ``doctor``) answer for the kernel they run on; ``lint`` does not
(its target host is unknown) and keeps :data:`unroot.model.execve.LATEST`.
"""

from __future__ import annotations

import os

from unroot.model.execve import Kernel, running_kernel


def host_kernel() -> Kernel:
    """The kernel this process runs on (a release too old for the model is bad input)."""
    return running_kernel(os.uname().release)
