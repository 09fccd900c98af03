"""``unroot run --supervise``: a tiny parent that keeps the sockets and runs the service on them.

Who holds what: ``supervise`` is called as root right after ``bind_all``.  It performs the full
drop (``drop_privileges``) on itself at once — it needs nothing but the already-bound sockets — so
no root process remains; each *generation* of the service is then forked from the dropped
supervisor and inherits its credentials, bounding set, ambient set, no_new_privs and
RLIMIT_NOFILE.  The child moves the sockets to fds 3.., sets ``LISTEN_PID`` to its own pid (after
the fork), ``NOTIFY_SOCKET`` when ``--ready notify``, and execs.

The supervisor is a correct PID 1: it reaps every child (it is also a child subreaper, so orphans
of the service come to it when it is not PID 1), forwards signals to the current generation, exits
with the service's status (128+N for a death by signal N, like a shell), restarts with exponential
backoff while the sockets stay bound (the listen backlog holds new connections meanwhile), and on
SIGHUP starts generation N+1 on the same sockets, waits until it is ready, then stops generation N.

Readiness of a new generation (``--ready``):

* ``notify`` — ``READY=1`` on a per-generation abstract unix datagram socket; the sender's pid
  (SCM_CREDENTIALS) must be a process in that generation's session when the message is read.
  ``MAINPID=`` moves the main process (within the session).
* ``tcp`` — a connect would prove nothing, since the old generation accepts on the same socket.
  Instead /proc is inspected: the generation is ready when one of its processes waits for
  connections on the first stream listener — the listener is in one of its epoll sets (fdinfo
  ``ino:``), or a thread is blocked in accept/poll/select on it (``/proc/PID/task/TID/syscall``,
  and ``/proc/PID/mem`` for the poll/select sets) — or holds a connection accepted from it (a
  busy worker that never sleeps on the listener; :mod:`unroot.launch.socktable`).
* ``none`` — alive after a grace period.

One-line log messages on stderr, prefixed ``unroot:``.  Signals arrive through
``signal.set_wakeup_fd`` into a pipe watched by one ``select`` loop; every other wait is a
deadline in that loop's timeout (no sleeping, no polling except the /proc inspection while a
``tcp`` reload is pending).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
import select
import signal
import socket
import struct
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from unroot.errors import EnvironmentProblem, UsageError
from unroot.launch import drop, watchdog
from unroot.launch.inspect import ProcInspector

if TYPE_CHECKING:
    from types import FrameType

    from unroot.launch.janitor import Janitor
    from unroot.launch.plan import LaunchPlan
    from unroot.launch.sockets import BoundSocket
    from unroot.launch.terminal import Relay

Restart = Literal["on-failure", "always", "never"]
Ready = Literal["tcp", "notify", "none"]

# Forwarded to the current generation, except the reload signal (SIGHUP by default).
FORWARDED = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGHUP,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGWINCH,
)
# These also end the supervisor: no restart after the service stops.
STOPPING = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGQUIT})
# SIGTSTP (Ctrl-Z): the generations are stopped with the supervisor, and continued with it.
HANDLED = (signal.SIGCHLD, signal.SIGTSTP, *FORWARDED)
# systemd's "clean" deaths: Restart=on-failure does not restart after them.
CLEAN_SIGNALS = frozenset({signal.SIGHUP, signal.SIGINT, signal.SIGTERM, signal.SIGPIPE})

#: unroot's exit code when the first generation cannot even be forked (the system refuses).
START_FAILED = 3
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
IGNORED_LOG_INTERVAL = 1.0  # seconds between "ignored a notify message" lines, per generation


@dataclass(frozen=True)
class Timing:
    """Delays and timeouts, in seconds."""

    backoff_first: float = 0.1
    backoff_max: float = 10.0
    backoff_reset: float = 10.0  # a generation that stayed up this long resets the backoff
    ready_timeout: float = 60.0  # notify/tcp: a new generation must be ready within this
    ready_grace: float = 1.0  # none: a new generation still alive after this counts as ready
    stop_timeout: float = 10.0  # stop signal → SIGKILL of the old generation's process group
    poll_interval: float = 0.02  # tcp: how often /proc is inspected while a reload is pending


@dataclass(frozen=True)
class Service:
    """What every generation runs: the exec arguments and the sockets (no privileges here)."""

    executable: str  # the resolved path execve(2) gets (re-read at every start)
    argv: tuple[str, ...]
    env: Mapping[str, str]  # LISTEN_FDS/LISTEN_FDNAMES included; LISTEN_PID is set per child
    fds: tuple[int, ...]  # the supervisor's listening sockets, in LISTEN_FDS order
    ready_fd: int | None = None  # the listener --ready tcp watches (None: no stream listener)
    restart: Restart = "on-failure"
    ready: Ready = "tcp"
    reload_signal: int = signal.SIGHUP  # any other forwarded signal frees SIGHUP for the service
    stop_signal: int = signal.SIGTERM  # what the old generation gets after a reload
    reload: bool = True  # False: no reloads, every forwarded signal goes to the service
    stdio: Mapping[int, int] = field(default_factory=dict)  # service fd 0-2 ← supervisor's fd
    nofile: tuple[int, int] | None = None  # the service's RLIMIT_NOFILE, set just before execve

    def __post_init__(self) -> None:
        if self.reload_signal not in FORWARDED or self.reload_signal in STOPPING:
            raise ValueError(f"cannot reload on {signal.Signals(self.reload_signal).name}")


def exit_code(status: int) -> int:
    """A wait status as a shell reports it: the exit code, or 128+N for a death by signal N."""
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def restart_wanted(policy: Restart, status: int) -> bool:
    """Whether ``policy`` restarts a service that ended with wait status ``status``."""
    if policy == "always":
        return True
    if policy == "never":
        return False
    if os.WIFSIGNALED(status):
        return os.WTERMSIG(status) not in CLEAN_SIGNALS
    return os.WEXITSTATUS(status) != 0


def _log(message: str) -> None:
    with contextlib.suppress(OSError):
        os.write(2, f"unroot: {message}\n".encode(errors="replace"))


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        return f"killed by {name} (status {128 + sig})"
    return f"status {os.WEXITSTATUS(status)}"


# --- generations ------------------------------------------------------------------------------


@dataclass(eq=False)
class Generation:
    number: int
    pid: int  # the forked child, leader of the generation's process group
    started: float
    notify: socket.socket | None
    main: int = 0  # the process whose exit ends the generation (MAINPID= may move it)
    ready: bool = False
    deadline: float | None = None  # pending: ready by then; draining: SIGKILL at then
    ignored_quiet_until: float = 0.0  # no "ignored a notify message" line before then
    ignored_unlogged: int = 0  # notify messages ignored since the last such line

    def __post_init__(self) -> None:
        self.main = self.main or self.pid


@dataclass
class _State:
    current: Generation | None = None
    pending: Generation | None = None  # started by a reload, not ready yet
    draining: list[Generation] = field(default_factory=list)
    # session → (SIGKILL deadline, pidfds of what the stop signal reached)
    leftovers: dict[int, tuple[float, list[int]]] = field(default_factory=dict)
    restart_at: float | None = None
    delay: float = 0.0
    stopping: int | None = None  # the signal that asked us to stop
    finishing: bool = False  # no restart: exit once every generation is gone
    status: int | None = None  # exit code of the last current generation
    reload_queued: bool = False
    next_number: int = 1
    next_poll: float = 0.0
    stop_deadline: float | None = None  # after a stopping signal: SIGKILL what is left by then
    wait_status: int | None = None  # the raw wait status behind ``status``
    exec_errno: int | None = None  # why the last start could not exec


class Supervisor:
    """The event loop.  ``run()`` returns the exit code for ``unroot``."""

    def __init__(
        self,
        service: Service,
        timing: Timing | None = None,
        *,
        log: Callable[[str], None] = _log,
        inspector: ProcInspector | None = None,
        relay: Relay | None = None,
        bound_stop: bool = True,
        verbose: bool = True,
        on_first_start: Callable[[bool], None] | None = None,
    ) -> None:
        self.service = service
        self.timing = timing or Timing()
        self.log = log
        # Lines about the normal course of things; problems always go to ``log``.
        self.info = log if verbose else _quiet
        self.inspector = inspector or ProcInspector()
        self.state = _State(delay=self.timing.backoff_first)
        self.relay = relay
        self.bound_stop = bound_stop
        self._on_first_start = on_first_start
        self._wake_r = -1
        self._watchdog = -1
        self._ready_inode = os.fstat(service.ready_fd).st_ino if service.ready_fd is not None else 0

    # -- the loop

    def run(self) -> int:
        with contextlib.suppress(OSError):
            _prctl(PR_SET_CHILD_SUBREAPER, 1)
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._wake_r = wake_r
        previous = {sig: signal.signal(sig, _noop) for sig in HANDLED}
        previous_wakeup = signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        self._watchdog = watchdog.spawn(HANDLED)
        try:
            first = self._start()
            if isinstance(first, int):
                return first
            self.state.current = first
            while True:
                code = self._done()
                if code is not None:
                    return code
                self._wait()
        finally:
            if self.relay is not None:
                self.relay.drain()
            signal.set_wakeup_fd(previous_wakeup)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._cleanup()
            os.close(wake_r)
            os.close(wake_w)

    def _wait(self) -> None:
        now = time.monotonic()
        deadlines = [d for d in self._deadlines() if d is not None]
        timeout = max(0.0, min(deadlines) - now) if deadlines else None
        socks = {g.notify.fileno(): g for g in self._live() if g.notify is not None}
        poller = select.poll()  # not select(): no FD_SETSIZE limit on our fd numbers
        for fd in (self._wake_r, *socks):
            poller.register(fd, select.POLLIN)
        relayed = dict(self.relay.interest()) if self.relay is not None else {}
        for fd, mask in relayed.items():
            poller.register(fd, mask)
        events = dict(poller.poll(None if timeout is None else timeout * 1e3))
        readable = set(events)
        signals = self._drain_wakeup() if self._wake_r in readable else []
        for fd in readable:
            if fd in socks:
                self._on_notify(socks[fd])
        if self.relay is not None:
            self.relay.ready({fd: ev for fd, ev in events.items() if fd in relayed})
        for sig in signals:
            if sig != signal.SIGCHLD:
                self._on_signal(sig)
        self._reap()
        self._on_time(time.monotonic())

    def _deadlines(self) -> Iterable[float | None]:
        st = self.state
        yield st.restart_at
        yield st.stop_deadline
        yield from (g.deadline for g in st.draining)
        yield from (deadline for deadline, _ in st.leftovers.values())
        if st.pending is not None:
            yield st.pending.deadline
            if self.service.ready == "tcp":
                yield st.next_poll

    def _drain_wakeup(self) -> list[int]:
        data = b""
        while True:
            try:
                chunk = os.read(self._wake_r, 512)
            except BlockingIOError:
                break
            if not chunk:
                break
            data += chunk
        return list(dict.fromkeys(data))  # in order, each signal once

    def _live(self) -> list[Generation]:
        st = self.state
        gens = [g for g in (st.current, st.pending) if g is not None]
        return gens + st.draining

    def _done(self) -> int | None:
        st = self.state
        if not (st.stopping or st.finishing) or self._live() or st.restart_at is not None:
            return None
        if st.status is not None:
            return st.status
        return 128 + (st.stopping or 0)

    # -- events

    def _on_signal(self, sig: int) -> None:
        st = self.state
        name = signal.Signals(sig).name
        if sig == self.service.reload_signal and self.service.reload:
            self._reload(name)
            return
        if sig in STOPPING:
            if st.stopping is None:
                self.info(f"{name}: stopping the service")
                if self.bound_stop:
                    st.stop_deadline = time.monotonic() + self.timing.stop_timeout
            st.stopping = sig
            st.restart_at = None
            st.reload_queued = False
            for gen in self._live():
                _kill(gen.main, sig)
            return
        if sig == signal.SIGTSTP:
            self._suspend()
            return
        if sig == signal.SIGWINCH and self.relay is not None:
            self.relay.resize()
        if st.current is None:
            self.info(f"{name} not forwarded: the service is not running")
            return
        _kill(st.current.main, sig)

    def _suspend(self) -> None:
        """Ctrl-Z: stop every generation, then ourselves (the shell sees the job stopped); when
        ``fg`` or ``bg`` continues us, continue them. As PID 1 the kernel ignores our SIGSTOP,
        so the generations are continued at once."""
        gens = self._live()
        for gen in gens:
            for pidfd in self._signal_session(gen.pid, signal.SIGSTOP):
                os.close(pidfd)
        _kill(os.getpid(), signal.SIGSTOP)
        for gen in gens:
            for pidfd in self._signal_session(gen.pid, signal.SIGCONT):
                os.close(pidfd)

    def _reload(self, name: str) -> None:
        st = self.state
        if st.stopping is not None:
            return
        if st.pending is not None:
            st.reload_queued = True
            self.log(f"{name}: generation {st.pending.number} is starting; one more reload follows")
            return
        if st.current is None:
            self.log(f"{name}: the service is not running; starting it now")
            st.restart_at = time.monotonic()
            return
        gen = self._start()
        if isinstance(gen, int):
            self.log(f"reload failed; generation {st.current.number} keeps serving")
            return
        now = time.monotonic()
        if self.service.ready == "none":
            gen.deadline = now + self.timing.ready_grace
        else:
            gen.deadline = now + self.timing.ready_timeout
        st.pending = gen
        st.next_poll = now

    def _on_time(self, now: float) -> None:
        st = self.state
        if st.restart_at is not None and now >= st.restart_at and st.stopping is None:
            st.restart_at = None
            gen = self._start()
            if isinstance(gen, int):
                self._schedule_restart(now, now, f"status {gen}")
            else:
                st.current = gen
        pending = st.pending
        if pending is not None:
            self._check_ready(pending, now)
        for gen in st.draining:
            if gen.deadline is not None and now >= gen.deadline:
                self.log(
                    f"generation {gen.number} (pid {gen.main}) still running after "
                    f"{self.timing.stop_timeout:g}s; SIGKILL"
                )
                self._kill_session(gen.pid)
                _kill(gen.main, signal.SIGKILL)
                gen.deadline = None
        for session, (deadline, pidfds) in list(st.leftovers.items()):
            if now >= deadline:
                self._kill_leftovers(session, pidfds)
                del st.leftovers[session]
        if st.stop_deadline is not None and now >= st.stop_deadline:
            st.stop_deadline = None
            for gen in self._live():
                self.log(
                    f"generation {gen.number} (pid {gen.main}) still running "
                    f"{self.timing.stop_timeout:g}s after the stop signal; SIGKILL"
                )
                self._kill_session(gen.pid)
                _kill(gen.main, signal.SIGKILL)

    def _check_ready(self, gen: Generation, now: float) -> None:
        st = self.state
        mode = self.service.ready
        if mode == "tcp" and not gen.ready and now >= st.next_poll:
            st.next_poll = now + self.timing.poll_interval
            gen.ready = self._serving(gen)
        if mode == "none" and gen.deadline is not None and now >= gen.deadline:
            gen.ready = True
        if gen.ready:
            self._promote(gen, now)
            return
        if gen.deadline is not None and now >= gen.deadline:
            why = {
                "notify": "no READY=1 on NOTIFY_SOCKET",
                "tcp": "no process of it waits on the listener or holds a connection from it",
                "none": "",
            }[mode]
            self.log(
                f"reload failed: generation {gen.number} (pid {gen.main}) not ready after "
                f"{self.timing.ready_timeout:g}s ({why}); stopping it, "
                f"generation {st.current.number if st.current else '-'} keeps serving"
            )
            st.pending = None
            self._stop(gen, now)

    def _serving(self, gen: Generation) -> bool:
        if not self._ready_inode:
            return True
        pids = set(self.inspector.session(gen.pid)) | {gen.main}
        return self.inspector.serving(pids, self._ready_inode)

    def _promote(self, gen: Generation, now: float) -> None:
        st = self.state
        st.pending = None
        gen.deadline = None
        old = st.current
        st.current = gen
        if old is None:
            self.info(f"generation {gen.number} (pid {gen.main}) ready")
        else:
            self.log(
                f"generation {gen.number} (pid {gen.main}) ready; stopping generation "
                f"{old.number} (pid {old.main})"
            )
            self._stop(old, now)
        if st.reload_queued:
            st.reload_queued = False
            self._reload(signal.Signals(self.service.reload_signal).name)

    def _stop(self, gen: Generation, now: float) -> None:
        gen.deadline = now + self.timing.stop_timeout
        self.state.draining.append(gen)
        _kill(gen.main, self.service.stop_signal)

    def _on_notify(self, gen: Generation, exited: int = 0) -> None:
        """Read what ``gen``'s processes sent on its NOTIFY_SOCKET; ``exited`` is its main
        process when this is called right after reaping it.  At most 64 datagrams a call, so
        that a flood cannot hold the loop."""
        for _ in range(64):
            if gen.notify is None:
                return
            try:
                # The sender is checked on a peek, before the datagram is consumed: consuming
                # it drops the descriptors sent along (room for the credentials only, so the
                # kernel closes them: MSG_CTRUNC), and systemd-notify waits for the one sent
                # with BARRIER=1 to close before it exits.  Receiving them instead would let a
                # sender make our close() block.
                _, ancillary, _, _ = gen.notify.recvmsg(1, socket.CMSG_SPACE(12), socket.MSG_PEEK)
                pid, uid = _credentials(ancillary)
                accepted = (exited > 0 and pid == exited) or self._in_generation(gen, pid)
                data = gen.notify.recvmsg(4096, socket.CMSG_SPACE(12))[0]
            except OSError:  # BlockingIOError: nothing left
                return
            if not accepted:
                self._ignored(gen, pid, uid)
                continue
            for line in data.decode(errors="replace").splitlines():
                key, _, value = line.partition("=")
                if key == "READY" and value == "1" and not gen.ready:
                    gen.ready = True
                    if gen is self.state.pending:
                        self._promote(gen, time.monotonic())
                elif key == "MAINPID" and value.isdigit():
                    self._set_main(gen, int(value))

    def _in_generation(self, gen: Generation, pid: int) -> bool:
        """Whether ``pid`` is a process of ``gen`` right now: a member of its session (zombies
        included).  A generation is its own session (setsid in ``_exec_child``) and no process
        can join a session from outside, so this is systemd's ``NotifyAccess=all`` with the
        session for the cgroup.  A sender that is gone cannot be told from any other."""
        st = self.inspector.stat(pid) if pid > 0 else None
        return st is not None and st.session == gen.pid

    def _ignored(self, gen: Generation, pid: int, uid: int) -> None:
        """Log an ignored notify message: at most one line a second per generation, then the
        number of messages ignored meanwhile."""
        now = time.monotonic()
        if now < gen.ignored_quiet_until:
            gen.ignored_unlogged += 1
            return
        more = f" ({gen.ignored_unlogged} more ignored before)" if gen.ignored_unlogged else ""
        gen.ignored_unlogged = 0
        gen.ignored_quiet_until = now + IGNORED_LOG_INTERVAL
        self.log(
            f"ignored a notify message from pid {pid} uid {uid}: "
            f"not a process of generation {gen.number}{more}"
        )

    def _set_main(self, gen: Generation, pid: int) -> None:
        if pid == gen.main:
            return
        if not self._in_generation(gen, pid):
            self.log(f"ignored MAINPID={pid}: not a process of generation {gen.number}")
            return
        self.log(f"generation {gen.number}: main process is now pid {pid}")
        gen.main = pid

    # -- children

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self._on_exit(pid, status)

    def _on_exit(self, pid: int, status: int) -> None:
        st = self.state
        now = time.monotonic()
        gen = next((g for g in self._live() if g.main == pid), None)
        if gen is not None and gen.notify is not None:
            self._on_notify(gen, pid)  # a MAINPID= sent before this exit moves the generation on
            if gen.main != pid:
                gen = None
        if gen is None:
            return  # an orphan, or a generation's first process after MAINPID moved on
        self._sweep(gen, now)
        code = exit_code(status)
        if gen in st.draining:
            st.draining.remove(gen)
            self.log(f"generation {gen.number} (pid {pid}) stopped: {_describe(status)}")
            return
        if gen is st.pending:
            st.pending = None
            st.reload_queued = False
            if st.stopping is not None:
                self.log(f"generation {gen.number} (pid {pid}) stopped: {_describe(status)}")
                return
            self.log(
                f"reload failed: generation {gen.number} (pid {pid}) exited before it was ready: "
                f"{_describe(status)}; generation "
                f"{st.current.number if st.current else '-'} keeps serving"
            )
            return
        # the current generation
        st.current = None
        st.status = code
        st.wait_status = status
        if st.stopping is not None:
            self.info(f"service exited: {_describe(status)}")
            return
        if st.pending is not None:
            self.log(
                f"generation {gen.number} (pid {pid}) exited during the reload: "
                f"{_describe(status)}; generation {st.pending.number} takes over"
            )
            st.current, st.pending = st.pending, None
            st.current.deadline = None
            return
        if restart_wanted(self.service.restart, status):
            self._schedule_restart(now, gen.started, _describe(status))
            return
        self.info(f"service exited: {_describe(status)}")
        st.finishing = True

    def _schedule_restart(self, now: float, started: float, what: str) -> None:
        st = self.state
        if now - started >= self.timing.backoff_reset:
            st.delay = self.timing.backoff_first
        delay = st.delay
        st.delay = min(st.delay * 2, self.timing.backoff_max)
        st.restart_at = now + delay
        self.log(f"service exited: {what}; restarting in {delay:g}s")

    def _sweep(self, gen: Generation, now: float) -> None:
        """After a generation's main process exits, stop what is left of its process group."""
        if gen.notify is not None:
            gen.notify.close()
            gen.notify = None
        if gen.ignored_unlogged:
            self.log(
                f"generation {gen.number}: {gen.ignored_unlogged} more notify messages from "
                "processes outside it ignored"
            )
        pidfds = self._signal_session(gen.pid, self.service.stop_signal)
        if pidfds:
            self.state.leftovers[gen.pid] = (now + self.timing.stop_timeout, pidfds)
        else:
            self._forget(gen.pid)

    def _signal_session(self, session: int, sig: int) -> list[int]:
        """Signal every live process of a generation's session — also one that moved to a
        process group of its own — through a pidfd, so that a pid reused meanwhile is never
        hit; the pidfds of those signalled (the caller closes them)."""
        pidfds = []
        for pid in self.inspector.session(session):
            try:
                pidfd = os.pidfd_open(pid)
            except OSError:
                continue
            st = self.inspector.stat(pid)  # the pid is pinned now: is it still that process?
            if st is None or st.session != session:
                os.close(pidfd)
                continue
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(pidfd, sig)
            pidfds.append(pidfd)
        return pidfds

    def _kill_session(self, session: int) -> None:
        """SIGKILL what runs in a session whose leader still lives (so its id is not reused)."""
        for pidfd in self._signal_session(session, signal.SIGKILL):
            os.close(pidfd)

    def _kill_leftovers(self, session: int, pidfds: list[int]) -> None:
        """SIGKILL the leftovers signalled at the sweep; the session is looked at again only
        while one of them still lives in it (an empty session's id may belong to others)."""
        alive = False
        for pidfd in pidfds:
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                alive = True
            os.close(pidfd)
        if alive:
            self._kill_session(session)
        self._forget(session)

    def _forget(self, session: int) -> None:
        """Tell the watchdog that a generation's session is empty: its id may be reused."""
        if self._watchdog >= 0:
            with contextlib.suppress(OSError):
                os.write(self._watchdog, f"-{session}\n".encode())

    def _cleanup(self) -> None:
        st = self.state
        for gen in self._live():
            if gen.notify is not None:
                gen.notify.close()
        for session, (_, pidfds) in st.leftovers.items():
            self._kill_leftovers(session, pidfds)
        st.leftovers.clear()
        if self._watchdog >= 0:  # what is still left of any generation goes with us
            os.close(self._watchdog)
            self._watchdog = -1
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass

    def _start(self) -> Generation | int:
        """Fork and exec a new generation; an int is the exit code of a failed exec."""
        st = self.state
        number = st.next_number
        st.next_number += 1
        notify: socket.socket | None = None
        err_r = err_w = -1
        step = "socket"
        try:
            notify = _notify_socket() if self.service.ready == "notify" else None
            env = dict(self.service.env)
            if notify is not None:
                env["NOTIFY_SOCKET"] = "@" + notify.getsockname()[1:].decode()
            step = "pipe"
            err_r, err_w = os.pipe2(os.O_CLOEXEC)
            blocked = signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED)
            parent = os.getpid()
            step = "fork"
            try:
                pid = os.fork()
                if pid == 0:  # pragma: no cover - the child execs or exits
                    _exec_child(self.service, env, err_w, parent)
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        except OSError as exc:  # EAGAIN (RLIMIT_NPROC, pids.max), EMFILE: this start fails
            for fd in (err_r, err_w):
                if fd >= 0:
                    os.close(fd)
            if notify is not None:
                notify.close()
            self.log(f"cannot start generation {number}: {step}: {exc.strerror or exc}")
            first, self._on_first_start = self._on_first_start, None
            if first is not None:
                first(False)
            return START_FAILED
        os.close(err_w)
        with os.fdopen(err_r, "rb") as pipe:
            report = pipe.read()
        first, self._on_first_start = self._on_first_start, None
        if report:
            os.waitpid(pid, 0)
            if notify is not None:
                notify.close()
            err, _, what = report.decode(errors="replace").partition(":")
            st.exec_errno = int(err) if err.isdigit() else errno.EIO
            code = 127 if st.exec_errno == errno.ENOENT else 126
            self.info(f"cannot run {what}: {os.strerror(st.exec_errno)}")
            if first is not None:
                first(False)
            return code
        if first is not None:
            first(True)
        if self._watchdog >= 0:
            with contextlib.suppress(OSError):
                os.write(self._watchdog, f"{pid}\n".encode())
        self.info(f"generation {number} started (pid {pid})")
        return Generation(number=number, pid=pid, started=time.monotonic(), notify=notify)


def _exec_child(service: Service, env: dict[str, str], err_w: int, parent: int) -> None:
    """In the forked child: a session of its own (no controlling terminal, and no process from
    outside can join it), killed when the supervisor dies, default signals, the relay's stdio,
    fds 3.., LISTEN_PID, RLIMIT_NOFILE, exec."""
    what = service.executable
    try:
        os.setsid()
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the supervisor died before the prctl: no one to serve
            os._exit(127)
        signal.set_wakeup_fd(-1)
        for sig in (*HANDLED, signal.SIGPIPE, signal.SIGXFSZ):
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, ())
        for target, source in service.stdio.items():
            os.dup2(source, target, inheritable=True)
        n = len(service.fds)
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3 + n) for fd in service.fds]
        err_w = fcntl.fcntl(err_w, fcntl.F_DUPFD_CLOEXEC, 3 + n)
        for i, fd in enumerate(high):
            os.dup2(fd, 3 + i, inheritable=True)
        drop.close_from(3 + n, (err_w,))
        if n:
            env["LISTEN_PID"] = str(os.getpid())
        if service.nofile is not None:
            import resource

            if resource.getrlimit(resource.RLIMIT_NOFILE) != service.nofile:
                resource.setrlimit(resource.RLIMIT_NOFILE, service.nofile)
        os.execve(what, service.argv, env)  # noqa: S606 - exec without a shell is the point
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.write(err_w, f"{exc.errno or errno.EIO}:{what}".encode(errors="replace"))
    finally:
        os._exit(127)


def _credentials(ancillary: list[tuple[int, int, bytes]]) -> tuple[int, int]:
    """(pid, uid) of a datagram's SCM_CREDENTIALS; (0, -1) without them."""
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid, uid, _gid = struct.unpack("iII", payload[:12])
            return pid, uid
    return 0, -1


def _notify_socket() -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    sock.bind(f"\0unroot/notify/{os.getpid()}/{secrets.token_hex(8)}")
    sock.setblocking(False)
    return sock


def _kill(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def _quiet(message: str) -> None:
    """``Supervisor.info`` when only problems are worth a line (the relay without --supervise)."""


def _noop(signum: int, frame: FrameType | None) -> None:
    """The Python-level handler; the C-level one writes the signal to the wakeup fd."""


def _prctl(option: int, arg: int) -> None:
    from unroot.syscalls import prctl

    prctl(option, arg)


# --- the entry point for ``unroot run --supervise`` -------------------------------------------


def supervise(
    plan: LaunchPlan,
    socks: Sequence[BoundSocket],
    *,
    executable: str | None = None,
    env: Mapping[str, str] | None = None,
    timing: Timing | None = None,
    relay: Relay | None = None,
    janitor: Janitor | None = None,
) -> int:
    """Drop every privilege of this process, then run generations of ``plan``'s service on
    ``socks`` until it ends; the exit code for ``unroot``.

    ``env`` is the service's environment without LISTEN_* (default:
    ``plan.environment(os.environ)``), ``executable`` the resolved command (default: looked up
    in that PATH after the drop, as the service's user) — as for ``drop.exec_service``.

    Without ``plan.supervise`` this is the terminal relay of ``unroot run`` (launch/terminal.py):
    one generation, no restart, no reload, every signal forwarded, nothing logged but problems,
    a failed exec reported as the exec path reports it, and a death by signal passed on as one.
    ``janitor`` is released once the first generation runs, told to clean if it cannot.
    """
    from unroot.launch import terminal
    from unroot.launch.plan import listen_environment

    service_env = plan.environment(os.environ) if env is None else dict(env)
    keep = {bound.sock.fileno() for bound in socks}
    keep.update(relay.fds() if relay is not None else ())
    keep.update([janitor.fd] if janitor is not None and janitor.fd is not None else [])
    drop.close_from(3, keep)  # what unroot inherited (7</etc/shadow), as the exec path does
    for bound in socks:
        bound.directory = None  # closed: the janitor has its own
    drop.drop_privileges(plan)
    with contextlib.suppress(OSError):  # no ptrace, no /proc/PID/fd for same-uid processes
        _prctl(PR_SET_DUMPABLE, 0)
    if os.getsid(0) != os.getpid():
        terminal.detach()
    drop.settle(service_env)
    path = executable or drop.which(plan.argv[0], service_env.get("PATH") or drop.default_path())
    if path is None:
        if janitor is not None:
            janitor.clean()
        raise UsageError(f"{plan.argv[0]}: command not found")
    listen_env = listen_environment([bound.spec for bound in socks], 0)
    listen_env.pop("LISTEN_PID", None)
    service_env.update(listen_env)
    service = Service(
        executable=path,
        argv=tuple(plan.argv),
        env=service_env,
        fds=tuple(bound.sock.fileno() for bound in socks),
        ready_fd=_first_stream(socks),
        restart=_restart(plan.restart) if plan.supervise else "never",
        ready=_ready(plan.ready) if plan.supervise else "none",
        reload_signal=plan.reload_signal,
        stop_signal=plan.stop_signal,
        reload=plan.supervise,
        stdio=relay.stdio if relay is not None else {},
        nofile=drop.service_nofile(plan),
    )
    _flush_std()

    def first_start(ok: bool) -> None:
        if janitor is not None:
            janitor.release() if ok else janitor.clean()

    supervisor = Supervisor(
        service,
        timing or Timing(ready_timeout=plan.ready_timeout, stop_timeout=plan.stop_timeout),
        relay=relay,
        bound_stop=plan.supervise,  # the relay lets the service stop as long as it takes
        verbose=plan.supervise,
        on_first_start=first_start,
    )
    try:
        code = supervisor.run()
    except OSError as exc:  # no fd or memory for its own pipe: the system refuses
        raise EnvironmentProblem(f"the supervisor cannot run: {exc.strerror or exc}") from None
    state = supervisor.state
    if plan.supervise:
        return code
    if state.exec_errno is not None:
        raise drop.exec_error(plan, path, OSError(state.exec_errno, os.strerror(state.exec_errno)))
    if state.wait_status is not None and os.WIFSIGNALED(state.wait_status):
        _die_like(os.WTERMSIG(state.wait_status))
    return code


def _flush_std() -> None:
    """Flush Python's stdout and stderr (None when unroot started with that fd closed)."""
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            with contextlib.suppress(OSError, ValueError):
                stream.flush()


def _die_like(sig: int) -> None:
    """End this process by the signal that ended the service, so that whoever waits for us
    (a shell: "Interrupted", a script loop) sees what it would have seen without the relay."""
    if sig in (signal.SIGKILL, signal.SIGSTOP):
        os.kill(os.getpid(), signal.SIGKILL)
    _flush_std()
    with contextlib.suppress(OSError, ValueError):
        signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, (sig,))
        os.kill(os.getpid(), sig)


def _first_stream(socks: Sequence[BoundSocket]) -> int | None:
    """The listener --ready tcp watches: the first TCP socket, else the first unix stream."""
    streams = [b.sock for b in socks if b.sock.type == socket.SOCK_STREAM]
    inet = [s for s in streams if s.family in (socket.AF_INET, socket.AF_INET6)]
    chosen = inet or streams
    return chosen[0].fileno() if chosen else None


def _restart(value: str) -> Restart:
    if value == "always":
        return "always"
    if value == "never":
        return "never"
    return "on-failure"


def _ready(value: str) -> Ready:
    if value == "notify":
        return "notify"
    if value == "tcp":
        return "tcp"
    return "none"
