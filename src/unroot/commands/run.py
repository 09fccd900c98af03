"""``unroot run``: bind the sockets as root, become the service's user, exec it with the sockets.

The command line is turned into a :class:`~unroot.launch.plan.LaunchPlan` (pure), checked
against the privileges we hold and the command's PATH lookup as the target user, and only then
are sockets bound; without ``--supervise`` unroot then execs the service and is gone. cli.py
reaches this module by a fast path that imports nothing else: launch latency is a benchmark.
"""

from __future__ import annotations

import os
from types import SimpleNamespace

from unroot.errors import UsageError
from unroot.launch.plan import READY_PROBES, RELOAD_SIGNALS, RESTART_POLICIES

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence
    from typing import Any

    # supervise(plan, socks, *, executable=..., env=...) -> exit code
    Supervisor = Callable[..., int]

USAGE = "unroot run [OPTIONS] [-l SPEC]... -- COMMAND [ARG...]"
DESCRIPTION = """\
Bind each --listen socket while privileged, drop to --user (groups, gid, bounding set, uid,
capabilities, no_new_privs, RLIMIT_NOFILE), and exec COMMAND with the sockets as fds 3, 4, ...
and LISTEN_FDS / LISTEN_PID / LISTEN_FDNAMES set (systemd's socket-activation protocol).

SPEC: 80 | :80 (every address: dual-stack [::]) | 127.0.0.1:80 | [::1]:8443 | [::]:443 |
      tcp://... | udp://... | unix:/run/app.sock | unix:@abstract, with an optional NAME= in
      front (LISTEN_FDNAMES, {fd:NAME}) and options after commas: backlog=N, v6only=0|1,
      mode=0660, owner=USER[:GROUP].
In COMMAND and in -E values, {fd} is the only socket's fd, {fd:NAME} a named one's, {{ and }}
are braces: uvicorn --fd {fd}; nginx wants -E 'NGINX={fd:http};{fd:https};'.

Exit status: the service's (unroot execs it); 2 for a bad option or SPEC, an unknown user or
group, a missing command, a port in use, a root target without --allow-root; 3 when the
system refuses (bind() EACCES — explained —, not allowed to switch users, the drop failed)."""


def register(sub: Any) -> None:
    import argparse

    parser = sub.add_parser(
        "run",
        usage=USAGE,
        help="bind privileged sockets, drop to a user, exec the service with them",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument(
        "-l",
        "--listen",
        action="append",
        default=[],
        metavar="SPEC",
        help="a socket to bind and pass (repeatable; order = fd 3, 4, ...)",
    )
    parser.add_argument("--user", metavar="USER", help="name or uid the service runs as")
    parser.add_argument("--group", metavar="GROUP", help="primary group (default: the user's)")
    groups = parser.add_mutually_exclusive_group()
    groups.add_argument(
        "--groups",
        metavar="G1,G2",
        help="exactly these supplementary groups (default: the user's from the group database)",
    )
    groups.add_argument("--no-groups", action="store_true", help="no supplementary groups at all")
    parser.add_argument(
        "--keep-cap",
        action="append",
        default=[],
        metavar="CAP",
        help="keep this capability as an ambient capability (repeatable; default: keep none)",
    )
    parser.add_argument(
        "--nofile",
        metavar="SOFT[:HARD]",
        help="RLIMIT_NOFILE (default: raise the soft limit to the hard limit)",
    )
    parser.add_argument(
        "--allow-new-privs",
        action="store_true",
        help="do not set no_new_privs (setuid binaries and file capabilities work again)",
    )
    parser.add_argument(
        "--allow-root",
        action="store_true",
        help="allow uid 0 or gid 0 for the service: root without capabilities still owns and "
        "may write root's files (/etc/passwd), so this is not unprivileged",
    )
    parser.add_argument(
        "--supervise",
        action="store_true",
        help="stay as a small parent: restarts, SIGHUP reloads without refused connections",
    )
    parser.add_argument(
        "--restart", choices=RESTART_POLICIES, help="with --supervise (default: on-failure)"
    )
    parser.add_argument(
        "--ready",
        choices=READY_PROBES,
        help="with --supervise: a new generation is ready when it waits on the listener (tcp), "
        "sends sd_notify READY=1 (notify), or after a grace period (none)",
    )
    parser.add_argument("--ready-timeout", metavar="SECONDS", help="with --supervise (default: 30)")
    parser.add_argument(
        "--reload-signal",
        metavar="SIG",
        help="with --supervise: the signal that starts a new generation, "
        f"one of {', '.join(RELOAD_SIGNALS)} (default: HUP; the others are forwarded)",
    )
    parser.add_argument(
        "--stop-signal",
        metavar="SIG",
        help="with --supervise: what the old generation gets once the new one is ready "
        "(default: TERM; e.g. QUIT for nginx's graceful stop)",
    )
    parser.add_argument(
        "--stop-timeout",
        metavar="SECONDS",
        help="with --supervise: SIGKILL an old generation still running this long after its "
        "stop signal (default: 10)",
    )
    parser.add_argument(
        "--env-clear", action="store_true", help="start the service with an empty environment"
    )
    parser.add_argument(
        "-E",
        dest="env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set an environment variable for the service (repeatable; {fd} and {fd:NAME} "
        "in VALUE become fd numbers, as in COMMAND)",
    )
    parser.add_argument(
        "command", nargs=argparse.REMAINDER, metavar="-- COMMAND [ARG...]", help=argparse.SUPPRESS
    )
    parser.set_defaults(handler=handle)


# -- the fast path -----------------------------------------------------------------------------
_VALUE_OPTIONS = {
    "-l": "listen",
    "--listen": "listen",
    "--user": "user",
    "--group": "group",
    "--groups": "groups",
    "--keep-cap": "keep_cap",
    "--nofile": "nofile",
    "--restart": "restart",
    "--ready": "ready",
    "--ready-timeout": "ready_timeout",
    "--reload-signal": "reload_signal",
    "--stop-signal": "stop_signal",
    "--stop-timeout": "stop_timeout",
    "-E": "env",
}
_REPEATED = ("listen", "keep_cap", "env")
_FLAGS = {
    "--no-groups": "no_groups",
    "--allow-new-privs": "allow_new_privs",
    "--allow-root": "allow_root",
    "--supervise": "supervise",
    "--env-clear": "env_clear",
}
_CHOICES = {"restart": RESTART_POLICIES, "ready": READY_PROBES}


def parse_fast(argv: Sequence[str]) -> SimpleNamespace | None:
    """The arguments after ``run`` as argparse would parse them, without importing argparse
    (a quarter of the launch latency) — or None for anything but a plain, well-formed command
    line (``--help``, a mistake, an option value starting with ``-``, ``-l=x``), which cli.py
    then hands to argparse for the answer or the error message. A differential test checks
    every command line this accepts against argparse (tests/launch/test_run_cli.py).
    """
    values: dict[str, Any] = {key: [] for key in _REPEATED}
    values.update(dict.fromkeys(("user", "group", "groups", "nofile", "restart", "ready"), None))
    values.update(dict.fromkeys(_FLAGS.values(), False))
    values.update(dict.fromkeys(("ready_timeout", "reload_signal", "stop_signal"), None))
    values["stop_timeout"], values["command"] = None, []
    index = 0
    while index < len(argv):
        word = argv[index]
        if word in ("--", "-") or not word.startswith("-"):
            values["command"] = list(argv[index:])  # argparse.REMAINDER keeps a leading --
            break
        if word.startswith("--"):
            name, eq, attached = word.partition("=")
        elif word[:2] in _VALUE_OPTIONS and len(word) > 2:
            name, eq, attached = word[:2], "=", word[2:]  # -lSPEC, -ENAME=VALUE
            if attached.startswith("="):
                return None
        else:
            name, eq, attached = word, "", ""
        if name in _FLAGS and not eq:
            values[_FLAGS[name]] = True
            index += 1
            continue
        dest = _VALUE_OPTIONS.get(name)
        if dest is None:
            return None
        if eq:
            value, index = attached, index + 1
        elif index + 1 < len(argv) and not argv[index + 1].startswith("-"):
            value, index = argv[index + 1], index + 2
        else:
            return None
        if dest in _CHOICES and value not in _CHOICES[dest]:
            return None
        if dest in _REPEATED:
            values[dest].append(value)
        else:
            values[dest] = value
    if values["groups"] is not None and values["no_groups"]:
        return None
    return SimpleNamespace(**values, handler=handle)


def handle(args: argparse.Namespace | SimpleNamespace) -> int:
    from unroot.launch import accounts, drop, sockets, terminal
    from unroot.launch.plan import make_plan

    command = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    plan = make_plan(
        accounts=accounts.SystemAccounts(),
        invoker=accounts.invoker(),
        command=command,
        listen=args.listen,
        user=args.user,
        group=args.group,
        groups=args.groups,
        no_groups=args.no_groups,
        keep_caps=args.keep_cap,
        nofile=args.nofile,
        allow_new_privs=args.allow_new_privs,
        allow_root=args.allow_root,
        supervise=args.supervise,
        restart=args.restart,
        ready=args.ready,
        ready_timeout=args.ready_timeout,
        reload_signal=args.reload_signal,
        stop_signal=args.stop_signal,
        stop_timeout=args.stop_timeout,
        env_clear=args.env_clear,
        env=args.env,
    )
    for warning in plan.warnings:
        try:  # noqa: SIM105 - contextlib is not imported on the exec path
            os.write(2, f"unroot: warning: {warning}\n".encode(errors="replace"))
        except OSError:  # stderr closed or full: the warning is lost, the launch goes on
            pass
    isolation = terminal.isolation()
    supervise = _supervisor() if plan.supervise or isolation == "relay" else None
    env = plan.environment(os.environ)
    drop.preflight(plan)
    executable = drop.resolve_command(plan, env)
    socks = sockets.bind_all(plan)
    janitor = None
    try:
        if any(bound.created is not None for bound in socks):  # only socket files need one
            from unroot.launch.janitor import Janitor

            janitor = Janitor.start(socks)
        if supervise is not None:
            relay = terminal.Relay() if isolation == "relay" else None
            return supervise(
                plan, socks, executable=executable, env=env, relay=relay, janitor=janitor
            )
        if isolation == "detach":
            terminal.detach()
        drop.exec_service(plan, socks, executable=executable, env=env, janitor=janitor)
    except BaseException:
        sockets.close_all(socks)
        if janitor is not None:
            janitor.clean()
        raise


def _supervisor() -> Supervisor:
    try:
        from unroot.launch.supervise import supervise
    except ModuleNotFoundError as exc:
        if exc.name != "unroot.launch.supervise":
            raise
        raise UsageError("--supervise not available") from None
    result: Supervisor = supervise
    return result
