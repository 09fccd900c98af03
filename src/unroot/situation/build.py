"""Facts → situations: what runs, as whom, under which runtime, and what the kernel will say.

A :class:`Situation` is one thing that runs, joined with everything that decides its
privileges:

* a compose service with the Dockerfile of its ``build:`` (the final stage, or ``target:``),
  or of its ``image:`` through ``[images]`` in the config;
* a Kubernetes container with its image's Dockerfile through ``[images]``;
* a Dockerfile that no workload of the run uses, as the runtime starts the image on its own
  (``docker run IMAGE`` / ``podman run IMAGE``: default network and capabilities, no
  ``--user``; a pod without a securityContext under containerd and CRI-O) — and it says so;
* a systemd service with its paired ``.socket``.

For each one the model answers (no rule re-derives any of it):

* the runtime profile (``--runtime``/config, else Docker for compose and Dockerfiles,
  containerd 2 for Kubernetes, systemd for units) and its start credentials
  (:func:`unroot.model.runtimes.start_creds`: user, ``cap_add``/``cap_drop``, no_new_privs);
* the exec chain of ENTRYPOINT/CMD (:func:`unroot.sources.exec_argv.exec_chain_argv`) through
  :func:`unroot.model.chain.exec_chain`, each link with the file capabilities the build leaves
  it under the builder in use (BuildKit unless ``builder = "classic"``); a user-switching wrapper
  (gosu, su-exec…) starts a new segment with the capabilities setuid(2) clears;
* the effective set of the service, and each port's :func:`unroot.model.bind.bind_verdict` with
  the network namespace's ``ip_unprivileged_port_start``
  (:func:`unroot.model.runtimes.unprivileged_port_start`), plus the verdict where the runtime
  does not lower the sysctl (for ``works-only-by-sysctl``);
* the host identity that opens bind-mounted paths (rootless engines map it);
* for a Kubernetes container with ``runAsNonRoot``, the kubelet's check of the user
  (:func:`verify_run_as_non_root`): when it fails the container is never created, so the
  situation has no user, no start credentials and no chain — only the refusal.

Whatever the verdicts rest on and the files cannot say is recorded in ``assumptions`` (which
builder, the host's sysctl, that a base-image interpreter has no file capabilities …).  When a
link's file capabilities cannot be known (a program from a base image unroot cannot see), the
chain is *undecidable* and no rule that depends on it reports anything: a false positive is a
bug, a missed finding is only a gap.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Protocol

from unroot.errors import UnrootError
from unroot.model.bind import bind_verdict
from unroot.model.caps import EMPTY, CapSet
from unroot.model.chain import ChainResult, exec_chain
from unroot.model.creds import Creds, Ids
from unroot.model.execve import LATEST, ExecFile, Kernel
from unroot.model.runtimes import (
    NEW_NETNS_PORT_START,
    PORT_SYSCTL,
    PROFILES,
    RuntimeProfile,
    start_creds,
    unprivileged_port_start,
)
from unroot.model.setid import setpriv_switch, setuid_switch
from unroot.model.userns import INIT_USERNS, SubIdRange, UserNs, rootless_map
from unroot.situation.nonroot import (
    nonroot_base,
    nonroot_refusal,
    root_stage,
)
from unroot.situation.types import NAMED_UID, Link, NonRootRefusal, PortBind, Situation, UserView
from unroot.sources._shared import script_execs
from unroot.sources.exec_argv import ChainLink, exec_chain_argv
from unroot.sources.kinds import KINDS
from unroot.sources.parsed import (
    DEFAULT_PATH,
    DockerfileFacts,
    ImageFile,
    Location,
    ParsedFile,
    PortFact,
    Stage,
    UnitSandbox,
    UserFact,
    Workload,
)
from unroot.sources.systemd_specifiers import is_user_unit


class Choices(Protocol):
    """What the front end chose (lint: its config file): the runtime, the builder, and the
    Dockerfile an image reference is built from (``[images]``)."""

    @property
    def runtime(self) -> str | None: ...

    @property
    def builder(self) -> str | None: ...

    def dockerfile_for(self, image: str, /) -> str | None: ...


@dataclass(frozen=True)
class _NoChoices:
    runtime: str | None = None
    builder: str | None = None

    def dockerfile_for(self, image: str, /) -> str | None:
        return None


NO_CHOICES: Choices = _NoChoices()

DEFAULT_BUILDER = "buildkit"
HOST_PORT_START = 1024  # the kernel's default; the linter cannot see the host's sysctl
#: Rootless engines: the invoking user and its subordinate ids (the usual first allocation).
ROOTLESS_USER = 1000
ROOTLESS_SUBIDS = (SubIdRange("user", 100000, 65536),)
#: Programs base images ship without file capabilities (interpreters: a script's own file
#: capabilities never count either — the kernel executes the interpreter).
NO_CAPS_PROGRAMS = re.compile(
    r"(python[0-9.]*|pypy[0-9.]*|node|nodejs|bun|deno|ruby[0-9.]*|perl[0-9.]*|php[0-9.]*|"
    r"java|dotnet|lua[0-9.]*|Rscript|uvicorn|gunicorn|hypercorn|npm|npx|yarn|pnpm)"
)
_SCRIPT = re.compile(r".*\.(sh|bash|py|rb|pl|js|mjs|php)$")


# -- users ----------------------------------------------------------------------------------
def _user_view(fact: UserFact | None, origin: str, groups: Sequence[str] = ()) -> UserView:
    numeric = tuple(int(g) for g in groups if g.strip().isdigit())
    named = tuple(g for g in groups if not g.strip().isdigit())
    if fact is None:
        return UserView("root", 0, 0, "root", None, "default", numeric, named)
    root = fact.is_root
    if root is None:
        return UserView("unknown", NAMED_UID, 0, fact.text, fact.location, origin, numeric, named)
    uid = 0 if root else (fact.uid if fact.uid is not None else NAMED_UID)
    gid = fact.gid if fact.gid is not None else 0
    state = "root" if root else "nonroot"
    return UserView(state, uid, gid, fact.text, fact.location, origin, numeric, named)


# -- the exec chain -------------------------------------------------------------------------
def _resolve(
    program: str, files: Mapping[str, ImageFile], search: Sequence[str]
) -> tuple[str, ImageFile | None]:
    """The file ``program`` names: as written when absolute, else the first match in the
    directories of the image's PATH (``search``)."""
    if program.startswith("/"):
        path = posixpath.normpath(program)
        return path, files.get(path)
    if "/" not in program:
        for directory in search:
            candidate = f"{directory}/{program}"
            if candidate in files:
                return candidate, files[candidate]
    return program, None


_SHELL_NAMES = frozenset({"sh", "bash", "ash", "dash", "zsh", "ksh", "mksh"})


def _script_end(
    argv_links: Sequence[ChainLink], files: Mapping[str, ImageFile], search: Sequence[str]
) -> tuple[list[ChainLink], bool, str | None]:
    """A chain that ends at an entrypoint script which picks its program itself (no
    arguments, or options only: ``docker-entrypoint.sh --log-file=stdout``): ``(links,
    decidable, note)``.  A script the Dockerfile writes (a here-document) that ends by
    ``exec``-ing a literal program runs that program: when the build gives it file
    capabilities, the chain is undecidable (the script may switch users on the way: gosu).
    Otherwise the program is unknown: when the build gives some file capabilities, the script
    may well exec that file (coturn: ``setcap … /usr/bin/turnserver``, ``exec turnserver``), so
    nothing rests on the script's own lack of them; when no file of the image has any, whatever
    it execs has none (base-image programs are assumed without)."""
    links = list(argv_links)
    last = links[-1] if links else None
    if last is None or last.role != "shell":
        return links, True, None
    script = last.program
    if posixpath.basename(script) in _SHELL_NAMES:  # `sh /entrypoint.sh`; `sh -c` is read
        rest = [a for a in last.args if not a.startswith("-")]
        if "-c" in last.args or not rest:
            return links, True, None
        script = rest[0]
    path, image_file = _resolve(script, files, search)
    execs = script_execs(image_file.script) if image_file is not None else ""
    if execs:  # through gosu/su-exec perhaps: the program is known, the user switch is not
        target, found = _resolve(execs, files, search)
        if found is None or (found.file_caps is None and found.caps_known):
            return links, True, None
        capped = [target]
    else:
        capped = sorted(
            p for p, f in files.items() if p != path and not f.script and f.file_caps is not None
        )
    if not capped:
        return links, True, None
    named = ", ".join(capped[:3]) + (" …" if len(capped) > 3 else "")
    how = f"ends by exec'ing {execs}" if execs else "picks the program it runs itself"
    return (
        links,
        False,
        f"{path} {how} and the build gives file capabilities to {named}: the service's "
        "capabilities are not judged from the script's own",
    )


def _links(
    argv_links: Sequence[ChainLink],
    files: Mapping[str, ImageFile],
    *,
    host: bool,
    search: Sequence[str] = DEFAULT_PATH,
) -> tuple[tuple[Link, ...], bool, list[str]]:
    """(links, decidable, assumptions).  ``host``: the programs are the host's (systemd)."""
    links: list[Link] = []
    notes: list[str] = []
    decidable = True
    if not host:
        argv_links, decidable, script_note = _script_end(argv_links, files, search)
        if script_note:
            notes.append(script_note)
    for chain_link in argv_links:
        path, image_file = _resolve(chain_link.program, files, search)
        base = posixpath.basename(path)
        note: str | None = None
        script = bool(_SCRIPT.fullmatch(base)) or (
            chain_link.role == "shell" and base not in ("sh", "bash", "ash", "dash", "zsh")
        )
        if script:
            caps = None  # the kernel executes the interpreter: a script's file caps never count
            known = True
            if image_file is not None and image_file.file_caps is not None:
                note = f"{path} is a script: its own file capabilities never count"
        elif image_file is not None:
            caps = image_file.file_caps
            known = image_file.caps_known
        elif host:
            caps, known = None, True
            note = (
                f"{path} is assumed to carry no file capabilities (a unit file cannot show "
                f"them: `getcap {path}` tells)"
            )
        elif chain_link.role != "service" or NO_CAPS_PROGRAMS.fullmatch(base):
            caps, known = None, True
            if chain_link.role == "service":
                note = f"{base} comes from the base image, assumed without file capabilities"
        else:
            caps, known = None, False
        if not known:
            decidable = False
        if note:
            notes.append(note)
        links.append(Link(chain_link, path, image_file, known, ExecFile(path, caps), note))
    return tuple(links), decidable, notes


def _switch(target: UserView, wrapper: ChainLink) -> Callable[[Creds], Creds]:
    """The user switch a setuid-wrapper link makes (``setpriv`` with its capability options)."""
    if wrapper.program.rsplit("/", 1)[-1] == "setpriv":
        edits = dict(wrapper.options)  # the last of each option wins
        return partial(
            setpriv_switch,
            uid=target.uid,
            gid=target.gid,
            groups=target.groups,
            bounding_set=edits.get("--bounding-set"),
            inh_caps=edits.get("--inh-caps"),
            ambient_caps=edits.get("--ambient-caps"),
        )
    return partial(setuid_switch, uid=target.uid, gid=target.gid, groups=target.groups)


#: The kernel before the one boundary a lint answer can cross (commit 337490f0007f, 6.17).
BEFORE_6_17 = Kernel((6, 16))


def _run_chain(
    start: Creds, links: Sequence[Link], users: Mapping[int, UserView], notes: list[str]
) -> tuple[ChainResult, Creds | None]:
    """The model's exec chain over the links, switching users after each setuid-wrapper link.

    Ids are as the container sees them: its own root is uid 0 there, so a v3 file capability
    counts for rootid 0 only (exec_chain's default userns_root_uids), whatever the runtime's
    user namespace maps that root to on the host."""
    switches = {index: _switch(user, links[index].link) for index, user in users.items()}
    files = [link.file for link in links]
    chain = exec_chain(start, files, switches=switches, kernel=LATEST)
    older = exec_chain(start, files, switches=switches, kernel=BEFORE_6_17)
    if (older.ok, older.final) != (chain.ok, chain.final):
        notes.append(
            f"answered for Linux {LATEST}, the newest kernel unroot models (the target's is "
            'unknown): before 6.17 the exec chain ends differently ("ids changed" compared '
            "with the real ids, commit 337490f0007f)"
        )
    return chain, chain.final if chain.ok else None


# -- ports ----------------------------------------------------------------------------------
def _port_start(
    runtime: RuntimeProfile, host_network: bool, sysctls: Mapping[str, str]
) -> tuple[int, str]:
    value = unprivileged_port_start(runtime, host_network, HOST_PORT_START, sysctls)
    if host_network or not runtime.own_netns:
        return value, "host"
    if PORT_SYSCTL in sysctls:
        return value, "sysctl"
    return value, "runtime" if runtime.sets_port_sysctl else "new-netns"


def _unit_netns(
    sandbox: UnitSandbox, start: int, source: str, notes: list[str]
) -> tuple[int, str, bool, bool]:
    """A systemd unit's network namespace: ``(start, source, owned by the service's user
    namespace, known)``.  ``PrivateNetwork=`` makes a new one (1024, loopback only); systemd
    creates it, and the host's is there already, before ``PrivateUsers=``'s user namespace
    (src/core/execute.c exec_child, v252: "Users with CAP_SYS_ADMIN can set up user namespaces
    last"), so either belongs to the initial user namespace.  ``NetworkNamespacePath=`` names a
    namespace the unit cannot show: its ports are not checked."""
    notes.extend(sandbox.notes)
    owned = sandbox.private_users is None
    if sandbox.network_namespace_path:
        notes.append(
            f"NetworkNamespacePath={sandbox.network_namespace_path}: that namespace's "
            f"{PORT_SYSCTL} and owner decide; the ports are not checked"
        )
        return start, source, owned, False
    if sandbox.private_network is not None:
        notes.append(
            f"PrivateNetwork=yes: a new network namespace (loopback only) with {PORT_SYSCTL} "
            f"{NEW_NETNS_PORT_START}"
        )
        start, source = NEW_NETNS_PORT_START, "new-netns"
    if not owned:
        notes.append(
            "PrivateUsers=: systemd creates the service's user namespace after its network "
            "namespace, which stays the initial user namespace's (systemd 252; newer systemd "
            "only changes it with DelegateNamespaces=net)"
        )
    return start, source, owned, True


def _listen_ports(
    workload: Workload | None, stage: Stage | None, command_overridden: bool
) -> tuple[PortFact, ...]:
    """The ports the service binds itself: the workload's when it names any (EXPOSE is only
    documentation and goes stale under an override), else the image's."""
    if workload is not None and workload.ports:
        chosen: Iterable[PortFact] = workload.ports
    elif stage is not None:
        chosen = (
            p for p in stage.exposed if not (command_overridden and p.source == "command-line")
        )
    else:
        chosen = ()
    seen: dict[tuple[int, str], PortFact] = {}
    for fact in chosen:
        if 0 < fact.port <= 65535:
            seen.setdefault((fact.port, fact.proto), fact)
    return tuple(seen.values())


def _binds(
    ports: Sequence[PortFact],
    effective: CapSet,
    start: int,
    source: str,
    *,
    netns_owned: bool = True,
) -> list[PortBind]:
    """``netns_owned``: the netns belongs to the service's user namespace (False: to one above
    it — a systemd unit with ``PrivateUsers=``)."""
    found = []
    for fact in ports:
        if fact.source == "socket-unit":
            continue  # systemd binds it and passes the socket: the service needs nothing
        verdict = bind_verdict(
            fact.port,
            proto=fact.proto,
            effective=effective,
            unprivileged_port_start=start,
            netns_owned_by_caller_userns=netns_owned,
        )
        portable = bind_verdict(
            fact.port,
            proto=fact.proto,
            effective=effective,
            unprivileged_port_start=HOST_PORT_START if source == "runtime" else start,
            netns_owned_by_caller_userns=netns_owned,
        )
        found.append(PortBind(fact, start, source, verdict, portable))
    return found


# -- building one situation -----------------------------------------------------------------
@dataclass
class _Build:
    kind: str
    name: str
    location: Location
    runtime: RuntimeProfile
    builder: str
    workload: Workload | None
    dockerfile: DockerfileFacts | None
    stage: Stage | None
    notes: list[str] = field(default_factory=list)

    def stage_files(self) -> dict[str, ImageFile]:
        if self.stage is None:
            return {}
        return self.stage.files.get(self.builder, {})


def _argv(build: _Build) -> tuple[tuple[str, ...] | None, tuple[str, ...] | None, bool, bool]:
    """(entrypoint, cmd, the image's command was overridden, the program is known)."""
    workload, stage = build.workload, build.stage
    image_ep = stage.entrypoint if stage else None
    image_cmd = stage.cmd if stage else None
    if workload is None:
        return image_ep, image_cmd, False, image_ep is not None or image_cmd is not None
    if workload.source_kind == "systemd":
        return workload.entrypoint, None, False, workload.entrypoint is not None
    if workload.entrypoint is not None:  # docker --entrypoint / k8s command: the CMD is dropped
        return workload.entrypoint, workload.command, True, True
    if workload.command is not None:
        if stage is None:
            return None, workload.command, True, False  # the image's ENTRYPOINT is unknown
        return image_ep, workload.command, True, True
    return image_ep, image_cmd, False, stage is not None


def _who(build: _Build) -> UserView:
    """The user the runtime starts the container or unit as: the workload's, else the image's."""
    workload, stage, notes = build.workload, build.stage, build.notes
    groups = workload.groups if workload else ()
    # Kubernetes runAsGroup without runAsUser keeps the image's user (compose's ":gid" is uid 0)
    group_only = (
        workload is not None
        and workload.source_kind == "k8s"
        and workload.user is not None
        and workload.user.uid is None
    )
    if workload is not None and workload.user is not None and not group_only:
        return _user_view(workload.user, "workload", groups)
    if stage is not None:
        image_user = stage.user
        if image_user is None and nonroot_base(stage, build.dockerfile):
            user = UserView("unknown", NAMED_UID, 0, "(the base image's USER)", None, "image")
            if build.dockerfile is not None:
                base = root_stage(stage, build.dockerfile).base
                notes.append(
                    f"no USER in the Dockerfile: the base image {base} sets a non-root USER of "
                    "its own (unknown here)"
                )
        else:
            user = _user_view(image_user, "image" if image_user else "default", groups)
            if image_user is None:
                notes.append("no USER in the Dockerfile: the base image's user, assumed root")
    elif workload is not None and workload.source_kind == "systemd":
        user = _user_view(None, "default", groups)
    elif workload is not None and workload.run_as_non_root:
        user = UserView("nonroot", NAMED_UID, 0, "(image USER, runAsNonRoot)", None, "image")
    else:
        user = UserView("unknown", NAMED_UID, 0, "(the image's USER)", None, "image")
    if group_only and workload is not None and workload.user and workload.user.gid is not None:
        name = user.text.split(":", 1)[0]
        user = replace(user, gid=workload.user.gid, text=f"{name}:{workload.user.gid}")
    if workload is not None and workload.source_kind == "systemd" and workload.dynamic_user:
        user = replace(user, state="nonroot", uid=NAMED_UID)
    return user


#: Who resolves a user given without a group, per runtime: all of them read the image's
#: /etc/passwd — moby/sys/user ``GetExecUser`` (Docker, Podman's ``lookup.GetUserGroupInfo``,
#: CRI-O's ``GetUserInfo``) and containerd's ``oci.WithUser`` → ``WithUserID``/``WithUsername``:
#: a name gets its entry's group (no entry: the container fails to start), a uid its entry's
#: group when it has one, else gid 0.
_ENGINE = {
    "docker": "Docker",
    "docker-rootless": "rootless Docker",
    "podman-rootless": "Podman",
    "containerd1": "containerd",
    "containerd2": "containerd",
    "cri-o": "CRI-O",
}


def _group_note(user: UserView, runtime: RuntimeProfile) -> str | None:
    """The assumption behind the primary group of a user given without one."""
    who = _ENGINE.get(runtime.name)
    if who is None or user.state != "nonroot" or ":" in user.text or user.location is None:
        return None
    if user.uid == NAMED_UID:
        return (
            f"user {user.text} without a group: {who} uses its entry's group in the image's "
            "/etc/passwd (unknown here: modelled as gid 0)"
        )
    if user.gid != 0 or not user.text.strip().isdigit():
        return (
            f"user {user.text} without a group: gid {user.gid}, its entry's group in the "
            f"image's /etc/passwd ({who} looks it up)"
        )
    return (
        f"user {user.text} without a group: gid 0, unless the image's /etc/passwd lists uid "
        f"{user.text} ({who} then uses that entry's group)"
    )


def _refused(build: _Build, refusal: NonRootRefusal) -> Situation:
    """The kubelet never creates the container: no user runs, nothing is executed or bound."""
    workload = build.workload
    return Situation(
        kind=build.kind,
        name=build.name,
        location=build.location,
        runtime=build.runtime,
        builder=build.builder,
        workload=workload,
        dockerfile=build.dockerfile,
        stage=build.stage,
        start_error=refusal.error,
        assumptions=tuple(dict.fromkeys(build.notes)),
        ignores=workload.ignores if workload else (),
        nonroot_refusal=refusal,
    )


def _situation(build: _Build) -> Situation:
    workload, stage, runtime = build.workload, build.stage, build.runtime
    notes = build.notes
    # -- who ---------------------------------------------------------------------------------
    user = _who(build)
    if workload is not None and workload.source_kind == "k8s" and workload.run_as_non_root:
        refusal = nonroot_refusal(workload, stage, build.dockerfile, notes)
        if refusal is not None:
            if refusal.from_base:
                notes.append("no USER in the Dockerfile: the base image's user, assumed root")
            return _refused(build, refusal)
    group_note = _group_note(user, runtime)
    if group_note is not None:
        notes.append(group_note)
    # -- start credentials -------------------------------------------------------------------
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    nnp = False
    host_network = False
    sysctls: dict[str, str] = {}
    if workload is not None:
        nnp = workload.no_new_privs
        host_network = workload.host_network
        sysctls = dict(workload.sysctls)
        if workload.source_kind == "systemd":
            cap_add = workload.ambient_caps
            if workload.bounding_caps is not None:
                kept = CapSet.parse(list(workload.bounding_caps))
                cap_drop = tuple((CapSet.all() - kept).names())
        elif workload.privileged:
            cap_add = ("ALL",)
        else:
            cap_add, cap_drop = workload.cap_add, workload.cap_drop
    start: Creds | None = None
    start_error: str | None = None
    try:
        start = start_creds(
            runtime, user.uid, user.gid, user.groups, cap_add, cap_drop, nnp, host_network
        )
    except UnrootError as exc:
        start_error = str(exc)
    sandbox = workload.unit_sandbox if workload is not None else None
    if start is not None and sandbox is not None and sandbox.securebits is not None:
        start = start.with_(securebits=sandbox.securebits)  # systemd applies SecureBits= last
    # -- the chain ---------------------------------------------------------------------------
    entrypoint, cmd, overridden, program_known = _argv(build)
    if workload is not None and workload.init and (entrypoint or cmd):
        entrypoint = ("/sbin/docker-init", "--", *(entrypoint or ()))
        if not entrypoint[2:]:
            entrypoint, cmd = ("/sbin/docker-init", "--", *(cmd or ())), None
    host = workload is not None and workload.source_kind == "systemd"
    argv_links = exec_chain_argv(entrypoint, cmd, container=not host) if program_known else []
    search = stage.path if stage is not None and stage.path else DEFAULT_PATH
    links, decidable, link_notes = _links(argv_links, build.stage_files(), host=host, search=search)
    notes.extend(link_notes)
    if not links:
        decidable = False
    switch: dict[int, UserView] = {}
    service_user = user
    for index, link in enumerate(links):
        if link.role == "setuid-wrapper" and link.link.user:
            service_user = _user_view(
                UserFact(link.link.user, *_ids(link.link.user), None), "wrapper"
            )
            switch[index] = service_user
            notes.append(
                f"{posixpath.basename(link.path)} switches to {link.link.user}: setuid(2) clears "
                "the capabilities"
            )
    chain: ChainResult | None = None
    final: Creds | None = None
    if start is not None and links:
        chain, final = _run_chain(start, links, switch, notes)
    elif start is not None and (workload is not None or user.is_root):
        # an entrypoint the linter cannot see: modelled without file capabilities (root
        # emulation makes that exact for root; for anyone else the chain stays undecidable)
        chain, final = _run_chain(start, [_unknown_link()], {}, notes)
    # -- ports -------------------------------------------------------------------------------
    ports: list[PortBind] = []
    port_start, source = _port_start(runtime, host_network, sysctls)
    netns_owned, netns_known = True, True
    if sandbox is not None:
        port_start, source, netns_owned, netns_known = _unit_netns(
            sandbox, port_start, source, notes
        )
    if source == "host" and runtime.name != "systemd":
        notes.append(
            f"the host's {PORT_SYSCTL} is the kernel default {HOST_PORT_START} "
            "(host network: the runtime's sysctl does not apply)"
        )
    elif source == "host":
        notes.append(f"the host's {PORT_SYSCTL} is the kernel default {HOST_PORT_START}")
    knows_effect = final is not None and (decidable or service_user.is_root)
    if knows_effect and final is not None and service_user.state != "unknown":
        listen = _listen_ports(workload, stage, overridden)
        ports = _binds(listen, final.effective, port_start, source, netns_owned=netns_owned)
        ports = ports if netns_known else []
    if workload is not None and runtime.user_namespace and not host_network:
        ports.extend(_rootless_publish(workload, runtime))
    # -- host identity for bind mounts --------------------------------------------------------
    access_creds, userns = _host_identity(service_user, runtime, final or start)
    if build.kind == "dockerfile":
        notes.insert(0, _standalone_note(runtime))
    return Situation(
        kind=build.kind,
        name=build.name,
        location=build.location,
        runtime=runtime,
        builder=build.builder,
        workload=workload,
        dockerfile=build.dockerfile,
        stage=stage,
        user=user,
        service_user=service_user,
        host_network=host_network,
        start=start,
        start_error=start_error,
        links=links,
        chain=chain,
        decidable=decidable,
        final=final,
        ports=tuple(ports),
        access_creds=access_creds,
        userns=userns,
        assumptions=tuple(dict.fromkeys(notes)),
        ignores=workload.ignores if workload else (),
    )


#: How each runtime starts an image on its own, with no workload file: (command, network).
_STANDALONE = {
    "docker": ("docker run IMAGE", "bridge network"),
    "docker-rootless": ("docker run IMAGE", "bridge network in rootlesskit's namespaces"),
    "podman-rootless": ("podman run IMAGE", "its own network namespace (pasta/slirp4netns)"),
    "containerd1": ("a pod with no securityContext", "the pod's network namespace"),
    "containerd2": ("a pod with no securityContext", "the pod's network namespace"),
    "cri-o": ("a pod with no securityContext", "the pod's network namespace"),
}


def _standalone_note(runtime: RuntimeProfile) -> str:
    command, network = _STANDALONE.get(runtime.name, _STANDALONE["docker"])
    engine = _ENGINE.get(runtime.name, runtime.title)
    return (
        f"run as `{command}` with defaults: {network}, {engine}'s default capabilities, "
        "the image's USER"
    )


def _standalone_name(path: str, runtime: RuntimeProfile) -> str:
    command = _STANDALONE.get(runtime.name, _STANDALONE["docker"])[0]
    short = "pod" if command.startswith("a pod") else command.removesuffix(" IMAGE")
    return f"{path} ({short})"


def _ids(text: str) -> tuple[int | None, int | None]:
    name, _, group = text.partition(":")
    uid = 0 if name == "root" else int(name) if name.isdigit() else None
    gid = int(group) if group.isdigit() else (0 if group == "root" else None)
    return uid, gid


def _unknown_link() -> Link:
    link = ChainLink("the image's entrypoint", "service")
    return Link(link, link.program, None, False, ExecFile(link.program))


def _rootless_publish(workload: Workload, runtime: RuntimeProfile) -> list[PortBind]:
    """Rootless engines publish host ports on the host, as the invoking user (rootless Docker:
    rootlesskit; rootless Podman: rootlessport or pasta): without cap_net_bind_service on the
    forwarder, the host's sysctl decides.  ``who`` is "rootlesskit" for both (the publisher)."""
    forwarder = "rootlessport" if runtime.name == "podman-rootless" else "rootlesskit"
    found = []
    for fact in workload.ports:
        if fact.source != "ports" or fact.host_port is None:
            continue
        verdict = bind_verdict(
            fact.host_port,
            proto=fact.proto,
            effective=EMPTY,
            unprivileged_port_start=HOST_PORT_START,
            binary=f"$(command -v {forwarder})",
        )
        host_fact = replace(fact, port=fact.host_port)
        found.append(PortBind(host_fact, HOST_PORT_START, "host", verdict, verdict, "rootlesskit"))
    return found


def _host_identity(
    user: UserView, runtime: RuntimeProfile, creds: Creds | None
) -> tuple[Creds | None, UserNs]:
    if user.state == "unknown" or creds is None:
        return None, INIT_USERNS
    if not runtime.user_namespace:
        return creds.with_(uid=Ids.same(user.uid), gid=Ids.same(user.gid)), INIT_USERNS
    uid_map = rootless_map(ROOTLESS_USER, ROOTLESS_SUBIDS)
    host_uid = uid_map.to_outside(user.uid)
    host_gid = uid_map.to_outside(user.gid)
    if host_uid is None or host_gid is None:
        return None, INIT_USERNS
    groups = frozenset(g for g in (uid_map.to_outside(x) for x in user.groups) if g is not None)
    userns = UserNs(uid_map, uid_map)
    return creds.with_(uid=Ids.same(host_uid), gid=Ids.same(host_gid), groups=groups), userns


# -- joining ----------------------------------------------------------------------------------
def _stage_for(dockerfile: DockerfileFacts, target: str | None) -> Stage:
    if target:
        for stage in dockerfile.stages:
            if stage.name is not None and stage.name.lower() == target.lower():
                return stage
    return dockerfile.final


def _runtime(kind: str, chosen: str | None) -> RuntimeProfile:
    info = KINDS[kind]
    if info.runtime_fixed:
        return PROFILES[info.default_runtime]
    return PROFILES[chosen or info.default_runtime]


def _runtime_note(
    kind: str, runtime: RuntimeProfile, chosen: str | None, *, user_unit: bool = False
) -> str:
    how = "chosen" if chosen else f"the default for {kind}"
    if kind == "systemd":
        which = "user service" if user_unit else "system service"
        return f"runtime: systemd ({which}, host network namespace)"
    return f"runtime: {runtime.title} ({how}; --runtime or runtime = … in .unroot.toml changes it)"


def _builder_note(builder: str, stage: Stage | None) -> str | None:
    if stage is None:
        return None
    classic, buildkit = stage.files.get("classic", {}), stage.files.get("buildkit", {})
    differs = any(
        (classic.get(p) or buildkit.get(p)) and classic.get(p) != buildkit.get(p)
        for p in set(classic) | set(buildkit)
    )
    if not differs:
        return None
    if builder == "buildkit":
        return (
            "builder: BuildKit (the default since Docker 23); the classic builder loses file "
            'capabilities on COPY --from — set builder = "classic" in .unroot.toml if you use it'
        )
    return 'builder: the classic builder (builder = "classic")'


def build_situations(
    parsed: Sequence[ParsedFile],
    dockerfiles: Mapping[str, ParsedFile],
    config: Choices | None = None,
    runtime: str | None = None,
) -> list[Situation]:
    """One situation per workload, plus one per Dockerfile of ``parsed`` no workload uses.

    ``dockerfiles`` holds every parsed Dockerfile a workload may join (by normalised path),
    ``runtime`` overrides the config's.
    """
    config = config or NO_CHOICES
    chosen = runtime or config.runtime
    builder = config.builder or DEFAULT_BUILDER
    situations: list[Situation] = []
    used: set[str] = set()
    for parsed_file in parsed:
        for workload in parsed_file.workloads:
            situations.append(
                _workload_situation(workload, parsed_file, dockerfiles, config, chosen, builder)
            )
            joined = _dockerfile_path(workload, config)
            if joined is not None:
                used.add(joined)
    for parsed_file in parsed:
        facts = parsed_file.dockerfile
        if facts is None or posixpath.normpath(parsed_file.path) in used:
            continue
        stage = facts.final
        rt = _runtime("dockerfile", chosen)
        build = _Build(
            "dockerfile",
            _standalone_name(parsed_file.path, rt),
            stage.location,
            rt,
            builder,
            None,
            facts,
            stage,
            [_runtime_note("dockerfile", rt, chosen)],
        )
        note = _builder_note(builder, stage)
        if note:
            build.notes.append(note)
        situations.append(_situation(build))
    return situations


def _dockerfile_path(workload: Workload, config: Choices) -> str | None:
    if workload.dockerfile is not None:
        return posixpath.normpath(workload.dockerfile)
    if workload.image:
        found = config.dockerfile_for(workload.image)
        return posixpath.normpath(found) if found else None
    return None


def _workload_situation(  # noqa: PLR0917 - the join's inputs, each used once
    workload: Workload,
    parsed_file: ParsedFile,
    dockerfiles: Mapping[str, ParsedFile],
    config: Choices,
    chosen: str | None,
    builder: str,
) -> Situation:
    kind = workload.source_kind
    rt = _runtime(kind, chosen)
    user_unit = kind == "systemd" and is_user_unit(workload.location.file)
    # the runtime, then what the facts rest on (.env values, a user unit's user)
    notes = [_runtime_note(kind, rt, chosen, user_unit=user_unit), *workload.notes]
    facts: DockerfileFacts | None = None
    stage: Stage | None = None
    path = _dockerfile_path(workload, config) if kind != "systemd" else None
    if path is not None:
        joined = dockerfiles.get(path)
        if joined is not None and joined.dockerfile is not None:
            facts = joined.dockerfile
            stage = _stage_for(facts, workload.build_target)
            which = f"stage {stage.name!r}" if stage.name else "the final stage"
            notes.append(f"the image is built from {path} ({which})")
            note = _builder_note(builder, stage)
            if note:
                notes.append(note)
        else:
            notes.append(f"the Dockerfile {path} could not be read: the image is unknown")
    elif kind in ("compose", "k8s") and workload.image:
        notes.append(
            f"the image {workload.image} is not joined to a Dockerfile ([images] in "
            ".unroot.toml): its USER and file capabilities are unknown"
        )
    label = f"{parsed_file.path} service {workload.name}" if kind == "compose" else workload.name
    build = _Build(kind, label, workload.location, rt, builder, workload, facts, stage, notes)
    return _situation(build)
