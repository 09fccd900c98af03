"""What a situation holds: who runs, the exec chain's links, each port's verdicts, the kubelet's
refusal — plain frozen values that the rules read (:mod:`unroot.situation.build` makes them)."""

from __future__ import annotations

from dataclasses import dataclass, field

from unroot.model.chain import ChainResult
from unroot.model.creds import Creds
from unroot.model.execve import ExecFile
from unroot.model.runtimes import RuntimeProfile
from unroot.model.userns import UserNs
from unroot.model.verdict import Verdict
from unroot.sources.exec_argv import ChainLink
from unroot.sources.parsed import DockerfileFacts, ImageFile, Location, PortFact, Stage, Workload

#: A non-root user known only by name: any non-zero uid behaves the same for capabilities.
NAMED_UID = 2_000_000_000
#: how a message names a user whose uid is not known (the NAMED_UID placeholder never shows)
UNKNOWN_USER = "the image's user (unknown uid)"


@dataclass(frozen=True, slots=True)
class UserView:
    """Who the process runs as, and where that was decided."""

    state: str  # "root" | "nonroot" | "unknown"
    uid: int  # 0 for root; NAMED_UID for a non-root name; the number otherwise
    gid: int
    text: str  # as written: "10001", "www", "0:0", "root (no USER)"
    location: Location | None  # where it was set (None: a default)
    origin: str  # "workload" | "image" | "default" | "wrapper"
    groups: tuple[int, ...] = ()
    named_groups: tuple[str, ...] = ()

    @property
    def is_root(self) -> bool:
        return self.state == "root"

    @property
    def label(self) -> str:
        """``uid 10001`` / ``user www`` / ``root`` / ``the image's user (unknown uid)``: never
        the NAMED_UID placeholder."""
        if self.state == "root":
            return "root"
        if self.uid != NAMED_UID:
            return f"uid {self.uid}"
        name = self.text.split(":", 1)[0]
        return UNKNOWN_USER if name.startswith("(") or not name else f"user {name}"

    def shown(self, text: str) -> str:
        """``text`` with the NAMED_UID placeholder said as who it stands for (``uid 2000000000``
        → ``user www``) or, in a command, as ``UID`` (``u:UID``): a message never prints it."""
        if NAMED_UID not in (self.uid, self.gid) and str(NAMED_UID) not in text:
            return text
        # the uid a name has in the image is not the host's: a command gets a placeholder
        return text.replace(f"uid {NAMED_UID}", self.label).replace(f":{NAMED_UID}", ":UID")


@dataclass(frozen=True, slots=True)
class Link:
    """One exec of the start sequence and the file the model executes."""

    link: ChainLink
    path: str  # resolved in the image when possible, else as written
    image_file: ImageFile | None
    caps_known: bool
    file: ExecFile
    note: str | None = None  # the assumption this link rests on

    @property
    def role(self) -> str:
        return self.link.role


@dataclass(frozen=True, slots=True)
class PortBind:
    """One port the service binds, and the kernel's answer."""

    port: PortFact
    start: int  # ip_unprivileged_port_start of the netns
    start_source: str  # "host" | "sysctl" | "runtime" | "new-netns"
    verdict: Verdict
    #: the same bind where the runtime does not lower the sysctl (new netns: 1024)
    portable: Verdict
    who: str = "service"  # "service" | "rootlesskit" (rootless engines publish host ports)


@dataclass(frozen=True, slots=True)
class NonRootRefusal:
    """The kubelet's runAsNonRoot check failed: the container stays in
    CreateContainerConfigError."""

    cause: str  # "run-as-user-root" | "image-root" | "image-non-numeric" | "image-invalid-uid"
    error: str  # the kubelet's error, without its "(pod: …, container: …)" suffix
    #: the user the check read: the runAsUser value, or the image config's User ("" for none)
    user: str
    location: Location | None  # runAsUser, or the image's USER line (None: none in the build)
    #: the image's User comes from a base image the linter cannot see (assumed to set none)
    from_base: bool = False
    #: the uid a named image user resolves to in the build (useradd -u, nobody), if known
    resolved_uid: int | None = None


@dataclass(frozen=True)
class Situation:
    """One thing that runs, with the model's answers (see the module doc)."""

    kind: str  # "dockerfile" | "compose" | "k8s" | "systemd"
    name: str
    location: Location
    runtime: RuntimeProfile
    builder: str
    workload: Workload | None = None
    dockerfile: DockerfileFacts | None = None
    stage: Stage | None = None
    user: UserView | None = None  # at the start (what the runtime execs as)
    service_user: UserView | None = None  # after user-switching wrappers
    host_network: bool = False
    start: Creds | None = None
    start_error: str | None = None
    links: tuple[Link, ...] = ()
    chain: ChainResult | None = None
    decidable: bool = False  # every link's file capabilities are known (or safely assumed)
    final: Creds | None = None  # the service's credentials (None: exec fails or unknown)
    ports: tuple[PortBind, ...] = ()
    access_creds: Creds | None = None  # as the host's permission checks see the service
    userns: UserNs = field(default_factory=UserNs)
    assumptions: tuple[str, ...] = ()
    ignores: tuple[str, ...] = ()  # annotation / x-unroot-ignore
    #: the kubelet refuses to create the container (runAsNonRoot): nothing in it ever runs
    nonroot_refusal: NonRootRefusal | None = None

    @property
    def service(self) -> Link | None:
        return self.links[-1] if self.links else None

    @property
    def files(self) -> dict[str, ImageFile]:
        """The stage's files of interest under the builder in use."""
        if self.stage is None:
            return {}
        return self.stage.files.get(self.builder, {})

    def entry_location(self) -> Location:
        """Where the program is chosen: the workload's command, else ENTRYPOINT/CMD."""
        if self.workload is not None:
            found = self.workload.location_of("entrypoint") or self.workload.location_of("command")
            if found is not None:
                return found
        if self.stage is not None:
            return self.stage.entrypoint_location or self.stage.cmd_location or self.stage.location
        return self.location

    def where(self, *fields: str) -> Location:
        """The location of the first workload field that was set, else the situation's."""
        if self.workload is not None:
            for name in fields:
                found = self.workload.location_of(name)
                if found is None and name == "caps":
                    found = self.workload.caps_location
                if found is None and name == "no_new_privs":
                    found = self.workload.no_new_privs_location
                if found is None and name == "nofile":
                    found = self.workload.nofile_location
                if found is not None:
                    return found
        return self.location
