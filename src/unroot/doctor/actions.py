"""The fixes ``unroot doctor --apply`` performs: a closed vocabulary of frozen dataclasses.

Each action has ``command`` (the shell command a person could run instead, shlex-quoted) and
``why``; :meth:`Action.touches` names what it changes (for the journal), :meth:`Action.satisfied`
says whether it would change nothing, :meth:`Action.refusal` why it must not run at all, and
:meth:`Action.apply` performs it natively — xattrs and os calls, never a shell, except
``groupadd`` which keeps /etc/gshadow consistent.

==================  =========================================================================
:class:`SetAcl`     ``setfacl [-d] -m u:UID:BITS,g:GID:BITS PATH`` — encoded by
                    :meth:`unroot.model.acl.Acl.modified` (mask = union of the group class, as
                    setfacl computes it; the kernel keeps the mode's group bits = mask)
:class:`Chgrp`      ``chgrp GID PATH`` (refused on a regular file with set-id bits or file caps:
                    chown clears them)
:class:`Chmod`      ``chmod u+BITS|g+BITS PATH`` (never ``o+``)
:class:`Setcap`     ``setcap TEXT PATH`` (``security.capability`` revision 2)
:class:`Groupadd`   ``groupadd -g GID NAME``
:class:`SysctlDropIn`  ``/etc/sysctl.d/60-unroot-SLUG.conf`` and the running value
:class:`SystemdDropIn` ``UNIT.d/60-unroot.conf`` with ``[Service]`` settings
:class:`CreateFile` a new file with a given mode (a certbot deploy hook)
:class:`Restart`    a rootless daemon's restart, by a callable the caller passes
==================  =========================================================================

:func:`from_argv` turns the model's file-permission steps (:attr:`unroot.model.verdict.Fix.steps`)
into actions; anything else is a :class:`~unroot.errors.UsageError`.
"""

from __future__ import annotations

import errno
import os
import re
import shlex
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from unroot.doctor.state import (
    XATTR_ACL_ACCESS,
    XATTR_ACL_DEFAULT,
    XATTR_CAPS,
    GroupRef,
    NodeRef,
    Pins,
    Ref,
    SysctlRef,
    cannot,
    group_state,
    groupadd,
    node_state,
    sysctl_state,
    write_sysctl,
)
from unroot.errors import ParseError, UsageError
from unroot.model.acl import (
    ACL_GROUP,
    ACL_GROUP_OBJ,
    ACL_OTHER,
    ACL_USER,
    ACL_USER_OBJ,
    Acl,
    AclEntry,
    parse_perm,
    perm_text,
)
from unroot.model.filecaps import FileCaps

PORT_START_KEY = "net.ipv4.ip_unprivileged_port_start"
_SLUG = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_BITS = {"r": 4, "w": 2, "x": 1}


def _bits(perm: int) -> str:
    return perm_text(perm).replace("-", "") or "-"


def _parse_bits(text: str) -> int:
    if not text or any(ch not in _BITS for ch in text) or len(set(text)) != len(text):
        raise UsageError(f"bad permission bits {text!r} (one or more of r, w, x)")
    return sum(_BITS[ch] for ch in text)


def _absolute(path: str) -> str:
    if not path.startswith("/") or "\0" in path:
        raise UsageError(f"{path!r}: unroot acts on absolute paths only")
    return os.path.normpath(path)


class Action:
    """Base of the vocabulary; every subclass is a frozen dataclass."""

    kind: ClassVar[str]

    @property
    def command(self) -> str:
        raise NotImplementedError

    @property
    def why(self) -> str:
        raise NotImplementedError

    def touches(self) -> tuple[Ref, ...]:
        raise NotImplementedError

    def satisfied(self) -> bool:
        raise NotImplementedError

    def refusal(self) -> str | None:
        """Why this action must not be performed here (one line), or None."""
        return None

    def apply(self, pins: Pins) -> None:
        raise NotImplementedError

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "command": self.command, "why": self.why}


# -- ACLs ------------------------------------------------------------------------------------
def _xattr_at(at: str, name: str) -> bytes | None:
    try:
        return os.getxattr(at, name)
    except OSError as exc:
        if exc.errno in (errno.ENODATA, errno.EOPNOTSUPP):
            return None
        raise


@dataclass(frozen=True, slots=True)
class AclSpec:
    """One ``setfacl -m`` entry: ``u:2200:r`` (named) or ``g::-`` (a base entry: ``id`` None)."""

    tag: str  # "u", "g" or "o"
    id: int | None
    perm: int

    def entry(self) -> AclEntry:
        if self.tag == "o":
            return AclEntry(ACL_OTHER, None, self.perm)
        named, base = (ACL_USER, ACL_USER_OBJ) if self.tag == "u" else (ACL_GROUP, ACL_GROUP_OBJ)
        return AclEntry(named if self.id is not None else base, self.id, self.perm)

    @property
    def text(self) -> str:
        return f"{self.tag}:{'' if self.id is None else self.id}:{_bits(self.perm)}"

    @classmethod
    def parse(cls, text: str) -> AclSpec:
        parts = text.split(":")
        if len(parts) != 3 or parts[0] not in ("u", "g", "o", "user", "group", "other"):
            raise UsageError(f"ACL entry {text!r} is not u:UID:BITS, g:GID:BITS or a base entry")
        tag = parts[0][0]
        ident: int | None = None
        if parts[1]:
            if tag == "o" or not parts[1].isdigit() or not parts[1].isascii():
                raise UsageError(f"ACL entry {text!r}: the qualifier must be a numeric id")
            ident = int(parts[1])
        try:
            perm = parse_perm(parts[2])
        except ParseError as exc:
            raise UsageError(f"ACL entry {text!r}: {exc}") from None
        spec = cls(tag, ident, perm)
        spec.entry()  # validates the id range
        return spec


@dataclass(frozen=True, slots=True)
class SetAcl(Action):
    """``setfacl -m`` (or ``-d -m``: the default ACL of a directory) with some entries."""

    kind: ClassVar[str] = "acl"
    path: str
    specs: tuple[AclSpec, ...]
    default: bool = False
    reason: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", _absolute(self.path))
        if not self.specs:
            raise UsageError("setfacl needs at least one entry")

    @property
    def command(self) -> str:
        flags = "-d -m" if self.default else "-m"
        specs = ",".join(s.text for s in self.specs)
        return f"setfacl {flags} {specs} {shlex.quote(self.path)}"

    @property
    def why(self) -> str:
        if self.reason:
            return self.reason
        if self.default:
            return f"files created in {self.path} from now on inherit these entries"
        return f"grants exactly {', '.join(s.text for s in self.specs)} on {self.path}"

    def touches(self) -> tuple[Ref, ...]:
        return (NodeRef(self.path),)

    def wanted(self, mode: int, access: bytes | None, default: bytes | None) -> bytes:
        """The xattr bytes setfacl would write, from the inode's current mode and ACLs."""
        current = Acl.decode(access) if access is not None else Acl.from_mode(mode)
        if self.default:
            current = Acl.decode(default) if default is not None else current.base()
        return current.modified(s.entry() for s in self.specs).encode()

    def _current(self) -> tuple[bytes | None, bytes]:
        state = node_state(self.path)
        if state.type == "absent":
            raise UsageError(f"{self.path} does not exist")
        if self.default and state.type != "dir":
            raise UsageError(f"{self.path} is not a directory: only directories have a default ACL")
        name = XATTR_ACL_DEFAULT if self.default else XATTR_ACL_ACCESS
        access, default = state.xattr(XATTR_ACL_ACCESS), state.xattr(XATTR_ACL_DEFAULT)
        return state.xattr(name), self.wanted(state.mode, access, default)

    def satisfied(self) -> bool:
        now, wanted = self._current()
        return now == wanted

    def refusal(self) -> str | None:
        try:
            self._current()
        except UsageError as exc:
            return str(exc)
        return None

    def apply(self, pins: Pins) -> None:
        self._current()  # refusals (gone, not a directory) as one line
        name = XATTR_ACL_DEFAULT if self.default else XATTR_ACL_ACCESS
        with pins.at(self.path) as at:
            try:
                # computed from the pinned inode itself, not from whatever the path names now
                mode = stat.S_IMODE(os.stat(at).st_mode)
                access, default = _xattr_at(at, XATTR_ACL_ACCESS), _xattr_at(at, XATTR_ACL_DEFAULT)
                wanted = self.wanted(mode, access, default)
                os.setxattr(at, name, wanted)  # the kernel sets the group bits to the mask
            except OSError as exc:
                raise cannot(f"set the ACL of {self.path}", exc) from None


# -- owner and mode --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Chgrp(Action):
    kind: ClassVar[str] = "chgrp"
    path: str
    gid: int
    reason: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", _absolute(self.path))
        if not 0 <= self.gid <= 0xFFFFFFFE:
            raise UsageError(f"gid {self.gid} is not within 0..4294967294")

    @property
    def command(self) -> str:
        return f"chgrp {self.gid} {shlex.quote(self.path)}"

    @property
    def why(self) -> str:
        return self.reason or f"gives {self.path} to group {self.gid}"

    def touches(self) -> tuple[Ref, ...]:
        return (NodeRef(self.path),)

    def satisfied(self) -> bool:
        state = node_state(self.path)
        return state.type != "absent" and state.gid == self.gid

    def refusal(self) -> str | None:
        state = node_state(self.path)
        if state.type == "absent":
            return f"{self.path} does not exist"
        if state.type == "file" and (state.mode & 0o6000 or state.xattr(XATTR_CAPS) is not None):
            return (
                f"refusing to chgrp {self.path}: it has set-id bits or file capabilities, which "
                "chown clears; grant with an ACL entry instead"
            )
        return None

    def apply(self, pins: Pins) -> None:
        with pins.at(self.path) as at:
            try:
                os.chown(at, -1, self.gid)
            except OSError as exc:
                raise cannot(f"chgrp {self.path}", exc) from None


@dataclass(frozen=True, slots=True)
class Chmod(Action):
    """``chmod u+BITS`` or ``chmod g+BITS`` (with an ACL, the group bits are its mask)."""

    kind: ClassVar[str] = "chmod"
    path: str
    who: str  # "u" or "g"
    perm: int
    reason: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", _absolute(self.path))
        if self.who not in ("u", "g") or not 0 < self.perm <= 7:
            raise UsageError("chmod: only u+BITS and g+BITS are performed (never other)")

    @property
    def _add(self) -> int:
        return self.perm << (6 if self.who == "u" else 3)

    @property
    def command(self) -> str:
        return f"chmod {self.who}+{_bits(self.perm)} {shlex.quote(self.path)}"

    @property
    def why(self) -> str:
        return (
            self.reason
            or f"adds {_bits(self.perm)} for the {'owner' if self.who == 'u' else 'group'}"
        )

    def touches(self) -> tuple[Ref, ...]:
        return (NodeRef(self.path),)

    def satisfied(self) -> bool:
        return node_state(self.path).mode & self._add == self._add

    def refusal(self) -> str | None:
        return f"{self.path} does not exist" if node_state(self.path).type == "absent" else None

    def apply(self, pins: Pins) -> None:
        with pins.at(self.path) as at:
            try:
                os.chmod(at, stat.S_IMODE(os.stat(at).st_mode) | self._add)
            except OSError as exc:
                raise cannot(f"chmod {self.path}", exc) from None


# -- file capabilities -----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Setcap(Action):
    kind: ClassVar[str] = "setcap"
    path: str
    text: str
    reason: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", _absolute(self.path))
        FileCaps.from_text(self.text)  # ParseError (a UsageError) for bad text

    @property
    def caps(self) -> FileCaps:
        return FileCaps.from_text(self.text)

    @property
    def command(self) -> str:
        return f"setcap {shlex.quote(self.caps.to_text())} {shlex.quote(self.path)}"

    @property
    def why(self) -> str:
        note = (
            "; a package upgrade, cp without --preserve=xattr, tar without --xattrs, or any "
            "chown or write of the file loses it: re-run after each"
        )
        return (self.reason or f"gives {self.path} {self.caps.to_text()}") + note

    def touches(self) -> tuple[Ref, ...]:
        return (NodeRef(self.path),)

    def satisfied(self) -> bool:
        return node_state(self.path).xattr(XATTR_CAPS) == self.caps.encode()

    def refusal(self) -> str | None:
        state = node_state(self.path)
        if state.type != "file":
            return f"{self.path} is not a regular file: file capabilities go on the program"
        return None

    def apply(self, pins: Pins) -> None:
        with pins.at(self.path) as at:
            try:
                os.setxattr(at, XATTR_CAPS, self.caps.encode())
            except OSError as exc:
                raise cannot(f"setcap {self.path}", exc) from None


# -- groups ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Groupadd(Action):
    kind: ClassVar[str] = "groupadd"
    name: str
    gid: int
    reason: str = ""

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z_][a-z0-9_-]{0,30}", self.name):
            raise UsageError(f"group name {self.name!r} is not a portable name")
        if not 0 < self.gid < 0xFFFFFFFF:
            raise UsageError(f"gid {self.gid} is not within 1..4294967294")

    @property
    def command(self) -> str:
        return f"groupadd -g {self.gid} {shlex.quote(self.name)}"

    @property
    def why(self) -> str:
        return self.reason or f"a host group with gid {self.gid} gives the container's group a name"

    def touches(self) -> tuple[Ref, ...]:
        return (GroupRef(self.name, self.gid),)

    def satisfied(self) -> bool:
        return group_state(GroupRef(self.name, self.gid)).exists

    def refusal(self) -> str | None:
        import grp

        try:
            by_gid = grp.getgrgid(self.gid).gr_name
        except KeyError:
            by_gid = None
        try:
            by_name: int | None = grp.getgrnam(self.name).gr_gid
        except KeyError:
            by_name = None
        if by_gid not in (None, self.name):
            return f"gid {self.gid} already belongs to group {by_gid}; not adding {self.name}"
        if by_name not in (None, self.gid):
            return f"group {self.name} already exists with gid {by_name}, not {self.gid}"
        return None

    def apply(self, pins: Pins) -> None:
        groupadd(self.name, self.gid)


# -- new files -------------------------------------------------------------------------------
def _missing_dirs(path: str) -> list[str]:
    """The ancestors of ``path`` that do not exist, outermost first."""
    missing = []
    parent = os.path.dirname(path)
    while parent != "/" and node_state(parent).type == "absent":
        missing.append(parent)
        parent = os.path.dirname(parent)
    return missing[::-1]


def _write_new(path: str, content: bytes, mode: int) -> None:
    for directory in _missing_dirs(path):
        try:
            os.mkdir(directory, 0o755)
        except OSError as exc:
            raise cannot(f"create {directory}", exc) from None
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        raise cannot(f"create {path}", exc) from None
    try:
        os.write(fd, content)
        os.fchmod(fd, mode)
        os.fsync(fd)
    except OSError as exc:
        raise cannot(f"write {path}", exc) from None
    finally:
        os.close(fd)


def _file_refusal(path: str, content: bytes, mode: int) -> str | None:
    state = node_state(path)
    if state.type == "absent":
        return None
    if state.type != "file":
        return f"{path} exists and is not a regular file; unroot never replaces it"
    return None


def _file_satisfied(path: str, content: bytes, mode: int) -> bool:
    import hashlib

    state = node_state(path)
    return (
        state.type == "file"
        and state.mode == mode
        and state.sha256 == hashlib.sha256(content).hexdigest()
    )


@dataclass(frozen=True, slots=True)
class CreateFile(Action):
    """A new file with ``content`` and ``mode`` (never overwrites one that differs)."""

    kind: ClassVar[str] = "create"
    path: str
    content: bytes
    mode: int = 0o644
    reason: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", _absolute(self.path))
        if not 0 <= self.mode <= 0o777:
            raise UsageError(f"mode {self.mode:o} of a new file is not within 0..0777")

    @property
    def command(self) -> str:
        text = self.content.decode("utf-8", "backslashreplace")
        quoted = shlex.quote(self.path)
        if text.endswith("\n") and "\nUNROOT_EOF\n" not in f"\n{text}":
            install = f"install -D -m {self.mode:04o} /dev/stdin {quoted}"
            return f"{install} <<'UNROOT_EOF'\n{text}UNROOT_EOF"
        return f"printf '%s' {shlex.quote(text)} > {quoted} && chmod {self.mode:04o} {quoted}"

    @property
    def why(self) -> str:
        return self.reason or f"creates {self.path}"

    def touches(self) -> tuple[Ref, ...]:
        return (*(NodeRef(d) for d in _missing_dirs(self.path)), NodeRef(self.path))

    def satisfied(self) -> bool:
        return _file_satisfied(self.path, self.content, self.mode)

    def refusal(self) -> str | None:
        if node_state(self.path).type != "absent" and not self.satisfied():
            return (
                f"{self.path} already exists with other content or mode; unroot never overwrites it"
            )
        return _file_refusal(self.path, self.content, self.mode)

    def apply(self, pins: Pins) -> None:
        _write_new(self.path, self.content, self.mode)


@dataclass(frozen=True, slots=True)
class SysctlDropIn(Action):
    """``net.ipv4.ip_unprivileged_port_start = N`` in ``ETC/sysctl.d/60-unroot-SLUG.conf`` and
    in the running kernel (``PROC/net/ipv4/ip_unprivileged_port_start`` of the caller's netns)."""

    kind: ClassVar[str] = "sysctl"
    value: int
    slug: str = "ports"
    etc: str = "/etc"
    proc_sys: str = "/proc/sys"
    reason: str = ""

    def __post_init__(self) -> None:
        if not 0 <= self.value <= 65535:
            raise UsageError(f"{PORT_START_KEY} must be within 0..65535, not {self.value}")
        if not _SLUG.fullmatch(self.slug):
            raise UsageError(f"drop-in name {self.slug!r} must be [a-z0-9_.-]")

    @property
    def path(self) -> str:
        return os.path.join(self.etc, "sysctl.d", f"60-unroot-{self.slug}.conf")

    @property
    def running(self) -> str:
        return os.path.join(self.proc_sys, *PORT_START_KEY.split("."))

    @property
    def content(self) -> bytes:
        return f"{PORT_START_KEY} = {self.value}\n".encode()

    @property
    def command(self) -> str:
        line = shlex.quote(f"{PORT_START_KEY} = {self.value}\\n")
        path = shlex.quote(self.path)
        return f"printf {line} > {path} && sysctl -p {path}"

    @property
    def why(self) -> str:
        return self.reason or (
            f"lets every unprivileged process of this network namespace bind ports from "
            f"{self.value} up; the drop-in keeps it across reboots"
        )

    def touches(self) -> tuple[Ref, ...]:
        return (
            *(NodeRef(d) for d in _missing_dirs(self.path)),
            NodeRef(self.path),
            SysctlRef(self.running),
        )

    def _file_done(self) -> bool:
        return _file_satisfied(self.path, self.content, 0o644)

    def satisfied(self) -> bool:
        return self._file_done() and sysctl_state(SysctlRef(self.running)).value == str(self.value)

    def refusal(self) -> str | None:
        if node_state(self.path).type != "absent" and not self._file_done():
            return f"{self.path} already exists with other content; unroot never overwrites it"
        return None

    def apply(self, pins: Pins) -> None:
        if not self._file_done():
            _write_new(self.path, self.content, 0o644)
        write_sysctl(self.running, str(self.value))


@dataclass(frozen=True, slots=True)
class SystemdDropIn(Action):
    """``DIR/60-unroot.conf`` with ``[Service]`` settings; ``directory`` is the unit's drop-in
    directory (``/etc/systemd/system/UNIT.d`` or a user unit's)."""

    kind: ClassVar[str] = "systemd"
    directory: str
    settings: tuple[tuple[str, str], ...]
    user: bool = False
    reason: str = ""
    daemon_reload: Callable[[], None] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "directory", _absolute(self.directory))
        if not self.directory.endswith(".d"):
            raise UsageError(f"{self.directory}: a unit's drop-in directory ends in .d")
        for key, value in self.settings:
            if not re.fullmatch(r"[A-Za-z]+", key) or "\n" in value:
                raise UsageError(f"bad [Service] setting {key}={value!r}")

    @property
    def path(self) -> str:
        return os.path.join(self.directory, "60-unroot.conf")

    @property
    def content(self) -> bytes:
        lines = ["[Service]", *(f"{key}={value}" for key, value in self.settings)]
        return ("\n".join(lines) + "\n").encode()

    @property
    def command(self) -> str:
        text = shlex.quote(self.content.decode().replace("\n", "\\n"))
        reload = "systemctl --user daemon-reload" if self.user else "systemctl daemon-reload"
        directory = shlex.quote(self.directory)
        path = shlex.quote(self.path)
        return f"mkdir -p {directory} && printf {text} > {path} && {reload}"

    @property
    def why(self) -> str:
        settings = ", ".join(f"{k}={v}" for k, v in self.settings)
        return self.reason or f"sets {settings} for the unit (takes effect when it restarts)"

    def touches(self) -> tuple[Ref, ...]:
        return (*(NodeRef(d) for d in _missing_dirs(self.path)), NodeRef(self.path))

    def satisfied(self) -> bool:
        return _file_satisfied(self.path, self.content, 0o644)

    def refusal(self) -> str | None:
        if node_state(self.path).type != "absent" and not self.satisfied():
            return f"{self.path} already exists with other content; unroot never overwrites it"
        return None

    def apply(self, pins: Pins) -> None:
        _write_new(self.path, self.content, 0o644)
        if self.daemon_reload is not None:
            self.daemon_reload()


@dataclass(frozen=True, slots=True)
class Restart(Action):
    """Restart a rootless daemon: performed only when the caller lists it, by ``run``."""

    kind: ClassVar[str] = "restart"
    label: str
    shown: str
    run: Callable[[], None] = field(compare=False, repr=False)
    reason: str = ""

    @property
    def command(self) -> str:
        return self.shown

    @property
    def why(self) -> str:
        return self.reason or f"restarts {self.label} so that it picks up the change"

    def touches(self) -> tuple[Ref, ...]:
        return ()

    def satisfied(self) -> bool:
        return False

    def apply(self, pins: Pins) -> None:
        self.run()


# -- the model's argv ------------------------------------------------------------------------
def from_argv(argv: Sequence[str]) -> Action:
    """One simple command of :attr:`unroot.model.verdict.Fix.steps` as an action:
    ``setfacl [-d] -m SPEC[,SPEC] PATH``, ``chgrp GID PATH``, ``chmod u+BITS|g+BITS PATH``,
    ``setcap TEXT PATH``; anything else is a UsageError."""
    args = list(argv)
    shown = " ".join(shlex.quote(a) for a in args)
    try:
        if args[:1] == ["setfacl"]:
            default = args[1:2] == ["-d"]
            rest = args[2:] if default else args[1:]
            if len(rest) == 3 and rest[0] == "-m":
                specs = tuple(AclSpec.parse(s) for s in rest[1].split(","))
                return SetAcl(rest[2], specs, default)
        elif args[:1] == ["chgrp"] and len(args) == 3 and args[1].isdigit():
            return Chgrp(args[2], int(args[1]))
        elif args[:1] == ["chmod"] and len(args) == 3:
            match = re.fullmatch(r"([ug])\+([rwx]{1,3})", args[1])
            if match:
                return Chmod(args[2], match[1], _parse_bits(match[2]))
        elif args[:1] == ["setcap"] and len(args) == 3:
            return Setcap(args[2], args[1])
    except UsageError as exc:
        raise UsageError(f"cannot perform `{shown}`: {exc}") from None
    raise UsageError(
        f"`{shown}` is not a fix unroot performs (setfacl -m, chgrp, chmod u+/g+, setcap)"
    )
