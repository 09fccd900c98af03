"""facts/sysctl.py: ip_unprivileged_port_start of the host and of another network namespace."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from unroot.errors import EnvironmentProblem, ParseError, UsageError
from unroot.facts.sysctl import (
    UNPRIVILEGED_PORT_START,
    netns_of,
    parse_port_start,
    read_netns_sysctl,
    read_sysctl,
    unprivileged_port_start,
)


@pytest.mark.parametrize(("text", "port"), [("1024\n", 1024), ("0", 0), ("65535\n", 65535)])
def test_parse_port_start(text: str, port: int) -> None:
    assert parse_port_start(text) == port


@pytest.mark.parametrize("text", ["", "-1", "65536", "65537", "80 81", "x"])
def test_parse_port_start_refuses(text: str) -> None:
    with pytest.raises(ParseError):
        parse_port_start(text)


def test_fixture_tree(tmp_path: Path) -> None:
    (tmp_path / "sys" / "net" / "ipv4").mkdir(parents=True)
    (tmp_path / "sys" / "net" / "ipv4" / "ip_unprivileged_port_start").write_text("80\n")
    (tmp_path / "self" / "ns").mkdir(parents=True)
    (tmp_path / "self" / "ns" / "net").symlink_to("net:[4026531840]")
    (tmp_path / "7" / "ns").mkdir(parents=True)
    (tmp_path / "7" / "ns" / "net").symlink_to("net:[4026531840]")
    assert read_sysctl(UNPRIVILEGED_PORT_START, str(tmp_path)) == "80"
    assert unprivileged_port_start(7, str(tmp_path)) == 80  # same netns: read directly
    assert netns_of(7, str(tmp_path)) == "net:[4026531840]"
    with pytest.raises(UsageError, match=r"no such sysctl: net\.ipv4\.nope"):
        read_sysctl("net/ipv4/nope", str(tmp_path))
    with pytest.raises(UsageError, match="no such process: 8"):
        unprivileged_port_start(8, str(tmp_path))


def test_live_host() -> None:
    host = Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text()
    assert unprivileged_port_start() == int(host)


@pytest.mark.root
def test_live_other_netns() -> None:
    """A process in a new network namespace with its own value; ours is untouched."""
    host = unprivileged_port_start()
    other = 80 if host != 80 else 81
    child = subprocess.Popen(
        ["unshare", "--net", "sh", "-c",
         f"echo {other} > /proc/sys/net/ipv4/ip_unprivileged_port_start && echo ready"
         " && exec cat"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n"
        found = read_netns_sysctl(child.pid, UNPRIVILEGED_PORT_START)
        assert found.value == str(other)
        assert found.netns != netns_of("self")
        assert unprivileged_port_start(child.pid) == other
        assert unprivileged_port_start() == host
        with pytest.raises(EnvironmentProblem, match="cannot run"):
            read_netns_sysctl(child.pid, UNPRIVILEGED_PORT_START, nsenter="/nonexistent")
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=10)
        assert child.stdout is not None
        child.stdout.close()
