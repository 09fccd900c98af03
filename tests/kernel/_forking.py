"""Run a function in a forked child and bring its result back: the differential tests change
credentials, namespaces and mounts for real, so each probe runs in a process of its own."""

from __future__ import annotations

import os
import pickle
import signal
import traceback
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def run_in_child(
    fn: Callable[[], T], failure: str = "", parent: Callable[[int], None] | None = None
) -> T:
    """``fn()`` in a forked child; its return value comes back pickled through a pipe.

    An exception in the child comes back as its traceback, raised here as an AssertionError
    whose text is ``failure`` followed by the traceback.  ``parent(pid)``, when given, runs in
    this process once the child exists and before its answer is read (a handshake, such as
    writing the maps of a user namespace the child created).
    """
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.close(read_fd)
            try:
                payload = pickle.dumps(("ok", fn()))
            except BaseException:
                payload = pickle.dumps(("error", traceback.format_exc()))
            with os.fdopen(write_fd, "wb") as out:
                out.write(payload)
        finally:
            os._exit(0)  # a forked child must never return into pytest
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as inp:
        try:
            if parent is not None:
                parent(pid)
            data = inp.read()
        except BaseException:
            os.kill(pid, signal.SIGKILL)
            raise
        finally:
            _, status = os.waitpid(pid, 0)
    if not data:
        raise AssertionError(f"{failure}the child died without an answer (wait status {status})")
    outcome, result = pickle.loads(data)
    if outcome != "ok":
        raise AssertionError(failure + result)
    return result  # type: ignore[no-any-return]
