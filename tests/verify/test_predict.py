"""The model's column of ``unroot verify --matrix``, pure: the ground truth measured on the real
engines (issue 11; tests/engine/test_seed002_matrix.py and tests/engine/test_verify.py observe it
again) must come out of :func:`unroot.situation.image.predict_cell` for each runtime profile.

Images: busybox httpd as 10001:10001 on :80, with ``cap_net_bind_service=+ep`` ("capped": a
revision 2 xattr in rootful Docker's store, revision 3 with rootid = the engine user's uid in a
rootless store) or without ("plain"). Cells: default / drop ALL / drop ALL + NBS /
no-new-privileges; host sysctl 1024, rootlesskit's namespace 1024.
"""

from __future__ import annotations

import pytest

from unroot.model.caps import CapSet
from unroot.model.execve import ExecFile
from unroot.model.filecaps import FileCaps
from unroot.model.runtimes import (
    DOCKER,
    DOCKER_ROOTLESS,
    PODMAN_ROOTLESS,
    ROOT_SHELL,
    RuntimeProfile,
    host_netns_owned,
)
from unroot.situation.image import EngineNetns, RunCell, predict_cell

ROOTLESS_UID = 1001
CELLS = (
    RunCell("bridge"),
    RunCell("bridge", ("ALL",)),
    RunCell("bridge", ("ALL",), ("NET_BIND_SERVICE",)),
    RunCell("bridge", no_new_privileges=True),
)
S, E, B = "serving", "exec-eperm", "bind-eacces"
#: (runtime, image) → (4 bridge cells, 4 host cells), as observed (issue 11; rootful: seed 002).
OBSERVED: dict[tuple[str, str], tuple[tuple[str, ...], tuple[str, ...]]] = {
    ("docker", "capped"): ((S, E, S, S), (S, E, S, B)),
    ("docker", "plain"): ((S, S, S, S), (B, B, B, B)),
    ("docker-rootless", "capped"): ((S, E, S, S), (S, E, S, B)),
    ("docker-rootless", "plain"): ((S, S, S, S), (B, B, B, B)),
    ("podman-rootless", "capped"): ((S, E, S, B), (B, E, B, B)),
    ("podman-rootless", "plain"): ((B, B, S, B), (B, B, B, B)),
}
PROFILES = {p.name: p for p in (DOCKER, DOCKER_ROOTLESS, PODMAN_ROOTLESS)}


def _file(runtime: RuntimeProfile, capped: bool) -> ExecFile:
    if not capped:
        return ExecFile("/usr/local/bin/httpd")
    if runtime.user_namespace:  # as the rootless store keeps it
        caps = FileCaps(CapSet.of("net_bind_service"), effective=True, revision=3,
                        rootid=ROOTLESS_UID)  # fmt: skip
    else:
        caps = FileCaps.from_text("cap_net_bind_service=+ep")
    return ExecFile("/usr/local/bin/httpd", caps)


@pytest.mark.parametrize("key", sorted(OBSERVED), ids="-".join)
def test_ground_truth(key: tuple[str, str]) -> None:
    runtime = PROFILES[key[0]]
    roots = (ROOTLESS_UID, 0) if runtime.user_namespace else (0,)
    chain = [_file(runtime, key[1] == "capped")]
    got = tuple(
        tuple(
            predict_cell(
                runtime,
                RunCell(network, c.cap_drop, c.cap_add, c.no_new_privileges),
                10001,
                10001,
                (10001,),
                chain,
                80,
                EngineNetns(1024),
                userns_root_uids=roots,
            ).outcome
            for c in CELLS
        )
        for network in ("bridge", "host")
    )
    assert got == OBSERVED[key]


def test_v3_file_caps_of_another_user_do_not_count() -> None:
    """A store's v3 xattr whose rootid is not the engine user's grants nothing (the kernel
    ignores it): the plain image's outcomes."""
    caps = FileCaps(CapSet.of("net_bind_service"), effective=True, revision=3, rootid=4242)
    got = predict_cell(
        PODMAN_ROOTLESS,
        RunCell("bridge"),
        10001,
        10001,
        (),
        [ExecFile("/x", caps)],
        80,
        EngineNetns(1024),
        userns_root_uids=(ROOTLESS_UID, 0),
    )
    assert got.outcome == "bind-eacces"


def test_rootless_docker_host_cell_says_where_it_serves() -> None:
    note = "rootlesskit's network namespace"
    got = predict_cell(
        DOCKER_ROOTLESS,
        RunCell("host"),
        10001,
        10001,
        (),
        [_file(DOCKER_ROOTLESS, True)],
        80,
        EngineNetns(1024, note),
        userns_root_uids=(ROOTLESS_UID, 0),
    )
    assert got.outcome == "serving"
    assert got.explanation.endswith(note)
    assert got.effective == CapSet.of("net_bind_service")


def test_own_netns_of_a_root_shell() -> None:
    got = predict_cell(
        ROOT_SHELL, RunCell("own"), 0, 0, (), [ExecFile("/x")], 80, EngineNetns(1024)
    )
    assert got.outcome == "serving"
    assert got.port_start == 1024


@pytest.mark.parametrize(
    ("runtime", "owned"), [(DOCKER, True), (DOCKER_ROOTLESS, True), (PODMAN_ROOTLESS, False)]
)
def test_host_netns_owned(runtime: RuntimeProfile, owned: bool) -> None:
    assert host_netns_owned(runtime) is owned
