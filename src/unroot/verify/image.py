"""An image as the engine stores it, read without running it: its config and its files.

The config comes from ``image inspect`` (USER, ENTRYPOINT, CMD, PATH, EXPOSE, the id); the
files from the layers, top layer first, with overlay's whiteouts: the directories
``GraphDriver.Data`` names (``UpperDir``, ``LowerDir``) when the engine keeps them on this host
(overlay2, and Podman's overlay) — there the ``security.capability`` xattr is read exactly as
the engine stores it (a rootless store keeps it as revision 3 with the user's uid as rootid) —
else ``docker save``/``podman save``'s tar, whose PAX headers carry the xattr.  The exec chain
of ENTRYPOINT/CMD is :func:`unroot.sources.exec_argv.exec_chain_argv`'s.
"""

from __future__ import annotations

import errno
import json
import os
import posixpath
import stat
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from unroot.errors import EnvironmentProblem, ParseError, UsageError
from unroot.model.execve import ExecFile
from unroot.model.filecaps import XATTR_NAME_CAPS, FileCaps
from unroot.sources.exec_argv import exec_chain_argv
from unroot.sources.parsed import DEFAULT_PATH
from unroot.verify.engines import ContainerEngine

_XATTR_PAX = "SCHILY.xattr." + XATTR_NAME_CAPS
_MAX_LINKS = 40


@dataclass(frozen=True, slots=True)
class Entry:
    """One path in one layer."""

    kind: str  # "file" | "dir" | "symlink" | "whiteout" | "other"
    mode: int = 0
    uid: int = 0
    gid: int = 0
    target: str = ""
    xattr: bytes | None = None
    data: bytes | None = None  # small files read on demand (tar layers)


class _DirLayer:
    def __init__(self, root: str) -> None:
        self.root = root

    def entry(self, rel: str) -> Entry | None:
        path = os.path.join(self.root, rel)
        try:
            st = os.lstat(path)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                return None
            raise EnvironmentProblem(f"cannot read {path}: {exc.strerror}") from None
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            return Entry("whiteout")
        if stat.S_ISLNK(st.st_mode):
            return Entry("symlink", st.st_mode, st.st_uid, st.st_gid, os.readlink(path))
        if stat.S_ISDIR(st.st_mode):
            return Entry("dir", st.st_mode, st.st_uid, st.st_gid)
        if not stat.S_ISREG(st.st_mode):
            return Entry("other", st.st_mode, st.st_uid, st.st_gid)
        try:
            xattr: bytes | None = os.getxattr(path, XATTR_NAME_CAPS, follow_symlinks=False)
        except OSError as exc:
            if exc.errno not in (errno.ENODATA, errno.EOPNOTSUPP):
                raise EnvironmentProblem(f"cannot read {path}: {exc.strerror}") from None
            xattr = None
        return Entry("file", st.st_mode, st.st_uid, st.st_gid, xattr=xattr)

    def read(self, rel: str) -> bytes:
        with open(os.path.join(self.root, rel), "rb") as file:
            return file.read(1 << 20)


class _TarLayer:
    def __init__(self, tar: tarfile.TarFile) -> None:
        self.tar = tar
        self.members = {posixpath.normpath(m.name.lstrip("./") or "."): m for m in tar}

    def entry(self, rel: str) -> Entry | None:
        head, base = posixpath.split(rel)
        if posixpath.join(head, ".wh." + base) in self.members:
            return Entry("whiteout")
        member = self.members.get(rel)
        if member is None:
            return None
        common = (member.mode, member.uid, member.gid)
        if member.issym():
            return Entry("symlink", *common, target=member.linkname)
        if member.islnk():
            return self.entry(posixpath.normpath(member.linkname.lstrip("./")))
        if member.isdir():
            return Entry("dir", *common)
        if not member.isfile():
            return Entry("other", *common)
        raw = member.pax_headers.get(_XATTR_PAX)
        xattr = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else None
        return Entry("file", *common, xattr=xattr)

    def read(self, rel: str) -> bytes:
        extracted = self.tar.extractfile(self.members[rel])
        return extracted.read(1 << 20) if extracted is not None else b""


_Layer = _DirLayer | _TarLayer


@dataclass
class ImageFacts:
    """What verify needs of an image."""

    ref: str
    image_id: str
    user: str
    entrypoint: tuple[str, ...] | None
    cmd: tuple[str, ...] | None
    path_env: str
    exposed: tuple[int, ...]
    layers_from: str  # "store" | "save"
    layers: list[_Layer] = field(default_factory=list, repr=False)

    @property
    def digest(self) -> str:
        return self.image_id if ":" in self.image_id else f"sha256:{self.image_id}"

    # -- files ---------------------------------------------------------------------------
    def _top(self, rel: str) -> tuple[_Layer, Entry] | None:
        for layer in self.layers:
            found = layer.entry(rel)
            if found is None:
                continue
            return layer, found  # a whiteout too: the path was deleted above the lower layers
        return None

    def lookup(self, path: str) -> tuple[str, _Layer, Entry] | None:
        """``path`` with every symlink resolved inside the image: (the path, its layer, its
        entry), or None when it does not exist."""
        parts = [p for p in posixpath.normpath("/" + path).split("/") if p]
        done: list[str] = []
        hops = 0
        while parts:
            rel = "/".join([*done, parts[0]])
            found = self._top(rel)
            if found is None and len(parts) > 1:  # a layer tar may leave out parent dirs
                done.append(parts.pop(0))
                continue
            if found is None or found[1].kind == "whiteout":
                return None
            layer, entry = found
            if entry.kind == "symlink":
                hops += 1
                if hops > _MAX_LINKS:
                    return None
                base = "/" if entry.target.startswith("/") else "/" + "/".join(done)
                joined = posixpath.normpath(posixpath.join(base, entry.target, *parts[1:]))
                parts, done = [p for p in joined.split("/") if p], []
                continue
            done.append(parts.pop(0))
            if not parts:
                return "/" + rel, layer, entry
        return None

    def read_text(self, path: str) -> str | None:
        found = self.lookup(path)
        if found is None or found[2].kind != "file":
            return None
        return found[1].read(found[0].lstrip("/")).decode("utf-8", "replace")

    def which(self, program: str) -> str | None:
        if "/" in program:
            return program
        for directory in self.path_env.split(":"):
            candidate = posixpath.join(directory or "/", program)
            found = self.lookup(candidate)
            if found is not None and found[2].kind == "file" and found[2].mode & 0o111:
                return candidate
        return None

    def exec_file(self, program: str, owner_uid: int | None) -> ExecFile:
        """The program as execve sees it: its file capabilities as stored, its set-id bits
        (owner as the container sees it: ``owner_uid`` is container root in a rootless
        store)."""
        path = self.which(program) or program
        found = self.lookup(path)
        if found is None or found[2].kind != "file":
            return ExecFile(path)
        entry = found[2]
        try:
            caps = FileCaps.decode(entry.xattr) if entry.xattr is not None else None
        except ParseError:
            caps = None

        def inside(host_id: int) -> int:
            return 0 if owner_uid is not None and host_id == owner_uid else host_id

        return ExecFile(
            path,
            file_caps=caps,
            setuid_owner=inside(entry.uid) if entry.mode & stat.S_ISUID else None,
            setgid_owner=inside(entry.gid) if entry.mode & stat.S_ISGID else None,
        )

    def chain(
        self, command: Sequence[str] | None, owner_uid: int | None
    ) -> tuple[list[str], list[ExecFile]]:
        """The programs ENTRYPOINT + CMD (or ``command`` in CMD's place) execute, in order."""
        cmd = tuple(command) if command else self.cmd
        links = exec_chain_argv(self.entrypoint, cmd)
        if not links:
            raise UsageError(f"{self.ref} has neither ENTRYPOINT nor CMD: give a command")
        files = [self.exec_file(link.program, owner_uid) for link in links]
        return [link.program for link in links], files


def _tuple(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    if isinstance(value, str) and value:
        return ("/bin/sh", "-c", value)
    return None


def read_image(engine: ContainerEngine, ref: str, workdir: str | None = None) -> ImageFacts:
    """The image ``ref`` on ``engine``; bad input (no such image) is exit 2."""
    data = engine.inspect(ref, "image")
    if data is None:
        raise UsageError(f"no image {ref!r} on {engine.title} (pull, build or load it first)")
    config = data.get("Config") or {}
    env = dict(str(item).partition("=")[::2] for item in config.get("Env") or ())
    exposed = []
    for key in config.get("ExposedPorts") or {}:
        number, _, proto = str(key).partition("/")
        if number.isdigit() and proto in ("", "tcp"):
            exposed.append(int(number))
    facts = ImageFacts(
        ref=ref,
        image_id=str(data.get("Id", "")),
        user=str(config.get("User") or ""),
        entrypoint=_tuple(config.get("Entrypoint")),
        cmd=_tuple(config.get("Cmd")),
        path_env=env.get("PATH") or ":".join(DEFAULT_PATH),
        exposed=tuple(sorted(exposed)),
        layers_from="store",
    )
    dirs = _layer_dirs(data.get("GraphDriver") or {})
    if dirs and all(os.path.isdir(d) for d in dirs):
        facts.layers = [_DirLayer(d) for d in dirs]
    else:
        facts.layers = _saved_layers(engine, ref, workdir)
        facts.layers_from = "save"
    return facts


def _layer_dirs(driver: dict[str, Any]) -> list[str]:
    info = driver.get("Data") or {}
    if driver.get("Name") not in ("overlay2", "overlay"):
        return []
    dirs = [str(info["UpperDir"])] if info.get("UpperDir") else []
    dirs += [d for d in str(info.get("LowerDir") or "").split(":") if d]
    return dirs


def _saved_layers(engine: ContainerEngine, ref: str, workdir: str | None) -> list[_Layer]:
    """``save`` the image to a temporary tar and open its layers, top first."""
    handle, path = tempfile.mkstemp(prefix="unroot-verify-", suffix=".tar", dir=workdir)
    os.close(handle)
    try:
        done = engine.call(["save", "--output", path, ref], timeout=600)
        if not done.ok:
            raise EnvironmentProblem(f"{engine.name} save {ref}: {done.stderr.strip()}")
        outer = tarfile.open(path)  # noqa: SIM115 - the layers read from it later
        manifest = json.load(outer.extractfile("manifest.json"))  # type: ignore[arg-type]
        layers: list[_Layer] = []
        for name in reversed(manifest[0]["Layers"]):
            inner = outer.extractfile(name)
            if inner is None:
                continue
            layers.append(_TarLayer(tarfile.open(fileobj=inner)))  # noqa: SIM115
        return layers
    except (OSError, tarfile.TarError, KeyError, ValueError) as exc:
        raise EnvironmentProblem(f"cannot read the saved image {ref}: {exc}") from None
    finally:
        os.unlink(path)  # open tar handles keep the data readable
