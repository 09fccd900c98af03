"""Non-root images and the kubelet's runAsNonRoot check, on what the files say.

An image whose config sets a non-root ``User`` that a Dockerfile built ``FROM`` it does not show
(:func:`nonroot_image`), and the kubelet's ``verifyRunAsNonRoot`` (:func:`verify_run_as_non_root`).
"""

from __future__ import annotations

import re

from unroot.situation.types import NonRootRefusal
from unroot.sources.parsed import DockerfileFacts, Stage, Workload

_NONROOT_BASE = re.compile(r"nonroot|non-root|rootless|unprivileged", re.I)
#: Images whose config sets a non-root ``User`` that a Dockerfile built ``FROM`` them does not
#: show (matched on the repository, ``docker.io/`` and ``library/`` removed).  A stage on one of
#: them without a ``USER`` of its own runs as that user, which the linter cannot read: it is
#: *unknown* (never "root"), and the kubelet's runAsNonRoot check is assumed to pass.  Listing an
#: image here can only silence findings, never raise one.  Sources, each the image's own
#: Dockerfile or documentation: Chainguard (edu.chainguard.dev: images run as nonroot/65532; not
#: wolfi-base and chainguard-base, which run as root), Bitnami ("non-root containers", uid 1001;
#: not minideb, a base OS), docker-library/haproxy (``USER haproxy`` since 2.4), Envoy's
#: distroless images (built on distroless ``:nonroot``), grafana/grafana (``USER 472``),
#: grafana/loki (10001), the Prometheus project's images (``USER nobody``), Keycloak (``USER
#: 1000``), jenkins/jenkins (``USER jenkins``), Elastic's images (``USER 1000``), SonarQube,
#: Nexus, Red Hat's UBI language and server images (``USER 1001``), .NET chiseled images
#: (``app``).
_NONROOT_REPOSITORIES = re.compile(
    r"(?:cgr\.dev/chainguard/(?!wolfi-base\b|chainguard-base\b)"
    r"|(?:[\w.-]+/)?bitnami/(?!minideb\b)"
    r"|haproxy[:@]|haproxy$"
    r"|envoyproxy/envoy-distroless\b|envoyproxy/envoy:distroless"
    r"|grafana/grafana(?:-oss|-enterprise)?\b|grafana/loki\b"
    r"|prom/|quay\.io/prometheus/"
    r"|quay\.io/keycloak/keycloak\b"
    r"|jenkins/jenkins\b"
    r"|docker\.elastic\.co/(?:elasticsearch|kibana|logstash)/"
    r"|sonarqube[:@]|sonarqube$|sonatype/nexus3\b"
    r"|registry\.access\.redhat\.com/ubi\d+/"
    r"(?:python|nodejs|ruby|php|perl|go-toolset|openjdk|nginx|httpd)-"
    r"|mcr\.microsoft\.com/dotnet/[\w/-]+:[\w.-]*chiseled)",
    re.I,
)


def nonroot_image(reference: str) -> bool:
    """``reference`` names an image whose config sets a non-root ``User`` (by its name:
    ``…:nonroot``, ``nginx-unprivileged``; or :data:`_NONROOT_REPOSITORIES`)."""
    name = reference.strip().lower()
    for prefix in ("docker.io/", "index.docker.io/", "registry-1.docker.io/"):
        name = name.removeprefix(prefix)
    name = name.removeprefix("library/")
    return bool(_NONROOT_BASE.search(name) or _NONROOT_REPOSITORIES.match(name))


def nonroot_base(stage: Stage | None, dockerfile: DockerfileFacts | None) -> bool:
    """The stage chain starts from an image that sets a non-root USER of its own."""
    if stage is None or dockerfile is None:
        return False
    current: Stage | None = stage
    seen: set[int] = set()
    while current is not None and current.index not in seen:
        seen.add(current.index)
        if current.base_stage is None:
            return nonroot_image(current.base)
        current = dockerfile.stages[current.base_stage]
    return False


def root_stage(stage: Stage, dockerfile: DockerfileFacts) -> Stage:
    """The first stage of ``stage``'s FROM chain (the one built on an image)."""
    current, seen = stage, {stage.index}
    while current.base_stage is not None and current.base_stage not in seen:
        seen.add(current.base_stage)
        current = dockerfile.stages[current.base_stage]
    return current


_GO_INT = re.compile(r"[+-]?[0-9]+")
MAX_USER_ID = 2**31 - 1  # k8s.io/apimachinery validation.IsValidUserID: 0 … math.MaxInt32


def _go_parse_int64(text: str) -> int | None:
    """``strconv.ParseInt(text, 10, 64)``: a sign and decimal digits within int64, else None."""
    if not _GO_INT.fullmatch(text):
        return None
    value = int(text)
    return value if -(2**63) <= value < 2**63 else None


def verify_run_as_non_root(run_as_user: int | None, image_user: str) -> tuple[str, str] | None:
    """The kubelet's ``verifyRunAsNonRoot`` (pkg/kubelet/kuberuntime/security_context_others.go,
    Linux) fed the way ``getImageUser`` feeds it: ``(cause, error)``, or None when it passes.

    ``run_as_user`` is the effective ``runAsUser`` (container over pod); ``image_user`` the
    image config's ``User``.  containerd and CRI-O report it in ImageStatus the same way
    (``getUserFromImage``): the part before ``:``, as ``uid`` when ``strconv.ParseInt`` takes
    it, else as ``username`` — ``root`` is a name; an empty User is neither, and the kubelet
    then treats the image as uid 0.  A name is never looked up in the image's /etc/passwd
    (kubernetes#40958, #56503).
    """
    if run_as_user is not None:
        if run_as_user == 0:
            return "run-as-user-root", "container's runAsUser breaks non-root policy"
        return None
    name = image_user.split(":", 1)[0]
    uid = _go_parse_int64(name) if name else 0
    if uid is None:
        return (
            "image-non-numeric",
            f"container has runAsNonRoot and image has non-numeric user ({name}), cannot "
            "verify user is non-root",
        )
    if uid == 0:
        return "image-root", "container has runAsNonRoot and image will run as root"
    if not 0 <= uid <= MAX_USER_ID:
        return (
            "image-invalid-uid",
            f"container has runAsNonRoot and image has an invalid user id ({uid}). "
            f"(Must be 1-({MAX_USER_ID})): must be between 0 and {MAX_USER_ID}, inclusive",
        )
    return None


def nonroot_refusal(
    workload: Workload, stage: Stage | None, dockerfile: DockerfileFacts | None, notes: list[str]
) -> NonRootRefusal | None:
    """Run the kubelet's runAsNonRoot check on what the files say; silent (with the
    assumption noted) when the image's User cannot be known."""
    run_as_user = workload.user.uid if workload.user is not None else None
    if run_as_user is not None:
        found = verify_run_as_non_root(run_as_user, "")
        if found is None:
            return None
        location = workload.user.location if workload.user is not None else None
        return NonRootRefusal(*found, str(run_as_user), location)
    if stage is None or dockerfile is None:
        notes.append(
            "runAsNonRoot without runAsUser and an unknown image: its USER is assumed numeric "
            "and non-zero (the kubelet refuses to create the container otherwise)"
        )
        return None
    user = stage.user
    from_base = False
    if user is not None and "$" in user.text:
        notes.append(
            f"USER {user.text} is not known at lint time: the kubelet's runAsNonRoot check is "
            "assumed to pass"
        )
        return None
    if user is None:
        root = root_stage(stage, dockerfile)
        if root.base.lower() != "scratch" and (
            nonroot_base(stage, dockerfile) or "$" in root.base or not root.base
        ):
            notes.append(
                f"the base image {root.base} sets the image's USER: the kubelet's runAsNonRoot "
                "check is assumed to pass"
            )
            return None
        from_base = root.base.lower() != "scratch"
    found = verify_run_as_non_root(None, user.text if user is not None else "")
    if found is None:
        return None
    resolved = user.uid if user is not None else None
    location = user.location if user is not None else None
    return NonRootRefusal(*found, user.text if user else "", location, from_base, resolved)
