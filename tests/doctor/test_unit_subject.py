"""``--unit FILE``: a service unit joined with this host's accounts and files (as root: setcap)."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from unroot import syscalls
from unroot.doctor.sources import unit_subject
from unroot.doctor.subject import PathAsk, PortAsk
from unroot.errors import ParseError, UsageError
from unroot.facts.filecaps import read_file_caps
from unroot.facts.proc import parse_status
from unroot.model.caps import EMPTY, CapSet
from unroot.model.filecaps import FileCaps

pytestmark = [pytest.mark.root]

NBS = CapSet.of("net_bind_service")
NOBODY = pwd.getpwnam("nobody")


def _unit(directory: Path, text: str, name: str = "blog.service") -> Path:
    path = directory / name
    path.write_text(text)
    return path


@pytest.fixture
def program(tmp_path: Path) -> Path:
    """A copy of true(1) with no file capabilities."""
    path = tmp_path / "srv"
    shutil.copy("/bin/true", path)
    return path


def test_user_and_ambient_capabilities(tmp_path: Path, program: Path) -> None:
    unit = _unit(
        tmp_path,
        f"""\
[Service]
User=nobody
SupplementaryGroups=adm
AmbientCapabilities=CAP_NET_BIND_SERVICE
ExecStart={program} --listen :80
ReadWritePaths={tmp_path}
ReadOnlyPaths=-/etc/letsencrypt
LoadCredential=key:/etc/ssl/private/key.pem
LimitNOFILE=4096:8192
""",
    )
    subject = unit_subject(str(unit))
    assert (subject.uid, subject.gid, subject.name) == (NOBODY.pw_uid, NOBODY.pw_gid, "nobody")
    assert subject.groups == (4,)  # adm in Debian's base-passwd
    assert subject.effective == NBS  # ambient survives the exec of an uncapped program
    assert subject.host_network
    assert subject.binds == (PortAsk(80, "tcp", f"{unit}:5:1: port 80 on ExecStart="),)
    assert subject.paths == (
        PathAsk(str(tmp_path), "rw", f"{unit}:6:1: ReadWritePaths={tmp_path}"),
        PathAsk("/etc/letsencrypt", "r", f"{unit}:7:1: ReadOnlyPaths=/etc/letsencrypt"),
    )
    assert subject.exe is not None
    assert subject.exe.path == str(program)
    assert not subject.exe.no_new_privs
    assert subject.exe.bounding == CapSet.all()
    assert f"{unit}:4:1: AmbientCapabilities=cap_net_bind_service" in subject.evidence
    assert f"{unit}:9:1: LimitNOFILE=4096:8192" in subject.evidence
    assert any("LoadCredential=key:/etc/ssl/private/key.pem: systemd (root)" in e
               for e in subject.evidence)  # fmt: skip


@pytest.mark.parametrize("nnp", [False, True])
def test_file_caps_and_a_socket_unit(tmp_path: Path, program: Path, nnp: bool) -> None:
    """The program's real file caps count (read from the host) — unless no_new_privs stops the
    gain (capabilities(7): pP' &= pP); the socket's port is bound by systemd, not the service."""
    caps = FileCaps.from_text("cap_net_bind_service=ep").encode()
    os.setxattr(program, "security.capability", caps)
    assert read_file_caps(str(program)) is not None
    _unit(tmp_path, "[Socket]\nListenStream=443\n", "blog.socket")
    unit = _unit(
        tmp_path,
        f"[Service]\nUser=nobody\nNoNewPrivileges={'yes' if nnp else 'no'}\n"
        f"CapabilityBoundingSet=CAP_NET_BIND_SERVICE\nExecStart={program}\n",
    )
    subject = unit_subject(str(unit))
    assert subject.effective == (EMPTY if nnp else NBS)
    assert subject.binds == ()
    assert subject.publishes == (
        PortAsk(
            443,
            "tcp",
            f"{tmp_path}/blog.socket:2:1: ListenStream= of blog.socket (bound by systemd)",
        ),
    )
    assert subject.exe is not None
    assert subject.exe.no_new_privs == nnp
    assert subject.exe.bounding == NBS
    assert any("ListenStream port 443/tcp of blog.socket" in e for e in subject.evidence)
    assert any("file caps cap_net_bind_service=ep" in e for e in subject.evidence)


def test_without_capabilities_the_effective_set_is_empty(tmp_path: Path, program: Path) -> None:
    unit = _unit(tmp_path, f"[Service]\nUser=nobody\nPrivateNetwork=yes\nExecStart={program}\n")
    subject = unit_subject(str(unit))
    assert subject.effective == EMPTY
    assert not subject.host_network
    assert subject.unprivileged_port_start == 1024


def test_drop_in_changes_the_user(tmp_path: Path, program: Path) -> None:
    unit = _unit(tmp_path, f"[Service]\nUser=nobody\nExecStart={program}\n")
    dropin = tmp_path / "blog.service.d"
    dropin.mkdir()
    (dropin / "override.conf").write_text("[Service]\nUser=root\n")
    subject = unit_subject(str(unit))
    assert (subject.uid, subject.gid) == (0, 0)
    assert f"blog.service: read {dropin / 'override.conf'}" in subject.evidence


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        ("[Service]\nDynamicUser=yes\nExecStart=/bin/true\n", UsageError, "DynamicUser=yes"),
        ("[Service]\nUser=no-such-user-x\nExecStart=/bin/true\n", UsageError,
         "User=no-such-user-x is not in /etc/passwd"),
        ("[Unit]\nDescription=x\n", ParseError, "no \\[Service\\]"),
    ],
)  # fmt: skip
def test_bad_units(tmp_path: Path, text: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        unit_subject(str(_unit(tmp_path, text)))


def test_missing_unit_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="No such file"):
        unit_subject(str(tmp_path / "nope.service"))


@pytest.fixture
def public_dir() -> Iterator[Path]:
    """A directory nobody can reach (pytest's tmp_path is root's, 0700)."""
    path = Path(tempfile.mkdtemp(prefix="unroot-doctor-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def _as_systemd(*, ambient: bool, nnp: bool) -> None:
    """What systemd's exec-invoke.c does between fork and execve for User=nobody (run in the
    child): with AmbientCapabilities=, SECBIT_KEEP_CAPS before setresuid() so the permitted set
    survives, then the inheritable and ambient sets raised; NoNewPrivileges= last.  (setpriv(1)
    is not the same: it keeps the permitted set across --reuid whatever the options.)"""
    if ambient:
        syscalls.set_keepcaps(True)
    os.setgroups([])
    os.setresgid(NOBODY.pw_gid, NOBODY.pw_gid, NOBODY.pw_gid)
    os.setresuid(NOBODY.pw_uid, NOBODY.pw_uid, NOBODY.pw_uid)
    if ambient:
        _effective, permitted, _inheritable = syscalls.capget()
        syscalls.capset(0, permitted, NBS.mask)
        syscalls.ambient_raise(10)
    if nnp:
        syscalls.set_no_new_privs()


@pytest.mark.parametrize("ambient", [False, True])
@pytest.mark.parametrize("file_caps", [False, True])
@pytest.mark.parametrize("nnp", [False, True])
def test_effective_set_matches_the_kernel(
    tmp_path: Path, public_dir: Path, ambient: bool, file_caps: bool, nnp: bool
) -> None:
    """Differential: the unit's program run the way systemd starts it shows the CapEff the
    subject predicts (nobody: no supplementary groups, so clearing them is systemd's too)."""
    cat = public_dir / "cat"  # nobody must reach it
    shutil.copy("/bin/cat", cat)
    if file_caps:
        caps = FileCaps.from_text("cap_net_bind_service=ep").encode()
        os.setxattr(cat, "security.capability", caps)
    lines = ["[Service]", "User=nobody", f"ExecStart={cat} /proc/self/status"]
    if ambient:
        lines.append("AmbientCapabilities=CAP_NET_BIND_SERVICE")
    if nnp:
        lines.append("NoNewPrivileges=yes")
    subject = unit_subject(str(_unit(tmp_path, "\n".join(lines) + "\n")))
    done = subprocess.run(
        [str(cat), "/proc/self/status"],
        preexec_fn=partial(_as_systemd, ambient=ambient, nnp=nnp),
        capture_output=True,
        text=True,
        check=True,
    )
    assert parse_status(done.stdout).effective == subject.effective


def test_a_script_runs_as_its_interpreter(tmp_path: Path) -> None:
    """A script's own file capabilities never count: the kernel executes its interpreter."""
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\nexec true\n")
    script.chmod(0o755)
    caps = FileCaps.from_text("cap_net_bind_service=ep").encode()
    os.setxattr(script, "security.capability", caps)
    unit = _unit(tmp_path, f"[Service]\nUser=nobody\nExecStart={script}\n")
    subject = unit_subject(str(unit))
    assert subject.effective == EMPTY
    assert subject.exe is not None
    assert subject.exe.shown == str(script)
    assert subject.exe.path == os.path.realpath("/bin/sh")
    assert any("is a script: the kernel executes /bin/sh" in e for e in subject.evidence)
