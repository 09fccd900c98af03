"""The ``--fs-json`` format: a hypothetical file tree for ``unroot explain access``.

A JSON object whose keys are absolute, normalised paths (no ``.``, ``..``, ``//`` or trailing
``/``) and whose values describe one inode each::

    {
      "/etc":             {"type": "dir",  "mode": "0755", "uid": 0, "gid": 0},
      "/etc/ssl/key.pem": {"type": "file", "mode": "0640", "uid": 0, "gid": 2200,
                           "acl": "user::rw-,group::r--,group:2200:r--,mask::r--,other::---",
                           "readonly": true},
      "/x":               {"type": "symlink", "target": "/etc"}
    }

Fields (unknown ones are an error, to catch typos):

``type``        required: ``dir``, ``file``, ``symlink``, ``fifo``, ``chr``, ``blk``, ``sock``
``mode``        octal *string* (``"0755"``, ``"755"``, ``"0o4755"``), setuid/setgid/sticky
                allowed; required unless ``acl`` is given; ignored for symlinks
``uid``/``gid`` numeric owner and group (default 0)
``acl``         getfacl text (``user::rw-,user:1000:r--,group::r--,mask::r--,other::---``) or
                null.  As after setfacl, the ACL sets the mode's rwx bits (owner = ``user::``,
                group = ``mask::``, other = ``other::``); a minimal ACL is just a mode
``target``      symlinks only: the link's text, relative or absolute
``readonly``    reached through a read-only mount (``ro`` bind mount, ``:ro`` volume) — EROFS
                for writes after the permission check
``readonly_fs`` the filesystem itself is read-only — EROFS before the permission check
``noexec``      on a ``noexec`` mount; ``immutable``: chattr +i; ``append_only``: chattr +a

Directories above a listed path that are not listed themselves are implied as ``drwxr-xr-x
root:root``; ``/`` always exists.  A listed non-directory cannot have entries below it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from unroot.model.access import KINDS, FsTree, Inode
from unroot.model.acl import Acl
from unroot.model.errors import ParseError

_FIELDS = frozenset(
    {
        "type",
        "mode",
        "uid",
        "gid",
        "acl",
        "target",
        "readonly",
        "readonly_fs",
        "noexec",
        "immutable",
        "append_only",
    }
)
_MODE = re.compile(r"(?:0o|0)?([0-7]{1,4})")
IMPLIED_DIR = Inode("dir", 0o755, 0, 0)


def _check_key(path: object) -> str:
    if not isinstance(path, str) or not path.startswith("/") or "\0" in path:
        raise ParseError(f"tree keys must be absolute paths, not {path!r}")
    if path != "/" and (
        path.endswith("/") or any(p in ("", ".", "..") for p in path[1:].split("/"))
    ):
        raise ParseError(f"{path!r} is not a normalised path (no '.', '..', '//' or trailing '/')")
    return path


def _flag(entry: Mapping[str, Any], name: str, where: str) -> bool:
    value = entry.get(name, False)
    if not isinstance(value, bool):
        raise ParseError(f"{name!r} must be true or false", where)
    return value


def _number(entry: Mapping[str, Any], name: str, where: str) -> int:
    value = entry.get(name, 0)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFFFFFFFE:
        raise ParseError(f"{name!r} must be a number 0..4294967294, not {value!r}", where)
    return value


def _inode(path: str, entry: object) -> Inode:
    where = f"fs-json {path}"
    if not isinstance(entry, Mapping):
        raise ParseError("each path must map to an object", where)
    unknown = sorted(str(key) for key in entry if key not in _FIELDS)
    if unknown:
        raise ParseError(
            f"unknown field(s) {', '.join(unknown)} (known: {', '.join(sorted(_FIELDS))})", where
        )
    kind = entry.get("type")
    if kind not in KINDS:
        raise ParseError(f"'type' must be one of {', '.join(KINDS)}, not {kind!r}", where)
    acl_text = entry.get("acl")
    if acl_text is not None and not isinstance(acl_text, str):
        raise ParseError("'acl' must be getfacl text or null", where)
    try:
        acl = Acl.parse(acl_text) if acl_text is not None else None
    except ParseError as err:
        raise ParseError(str(err), where) from None
    raw_mode = entry.get("mode")
    if kind == "symlink":
        if acl is not None:
            raise ParseError("symlinks carry no ACL", where)
        mode = 0o777
    elif raw_mode is None:
        if acl is None:
            raise ParseError("'mode' is required (an octal string such as \"0755\")", where)
        mode = 0
    else:
        match = _MODE.fullmatch(raw_mode) if isinstance(raw_mode, str) else None
        if match is None:
            raise ParseError(
                f"'mode' must be an octal string such as \"0755\", not {raw_mode!r}", where
            )
        mode = int(match.group(1), 8)
    if acl is not None:
        mode = mode & ~0o777 | acl.mode_bits()
        if acl.is_minimal():
            acl = None
    target = entry.get("target")
    if kind == "symlink" and (not isinstance(target, str) or not target):
        raise ParseError("a symlink needs a non-empty 'target' string", where)
    if kind != "symlink" and target is not None:
        raise ParseError("only symlinks have a 'target'", where)
    try:
        return Inode(
            kind=kind,
            mode=mode,
            uid=_number(entry, "uid", where),
            gid=_number(entry, "gid", where),
            acl=acl,
            target=target,
            readonly_mount=_flag(entry, "readonly", where),
            readonly_fs=_flag(entry, "readonly_fs", where),
            noexec_mount=_flag(entry, "noexec", where),
            immutable=_flag(entry, "immutable", where),
            append_only=_flag(entry, "append_only", where),
        )
    except ParseError as err:
        raise ParseError(str(err), where) from None


def load_fs_json(data: object) -> dict[str, Inode]:
    """The parsed JSON document (a dict) → an FsTree; ParseError naming the path on bad input."""
    if not isinstance(data, Mapping):
        raise ParseError("fs-json must be an object mapping absolute paths to inodes")
    tree: dict[str, Inode] = {}
    for key, entry in data.items():
        tree[_check_key(key)] = _inode(key, entry)
    for path in list(tree):
        parent = path
        while parent != "/":
            parent = parent.rsplit("/", 1)[0] or "/"
            above = tree.setdefault(parent, IMPLIED_DIR)
            if above.kind != "dir":
                raise ParseError(
                    f"{parent} is a {above.kind} but {path} is listed below it", "fs-json"
                )
    tree.setdefault("/", IMPLIED_DIR)
    if tree["/"].kind != "dir":
        raise ParseError("/ must be a directory", "fs-json")
    return tree


def dump_fs_json(tree: FsTree) -> dict[str, dict[str, Any]]:
    """The inverse of :func:`load_fs_json` (every inode written out, defaults omitted)."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(tree):
        inode = tree[path]
        entry: dict[str, Any] = {"type": inode.kind}
        if inode.kind == "symlink":
            entry["target"] = inode.target
        else:
            entry["mode"] = f"{inode.mode:04o}"
        entry["uid"], entry["gid"] = inode.uid, inode.gid
        if inode.acl is not None:
            entry["acl"] = inode.acl.to_text()
        for name, value in (
            ("readonly", inode.readonly_mount),
            ("readonly_fs", inode.readonly_fs),
            ("noexec", inode.noexec_mount),
            ("immutable", inode.immutable),
            ("append_only", inode.append_only),
        ):
            if value:
                entry[name] = True
        out[path] = entry
    return out
