"""The service starts with default signal dispositions, not Python's ignored SIGPIPE/SIGXFSZ."""

from __future__ import annotations

import subprocess

import pytest
from launchutil import UNROOT, free_port

SIGPIPE, SIGXFSZ = 13, 25


@pytest.mark.root
def test_service_does_not_inherit_ignored_sigpipe_or_sigxfsz() -> None:
    port = free_port()
    done = subprocess.run(
        [
            *UNROOT,
            "run",
            "-l",
            f"127.0.0.1:{port}",
            "--user",
            "nobody",
            "--",
            "grep",
            "^SigIgn:",
            "/proc/self/status",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    ignored = int(done.stdout.split()[1], 16)
    assert not ignored >> (SIGPIPE - 1) & 1, done.stdout
    assert not ignored >> (SIGXFSZ - 1) & 1, done.stdout
