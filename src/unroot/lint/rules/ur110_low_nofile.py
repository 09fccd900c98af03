"""The open-files limit is set too low for a server.

What it does
    Reports a systemd ``LimitNOFILE=`` or a compose ``ulimits: nofile`` whose *hard* limit is
    below 4096, or whose soft limit is below the kernel's default of 1024.  A service that
    holds ``cap_sys_resource`` (root with the default bounding set: FRR's start script runs
    ``ulimit -n $MAX_FDS``) can raise its own hard limit: that finding is an info, with the
    assumption that it does not.

Why is this bad?
    Every connection, file and pipe is a descriptor; past the limit ``accept()``/``open()`` fail
    with EMFILE ("too many open files") and the server drops clients.  The hard limit is a
    ceiling nothing inside the service can raise (Go raises its soft limit to the hard limit at
    start; Python and Node do not raise it at all).  Why 4096: a proxy holds two descriptors per
    client, so a hard limit below 4096 caps it below ~2000 concurrent clients; seed 003's
    homelab hit "too many open files" with a limit of exactly 4096 for a whole stack; systemd
    (≥ 240) gives services 1024 soft / 524288 hard precisely so that programs that need more
    can raise the soft limit.  A soft limit alone at or above 1024 is that default and is not
    reported.

Example
    ``LimitNOFILE=1024`` in a web server's unit.

Use instead
    Leave the hard limit high (``LimitNOFILE=1024:524288``, systemd's default, or ``65536``) and
    let the server raise its soft limit, or set both high (``LimitNOFILE=65536``; compose
    ``ulimits: {nofile: {soft: 65536, hard: 65536}}``).

References
    - seed 003: "Too many open files" and LimitNOFILE of rootless dockerd
    - systemd.exec(5) LimitNOFILE=; Lennart Poettering, "File Descriptor Limits" (2021)
    - getrlimit(2); Go 1.19 release notes (RLIMIT_NOFILE)

UR110: a unit capped at 1024 descriptors
    # kind: systemd
    [Service]
    User=www-data
    ExecStart=/usr/local/bin/app --port 8080
    LimitNOFILE=1024

Okay: a high hard limit
    # kind: systemd
    [Service]
    User=www-data
    ExecStart=/usr/local/bin/app --port 8080
    LimitNOFILE=4096:65536

UR110: a compose worker at 1024
    # kind: compose
    services:
      worker:
        image: registry.example.org/worker:1.4
        user: "1000:1000"
        ulimits:
          nofile: 1024

UR110: an info: root may raise its own hard limit (it holds cap_sys_resource)
    # kind: systemd
    [Service]
    ExecStart=/usr/lib/frr/frrinit.sh start
    LimitNOFILE=2048

Okay: compose at 65536
    # kind: compose
    services:
      worker:
        image: registry.example.org/worker:1.4
        user: "1000:1000"
        ulimits:
          nofile: {soft: 65536, hard: 65536}
"""

from __future__ import annotations

from collections.abc import Iterator

from unroot.lint.registry import Report, rule
from unroot.situation import Situation

#: Below this hard limit a server cannot hold ~2000 proxied clients (see the rule's doc).
MIN_HARD = 4096
KERNEL_SOFT = 1024


@rule("UR110", topic="low-nofile", severity="warning", kinds=("compose", "systemd"))
def low_nofile(situation: Situation) -> Iterator[Report]:
    """The open-files limit is set too low for a server."""
    workload = situation.workload
    if workload is None or workload.nofile is None:
        return
    soft, hard = workload.nofile
    setting = "LimitNOFILE=" if situation.kind == "systemd" else "ulimits: nofile"
    fix = (
        "LimitNOFILE=1024:524288 (systemd's default; the server raises its soft limit) or "
        "LimitNOFILE=65536"
        if situation.kind == "systemd"
        else "ulimits: {nofile: {soft: 65536, hard: 65536}}"
    )
    if hard is not None and hard < MIN_HARD:
        final = situation.final
        if final is not None and "cap_sys_resource" in final.effective:
            yield Report(
                situation.where("nofile"),
                f"{setting} caps open files at {hard} (the hard limit) unless the service "
                "raises it itself, which it may: it holds cap_sys_resource; if it does not, "
                f"past ~{hard} connections and files accept() and open() fail with EMFILE",
                fix=f"set a hard limit of at least {MIN_HARD}: {fix}",
                severity="info",
                assumptions=(
                    "the service does not raise RLIMIT_NOFILE itself (setrlimit() or `ulimit "
                    "-n` as root with cap_sys_resource can)",
                ),
            )
            return
        yield Report(
            situation.where("nofile"),
            f"{setting} caps open files at {hard} (the hard limit, which the service cannot "
            f"raise): past ~{hard} connections and files accept() and open() fail with EMFILE "
            "(too many open files)",
            fix=f"set a hard limit of at least {MIN_HARD}: {fix}",
        )
    elif soft is not None and soft < KERNEL_SOFT:
        yield Report(
            situation.where("nofile"),
            f"{setting} sets the soft limit to {soft}, below the kernel's default of "
            f"{KERNEL_SOFT}: servers that do not raise it fail with EMFILE after {soft} "
            "descriptors",
            fix=fix,
        )
