"""``unroot verify``'s bad input and unreachable engines: one line, exit 2 or 3 (no engine
needed: nothing is started)."""

from __future__ import annotations

import pytest
from _cliutil import run


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--image", "x", "--port", "0"], "--port '0': expected a port 1..65535"),
        (["--image", "x", "--port", "70000"], "expected a port"),
        (["--exec", "/bin/true", "--port", "80", "--matrix"], "--matrix"),
        (["--exec", "/bin/true"], "--exec needs --port"),
        (["--exec", "/nonexistent/x", "--port", "80"], "no such file"),
        (["--port", "80"], "one of the arguments --image --exec is required"),
        (["--image", "x", "--timeout", "0"], "--timeout"),
        (["--image", "x", "--status", "999"], "--status"),
        (["--image", "x", "--http", "/", "--tcp"], "not allowed with"),
        (["--image", "x", "--engine", "lxc"], "invalid choice"),
        (["--image", "x", "--format", "yaml"], "invalid choice"),
    ],
)
def test_bad_input(capsys: pytest.CaptureFixture[str], argv: list[str], says: str) -> None:
    code, out, err = run(capsys, "verify", *argv)
    assert code == 2, err
    assert out == ""
    assert err.count("\n") == 1, err
    assert err.startswith("unroot: "), err
    assert says in err


@pytest.mark.parametrize("engine", ["docker", "podman"])
def test_unreachable_engine(capsys: pytest.CaptureFixture[str], engine: str) -> None:
    host = "unix:///nonexistent/unroot-verify.sock"
    code, out, err = run(capsys, "verify", "--image", "x", "--engine", engine, "--host", host)
    assert code == 3, err
    assert out == ""
    assert err.count("\n") == 1, err
    assert err.startswith("unroot: "), err
