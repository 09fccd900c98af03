"""A hostile service for the terminal tests: try to act on the terminal unroot was started from.

    tty_probe.py REPORT TARGET [--read SECONDS] [--tick]

For each of fds 0, 1, 2 and /dev/tty it tries TIOCSTI (push ``id > TARGET`` and a newline into
the terminal's input: the shell would run it as root), TIOCLINUX (selection paste), TIOCSPGRP
(take the terminal's foreground) and TIOCNOTTY, and with ``--read`` it reads whatever arrives on
fds 0-2 (keystrokes typed at the terminal) for that long. It writes what happened as JSON to
REPORT, prints a line on stdout and one on stderr, and with ``--tick`` then prints ``tick N``
twice a second until a signal ends it. Standard library only: it runs as nobody.
"""

import errno
import fcntl
import json
import os
import select
import struct
import sys
import termios
import time

TIOCLINUX = 0x541C
TIOCL_PASTESEL = 3


def name(exc):
    return errno.errorcode.get(exc.errno, str(exc.errno))


def main():
    report_path, target = sys.argv[1], sys.argv[2]
    read_for = float(sys.argv[sys.argv.index("--read") + 1]) if "--read" in sys.argv else 0
    report = {"tried": {}, "read": ""}
    fds = {"0": 0, "1": 1, "2": 2}
    try:
        fds["/dev/tty"] = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError as exc:
        report["tried"]["open /dev/tty"] = name(exc)
    for label, fd in fds.items():
        attempts = {
            "TIOCSTI": lambda fd: [
                fcntl.ioctl(fd, termios.TIOCSTI, bytes([ch])) for ch in f"id > {target}\n".encode()
            ],
            "TIOCLINUX": lambda fd: fcntl.ioctl(fd, TIOCLINUX, bytes([TIOCL_PASTESEL])),
            "TIOCSPGRP": lambda fd: fcntl.ioctl(
                fd, termios.TIOCSPGRP, struct.pack("i", os.getpgrp())
            ),
        }
        for what, attempt in attempts.items():
            try:
                attempt(fd)
                report["tried"][f"{what} {label}"] = "ok"
            except OSError as exc:
                report["tried"][f"{what} {label}"] = name(exc)
    deadline = time.monotonic() + read_for
    for fd in (0, 1, 2):
        os.set_blocking(fd, False)
    while time.monotonic() < deadline:
        ready, _, _ = select.select([0, 1, 2], [], [], 0.1)
        for fd in ready:
            try:
                data = os.read(fd, 4096)
            except OSError:
                continue
            report["read"] += data.decode(errors="replace")
        if not ready:
            continue
        time.sleep(0.05)  # /dev/null is always readable (EOF): do not spin
    for fd in (0, 1, 2):
        os.set_blocking(fd, True)
    with open(report_path, "w") as out:
        json.dump(report, out)
    print("probe: stdout reaches the terminal", flush=True)
    print("probe: stderr reaches the terminal", file=sys.stderr, flush=True)
    if "--tick" in sys.argv:
        count = 0
        while True:
            print(f"tick {count}", flush=True)
            count += 1
            time.sleep(0.5)


main()
