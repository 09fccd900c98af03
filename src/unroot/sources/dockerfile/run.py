"""RUN: what the commands of a RUN instruction do to the files of interest, for every builder.

Each simple command (:mod:`unroot.sources.shell`) is matched by name — setcap, chown/chgrp, chmod,
touch, cp, install, mv, ln, rm, rsync, tar, sed -i, strip/upx/objcopy/patchelf, curl/wget/go -o,
tee and ``>`` redirections, cd, mkdir, useradd/adduser/groupadd/addgroup/usermod, the package
managers — and applied to the stage (:mod:`.build`).  A command unroot does not know may have
written anything: it leaves a "/" :class:`~.build.Cover`.  ``sh -c '…'`` and a shell fed a
here-document are followed one level deeper; ``find … -exec``/``-execdir`` and ``… | xargs``
run their command template on the files they select as far as that is known, and leave a
:class:`~.build.CapsRegion` (capabilities unknown) where it is not.  What each tool keeps or
loses is tabulated, with its verification, in :mod:`.parser`.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import ClassVar

from unroot.errors import UnrootError
from unroot.model.filecaps import FileCaps
from unroot.sources.dockerfile.build import (
    NUMERIC,
    SH_LIKE,
    WHY_CHOWN,
    WHY_KEPT_CP,
    WHY_NONROOT,
    Archive,
    BuildContext,
    CapsRegion,
    Cover,
    FileState,
    FileSystem,
    Mount,
    StageState,
    mode_bits,
)
from unroot.sources.dockerfile.buildkit import RawInstruction
from unroot.sources.parsed import CapsEvent, Location, UserFact
from unroot.sources.shell import Env, SimpleCommand, expand_word, parse_shell, shell_c_script

MAX_NESTING = 2  # sh -c inside RUN, and one more level
SYSTEM_WORDS = frozenset({"/dev/null", "/dev/stdout", "/dev/stderr", "/dev/stdin"})


def last_option(options: dict[str, list[str]], *names: str) -> str | None:
    """The last value given to any of ``names``."""
    for name in names:
        if options.get(name):
            return options[name][-1]
    return None


def split_opts(
    args: Sequence[str], with_value: frozenset[str], long_with_value: frozenset[str] = frozenset()
) -> tuple[dict[str, list[str]], list[str]]:
    """GNU-style option parsing: (options → values, operands).  Short clusters (``-av``) are
    split; ``--name=value`` and ``--name value`` (when listed) both work; ``--`` ends options."""
    options: dict[str, list[str]] = {}
    operands: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            operands.extend(args[i + 1 :])
            break
        if arg.startswith("--") and len(arg) > 2:
            name, eq, value = arg[2:].partition("=")
            if not eq and name in long_with_value and i + 1 < len(args):
                value = args[i + 1]
                i += 1
            options.setdefault("--" + name, []).append(value)
        elif arg.startswith("-") and len(arg) > 1 and not arg[1].isdigit():
            letters = arg[1:]
            for j, letter in enumerate(letters):
                if letter in with_value:
                    value = letters[j + 1 :]
                    if not value and i + 1 < len(args):
                        value = args[i + 1]
                        i += 1
                    options.setdefault("-" + letter, []).append(value)
                    break
                options.setdefault("-" + letter, []).append("")
        else:
            operands.append(arg)
        i += 1
    return options, operands


class RunStep:
    """One RUN instruction: its commands applied to the stage, for every builder.

    The shell walk, the file helpers and the commands that edit metadata in place (setcap,
    chown/chgrp, chmod, touch, find, xargs); :class:`~.tools.RunTools` adds the tools that copy,
    move, archive or rewrite files, and ``handlers`` maps a command's name to its method."""

    handlers: ClassVar[Mapping[str, Callable[..., None]]] = {}

    def __init__(
        self,
        builder: BuildContext,
        stage: StageState,
        ins: RawInstruction,
        location: Location,
        mounts: list[Mount],
    ) -> None:
        self.b = builder
        self.stage = stage
        self.ins = ins
        self.location = location
        self.mounts = mounts
        self.shell_vars: dict[str, str | None] = {}
        self.cwd: dict[tuple[int, ...], str] = {(): stage.workdir}
        self.cursor = ins.start_line
        self.pipe_archive: dict[tuple[str, int], Archive] = {}
        self.piped: dict[int, list[str]] = {}  # the last command of each pipeline so far
        self.nonroot = _known_nonroot(stage.user)
        self.depth = 0

    # -- plumbing --------------------------------------------------------------------------
    def script(self, text: str, *, first_line: int, heredoc: bool) -> None:
        parsed = parse_shell(text)
        for command in parsed.commands:
            where = self.where(command, text, first_line, heredoc)
            self.command(command, where)

    def where(self, command: SimpleCommand, text: str, first_line: int, heredoc: bool) -> Location:
        if self.depth:
            return self.location
        if heredoc:
            return self.b.loc(first_line + text.count("\n", 0, command.offset))
        if not command.words:
            return self.location
        word = re.compile(rf"(?<![\w./-]){re.escape(command.words[0])}(?![\w.-])")
        for number in range(self.cursor, self.ins.end_line + 1):
            line = self.b.lines[number - 1] if number - 1 < len(self.b.lines) else ""
            if number == self.ins.start_line:
                line = re.sub(r"\S", " ", line[:4]) + line[4:]  # not the keyword itself
            found = word.search(line)
            if found:
                self.cursor = number
                return self.b.loc(number, found.start() + 1)
        return self.location

    def env(self, command: SimpleCommand) -> dict[str, str | None]:
        env = {**self.stage.vars(), **self.shell_vars}
        for name, raw in reversed(command.bindings):
            env[name] = expand_word(raw, env).text
        return env

    def words(self, raws: Sequence[str], env: Env) -> list[str]:
        out = []
        for raw in raws:
            result = expand_word(raw, env)
            out.append(result.text if result.complete else "$?" + result.text)
        return out

    def abs(self, path: str, scope: tuple[int, ...]) -> str | None:
        if not path or "$" in path or path.startswith("-"):
            return None
        return posixpath.normpath(posixpath.join(self.cwd_of(scope), path))

    def cwd_of(self, scope: tuple[int, ...]) -> str:
        while scope not in self.cwd:
            scope = scope[:-1]
        return self.cwd[scope]

    # -- dispatch --------------------------------------------------------------------------
    def command(self, command: SimpleCommand, where: Location) -> None:
        env = self.env(command)
        if not command.words:
            for assignment in command.assignments:
                name, _, raw = assignment.partition("=")
                value = expand_word(raw, env)
                self.shell_vars[name] = value.text if value.complete else None
            return
        argv = self.words(command.words, env)
        argv = _strip_prefixes(argv)
        upstream = self.piped.get(command.pipeline) if command.pipe_index > 0 else None
        self.piped[command.pipeline] = argv
        scope = command.scope
        for redirect in command.redirects:
            if redirect.op in (">", ">>", ">|", "&>", "&>>") and redirect.target:
                target = expand_word(redirect.target, env)
                path = self.abs(target.text, scope) if target.complete else None
                if path and path not in SYSTEM_WORDS:
                    self.write(path, where, f"the redirection '{redirect.op} {target.text}'")
        if not argv:
            return
        name = argv[0].rsplit("/", 1)[-1]
        args = argv[1:]
        handler = self.handlers.get(name)
        if name == "xargs":
            self.xargs(args, command, where, upstream)
        elif handler is not None:
            handler(self, args, command, where)
        elif name in SH_LIKE:
            self.nested_shell(argv, command, where)
        elif name in _HARMLESS:
            return
        else:
            self.stage.covers.append(Cover("/", self.location, "run"))

    def argv(self, argv: list[str], where: Location) -> None:
        """An exec-form RUN that is not a shell: one command with literal words."""
        self.command(SimpleCommand(tuple(_quote(a) for a in argv)), where)

    def nested_shell(self, argv: list[str], command: SimpleCommand, where: Location) -> None:
        script = shell_c_script(argv)
        body = script[0] if script else None
        if body is None:
            heredoc = next((r.target for r in command.redirects if r.op in ("<<", "<<-")), None)
            operands = [a for a in argv[1:] if not a.startswith("-")]
            if heredoc is not None and not operands:
                body = heredoc.rsplit("\n", 1)[0] if "\n" in heredoc else ""
        if body is None or self.depth >= MAX_NESTING:
            self.stage.covers.append(Cover("/", self.location, "run"))
            return
        self.depth += 1
        try:
            for inner in parse_shell(body).commands:
                self.command(
                    SimpleCommand(
                        inner.words,
                        inner.assignments,
                        inner.redirects,
                        inner.pipeline + 10_000 * self.depth,
                        inner.pipe_index,
                        (*command.scope, *inner.scope),
                        inner.conditional,
                        inner.bindings,
                        inner.offset,
                    ),
                    where,
                )
        finally:
            self.depth -= 1

    # -- file helpers ----------------------------------------------------------------------
    def ensure(self, fs: FileSystem, builder: str, path: str) -> FileState:
        """The tracked file at ``path``; an untracked one comes from a cover or the base image."""
        file = fs.files.get(path)
        if file is None:
            file = self.b.from_cover(self.stage, builder, path, named=False)
            if file is None:
                root = self.stage.root_location
                file = FileState(path, root, "base-image", caps_known=False, layers=[root])
            fs.files[path] = file
        return file

    def source_files(
        self, fs_builder: str, fs: FileSystem, path: str, recursive: bool
    ) -> tuple[list[tuple[str, FileState]], bool]:
        """Files a copy reads at ``path`` (a bind mount's stage, or this stage), and whether an
        untracked source has known caps (False: it may be a base-image file with caps)."""
        for mount in self.mounts:
            if path == mount.target or path.startswith(mount.target.rstrip("/") + "/"):
                rel = path[len(mount.target) :].lstrip("/")
                source_path = posixpath.join(mount.source, rel) if rel else mount.source
                if mount.kind != "bind":
                    return [], True
                if mount.from_stage is None:
                    return [], not mount.from_image  # the build context: no caps
                source = self.b.stages[mount.from_stage]
                found = source.fs[fs_builder].under(source_path, recursive=recursive)
                return found, source.scratch or BuildContext.built_by_run(source, source_path)
        found = fs.under(path, recursive=recursive)
        known = self.stage.scratch or any(c.covers(path) for c in self.stage.covers)
        return found, known

    def write(self, path: str, where: Location, what: str) -> None:
        """The file's data is (re)written: the kernel removes security.capability."""
        for fs in self.stage.fs.values():
            file = fs.files.get(path)
            if file is None:
                fs.files[path] = FileState(path, self.location, "run", layers=[self.location])
                continue
            if file.caps or not file.caps_known:
                file.events.append(
                    CapsEvent(
                        "lost",
                        where,
                        None,
                        f"{what} writes the file's data: the kernel removes security.capability",
                    )
                )
            file.caps, file.caps_known = None, True
            file.touched(self.location)

    def create(
        self,
        builder: str,
        fs: FileSystem,
        target: str,
        source: FileState | None,
        *,
        keep: bool,
        known_if_untracked: bool,
        where: Location,
        why_lost: str,
        why_kept: str,
    ) -> FileState:
        """A new file at ``target`` made from ``source`` (a copy); keep: xattrs carried."""
        new = FileState(target, self.location, "run", layers=[self.location])
        if self.nonroot and keep:
            keep, why_lost = False, WHY_NONROOT
        if source is not None:
            new.events.extend(source.events)
            if keep:
                new.caps, new.caps_known = source.caps, source.caps_known
                new.setuid, new.setgid = source.setuid, source.setgid
                if source.caps:
                    new.events.append(CapsEvent("kept", where, source.caps, why_kept))
            elif source.caps or not source.caps_known:
                new.events.append(CapsEvent("lost", where, None, why_lost))
        elif keep:
            new.caps_known = known_if_untracked
        self.b.replace(fs, new, where, f"the RUN at line {self.ins.start_line}")
        del builder
        return new

    def copy(
        self,
        sources: list[str],
        dest: str | None,
        scope: tuple[int, ...],
        where: Location,
        *,
        keep: bool,
        recursive: bool,
        into_dir: bool | None,
        why_lost: str,
        why_kept: str = WHY_KEPT_CP,
        remove_source: bool = False,
        rsync: bool = False,
    ) -> list[str]:
        """cp/install/rsync/mv semantics; returns the destination paths made."""
        if dest is None:
            return []
        dest_dir = (
            into_dir
            if into_dir is not None
            else (len(sources) > 1 or self.b.is_dir(dest, self.stage))
        )
        made: list[str] = []
        for raw in sources:
            src = self.abs(raw, scope)
            if src is None:
                if not dest_dir and len(sources) == 1 and raw and not raw.startswith("-"):
                    # `install /mnt/bin/${TARGETARCH}/web /web`: which file is unknown, that
                    # /web is written is not; what it carries is unknown only when xattrs travel
                    for builder, fs in self.stage.fs.items():
                        self.create(
                            builder,
                            fs,
                            dest,
                            None,
                            keep=keep,
                            known_if_untracked=False,
                            where=where,
                            why_lost=why_lost,
                            why_kept=why_kept,
                        )
                    made.append(dest)
                continue
            contents = raw.endswith("/.") or (rsync and raw.endswith("/"))
            target_base = (
                dest
                if (contents or not dest_dir)
                else posixpath.join(dest, posixpath.basename(src))
            )
            for builder, fs in self.stage.fs.items():
                tracked, known = self.source_files(builder, fs, src, recursive)
                found: list[tuple[str, FileState | None]] = list(tracked)
                if not found and not any(c in src for c in "*?["):
                    found = [("", None)]  # not a file we follow: a plain new file
                for rel, file in found:
                    target = posixpath.join(target_base, rel) if rel else target_base
                    if rel == "" and any(c in src for c in "*?[") and file is not None:
                        target = posixpath.join(dest, posixpath.basename(file.path))
                    if remove_source and file is not None and not self.in_mount(src):
                        fs.files.pop(file.path, None)
                        moved = file.clone(target)
                        moved.touched(self.location)
                        self.b.replace(fs, moved, where, f"mv at line {where.line}")
                    else:
                        self.create(
                            builder,
                            fs,
                            target,
                            file,
                            keep=keep,
                            known_if_untracked=known,
                            where=where,
                            why_lost=why_lost,
                            why_kept=why_kept,
                        )
                    made.append(target)
        if dest_dir:
            self.stage.dirs.add(dest)
        return list(dict.fromkeys(made))

    def in_mount(self, path: str) -> bool:
        return any(
            path == m.target or path.startswith(m.target.rstrip("/") + "/") for m in self.mounts
        )

    def targets(self, fs: FileSystem, paths: Iterable[str], recursive: bool) -> list[FileState]:
        found: list[FileState] = []
        for path in paths:
            found.extend(file for _, file in fs.under(path, recursive=recursive))
        return list({id(f): f for f in found}.values())

    def maybe_setcap(self, region: CapsRegion, tracked: set[str] | None) -> None:
        """A command may have given file caps to files of ``region`` it does not name: those
        the build wrote so far (``tracked``: only these paths; None: all) and those met later
        (covers) have unknown capabilities.  A RUN as a non-root USER cannot set any."""
        if self.nonroot:
            return
        self.stage.maybe_caps.append(region)
        for fs in self.stage.fs.values():
            for path, file in fs.files.items():
                if region.covers(path) and (tracked is None or path in tracked):
                    file.caps, file.caps_known = None, False

    def run_template(
        self,
        template: list[str],
        paths: list[str],
        command: SimpleCommand,
        where: Location,
        *,
        batch: bool,
        replace: str = "{}",
    ) -> None:
        """Run a ``find -exec`` / ``xargs`` command template on ``paths``."""
        if not template or not paths:
            return
        runs = [paths] if batch else [[p] for p in paths]
        for group in runs:
            argv: list[str] = []
            for word in template:
                if word == replace:
                    argv.extend(group)
                elif replace in word:
                    argv.append(word.replace(replace, group[0]))
                else:
                    argv.append(word)
            if not any(replace in w for w in template):
                argv.extend(group)  # xargs without -I: the inputs are appended
            self.command(
                SimpleCommand(
                    tuple(_quote(a) for a in argv),
                    pipeline=command.pipeline + 20_000,
                    scope=command.scope,
                    conditional=command.conditional,
                ),
                where,
            )

    def selected(self, plan: _FindPlan) -> tuple[list[str], bool]:
        """The tracked files a ``find`` selects, and whether that list is certain."""
        paths: list[str] = []
        for fs in self.stage.fs.values():
            for path in fs.files:
                if path not in paths and plan.matches(path):
                    paths.append(path)
        return sorted(paths), plan.exact

    def edit_selected(
        self, plan: _FindPlan, template: list[str], command: SimpleCommand, where: Location
    ) -> bool:
        """When the selection is not certain, what the template may do; True: handled."""
        name = template[0].rsplit("/", 1)[-1] if template else ""
        capping = name == "setcap" or (name in SH_LIKE and "setcap" in " ".join(template))
        if capping:
            for region in plan.regions(where):
                self.maybe_setcap(region, set())  # untracked files find may select
        if plan.exact:
            return False
        if name in _HARMLESS or name == "getcap":
            return True
        for region in plan.regions(where):  # may have selected any tracked file under it
            tracked = {p for fs in self.stage.fs.values() for p in fs.files if region.covers(p)}
            if capping:
                self.maybe_setcap(region, tracked)
            else:
                for fs in self.stage.fs.values():
                    for path in tracked:
                        if path in fs.files and fs.files[path].caps:
                            fs.files[path].caps_known = False
                            fs.files[path].caps = None
        del command
        return True

    def find(self, args: list[str], command: SimpleCommand, where: Location) -> None:
        plan = _find_plan(args, lambda p: self.abs(p, command.scope))
        for template, batch in plan.execs:
            if self.edit_selected(plan, template, command, where):
                continue
            paths, _ = self.selected(plan)
            self.run_template(template, paths, command, where, batch=batch)

    def xargs(
        self, args: list[str], command: SimpleCommand, where: Location, upstream: list[str] | None
    ) -> None:
        """``… | xargs [-0] [-n 1] [-I R] CMD …``: CMD on the names the left side prints."""
        options, template = _xargs_split(args)
        template = _strip_prefixes(template) or ["echo"]
        name = template[0].rsplit("/", 1)[-1]
        if name in _HARMLESS or name == "getcap":
            return
        replace = options.get("replace")
        batch = replace is None and options.get("max") not in ("1",)
        source = upstream[0].rsplit("/", 1)[-1] if upstream else ""
        if upstream is not None and source == "find" and "file" not in options:
            plan = _find_plan(upstream[1:], lambda p: self.abs(p, command.scope))
            plan.execs = [(template, batch)]
            if self.edit_selected(plan, template, command, where):
                return
            paths, _ = self.selected(plan)
        elif upstream is not None and source in ("echo", "printf") and "file" not in options:
            words = [w for w in upstream[1:] if not w.startswith("-")]
            if source == "printf" and words:
                words = words[1:] if "%" in words[0] else words
            items = [i for w in words for i in w.replace("\\n", " ").split()]
            resolved = [self.abs(i, command.scope) for i in items]
            if any(r is None for r in resolved) or any("$?" in i for i in items):
                self.unknown_inputs(template, command, where)
                return
            paths = [r for r in resolved if r is not None]
        else:
            self.unknown_inputs(template, command, where)
            return
        self.run_template(template, paths, command, where, batch=batch, replace=replace or "{}")

    def unknown_inputs(self, template: list[str], command: SimpleCommand, where: Location) -> None:
        """xargs on names unroot cannot know: a setcap may have capped any file so far, another
        edit may have removed capabilities; the template still runs (``xargs apt-get install``)."""
        name = template[0].rsplit("/", 1)[-1]
        if name == "setcap" or (name in SH_LIKE and "setcap" in " ".join(template)):
            self.maybe_setcap(CapsRegion("/", None, where), None)
            return
        if name in self.handlers:
            for fs in self.stage.fs.values():
                for file in fs.files.values():
                    if file.caps:
                        file.caps, file.caps_known = None, False
        inner = SimpleCommand(
            tuple(_quote(a) for a in template),
            pipeline=command.pipeline + 20_000,
            scope=command.scope,
            conditional=command.conditional,
        )
        self.command(inner, where)

    # -- the commands ----------------------------------------------------------------------
    def setcap(self, args: list[str], command: SimpleCommand, where: Location) -> None:
        verify, rootid = False, None
        i = 0
        while i < len(args) and args[i].startswith("-") and args[i] not in ("-", "-r"):
            if args[i] == "-v":
                verify = True
            elif args[i] == "-n" and i + 1 < len(args):
                rootid = int(args[i + 1]) if NUMERIC.fullmatch(args[i + 1]) else None
                i += 1
            i += 1
        rest = args[i:]
        if verify or self.nonroot:
            return
        for spec, target in zip(rest[0::2], rest[1::2], strict=False):
            path = self.abs(target, command.scope)
            if path is None or target.startswith("$?"):
                # a name unroot cannot resolve (an unset ARG, $(…), a loop over one): any file
                # the build wrote so far may now carry file capabilities
                self.maybe_setcap(CapsRegion("/", None, where), None)
                return
            if spec.startswith(("$?", "-")) and spec != "-r":
                self.maybe_setcap(CapsRegion(path, None, where), {path})  # unknown caps text
                return
            caps: FileCaps | None
            if spec == "-r":
                caps = None
            else:
                try:
                    caps = FileCaps.from_text(spec)
                except UnrootError:
                    return  # setcap exits non-zero: the RUN fails here
                if rootid:
                    caps = FileCaps(caps.permitted, caps.inheritable, caps.effective, 3, rootid)
            if any(c in path for c in "*?["):
                self.maybe_setcap(_glob_region(path, where), set())  # files it does not track
            for builder, fs in self.stage.fs.items():
                matches = (
                    self.targets(fs, [path], False)
                    if any(c in path for c in "*?[")
                    else [self.ensure(fs, builder, path)]
                )
                for file in matches:
                    file.touched(self.location)
                    if caps is None:
                        file.events.append(CapsEvent("removed", where))
                    else:
                        file.events.append(CapsEvent("set", where, caps))
                    file.caps, file.caps_known = caps, True

    def chown(self, args: list[str], command: SimpleCommand, where: Location) -> None:
        self._chown(args, command, where, group_only=False)

    def chgrp(self, args: list[str], command: SimpleCommand, where: Location) -> None:
        self._chown(args, command, where, group_only=True)

    def _chown(
        self, args: list[str], command: SimpleCommand, where: Location, *, group_only: bool
    ) -> None:
        options, operands = split_opts(args, frozenset(), frozenset({"from", "reference"}))
        if "--reference" not in options:
            if not operands:
                return
            spec, operands = operands[0], operands[1:]
            owner = (":" + spec) if group_only else spec
        else:
            owner = None
        recursive = "-R" in options or "--recursive" in options
        paths = [p for p in (self.abs(o, command.scope) for o in operands) if p]
        for fs in self.stage.fs.values():
            for file in self.targets(fs, paths, recursive):
                if file.caps or not file.caps_known:
                    file.events.append(CapsEvent("lost", where, None, WHY_CHOWN))
                file.caps, file.caps_known = None, True
                if owner and not owner.startswith("$?"):
                    file.owner = owner
                file.touched(self.location)

    def chmod(self, args: list[str], command: SimpleCommand, where: Location) -> None:
        mode_first = [a for a in args if re.fullmatch(r"-[rwxXst]+", a)]
        cleaned = [a for a in args if a not in mode_first]
        options, operands = split_opts(cleaned, frozenset(), frozenset({"reference"}))
        if mode_first:
            mode = mode_first[0]
        elif operands and "--reference" not in options:
            mode, operands = operands[0], operands[1:]
        else:
            mode = ""
        recursive = "-R" in options or "--recursive" in options
        paths = [p for p in (self.abs(o, command.scope) for o in operands) if p]
        del where
        for fs in self.stage.fs.values():
            for file in self.targets(fs, paths, recursive):
                if mode:
                    file.setuid, file.setgid = mode_bits(mode, file.setuid, file.setgid)
                file.touched(self.location)

    def touch(self, args: list[str], command: SimpleCommand, where: Location) -> None:
        _, operands = split_opts(args, frozenset("drt"), frozenset({"reference", "date"}))
        paths = [p for p in (self.abs(o, command.scope) for o in operands) if p]
        del where
        for fs in self.stage.fs.values():
            for file in self.targets(fs, paths, False):
                file.touched(self.location)


class _FindPlan:
    """What a ``find`` command selects, as far as it can be known statically."""

    def __init__(self) -> None:
        self.starts: list[str] = []
        self.names: list[tuple[str, bool]] = []  # (glob, case-insensitive)
        self.paths: list[str] = []
        self.types: set[str] = set()
        self.min_depth = 0
        self.max_depth: int | None = None
        self.exact = True  # every test is one unroot evaluates (or none)
        self.execs: list[tuple[list[str], bool]] = []  # (command template, batched with +)

    def matches(self, path: str) -> bool:
        for start in self.starts:
            if path != start and not path.startswith(start.rstrip("/") + "/"):
                continue
            rel = path[len(start.rstrip("/")) :].strip("/")
            depth = rel.count("/") + 1 if rel else 0
            if depth < self.min_depth or (self.max_depth is not None and depth > self.max_depth):
                continue
            base = posixpath.basename(path)
            if self.types and "f" not in self.types:
                continue
            if not all(
                fnmatch.fnmatchcase(base.lower() if fold else base, glob.lower() if fold else glob)
                for glob, fold in self.names
            ):
                continue
            if not all(fnmatch.fnmatchcase(path, glob) for glob in self.paths):
                continue
            return True
        return False

    def regions(self, where: Location) -> list[CapsRegion]:
        """Where the files it may select are (every start, with its -name when there is one)."""
        name = self.names[0][0] if len(self.names) == 1 and not self.names[0][1] else None
        if self.types and "f" not in self.types:
            return []
        return [CapsRegion(start, name, where) for start in self.starts or ["/"]]


_FIND_NO_ARG = frozenset(
    {"-print", "-print0", "-xdev", "-mount", "-follow", "-depth", "-a", "-and", "-true",
     "-noleaf", "-ignore_readdir_race", "-nowarn", "-warn", "-daystart", "-ls"}
)  # fmt: skip
_FIND_EXEC = frozenset({"-exec", "-execdir", "-ok", "-okdir"})


def _find_plan(args: list[str], absolute: Callable[[str], str | None]) -> _FindPlan:
    """``find [-H|-L|-P] START… EXPRESSION``: the starting points, the tests, the -exec's."""
    plan = _FindPlan()
    i = 0
    while i < len(args) and args[i] in ("-H", "-L", "-P"):
        i += 1
    while i < len(args) and not args[i].startswith(("-", "(", "!", ")")):
        start = absolute(args[i])
        if start is None or "$?" in args[i] or any(c in args[i] for c in "*?["):
            plan.exact = False
            plan.starts.append("/")
        else:
            plan.starts.append(start)
        i += 1
    if not plan.starts:
        plan.starts.append(absolute(".") or "/")
    while i < len(args):
        arg = args[i]
        value = args[i + 1] if i + 1 < len(args) else ""
        if arg in _FIND_EXEC:
            j = i + 1
            template: list[str] = []
            batch = False
            while j < len(args):
                if args[j] == ";":
                    break
                if args[j] == "+" and template and template[-1] == "{}":
                    batch = True
                    break
                template.append(args[j])
                j += 1
            if arg in ("-exec", "-execdir"):  # -ok asks on a terminal: a build has none
                plan.execs.append((template, batch))
            i = j + 1
            continue
        if arg in ("-name", "-iname"):
            if "$?" in value:
                plan.exact = False
            plan.names.append((value, arg == "-iname"))
            i += 2
        elif arg in ("-path", "-wholename"):
            plan.paths.append(value)
            i += 2
        elif arg == "-type":
            plan.types.update(value.split(","))
            i += 2
        elif arg in ("-maxdepth", "-mindepth") and value.isdigit():
            if arg == "-maxdepth":
                plan.max_depth = int(value)
            else:
                plan.min_depth = int(value)
            i += 2
        elif arg in _FIND_NO_ARG:
            i += 1
        else:  # -o, !, ( ), -perm, -newer, -size, -user, -regex, …: not evaluated
            plan.exact = False
            i += 2 if value and not value.startswith(("-", "(", ")", "!")) else 1
    return plan


def _glob_region(path: str, where: Location) -> CapsRegion:
    """The region a glob names: its directory part up to the first glob character."""
    directory, base = posixpath.split(path)
    if any(c in directory for c in "*?["):
        cut = min(directory.find(c) for c in "*?[" if c in directory)
        return CapsRegion(posixpath.dirname(directory[:cut]) or "/", None, where)
    return CapsRegion(directory or "/", base, where)


_XARGS_VALUE = frozenset("nLPsdIEa")


def _xargs_split(args: list[str]) -> tuple[dict[str, str], list[str]]:
    """xargs options (``max``: -n/-L, ``replace``: -I/-i, ``file``: -a) and the template."""
    options: dict[str, str] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            i += 1
            break
        if not arg.startswith("-") or arg == "-":
            break
        if arg.startswith("--"):
            name, _, value = arg[2:].partition("=")
            if name in ("max-args", "max-lines"):
                options["max"] = value
            elif name == "replace":
                options["replace"] = value or "{}"
            elif name == "arg-file":
                options["file"] = value
            i += 1
            continue
        letter, value = arg[1], arg[2:]
        if letter == "i":
            options["replace"] = value or "{}"
        elif letter in _XARGS_VALUE:
            if not value and i + 1 < len(args):
                value = args[i + 1]
                i += 1
            key = {"n": "max", "L": "max", "I": "replace", "a": "file"}.get(letter)
            if key:
                options[key] = value
        i += 1
    return options, args[i:]


_HARMLESS = frozenset(
    {
        "echo",
        "printf",
        "set",
        "true",
        "false",
        "test",
        "[",
        ":",
        "id",
        "ls",
        "cat",
        "sleep",
        "getcap",
        "which",
        "whoami",
        "exit",
        "ldconfig",
        "update-ca-certificates",
        "pwd",
        "command",
        "type",
        "hash",
        "umask",
        "ulimit",
        "trap",
        "unset",
        "readlink",
        "stat",
        "grep",
        "head",
        "tail",
        "wc",
        "sort",
        "uniq",
        "file",
        "du",
        "df",
        "env",
        "locale-gen",
        "update-alternatives",
        "sync",
        "source",
        ".",
        "shift",
        "wait",
        "date",
        "uname",
        "getent",
        "rmdir",
        "passwd",
        "chpasswd",
    }
)


def _strip_prefixes(argv: list[str]) -> list[str]:
    """Drop wrappers that run the real command: sudo, exec, env, nice, busybox applets …"""
    for _ in range(8):
        if not argv:
            return argv
        name = argv[0].rsplit("/", 1)[-1]
        if (
            name in ("exec", "nohup", "time")
            or (name == "command" and len(argv) > 1 and not argv[1].startswith("-"))
            or (name == "busybox" and len(argv) > 1 and argv[1] not in SH_LIKE)
        ):
            argv = argv[1:]
        elif name == "sudo":
            rest = argv[1:]
            while rest and rest[0].startswith("-"):
                rest = rest[2:] if rest[0] in ("-u", "-g", "-C", "-D") else rest[1:]
            argv = rest
        elif name == "env":
            rest = argv[1:]
            while rest and (rest[0].startswith("-") or "=" in rest[0]):
                rest = rest[2:] if rest[0] in ("-u", "-C") else rest[1:]
            argv = rest
        elif name in ("nice", "ionice", "stdbuf"):
            rest = argv[1:]
            while rest and rest[0].startswith("-"):
                rest = rest[2:] if rest[0] in ("-n", "-c") else rest[1:]
            argv = rest
        else:
            return argv
    return argv


def names_xattr(option: str) -> bool:
    """``--preserve=LIST``/``--no-preserve=LIST`` names xattrs (``xattr`` or ``all``)."""
    return bool({"all", "xattr"} & set(option.split("=", 1)[1].split(",")))


def _known_nonroot(user: UserFact | None) -> bool:
    """The RUN certainly runs as a non-root user (an unresolved ``$VAR`` is not certain)."""
    if user is None:
        return False
    if user.uid is not None:
        return user.uid != 0
    name = user.text.split(":", 1)[0].strip()
    return bool(name) and "$" not in name and name != "root"


def _quote(word: str) -> str:
    """A literal word as a shell word (so expansion leaves it as it is)."""
    return "'" + word.replace("'", "'\\''") + "'"
