"""What stopped a container, from the wordings engines and servers use (not one of them)."""

from __future__ import annotations

import pytest

from unroot.verify.outcomes import classify, last_lines

CASES = [
    ("exec /usr/local/bin/httpd: operation not permitted", "exec-eperm"),  # runc >= 1.1 log
    (
        "docker: Error response from daemon: OCI runtime create failed: container_linux.go:380: "
        'starting container process caused: exec: "/usr/local/bin/httpd": operation not '
        "permitted: unknown.",
        "exec-eperm",
    ),  # runc < 1.1, docker run itself
    (
        "Error: crun: exec container process `/usr/local/bin/httpd`: Operation not permitted: "
        "OCI permission denied",
        "exec-eperm",
    ),  # crun
    ("httpd: bind: Permission denied", "bind-eacces"),  # busybox
    ("listen tcp :80: bind: permission denied", "bind-eacces"),  # Go
    (
        "2024/01/01 [emerg] 1#1: bind() to 0.0.0.0:80 failed (13: Permission denied)",
        "bind-eacces",
    ),  # nginx
    ("Error: Permission denied (os error 13) while trying to bind 0.0.0.0:80", "bind-eacces"),
    (
        'Traceback (most recent call last):\n  File "/app.py", line 3, in <module>\n'
        "    sock.bind(('', 80))\nPermissionError: [Errno 13] Permission denied",
        "bind-eacces",
    ),  # Python
    ("listen tcp :80: bind: address already in use", "crashed"),
    ("panic: runtime error: invalid memory address", "crashed"),
    ("", "crashed"),
]


@pytest.mark.parametrize(("text", "outcome"), CASES)
def test_classify(text: str, outcome: str) -> None:
    assert classify(text) == outcome


def test_last_lines() -> None:
    assert last_lines("a\n\nb\nc\n", 2) == ("b", "c")
