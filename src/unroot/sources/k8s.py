"""Kubernetes manifests → one :class:`Workload` per container and init container.

Reads Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job,
CronJob (``spec.jobTemplate.spec.template``), PodTemplate, any other kind with a pod template
at ``spec.template`` (Argo Rollouts, …), multi-document files and ``kind: List`` (or
``…List``, as ``kubectl get -o yaml|json`` prints) with ``items``.  Other kinds (Service,
ConfigMap, …) are skipped silently, and so are empty documents (a trailing ``---``, a Helm
``# Source:`` block with nothing rendered, an explicit ``null``), as kubectl skips them; a
document that is any other scalar or a list is a problem.

Volumes: a ``volumeMounts`` name must be a pod volume or, in a StatefulSet, the
``metadata.name`` of one of its ``volumeClaimTemplates`` (the controller gives each pod a
PersistentVolumeClaim volume of that name, replacing a pod volume of the same name): such a
mount is a ``volume``, never a host path.

The security context is merged as the kubelet does (``DetermineEffectiveSecurityContext``):
``runAsUser``, ``runAsGroup``, ``runAsNonRoot`` come from the container, else the pod;
``capabilities``, ``privileged``, ``allowPrivilegeEscalation`` and
``readOnlyRootFilesystem`` exist only on the container; ``supplementalGroups``, ``fsGroup``
and ``sysctls`` only on the pod (fsGroup is also a supplementary group of every container).
no_new_privs is set exactly when ``allowPrivilegeEscalation: false`` is written
(``AddNoNewPrivileges``: unset means false).  The API server rejects
``allowPrivilegeEscalation: false`` with ``privileged: true`` or with an added
``CAP_SYS_ADMIN``, and a ``runAsUser``/``runAsGroup`` outside 0…2147483647
(``ValidateSecurityContext``): reported as problems.  ``runAsNonRoot`` is kept as the
effective value; the kubelet's check of it is modelled in ``situation/nonroot.py``.  With
``hostNetwork: true`` a containerPort without hostPort gets hostPort = containerPort (API
defaulting).  ``hostIPC: true`` puts every container in the host's IPC namespace.  Image
references are kept as written; the ``[images]`` config joins them to Dockerfiles later.
Annotation ``unroot.dev/ignore: UR104,UR105`` on the object or its pod template →
``Workload.ignores``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from unroot.sources._shared import argv_ports, never_raises, rule_ids
from unroot.sources.parsed import Location, MountFact, ParsedFile, PortFact, UserFact, Workload
from unroot.sources.yamlsupport import (
    YMap,
    YNode,
    YScalar,
    YSeq,
    describe,
    is_absent,
    load_yaml,
    present,
    present_seq,
)

IGNORE_ANNOTATION = "unroot.dev/ignore"
_TEMPLATE_KINDS = frozenset(
    {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job"}
)
_PROTOCOLS = {"TCP": "tcp", "UDP": "udp", "SCTP": "sctp"}
_MAX_LIST_DEPTH = 8
#: runAsUser / runAsGroup: ValidateSecurityContext → validation.IsValidUserID/IsValidGroupID
MAX_ID = 2**31 - 1


@dataclass
class _Ctx:
    path: str
    problems: list[tuple[Location, str]] = field(default_factory=list)

    def loc(self, node: YNode) -> Location:
        return node.location(self.path)

    def problem(self, node: YNode, message: str) -> None:
        self.problems.append((self.loc(node), message))


@dataclass(frozen=True)
class _Pod:
    """Where a pod spec was found and what surrounds it."""

    kind: str
    name: str
    spec: YMap
    ignores: tuple[str, ...]
    claims: tuple[str, ...] = ()  # a StatefulSet's volumeClaimTemplates names


@never_raises("k8s")
def parse_k8s(text: str, path: str) -> ParsedFile:
    """Every container of every workload object in ``text``; problems instead of exceptions."""
    ctx = _Ctx(path)
    loaded = load_yaml(text, path)
    ctx.problems.extend(loaded.problems)
    workloads: list[Workload] = []
    for document in loaded.documents:
        if document.root is None or (isinstance(document.root, YScalar) and document.root.is_null):
            continue  # an empty or comment-only document: kubectl skips it
        if not isinstance(document.root, YMap):
            ctx.problem(document.root, f"a manifest is a mapping, found {describe(document.root)}")
            continue
        for pod in _objects(ctx, document.root, 0):
            workloads.extend(_containers(ctx, pod))
    return ParsedFile(
        path=path, kind="k8s", workloads=tuple(workloads), problems=tuple(ctx.problems)
    )


def _annotation_ignores(metadata: YMap | None) -> tuple[str, ...]:
    annotations = metadata.get_map("annotations") if metadata else None
    value = annotations.get_str(IGNORE_ANNOTATION) if annotations else None
    return rule_ids(value) if value else ()


def _objects(ctx: _Ctx, obj: YMap, depth: int) -> list[_Pod]:
    kind = obj.get_str("kind") or ""
    if kind == "List" or (kind.endswith("List") and "items" in obj):
        items = obj.get("items")
        if depth >= _MAX_LIST_DEPTH or not isinstance(items, YSeq):
            if items is not None and present(items) is not None:
                ctx.problem(items, f"{kind}: items must be a list of objects")
            return []
        found: list[_Pod] = []
        for item in items:
            if isinstance(item, YMap):
                found.extend(_objects(ctx, item, depth + 1))
            else:
                ctx.problem(item, f"{kind}: an item is {describe(item)}, not an object")
        return found
    metadata = obj.get_map("metadata")
    name = (metadata.get_str("name") if metadata else None) or "<unnamed>"
    ignores = _annotation_ignores(metadata)
    spec = obj.get_map("spec")
    if kind == "Pod":
        return [_Pod(kind, name, spec, ignores)] if spec is not None else []
    if kind == "PodTemplate":
        template = obj.get_map("template")
    elif kind == "CronJob":
        job = spec.get_map("jobTemplate") if spec else None
        job_spec = job.get_map("spec") if job else None
        template = job_spec.get_map("template") if job_spec else None
    else:
        template = spec.get_map("template") if spec else None
        if kind not in _TEMPLATE_KINDS and not (template and template.get_map("spec")):
            return []  # Service, ConfigMap, a CRD without a pod template, …
    pod_spec = template.get_map("spec") if template else None
    if pod_spec is None:
        return []
    template_ignores = _annotation_ignores(template.get_map("metadata") if template else None)
    claims = _claim_names(spec) if kind == "StatefulSet" and spec is not None else ()
    return [_Pod(kind, name, pod_spec, rule_ids(ignores + template_ignores), claims)]


def _claim_names(spec: YMap) -> tuple[str, ...]:
    """The names of a StatefulSet's ``volumeClaimTemplates``: each pod gets a volume of that
    name bound to its own PersistentVolumeClaim (``<name>-<pod>``)."""
    names: list[str] = []
    for claim in spec.get_seq("volumeClaimTemplates") or ():
        metadata = claim.get_map("metadata") if isinstance(claim, YMap) else None
        name = metadata.get_str("name") if metadata else None
        if name:
            names.append(name)
    return tuple(names)


def _user(ctx: _Ctx, pod_sc: YMap | None, sc: YMap | None) -> UserFact | None:
    """runAsUser/runAsGroup, container over pod; None when the image's USER decides the uid."""
    uid, uid_key = _effective_int(ctx, "runAsUser", pod_sc, sc)
    gid, gid_key = _effective_int(ctx, "runAsGroup", pod_sc, sc)
    if uid is None and gid is None:
        return None
    text = (str(uid) if uid is not None else "") + (f":{gid}" if gid is not None else "")
    key = uid_key or gid_key
    return UserFact(text, uid, gid, ctx.loc(key) if key else None)


def _effective_int(
    ctx: _Ctx, name: str, pod_sc: YMap | None, sc: YMap | None
) -> tuple[int | None, YScalar | None]:
    for level in (sc, pod_sc):
        if level is None or level.get_scalar(name) is None:
            continue
        value = level.get_int(name)
        key = level.key_node(name)
        if value is None or not 0 <= value <= MAX_ID:
            node = level.get(name)
            assert node is not None
            ctx.problem(
                node,
                f"securityContext.{name}: must be an integer from 0 to {MAX_ID} (the API server "
                "rejects anything else)",
            )
            return None, None
        return value, key
    return None, None


def _effective_bool(name: str, pod_sc: YMap | None, sc: YMap | None) -> tuple[bool, YScalar | None]:
    for level in (sc, pod_sc):
        value = level.get_bool(name) if level is not None else None
        if value is not None and level is not None:
            return value, level.key_node(name)
    return False, None


def _strings(ctx: _Ctx, node: YNode | None, what: str) -> tuple[str, ...]:
    node = present_seq(node, what, ctx.problem)
    if node is None:
        return ()
    found: list[str] = []
    for item in node:
        if isinstance(item, YScalar) and not item.is_null:
            found.append(item.text)
        else:
            ctx.problem(item, f"{what}: expected a string, found {describe(item)}")
    return tuple(found)


@dataclass(frozen=True)
class _PodLevel:
    """What the pod spec gives every container."""

    security_context: YMap | None
    groups: tuple[str, ...]
    sysctls: tuple[tuple[str, str], ...]
    volumes: dict[str, tuple[str, str]]  # name → (MountFact kind, source)
    host_network_key: YScalar | None  # set when hostNetwork: true
    groups_key: YScalar | None
    sysctls_key: YScalar | None
    host_ipc_key: YScalar | None = None  # set when hostIPC: true


def _pod_level(pod: _Pod) -> _PodLevel:
    spec = pod.spec
    pod_sc = spec.get_map("securityContext")
    groups: list[str] = []
    sysctls: list[tuple[str, str]] = []
    if pod_sc is not None:
        supplemental = pod_sc.get_seq("supplementalGroups")
        for item in supplemental or ():
            if isinstance(item, YScalar) and item.as_int() is not None:
                groups.append(item.text)
        if pod_sc.get_int("fsGroup") is not None:
            groups.append(str(pod_sc.get_int("fsGroup")))
        for item in pod_sc.get_seq("sysctls") or ():
            if isinstance(item, YMap) and item.get_str("name"):
                sysctls.append((item.get_str("name") or "", item.get_str("value") or ""))
    volumes: dict[str, tuple[str, str]] = {}  # name → (kind, source)
    for item in spec.get_seq("volumes") or ():
        if not isinstance(item, YMap) or not item.get_str("name"):
            continue
        name = item.get_str("name") or ""
        host_path = item.get_map("hostPath")
        empty_dir = item.get_map("emptyDir")
        if host_path is not None:
            volumes[name] = ("hostPath", host_path.get_str("path") or "")
        elif empty_dir is not None and (empty_dir.get_str("medium") or "") == "Memory":
            volumes[name] = ("tmpfs", name)
        else:
            volumes[name] = ("volume", name)
    for name in pod.claims:  # a claim template replaces a pod volume of its name
        volumes[name] = ("volume", name)
    host_network_key = spec.key_node("hostNetwork") if spec.get_bool("hostNetwork") else None
    groups_key = sysctls_key = None
    if pod_sc is not None:
        groups_key = pod_sc.key_node("supplementalGroups") or pod_sc.key_node("fsGroup")
        sysctls_key = pod_sc.key_node("sysctls")
    return _PodLevel(
        pod_sc,
        tuple(groups),
        tuple(sysctls),
        volumes,
        host_network_key,
        groups_key,
        sysctls_key,
        host_ipc_key=spec.key_node("hostIPC") if spec.get_bool("hostIPC") else None,
    )


def _containers(ctx: _Ctx, pod: _Pod) -> list[Workload]:
    spec = pod.spec
    shared = _pod_level(pod)
    found: list[Workload] = []
    for field_name, is_init in (("initContainers", True), ("containers", False)):
        node = present_seq(spec.get(field_name), field_name, ctx.problem)
        if node is None:
            continue
        for item in node:
            if not isinstance(item, YMap):
                ctx.problem(item, f"{field_name}: a container is {describe(item)}")
                continue
            found.append(_container(ctx, pod, item, is_init, shared))
    return found


def _container(
    ctx: _Ctx,
    pod: _Pod,
    container: YMap,
    is_init: bool,
    shared: _PodLevel,
) -> Workload:
    pod_sc = shared.security_context
    host_network = shared.host_network_key is not None
    where: dict[str, Location] = {}
    cname = container.get_str("name") or "<unnamed>"
    label = "initContainer" if is_init else "container"
    sc_node = container.get("securityContext")
    sc = sc_node if isinstance(sc_node, YMap) else None
    if sc_node is not None and sc is None and not is_absent(sc_node):
        ctx.problem(sc_node, f"securityContext: expected a mapping, found {describe(sc_node)}")

    user = _user(ctx, pod_sc, sc)
    run_as_non_root, non_root_key = _effective_bool("runAsNonRoot", pod_sc, sc)
    if run_as_non_root and non_root_key is not None:
        where["run_as_non_root"] = ctx.loc(non_root_key)

    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    caps_location: Location | None = None
    privileged = False
    nnp = False
    nnp_location: Location | None = None
    read_only = False
    if sc is not None:
        caps = sc.get_map("capabilities")
        if caps is not None:
            cap_add = _strings(ctx, caps.get("add"), "capabilities.add")
            cap_drop = _strings(ctx, caps.get("drop"), "capabilities.drop")
            caps_key = sc.key_node("capabilities")
            caps_location = ctx.loc(caps_key) if caps_key else None
            for name in ("add", "drop"):
                key = caps.key_node(name)
                if key is not None:
                    where[f"cap_{name}"] = ctx.loc(key)
        privileged = bool(sc.get_bool("privileged"))
        if privileged:
            key = sc.key_node("privileged")
            assert key is not None
            where["privileged"] = ctx.loc(key)
        ape = sc.get_bool("allowPrivilegeEscalation")
        ape_key = sc.key_node("allowPrivilegeEscalation")
        if ape is False and ape_key is not None:
            nnp, nnp_location = True, ctx.loc(ape_key)
            if privileged:
                ctx.problem(
                    ape_key,
                    "Kubernetes rejects allowPrivilegeEscalation: false with privileged: true",
                )
            if "CAP_SYS_ADMIN" in cap_add:
                ctx.problem(
                    ape_key,
                    "Kubernetes rejects allowPrivilegeEscalation: false with capabilities.add "
                    "CAP_SYS_ADMIN",
                )
        read_only = bool(sc.get_bool("readOnlyRootFilesystem"))
        if read_only:
            key = sc.key_node("readOnlyRootFilesystem")
            assert key is not None
            where["read_only_rootfs"] = ctx.loc(key)

    if shared.host_network_key is not None:
        where["host_network"] = ctx.loc(shared.host_network_key)
    if shared.host_ipc_key is not None:
        where["host_ipc"] = ctx.loc(shared.host_ipc_key)
    if shared.groups and shared.groups_key is not None:
        where["groups"] = ctx.loc(shared.groups_key)
    if shared.sysctls and shared.sysctls_key is not None:
        where["sysctls"] = ctx.loc(shared.sysctls_key)

    image = container.get_str("image")
    image_key = container.key_node("image")
    if image_key is not None:
        where["image"] = ctx.loc(image_key)
    entrypoint = _command(ctx, container, "command")
    command = _command(ctx, container, "args")
    for fact_name, key_name in (("entrypoint", "command"), ("command", "args")):
        key = container.key_node(key_name)
        if key is not None:
            where[fact_name] = ctx.loc(key)
    ports = _ports(ctx, container, host_network)
    ports += argv_ports(
        (entrypoint or ()) + (command or ()), where.get("command") or where.get("entrypoint")
    )

    return Workload(
        source_kind="k8s",
        name=f"{pod.kind}/{pod.name}/{label}:{cname}",
        location=ctx.loc(container),
        image=image,
        user=user,
        groups=shared.groups,
        cap_add=cap_add,
        cap_drop=cap_drop,
        caps_location=caps_location,
        no_new_privs=nnp,
        no_new_privs_location=nnp_location,
        no_new_privs_reason="allowPrivilegeEscalation: false" if nnp else "",
        privileged=privileged,
        host_network=host_network,
        host_ipc=shared.host_ipc_key is not None,
        ports=ports,
        sysctls=shared.sysctls,
        read_only_rootfs=read_only,
        mounts=_mounts(ctx, container, shared.volumes),
        entrypoint=entrypoint,
        command=command,
        environment=_environment(container),
        is_init_container=is_init,
        ignores=pod.ignores,
        run_as_non_root=run_as_non_root,
        field_locations=tuple(where.items()),
    )


def _environment(container: YMap) -> tuple[tuple[str, str], ...]:
    """The ``env`` entries with a literal ``value`` (``valueFrom`` is known only in the
    cluster)."""
    node = present(container.get("env"))
    if not isinstance(node, YSeq):
        return ()
    found: list[tuple[str, str]] = []
    for item in node.items:
        if isinstance(item, YMap):
            name, value = item.get_str("name"), item.get_str("value")
            if name and value is not None:
                found.append((name, value))
    return tuple(found)


def _command(ctx: _Ctx, container: YMap, name: str) -> tuple[str, ...] | None:
    node = container.get(name)
    node = present(node)
    if node is None:
        return None
    return _strings(ctx, node, name)


def _ports(ctx: _Ctx, container: YMap, host_network: bool) -> tuple[PortFact, ...]:
    found: list[PortFact] = []
    node = present_seq(container.get("ports"), "ports", ctx.problem)
    if node is None:
        return ()
    for item in node:
        if not isinstance(item, YMap):
            ctx.problem(item, f"ports: an entry is {describe(item)}")
            continue
        port = item.get_int("containerPort")
        key = item.key_node("containerPort")
        if port is None or key is None or not 0 < port <= 65535:
            ctx.problem(item, "ports: containerPort must be a number from 1 to 65535")
            continue
        protocol_text = (item.get_str("protocol") or "TCP").strip()
        proto = _PROTOCOLS.get(protocol_text.upper())
        if proto is None:
            ctx.problem(item, f"ports: unknown protocol {protocol_text!r}")
            continue
        host_port = item.get_int("hostPort") or None
        if host_port is None and host_network:
            host_port = port  # API defaulting for hostNetwork pods
        found.append(PortFact(port, proto, host_port, "containerPort", ctx.loc(key)))
    return tuple(found)


def _mounts(
    ctx: _Ctx, container: YMap, volumes: dict[str, tuple[str, str]]
) -> tuple[MountFact, ...]:
    found: list[MountFact] = []
    for item in container.get_seq("volumeMounts") or ():
        if not isinstance(item, YMap):
            ctx.problem(item, f"volumeMounts: an entry is {describe(item)}")
            continue
        name = item.get_str("name") or ""
        target = item.get_str("mountPath") or ""
        if name not in volumes:
            ctx.problem(item, f"volumeMounts: no volume named {name!r} in the pod")
            continue
        kind, source = volumes[name]
        sub_path = item.get_str("subPath")
        if kind == "hostPath" and sub_path:
            source = source.rstrip("/") + "/" + sub_path
        read_only = bool(item.get_bool("readOnly"))
        found.append(MountFact(source, target, kind, read_only, ctx.loc(item)))
    return tuple(found)
