"""A file capability on a script does nothing (the kernel runs its interpreter and ignores the
script's security.capability: CapEff 0, checked with setpriv as uid 65534), so no fix may say
`setcap` on it, nor on its interpreter (PowerDNS's pdns_server-startup, a Python script)."""

from __future__ import annotations

import pytest

from unroot.lint.engine import lint_texts

_HEAD = "FROM debian:12-slim\nRUN useradd -u 953 pdns\n"
_TAIL = 'USER pdns\nEXPOSE 53/udp\nENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/sbin/start"]\n'


@pytest.mark.parametrize(
    ("write", "why"),
    [
        (
            "COPY dockerdata/startup.py /usr/local/sbin/start\n",
            "copies it from dockerdata/startup.py",
        ),
        (
            "COPY <<EOF /usr/local/sbin/start\n#!/usr/bin/env -S python3 -u\nimport os\nEOF\n",
            "starts with #!/usr/bin/env -S python3 -u",
        ),
    ],
)
def test_no_setcap_on_a_script(write: str, why: str) -> None:
    text = _HEAD + write + _TAIL
    result = lint_texts([("Dockerfile", "dockerfile", text)])
    (finding,) = [f for f in result.findings if f.rule == "UR106"]
    assert finding.fix is not None
    assert why in finding.fix
    assert "the kernel ignores file capabilities on scripts" in finding.fix
    assert "setcap 'cap_net_bind_service=+ep' /usr/local/sbin/start" not in finding.fix
    assert "python3" not in finding.fix.split("(")[0]


def test_a_binary_still_gets_the_setcap_fix() -> None:
    text = _HEAD + "COPY build/start /usr/local/sbin/start\n" + _TAIL
    result = lint_texts([("Dockerfile", "dockerfile", text)])
    (finding,) = [f for f in result.findings if f.rule == "UR106"]
    assert finding.fix is not None
    assert "`setcap 'cap_net_bind_service=+ep' /usr/local/sbin/start`" in finding.fix


def test_a_script_by_its_own_name() -> None:
    text = _HEAD + "COPY entry /usr/local/sbin/start.sh\n" + _TAIL.replace("start", "start.sh")
    result = lint_texts([("Dockerfile", "dockerfile", text)])
    (finding,) = [f for f in result.findings if f.rule == "UR106"]
    assert finding.fix is not None
    assert "its name ends in .sh" in finding.fix or "capability on the interpreter" in finding.fix
    assert "setcap 'cap_net_bind_service=+ep' /usr/local/sbin/start.sh" not in finding.fix


def test_the_binary_a_heredoc_script_execs_is_named() -> None:
    write = (
        "COPY <<EOF /usr/local/sbin/start\n#!/bin/sh\nset -e\n"
        'exec gosu pdns /usr/sbin/pdns_server --daemon=no "$@"\nEOF\n'
    )
    result = lint_texts([("Dockerfile", "dockerfile", _HEAD + write + _TAIL)])
    (finding,) = [f for f in result.findings if f.rule == "UR106"]
    assert finding.fix is not None
    assert "and execs /usr/sbin/pdns_server" in finding.fix
    assert "`setcap 'cap_net_bind_service=+ep' /usr/sbin/pdns_server`" in finding.fix
