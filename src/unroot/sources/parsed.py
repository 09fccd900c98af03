"""What the configuration parsers extract: plain frozen facts with the file and line they came
from.

Parsers (``sources/``) turn Dockerfiles, compose files, Kubernetes manifests and systemd units
into these facts and nothing else; ``situation/`` turns facts into the questions the model
answers (start credentials from a runtime profile, the exec chain, the bind rule, path
access); rules only read verdicts.  No fact knows which file format it came from beyond
``Location`` and ``source_kind``.

Conventions: capability names are kept as written (``cap_add: ["net_bind_service"]``) and
parsed with :meth:`unroot.model.caps.CapSet.parse` where they are used, so a message can quote
the user's spelling; ids are kept as the text given (``"www"``, ``"0:0"``, ``"10001"``) with a
parsed numeric form when the text is numeric.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from unroot.model.filecaps import FileCaps


@dataclass(frozen=True, slots=True, order=True)
class Location:
    """Where a fact was written: 1-based line and column (column 1 when unknown)."""

    file: str
    line: int = 1
    column: int = 1

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


# -- Dockerfile / Containerfile -----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class UserFact:
    """A USER instruction (or ``user:``/``runAsUser``/``User=``) as written and as numbers."""

    text: str  # "www", "0", "0:0", "root:root", "10001:10001"
    uid: int | None  # None when a name that cannot be resolved statically
    gid: int | None  # None when not given or not resolvable
    location: Location | None  # None: the default (no USER anywhere → root)

    @property
    def is_root(self) -> bool | None:
        """True for uid 0 / "root", False for another uid or name, None when unknown."""
        name = self.text.split(":", 1)[0].strip()
        if "$" in name:
            return None  # an unresolved variable: the linter cannot know
        if name in ("0", "root"):
            return True
        if self.uid is not None:
            return self.uid == 0
        return False if name else None


@dataclass(frozen=True, slots=True)
class PortFact:
    """A port the service listens on, and where the linter learnt it."""

    port: int
    proto: str = "tcp"  # tcp | udp | sctp
    host_port: int | None = None  # compose "80:8080" / k8s hostPort: the host side
    source: str = "expose"  # expose | ports | containerPort | socket-unit | command-line
    location: Location | None = None


@dataclass(frozen=True, slots=True)
class CapsEvent:
    """One thing a build step did to a file's security.capability xattr."""

    action: str  # "set" (setcap), "removed" (setcap -r), "lost" (copy/chown/write dropped it),
    #              "kept" (a copy carried it: COPY --from under BuildKit, cp -a, rsync -X …)
    location: Location
    caps: FileCaps | None = None  # for "set" and "kept"
    why: str = ""  # for "lost"/"kept": "COPY does not carry xattrs under the classic builder", ...


@dataclass(frozen=True, slots=True)
class ImageFile:
    """A file of interest in a stage's filesystem at the end of the stage (per builder)."""

    path: str
    created_by: Location  # the instruction that put the content there
    created_how: str  # "copy" | "copy-from" | "add" | "run" | "base-image"
    file_caps: FileCaps | None  # what the file carries at the end of the stage
    events: tuple[CapsEvent, ...] = ()  # the history, in order
    layers_with_content: tuple[Location, ...] = ()  # every layer that stored the whole file
    setuid: bool = False
    setgid: bool = False
    owner: str | None = None
    #: False when file_caps=None means "unknown", not "none": a base-image file, or one
    #: COPY --from=<image> brought under BuildKit (it keeps whatever the image had)
    caps_known: bool = True
    #: why the file is a script ("" when not known to be one): the kernel ignores file
    #: capabilities on it ("copied from startup.py", "its here-document starts with #!")
    script: str = ""


#: The PATH of an image that sets none (Docker's and the OCI runtimes' default).
DEFAULT_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")


def path_dirs(value: str | None) -> tuple[str, ...]:
    """The directories of a ``PATH`` value (an empty entry is ``/``); DEFAULT_PATH for none."""
    return tuple(d or "/" for d in value.split(":")) if value else DEFAULT_PATH


@dataclass(frozen=True, slots=True)
class Stage:
    """One FROM … stage; ``path``: the directories of its ``PATH`` (its ENV, else Docker's
    default), where a program named without a slash is looked up."""

    index: int
    name: str | None  # AS name
    base: str  # image reference or earlier stage name
    base_stage: int | None  # index of the earlier stage it builds on, if any
    location: Location
    user: UserFact | None  # the last USER in this stage, None if none (inherits from base)
    #: files by builder: {"classic": {...}, "buildkit": {...}} — they differ for COPY --from
    files: dict[str, dict[str, ImageFile]] = field(default_factory=dict)
    exposed: tuple[PortFact, ...] = ()
    entrypoint: tuple[str, ...] | None = None  # exec form as a list; shell form → sh -c TEXT
    entrypoint_location: Location | None = None
    cmd: tuple[str, ...] | None = None
    cmd_location: Location | None = None
    installed_packages: tuple[str, ...] = ()  # what RUN apt-get/apk/dnf install put in
    path: tuple[str, ...] = ()  # () : DEFAULT_PATH


@dataclass(frozen=True, slots=True)
class DockerfileFacts:
    """A parsed Dockerfile: its stages in order; the last one is the image."""

    path: str
    stages: tuple[Stage, ...]

    @property
    def final(self) -> Stage:
        return self.stages[-1]


# -- compose / Kubernetes / systemd: one shape, "a workload" --------------------------------
@dataclass(frozen=True, slots=True)
class MountFact:
    """A bind mount / hostPath / volume the workload reads from."""

    source: str  # host path for bind/hostPath, volume name otherwise
    target: str
    kind: str  # "bind" | "hostPath" | "volume" | "tmpfs"
    read_only: bool
    location: Location | None = None


@dataclass(frozen=True, slots=True)
class SocketBindRule:
    """One ``SocketBindAllow=``/``SocketBindDeny=`` rule (systemd.resource-control(5), v249+)."""

    family: str  # "" (both) | "ipv4" | "ipv6"
    proto: str  # "" (both) | "tcp" | "udp"
    ports: tuple[int, int] | None  # an inclusive range; None: every port ("any")
    text: str  # as written
    location: Location


@dataclass(frozen=True, slots=True)
class UnitSandbox:
    """systemd settings around a unit's process that change what the kernel answers it."""

    #: PrivateUsers=yes (self/identity/full): the process runs in a user namespace of its own
    private_users: Location | None = None
    #: PrivateNetwork=yes or NetworkNamespacePath=: a network namespace other than the host's
    private_network: Location | None = None
    network_namespace_path: str = ""
    #: RestrictAddressFamilies= after merging: (allow-list?, families); None: not restricted
    address_families: tuple[bool, tuple[str, ...]] | None = None
    address_families_location: Location | None = None
    socket_bind_allow: tuple[SocketBindRule, ...] = ()
    socket_bind_deny: tuple[SocketBindRule, ...] = ()
    securebits: int | None = None  # SecureBits= as a securebits(7) mask; None: not set
    securebits_location: Location | None = None
    #: settings read and known not to change the verdicts, or not modelled: assumptions
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Workload:
    """One thing that runs: a compose service, a Kubernetes container, a systemd unit."""

    source_kind: str  # "compose" | "k8s" | "systemd"
    name: str  # service / "Deployment/web:container" / unit name
    location: Location
    image: str | None = None
    dockerfile: str | None = None  # a compose build: / [images] join: the Dockerfile path
    build_target: str | None = None
    user: UserFact | None = None  # None: the image's USER decides
    groups: tuple[str, ...] = ()  # supplementary groups (group_add, SupplementaryGroups=)
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    caps_location: Location | None = None
    no_new_privs: bool = False  # security_opt no-new-privileges, allowPrivilegeEscalation: false
    no_new_privs_location: Location | None = None
    privileged: bool = False
    host_network: bool = False
    ports: tuple[PortFact, ...] = ()
    sysctls: tuple[tuple[str, str], ...] = ()
    read_only_rootfs: bool = False
    mounts: tuple[MountFact, ...] = ()
    nofile: tuple[int | None, int | None] | None = None  # (soft, hard); None = runtime default
    nofile_location: Location | None = None
    entrypoint: tuple[str, ...] | None = None  # an override of the image's
    command: tuple[str, ...] | None = None
    init: bool = False  # compose init: true (tini as PID 1)
    is_init_container: bool = False
    ignores: tuple[str, ...] = ()  # annotation unroot.dev/ignore
    # systemd units only
    ambient_caps: tuple[str, ...] = ()
    bounding_caps: tuple[str, ...] | None = None  # CapabilityBoundingSet= after ~ inversion
    dynamic_user: bool = False
    exec_prefixes: str = ""  # the "+!-@:" prefixes of ExecStart=
    socket_unit: str | None = None  # the paired .socket unit (it binds; the service needs nothing)
    # additive (parsers for compose / k8s / systemd)
    #: compose as written: "host", "bridge", "service:db", "container:x"
    network_mode: str | None = None
    #: k8s runAsNonRoot: the kubelet refuses a root (or named) image USER
    run_as_non_root: bool = False
    #: what set no_new_privs: "security_opt no-new-privileges:true", "implied by …"
    no_new_privs_reason: str = ""
    #: where the fields without a ``*_location`` of their own were set: (field name, Location)
    field_locations: tuple[tuple[str, Location], ...] = ()
    #: systemd units: namespaces, socket restrictions and securebits (None: none of them)
    unit_sandbox: UnitSandbox | None = None
    #: the host's IPC namespace: compose ``ipc: host``, k8s ``hostIPC: true`` (``ipc:
    #: service:x`` / ``container:x`` join another container's, not the host's)
    host_ipc: bool = False
    #: variables the file sets for the process (compose ``environment``, k8s ``env`` values)
    environment: tuple[tuple[str, str], ...] = ()
    #: absolute paths named in configuration files of the service that lint could read (a
    #: compose bind mount of a project file): (path as the service sees it, "nginx.conf:12")
    config_paths: tuple[tuple[str, str], ...] = ()
    #: what the facts rest on that the file does not say, for the findings' assumptions
    #: (compose: "API_PORT=80 from .env:3", "${TAG:-latest}: TAG unset, default used")
    notes: tuple[str, ...] = ()

    def location_of(self, field_name: str) -> Location | None:
        """Where ``field_name`` (``"host_network"``, ``"privileged"``, ``"cap_add"``, …) was set."""
        for name, location in self.field_locations:
            if name == field_name:
                return location
        return None


@dataclass(frozen=True, slots=True)
class ParsedFile:
    """Whatever one input file yielded, plus problems found while parsing it."""

    path: str
    kind: str  # dockerfile | compose | k8s | systemd
    dockerfile: DockerfileFacts | None = None
    workloads: tuple[Workload, ...] = ()
    problems: tuple[tuple[Location, str], ...] = ()  # unparseable parts: (where, message)
    file_ignores: tuple[str, ...] = ()  # "# unroot: ignore-file=UR104"
    line_ignores: tuple[tuple[int, str], ...] = ()  # (line the ignore applies to, rule id)
    #: the (first, last) line of each statement, for the pragma pass: a Dockerfile's
    #: instructions span lines; None: each line that is neither blank nor a comment is one
    statements: tuple[tuple[int, int], ...] | None = None
    #: other files this one's findings may point into (a compose project's override, extended
    #: and included files, .env): their own pragmas, no workloads
    parts: tuple[ParsedFile, ...] = ()
