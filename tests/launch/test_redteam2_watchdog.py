"""Red team 2: what the supervisor and its watchdog kill, and what they let live.

* A generation's leftovers are tracked by *process group* (``killpg(gen.pid)``), and when that
  group is empty the supervisor tells the watchdog to forget the *session* (``-SID``, "the
  session is empty") — while processes of the session that sit in another process group of it
  (``setpgid``: a shell with job control, a daemon that gives its workers groups of their own)
  are still running. The supervisor exits, the watchdog kills nothing, and such a worker keeps
  the privileged port: docs/supervise.md promises "Nothing outlives the supervisor" and names
  only ``setsid()`` as the way out.
* The other direction: a generation's process group id stays in ``leftovers`` (and in the
  watchdog's sessions) until the stop timeout, even when its last process exited at once on the
  stop signal. Once the group is gone its id is free, and the kernel hands it out again
  (kernel.pid_max is 32768 on many hosts; a busy one wraps in seconds). At the deadline the
  supervisor ``killpg(ID, SIGKILL)``s whoever has that group id now: any process of the service's
  uid — nobody is shared by many daemons — that happens to lead a process group, including a
  later generation of this very supervisor. The changelog says "a reused id is never killed".
  The test takes the freed id on purpose (``/proc/sys/kernel/ns_last_pid``) for a process of
  uid nobody in a session of its own, unrelated to the service.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from pathlib import Path

import pytest
from launchutil import NOBODY, free_port, port_is_free
from test_supervise import PYTHON, Supervised, kill_session, scratch, script

pytestmark = pytest.mark.root

WORKER_IN_OWN_GROUP = """\
import os, sys, time
if os.fork() == 0:
    os.setpgid(0, 0)  # a group of its own, still in the generation's session
    time.sleep(60)  # holds fd 3, the listener
    os._exit(0)
print("forked", flush=True)
time.sleep(0.3)
sys.exit(0)
"""


def in_session(sid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) == sid and fields[0] not in "ZX":
                found.append(int(entry.name))
    return found


def test_a_worker_in_another_process_group_does_not_outlive_the_supervisor() -> None:
    port = free_port()
    with scratch() as directory:
        master = script(directory, "master.py", WORKER_IN_OWN_GROUP)
        args = ["-l", f"127.0.0.1:{port}", "--user", "nobody", "--", PYTHON, "-I", "-S", master]
        with Supervised(args) as sup:
            gen = sup.gen_pid(1)
            try:
                assert sup.wait(timeout=20) == 0
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline and in_session(gen):
                    time.sleep(0.1)
                left = in_session(gen)
                assert not left, (
                    f"the supervisor exited, but process(es) {left} of generation 1's session "
                    f"(a group of their own) still run as nobody holding 127.0.0.1:{port}"
                )
                assert port_is_free(port)
            finally:
                kill_session(gen)


FIRST_CRASHES = """\
#!/bin/sh
if [ -e "$0.ran" ]; then exec sleep 60; fi
: > "$0.ran"
sleep 60 &  # a worker in the group: it dies on the stop signal (SIGTERM) at once
exit 1
"""

NS_LAST_PID = Path("/proc/sys/kernel/ns_last_pid")


def spawn_with_pid(pid: int) -> subprocess.Popen[bytes] | None:
    """A process of uid nobody, leader of a session (and group) of its own, with this pid."""
    for _ in range(50):
        NS_LAST_PID.write_text(f"{pid - 1}\n")
        proc = subprocess.Popen(
            ["/bin/sleep", "30"],
            user=NOBODY,
            group=NOBODY,
            extra_groups=[],
            start_new_session=True,
        )
        if proc.pid == pid:
            return proc
        proc.kill()  # someone else on the machine forked first: again
        proc.wait()
    return None


def test_the_supervisor_does_not_kill_a_process_group_that_reused_a_generations_id() -> None:
    if not NS_LAST_PID.exists():
        pytest.skip("no /proc/sys/kernel/ns_last_pid")
    port = free_port()
    with scratch() as directory:
        service = script(directory, "svc.sh", FIRST_CRASHES)
        args = ["-l", f"127.0.0.1:{port}", "--stop-timeout", "4", "--user", "nobody"]
        with Supervised([*args, "--", service]) as sup:
            first = sup.gen_pid(1)
            sup.gen_pid(2)  # generation 1 crashed; its worker got SIGTERM and died
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline and Path(f"/proc/{first}").exists():
                time.sleep(0.01)
            assert not Path(f"/proc/{first}").exists(), "generation 1's worker is still there"
            bystander = spawn_with_pid(first)
            if bystander is None:
                pytest.skip(f"could not get pid {first} again (a busy machine)")
            try:
                time.sleep(6)  # past generation 1's stop timeout (4s)
                alive = bystander.poll() is None
                status = bystander.returncode
            finally:
                bystander.kill()
                bystander.wait()
            assert alive, (
                f"pid {first} (a process of nobody in a session of its own, not the service's) "
                f"was killed (status {status}): the supervisor SIGKILLed process group {first} "
                "at generation 1's stop-timeout deadline, after the id had been reused"
            )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-v"]))
