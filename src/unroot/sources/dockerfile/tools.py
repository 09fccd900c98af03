"""RUN: the tools that copy, move, archive, rewrite or create files, and the accounts and
packages a RUN adds — cp, install, mv, ln, rm, rsync, tar, sed -i, strip/upx/objcopy/patchelf,
curl/wget/go -o, tee, cd, mkdir, export, useradd/adduser/groupadd/addgroup/usermod, the package
managers — on top of :class:`~.run.RunStep`'s shell walk.  What each tool keeps or loses is
tabulated, with its verification, in :mod:`.parser`.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re

from unroot.sources.dockerfile.build import (
    NUMERIC,
    WHY_CP,
    WHY_INSTALL,
    WHY_KEPT_CP,
    WHY_MV,
    WHY_RSYNC,
    WHY_TAR_CREATE,
    WHY_TAR_EXTRACT,
    Archive,
    Cover,
    FileState,
    mode_bits,
)
from unroot.sources.dockerfile.run import (
    SYSTEM_WORDS,
    RunStep,
    last_option,
    names_xattr,
    split_opts,
)
from unroot.sources.parsed import Location
from unroot.sources.shell import SimpleCommand, expand_word


class RunTools(RunStep):
    """A RUN instruction with every tool unroot models."""

    def cp(self, args: list[str], command: SimpleCommand, where: Location) -> None:
        options, operands = split_opts(
            args, frozenset("tS"), frozenset({"target-directory", "suffix", "sparse"})
        )
        keep = False
        for arg in args:  # in order: the last word on xattrs wins
            if (
                arg in ("-a", "--archive")
                or re.fullmatch(r"-[A-Za-z]*a[A-Za-z]*", arg)
                or (arg.startswith("--preserve=") and names_xattr(arg))
            ):
                keep = True
            elif arg.startswith("--no-preserve=") and names_xattr(arg):
                keep = False
        link = "-l" in options or "--link" in options
        if "-s" in options or "--symbolic-link" in options:
            self.ln(["-s", *args], command, where)
            return
        recursive = any(o in options for o in ("-r", "-R", "-a", "--recursive", "--archive"))
        target_dir = last_option(options, "-t", "--target-directory")
        no_target = "-T" in options or "--no-target-directory" in options
        self._copyish(
            operands,
            target_dir,
            no_target,
            command,
            where,
            keep=keep or link,
            recursive=recursive,
            why_lost=WHY_CP,
        )

    def _copyish(
        self,
        operands: list[str],
        target_dir: str | None,
        no_target: bool,
        command: SimpleCommand,
        where: Location,
        *,
        keep: bool,
        recursive: bool,
        why_lost: str,
        remove_source: bool = False,
        rsync: bool = False,
    ) -> list[str]:
        into: bool | None
        if target_dir:
            sources, dest, into = operands, self.abs(target_dir, command.scope), True
        elif len(operands) >= 2:
            sources, dest = operands[:-1], self.abs(operands[-1], command.scope)
            into = False if no_target else (True if operands[-1].endswith("/") else None)
        else:
            return []
        return self.copy(
            sources,
            dest,
            command.scope,
            where,
            keep=keep,
            recursive=recursive,
            into_dir=into,
            why_lost=why_lost,
            remove_source=remove_source,
            why_kept=WHY_MV if remove_source else WHY_KEPT_CP,
            rsync=rsync,
        )

    def install(self, args: list[str], command: SimpleCommand, where: Location) -> None:
        options, operands = split_opts(
            args,
            frozenset("mogtSZ"),
            frozenset({"mode", "owner", "group", "target-directory", "suffix", "strip-program"}),
        )
        if "-d" in options or "--directory" in options:
            for operand in operands:
                if path := self.abs(operand, command.scope):
                    self.stage.dirs.add(path)
            return
        target_dir = last_option(options, "-t", "--target-directory")
        made = self._copyish(
            operands,
            target_dir,
            "-T" in options,
            command,
            where,
            keep=False,
            recursive=False,
            why_lost=WHY_INSTALL,
        )
        mode = last_option(options, "-m", "--mode")
        owner = last_option(options, "-o", "--owner")
        group = last_option(options, "-g", "--group")
        for fs in self.stage.fs.values():
            for path in made:
                file = fs.files.get(path)
                if file is None:
                    continue
                file.setuid, file.setgid = mode_bits(mode or "755", False, False)
                if owner or group:
                    file.owner = f"{owner or ''}{':' + group if group else ''}"

    def mv(self, args: list[str], command: SimpleCommand, where: Location) -> None:
        options, operands = split_opts(args, frozenset("tS"), frozenset({"target-directory"}))
        target_dir = last_option(options, "-t", "--target-directory")
        self._copyish(
            operands,
            target_dir,
            "-T" in options,
            command,
            where,
            keep=True,
            recursive=True,
            why_lost=WHY_CP,
            remove_source=True,
        )

    def ln(self, args: list[str], command: SimpleCommand, where: Location) -> None:
        options, operands = split_opts(args, frozenset("tS"), frozenset({"target-directory"}))
        symbolic = "-s" in options or "--symbolic" in options
        if len(operands) == 1:
            operands = [operands[0], posixpath.basename(operands[0])]
        if len(operands) < 2:
            return
        if symbolic:
            link = self.abs(operands[-1], command.scope)
            if link is None:
                return
            if self.b.is_dir(link, self.stage) or operands[-1].endswith("/"):
                link = posixpath.join(link, posixpath.basename(operands[0]))
            self.stage.symlinks[link] = operands[0]
            return
        self._copyish(
            operands,
            None,
            "-T" in options,
            command,
            where,
            keep=True,
            recursive=False,
            why_lost=WHY_CP,
        )

    def rm(self, args: list[str], command: SimpleCommand, where: Location) -> None:
        options, operands = split_opts(args, frozenset(), frozenset())
        recursive = any(o in options for o in ("-r", "-R", "--recursive"))
        paths = [p for p in (self.abs(o, command.scope) for o in operands) if p]
        del where
        for fs in self.stage.fs.values():
            for file in self.targets(fs, paths, recursive):
                fs.files.pop(file.path, None)
            for path in paths:
                fs.archives.pop(path, None)
        for path in paths:
            self.stage.symlinks.pop(path, None)

    def rsync(self, args: list[str], command: SimpleCommand, where: Location) -> None:
        keep = False
        for arg in args:
            if arg == "--xattrs" or re.fullmatch(r"-[A-Za-z]*X[A-Za-z]*", arg):
                keep = True
            elif arg == "--no-xattrs":
                keep = False
        _, operands = split_opts(
            args,
            frozenset("efBTM"),
            frozenset(
                {
                    "rsh",
                    "filter",
                    "exclude",
                    "include",
                    "files-from",
                    "chown",
                    "chmod",
                    "rsync-path",
                    "temp-dir",
                    "partial-dir",
                    "log-file",
                    "password-file",
                    "exclude-from",
                    "include-from",
                    "backup-dir",
                    "suffix",
                    "usermap",
                    "groupmap",
                    "block-size",
                    "compare-dest",
                    "copy-dest",
                    "link-dest",
                }
            ),
        )
        if any(":" in o.split("/", 1)[0] or o.startswith("rsync://") for o in operands):
            return
        self._copyish(
            operands,
            None,
            False,
            command,
            where,
            keep=keep,
            recursive=True,
            why_lost=WHY_RSYNC,
            rsync=True,
        )

    def tar(self, args: list[str], command: SimpleCommand, where: Location) -> None:
        if args and not args[0].startswith("-"):
            args = ["-" + args[0], *args[1:]]  # old-style bundled letters: `tar czf …`
        mode = ""
        archive: str | None = None
        create_xattrs = False
        includes: list[str] = []
        no_xattrs = False
        directory = self.cwd_of(command.scope)
        members: list[tuple[str, str]] = []
        extract_dir = directory
        i = 0
        with_value = set("fCTXbHKLNVgIF")
        while i < len(args):
            arg = args[i]
            if arg.startswith("--"):
                name, eq, value = arg[2:].partition("=")
                needs = name in (
                    "file",
                    "directory",
                    "files-from",
                    "exclude-from",
                    "use-compress-program",
                    "xattrs-include",
                    "xattrs-exclude",
                    "owner",
                    "group",
                    "mode",
                    "transform",
                    "exclude",
                    "format",
                    "blocking-factor",
                )
                if needs and not eq and i + 1 < len(args):
                    value = args[i + 1]
                    i += 1
                if name in ("create",):
                    mode = "c"
                elif name in ("extract", "get"):
                    mode = "x"
                elif name == "file":
                    archive = value
                elif name == "directory":
                    directory = posixpath.normpath(posixpath.join(directory, value))
                    extract_dir = directory
                elif name == "xattrs":
                    create_xattrs = True
                elif name == "xattrs-include":
                    create_xattrs = True
                    includes.append(value)
                elif name == "no-xattrs":
                    no_xattrs = True
            elif arg.startswith("-") and len(arg) > 1:
                letters = arg[1:]
                for j, letter in enumerate(letters):
                    if letter in "cxt":
                        mode = mode or letter
                    if letter in with_value:
                        value = letters[j + 1 :]
                        if not value and i + 1 < len(args):
                            value = args[i + 1]
                            i += 1
                        if letter == "f":
                            archive = value
                        elif letter == "C":
                            directory = posixpath.normpath(posixpath.join(directory, value))
                            extract_dir = directory
                        break
            else:
                members.append((directory, arg))
            i += 1
        if no_xattrs:
            create_xattrs, includes = False, []
        pipe = command.pipeline
        for builder, fs in self.stage.fs.items():
            if mode == "c":
                stored: dict[str, FileState] = {}
                for base, member in members:
                    member_path = posixpath.normpath(posixpath.join(base, member))
                    for rel, file in fs.under(member_path, recursive=True):
                        name = posixpath.normpath(posixpath.join(member, rel)) if rel else member
                        stored[name.lstrip("./") or name] = file.clone()
                made = Archive(stored, create_xattrs)
                if archive in (None, "-"):
                    self.pipe_archive[(builder, pipe)] = made
                elif (stored_at := self.abs(archive, command.scope)) is not None:
                    fs.archives[stored_at] = made
            elif mode == "x":
                source: Archive | None
                if archive in (None, "-"):
                    source = self.pipe_archive.get((builder, pipe))
                else:
                    read_from = self.abs(archive, command.scope)
                    source = fs.archives.get(read_from) if read_from else None
                if source is None:
                    self.stage.covers.append(Cover(extract_dir, self.location, "run"))
                    continue
                restore = any(fnmatch.fnmatchcase("security.capability", p) for p in includes)
                wanted = [m for _, m in members]
                for name, file in source.members.items():
                    if wanted and not any(
                        name == w or name.startswith(w.rstrip("/") + "/") for w in wanted
                    ):
                        continue
                    target = posixpath.normpath(posixpath.join(extract_dir, name))
                    why = WHY_TAR_CREATE if not source.xattrs else WHY_TAR_EXTRACT
                    self.create(
                        builder,
                        fs,
                        target,
                        file,
                        keep=source.xattrs and restore,
                        known_if_untracked=True,
                        where=where,
                        why_lost=why,
                        why_kept="tar --xattrs with --xattrs-include covering security.capability",
                    )

    def sed(self, args: list[str], command: SimpleCommand, where: Location) -> None:
        options, operands = split_opts(
            args, frozenset("efl"), frozenset({"expression", "file", "line-length"})
        )
        in_place = any(k == "-i" or k.startswith("--in-place") for k in options) or any(
            a.startswith("-i") for a in args if not a.startswith("--")
        )
        if not in_place:
            return
        if not ({"-e", "-f", "--expression", "--file"} & options.keys()) and operands:
            operands = operands[1:]  # the script
        for operand in operands:
            if path := self.abs(operand, command.scope):
                self.write(path, where, "sed -i")

    def rewrite_tool(self, args: list[str], command: SimpleCommand, where: Location) -> None:
        tool = command.words[0].rsplit("/", 1)[-1] if command.words else "a tool"
        options, operands = split_opts(args, frozenset("oIOFKNRsw"), frozenset({"output"}))
        out = last_option(options, "-o", "--output")
        if tool in ("patchelf",):
            operands = operands[-1:]
        if tool == "objcopy" and len(operands) >= 2:
            out, operands = operands[-1], []
        if out and (path := self.abs(out, command.scope)):
            self.write(path, where, tool)
            if operands and not tool.startswith("strip"):
                return
        for operand in operands:
            if path := self.abs(operand, command.scope):
                self.write(path, where, tool)

    def outputs(self, args: list[str], command: SimpleCommand, where: Location) -> None:
        """Commands whose output file is given by an option: curl -o, wget -O, go build -o …"""
        tool = command.words[0].rsplit("/", 1)[-1] if command.words else ""
        flag = {"wget": "-O", "dd": "of"}.get(tool, "-o")
        targets: list[str] = []
        for i, arg in enumerate(args):
            if tool == "dd" and arg.startswith("of="):
                targets.append(arg[3:])
            elif arg == flag and i + 1 < len(args):
                targets.append(args[i + 1])
            elif arg.startswith(("--output=", "--output-document=")):
                targets.append(arg.split("=", 1)[1])
            elif arg in ("--output", "--output-document") and i + 1 < len(args):
                targets.append(args[i + 1])
            elif tool != "dd" and arg.startswith(flag) and len(arg) > len(flag):
                targets.append(arg[len(flag) :])
        if tool in ("go", "cargo", "make", "cmake", "gcc", "cc", "g++", "clang", "rustc"):
            self.stage.covers.append(Cover("/", self.location, "run"))
        for target in targets:
            if path := self.abs(target, command.scope):
                self.write(path, where, tool)

    def tee(self, args: list[str], command: SimpleCommand, where: Location) -> None:
        _, operands = split_opts(args, frozenset(), frozenset())
        for operand in operands:
            if (path := self.abs(operand, command.scope)) and path not in SYSTEM_WORDS:
                self.write(path, where, "tee")

    def cd(self, args: list[str], command: SimpleCommand, where: Location) -> None:
        del where
        operands = [a for a in args if not a.startswith("-")]
        target = operands[0] if operands else "/root"
        path = self.abs(target, command.scope)
        if path:
            self.cwd[command.scope] = path

    def mkdir(self, args: list[str], command: SimpleCommand, where: Location) -> None:
        del where
        _, operands = split_opts(args, frozenset("m"), frozenset({"mode"}))
        for operand in operands:
            if path := self.abs(operand, command.scope):
                self.stage.dirs.add(path)

    def export(self, args: list[str], command: SimpleCommand, where: Location) -> None:
        del where
        for arg in command.words[1:]:
            name, eq, raw = arg.partition("=")
            if eq and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                value = expand_word(raw, self.env(command))
                self.shell_vars[name] = value.text if value.complete else None
        del args

    # -- accounts and packages -------------------------------------------------------------
    def useradd(self, args: list[str], command: SimpleCommand, where: Location) -> None:
        del command, where
        self._account(args, adduser=False)

    def adduser(self, args: list[str], command: SimpleCommand, where: Location) -> None:
        del command, where
        self._account(args, adduser=True)

    def _account(self, args: list[str], *, adduser: bool) -> None:
        short = frozenset("uGhsgkcdeKpfb") if adduser else frozenset("ugGcdeKpsfbkZ")
        options, operands = split_opts(
            args,
            short,
            frozenset(
                {
                    "uid",
                    "gid",
                    "ingroup",
                    "home",
                    "shell",
                    "gecos",
                    "comment",
                    "groups",
                    "add_extra_groups",
                    "firstuid",
                    "lastuid",
                    "conf",
                    "key",
                    "password",
                    "expiredate",
                    "inactive",
                    "base-dir",
                    "skel",
                    "selinux-user",
                    "extrausers",
                }
            ),
        )
        if not operands:
            return
        name = operands[0]
        uid_text = last_option(options, "-u", "--uid")
        if adduser:
            group = last_option(options, "-G", "--ingroup", "--gid")
            membership = len(operands) >= 2 and not (options.get("-G") or options.get("--ingroup"))
            if membership and name in self.stage.users:  # `adduser USER GROUP`: add to a group
                return
        else:
            group = last_option(options, "-g", "--gid")
        uid = int(uid_text) if uid_text and NUMERIC.fullmatch(uid_text) else None
        primary: int | str | None = None
        if group is not None:
            primary = int(group) if NUMERIC.fullmatch(group) else group
            if isinstance(primary, str):
                primary = self.stage.groups.get(primary, primary)
        elif name in self.stage.groups:
            primary = self.stage.groups[name]
        self.stage.users[name] = (uid, primary)

    def groupadd(self, args: list[str], command: SimpleCommand, where: Location) -> None:
        del command, where
        options, operands = split_opts(
            args, frozenset("gKp"), frozenset({"gid", "key", "password"})
        )
        if not operands:
            return
        gid_text = last_option(options, "-g", "--gid")
        if len(operands) >= 2 and operands[0] in self.stage.users:
            return  # `addgroup USER GROUP`: membership, not a new group
        gid = int(gid_text) if gid_text and NUMERIC.fullmatch(gid_text) else None
        self.stage.groups[operands[0]] = gid
        for user, (uid, primary) in list(self.stage.users.items()):
            if primary == operands[0]:
                self.stage.users[user] = (uid, gid)

    def usermod(self, args: list[str], command: SimpleCommand, where: Location) -> None:
        del command, where
        options, operands = split_opts(args, frozenset("ugGdlsceLUfp"), frozenset({"uid", "gid"}))
        if not operands or operands[-1] not in self.stage.users:
            return
        uid, primary = self.stage.users[operands[-1]]
        new_uid = last_option(options, "-u", "--uid")
        new_gid = last_option(options, "-g", "--gid")
        if new_uid and NUMERIC.fullmatch(new_uid):
            uid = int(new_uid)
        if new_gid:
            primary = (
                int(new_gid)
                if NUMERIC.fullmatch(new_gid)
                else self.stage.groups.get(new_gid, new_gid)
            )
        self.stage.users[operands[-1]] = (uid, primary)

    def packages(self, args: list[str], command: SimpleCommand, where: Location) -> None:
        del where
        tool = command.words[0].rsplit("/", 1)[-1] if command.words else ""
        options, operands = split_opts(
            args,
            frozenset("otXp") if tool == "apk" else frozenset("otc"),
            frozenset(
                {
                    "virtual",
                    "repository",
                    "option",
                    "target-release",
                    "root",
                    "setopt",
                    "repo",
                    "enablerepo",
                    "disablerepo",
                    "installroot",
                }
            ),
        )
        if not operands:
            return
        verb, names = operands[0], [n for n in operands[1:] if not n.startswith("$?")]
        names = [re.split(r"[=<>~]", n, maxsplit=1)[0] for n in names]
        names = [n.split(":", 1)[0] if tool in ("apt-get", "apt") else n for n in names]
        names = [n for n in names if n and not n.endswith((".deb", ".rpm", ".apk"))]
        if verb in ("install", "add", "in", "reinstall"):
            virtual = (options.get("-t") if tool == "apk" else None) or options.get("--virtual")
            if virtual:
                self.stage.virtual[virtual[-1]] = names
            self.stage.packages.extend(n for n in names if n not in self.stage.packages)
            if names:
                self.stage.covers.append(Cover("", self.location, "run", tuple(names)))
        elif verb in ("purge", "remove", "del", "erase", "rm", "autoremove"):
            removed = set(names)
            for name in names:
                removed.update(self.stage.virtual.pop(name, []))
            self.stage.packages[:] = [p for p in self.stage.packages if p not in removed]


RunTools.handlers = {
    "setcap": RunTools.setcap,
    "find": RunTools.find,
    "chown": RunTools.chown,
    "chgrp": RunTools.chgrp,
    "chmod": RunTools.chmod,
    "touch": RunTools.touch,
    "cp": RunTools.cp,
    "install": RunTools.install,
    "mv": RunTools.mv,
    "ln": RunTools.ln,
    "rm": RunTools.rm,
    "rsync": RunTools.rsync,
    "tar": RunTools.tar,
    "sed": RunTools.sed,
    "strip": RunTools.rewrite_tool,
    "upx": RunTools.rewrite_tool,
    "objcopy": RunTools.rewrite_tool,
    "patchelf": RunTools.rewrite_tool,
    "truncate": RunTools.rewrite_tool,
    "curl": RunTools.outputs,
    "wget": RunTools.outputs,
    "go": RunTools.outputs,
    "gcc": RunTools.outputs,
    "cc": RunTools.outputs,
    "clang": RunTools.outputs,
    "rustc": RunTools.outputs,
    "dd": RunTools.outputs,
    "tee": RunTools.tee,
    "cd": RunTools.cd,
    "pushd": RunTools.cd,
    "mkdir": RunTools.mkdir,
    "export": RunTools.export,
    "useradd": RunTools.useradd,
    "adduser": RunTools.adduser,
    "groupadd": RunTools.groupadd,
    "addgroup": RunTools.groupadd,
    "usermod": RunTools.usermod,
    "apt-get": RunTools.packages,
    "apt": RunTools.packages,
    "apk": RunTools.packages,
    "dnf": RunTools.packages,
    "yum": RunTools.packages,
    "microdnf": RunTools.packages,
    "zypper": RunTools.packages,
}
