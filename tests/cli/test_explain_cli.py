"""``unroot explain`` as a user types it: output, JSON keys, exit codes, bad input."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from _cliutil import run, validate_schema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unroot.cli import main


def validate(kind: str, document: Any) -> None:
    validate_schema(f"explain-{kind}", document)


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code, out, err = run(capsys, *argv, "--json")
    assert err == ""
    return code, json.loads(out)


# -- exec: seed 002 ------------------------------------------------------------------------------
SEED_002 = ("explain", "exec", "--uid", "10001", "--gid", "10001")


def test_seed_002_drop_all_fails_exec_with_eperm(capsys: pytest.CaptureFixture[str]) -> None:
    code, result = run_json(
        capsys, *SEED_002, "--bounding", "none", "--file-caps", "cap_net_bind_service=+ep"
    )
    validate("exec", result)
    assert code == 1
    assert result["exec"] == "EPERM"
    assert result["uid"] == [10001, 10001, 10001]
    assert result["permitted"] == []
    assert result["reasons"]
    assert result["fixes"]


def test_seed_002_drop_all_add_net_bind_service_serves(capsys: pytest.CaptureFixture[str]) -> None:
    code, result = run_json(
        capsys,
        *SEED_002,
        "--bounding",
        "NET_BIND_SERVICE",
        "--file-caps",
        "cap_net_bind_service=+ep",
    )
    validate("exec", result)
    assert code == 0
    assert result["exec"] == "ok"
    assert result["permitted"] == ["cap_net_bind_service"]
    assert result["effective"] == ["cap_net_bind_service"]
    assert result["bounding"] == ["cap_net_bind_service"]
    assert result["secure_exec"] is True


def test_docker_no_new_privileges_ignores_file_caps(capsys: pytest.CaptureFixture[str]) -> None:
    code, result = run_json(
        capsys,
        *SEED_002,
        "--bounding",
        "0xa80425fb",
        "--nnp",
        "--file-caps",
        "cap_net_bind_service=+ep",
    )
    assert code == 0
    assert result["exec"] == "ok"
    assert result["effective"] == []
    assert result["no_new_privs"] is True


def test_root_exec_keeps_full_bounding_and_caps(capsys: pytest.CaptureFixture[str]) -> None:
    code, result = run_json(capsys, "explain", "exec")
    assert code == 0
    assert result["uid"] == [0, 0, 0]
    assert len(result["permitted"]) == 41
    assert result["permitted"] == result["effective"] == result["bounding"]


def test_hex_file_caps_equal_text(capsys: pytest.CaptureFixture[str]) -> None:
    common = (*SEED_002, "--bounding", "net_bind_service")
    _, by_text = run_json(capsys, *common, "--file-caps", "cap_net_bind_service=+ep")
    _, by_hex = run_json(
        capsys, *common, "--file-caps-hex", "0100000200040000000000000000000000000000"
    )
    assert by_text == by_hex


def test_exec_text_output_names_the_failure(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys, *SEED_002, "--bounding", "none", "--file-caps", "cap_net_bind_service=+ep"
    )
    assert code == 1
    assert out.startswith("exec: fails with EPERM")
    assert "why:" in out
    assert err == ""


# -- bind ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "allowed"),
    [
        (("--port", "80"), False),
        (("--port", "80", "--effective", "cap_net_bind_service"), True),
        (("--port", "80", "--unprivileged-port-start", "0"), True),
        (("--port", "1024"), True),
        (("--port", "1023", "--proto", "udp", "--family", "inet6"), False),
        (("--port", "0"), True),
        (("--port", "80", "--effective", "all", "--netns-foreign"), False),
        (("--port", "80", "--unprivileged-port-start", "81"), False),
    ],
)
def test_bind(capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], allowed: bool) -> None:
    code, result = run_json(capsys, "explain", "bind", *argv)
    validate("bind", result)
    assert result["allowed"] is allowed
    assert result["errno"] == (None if allowed else "EACCES")
    assert code == (0 if allowed else 1)
    if not allowed:
        assert result["fixes"]


# -- access (hypothetical tree: seed 000) --------------------------------------------------------
def letsencrypt_tree(tmp_path: Path, acl: str | None) -> Path:
    tree: dict[str, Any] = {
        "/": {"type": "dir", "mode": "0755", "uid": 0, "gid": 0},
        "/etc": {"type": "dir", "mode": "0755", "uid": 0, "gid": 0},
        "/etc/letsencrypt": {"type": "dir", "mode": "0755", "uid": 0, "gid": 0},
        "/etc/letsencrypt/live": {"type": "dir", "mode": "0700", "uid": 0, "gid": 0},
        "/etc/letsencrypt/live/privkey.pem": {"type": "file", "mode": "0600", "uid": 0, "gid": 0},
    }
    if acl:
        tree["/etc/letsencrypt/live"]["acl"] = (
            "user::rwx,group::---,group:2200:r-x,mask::r-x,other::---"
        )
        tree["/etc/letsencrypt/live/privkey.pem"]["acl"] = acl
    path = tmp_path / "fs.json"
    path.write_text(json.dumps(tree))
    return path


def test_seed_000_root_only_letsencrypt_denies_gid_2200(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    fs = letsencrypt_tree(tmp_path, None)
    code, result = run_json(
        capsys,
        "explain",
        "access",
        "/etc/letsencrypt/live/privkey.pem",
        "--uid",
        "2200",
        "--gid",
        "2200",
        "--fs-json",
        str(fs),
    )
    validate("access", result)
    assert code == 1
    assert result["errno"] == "EACCES"
    assert result["denied_at"] == "/etc/letsencrypt/live"
    assert result["fixes"]
    assert not any("o+" in (fix["command"] or "") for fix in result["fixes"])


def test_seed_000_group_acl_lets_gid_2200_read(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    fs = letsencrypt_tree(tmp_path, "user::rw-,group::---,group:2200:r--,mask::r--,other::---")
    code, result = run_json(
        capsys,
        "explain",
        "access",
        "/etc/letsencrypt/live/privkey.pem",
        "--uid",
        "2200",
        "--gid",
        "2200",
        "--fs-json",
        str(fs),
    )
    assert (code, result["allowed"], result["errno"], result["denied_at"]) == (0, True, None, None)


def test_dac_read_search_reads_but_cannot_write(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    fs = letsencrypt_tree(tmp_path, None)
    key = "/etc/letsencrypt/live/privkey.pem"
    base = ("explain", "access", key, "--uid", "33", "--gid", "33", "--fs-json", str(fs))
    assert run_json(capsys, *base, "--effective", "dac_read_search")[1]["allowed"] is True
    _, denied = run_json(capsys, *base, "--effective", "dac_read_search", "--want", "w")
    assert denied["errno"] == "EACCES"
    assert run_json(capsys, *base, "--effective", "dac_override", "--want", "rw")[1]["allowed"]


# -- batch --------------------------------------------------------------------------------------
def test_batch_answers_in_order_and_survives_bad_lines(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    lines = [
        {"kind": "bind", "port": 80, "effective": ["net_bind_service"]},
        "this is not json",
        {
            "kind": "exec",
            "uid": [10001, 10001, 10001],
            "bounding": [],
            "file_caps": "cap_net_bind_service=+ep",
        },
        {"kind": "teleport"},
        {"kind": "bind", "port": 80, "effective": "0x400", "unprivileged_port_start": 1024},
        {"kind": "bind", "port": "eighty"},
        {"kind": "exec", "uid": 1000, "permitted": [], "effective": ["cap_chown"]},
        {"kind": "bind", "port": 80, "colour": "blue"},
        [1, 2, 3],
        {
            "kind": "access",
            "path": "/etc/letsencrypt/live/privkey.pem",
            "uid": 33,
            "gid": 33,
            "fs_json": str(letsencrypt_tree(tmp_path, None)),
        },
        {"kind": "exec", "id": "q-11", "uid": 1000, "file_caps_hex": "01000002"},
    ]
    text = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines)
    source = tmp_path / "q.jsonl"
    source.write_text(text + "\n\n")
    code, out, err = run(capsys, "explain", "batch", str(source))
    assert code == 0
    assert err == ""
    answers = [json.loads(line) for line in out.splitlines()]
    assert len(answers) == len(lines)
    assert answers[0]["allowed"] is True
    assert "error" in answers[1]
    assert answers[2]["exec"] == "EPERM"
    assert "error" in answers[3]
    assert answers[4]["allowed"] is True
    assert "error" in answers[5]
    assert "error" in answers[6]  # effective not within permitted: impossible state
    assert "colour" in answers[7]["error"]
    assert "error" in answers[8]
    assert answers[9]["denied_at"] == "/etc/letsencrypt/live"
    assert "error" in answers[10]
    for answer in answers:
        assert set(answer) == {"schema_version", "error"} or "reasons" in answer


def test_batch_from_stdin_as_subprocess() -> None:
    questions = "\n".join(
        json.dumps({"kind": "bind", "port": port, "id": port}) for port in (80, 1024, 0)
    )
    done = subprocess.run(
        [sys.executable, "-m", "unroot", "explain", "batch"],
        input=questions,
        capture_output=True,
        text=True,
        check=True,
    )
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(a["id"], a["allowed"]) for a in answers] == [(80, False), (1024, True), (0, True)]


# -- bad input: one line, exit 2, never a traceback ----------------------------------------------
@pytest.mark.parametrize(
    "argv",
    [
        ("explain", "exec", "--uid", "abc"),
        ("explain", "exec", "--uid", "1,2,3,4,5"),
        ("explain", "exec", "--uid", "-1"),
        ("explain", "exec", "--effective", "cap_teleport"),
        ("explain", "exec", "--file-caps-hex", "zz"),
        ("explain", "exec", "--file-caps-hex", "0100000200"),
        ("explain", "exec", "--file-caps", "cap_net_bind_service=+q"),
        ("explain", "exec", "--file-caps", "x", "--file-caps-hex", "00"),
        ("explain", "exec", "--secbits", "4096"),
        ("explain", "exec", "--uid", "5", "--ambient", "cap_kill"),
        ("explain", "exec", "--kernel", "banana"),
        ("explain", "bind", "--port", "70000"),
        ("explain", "bind", "--port", "80", "--unprivileged-port-start", "-3"),
        ("explain", "bind"),
        ("explain", "access", "/etc/hostname", "--uid", "1"),
        (
            "explain",
            "access",
            "/etc/hostname",
            "--uid",
            "1",
            "--gid",
            "1",
            "--fs-json",
            "/nonexistent",
        ),
        ("explain", "teleport"),
        ("nonsense",),
        ("explain", "batch", "/nonexistent/questions.jsonl"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2, (out, err)
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


def test_bad_input_as_subprocess_has_no_traceback() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "unroot", "explain", "exec", "--file-caps-hex", "03"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("unroot: ")
    assert "Traceback" not in done.stderr


TOKENS = st.sampled_from(
    [
        "--uid",
        "--gid",
        "--bounding",
        "--permitted",
        "--effective",
        "--ambient",
        "--inheritable",
        "--file-caps",
        "--file-caps-hex",
        "--nnp",
        "--nosuid",
        "--secbits",
        "--setuid-owner",
        "--setgid-owner",
        "--userns-root-uid",
        "--json",
        "--port",
        "--proto",
        "0",
        "1000",
        "all",
        "none",
        "0x400",
        "cap_net_bind_service=+ep",
        "=",
        ",",
        "",
        "-1",
        "4294967295",
        "0xffff",
    ]
) | st.text(max_size=12)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    kind=st.sampled_from(["exec", "bind", "access", "batch"]), tokens=st.lists(TOKENS, max_size=8)
)
def test_fuzz_argv_never_tracebacks(
    capsys: pytest.CaptureFixture[str], kind: str, tokens: list[str]
) -> None:
    if kind == "batch":
        tokens = ["/nonexistent/x"]
    code = main(["explain", kind, *tokens])
    _, err = capsys.readouterr()
    assert code in (0, 1, 2)
    if code == 2:
        assert len(err.strip().splitlines()) == 1, err


@settings(max_examples=300, deadline=None)
@given(
    question=st.dictionaries(
        st.sampled_from(
            [
                "kind",
                "uid",
                "gid",
                "port",
                "effective",
                "permitted",
                "bounding",
                "file_caps",
                "file_caps_hex",
                "nnp",
                "path",
                "want",
                "groups",
                "fs",
                "secbits",
                "ambient",
                "inheritable",
                "proto",
                "family",
            ]
        ),
        st.recursive(
            st.none()
            | st.booleans()
            | st.integers(-2, 2**40)
            | st.text(max_size=10)
            | st.sampled_from(["exec", "bind", "access"]),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(st.text(max_size=4), inner, max_size=3)
            ),
            max_leaves=6,
        ),
    )
)
def test_fuzz_batch_questions_answer_or_error(question: dict[str, Any]) -> None:
    from unroot.commands.explain import answer
    from unroot.errors import UnrootError

    try:
        result = answer(question)
    except UnrootError:
        return
    assert "reasons" in result


# -- advice that is never given (docs/explain.md) ------------------------------------------------
def _inode(kind: str, mode: str, uid: int = 0, gid: int = 0) -> dict[str, Any]:
    return {"type": kind, "mode": mode, "uid": uid, "gid": gid}


SECRETS_TREE: dict[str, Any] = {
    "/etc/shadow": _inode("file", "0640", 0, 42),
    "/etc/sudoers": _inode("file", "0440"),
    "/etc/kubernetes/pki/ca.key": _inode("file", "0600"),
    "/run/docker.sock": _inode("sock", "0660", 0, 998),
    "/var/run": {"type": "symlink", "target": "/run"},
    "/root": _inode("dir", "0700"),
    "/root/x": _inode("file", "0644"),
    "/srv/key": {"type": "symlink", "target": "/etc/shadow"},
}
GRANTS = re.compile(r"\b(setfacl|chgrp|chmod|chown)\b")


@pytest.mark.parametrize(
    ("path", "want", "kind"),
    [
        ("/etc/shadow", "r", "password-hashes"),
        ("//etc//shadow", "r", "password-hashes"),
        ("/etc/../etc/shadow", "r", "password-hashes"),
        ("/srv/key", "r", "password-hashes"),
        ("/etc/kubernetes/pki/ca.key", "r", "ca-key"),
        ("/run/docker.sock", "rw", "engine-socket"),
        ("/var/run/docker.sock", "rw", "engine-socket"),
        ("/root/x", "r", "root-home"),
        ("/etc/sudoers", "r", "sudo-policy"),
    ],
)
def test_explain_access_never_grants_a_protected_path(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, path: str, want: str, kind: str
) -> None:
    fs = tmp_path / "fs.json"
    fs.write_text(json.dumps(SECRETS_TREE))
    argv = ("explain", "access", path, "--uid", "65534", "--gid", "65534", "--want", want)
    code, result = run_json(capsys, *argv, "--fs-json", str(fs))
    validate("access", result)
    assert (code, result["allowed"], result["errno"]) == (1, False, "EACCES")
    assert [fix["command"] for fix in result["fixes"]] == [None]
    assert result["fixes"][0]["protected"]["class"] == kind
    code, out, _err = run(capsys, *argv, "--fs-json", str(fs))
    assert code == 1
    assert "access: denied with EACCES" in out
    assert not GRANTS.search(out.split("\nfix:\n", 1)[1]), out
    assert "no grant is suggested" in out


@pytest.mark.skipif(not Path("/etc/shadow").exists(), reason="no /etc/shadow on this host")
@pytest.mark.parametrize("link", [False, True])
def test_explain_access_of_the_real_etc_shadow(
    capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest, link: bool
) -> None:
    """The issue's own command, on the live system: and through a symlink to it."""
    path = "/etc/shadow"
    if link:  # in a directory nobody can search through (pytest's tmp_path is below a 0700 one)
        where = Path(tempfile.mkdtemp(prefix="unroot-link-", dir="/tmp"))
        where.chmod(0o755)
        request.addfinalizer(lambda: shutil.rmtree(where))
        (where / "shadow-link").symlink_to("/etc/shadow")
        path = str(where / "shadow-link")
    code, result = run_json(capsys, "explain", "access", path, "--uid", "65534", "--gid", "65534")
    validate("access", result)
    assert code == 1
    assert result["denied_at"] == "/etc/shadow"
    assert [fix["command"] for fix in result["fixes"]] == [None]
    assert result["fixes"][0]["protected"] == {"path": "/etc/shadow", "class": "password-hashes"}
    code, out, _err = run(capsys, "explain", "access", path, "--uid", "65534", "--gid", "65534")
    assert "setfacl" not in out
    assert "chgrp" not in out


def test_explain_access_keeps_the_fix_for_a_services_own_key(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Seed 000: the blog (uid 2200) reads its own letsencrypt key: an ACL fix on exactly that
    file and the directories on the way — no 'other' bits, no recursion."""
    fs = letsencrypt_tree(tmp_path, None)
    key = "/etc/letsencrypt/live/privkey.pem"
    code, result = run_json(
        capsys, "explain", "access", key, "--uid", "2200", "--gid", "2200", "--fs-json", str(fs)
    )
    validate("access", result)
    assert code == 1
    commands = [fix["command"] for fix in result["fixes"] if fix["command"]]
    assert commands == [f"setfacl -m u:2200:x /etc/letsencrypt/live && setfacl -m u:2200:r {key}"]
    for command in commands:
        assert not re.search(r"\bo[+:=]|-R\b|other|0644|chmod [0-7]", command)
    assert result["fixes"][-1]["protected"] == {"path": key, "class": "key-store"}


def test_batch_goes_through_the_same_refusal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    question = {
        "kind": "access",
        "path": "/run/docker.sock",
        "uid": 1000,
        "gid": 1000,
        "want": "rw",
        "fs": {"/run/docker.sock": _inode("sock", "0660", 0, 998)},
    }
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(question) + "\n"))
    assert main(["explain", "batch"]) == 0
    answer = json.loads(capsys.readouterr().out)
    validate("access", answer)
    assert [fix["command"] for fix in answer["fixes"]] == [None]
    assert "socket proxy" in answer["fixes"][0]["why"]


# -- wrapping -------------------------------------------------------------------------------------
@pytest.mark.parametrize("columns", ["60", "80", "100"])
def test_text_wraps_reasons_and_fixes_at_the_width(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, columns: str
) -> None:
    """Reasons and fixes wrap at $COLUMNS (the terminal's width), never inside a word; the
    capability lists and the commands (``$ docker run …``) stay one line each."""
    monkeypatch.setenv("COLUMNS", columns)
    argv = (*SEED_002, "--bounding", "none", "--file-caps", "cap_net_bind_service=+ep")
    _, result = run_json(capsys, *argv)
    code, out, _ = run(capsys, *argv)
    assert code == 1
    prose = [line for line in out.splitlines() if line.startswith("  ") and "$ " not in line]
    for line in prose:
        assert len(line) <= int(columns) or " " not in line.strip(), line
    words = " ".join(out.split("\n")).split()
    for reason in result["reasons"]:
        for word in reason["text"].split():
            assert word in words, (columns, word)
    for fix in result["fixes"]:
        if fix.get("command"):
            assert f"$ {fix['command'].splitlines()[0]}" in out
