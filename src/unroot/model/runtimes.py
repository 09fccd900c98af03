"""Runtime profiles: the credentials a runtime gives the first program of a container or service.

Each profile is a plain frozen value; three pure functions answer the questions the rest of the
model asks of a runtime:

* :func:`bounding_set` — the default bounding set edited by ``cap_add``/``cap_drop`` (names in any
  case, with or without ``CAP_``, and ``ALL``), with the runtime's own precedence rules;
* :func:`start_creds` — the process state right before the runtime's execve of the entrypoint
  (feed it to :func:`unroot.model.execve.execve` or :func:`unroot.model.chain.exec_chain`);
* :func:`unprivileged_port_start` — ``net.ipv4.ip_unprivileged_port_start`` in the network
  namespace the process ends up in;
* :func:`sysctl_refusal` — whether the runtime refuses to start the container at all because of
  a ``sysctls`` entry (runc's validator, the kubelet's sysctl admission).

Sources (read, not remembered; re-check them when a runtime changes):

Docker (moby) — ``oci/caps/defaults.go``: the 14 default capabilities (mask ``0xa80425fb``);
``oci/caps/utils.go`` ``TweakCapabilities``: ``--cap-add ALL`` means every capability but the
dropped ones, else ``--cap-drop ALL`` keeps only the added ones, else defaults minus drops plus
adds (an add beats a drop); ``oci/oci.go`` ``SetCapabilities``: uid 0 gets the list as bounding,
permitted and effective, any other uid as bounding only ("Do not set Effective and Permitted
capabilities for non-root users, to match what execve does"; observed on Docker 20.10.24);
``daemon/oci_linux.go`` ``WithSysctls``: when the container gets its own network namespace
(``NetworkMode.IsPrivate()``: not ``host``, not ``container:``), it sets
``net.ipv4.ip_unprivileged_port_start=0`` (since 20.10) unless ``--sysctl`` says otherwise.
Rootless Docker applies the same rules inside rootlesskit's user namespace, whose root is the
invoking user.

containerd CRI — ``pkg/oci/spec.go`` ``populateDefaultUnixSpec``: the same 14 capabilities as
bounding, permitted and effective (no inheritable since the CVE-2022-24769 fixes);
``internal/cri/opts/spec_opts.go`` (``pkg/cri/opts`` in 1.x) ``WithCapabilities``: ``add ALL``
sets every capability, ``drop ALL`` clears them, then each added capability goes into bounding,
permitted and effective (``pkg/oci/spec_opts.go`` ``WithAddedCapabilities``) and each dropped one
leaves them — whatever the uid, so a non-root process holds its capabilities in pP/pE until its
first execve; ``internal/cri/server/container_create.go``: ``WithoutAmbientCaps`` (kubernetes#56374)
and no_new_privs only when ``allowPrivilegeEscalation: false``;
``internal/cri/server/podsandbox/sandbox_run_linux.go``: ``ip_unprivileged_port_start=0`` for
pods not on the node network when ``enable_unprivileged_ports`` is on —
``internal/cri/config/config_unix.go`` turns it on by default in 2.0; in 1.7
(``pkg/cri/config/config.go``) it defaults to off.

CRI-O — ``internal/config/capabilities/capabilities_linux.go`` ``Default``: 9 capabilities
(chown, dac_override, fsetid, fowner, setgid, setuid, setpcap, net_bind_service, kill);
``internal/factory/container/container.go`` ``SpecSetupCapabilities``: defaults are used unless
``add``/``drop`` says ``ALL``; added capabilities go into bounding, effective and permitted,
for every uid; inheritable only with ``add_inheritable_capabilities``; no ambient.  CRI-O does
not set ``ip_unprivileged_port_start``.

Podman — ``go.podman.io/common/pkg/config/default.go``: 11 default capabilities (no mknod,
net_raw, audit_write); ``pkg/capabilities`` ``MergeCapabilities``: ``drop ALL`` keeps only the
added ones, ``add ALL`` means the bounding set of podman itself minus drops, adding and dropping
the same capability is an error; ``pkg/specgen/generate/security_linux.go``: uid 0 gets the list
as permitted and effective; any other user gets only the ``--cap-add`` capabilities, but in
effective, permitted, inheritable *and ambient* (so they survive the exec).  Podman sets no port
sysctl; rootless containers run in a user namespace whose root is the invoking user.

systemd — ``src/core/exec-invoke.c``: ``CapabilityBoundingSet=`` is applied first;
``AmbientCapabilities=`` are raised in the inheritable and ambient sets; with ``User=`` and
ambient capabilities ``enforce_user()`` sets ``SECBIT_KEEP_CAPS`` before ``setresuid()``, so the
permitted set survives (the effective set is cleared by the uid change), without ambient
capabilities the uid change clears everything; ``NoNewPrivileges=`` sets no_new_privs
(``context_has_no_new_privileges``: the sandboxing options imply it only for managers without
CAP_SYS_ADMIN, i.e. ``systemd --user``).  Services share the host's network namespace unless
``PrivateNetwork=``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from unroot.model.caps import CAP_LAST_CAP, EMPTY, CapSet, cap_number
from unroot.model.creds import SECBIT_KEEP_CAPS, Creds, Ids
from unroot.model.errors import ParseError, UsageError

CapEdit = Literal["moby", "cri", "podman", "systemd", "shell"]
NonRootStart = Literal["bounding-only", "permitted", "added-ambient", "systemd", "shell"]

DOCKER_DEFAULT_CAPS = CapSet(0xA80425FB)
CRIO_DEFAULT_CAPS = CapSet.of(
    "chown",
    "dac_override",
    "fsetid",
    "fowner",
    "setgid",
    "setuid",
    "setpcap",
    "net_bind_service",
    "kill",
)
PODMAN_DEFAULT_CAPS = CapSet.of(
    "chown",
    "dac_override",
    "fowner",
    "fsetid",
    "kill",
    "net_bind_service",
    "setfcap",
    "setgid",
    "setpcap",
    "setuid",
    "sys_chroot",
)
PORT_SYSCTL = "net.ipv4.ip_unprivileged_port_start"
#: A new network namespace starts here (net/ipv4/af_inet.c, inet_init_net), whatever the host says.
NEW_NETNS_PORT_START = 1024


@dataclass(frozen=True, slots=True)
class RuntimeProfile:
    """How a runtime starts a process: see the module doc for the source of each field."""

    name: str
    title: str
    default_bounding: CapSet
    cap_edit: CapEdit
    nonroot_start: NonRootStart
    #: Sets ip_unprivileged_port_start=0 in a network namespace it creates for the process.
    sets_port_sysctl: bool
    #: Creates a network namespace by default (containers), or shares the host's (services).
    own_netns: bool
    #: Runs the process in a user namespace of its own (rootless engines).
    user_namespace: bool
    #: What ``--network host`` joins: the host's namespace ("host", owned by the initial user
    #: namespace), or the one rootlesskit created inside the engine's user namespace
    #: ("rootlesskit": rootless Docker; its sysctl is that namespace's, 1024 when new).
    host_netns: Literal["host", "rootlesskit"] = "host"


DOCKER = RuntimeProfile(
    "docker", "Docker (rootful)", DOCKER_DEFAULT_CAPS, "moby", "bounding-only", True, True, False
)
DOCKER_ROOTLESS = RuntimeProfile(
    "docker-rootless",
    "rootless Docker",
    DOCKER_DEFAULT_CAPS,
    "moby",
    "bounding-only",
    True,
    True,
    True,
    "rootlesskit",
)
PODMAN_ROOTLESS = RuntimeProfile(
    "podman-rootless",
    "rootless Podman",
    PODMAN_DEFAULT_CAPS,
    "podman",
    "added-ambient",
    False,
    True,
    True,
)
CONTAINERD1 = RuntimeProfile(
    "containerd1",
    "containerd 1.x CRI (Kubernetes)",
    DOCKER_DEFAULT_CAPS,
    "cri",
    "permitted",
    False,
    True,
    False,
)
CONTAINERD2 = RuntimeProfile(
    "containerd2",
    "containerd 2.x CRI (Kubernetes)",
    DOCKER_DEFAULT_CAPS,
    "cri",
    "permitted",
    True,
    True,
    False,
)
CRIO = RuntimeProfile(
    "cri-o", "CRI-O (Kubernetes)", CRIO_DEFAULT_CAPS, "cri", "permitted", False, True, False
)
SYSTEMD = RuntimeProfile(
    "systemd", "systemd system service", CapSet.all(), "systemd", "systemd", False, False, False
)
ROOT_SHELL = RuntimeProfile(
    "root-shell", "a root shell", CapSet.all(), "shell", "shell", False, False, False
)
USER_SHELL = RuntimeProfile(
    "user-shell", "a user's shell", CapSet.all(), "shell", "shell", False, False, False
)

#: The runtimes that run containers (``unroot lint --runtime``, ``.unroot.toml``'s ``runtime``).
CONTAINER_PROFILES: tuple[RuntimeProfile, ...] = (
    DOCKER,
    DOCKER_ROOTLESS,
    PODMAN_ROOTLESS,
    CONTAINERD1,
    CONTAINERD2,
    CRIO,
)
PROFILES: dict[str, RuntimeProfile] = {
    p.name: p for p in (*CONTAINER_PROFILES, SYSTEMD, ROOT_SHELL, USER_SHELL)
}


def profile(name: str) -> RuntimeProfile:
    """The profile called ``name`` (``docker``, ``containerd2``, ``cri-o``, …)."""
    found = PROFILES.get(name.strip().lower())
    if found is None:
        raise UsageError(f"unknown runtime {name!r} (known: {', '.join(PROFILES)})")
    return found


def _names(caps: Iterable[str]) -> tuple[bool, CapSet]:
    """(``ALL`` was given, the named capabilities) — runtime spellings: any case, CAP_ optional,
    a list or one comma/space-separated string."""
    if isinstance(caps, str):
        caps = re.split(r"[,\s]+", caps)
    every, named = False, EMPTY
    for raw in caps:
        if not isinstance(raw, str):
            raise ParseError(f"capability names must be strings, not {raw!r}")
        name = raw.strip()
        if name.upper() == "ALL":
            every = True
        elif name:
            bit = cap_number(name)
            if bit > CAP_LAST_CAP:
                raise ParseError(f"unknown capability {name!r}")
            named |= CapSet.of(bit)
    return every, named


def bounding_set(
    runtime: RuntimeProfile,
    cap_add: Iterable[str] = (),
    cap_drop: Iterable[str] = (),
    *,
    last_cap: int = CAP_LAST_CAP,
) -> CapSet:
    """The bounding set a runtime gives the container after ``cap_add``/``cap_drop``.

    For systemd, ``cap_drop`` removes capabilities from ``CapabilityBoundingSet=`` (its ``~``
    form) and ``cap_add`` lists ``AmbientCapabilities=`` (which must stay inside the bounding
    set); a plain shell can only drop (``capsh --drop``).
    """
    add_all, add = _names(cap_add)
    drop_all, drop = _names(cap_drop)
    every = CapSet.all(last_cap)
    base = runtime.default_bounding & every
    if runtime.cap_edit == "moby":  # oci/caps/utils.go TweakCapabilities
        if add_all:
            return every - drop
        if drop_all:
            return add
        return (base - drop) | add
    if runtime.cap_edit == "cri":  # WithCapabilities / SpecSetupCapabilities
        caps = every if add_all else base
        if drop_all:
            caps = EMPTY
        return (caps | add) - drop
    if runtime.cap_edit == "podman":  # pkg/capabilities MergeCapabilities
        if add_all and drop_all:
            raise UsageError("podman: adding all caps and removing all caps not allowed")
        if drop_all:
            return add
        if add & drop:
            raise UsageError(f"podman: capability {add & drop} cannot be dropped and added")
        return (every if add_all else base) - drop | add
    if runtime.cap_edit == "shell" and (add_all or add):
        raise UsageError(f"{runtime.title} cannot add capabilities to its bounding set")
    return EMPTY if drop_all else base - drop


def start_creds(  # noqa: PLR0917 - positional order agreed with the CLI and linter authors
    runtime: RuntimeProfile,
    user_uid: int = 0,
    user_gid: int = 0,
    groups: Iterable[int] = (),
    cap_add: Iterable[str] = (),
    cap_drop: Iterable[str] = (),
    no_new_privs: bool = False,
    host_network: bool = False,
    *,
    last_cap: int = CAP_LAST_CAP,
) -> Creds:
    """The credentials of the runtime's process right before it executes the entrypoint.

    Ids are as the process sees them (inside the user namespace for rootless engines).
    ``host_network`` does not change credentials under any of these runtimes; it is accepted so
    callers can pass one situation to every question.  For ``podman-rootless`` a non-root user
    gets the ``cap_add`` capabilities as ambient; for systemd ``cap_add`` is
    ``AmbientCapabilities=`` and ``cap_drop`` edits ``CapabilityBoundingSet=``.
    """
    del host_network
    bounding = bounding_set(runtime, cap_add, cap_drop, last_cap=last_cap)
    every = CapSet.all(last_cap)
    permitted = effective = inheritable = ambient = EMPTY
    securebits = 0
    root = user_uid == 0
    if runtime.nonroot_start == "systemd":
        add_all, wanted = _names(cap_add)
        ambient = every if add_all else wanted
        if not ambient.issubset(bounding):
            raise UsageError(
                f"AmbientCapabilities= {ambient - bounding} is outside CapabilityBoundingSet=: "
                "systemd fails the unit (status 218/CAPABILITIES)"
            )
        inheritable = ambient
        if root:
            permitted = effective = every
        elif ambient:
            permitted, securebits = every, SECBIT_KEEP_CAPS
    elif runtime.nonroot_start == "shell":
        if root:
            permitted = effective = every
    elif root or runtime.nonroot_start == "permitted":
        permitted = effective = bounding
    elif runtime.nonroot_start == "added-ambient":
        add_all, added = _names(cap_add)
        added = every if add_all else added
        permitted = effective = inheritable = ambient = added
    return Creds(
        uid=Ids.same(user_uid),
        gid=Ids.same(user_gid),
        groups=frozenset(groups),
        inheritable=inheritable,
        permitted=permitted,
        effective=effective,
        bounding=bounding,
        ambient=ambient,
        securebits=securebits,
        no_new_privs=no_new_privs,
    )


def unprivileged_port_start(
    runtime: RuntimeProfile,
    host_network: bool,
    host_value: int = 1024,
    sysctls: Mapping[str, str | int] | None = None,
) -> int:
    """``net.ipv4.ip_unprivileged_port_start`` where the process runs.

    On the host network (``--network host``, ``hostNetwork: true``, any systemd service without
    ``PrivateNetwork=``, a shell) it is ``host_value``: the runtime's sysctl is not applied there
    (Docker refuses ``--sysctl net.*`` with the host network).  In a network namespace of its own
    an explicit ``sysctls`` entry wins, then the runtime's default (0 when it sets it), else the
    kernel's default for a new namespace, 1024 — not the host's value.  For rootless engines
    "host network" is the namespace rootlesskit/pasta gives them; pass its value.
    """
    if host_network or not runtime.own_netns:
        return host_value
    if sysctls and PORT_SYSCTL in sysctls:
        raw = sysctls[PORT_SYSCTL]
        try:
            value = int(str(raw).strip())
        except ValueError:
            raise ParseError(f"{PORT_SYSCTL} must be a number, not {raw!r}") from None
        if not 0 <= value <= 65535:
            raise ParseError(f"{PORT_SYSCTL} must be within 0..65535, not {value}")
        return value
    return 0 if runtime.sets_port_sysctl else NEW_NETNS_PORT_START


def host_netns_owned(runtime: RuntimeProfile) -> bool:
    """Does the namespace ``--network host`` joins belong to the container's user namespace (so
    that a capability the process holds there counts at bind())?

    Rootful runtimes: the host's namespace and the process are both the initial user
    namespace's.  Rootless Docker: rootlesskit's namespace, created inside the user namespace
    its containers share (observed on 20.10.24: CapEff 0x400 binds :80 there, sysctl 1024).
    Rootless Podman: the real host's namespace, owned by the initial user namespace — CapEff
    0x400 in the container's namespace does not count there (observed on 4.3.1: EACCES).
    """
    return not runtime.user_namespace or runtime.host_netns == "rootlesskit"


# -- sysctls the runtime refuses --------------------------------------------------------------
#: runc's IPC sysctls (libcontainer/configs/validate/validator.go, ``sysctl``), plus the prefix
#: ``fs.mqueue.``: they need an IPC namespace of the container's own.
IPC_SYSCTLS = frozenset(
    {
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    }
)


def sysctl_key(name: str) -> str:
    """``net/ipv4/ip_forward`` → ``net.ipv4.ip_forward``: runc and the kubelet read ``/`` as
    the dot separator."""
    return name.strip().replace("/", ".")


def sysctl_namespace(name: str) -> str | None:
    """The namespace that makes sysctl ``name`` per-container: ``net``, ``ipc``, ``uts``, or None
    for a host-wide one (``vm.*``, ``fs.file-max``, ``kernel.pid_max``…).  ``/`` separators are
    read as dots, as runc and the kubelet do."""
    key = sysctl_key(name)
    if key in IPC_SYSCTLS or key.startswith("fs.mqueue."):
        return "ipc"
    if key.startswith("net."):
        return "net"
    if key in ("kernel.hostname", "kernel.domainname"):
        return "uts"
    return None


def sysctl_refusal(
    runtime: RuntimeProfile, name: str, *, host_network: bool, host_ipc: bool = False
) -> str | None:
    """Why ``runtime`` refuses to create a container that sets sysctl ``name`` — the error the
    user sees — or None when it does not refuse.

    Docker, Podman, containerd and CRI-O all hand the sysctls to runc, whose validator refuses a
    ``net.*`` sysctl without a network namespace of the container's own (``--network host``,
    ``hostNetwork``), an IPC one without its own IPC namespace, and any sysctl no namespace
    covers ("is not in a separate kernel namespace": ``vm.max_map_count`` and friends must be set
    on the host); observed on Docker 20.10.24 / runc 1.1.5.  Under Kubernetes the kubelet's
    sysctl admission rejects the pod first (reason ``SysctlForbidden``,
    pkg/kubelet/sysctl/allowlist.go): a host-wide sysctl can never be allowlisted, and a
    namespaced one is refused with the host's namespace.  A namespaced sysctl outside the
    kubelet's safe list also needs ``--allowed-unsafe-sysctls``: that is node configuration the
    linter cannot see, so it is not reported.  systemd units and shells set no sysctls.
    """
    if not runtime.own_netns:  # systemd units and shells: no container, no sysctls
        return None
    key = sysctl_key(name)
    namespace = sysctl_namespace(key)
    if runtime.cap_edit == "cri":  # a kubelet admits the pod first
        if namespace is None or namespace == "uts":
            return f'the kubelet rejects the pod (SysctlForbidden): "{key}" not allowlisted'
        if (namespace == "net" and host_network) or (namespace == "ipc" and host_ipc):
            host = "net" if namespace == "net" else "ipc"
            return (
                f'the kubelet rejects the pod (SysctlForbidden): "{key}" not allowed with host '
                f"{host} enabled"
            )
        return None
    refuses = f'runc refuses to create the container: sysctl "{key}"'
    if namespace == "net" and host_network:
        return f"{refuses} not allowed in host network namespace"
    if namespace == "ipc" and host_ipc:
        return f"{refuses} is not allowed in the hosts ipc namespace"
    if key == "kernel.hostname":
        return f'{refuses} is not allowed as it conflicts with the OCI "hostname" field'
    if namespace is None:
        return f"{refuses} is not in a separate kernel namespace"
    return None
