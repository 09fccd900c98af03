"""The model of a build that :mod:`.dockerfile` simulates: files of interest, per builder.

A stage is a :class:`StageState`; each builder ("classic", "buildkit") has its own
:class:`FileSystem` of :class:`FileState` values — the files whose security.capability history
matters — because the builders differ on ``COPY --from``.  A :class:`Cover` records a path the
build wrote without naming each file (a directory COPY, a package install, a command unroot does
not model), so a file met later can be attributed to the instruction that made it.  The ``WHY_*``
texts are the reasons events carry (see :mod:`.dockerfile` for the sources).
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
from dataclasses import dataclass, field

from unroot.model.filecaps import FileCaps
from unroot.sources.dockerfile.buildkit import RawInstruction
from unroot.sources.parsed import CapsEvent, ImageFile, Location, PortFact, UserFact

BUILDERS = ("classic", "buildkit")
DEFAULT_SHELL = ("/bin/sh", "-c")
SH_LIKE = frozenset({"sh", "bash", "ash", "dash", "zsh", "ksh", "mksh", "busybox"})
#: directories every base image has: a single-source COPY/cp into them lands *inside*
KNOWN_DIRS = frozenset(
    {
        "/",
        "/bin",
        "/sbin",
        "/usr",
        "/usr/bin",
        "/usr/sbin",
        "/usr/local",
        "/usr/local/bin",
        "/usr/local/sbin",
        "/usr/lib",
        "/lib",
        "/etc",
        "/opt",
        "/tmp",  # noqa: S108 - a path inside an image, not a temporary file of ours
        "/var",
        "/srv",
        "/home",
        "/root",
        "/usr/share",
    }
)
NUMERIC = re.compile(r"\d+")

WHY_CHOWN = (
    "chown/chgrp removes security.capability: the kernel clears it on any ownership change, "
    "even to the same owner"
)
WHY_CP = (
    "cp without -a/--preserve=xattr does not copy security.capability "
    "(cp -p preserves mode, ownership and timestamps only)"
)
WHY_INSTALL = "install never copies extended attributes: security.capability is not carried"
WHY_RSYNC = "rsync without -X/--xattrs does not copy security.capability"
WHY_TAR_CREATE = "the archive was created without --xattrs: it holds no security.capability"
WHY_TAR_EXTRACT = (
    "tar extracts security.capability only with --xattrs-include='*' (or 'security.*'); "
    "GNU tar restores user.* attributes alone by default"
)
WHY_NONROOT = (
    "the RUN runs as a non-root USER, which cannot write security.capability (CAP_SETFCAP)"
)
WHY_CONTEXT = (
    "files from the build context do not carry security.capability: BuildKit chowns them after "
    "setting their xattrs (moby/buildkit#2250), the classic builder does not copy xattrs"
)
WHY_CLASSIC_FROM = (
    "the classic builder does not copy security.capability on COPY --from "
    "(observed on Docker 20.10; moby/moby#38132)"
)
WHY_BUILDKIT_FROM = (
    "BuildKit copies xattrs on COPY --from after chown/chmod, so security.capability is kept"
)
WHY_KEPT_CP = "a copy that preserves xattrs (cp -a, --preserve=xattr, rsync -X, tar --xattrs)"
WHY_MV = "mv renames the file: the xattr stays"
WHY_ARCHIVE = (
    "ADD extracts a local archive with the xattrs its members carry: a member with a "
    "SCHILY.xattr.security.capability record (tar --xattrs) keeps its file capabilities "
    "(observed on Docker 20.10, both builders), so what it carries depends on the archive"
)


@dataclass
class FileState:
    """A file of interest while the build is simulated (frozen into an ImageFile)."""

    path: str
    created_by: Location
    created_how: str
    caps: FileCaps | None = None
    caps_known: bool = True
    events: list[CapsEvent] = field(default_factory=list)
    layers: list[Location] = field(default_factory=list)
    setuid: bool = False
    setgid: bool = False
    owner: str | None = None
    script: str = ""

    def clone(self, path: str | None = None) -> FileState:
        return FileState(
            path or self.path,
            self.created_by,
            self.created_how,
            self.caps,
            self.caps_known,
            list(self.events),
            list(self.layers),
            self.setuid,
            self.setgid,
            self.owner,
            self.script,
        )

    def touched(self, where: Location) -> None:
        """A change in instruction ``where``: a later layer than the last stores it again."""
        if not self.layers or self.layers[-1] != where:
            self.layers.append(where)

    @property
    def interesting(self) -> bool:
        return bool(self.caps or self.events or self.setuid or self.setgid)

    def freeze(self) -> ImageFile:
        return ImageFile(
            path=self.path,
            created_by=self.created_by,
            created_how=self.created_how,
            file_caps=self.caps,
            events=tuple(self.events),
            layers_with_content=tuple(dict.fromkeys(self.layers)),
            setuid=self.setuid,
            setgid=self.setgid,
            owner=self.owner,
            caps_known=self.caps_known,
            script=self.script,
        )


@dataclass
class Archive:
    members: dict[str, FileState]
    xattrs: bool


@dataclass
class FileSystem:
    """One builder's view of a stage's files."""

    files: dict[str, FileState] = field(default_factory=dict)
    archives: dict[str, Archive] = field(default_factory=dict)

    def clone(self) -> FileSystem:
        return FileSystem(
            {p: f.clone() for p, f in self.files.items()},
            {
                p: Archive({n: f.clone() for n, f in a.members.items()}, a.xattrs)
                for p, a in self.archives.items()
            },
        )

    def under(self, path: str, *, recursive: bool) -> list[tuple[str, FileState]]:
        """(relative name, file) for ``path`` itself, files below it, or glob matches."""
        if any(c in path for c in "*?["):
            return [
                (posixpath.basename(p), f)
                for p, f in self.files.items()
                if fnmatch.fnmatchcase(p, path)
            ]
        found: list[tuple[str, FileState]] = []
        if path in self.files:
            found.append(("", self.files[path]))
        if recursive:
            prefix = path.rstrip("/") + "/"
            found.extend(
                (p[len(prefix) :], f) for p, f in self.files.items() if p.startswith(prefix)
            )
        return found


@dataclass(frozen=True)
class Cover:
    """A path the build wrote without naming each file (a directory COPY, an unknown command)."""

    prefix: str  # "/" covers everything
    location: Location
    how: str  # copy | copy-from | add | run
    packages: tuple[str, ...] = ()  # a package install: covers files named like its packages
    source_stage: int | None = None
    source_prefix: str | None = None
    external: bool = False  # COPY --from=<image>
    caps_unknown: bool = False  # ADD of a local archive: members may carry file caps

    def covers(self, path: str) -> bool:
        if self.packages:
            base = posixpath.basename(path)
            return any(
                base == p or base.startswith(p + "-") or (len(base) > 2 and p.startswith(base))
                for p in self.packages
            )
        prefix = self.prefix.rstrip("/")
        return not prefix or path == prefix or path.startswith(prefix + "/")


def _blanket(cover: Cover) -> bool:
    """A RUN lint could not follow: it covers every path without having named any."""
    return cover.how == "run" and cover.prefix in ("", "/") and not cover.packages


@dataclass(frozen=True)
class CapsRegion:
    """Files a command may have given file capabilities without naming them: ``find DIR -name
    GLOB -exec setcap``, ``… | xargs setcap``, ``setcap … "$UNKNOWN"``.  A file the build wrote
    before it, met later, has unknown capabilities (the rules that need them stay silent)."""

    prefix: str  # "/" : anywhere
    name: str | None  # a basename glob (find -name), None: any name
    location: Location

    def covers(self, path: str) -> bool:
        prefix = self.prefix.rstrip("/")
        if prefix and path != prefix and not path.startswith(prefix + "/"):
            return False
        return self.name is None or fnmatch.fnmatchcase(posixpath.basename(path), self.name)


@dataclass
class Mount:
    target: str
    kind: str
    source: str
    from_stage: int | None
    from_image: bool


@dataclass
class StageState:
    index: int
    name: str | None
    base: str
    base_stage: int | None
    location: Location
    root_location: Location  # the FROM of the first stage in the chain (its base image)
    scratch: bool
    args: dict[str, str | None] = field(default_factory=dict)
    env: dict[str, str | None] = field(default_factory=dict)
    workdir: str = "/"
    shell: tuple[str, ...] = DEFAULT_SHELL
    user: UserFact | None = None
    users: dict[str, tuple[int | None, int | str | None]] = field(default_factory=dict)
    groups: dict[str, int | None] = field(default_factory=dict)
    exposed: list[PortFact] = field(default_factory=list)
    entrypoint: tuple[str, ...] | None = None
    entrypoint_location: Location | None = None
    cmd: tuple[str, ...] | None = None
    cmd_location: Location | None = None
    cmd_set: bool = False
    packages: list[str] = field(default_factory=list)
    virtual: dict[str, list[str]] = field(default_factory=dict)
    covers: list[Cover] = field(default_factory=list)
    symlinks: dict[str, str] = field(default_factory=dict)
    dirs: set[str] = field(default_factory=set)
    maybe_caps: list[CapsRegion] = field(default_factory=list)
    #: ONBUILD instructions of this stage: they run in a stage (or image) built FROM it
    onbuild: list[RawInstruction] = field(default_factory=list)
    fs: dict[str, FileSystem] = field(default_factory=lambda: {b: FileSystem() for b in BUILDERS})

    def vars(self) -> dict[str, str | None]:
        """What a build step sees: ARGs, overridden by ENV."""
        return {**self.args, **self.env}

    def inherit(self, base: StageState) -> None:
        self.env = dict(base.env)
        self.workdir = base.workdir
        self.shell = base.shell
        self.user = base.user
        self.users = dict(base.users)
        self.groups = dict(base.groups)
        self.exposed = list(base.exposed)
        self.entrypoint, self.entrypoint_location = base.entrypoint, base.entrypoint_location
        self.cmd, self.cmd_location = base.cmd, base.cmd_location
        self.packages = list(base.packages)
        self.virtual = {k: list(v) for k, v in base.virtual.items()}
        self.covers = list(base.covers)
        self.symlinks = dict(base.symlinks)
        self.dirs = set(base.dirs)
        self.maybe_caps = list(base.maybe_caps)
        self.fs = {b: fs.clone() for b, fs in base.fs.items()}


def mode_bits(mode: str, setuid: bool, setgid: bool) -> tuple[bool, bool]:
    """setuid/setgid after ``chmod MODE`` (numeric or symbolic) on a regular file."""
    mode = mode.strip()
    if NUMERIC.fullmatch(mode) and len(mode) <= 5:
        value = int(mode, 8) if all(c in "01234567" for c in mode) else 0
        return bool(value & 0o4000), bool(value & 0o2000)
    for clause in mode.split(","):
        m = re.fullmatch(r"([ugoa]*)([-+=])([rwxXstugo]*)", clause)
        if m is None:
            continue
        who, op, perms = m.groups()
        users = not who or "u" in who or "a" in who
        group = not who or "g" in who or "a" in who
        if op == "=":
            if users:
                setuid = "s" in perms
            if group:
                setgid = "s" in perms
        elif "s" in perms:
            if users:
                setuid = op == "+"
            if group:
                setgid = op == "+"
    return setuid, setgid


class BuildContext:
    """What the simulation of every stage shares: the file, its lines, the stages so far."""

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.lines = text.split("\n")
        self.stages: list[StageState] = []
        #: stage name → (its first index, its last index): FROM and COPY --from in O(1)
        self.named: dict[str, tuple[int, int]] = {}

    def loc(self, line: int, column: int = 1) -> Location:
        return Location(self.path, max(1, line), max(1, column))

    @staticmethod
    def maybe_capped(stage: StageState, path: str, since: Location | None = None) -> bool:
        """A command after ``since`` may have given ``path`` file caps without naming it."""
        return any(
            r.covers(path) and (since is None or r.location.line >= since.line)
            for r in stage.maybe_caps
        )

    @staticmethod
    def built_by_run(stage: StageState, path: str) -> bool:
        return any(c.how == "run" and c.covers(path) for c in stage.covers)

    def replace(self, fs: FileSystem, new: FileState, location: Location, what: str) -> None:
        """Put ``new`` at its path; the history of a capped file it replaces is kept."""
        old = fs.files.get(new.path)
        if old is not None and (old.caps or old.events):
            history = list(old.events)
            if old.caps and not any(
                e.action == "lost" and e.location == location for e in new.events
            ):
                history.append(CapsEvent("lost", location, None, f"replaced by {what}"))
            new.events[:0] = history
            new.events = list(dict.fromkeys(new.events))
        fs.files[new.path] = new

    def is_dir(self, path: str, stage: StageState) -> bool:
        if path in KNOWN_DIRS or path in stage.dirs or path == stage.workdir:
            return True
        prefix = path.rstrip("/") + "/"
        return any(p.startswith(prefix) for fs in stage.fs.values() for p in fs.files)

    def from_cover(
        self, stage: StageState, builder: str, path: str, *, named: bool
    ) -> FileState | None:
        """A file under a path the build wrote without naming it (a directory COPY …).  A RUN
        whose command lint cannot follow covers everything ("/"): it *may* have rewritten the
        file, but an earlier COPY, ADD or command that covers the path itself is the instruction
        known to have written it, so that one is its creator; with none, the base image is."""
        matching = [
            cover
            for cover in reversed(stage.covers)
            if not (named and (cover.prefix == "/" or cover.packages)) and cover.covers(path)
        ]
        creator: Cover | None = None
        if matching and _blanket(matching[0]):
            specific = [c for c in matching if not _blanket(c) and not c.packages]
            creator = specific[0] if specific else None
        for found in matching:
            cover = creator or found
            if creator is None and _blanket(cover):
                # nothing named it: it was in the base image (the RUN may have rewritten it)
                root = stage.root_location
                file = FileState(path, root, "base-image", layers=[root])
            else:
                file = FileState(path, cover.location, cover.how, layers=[cover.location])
            if cover.how == "copy-from":
                file.caps_known = not cover.external or builder == "classic"
                if cover.source_stage is not None and cover.source_prefix is not None:
                    rel = path[len(cover.prefix.rstrip("/")) :].lstrip("/")
                    source_path = (
                        posixpath.join(cover.source_prefix, rel) if rel else cover.source_prefix
                    )
                    earlier = self.stages[cover.source_stage]
                    source = earlier.fs[builder].files.get(source_path) or self.from_cover(
                        earlier, builder, source_path, named=True
                    )
                    if source is not None:
                        file.events.extend(source.events)
                        if builder == "buildkit":
                            file.caps, file.caps_known = source.caps, source.caps_known
                            if source.caps:
                                file.events.append(
                                    CapsEvent(
                                        "kept", cover.location, source.caps, WHY_BUILDKIT_FROM
                                    )
                                )
                        elif source.caps:
                            file.events.append(
                                CapsEvent("lost", cover.location, None, WHY_CLASSIC_FROM)
                            )
            if cover.caps_unknown or self.maybe_capped(stage, path, cover.location):
                file.caps_known = False
            return file
        return None
