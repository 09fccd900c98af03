"""The kubelet refuses to create the container: its runAsNonRoot check fails.

What it does
    Runs the kubelet's ``verifyRunAsNonRoot`` on every Kubernetes container and init container
    whose effective ``runAsNonRoot`` (container over pod) is true.  With an effective
    ``runAsUser`` only that value counts: 0 fails.  Without one the kubelet reads the image
    config's ``User`` from the runtime's ImageStatus, where containerd and CRI-O report the part
    before ``:`` as a uid when it is a number and as a user name otherwise: an empty ``User``
    (no ``USER`` in the build) and uid 0 fail as root, a name fails as unverifiable — any name,
    ``root`` and ``nobody`` too; a uid above 2147483647 fails as invalid.  The image's ``User``
    comes from the Dockerfile joined through ``[images]``: the final stage's last ``USER``,
    inherited through ``FROM <stage>``, with ARGs expanded.  An image the linter cannot see, a
    ``USER`` with an unresolved variable, or a base image whose name says it runs non-root
    leaves the check to the cluster: nothing is reported, the assumption is recorded.  A
    finding that rests on the base image setting no ``USER`` is a warning.

Why is this bad?
    The container is never created: the pod sits in ``CreateContainerConfigError`` with
    ``container has runAsNonRoot and image has non-numeric user (nginx), cannot verify user is
    non-root`` or ``… image will run as root``, and an init container blocks the whole pod.  A
    named ``USER`` is the usual cause: the kubelet never resolves names through the image's
    /etc/passwd (a crafted passwd could map any name to uid 0), so ``USER nonroot`` over a
    distroless base is refused even though it is uid 65532.  Nothing else about such a
    container happens at all, so no other verdict about its run time (runs-as-root, binds,
    capabilities) is reported until it can start.

Example
    ``runAsNonRoot: true`` without ``runAsUser``, for an image built with ``USER nginx``.

Use instead
    A numeric ``USER`` in the Dockerfile — the same user's uid, ``USER 101`` (``USER
    65532:65532`` for distroless ``nonroot``) — or a numeric ``runAsUser`` in the
    securityContext; for a root image, ``USER 10001`` after the last step that needs root.

References
    - kubernetes ``pkg/kubelet/kuberuntime/security_context_others.go`` ``verifyRunAsNonRoot``,
      called by ``generateContainerConfig`` (``kuberuntime_container.go``); ``getImageUser``
    - containerd ``internal/cri/server/images/image_status.go`` and CRI-O
      ``server/image_status.go`` ``getUserFromImage``
    - kubernetes/kubernetes#40958 (names are refused by design), #56503 (a name fails
      instead of warning), #11669 (the check's origin)
    - coredns/coredns#7542 (``USER nonroot:nonroot`` refused; fixed by ``USER 65532:65532``)
    - goharbor/harbor-operator#82, kubernetes-sigs/cluster-proportional-autoscaler#109,
      kubernetes-up-and-running/kuard#43 ("non-numeric user"); kubernetes-sigs/external-dns#4003
      ("image will run as root")
    - moby/buildkit#1344 (numeric USER for runAsNonRoot)

UR114: a named USER under runAsNonRoot
    --- .unroot.toml
    [images]
    "registry.example.org/web:1.0" = "Dockerfile"
    --- Dockerfile
    FROM nginx:1.27
    RUN sed -i 's/listen  *80;/listen 8080;/' /etc/nginx/conf.d/default.conf
    USER nginx
    --- deploy.yaml
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: web}
    spec:
      template:
        spec:
          securityContext: {runAsNonRoot: true}
          containers:
          - name: web
            image: registry.example.org/web:1.0

Okay: the same user, numeric
    --- .unroot.toml
    [images]
    "registry.example.org/web:1.0" = "Dockerfile"
    --- Dockerfile
    FROM nginx:1.27
    RUN sed -i 's/listen  *80;/listen 8080;/' /etc/nginx/conf.d/default.conf
    USER 101
    --- deploy.yaml
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: web}
    spec:
      template:
        spec:
          securityContext: {runAsNonRoot: true}
          containers:
          - name: web
            image: registry.example.org/web:1.0

Okay: runAsUser decides, the image's name is never checked
    --- .unroot.toml
    [images]
    "registry.example.org/web:1.0" = "Dockerfile"
    --- Dockerfile
    FROM nginx:1.27
    USER nginx
    --- deploy.yaml
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: web}
    spec:
      template:
        spec:
          securityContext: {runAsNonRoot: true, runAsUser: 101}
          containers:
          - name: web
            image: registry.example.org/web:1.0

UR114: USER root is a name too
    --- .unroot.toml
    [images]
    "registry.example.org/tools:1.0" = "Dockerfile"
    --- Dockerfile
    FROM scratch
    COPY migrate /migrate
    USER root
    ENTRYPOINT ["/migrate"]
    --- job.yaml
    apiVersion: batch/v1
    kind: Job
    metadata: {name: migrate}
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
          - name: migrate
            image: registry.example.org/tools:1.0
            securityContext: {runAsNonRoot: true}

UR114: an init container with runAsUser 0 under a pod-wide runAsNonRoot
    # kind: k8s
    apiVersion: v1
    kind: Pod
    metadata: {name: app}
    spec:
      securityContext: {runAsNonRoot: true, runAsUser: 10001}
      initContainers:
      - name: chown
        image: busybox:1.36
        command: ["chown", "-R", "10001", "/data"]
        securityContext: {runAsUser: 0}
      containers:
      - name: app
        image: registry.example.org/app:1.0

Okay: an image the linter cannot see is left to the cluster
    # kind: k8s
    apiVersion: v1
    kind: Pod
    metadata: {name: app}
    spec:
      securityContext: {runAsNonRoot: true}
      containers:
      - name: app
        image: registry.example.org/app:1.0
"""

from __future__ import annotations

from collections.abc import Iterator

from unroot.lint.registry import Report, rule
from unroot.lint.rules import related_lines
from unroot.situation import NonRootRefusal, Situation

EXAMPLE_UID = 10001


def _where_user(situation: Situation) -> str:
    """Where the image's USER is written: ``Dockerfile:14`` or ``the final stage of Dockerfile``."""
    refusal = situation.nonroot_refusal
    if refusal is not None and refusal.location is not None:
        return f"{refusal.location.file}:{refusal.location.line}"
    path = situation.dockerfile.path if situation.dockerfile else "the Dockerfile"
    return f"the final stage of {path}"


def _fix(situation: Situation, refusal: NonRootRefusal) -> str:
    run_as_user = "in the container's securityContext"
    if refusal.cause == "run-as-user-root":
        stage = situation.stage
        image = stage.user.text if stage is not None and stage.user is not None else ""
        name = image.split(":", 1)[0]
        if name.isdigit() and int(name) != 0:
            return f"remove `runAsUser: 0`: the image's `USER {image}` passes the check"
        return f"set `runAsUser` to a non-zero uid (e.g. `runAsUser: {EXAMPLE_UID}`)"
    where = _where_user(situation)
    name, colon, group = refusal.user.partition(":")
    uid = refusal.resolved_uid
    if refusal.cause == "image-non-numeric" and uid is not None and uid != 0:
        return (
            f"write the uid in {where}: `USER {uid}{colon}{group}` ({name} is uid {uid}); or "
            f"set `runAsUser: {uid}` {run_as_user}"
        )
    if refusal.cause == "image-non-numeric" and uid is None:
        return (
            f"write {name}'s uid (its entry in the image's /etc/passwd) instead of the name in "
            f"{where}: `USER <uid>{colon}{group}`; or set `runAsUser: <uid>` {run_as_user}"
        )
    if refusal.cause == "image-invalid-uid":
        return f"use a uid from 1 to 2147483647 in {where}"
    if refusal.location is not None:
        return (
            f"make {where} a non-root uid (`USER {EXAMPLE_UID}`) if the image can run without "
            f"root; or set `runAsUser: {EXAMPLE_UID}` {run_as_user}"
        )
    return (
        f"add `USER {EXAMPLE_UID}` to {where} after the last instruction that needs root; or set "
        f"`runAsUser: {EXAMPLE_UID}` {run_as_user}"
    )


def _why(situation: Situation, refusal: NonRootRefusal) -> str:
    if refusal.cause == "run-as-user-root":
        return "`runAsUser: 0`"
    if refusal.from_base:
        base = situation.stage.base if situation.stage is not None else "the base image"
        return (
            f"the image's empty USER (no USER in the Dockerfile, and the base image {base} is "
            "assumed to set none)"
        )
    if not refusal.user:
        return "the image's empty USER (FROM scratch, no USER)"
    return f"the image's `USER {refusal.user}`"


@rule("UR114", topic="nonroot-check-fails", severity="error", kinds=("k8s",))
def nonroot_check_fails(situation: Situation) -> Iterator[Report]:
    """The kubelet refuses to create the container: its runAsNonRoot check fails."""
    refusal = situation.nonroot_refusal
    if refusal is None:
        return
    workload = situation.workload
    if refusal.cause == "run-as-user-root" and refusal.location is not None:
        where = refusal.location
    else:
        where = situation.where("image", "run_as_non_root")
    name = workload.name.rsplit(":", 1)[-1] if workload is not None else situation.name
    if workload is not None and workload.is_init_container:
        who = f"the pod never starts: init container {name} fails"
    else:
        who = f"container {name} never starts: it fails"
    related = []
    if refusal.cause != "run-as-user-root" and refusal.location is not None:
        related.append((refusal.location, f"USER {refusal.user}"))
    elif refusal.from_base and situation.stage is not None:
        related.append((situation.stage.location, f"FROM {situation.stage.base}"))
    yield Report(
        where,
        f"{who} the kubelet's runAsNonRoot check on {_why(situation, refusal)}: "
        f'"{refusal.error}" (CreateContainerConfigError)',
        fix=_fix(situation, refusal),
        severity="warning" if refusal.from_base else None,
        related=related_lines(*related),
    )
