"""Red team 2: root's session keyring goes with the service.

The session keyring is inherited across fork and execve and *kept across setuid*: the dropped
service still has root's session keyring as its own, and the keyring's *possessor* permissions
(every process whose session keyring it is) let it search it and read every key in it,
whatever the key's owner — and link or add keys to it. What root keeps there: credentials from
``cifscreds`` (CIFS passwords), eCryptfs mount passphrases, a Kerberos ``KEYRING:`` ccache,
tokens an admin stored with ``keyctl add user ... @s``. systemd gives each service a keyring of
its own (``KeyringMode=private``, the default for system services); sudo/su with
``pam_keyinit.so force revoke`` a new session keyring. unroot drops groups, ids, capabilities,
the environment of root's session — but not this. Here root joins a fresh session keyring,
adds a ``user`` key, runs ``unroot run --user nobody``, and the service reads the key back.
"""

from __future__ import annotations

import ctypes
import platform
import subprocess
import sys

import pytest
from launchutil import UNROOT, need_service_python, private_dir, service_env

pytestmark = pytest.mark.root

SYSCALLS = {"x86_64": (248, 250), "aarch64": (217, 219)}  # add_key, keyctl
SECRET = b"root-vault-token-5f2c"

#: The service, as nobody: search its session keyring for "vault" and read it.
READER = r"""
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
keyctl = int(sys.argv[1])
session = libc.syscall(keyctl, 0, -3, 0)  # KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING
key = libc.syscall(keyctl, 10, session, b"user", b"vault", 0)  # KEYCTL_SEARCH
buf = ctypes.create_string_buffer(256)
n = libc.syscall(keyctl, 11, key, buf, 256) if key > 0 else -1  # KEYCTL_READ
print("read:", buf.raw[:n].decode() if n > 0 else "-", flush=True)
"""


def root_session_keyring_with_a_secret() -> None:  # pragma: no cover - runs in the child
    """preexec_fn: a session keyring of its own for the child (not the test's), one key in it."""
    add_key, keyctl = SYSCALLS[platform.machine()]
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(keyctl, 1, None) <= 0:  # KEYCTL_JOIN_SESSION_KEYRING, anonymous
        raise OSError(ctypes.get_errno(), "join session keyring")
    if libc.syscall(add_key, b"user", b"vault", SECRET, len(SECRET), -3) <= 0:
        raise OSError(ctypes.get_errno(), "add_key")


@pytest.mark.parametrize("mode", [[], ["--supervise", "--restart", "never"]], ids=["exec", "sup"])
def test_the_service_cannot_read_roots_session_keyring(mode: list[str]) -> None:
    if platform.machine() not in SYSCALLS:
        pytest.skip(f"no keyctl syscall numbers for {platform.machine()}")
    python = need_service_python()
    keyctl = SYSCALLS[platform.machine()][1]
    with private_dir() as base:
        reader = base / "reader.py"
        reader.write_text(READER)
        reader.chmod(0o644)
        argv = [*UNROOT, "run", *mode, "--user", "nobody", "--"]
        argv += [python, "-I", "-S", str(reader), str(keyctl)]
        result = subprocess.run(
            argv,
            env=service_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            preexec_fn=root_session_keyring_with_a_secret,  # the child only: no threads there
        )
        assert "read:" in result.stdout, (result.returncode, result.stdout, result.stderr)
        assert SECRET.decode() not in result.stdout, (
            "the service (uid nobody) read a key from root's session keyring: "
            f"{result.stdout.strip()!r}"
        )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-v"]))
