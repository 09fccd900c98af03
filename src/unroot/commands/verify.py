"""``unroot verify``: run the image on a real engine (or a host binary in a network namespace of
its own) and compare the model's prediction with what happens."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from unroot.errors import UsageError

DESCRIPTION = """\
Run IMAGE on a real engine with the given user, network, capability changes and
no-new-privileges; wait until the port accepts inside the container's network namespace and
GET PATH answers with the expected status (--tcp: accepting is enough), within --timeout
seconds per cell; report serving, exec-eperm, bind-eacces, crashed or timeout with the
container's last log lines, the process's CapEff, the namespace's ip_unprivileged_port_start
and the model's explanation.  --matrix runs {bridge, host} x {default, drop ALL, drop ALL +
add NET_BIND_SERVICE, no-new-privileges} and prints predicted beside observed.
--predict-only reads the image and the engine without starting anything.
Engines: --engine docker|podman; --host URL names the daemon (else DOCKER_HOST, or
CONTAINER_HOST for podman): unix:///run/user/UID/docker.sock is a rootless Docker,
unix:///run/user/UID/podman/podman.sock a rootless Podman.
--exec PATH --port P [--user U] -- ARGS runs a host binary in a network namespace of its own.
Everything started is removed, on Ctrl-C too (--keep-on-failure keeps a failing container).
Exit status: 0 every prediction equals its observation and the requested cell serves
(--predict-only: the requested cell is predicted to serve; with --matrix: the table was
made); 1 otherwise; 2 bad input; 3 the engine cannot be reached."""


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise UsageError(f"--port {text!r}: expected a port 1..65535")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1
    if not 0 < value <= 3600:
        raise UsageError(f"--timeout {text!r}: expected seconds, 0 < S <= 3600")
    return value


def _status(text: str) -> int:
    if not text.isdigit() or not 100 <= int(text) <= 599:
        raise UsageError(f"--status {text!r}: expected an HTTP status 100..599")
    return int(text)


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "verify",
        help="run the image on a real engine and compare the model's prediction",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--image", metavar="IMG", help="the image (name, name:tag or id)")
    what.add_argument("--exec", dest="exec_path", metavar="PATH", help="a host binary")
    parser.add_argument("--engine", choices=("docker", "podman"), default="docker")
    parser.add_argument("--host", metavar="URL", help="the engine's socket (unix://…)")
    parser.add_argument("--port", type=_port, metavar="P", help="default: the image's EXPOSE")
    probe = parser.add_mutually_exclusive_group()
    probe.add_argument("--http", metavar="PATH", default=None, help="GET PATH (default /)")
    probe.add_argument("--tcp", action="store_true", help="accepting a connection is enough")
    parser.add_argument("--status", type=_status, default=200, help="expected HTTP status")
    parser.add_argument("--user", metavar="U", help="uid[:gid] or name (default: the image's)")
    parser.add_argument("--network", choices=("bridge", "host"), default="bridge")
    parser.add_argument("--cap-drop", action="append", default=[], metavar="CAP")
    parser.add_argument("--cap-add", action="append", default=[], metavar="CAP")
    parser.add_argument("--no-new-privileges", action="store_true")
    parser.add_argument("--matrix", action="store_true", help="the standard grid")
    parser.add_argument("--predict-only", action="store_true", help="run nothing")
    parser.add_argument("--keep-on-failure", action="store_true")
    parser.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="also label the containers it starts (repeatable)",
    )
    parser.add_argument("--timeout", type=_seconds, default=60.0, metavar="S", help="per cell")
    parser.add_argument("--format", choices=("text", "json", "markdown", "junit"), default="text")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- ARGS (replaces CMD)")
    parser.set_defaults(handler=handle)


@contextmanager
def _term_interrupts() -> Iterator[None]:
    """SIGINT and SIGTERM stop the run: everything started is removed first (also when the
    shell started unroot in the background, where SIGINT arrives ignored)."""

    def stop(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def handle(args: argparse.Namespace, stdout: TextIO | None = None) -> int:
    from unroot.situation.image import RunCell
    from unroot.verify import render, run

    out = stdout or sys.stdout
    command = tuple(args.command[1:] if args.command[:1] == ["--"] else args.command)
    cell = RunCell(
        args.network,
        tuple(args.cap_drop),
        tuple(args.cap_add),
        args.no_new_privileges,
    )
    probe_path = None if args.tcp else (args.http or "/")
    with _term_interrupts():
        if args.exec_path is not None:
            from unroot.verify import hostexec

            if args.matrix:
                raise UsageError("--matrix runs an image's grid; it does not apply to --exec")
            if args.port is None:
                raise UsageError("--exec needs --port")
            report = hostexec.verify_exec(
                hostexec.ExecRequest(
                    args.exec_path,
                    command,
                    args.port,
                    args.user,
                    probe_path,
                    args.status,
                    args.timeout,
                    args.predict_only,
                )
            )
        else:
            request = run.Request(
                image=args.image,
                engine=args.engine,
                host=args.host,
                user=args.user,
                cell=cell,
                port=args.port,
                probe_path=probe_path,
                status=args.status,
                timeout=args.timeout,
                matrix=args.matrix,
                predict_only=args.predict_only,
                keep_on_failure=args.keep_on_failure,
                command=command,
                labels=tuple(args.label),
            )
            report = run.verify(request, progress=run.terminal_progress())
    out.write(render.render(report, args.format))
    return report.exit_code()


def run_verify(argv: list[str], **streams: Any) -> int:
    from unroot.commands.edge import run_command

    return run_command(register, ["verify", *argv], **streams)
