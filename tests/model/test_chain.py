"""Exec chains (wrapper → init → service) and where a capability goes missing."""

from __future__ import annotations

from unroot.model.caps import CapSet
from unroot.model.chain import exec_chain, where_lost
from unroot.model.execve import ExecFile
from unroot.model.filecaps import FileCaps
from unroot.model.runtimes import CONTAINERD2, DOCKER, PODMAN_ROOTLESS, SYSTEMD, start_creds

NBS = CapSet.of("cap_net_bind_service")
CADDY = ExecFile("/usr/bin/caddy", FileCaps.from_text("cap_net_bind_service=+ep"))
SH = ExecFile("/bin/sh")
TINI = ExecFile("/sbin/tini")
DROP_ALL_ADD_NBS = {"cap_drop": ["ALL"], "cap_add": ["NET_BIND_SERVICE"]}


def test_capped_service_keeps_cap_under_containerd_nnp() -> None:
    start = start_creds(CONTAINERD2, 1000, 1000, no_new_privs=True, **DROP_ALL_ADD_NBS)
    chain = exec_chain(start, [CADDY])
    assert chain.ok
    assert chain.failed_at is None
    assert chain.final.effective == NBS
    assert where_lost(chain, "net_bind_service") is None


def test_shell_wrapper_loses_cap_under_containerd_nnp() -> None:
    start = start_creds(CONTAINERD2, 1000, 1000, no_new_privs=True, **DROP_ALL_ADD_NBS)
    chain = exec_chain(start, [SH, CADDY])
    assert chain.ok
    assert [step.file.path for step in chain.steps] == ["/bin/sh", "/usr/bin/caddy"]
    assert chain.steps[0].result.creds.permitted == CapSet()
    assert chain.final.effective == CapSet()
    loss = where_lost(chain, "CAP_NET_BIND_SERVICE")
    assert loss is not None
    assert (loss.step, loss.path, loss.reason.code) == (0, "/bin/sh", "cap-dropped-by-earlier-exec")
    assert "/bin/sh has no file capabilities" in loss.reason.text
    assert "no_new_privs" in loss.reason.text
    assert "not in the permitted set when /usr/bin/caddy runs" in loss.reason.text
    assert loss.fixes


def test_shell_wrapper_is_harmless_without_nnp() -> None:
    start = start_creds(CONTAINERD2, 1000, 1000, **DROP_ALL_ADD_NBS)
    chain = exec_chain(start, [SH, TINI, CADDY])
    assert chain.final.effective == NBS
    assert where_lost(chain, 10) is None


def test_docker_nnp_empty_start_explains_at_the_service() -> None:
    start = start_creds(DOCKER, 1000, 0, no_new_privs=True)
    chain = exec_chain(start, [CADDY])
    loss = where_lost(chain, "net_bind_service")
    assert loss is not None
    assert (loss.step, loss.reason.code) == (0, "nnp-dropped-caps")


def test_eperm_stops_the_chain() -> None:
    start = start_creds(DOCKER, 1000, 1000, cap_drop=["ALL"])
    chain = exec_chain(start, [TINI, CADDY, SH])
    assert not chain.ok
    assert chain.failed_at == 1
    assert len(chain.steps) == 2
    assert chain.final == chain.steps[0].result.creds
    loss = where_lost(chain, "net_bind_service")
    assert loss is not None
    assert (loss.step, loss.path, loss.reason.code) == (1, "/usr/bin/caddy", "chain-exec-fails")
    assert "EPERM" in loss.reason.text
    document = chain.to_json()
    assert document["ok"] is False
    assert document["failed_at"] == 1
    assert document["steps"][1]["exec"] == "EPERM"
    assert document["steps"][1]["path"] == "/usr/bin/caddy"


def test_podman_ambient_survives_a_wrapper() -> None:
    start = start_creds(PODMAN_ROOTLESS, 1000, 1000, cap_add=["net_bind_service"])
    chain = exec_chain(start, [SH, ExecFile("/usr/bin/python3")])
    assert chain.final.effective == NBS
    assert chain.final.ambient == NBS


def test_systemd_ambient_and_uncapped_service() -> None:
    start = start_creds(SYSTEMD, 997, 997, cap_add=["CAP_NET_BIND_SERVICE"], no_new_privs=True)
    assert exec_chain(start, [ExecFile("/usr/bin/node")]).final.effective == NBS


def test_cap_never_held_names_the_service() -> None:
    start = start_creds(DOCKER, 1000, 1000)
    chain = exec_chain(start, [ExecFile("/usr/bin/node")])
    loss = where_lost(chain, "net_bind_service")
    assert loss is not None
    assert (loss.step, loss.reason.code) == (0, "cap-not-granted")
    assert loss.fixes[0].command == "setcap cap_net_bind_service=ep /usr/bin/node"
    assert loss.to_json()["path"] == "/usr/bin/node"


def test_permitted_but_not_effective() -> None:
    start = start_creds(DOCKER, 1000, 1000)
    chain = exec_chain(start, [ExecFile("/srv/app", FileCaps.from_text("cap_net_bind_service=p"))])
    loss = where_lost(chain, "net_bind_service")
    assert loss is not None
    assert loss.reason.code == "cap-not-effective"


def test_empty_chain() -> None:
    root = start_creds(DOCKER)
    assert where_lost(exec_chain(root, []), "net_bind_service") is None
    user = start_creds(DOCKER, 1000)
    loss = where_lost(exec_chain(user, []), "net_bind_service")
    assert loss is not None
    assert loss.step == -1
