"""``unroot doctor`` with no question: what this host does about privileged ports and files.

The sysctl, each user's rootless engines (port driver, rootlesskit's file caps against its
running set, open-file limits), the container daemons' open-file limits, who listens below
``ip_unprivileged_port_start`` and as whom, and the binaries that carry file capabilities in
the usual places (and in each rootless owner's ``~/bin``, where the rootless installer puts
rootlesskit).
"""

from __future__ import annotations

import contextlib
import os
import pwd
from typing import Any

from .checks import NOFILE_ENOUGH, SYSCTL
from .engines import daemons
from .host import Host

#: Where packages and admins put programs (the file-capable ones among them are shown).
PROGRAM_DIRS = ("/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin", "/opt")


def _limit(limit: Any) -> dict[str, int | None] | None:
    if limit is None:
        return None
    return {"soft": limit.soft, "hard": limit.hard}


def gather(host: Host) -> dict[str, Any]:
    """The overview as JSON-ready data; a part that cannot be read says why (``problem``)."""
    from unroot.facts.filecaps import scan
    from unroot.facts.listeners import listeners_below
    from unroot.facts.processes import read_process

    data: dict[str, Any] = {}
    start = Host.attempt(lambda: host.port_start(None))
    data["unprivileged_port_start"] = start if isinstance(start, int) else None
    engines = Host.attempt(host.engines)
    rows = []
    homes = []
    for engine in engines if not isinstance(engines, str) else ():
        kit = engine.rootlesskit
        rows.append(
            {
                "engine": engine.engine,
                "owner": engine.user,
                "uid": engine.uid,
                "socket": engine.socket,
                "version": engine.version,
                "rootless": engine.rootless,
                "daemon_pid": engine.daemon_pid,
                "nofile": _limit(engine.daemon_nofile),
                "problem": engine.problem or None,
                "rootlesskit": None
                if kit is None
                else {
                    "pid": kit.pid,
                    "binary": kit.binary,
                    "file_caps": kit.file_caps.to_text() if kit.file_caps else None,
                    "effective": kit.effective.names(),
                    "port_driver": kit.port_driver,
                    "restart_needed": kit.restart_needed,
                },
            }
        )
        with contextlib.suppress(KeyError):
            homes.append(os.path.join(pwd.getpwuid(engine.uid).pw_dir, "bin"))
    data["rootless_engines"] = rows
    data["rootless_problem"] = engines if isinstance(engines, str) else None
    data["daemons"] = [
        {
            "daemon": d.label,
            "pid": d.pid,
            "uid": d.uid,
            "nofile": _limit(d.nofile),
            "unit": d.unit,
            "unit_limit": None if d.unit_setting is None else d.unit_setting[0],
            "unit_file": None if d.unit_setting is None else d.unit_setting[1],
        }
        for d in daemons(host)
    ]
    listeners = Host.attempt(lambda: host.listeners(None))
    below = []
    if not isinstance(listeners, str) and isinstance(start, int):
        for found in listeners_below(listeners, start):
            names = []
            for pid in found.pids[:3]:
                proc = read_process(pid, host.procfs)
                names.append(proc.comm if proc else "?")
            below.append(
                {
                    "proto": found.proto,
                    "address": found.address,
                    "port": found.port,
                    "pids": list(found.pids),
                    "uids": list(found.uids),
                    "commands": names,
                }
            )
    data["listeners_below"] = below
    roots = [d for d in (*PROGRAM_DIRS, *dict.fromkeys(homes)) if os.path.isdir(d)]
    result = scan(roots, one_file_system=True)
    data["file_caps"] = [
        {"path": f.path, "caps": f.caps.to_text()} for f in result.files if f.caps is not None
    ]
    return data


def render(data: dict[str, Any]) -> list[str]:
    """The overview as text lines."""
    lines = ["host overview"]
    start = data["unprivileged_port_start"]
    lines.append(
        f"  {SYSCTL} = {start if start is not None else '? (unreadable)'}"
        + ("  (ports below it need cap_net_bind_service)" if start else "")
    )
    lines.append("rootless engines")
    if not data["rootless_engines"]:
        lines.append(
            f"  none answers{': ' + data['rootless_problem'] if data['rootless_problem'] else ''}"
        )
    for row in data["rootless_engines"]:
        head = f"  {row['owner']} (uid {row['uid']}): {row['engine']} {row['version'] or '?'}"
        if row["problem"]:
            lines.append(f"{head}: does not answer: {row['problem']}")
            continue
        lines.append(f"{head}, daemon pid {row['daemon_pid']}, open files {_nofile(row['nofile'])}")
        kit = row["rootlesskit"]
        if kit is not None:
            caps = kit["file_caps"] or "no file caps"
            running = ",".join(kit["effective"]) or "none"
            mark = "  ← restart needed" if kit["restart_needed"] else ""
            lines.append(
                f"    rootlesskit {kit['binary']}: {caps}; running CapEff {running}; "
                f"port driver {kit['port_driver']}{mark}"
            )
        elif row["engine"] == "podman":
            lines.append("    ports via rootlessport: only the host's sysctl opens ports below it")
    lines.append("container daemons' open-file limits")
    for row in data["daemons"]:
        mark = "✓" if _enough(row["nofile"]) else "✗"
        unit = (
            f"; {row['unit']} sets LimitNOFILE={row['unit_limit']} ({row['unit_file']})"
            if row["unit_limit"]
            else ""
        )
        lines.append(f"  {mark} {row['daemon']} (pid {row['pid']}): {_nofile(row['nofile'])}{unit}")
    if not data["daemons"]:
        lines.append("  no container daemon runs")
    lines.append(f"listeners below {start}")
    for row in data["listeners_below"]:
        who = ", ".join(
            f"{c} (pid {p})" for c, p in zip(row["commands"], row["pids"], strict=False)
        )
        lines.append(
            f"  {row['proto']} {row['address']}:{row['port']}  {who or 'no process'}  "
            f"uid {','.join(map(str, row['uids'])) or '?'}"
        )
    if not data["listeners_below"]:
        lines.append("  none")
    lines.append("binaries with file capabilities")
    for row in data["file_caps"]:
        lines.append(f"  {row['path']} {row['caps']}")
    if not data["file_caps"]:
        lines.append("  none")
    return lines


def _nofile(limit: dict[str, int | None] | None) -> str:
    if limit is None:
        return "?"
    shown = ["unlimited" if v is None else str(v) for v in (limit["soft"], limit["hard"])]
    return f"{shown[0]} (hard {shown[1]})"


def _enough(limit: dict[str, int | None] | None) -> bool:
    return limit is not None and (limit["soft"] is None or limit["soft"] >= NOFILE_ENOUGH)
