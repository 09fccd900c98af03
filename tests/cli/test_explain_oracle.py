"""``unroot explain`` for the questions of issue 13: the running kernel by default, the user
namespace inputs, append-only files (the live kernel checks them in
tests/kernel/test_oracle_differential.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from test_explain_cli import run_json, validate

from unroot.cli import main
from unroot.facts.questions import Live
from unroot.model.execve import LATEST, Kernel, running_kernel
from unroot.sources.questions import answer


class _Release(Live):
    def __init__(self, release: str) -> None:
        self.release = release

    def kernel_release(self) -> str:
        return self.release


@pytest.mark.parametrize(
    ("release", "version"),
    [
        ("6.1.0-28-amd64", (6, 1)),
        ("5.15.0-1051-azure", (5, 15)),
        ("6.18.0+", (6, 18)),
        ("6.18.44-fc-v1272", (6, 18)),
        ("4.19.0", (4, 19)),
        ("weird", LATEST.version),
    ],
)
def test_running_kernel_parses_uname_r(release: str, version: tuple[int, int]) -> None:
    assert running_kernel(release) == Kernel(version)


# ruid 1000, euid 0, ambient NET_BIND_SERVICE, a plain file: before 6.17 the ids "changed"
# (new euid 0 != old ruid 1000), so the ambient set is cleared; from 6.17 they did not.
_OLD_RULES_DIFFER = {
    "kind": "exec",
    "uid": "1000,0,0",
    "inheritable": "cap_net_bind_service",
    "ambient": "cap_net_bind_service",
}


def test_the_running_kernel_decides_unless_kernel_is_given() -> None:
    debian = answer(_OLD_RULES_DIFFER, _Release("6.1.0-28-amd64"))
    new = answer(_OLD_RULES_DIFFER, _Release("6.18.0+"))
    assert debian["ambient"] == []
    assert new["ambient"] == ["cap_net_bind_service"]
    assert answer({**_OLD_RULES_DIFFER, "kernel": "6.18"}, _Release("6.1.0-28-amd64")) == new


def test_userns_root_uid_takes_the_chain(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["explain", "exec", "--json", "--uid", "1", "--gid", "1"]
    text = ["--file-caps", "cap_net_bind_service=+ep rootid=100000"]
    code, result = run_json(capsys, *argv, *text, "--userns-root-uid", "101000,100000")
    assert code == 0
    validate("exec", result)
    assert result["permitted"] == ["cap_net_bind_service"]
    _, alone = run_json(capsys, *argv, *text, "--userns-root-uid", "101000")
    assert alone["permitted"] == []
    assert [r["code"] for r in alone["reasons"]][:1] == ["v3-rootid-foreign"]


@pytest.mark.parametrize(
    ("flags", "errno", "code"),
    [(["--noexec"], "EACCES", "noexec-mount"), (["--no-exec-bit"], "EACCES", "not-executable")],
)
def test_exec_eacces(
    capsys: pytest.CaptureFixture[str], flags: list[str], errno: str, code: str
) -> None:
    rc, result = run_json(capsys, "explain", "exec", "--json", *flags)
    assert rc == 1
    validate("exec", result)
    assert result["exec"] == errno
    assert result["reasons"][0]["code"] == code


def test_unmapped_setid_and_no_group_exec(capsys: pytest.CaptureFixture[str]) -> None:
    base = ["explain", "exec", "--json", "--uid", "1000", "--gid", "1000"]
    _, mapped = run_json(capsys, *base, "--setuid-owner", "0")
    _, unmapped = run_json(capsys, *base, "--setuid-owner", "65534", "--file-ids-unmapped")
    assert mapped["uid"] == [1000, 0, 0]
    assert unmapped["uid"] == [1000, 1000, 1000]
    _, locking = run_json(capsys, *base, "--setgid-owner", "50", "--no-group-exec")
    assert locking["gid"] == [1000, 1000, 1000]
    _, secbits = run_json(capsys, *base, "--secbits", "0x30")
    assert secbits["securebits"] == 0x20  # SECBIT_KEEP_CAPS cleared, its lock kept


def test_bind_owner_and_sysctl_bound(capsys: pytest.CaptureFixture[str]) -> None:
    code, result = run_json(
        capsys, "explain", "bind", "--json", "--port", "80", "--caller-owns-netns-userns"
    )
    assert (code, result["allowed"]) == (0, True)
    assert main(["explain", "bind", "--port", "80", "--unprivileged-port-start", "65536"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "65535" in err


def _fs(**flags: Any) -> str:
    return json.dumps({"/log": {"type": "file", "mode": "0666", **flags}})


def test_access_open_flags_on_an_append_only_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    tree = tmp_path / "fs.json"
    tree.write_text(_fs(append_only=True, readonly=True))
    base = ["explain", "access", "/log", "--json", "--uid", "0", "--gid", "0", "--want", "w"]
    base += ["--fs-json", str(tree)]
    _, faccessat = run_json(capsys, *base)
    assert faccessat["errno"] == "EROFS"  # faccessat does not look at the append-only flag
    _, plain = run_json(capsys, *base, "--open-flags=")
    assert plain["errno"] == "EPERM"  # IS_APPEND comes before the mount's write access
    _, append = run_json(capsys, *base, "--open-flags", "append")
    assert append["errno"] == "EROFS"
    _, trunc = run_json(capsys, *base, "--open-flags", "append,trunc")
    assert trunc["errno"] == "EROFS"  # O_TRUNC asks the mount first


def test_access_uid_map(capsys: pytest.CaptureFixture[str], tmp_path: Any) -> None:
    tree = tmp_path / "fs.json"
    tree.write_text(json.dumps({"/secret": {"type": "file", "mode": "0600"}}))
    base = ["explain", "access", "/secret", "--json", "--uid", "0", "--gid", "0"]
    base += ["--effective", "cap_dac_override", "--fs-json", str(tree)]
    _, host = run_json(capsys, *base)
    assert host["allowed"]
    _, userns = run_json(
        capsys, *base, "--uid-map", "0 100000 65536", "--gid-map", "0 100000 65536"
    )
    assert userns["errno"] == "EACCES"
    validate("access", userns)
