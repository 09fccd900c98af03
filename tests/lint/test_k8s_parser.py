"""Kubernetes manifests → a workload per container; security contexts merged as the kubelet does."""

from __future__ import annotations

import pytest
from _parser_fixtures import fixture, line_of
from hypothesis import given, settings
from hypothesis import strategies as st

from unroot.sources.k8s import parse_k8s
from unroot.sources.kinds import parse_file
from unroot.sources.parsed import Location, MountFact, PortFact, UserFact, Workload


def by_name(text: str, path: str = "m.yaml") -> dict[str, Workload]:
    return {w.name: w for w in parse_k8s(text, path).workloads}


POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: p
spec:
{pod}
  containers:
  - name: c
    image: app:1
{container}
"""


def pod(pod_lines: str = "", container_lines: str = "") -> Workload:
    text = POD.format(pod=pod_lines, container=container_lines)
    parsed = parse_k8s(text, "pod.yaml")
    (workload,) = parsed.workloads
    return workload


# -- realistic files ----------------------------------------------------------------------
def test_coredns_drop_all_add_net_bind_service() -> None:
    text, path = fixture("k8s/coredns.yaml")
    parsed = parse_k8s(text, path)
    assert parsed.kind == "k8s"
    assert parsed.problems == ()
    (coredns,) = parsed.workloads  # ServiceAccount, ConfigMap, Service: not workloads
    assert coredns.source_kind == "k8s"
    assert coredns.name == "Deployment/coredns/container:coredns"
    assert coredns.location == Location(path, line_of(text, "- name: coredns"), 9)  # the "name"
    assert coredns.image == "registry.k8s.io/coredns/coredns:v1.11.1"
    assert coredns.user is None  # no runAsUser: the image's USER decides
    assert coredns.cap_add == ("NET_BIND_SERVICE",)
    assert coredns.cap_drop == ("ALL",)
    assert coredns.caps_location == Location(path, line_of(text, "capabilities:"), 11)
    assert coredns.no_new_privs
    assert coredns.no_new_privs_reason == "allowPrivilegeEscalation: false"
    assert coredns.no_new_privs_location == Location(
        path, line_of(text, "allowPrivilegeEscalation"), 11
    )
    assert coredns.read_only_rootfs
    assert not coredns.host_network
    assert [(p.port, p.proto, p.host_port) for p in coredns.ports] == [
        (53, "udp", None),
        (53, "tcp", None),
        (9153, "tcp", None),
    ]
    assert coredns.ports[0] == PortFact(
        53, "udp", None, "containerPort", Location(path, line_of(text, "containerPort: 53"), 11)
    )
    assert coredns.command == ("-conf", "/etc/coredns/Corefile")  # args override CMD
    assert coredns.entrypoint is None
    assert coredns.mounts == (
        MountFact(
            "config-volume",
            "/etc/coredns",
            "volume",
            True,
            Location(path, line_of(text, "- name: config-volume"), 11),
        ),
    )


def test_ingress_nginx_runs_as_101_with_escalation_allowed() -> None:
    text, path = fixture("k8s/ingress-nginx-controller.yaml")
    (controller,) = parse_k8s(text, path).workloads
    assert controller.user == UserFact(
        "101", 101, None, Location(path, line_of(text, "runAsUser: 101"), 13)
    )
    assert controller.run_as_non_root
    assert controller.location_of("run_as_non_root") == Location(
        path, line_of(text, "runAsNonRoot"), 13
    )
    assert not controller.no_new_privs  # allowPrivilegeEscalation: true
    assert controller.cap_add == ("NET_BIND_SERVICE",)
    assert [p.port for p in controller.ports] == [80, 443, 8443]
    # object and pod-template annotations, joined without duplicates
    assert controller.ignores == ("UR105", "USELESS-CAP-ADD")
    assert controller.command is not None
    assert controller.command[0] == "/nginx-ingress-controller"


def test_traefik_host_network_defaults_host_ports() -> None:
    text, path = fixture("k8s/traefik.yaml")
    (traefik,) = parse_k8s(text, path).workloads
    assert traefik.host_network
    assert traefik.location_of("host_network") == Location(
        path, line_of(text, "hostNetwork: true"), 7
    )
    assert [(p.port, p.host_port, p.source) for p in traefik.ports[:2]] == [
        (80, 80, "containerPort"),
        (443, 443, "containerPort"),
    ]
    args_line = Location(path, line_of(text, "args:"), 9)
    assert PortFact(80, "tcp", None, "command-line", args_line) in traefik.ports
    assert traefik.user == UserFact(
        "65532:65532", 65532, 65532, Location(path, line_of(text, "runAsUser"), 9)
    )
    assert traefik.run_as_non_root
    assert traefik.no_new_privs
    assert traefik.mounts[0].kind == "volume"
    assert traefik.mounts[1].kind == "tmpfs"  # emptyDir medium: Memory


def test_daemonset_host_port_53_host_path_and_sysctl() -> None:
    text, path = fixture("k8s/dns-daemonset.yaml")
    (cache,) = parse_k8s(text, path).workloads
    assert cache.name == "DaemonSet/node-local-dns/container:node-cache"
    assert [(p.port, p.proto, p.host_port) for p in cache.ports] == [
        (53, "udp", 53),
        (53, "tcp", 53),
    ]
    assert cache.sysctls == (("net.ipv4.ip_unprivileged_port_start", "53"),)
    assert cache.location_of("sysctls") == Location(path, line_of(text, "sysctls:"), 9)
    assert cache.mounts == (
        MountFact(
            "/run/xtables.lock",
            "/run/xtables.lock",
            "hostPath",
            False,
            Location(path, line_of(text, "- mountPath: /run/xtables.lock"), 11),
        ),
        MountFact(
            "/etc/ssl",
            "/etc/host-ssl",
            "hostPath",
            True,
            Location(path, line_of(text, "- name: etc"), 11),
        ),
    )
    assert not cache.no_new_privs  # allowPrivilegeEscalation not written


def test_cronjob_init_container_and_pod_level_merge() -> None:
    text, path = fixture("k8s/backup-cronjob.yaml")
    init, backup = parse_k8s(text, path).workloads
    assert init.name == "CronJob/cert-backup/initContainer:wait-for-certs"
    assert init.is_init_container
    assert not backup.is_init_container
    # container runAsUser overrides the pod's; runAsGroup comes from the pod
    assert init.user == UserFact(
        "0:1000", 0, 1000, Location(path, line_of(text, "runAsUser: 0"), 15)
    )
    assert init.user.is_root
    assert init.privileged
    assert backup.user == UserFact(
        "1000:1000", 1000, 1000, Location(path, line_of(text, "runAsUser: 1000"), 13)
    )
    # supplementalGroups and fsGroup are every container's supplementary groups
    assert backup.groups == init.groups == ("2200", "3000")
    assert backup.entrypoint == ("/backup",)
    assert backup.command == ("--source", "/certs")
    assert backup.mounts[0].source == "/etc/letsencrypt"
    assert backup.mounts[0].read_only


def test_list_items_and_statefulset() -> None:
    text, path = fixture("k8s/list.yaml")
    workloads = by_name(text, path)
    assert set(workloads) == {"Pod/echo/container:echo", "StatefulSet/db/container:postgres"}
    echo = workloads["Pod/echo/container:echo"]
    assert {(p.port, p.source) for p in echo.ports} == {(80, "containerPort"), (80, "command-line")}
    assert workloads["StatefulSet/db/container:postgres"].user == UserFact(
        "999", 999, None, Location(path, line_of(text, "runAsUser: 999"), 13)
    )


# -- semantics ---------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["Deployment", "ReplicaSet", "ReplicationController", "Job"])
def test_template_kinds(kind: str) -> None:
    text = (
        f"kind: {kind}\napiVersion: v1\nmetadata: {{name: x}}\n"
        "spec:\n  template:\n    spec:\n      containers: [{name: c, image: i}]\n"
    )
    assert list(by_name(text)) == [f"{kind}/x/container:c"]


def test_crd_with_a_pod_template_and_pod_template_kind() -> None:
    rollout = (
        "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: r}\n"
        "spec:\n  template:\n    spec:\n      containers: [{name: c, image: i}]\n"
    )
    template = (
        "apiVersion: v1\nkind: PodTemplate\nmetadata: {name: t}\n"
        "template:\n  spec:\n    containers: [{name: c, image: i}]\n"
    )
    assert list(by_name(rollout)) == ["Rollout/r/container:c"]
    assert list(by_name(template)) == ["PodTemplate/t/container:c"]


def test_multi_document_and_empty_documents() -> None:
    text = (
        "---\n---\n"
        + POD.format(pod="", container="").replace("name: p", "name: a")
        + "---\n"
        + POD.format(pod="", container="").replace("name: p", "name: b")
    )
    assert list(by_name(text)) == ["Pod/a/container:c", "Pod/b/container:c"]


@pytest.mark.parametrize(
    ("pod_sc", "container_sc", "uid", "gid", "non_root"),
    [
        ("runAsUser: 1000", "", 1000, None, False),
        ("runAsUser: 1000", "runAsUser: 2000", 2000, None, False),
        ("runAsUser: 1000\n    runAsGroup: 3000", "runAsUser: 2000", 2000, 3000, False),
        ("runAsNonRoot: true", "", None, None, True),
        ("runAsNonRoot: true", "runAsNonRoot: false", None, None, False),
        ("", "runAsGroup: 5", None, 5, False),
    ],
)
def test_security_context_merge(
    pod_sc: str, container_sc: str, uid: int | None, gid: int | None, non_root: bool
) -> None:
    w = pod(
        f"  securityContext:\n    {pod_sc}" if pod_sc else "",
        f"    securityContext:\n      {container_sc}" if container_sc else "",
    )
    if uid is None and gid is None:
        assert w.user is None
    else:
        assert w.user is not None
        assert (w.user.uid, w.user.gid) == (uid, gid)
    assert w.run_as_non_root is non_root


def test_run_as_non_root_without_user_leaves_the_image_to_decide() -> None:
    w = pod("  securityContext:\n    runAsNonRoot: true")
    assert w.user is None
    assert w.run_as_non_root
    assert w.user is None or w.user.is_root is None


@pytest.mark.parametrize(
    ("sc", "nnp"),
    [
        ("allowPrivilegeEscalation: false", True),
        ("allowPrivilegeEscalation: true", False),
        ("readOnlyRootFilesystem: true", False),  # unset: the runtime default (escalation allowed)
    ],
)
def test_allow_privilege_escalation(sc: str, nnp: bool) -> None:
    assert pod(container_lines=f"    securityContext:\n      {sc}").no_new_privs is nnp


def test_container_only_fields_at_pod_level_are_ignored() -> None:
    w = pod(
        "  securityContext:\n"
        "    capabilities: {add: [NET_ADMIN]}\n"
        "    allowPrivilegeEscalation: false"
    )
    assert w.cap_add == ()
    assert not w.no_new_privs


def test_validation_conflicts_are_problems() -> None:
    text = POD.format(
        pod="",
        container=(
            "    securityContext:\n      privileged: true\n      allowPrivilegeEscalation: false\n"
            "      capabilities: {add: [CAP_SYS_ADMIN]}"
        ),
    )
    parsed = parse_k8s(text, "pod.yaml")
    messages = [message for _, message in parsed.problems]
    assert any("privileged: true" in m for m in messages)
    assert any("CAP_SYS_ADMIN" in m for m in messages)
    assert parsed.workloads[0].no_new_privs  # as written; the API server would refuse it


def test_sys_admin_without_prefix_passes_validation() -> None:
    parsed = parse_k8s(
        POD.format(
            pod="",
            container="    securityContext:\n      allowPrivilegeEscalation: false\n"
            "      capabilities: {add: [SYS_ADMIN]}",
        ),
        "pod.yaml",
    )
    assert parsed.problems == ()  # ValidateSecurityContext compares the literal "CAP_SYS_ADMIN"


def test_ports_protocol_and_host_port() -> None:
    w = pod(
        container_lines=(
            "    ports:\n"
            "    - {containerPort: 53, protocol: UDP, hostPort: 1053}\n"
            "    - {containerPort: 8443, protocol: sctp}\n"
        )
    )
    assert [(p.port, p.proto, p.host_port) for p in w.ports] == [
        (53, "udp", 1053),
        (8443, "sctp", None),
    ]


def test_annotations_on_object() -> None:
    text = POD.replace(
        "  name: p\n", "  name: p\n  annotations:\n    unroot.dev/ignore: UR104,UR105\n"
    )
    w = parse_k8s(text.format(pod="", container=""), "pod.yaml").workloads[0]
    assert w.ignores == ("UR104", "UR105")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("kind: Pod\nspec:\n  containers: {name: c}\n", "containers: expected a list"),
        ("kind: Pod\nspec:\n  containers: [3]\n", "a container is"),
        (
            "kind: Pod\nspec:\n  containers: [{name: c, ports: [{containerPort: x}]}]\n",
            "containerPort",
        ),
        ("kind: List\nitems: [1]\n", "not an object"),
        ("- just\n- a list\n", "a manifest is a mapping"),
        (
            "kind: Pod\nspec:\n  containers:\n  - name: c\n"
            "    securityContext:\n      runAsUser: -1\n",
            "from 0 to 2147483647",
        ),
        (
            "kind: Pod\nspec:\n"
            "  containers: [{name: c, volumeMounts: [{name: v, mountPath: /x}]}]\n",
            "no volume named",
        ),
        ("kind: Pod\nmetadata: {name: a}\nmetadata: {name: b}\n", "duplicate key"),
    ],
)
def test_problems_not_exceptions(text: str, needle: str) -> None:
    parsed = parse_k8s(text, "m.yaml")
    assert any(needle in message for _, message in parsed.problems), parsed.problems


def test_pragmas_in_manifests() -> None:
    text = POD.format(
        pod="", container="    # unroot: ignore=UR104\n    ports: [{containerPort: 80}]"
    )
    assert parse_k8s(text, "pod.yaml").line_ignores == ()  # the pragma pass reads them
    parsed = parse_file("k8s", text, "pod.yaml")
    assert parsed.line_ignores == ((line_of(text, "ports:"), "UR104"),)


@pytest.mark.parametrize("value", ["-1", "2147483648", "99999999999999999999", "'abc'"])
def test_run_as_user_outside_the_api_range_is_a_problem(value: str) -> None:
    text = POD.format(pod=f"  securityContext:\n    runAsUser: {value}", container="")
    parsed = parse_k8s(text, "pod.yaml")
    (workload,) = parsed.workloads
    assert workload.user is None
    (problem,) = parsed.problems
    assert problem[0].line == line_of(text, "runAsUser")
    assert "from 0 to 2147483647" in problem[1]


def test_run_as_user_at_the_api_limit_is_kept() -> None:
    w = pod("  securityContext:\n    runAsUser: 2147483647\n    runAsNonRoot: true")
    assert w.user is not None
    assert w.user.uid == 2**31 - 1


# -- hostIPC --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("line", "host_ipc"),
    [
        ("  hostIPC: true", True),
        ("  hostIPC: false", False),
        ("  hostIPC: [true]", False),
        ("  hostIPC:", False),
        ("  hostPID: true", False),
        ("", False),
    ],
)
def test_host_ipc(line: str, host_ipc: bool) -> None:
    workload = pod(line)
    assert workload.host_ipc is host_ipc
    where = workload.location_of("host_ipc")
    assert (where == Location("pod.yaml", 6, 3)) if host_ipc else where is None


def test_host_ipc_applies_to_every_container_and_init_container() -> None:
    text = POD.format(
        pod="  hostIPC: true\n  initContainers:\n  - {name: i, image: app:1}", container=""
    )
    workloads = parse_k8s(text, "pod.yaml").workloads
    assert [(w.name, w.host_ipc) for w in workloads] == [
        ("Pod/p/initContainer:i", True),
        ("Pod/p/container:c", True),
    ]


_POD_LINES = st.sampled_from(
    [
        "  hostIPC: true\n",
        "  hostIPC: yes\n",
        "  hostIPC: {a: 1}\n",
        "  hostIPC:\n",
        "  hostNetwork: true\n",
        "  securityContext:\n",
        "    sysctls:\n",
        "    - {name: kernel.shmmax, value: '1'}\n",
        "    - name: net.ipv4.ip_unprivileged_port_start\n",
        "      value: 0\n",
        "    - []\n",
        "  hostIPC: !!binary aGk=\n",
        "  - x\n",
        "\t\n",
    ]
)


@settings(max_examples=150, deadline=None, database=None)
@given(st.lists(_POD_LINES, max_size=8).map("".join))
def test_random_pod_specs_never_raise(lines: str) -> None:
    parsed = parse_k8s(POD.format(pod=lines.rstrip("\n"), container=""), "pod.yaml")
    for workload in parsed.workloads:
        assert isinstance(workload.host_ipc, bool)
        if workload.host_ipc:
            assert workload.location_of("host_ipc") is not None
    assert all("internal error" not in message for _, message in parsed.problems)
