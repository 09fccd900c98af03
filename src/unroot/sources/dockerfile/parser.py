"""Dockerfile → :class:`~unroot.sources.parsed.DockerfileFacts`: stages, users, ports,
ENTRYPOINT/CMD, and what the build does to the ``security.capability`` xattr of the files that
matter.

Reading the file
    Instructions, line numbers, flags, exec/shell form, heredocs, the ``# escape=`` directive and
    line continuations come from BuildKit's own parser (the ``dockerfile`` package, see
    :mod:`.buildkit`).  When it rejects the file (it names no line), each instruction is
    re-parsed on its own so the problem can be pinned to ``file:line`` and the rest still
    analysed.  ARG/ENV substitution follows BuildKit's rules
    (:func:`unroot.sources.shell.expand_word`) in FROM (global ARGs), USER, WORKDIR, COPY/ADD,
    EXPOSE and inside RUN; ENTRYPOINT/CMD are kept as written (Docker does not substitute them;
    a shell form is ``SHELL + [text]``, by default ``("/bin/sh", "-c", text)``).  RUN shell
    commands go through a real shell parser (:mod:`unroot.sources.shell`), ``sh -c '…'`` strings
    one level deeper.

The files of interest, per builder
    Every file a ``setcap`` touches, everything copied from or over such a file, every file made
    setuid/setgid, and every file ENTRYPOINT/CMD execs (through wrappers,
    :mod:`unroot.sources.exec_argv`) when the Dockerfile wrote it.  ``Stage.files`` holds them
    for ``"classic"`` and ``"buildkit"``; ``ImageFile.events`` is the history of the xattr
    (``set``, ``removed``, ``lost`` with the reason, ``kept`` where a copy carried it);
    ``layers_with_content`` every layer that stores the whole file: a metadata or data change in
    a later instruction than the one that created the file stores it again (the layer diff
    holds whole files; overlayfs copies the file up), so ``COPY`` then ``RUN setcap`` stores the
    binary twice while ``install`` + ``setcap`` in one ``RUN`` stores it once.  The simulation
    lives in :mod:`.build` (files, stages, and "covers": paths written without naming each
    file — a directory COPY, a package install, a command unroot does not model) and
    :mod:`.run` (what each RUN command does).

What keeps and what loses the xattr
    Kernel: any chown/chgrp (even to the same owner) and any write of the data remove it;
    chmod, touch, rename keep it.  Tools, verified with GNU coreutils 9.1, GNU tar 1.34 and
    rsync 3.x by ``tests/lint/test_dockerfile_tools.py::test_tool_xattr_behaviour`` (runs the
    real tools on a setcap'd file as root):

    ==========================================  =====================================
    ``cp``, ``cp -p``, ``cp --preserve=mode…``   lost (``-p`` = mode,ownership,timestamps)
    ``cp -a``/``--archive``/``--preserve=all``   kept (``--preserve=xattr`` too)
    ``install`` (any options)                    lost
    ``mv`` (same filesystem), ``ln`` (hard)      kept (same inode / rename)
    ``tar`` create without ``--xattrs``          lost (not stored)
    ``tar`` extract without ``--xattrs-include`` lost even as root (default: user.* only)
    ``tar --xattrs`` + ``--xattrs-include='*'``  kept (``security.*`` also works)
    ``rsync -a`` / ``-aA``                       lost;  ``-X``/``--xattrs``: kept
    ``chown``/``chgrp`` (same owner too)         lost;  ``chmod``/``touch``: kept
    ``sed -i``, ``strip``, ``> file``            lost
    ==========================================  =====================================

    A ``RUN`` as a non-root USER cannot write the xattr (CAP_SETFCAP): its ``setcap`` fails and
    ``cp -a``/``tar``/``rsync -X`` drop it.

Builders (``COPY``/``ADD``)
    * From the build context: lost under both.  BuildKit's context transfer
      (``tonistiigi/fsutil`` ``diskwriter_unix.go`` ``rewriteMetadata``) sets the xattrs and
      *then* chowns the file, which clears security.capability — moby/buildkit#2250 (open);
      the classic builder does not carry xattrs from the context (moby/moby#20435).
    * ``COPY --from=<stage>``: BuildKit keeps it — the FileOp copy
      (``moby/buildkit`` ``solver/llbsolver/file/backend.go`` ``docopy`` → ``tonistiigi/fsutil``
      ``copy/copy.go`` ``copy()``) calls ``copyFileInfo`` (chown, chmod, utimes) first and
      ``copyXAttrs`` after it, so even ``--chown`` keeps the capability.  The classic builder
      loses it (observed on Docker 20.10; moby/moby#38132).  ``COPY --from=<image>``: unknown
      under BuildKit (``caps_known=False``), lost under classic.
    * ``ADD`` of a URL makes a new file; of a local archive, files whose names are unknown and
      whose capabilities are unknown: both builders restore a member's
      ``SCHILY.xattr.security.capability`` record (``tar --xattrs``), also with ``--chown``,
      which does not reach extracted members (observed on Docker 20.10.24, both builders; a
      ``LIBARCHIVE.xattr`` record is not restored — moby's ``pkg/archive`` reads the SCHILY
      records Go's ``archive/tar`` exposes).
    * ``COPY --from --chmod``/``--chown``/``--link`` under BuildKit keep it (observed for
      ``--chmod`` and ``--chown`` + ``--chmod``; ``--link`` copies with the same FileOp onto an
      empty layer).  ``COPY --parents`` (dockerfile 1.7 labs, stable since 1.20) keeps the source
      path below the destination (``/./`` pivots it).
    * ``RUN --mount=type=bind,from=<stage>`` exposes the stage's files as they are; what the
      RUN does with them (``install``, ``cp -a``) decides; a bind mount of the build context
      carries no capabilities (observed: a context file with host file caps is seen without).
      The classic builder rejects ``--mount`` (:func:`classic_refusals`, reported with
      ``builder="classic"``); its column models the same commands.

setcap without naming the file
    ``find DIR … -exec|-execdir setcap … {} \\;|+``, ``find … -print0 | xargs -0 setcap …``,
    ``echo PATHS | xargs …``, ``for f in …; do setcap … "$f"; done`` and globs: the files the
    build tracks are matched against the start directories and the tests unroot evaluates
    (``-name``, ``-iname``, ``-path``, ``-type``, ``-maxdepth``, ``-mindepth``).  Files it does
    not track (a directory COPY, a package) in the region (the start directory, with its
    ``-name`` glob) get *unknown* capabilities, as do all files when the selection cannot be
    known (``-perm``, ``-o``, ``ls | xargs``, ``$(…)``, an unset variable): the rules that need
    them stay silent.  ``setcap CAPS a b`` sets ``a`` and fails on ``b`` (libcap's setcap takes
    ``caps file`` pairs), so ``-exec setcap … {} +`` over two files fails the RUN.  ``getcap``
    is not an edit.

ONBUILD
    A trigger does not run in its own stage.  A later stage ``FROM`` that stage runs its
    triggers first (observed on Docker 20.10.24 with both builders; BuildKit's
    ``dockerfile2llb`` adds the base stage's ``OnbuildCommand`` instructions; moby/buildkit#5490
    fixed the dockerfile 1.11.0 regression), and a stage ``FROM`` that child does not run them again
    (moby/buildkit#5578).  The triggers of an external base image are not visible.

Users
    ``USER`` text is kept as written; uid/gid are derived from numbers, ``root`` (0), ``nobody``
    / ``nogroup`` (65534: the Debian and Alpine convention — RHEL before Fedora 28 used 99), and
    ``useradd -u``/``adduser -u``/``groupadd -g``/``addgroup -g`` in earlier RUNs of the stage
    chain.  ``Stage.user`` is the effective USER: the stage's last, else the one inherited
    through ``FROM <stage>`` (None: no USER in the chain — the base image decides, usually
    root).  ``Stage.exposed`` holds EXPOSE ports (``source="expose"``) and the ports the
    ENTRYPOINT/CMD flags name (``source="command-line"``, :mod:`unroot.sources.ports`).

Never raises: unparseable parts become ``problems`` naming ``file:line``.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Sequence

from unroot.sources._shared import heredoc_script, is_script_name
from unroot.sources.dockerfile.build import (
    NUMERIC,
    SH_LIKE,
    WHY_BUILDKIT_FROM,
    WHY_CLASSIC_FROM,
    WHY_CONTEXT,
    BuildContext,
    Cover,
    FileState,
    Mount,
    StageState,
    mode_bits,
)
from unroot.sources.dockerfile.buildkit import (
    BuildKitParseError,
    RawHeredoc,
    RawInstruction,
    known_instructions,
    parse_instructions,
    safe_text,
)
from unroot.sources.dockerfile.classic import classic_refusals
from unroot.sources.dockerfile.tools import RunTools
from unroot.sources.exec_argv import exec_chain_argv
from unroot.sources.parsed import (
    CapsEvent,
    DockerfileFacts,
    ImageFile,
    Location,
    ParsedFile,
    PortFact,
    Stage,
    UserFact,
    path_dirs,
)
from unroot.sources.ports import ports_from_argv
from unroot.sources.shell import Env, expand_word, shell_c_script

NOBODY = 65534
MAX_EXPOSE_RANGE = 1024
_ARCHIVE = re.compile(r"\.(tar|tar\.gz|tgz|tar\.bz2|tbz2?|tar\.xz|txz|tar\.zst|tzst)$", re.I)
_EXPOSE = re.compile(r"(\d+)(?:-(\d+))?(?:/(tcp|udp|sctp))?", re.I)
_HEREDOC_ONLY = re.compile(r"""\s*<<-?\s*(["']?)([^\s"']+)\1\s*""")


def parse_dockerfile(text: str, path: str, *, builder: str | None = None) -> ParsedFile:
    """Parse a Dockerfile/Containerfile; never raises (problems carry ``file:line``).

    ``builder="classic"``: what the classic builder refuses (``RUN --mount``, ``--chmod``,
    here-documents, flags it does not know) is a problem too (:func:`classic_refusals`).
    """
    try:
        return _parse(text, path, builder)
    except Exception as exc:  # a bug must not take the lint run down: it becomes a problem
        message = f"internal error while analysing this Dockerfile: {type(exc).__name__}: {exc}"
        return ParsedFile(path, "dockerfile", problems=((Location(path, 1), message[:300]),))


# -- reading ---------------------------------------------------------------------------------
def _parse(text: str, path: str, builder_name: str | None = None) -> ParsedFile:
    problems: list[tuple[Location, str]] = []
    too_long: set[int] = set()
    for number, line in enumerate(text.split("\n"), start=1):
        if len(line) >= MAX_LINE and len(line.encode("utf-8", "replace")) >= MAX_LINE:
            too_long.add(number)
            problems.append((Location(path, number), _too_long(line)))
        if "\x00" in line:
            problems.append((Location(path, number), "NUL character in a Dockerfile"))
        if any("\ud800" <= ch <= "\udfff" for ch in line):
            problems.append((Location(path, number), "invalid UTF-8 in a Dockerfile"))
    clean = safe_text(text)
    escape, directive_problems = _directives(clean)
    problems.extend((Location(path, line), message) for line, message in directive_problems)
    try:
        instructions: Sequence[RawInstruction] = parse_instructions(clean)
    except BuildKitParseError as exc:
        instructions, chunk_problems = _parse_in_chunks(clean, escape, str(exc))
        problems.extend(
            (Location(path, line), message)
            for line, message in chunk_problems
            if not too_long or (line not in too_long and "max allowed size" not in message)
        )
    builder = _Builder(path, clean, escape, problems)
    stages = builder.run(instructions)
    if builder_name == "classic":
        refused = classic_refusals(instructions, clean, builder.known)
        problems.extend((Location(path, line), message) for line, message in refused)
    if not instructions and not too_long and not any("instruction" in m for _, m in problems):
        problems.append((Location(path, 1), "the Dockerfile has no instructions"))
    return ParsedFile(
        path=path,
        kind="dockerfile",
        dockerfile=DockerfileFacts(path, stages) if stages else None,
        problems=tuple(sorted(problems, key=lambda p: (p[0].line, p[0].column, p[1]))),
        statements=tuple((i.start_line, i.end_line) for i in instructions),
    )


#: BuildKit's parser reads a Dockerfile with Go's bufio.Scanner and its default buffer
#: (bufio.MaxScanTokenSize, 64 KiB): a line and its newline must fit in it
MAX_LINE = 65536


def _too_long(line: str) -> str:
    size = len(line.encode("utf-8", "replace"))
    return (
        f"a line of {size} bytes: Docker's Dockerfile parser refuses a line longer than "
        f'{MAX_LINE - 1} bytes ("dockerfile line greater than max allowed size of '
        f'{MAX_LINE - 1}"), so docker build fails'
    )


def _directives(text: str) -> tuple[str, list[tuple[int, str]]]:
    """The escape character from the parser directives at the top of the file."""
    escape = "\\"
    problems: list[tuple[int, str]] = []
    for number, line in enumerate(text.lstrip("\ufeff").split("\n"), start=1):
        m = re.fullmatch(r"\s*#\s*([A-Za-z][A-Za-z0-9_]*)\s*=\s*(.*?)\s*", line)
        if m is None:
            break
        if m.group(1).lower() == "escape":
            if m.group(2) in ("\\", "`"):
                escape = m.group(2)
            else:
                problems.append((number, f"invalid escape token {m.group(2)!r} (use \\ or `)"))
    return escape, problems


_HEREDOC_START = re.compile(r"""<<-?\s*(["']?)([A-Za-z0-9_.-]+)\1""")


def _logical_spans(text: str, escape: str) -> list[tuple[int, int]]:
    """(first, last) line of each instruction, read the way BuildKit's parser does."""
    lines = text.split("\n")
    spans: list[tuple[int, int]] = []
    i = 0
    in_directives = True
    while i < len(lines):
        line = lines[i].strip()
        if in_directives and re.fullmatch(r"#\s*[A-Za-z][A-Za-z0-9_]*\s*=.*", line):
            i += 1
            continue
        in_directives = False
        if not line or line.startswith("#"):
            i += 1
            continue
        first = i
        keyword = line.split(None, 1)[0].upper()
        logical = [line]
        while lines[i].rstrip().endswith(escape) and i + 1 < len(lines):
            i += 1
            nxt = lines[i].strip()
            if nxt.startswith("#"):
                continue
            logical.append(nxt)
        if keyword in ("RUN", "COPY", "ADD") or (keyword == "ONBUILD" and "<<" in line):
            for m in _HEREDOC_START.finditer(" ".join(logical)):
                strip_tabs = m.group(0).startswith("<<-")
                while i + 1 < len(lines):
                    i += 1
                    body = lines[i].lstrip("\t") if strip_tabs else lines[i]
                    if body.rstrip("\r") == m.group(2):
                        break
        spans.append((first + 1, i + 1))
        i += 1
    return spans


def _parse_in_chunks(
    text: str, escape: str, whole_error: str
) -> tuple[list[RawInstruction], list[tuple[int, str]]]:
    """Parse each instruction on its own, to name the line BuildKit's parser objects to."""
    lines = text.split("\n")
    instructions: list[RawInstruction] = []
    problems: list[tuple[int, str]] = []
    header = f"# escape={escape}\n" if escape != "\\" else ""
    for first, last in _logical_spans(text, escape):
        pad = "\n" * (first - 1 - header.count("\n"))
        chunk = header + pad + "\n".join(lines[first - 1 : last]) + "\n"
        try:
            instructions.extend(parse_instructions(chunk))
        except BuildKitParseError as exc:
            problems.append((first, f"Dockerfile parse error: {exc}"))
    if not problems:
        problems.append((1, f"Dockerfile parse error: {whole_error}"))
    return instructions, problems


class _Builder(BuildContext):
    """Walks the instructions in order, stage by stage."""

    def __init__(self, path: str, text: str, escape: str, problems: list[tuple[Location, str]]):
        super().__init__(path, text)
        self.escape = escape
        self.problems = problems
        self.meta_args: dict[str, str | None] = {}
        self.known = known_instructions()

    def problem(self, line: int, message: str) -> None:
        self.problems.append((self.loc(line), message))

    def expand(self, raw: str, env: Env) -> tuple[str, bool]:
        result = expand_word(raw, env, self.escape)
        return result.text, result.complete

    # -- the walk --------------------------------------------------------------------------
    def run(self, instructions: Sequence[RawInstruction]) -> tuple[Stage, ...]:
        for instruction in instructions:
            if not instruction.cmd:
                continue
            if instruction.cmd not in self.known:
                self.problem(instruction.start_line, f"unknown instruction {instruction.cmd}")
                continue
            handler = getattr(self, "do_" + instruction.cmd.lower(), None)
            if instruction.cmd == "FROM":
                self.do_from(instruction)
            elif not self.stages:
                if instruction.cmd == "ARG":
                    self.do_meta_arg(instruction)
                else:
                    self.problem(
                        instruction.start_line,
                        f"{instruction.cmd} before the first FROM (only ARG may come before it)",
                    )
            elif handler is not None:
                handler(instruction, self.stages[-1])
        return tuple(self.freeze(stage) for stage in self.stages)

    def do_meta_arg(self, ins: RawInstruction) -> None:
        for item in ins.value:
            name, eq, default = item.partition("=")
            if not name:
                self.problem(ins.start_line, "ARG needs a name")
                continue
            if eq:
                value, complete = self.expand(default, self.meta_args)
                self.meta_args[name] = value if complete else None
            else:
                self.meta_args.setdefault(name, None)
        if not ins.value:
            self.problem(ins.start_line, "ARG requires at least one argument")

    def do_from(self, ins: RawInstruction) -> None:
        location = self.loc(ins.start_line)
        words = list(ins.value)
        name: str | None = None
        if len(words) == 3 and words[1].upper() == "AS":
            name = words[2].lower()
        elif len(words) != 1:
            self.problem(ins.start_line, "FROM takes an image and an optional 'AS name'")
            if not words:
                words = ["scratch"]
        image, _ = self.expand(words[0], self.meta_args)
        named = self.named.get(image.lower())
        base_stage = named[1] if named is not None else None
        stage = StageState(
            index=len(self.stages),
            name=name,
            base=image,
            base_stage=base_stage,
            location=location,
            root_location=location,
            scratch=image.lower() == "scratch",
        )
        if base_stage is not None:
            base = self.stages[base_stage]
            stage.inherit(base)
            stage.root_location, stage.scratch = base.root_location, base.scratch
        self.stages.append(stage)
        if name:
            self.named[name] = (self.named.get(name, (stage.index, 0))[0], stage.index)
        if base_stage is not None:
            for trigger in self.stages[base_stage].onbuild:
                self.dispatch(trigger, stage)

    def do_onbuild(self, ins: RawInstruction, stage: StageState) -> None:
        """ONBUILD runs in a build FROM this stage, not in this one: kept for such a stage."""
        trigger = self.trigger(ins)
        if trigger is not None and trigger.cmd not in ("ONBUILD", "FROM", "MAINTAINER"):
            stage.onbuild.append(trigger)

    def trigger(self, ins: RawInstruction) -> RawInstruction | None:
        """The instruction after ``ONBUILD``, parsed in place (its flags and here-documents)."""
        body = self.lines[ins.start_line - 1 : ins.end_line]
        if not body:
            return None
        body[0] = re.sub(r"^\s*onbuild\s+", "", body[0], flags=re.I)
        header = f"# escape={self.escape}\n" if self.escape != "\\" else ""
        pad = "\n" * max(0, ins.start_line - 1 - header.count("\n"))
        try:
            parsed = parse_instructions(header + pad + "\n".join(body) + "\n")
        except BuildKitParseError:
            return None
        return parsed[0] if len(parsed) == 1 else None

    def dispatch(self, ins: RawInstruction, stage: StageState) -> None:
        handler = getattr(self, "do_" + ins.cmd.lower(), None)
        if handler is not None and ins.cmd not in ("FROM", "ONBUILD"):
            handler(ins, stage)

    def do_arg(self, ins: RawInstruction, stage: StageState) -> None:
        if not ins.value:
            self.problem(ins.start_line, "ARG requires at least one argument")
        for item in ins.value:
            name, eq, default = item.partition("=")
            if not name:
                continue
            if eq:
                value, complete = self.expand(default, stage.vars())
                stage.args[name] = value if complete else None
            else:
                stage.args[name] = self.meta_args.get(name)

    def do_env(self, ins: RawInstruction, stage: StageState) -> None:
        values = list(ins.value)
        if len(values) < 2:
            self.problem(ins.start_line, "ENV requires a name and a value")
            return
        for name, raw in zip(values[0::2], values[1::2], strict=False):
            value, complete = self.expand(raw, stage.vars())
            stage.env[name] = value if complete else None

    def do_workdir(self, ins: RawInstruction, stage: StageState) -> None:
        if not ins.value:
            self.problem(ins.start_line, "WORKDIR requires an argument")
            return
        value, complete = self.expand(" ".join(ins.value), stage.vars())
        if complete:
            stage.workdir = posixpath.normpath(posixpath.join(stage.workdir, value))
            stage.dirs.add(stage.workdir)

    def do_shell(self, ins: RawInstruction, stage: StageState) -> None:
        if not ins.json or not ins.value:
            self.problem(ins.start_line, 'SHELL requires a JSON array (SHELL ["/bin/sh", "-c"])')
            return
        stage.shell = tuple(ins.value)

    def do_user(self, ins: RawInstruction, stage: StageState) -> None:
        raw = " ".join(ins.value).strip()
        if not raw:
            self.problem(ins.start_line, "USER requires an argument")
            return
        text, complete = self.expand(raw, stage.vars())
        location = self.loc(ins.start_line)
        if not complete:
            stage.user = UserFact(raw, None, None, location)
            return
        uid, gid = self.resolve_user(text, stage)
        stage.user = UserFact(text, uid, gid, location)

    def resolve_user(self, text: str, stage: StageState) -> tuple[int | None, int | None]:
        name, _, group = text.partition(":")
        name, group = name.strip(), group.strip()
        uid: int | None
        primary: int | str | None = None
        if NUMERIC.fullmatch(name):
            uid = int(name)
            primary = next((g for u, g in stage.users.values() if u == uid), None)
        elif name == "root":
            uid, primary = 0, 0
        elif name in stage.users:
            uid, primary = stage.users[name]
        elif name == "nobody":
            uid, primary = NOBODY, NOBODY
        else:
            uid = None
        target = group or primary
        return uid, self.resolve_group(target, stage)

    @staticmethod
    def resolve_group(group: int | str | None, stage: StageState) -> int | None:
        if group is None or isinstance(group, int):
            return group
        if NUMERIC.fullmatch(group):
            return int(group)
        if group == "root":
            return 0
        if group in stage.groups:
            return stage.groups[group]
        if group in ("nogroup", "nobody"):
            return NOBODY
        return None

    def do_expose(self, ins: RawInstruction, stage: StageState) -> None:
        if not ins.value:
            self.problem(ins.start_line, "EXPOSE requires at least one argument")
        location = self.loc(ins.start_line)
        for raw in ins.value:
            text, complete = self.expand(raw, stage.vars())
            if not complete:
                continue
            for item in text.split():
                m = _EXPOSE.fullmatch(item)
                first = int(m.group(1)) if m else 0
                last = int(m.group(2)) if m and m.group(2) else first
                if m is None or not 0 < first <= last < 65536:
                    self.problem(ins.start_line, f"EXPOSE: invalid port {item!r}")
                    continue
                proto = (m.group(3) or "tcp").lower()
                for port in range(first, min(last, first + MAX_EXPOSE_RANGE - 1) + 1):
                    stage.exposed.append(PortFact(port, proto, None, "expose", location))

    def exec_form(self, ins: RawInstruction, stage: StageState) -> tuple[str, ...] | None:
        if ins.json:
            return tuple(ins.value)
        text = " ".join(ins.value).strip()
        if not text:
            self.problem(ins.start_line, f"{ins.cmd} requires at least one argument")
            return None
        return (*stage.shell, text)

    def do_entrypoint(self, ins: RawInstruction, stage: StageState) -> None:
        argv = self.exec_form(ins, stage)
        if argv is None:
            return
        stage.entrypoint, stage.entrypoint_location = argv, self.loc(ins.start_line)
        if not stage.cmd_set:  # an inherited CMD is reset by ENTRYPOINT (Docker's rule)
            stage.cmd, stage.cmd_location = None, None

    def do_cmd(self, ins: RawInstruction, stage: StageState) -> None:
        argv = self.exec_form(ins, stage)
        if argv is None:
            return
        stage.cmd, stage.cmd_location, stage.cmd_set = argv, self.loc(ins.start_line), True

    # -- COPY / ADD ------------------------------------------------------------------------
    def do_add(self, ins: RawInstruction, stage: StageState) -> None:
        self.do_copy(ins, stage, add=True)

    def do_copy(self, ins: RawInstruction, stage: StageState, *, add: bool = False) -> None:
        how = "add" if add else "copy"
        location = self.loc(ins.start_line)
        flags = _flags(ins.flags)
        if len(ins.value) < 2:
            self.problem(ins.start_line, f"{ins.cmd} requires at least a source and a destination")
            return
        env = stage.vars()
        dest_raw, dest_complete = self.expand(ins.value[-1], env)
        if not dest_complete:
            return
        dest = posixpath.normpath(posixpath.join(stage.workdir, dest_raw))
        sources = list(ins.value[:-1])
        into_dir = (
            dest_raw.endswith("/")
            or len(sources) > 1
            or self.is_dir(dest, stage)
            or any(c in s for s in sources for c in "*?[")
        )
        owner = flags.get("chown")
        mode = flags.get("chmod")
        parents = flags.get("parents") in ("", "true")  # COPY --parents (dockerfile 1.7 labs)
        source_stage, external = self.copy_source(flags.get("from"), stage, ins.start_line)
        heredocs = {h.name: h for h in ins.heredocs}
        for raw in sources:
            heredoc = _heredoc_name(raw)
            if heredoc is not None and heredoc in heredocs:
                target = posixpath.join(dest, heredoc) if into_dir else dest
                script = heredoc_script(heredocs[heredoc].content, ins.start_line)
                for fs in stage.fs.values():
                    self.replace(
                        fs,
                        FileState(target, location, how, layers=[location], script=script),
                        location,
                        f"{ins.cmd} at line {ins.start_line}",
                    )
                self.apply_mode_owner(stage, target, mode, owner)
                continue
            src, complete = self.expand(raw, env)
            if not complete:
                if not into_dir and len(sources) == 1:
                    # `COPY bin/${TARGETARCH}/web /web`: which source is unknown (BuildKit's
                    # platform ARGs, an ARG without default), that /web is written is not
                    self.copy_unknown_source(stage, dest, ins, context=source_stage is None)
                    self.apply_mode_owner(stage, dest, mode, owner)
                elif into_dir and "$" not in (name := posixpath.basename(raw)) and name:
                    # `COPY bin/${TARGETARCH}/web /`: the directory is unknown, the name is not
                    target = posixpath.join(dest, name)
                    self.copy_unknown_source(stage, target, ins, context=source_stage is None)
                    self.apply_mode_owner(stage, target, mode, owner)
                continue
            into, dest_for = into_dir, dest
            if parents and not add:  # the source's parent directories are kept under dest
                kept = src.split("/./", 1)[1] if "/./" in src else src
                kept = posixpath.normpath(kept.lstrip("/"))
                parent = kept if src.endswith("/") else posixpath.dirname(kept)
                if parent not in ("", "."):
                    into, dest_for = True, posixpath.join(dest, parent)
                    stage.dirs.add(dest_for)
            if source_stage is None and not external and add and re.match(r"\w+://|git@", src):
                name = posixpath.basename(src.split("?", 1)[0].rstrip("/")) or "index.html"
                target = posixpath.join(dest, name) if into_dir else dest
                for fs in stage.fs.values():
                    self.replace(
                        fs,
                        FileState(target, location, how, layers=[location]),
                        location,
                        f"ADD at line {ins.start_line}",
                    )
                continue
            if source_stage is None and not external:
                self.copy_from_context(
                    stage, src, dest_for, into_dir=into, add=add, how=how, ins=ins
                )
            else:
                self.copy_from_stage(
                    stage,
                    src,
                    dest_for,
                    into_dir=into,
                    ins=ins,
                    source_index=source_stage,
                    external=external,
                )
            target = posixpath.join(dest_for, posixpath.basename(src.rstrip("/"))) if into else dest
            self.apply_mode_owner(stage, target, mode, owner)
        stage.dirs.add(dest if into_dir else posixpath.dirname(dest))

    def copy_source(self, ref: str | None, stage: StageState, line: int) -> tuple[int | None, bool]:
        """(stage index, is an external image) for ``--from``; (None, False): the context."""
        if ref is None:
            return None, False
        name, complete = self.expand(ref, self.meta_args | stage.vars())
        if not complete:
            return None, True
        if NUMERIC.fullmatch(name):
            index = int(name)
            if index >= stage.index:
                self.problem(line, f"COPY --from={name} names this or a later stage")
                return None, True
            return index, False
        named = self.named.get(name.lower())
        if named is not None and named[0] < stage.index:
            return named[0], False
        return None, True

    def copy_unknown_source(
        self, stage: StageState, dest: str, ins: RawInstruction, *, context: bool
    ) -> None:
        """A COPY/ADD to the file ``dest`` from a source the parser cannot name: the file is
        new in this layer; from the build context it carries no file capabilities (the
        context transfer drops them, WHY_CONTEXT), from a stage or image only BuildKit may
        have kept some: unknown there."""
        location = self.loc(ins.start_line)
        how = "add" if ins.cmd == "ADD" else "copy"
        for builder, fs in stage.fs.items():
            old = fs.files.get(dest)
            new = FileState(dest, location, how, layers=[location])
            if not context and builder != "classic":  # classic drops them on COPY --from too
                new.caps, new.caps_known = None, False
            elif old is not None and old.caps:
                new.events.append(CapsEvent("lost", location, None, WHY_CONTEXT))
            self.replace(fs, new, location, f"{ins.cmd} at line {ins.start_line}")

    def copy_from_context(
        self,
        stage: StageState,
        src: str,
        dest: str,
        *,
        into_dir: bool,
        add: bool,
        how: str,
        ins: RawInstruction,
    ) -> None:
        location = self.loc(ins.start_line)
        what = f"{ins.cmd} at line {ins.start_line}"
        if add and _ARCHIVE.search(src):
            # extracted: names unknown, and members keep the security.capability their
            # SCHILY.xattr records carry (WHY_ARCHIVE); ADD --chown does not reach them
            stage.covers.append(Cover(dest, location, how, caps_unknown=True))
            return
        contents = src in (".", "./") or src.endswith("/")
        if contents or into_dir:
            cover = dest if contents else posixpath.join(dest, posixpath.basename(src))
            stage.covers.append(Cover(cover, location, how))
        if contents:
            return
        target = posixpath.join(dest, posixpath.basename(src)) if into_dir else dest
        script = f"{what} copies it from {src}" if is_script_name(src) else ""
        for fs in stage.fs.values():
            old = fs.files.get(target)
            new = FileState(target, location, how, layers=[location], script=script)
            if old is not None and old.caps:
                new.events.append(CapsEvent("lost", location, None, WHY_CONTEXT))
            self.replace(fs, new, location, what)

    def copy_from_stage(
        self,
        stage: StageState,
        src: str,
        dest: str,
        *,
        into_dir: bool,
        ins: RawInstruction,
        source_index: int | None,
        external: bool,
    ) -> None:
        location = self.loc(ins.start_line)
        what = f"COPY --from at line {ins.start_line}"
        src_abs = posixpath.normpath(posixpath.join("/", src))
        contents = src.endswith(("/", "/."))
        source = self.stages[source_index] if source_index is not None else None
        cover_target = (
            dest
            if (contents or not into_dir)
            else posixpath.join(dest, posixpath.basename(src_abs))
        )
        stage.covers.append(
            Cover(cover_target, location, "copy-from", (), source_index, src_abs, external)
        )
        for builder, fs in stage.fs.items():
            found = source.fs[builder].under(src_abs, recursive=True) if source else []
            if not found and not contents:
                # A file the source stage did not track: it has no caps we know of, unless it
                # may come from a base image whose files we cannot see.
                earlier = self.from_cover(source, builder, src_abs, named=True) if source else None
                if earlier is not None:
                    placeholder = earlier
                else:
                    known = source is not None and (
                        source.scratch or self.built_by_run(source, src_abs)
                    )
                    if source is not None and self.maybe_capped(source, src_abs):
                        known = False
                    placeholder = FileState(src_abs, location, "copy-from", caps_known=known)
                found = [("", placeholder)]
            for rel, file in found:
                if rel:
                    base = dest if contents else cover_target
                    target = posixpath.join(base, rel)
                elif into_dir:
                    target = posixpath.join(dest, posixpath.basename(file.path))
                else:
                    target = dest
                new = FileState(target, location, "copy-from", layers=[location])
                new.events.extend(file.events)
                new.setuid, new.setgid = file.setuid, file.setgid
                if builder == "classic":
                    if file.caps:
                        new.events.append(CapsEvent("lost", location, None, WHY_CLASSIC_FROM))
                else:
                    new.caps, new.caps_known = file.caps, file.caps_known and not external
                    if file.caps:
                        new.events.append(CapsEvent("kept", location, file.caps, WHY_BUILDKIT_FROM))
                self.replace(fs, new, location, what)

    def apply_mode_owner(
        self, stage: StageState, target: str, mode: str | None, owner: str | None
    ) -> None:
        for fs in stage.fs.values():
            for _, file in fs.under(target, recursive=True):
                if owner:
                    file.owner = owner
                if mode:
                    file.setuid, file.setgid = mode_bits(mode, file.setuid, file.setgid)

    def do_run(self, ins: RawInstruction, stage: StageState) -> None:
        location = self.loc(ins.start_line)
        flags = _flags(ins.flags)
        mounts = [m for spec in flags.get_all("mount") if (m := self.mount(spec, stage))]
        run = RunTools(self, stage, ins, location, mounts)
        if ins.json:
            argv = list(ins.value)
            script = shell_c_script(argv)
            if script is not None:
                run.script(script[0], first_line=ins.start_line, heredoc=False)
            elif argv:
                run.argv(argv, location)
            return
        if not stage.shell or stage.shell[0].rsplit("/", 1)[-1] not in SH_LIKE:
            return  # powershell / cmd: not a POSIX shell
        text = " ".join(ins.value)
        only = _HEREDOC_ONLY.fullmatch(text)
        if ins.heredocs and only and ins.heredocs[0].name == only.group(2):
            run.script(ins.heredocs[0].content, first_line=ins.start_line + 1, heredoc=True)
            return
        run.script(text + _heredoc_tail(ins.heredocs), first_line=ins.start_line, heredoc=False)

    def mount(self, spec: str, stage: StageState) -> Mount | None:
        fields: dict[str, str] = {}
        for part in spec.split(","):
            key, _, value = part.partition("=")
            fields[key.strip().lower()] = value.strip()
        kind = fields.get("type", "bind")
        target = fields.get("target") or fields.get("dst") or fields.get("destination")
        if not target:
            return None
        target_abs = posixpath.normpath(posixpath.join(stage.workdir, target))
        source = fields.get("source") or fields.get("src") or "/"
        from_stage, from_image = None, False
        if "from" in fields:
            from_stage, from_image = self.copy_source(fields["from"], stage, 0)
        return Mount(
            target_abs,
            kind,
            posixpath.normpath(posixpath.join("/", source)),
            from_stage,
            from_image,
        )

    # -- the end of a stage ----------------------------------------------------------------
    def freeze(self, stage: StageState) -> Stage:
        files: dict[str, dict[str, ImageFile]] = {}
        exec_paths = self.exec_paths(stage)
        for builder, fs in stage.fs.items():
            chosen = {p: f.freeze() for p, f in fs.files.items() if f.interesting}
            for path in exec_paths:
                if path in chosen:
                    continue
                file = fs.files.get(path) or self.from_cover(stage, builder, path, named=True)
                if file is not None:
                    chosen[path] = file.freeze()
            files[builder] = dict(sorted(chosen.items()))
        ports = list(stage.exposed)
        ports.extend(self.command_line_ports(stage))
        return Stage(
            index=stage.index,
            name=stage.name,
            base=stage.base,
            base_stage=stage.base_stage,
            location=stage.location,
            user=stage.user,
            files=files,
            exposed=tuple(ports),
            entrypoint=stage.entrypoint,
            entrypoint_location=stage.entrypoint_location,
            cmd=stage.cmd,
            cmd_location=stage.cmd_location,
            installed_packages=tuple(dict.fromkeys(stage.packages)),
            path=path_dirs(stage.env.get("PATH")),
        )

    @staticmethod
    def command_line_ports(stage: StageState) -> list[PortFact]:
        """Ports the ENTRYPOINT + CMD flags name, located at the instruction that names them."""
        env = dict(stage.env)  # the runtime environment: ENV, not ARG
        entrypoint, cmd = stage.entrypoint or (), stage.cmd or ()
        found = list(ports_from_argv(entrypoint, stage.entrypoint_location, env=env))
        seen = {(p.port, p.proto) for p in found}
        whole = (*entrypoint, *cmd) if entrypoint else cmd
        for fact in ports_from_argv(whole, stage.cmd_location, env=env):
            if (fact.port, fact.proto) not in seen:
                found.append(fact)
        return found

    def exec_paths(self, stage: StageState) -> list[str]:
        """The files ENTRYPOINT/CMD exec (through wrappers), as absolute paths."""
        paths: list[str] = []
        for link in exec_chain_argv(stage.entrypoint, stage.cmd):
            program = link.program
            if not program or "$" in program:
                continue
            if "/" in program:
                candidates = [posixpath.normpath(posixpath.join(stage.workdir, program))]
            else:
                candidates = [posixpath.join(d, program) for d in path_dirs(stage.env.get("PATH"))]
            for candidate in candidates:
                resolved = self.follow(stage, candidate)
                if resolved is None:
                    continue
                paths.append(resolved)
                break
        return paths

    def follow(self, stage: StageState, path: str) -> str | None:
        """``path`` after the symlinks the build made, if the build wrote it; else None."""
        for _ in range(8):
            if path not in stage.symlinks:
                break
            target = stage.symlinks[path]
            path = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
        written = any(path in fs.files for fs in stage.fs.values())
        named = any(c.covers(path) for c in stage.covers if c.prefix != "/" and not c.packages)
        return path if written or named else None


def _heredoc_name(raw: str) -> str | None:
    m = _HEREDOC_ONLY.fullmatch(raw)
    return m.group(2) if m else None


def _heredoc_tail(heredocs: Sequence[RawHeredoc]) -> str:
    """The here-document bodies appended so a shell parser sees the whole script."""
    if not heredocs:
        return ""
    body = "".join(
        f"{h.content}{'' if h.content.endswith(chr(10)) or not h.content else chr(10)}{h.name}\n"
        for h in heredocs
    )
    return "\n" + body


class _Flags:
    def __init__(self) -> None:
        self.values: dict[str, list[str]] = {}

    def get(self, name: str) -> str | None:
        values = self.values.get(name)
        return values[-1] if values else None

    def get_all(self, name: str) -> list[str]:
        return self.values.get(name, [])


def _flags(flags: Iterable[str]) -> _Flags:
    result = _Flags()
    for flag in flags:
        name, _, value = flag.lstrip("-").partition("=")
        result.values.setdefault(name.lower(), []).append(value)
    return result
