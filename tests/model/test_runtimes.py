"""Runtime profiles: bounding sets, start credentials, the port sysctl (sources in the module)."""

from __future__ import annotations

import pytest

from unroot.errors import ParseError, UsageError
from unroot.model.caps import CapSet
from unroot.model.creds import SECBIT_KEEP_CAPS, Ids
from unroot.model.runtimes import (
    CONTAINERD1,
    CONTAINERD2,
    CRIO,
    DOCKER,
    DOCKER_ROOTLESS,
    PODMAN_ROOTLESS,
    PROFILES,
    ROOT_SHELL,
    SYSTEMD,
    USER_SHELL,
    RuntimeProfile,
    bounding_set,
    profile,
    start_creds,
    sysctl_namespace,
    sysctl_refusal,
    unprivileged_port_start,
)

ALL = CapSet.all()
NBS = CapSet.of("cap_net_bind_service")
DOCKER_14 = CapSet.parse(
    "chown,dac_override,fowner,fsetid,kill,setgid,setuid,setpcap,net_bind_service,net_raw,"
    "sys_chroot,mknod,audit_write,setfcap"
)


def test_docker_default_is_the_documented_mask() -> None:
    assert DOCKER.default_bounding.mask == 0xA80425FB
    assert DOCKER.default_bounding == DOCKER_14
    assert len(DOCKER.default_bounding) == 14
    assert CONTAINERD1.default_bounding == CONTAINERD2.default_bounding == DOCKER_14
    assert len(CRIO.default_bounding) == 9
    assert "cap_net_raw" not in CRIO.default_bounding
    assert len(PODMAN_ROOTLESS.default_bounding) == 11


@pytest.mark.parametrize(
    ("runtime", "add", "drop", "expected"),
    [
        (DOCKER, [], [], DOCKER_14),
        (DOCKER, ["ALL"], [], ALL),
        (DOCKER, ["all"], ["sys_admin"], ALL - CapSet.of("cap_sys_admin")),
        (DOCKER, ["NET_BIND_SERVICE"], ["ALL"], NBS),
        (DOCKER, [], ["all"], CapSet()),
        (DOCKER, ["CAP_NET_ADMIN"], ["net_raw"], DOCKER_14 - CapSet.of(13) | CapSet.of(12)),
        (DOCKER, ["net_raw"], ["NET_RAW"], DOCKER_14),  # moby: the add comes after the drop
        (CONTAINERD2, ["net_raw"], ["NET_RAW"], DOCKER_14 - CapSet.of(13)),  # cri: drop last
        (CONTAINERD2, ["NET_BIND_SERVICE"], ["ALL"], NBS),
        (CONTAINERD1, ["ALL"], ["ALL"], CapSet()),
        (CRIO, ["ALL"], ["CHOWN"], ALL - CapSet.of(0)),
        (CRIO, ["sys_time"], [], CRIO.default_bounding | CapSet.of("cap_sys_time")),
        (PODMAN_ROOTLESS, ["ALL"], ["chown"], ALL - CapSet.of(0)),
        (PODMAN_ROOTLESS, ["net_raw"], ["ALL"], CapSet.of("cap_net_raw")),
        (SYSTEMD, ["net_bind_service"], ["sys_admin"], ALL - CapSet.of("cap_sys_admin")),
        (ROOT_SHELL, [], ["net_raw", "sys_admin"], ALL - CapSet.of(13, 21)),
        (DOCKER, "NET_ADMIN, NET_RAW", (), DOCKER_14 | CapSet.of(12)),
    ],
)
def test_bounding_set(
    runtime: RuntimeProfile, add: list[str] | str, drop: list[str], expected: CapSet
) -> None:
    assert bounding_set(runtime, add, drop) == expected


def test_bounding_set_errors() -> None:
    with pytest.raises(UsageError):
        bounding_set(PODMAN_ROOTLESS, ["ALL"], ["ALL"])
    with pytest.raises(UsageError):
        bounding_set(PODMAN_ROOTLESS, ["net_raw"], ["NET_RAW"])
    with pytest.raises(UsageError):
        bounding_set(USER_SHELL, ["net_raw"], [])
    with pytest.raises(ParseError):
        bounding_set(DOCKER, ["TELEPORT"], [])
    with pytest.raises(ParseError):
        bounding_set(DOCKER, ["cap_50"], [])
    with pytest.raises(UsageError):
        profile("lxc")
    assert profile(" Docker ") is DOCKER
    assert set(PROFILES) == {
        "docker",
        "docker-rootless",
        "podman-rootless",
        "containerd1",
        "containerd2",
        "cri-o",
        "systemd",
        "root-shell",
        "user-shell",
    }


def test_docker_nonroot_has_only_the_bounding_set() -> None:
    creds = start_creds(DOCKER, 1000, 0, [], ["NET_BIND_SERVICE"], ["ALL"], True, False)
    assert creds.uid == Ids.same(1000)
    assert creds.gid == Ids.same(0)
    assert creds.bounding == NBS
    assert not (creds.permitted | creds.effective | creds.inheritable | creds.ambient)
    assert creds.no_new_privs


def test_docker_root_has_permitted_and_effective() -> None:
    for runtime in (DOCKER, DOCKER_ROOTLESS, CONTAINERD1, CRIO, PODMAN_ROOTLESS):
        creds = start_creds(runtime)
        assert creds.permitted == creds.effective == creds.bounding == runtime.default_bounding
        assert not creds.inheritable
        assert not creds.ambient


def test_cri_nonroot_holds_caps_in_permitted() -> None:
    for runtime in (CONTAINERD1, CONTAINERD2, CRIO):
        creds = start_creds(runtime, 1000, 1000, [2000], ["NET_BIND_SERVICE"], ["ALL"])
        assert creds.permitted == creds.effective == creds.bounding == NBS
        assert not creds.ambient
        assert not creds.inheritable
        assert creds.groups == frozenset({2000})


def test_podman_nonroot_gets_added_caps_as_ambient() -> None:
    creds = start_creds(PODMAN_ROOTLESS, 1000, 1000, cap_add=["net_bind_service"])
    assert creds.permitted == creds.effective == creds.inheritable == creds.ambient == NBS
    assert creds.bounding == PODMAN_ROOTLESS.default_bounding
    assert not start_creds(PODMAN_ROOTLESS, 1000, 1000).permitted
    assert creds.invariant_violations() == []


def test_systemd_service() -> None:
    service = start_creds(SYSTEMD, 997, 997, cap_add=["net_bind_service"], no_new_privs=True)
    assert service.ambient == service.inheritable == NBS
    assert service.permitted == ALL
    assert not service.effective
    assert service.securebits == SECBIT_KEEP_CAPS
    plain = start_creds(SYSTEMD, 997, 997)
    assert not (plain.permitted | plain.ambient)
    as_root = start_creds(SYSTEMD, cap_drop=["sys_admin"])
    assert as_root.permitted == ALL
    assert "cap_sys_admin" not in as_root.bounding
    with pytest.raises(UsageError):
        start_creds(SYSTEMD, 997, 997, cap_add=["sys_admin"], cap_drop=["sys_admin"])
    for creds in (service, plain, as_root):
        assert creds.invariant_violations() == []


def test_shells() -> None:
    root = start_creds(ROOT_SHELL)
    assert root.permitted == root.effective == root.bounding == ALL
    user = start_creds(USER_SHELL, 1000, 1000, [24, 27])
    assert not user.permitted
    assert user.bounding == ALL
    assert user.groups == frozenset({24, 27})


@pytest.mark.parametrize(
    ("runtime", "host_network", "sysctls", "expected"),
    [
        (DOCKER, False, None, 0),  # moby WithSysctls, Docker >= 20.10
        (DOCKER, True, None, 1024),  # --network host: the host's value
        (DOCKER, False, {"net.ipv4.ip_unprivileged_port_start": "1024"}, 1024),
        (DOCKER_ROOTLESS, False, None, 0),
        (PODMAN_ROOTLESS, False, None, 1024),  # podman sets no port sysctl
        (CONTAINERD1, False, None, 1024),  # enable_unprivileged_ports off in 1.x
        (CONTAINERD2, False, None, 0),  # on by default in 2.0
        (CONTAINERD2, True, None, 1024),  # hostNetwork
        (CONTAINERD2, False, {"net.ipv4.ip_unprivileged_port_start": 80}, 80),
        (CRIO, False, None, 1024),
        (SYSTEMD, False, None, 1024),
        (USER_SHELL, False, None, 1024),
    ],
)
def test_unprivileged_port_start(
    runtime: RuntimeProfile,
    host_network: bool,
    sysctls: dict[str, str | int] | None,
    expected: int,
) -> None:
    assert unprivileged_port_start(runtime, host_network, 1024, sysctls) == expected


def test_unprivileged_port_start_host_value_and_errors() -> None:
    assert unprivileged_port_start(DOCKER, True, host_value=443) == 443
    assert unprivileged_port_start(SYSTEMD, False, host_value=80) == 80
    assert unprivileged_port_start(CRIO, False, host_value=0) == 1024  # a new netns: not the host's
    for bad in ("x", "-1", "70000"):
        with pytest.raises(ParseError):
            unprivileged_port_start(
                DOCKER, False, 1024, {"net.ipv4.ip_unprivileged_port_start": bad}
            )


def test_user_namespaces() -> None:
    assert DOCKER_ROOTLESS.user_namespace
    assert PODMAN_ROOTLESS.user_namespace
    assert not any(p.user_namespace for p in (DOCKER, CONTAINERD1, CONTAINERD2, CRIO, SYSTEMD))


# -- sysctls the runtime refuses ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("runtime", "name", "host_network", "host_ipc", "fragment"),
    [
        ("docker", "net.ipv4.ip_unprivileged_port_start", False, False, None),
        ("docker", "net.ipv4.ip_unprivileged_port_start", True, False, "host network namespace"),
        ("podman-rootless", "net.core.somaxconn", True, False, "host network namespace"),
        ("docker", "kernel.shmmax", False, False, None),
        ("docker", "kernel.shmmax", False, True, "hosts ipc namespace"),
        ("docker", "fs.mqueue.msg_max", False, True, "hosts ipc namespace"),
        ("docker", "kernel.domainname", False, False, None),
        ("docker", "kernel.hostname", False, False, 'OCI "hostname" field'),
        ("docker", "vm.max_map_count", False, False, "not in a separate kernel namespace"),
        ("docker", "vm/max_map_count", False, False, '"vm.max_map_count"'),
        ("containerd2", "net.ipv4.ip_unprivileged_port_start", False, False, None),
        ("containerd2", "net.ipv4.ip_unprivileged_port_start", True, False, "host net enabled"),
        ("cri-o", "kernel.shm_rmid_forced", False, True, "host ipc enabled"),
        ("containerd1", "vm.max_map_count", False, False, "not allowlisted"),
        ("containerd1", "kernel.hostname", False, False, "not allowlisted"),
        # namespaced but not on the kubelet's safe list: node configuration decides — silent
        ("containerd2", "net.core.somaxconn", False, False, None),
        ("systemd", "vm.max_map_count", True, True, None),
        ("root-shell", "net.ipv4.ip_unprivileged_port_start", True, False, None),
    ],
)
def test_sysctl_refusal(
    runtime: str, name: str, host_network: bool, host_ipc: bool, fragment: str | None
) -> None:
    got = sysctl_refusal(profile(runtime), name, host_network=host_network, host_ipc=host_ipc)
    if fragment is None:
        assert got is None
    else:
        assert got is not None
        assert fragment in got


@pytest.mark.parametrize(
    ("name", "namespace"),
    [
        ("net.ipv4.tcp_syncookies", "net"),
        ("net/ipv6/conf/all/disable_ipv6", "net"),
        ("kernel.sem", "ipc"),
        ("fs.mqueue.queues_max", "ipc"),
        ("kernel.hostname", "uts"),
        ("kernel.pid_max", None),
        ("fs.file-max", None),
        ("vm.overcommit_memory", None),
    ],
)
def test_sysctl_namespace(name: str, namespace: str | None) -> None:
    assert sysctl_namespace(name) == namespace
