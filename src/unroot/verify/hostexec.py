"""``unroot verify --exec PATH --port P [--user U] -- ARGS``: a host binary in a network
namespace of its own (``unshare --net``, loopback up), as ``--user`` (``setpriv``: the uid
change from root clears every capability, so only the file's own capabilities are left).

The model's column: a root shell's credentials (or, with ``--user``, a user's: no
capabilities, full bounding set) → execve of PATH with the file capabilities it has on this
host → bind in a new network namespace (ip_unprivileged_port_start 1024, owned by the initial
user namespace).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import time
from dataclasses import dataclass

from unroot.errors import EnvironmentProblem, UnrootError, UsageError
from unroot.facts.filecaps import read_file_caps
from unroot.facts.proc import read_status
from unroot.model.execve import ExecFile, Kernel
from unroot.model.runtimes import NEW_NETNS_PORT_START, ROOT_SHELL, USER_SHELL
from unroot.situation.image import EngineNetns, RunCell, predict_cell
from unroot.verify.netns import Netns
from unroot.verify.observe import Observation, Probe, _probe
from unroot.verify.outcomes import classify, last_lines
from unroot.verify.run import CellReport, Report

_POLL = 0.1


@dataclass(frozen=True)
class ExecRequest:
    path: str
    args: tuple[str, ...]
    port: int
    user: str | None
    probe_path: str | None
    status: int
    timeout: float
    predict_only: bool


def _identity(user: str | None) -> tuple[int, int, str]:
    if user is None:
        return 0, 0, "root"
    name, _, group = user.partition(":")
    try:
        entry = pwd.getpwnam(name) if not name.isdigit() else None
    except KeyError:
        raise UsageError(f"--user {user!r}: no such user on this host") from None
    uid = entry.pw_uid if entry else int(name)
    gid = int(group) if group.isdigit() else (entry.pw_gid if entry else uid)
    return uid, gid, user


def verify_exec(request: ExecRequest) -> Report:
    path = shutil.which(request.path) if "/" not in request.path else request.path
    if path is None or not os.path.isfile(path):
        raise UsageError(f"--exec {request.path!r}: no such file")
    if not os.access(path, os.X_OK):
        raise UsageError(f"--exec {path}: not executable")
    uid, gid, shown = _identity(request.user)
    caps = read_file_caps(path)
    kernel = Kernel.parse(os.uname().release)
    runtime = ROOT_SHELL if uid == 0 else USER_SHELL
    netns = EngineNetns(
        NEW_NETNS_PORT_START,
        "a new network namespace (unshare --net): ip_unprivileged_port_start 1024, owned "
        "by the initial user namespace",
    )
    cell = RunCell("own")
    predicted = predict_cell(
        runtime,
        cell,
        uid,
        gid,
        (gid,),
        [ExecFile(path, caps)],
        request.port,
        netns,
        kernel=kernel,
    )
    entry = CellReport("own netns", cell, shown, predicted, requested=True)
    probe = Probe(request.port, request.probe_path, request.status)
    version = subprocess.run(
        ["unshare", "--version"], capture_output=True, text=True, check=False
    ).stdout.split()
    report = Report(
        None,
        "",
        {"name": "unshare", "version": version[-1] if version else "", "rootless": False},
        request.port,
        probe.text,
        [entry],
        request.predict_only,
        False,
        notes=[
            f"exec: {path}: "
            + (f"file capabilities {caps.to_text()}" if caps else "no file capabilities"),
            netns.note,
        ],
        exec_path=path,
    )
    if not request.predict_only:
        entry.observed = _observe(path, request, uid, gid)
    return report


def _observe(path: str, request: ExecRequest, uid: int, gid: int) -> Observation:
    if os.geteuid() != 0:
        raise EnvironmentProblem("--exec needs root (unshare --net, setpriv)")
    inner = [path, *request.args]
    if request.user is not None:
        inner = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", *inner]
    argv = ["unshare", "--net", "--", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *inner]
    ours = Netns()
    ours.close()
    began = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
        )
    except OSError as exc:
        raise EnvironmentProblem(f"cannot run unshare: {exc.strerror}") from None
    netns: Netns | None = None
    cap_eff: str | None = None
    port_start: int | None = None
    last = "the port never accepted"
    try:
        while True:
            if proc.poll() is not None:
                text = proc.stdout.read() if proc.stdout else ""
                return Observation(
                    classify(text),
                    f"exit status {proc.returncode}",
                    last_lines(text),
                    cap_eff,
                    port_start,
                    seconds=time.monotonic() - began,
                )
            if netns is None:
                try:
                    candidate = Netns(proc.pid)
                    if candidate.inode != ours.inode:
                        netns = candidate
                        port_start = netns.port_start()
                    else:
                        candidate.close()
                except UnrootError:
                    netns = None
            if netns is not None:
                answer = _probe(netns, Probe(request.port, request.probe_path, request.status))
                if answer is None:
                    try:
                        cap_eff = f"0x{read_status(proc.pid).effective.mask:016x}"
                    except UnrootError:
                        cap_eff = None
                    return Observation(
                        "serving",
                        f"{(request.probe_path and 'HTTP') or 'TCP'} ready in net:[{netns.inode}]",
                        (),
                        cap_eff,
                        port_start,
                        seconds=time.monotonic() - began,
                    )
                last = answer
            if time.monotonic() - began > request.timeout:
                return Observation(
                    "timeout",
                    f"neither served nor exited in time ({last})",
                    (),
                    cap_eff,
                    port_start,
                    seconds=time.monotonic() - began,
                )
            time.sleep(_POLL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if netns is not None:
            netns.close()
