"""POSIX access ACLs: the ``system.posix_acl_access`` xattr and getfacl's text form — acl(5).

The xattr (include/uapi/linux/posix_acl_xattr.h) is little-endian: a u32 version (2), then
entries ``{u16 tag, u16 perm, u32 id}``.  Tags: USER_OBJ 0x01, USER 0x02, GROUP_OBJ 0x04,
GROUP 0x08, MASK 0x10, OTHER 0x20.  The id only means something for USER and GROUP entries;
the others carry ACL_UNDEFINED_ID (0xffffffff), which the kernel ignores on input.

Validity is fs/posix_acl.c posix_acl_valid(): perms within rwx; exactly one USER_OBJ, then the
USER entries, one GROUP_OBJ, the GROUP entries, a MASK (required when there is any USER or GROUP
entry), and one OTHER — in that order.  The kernel does not check that named ids are unique or
sorted; libacl's acl_valid(3) does, so the text parser (what setfacl takes) rejects duplicates
and :meth:`Acl.encode` writes entries sorted the way libacl and the filesystems store them.

The text form is getfacl's: ``user::rw-,user:1000:r--,group::r--,mask::r--,other::---``, one
entry per comma or line; ``u``/``g``/``m``/``o`` abbreviations, perms with or without dashes,
``#`` comments (getfacl's ``# file:`` headers and ``#effective:`` notes) are accepted.  Named
entries need numeric ids: the model does not read /etc/passwd.
"""

from __future__ import annotations

import itertools
import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from unroot.model.errors import ParseError

XATTR_NAME_ACL_ACCESS = "system.posix_acl_access"
POSIX_ACL_XATTR_VERSION = 0x0002
ACL_UNDEFINED_ID = 0xFFFFFFFF

ACL_USER_OBJ = 0x01
ACL_USER = 0x02
ACL_GROUP_OBJ = 0x04
ACL_GROUP = 0x08
ACL_MASK = 0x10
ACL_OTHER = 0x20

ACL_READ = 0x04
ACL_WRITE = 0x02
ACL_EXECUTE = 0x01

TAG_NAMES = {
    ACL_USER_OBJ: "user",
    ACL_USER: "user",
    ACL_GROUP_OBJ: "group",
    ACL_GROUP: "group",
    ACL_MASK: "mask",
    ACL_OTHER: "other",
}
_NAMED = (ACL_USER, ACL_GROUP)
_ID_MAX = 0xFFFFFFFF - 1  # (u32)-1 is ACL_UNDEFINED_ID
_HEADER = struct.Struct("<I")
_ENTRY = struct.Struct("<HHI")
_TEXT_TAGS = {"u": "user", "user": "user", "g": "group", "group": "group"}
_TEXT_TAGS |= {"m": "mask", "mask": "mask", "o": "other", "other": "other"}
_PERM_TEXT = re.compile(r"[rwx-]{0,3}")


def perm_text(perm: int) -> str:
    """``rw-`` for 6: the three-character form getfacl and ls print."""
    return "".join(ch if perm & bit else "-" for ch, bit in (("r", 4), ("w", 2), ("x", 1)))


def parse_perm(text: str) -> int:
    """``r-x``, ``rx``, ``-`` or empty → a 0..7 perm; ParseError for anything else."""
    if not _PERM_TEXT.fullmatch(text) or any(text.count(ch) > 1 for ch in "rwx"):
        raise ParseError(f"bad permission {text!r} (expected up to three of r, w, x, or '-')")
    return sum(bit for ch, bit in (("r", 4), ("w", 2), ("x", 1)) if ch in text)


@dataclass(frozen=True, slots=True)
class AclEntry:
    """One ACL entry. ``id`` is the uid (USER) or gid (GROUP), None for the other tags."""

    tag: int
    id: int | None
    perm: int

    def __post_init__(self) -> None:
        if self.tag not in TAG_NAMES:
            raise ParseError(f"unknown ACL tag {self.tag:#x}")
        if not 0 <= self.perm <= 7:
            raise ParseError(f"ACL perm {self.perm:#x} has bits other than rwx")
        if self.tag in _NAMED:
            if self.id is None or not 0 <= self.id <= _ID_MAX:
                raise ParseError(f"{TAG_NAMES[self.tag]} entry needs an id in 0..{_ID_MAX}")
        elif self.id is not None:
            raise ParseError(f"{TAG_NAMES[self.tag]}:: entries carry no id")

    def to_text(self) -> str:
        qualifier = "" if self.id is None else str(self.id)
        return f"{TAG_NAMES[self.tag]}:{qualifier}:{perm_text(self.perm)}"


def _validate(entries: tuple[AclEntry, ...]) -> None:
    """posix_acl_valid(): the state machine over the entry order."""
    state = ACL_USER_OBJ
    needs_mask = False
    for entry in entries:
        tag = entry.tag
        if tag == ACL_USER_OBJ and state == ACL_USER_OBJ:
            state = ACL_USER
        elif tag == ACL_USER and state == ACL_USER:
            needs_mask = True
        elif tag == ACL_GROUP_OBJ and state == ACL_USER:
            state = ACL_GROUP
        elif tag == ACL_GROUP and state == ACL_GROUP:
            needs_mask = True
        elif tag == ACL_MASK and state == ACL_GROUP:
            state = ACL_OTHER
        elif tag == ACL_OTHER and (state == ACL_OTHER or (state == ACL_GROUP and not needs_mask)):
            state = 0
        else:
            raise ParseError(_invalid_because(entries, entry))
    if state != 0:
        missing = {ACL_USER_OBJ: "user::", ACL_USER: "group::", ACL_GROUP: "other::"}.get(state)
        if state == ACL_GROUP and needs_mask:
            missing = "mask::"
        raise ParseError(f"invalid ACL: {missing or 'other::'} entry missing")


def _invalid_because(entries: tuple[AclEntry, ...], entry: AclEntry) -> str:
    tags = [e.tag for e in entries]
    if tags.count(entry.tag) > 1 and entry.tag not in _NAMED:
        return f"invalid ACL: more than one {TAG_NAMES[entry.tag]}:: entry"
    if entry.tag == ACL_OTHER:
        return "invalid ACL: a mask:: entry is required when named user or group entries exist"
    return (
        f"invalid ACL: {entry.to_text()} is out of order "
        "(user::, user:ID…, group::, group:ID…, mask::, other::)"
    )


@dataclass(frozen=True, slots=True)
class Acl:
    """A valid access ACL, entries in the kernel's order (validated on construction)."""

    entries: tuple[AclEntry, ...]

    def __post_init__(self) -> None:
        _validate(self.entries)

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def of(cls, entries: Iterable[AclEntry]) -> Acl:
        """Sort entries into the canonical order (tag, then id) and validate; no duplicates."""
        ordered = tuple(sorted(entries, key=lambda e: (e.tag, -1 if e.id is None else e.id)))
        for first, second in itertools.pairwise(ordered):
            if (first.tag, first.id) == (second.tag, second.id):
                raise ParseError(f"duplicate ACL entry {second.to_text()}")
        return cls(ordered)

    @classmethod
    def from_mode(cls, mode: int) -> Acl:
        """The minimal ACL equivalent to permission bits (posix_acl_from_mode)."""
        return cls(
            (
                AclEntry(ACL_USER_OBJ, None, (mode >> 6) & 7),
                AclEntry(ACL_GROUP_OBJ, None, (mode >> 3) & 7),
                AclEntry(ACL_OTHER, None, mode & 7),
            )
        )

    @classmethod
    def decode(cls, data: bytes) -> Acl:
        """posix_acl_from_xattr() + posix_acl_valid(); ParseError for bytes the kernel refuses."""
        if len(data) < _HEADER.size or (len(data) - _HEADER.size) % _ENTRY.size:
            raise ParseError(f"{XATTR_NAME_ACL_ACCESS} of {len(data)} bytes is not 4 + 8·n bytes")
        (version,) = _HEADER.unpack_from(data)
        if version != POSIX_ACL_XATTR_VERSION:
            raise ParseError(f"{XATTR_NAME_ACL_ACCESS} version {version} (the kernel takes 2)")
        entries = []
        for offset in range(_HEADER.size, len(data), _ENTRY.size):
            tag, perm, ident = _ENTRY.unpack_from(data, offset)
            if tag not in TAG_NAMES:
                raise ParseError(f"unknown ACL tag {tag:#x} at byte {offset}")
            if tag in _NAMED and ident == ACL_UNDEFINED_ID:
                raise ParseError(f"{TAG_NAMES[tag]} entry with the undefined id at byte {offset}")
            entries.append(AclEntry(tag, ident if tag in _NAMED else None, perm))
        if not entries:
            raise ParseError(f"{XATTR_NAME_ACL_ACCESS} has no entries")
        return cls(tuple(entries))

    @classmethod
    def parse(cls, text: str) -> Acl:
        """getfacl/setfacl text: entries separated by commas or newlines; see the module doc."""
        entries = []
        for raw in re.split(r"[,\n]", text):
            item = raw.split("#", 1)[0].strip()
            if not item:
                continue
            parts = [part.strip() for part in item.split(":")]
            if parts[0] in ("d", "default"):
                raise ParseError(f"{item!r} is a default ACL entry; only access ACLs apply here")
            if len(parts) != 3:
                raise ParseError(f"ACL entry {item!r} is not tag:qualifier:perms")
            word, qualifier, perms = parts
            tag_name = _TEXT_TAGS.get(word.lower())
            if tag_name is None:
                raise ParseError(f"unknown ACL tag {word!r} in {item!r} (user, group, mask, other)")
            perm = parse_perm(perms)
            if not qualifier:
                tag = {"user": ACL_USER_OBJ, "group": ACL_GROUP_OBJ}.get(tag_name)
                tag = tag or (ACL_MASK if tag_name == "mask" else ACL_OTHER)
                entries.append(AclEntry(tag, None, perm))
                continue
            if tag_name not in ("user", "group"):
                raise ParseError(f"{tag_name} entries take no qualifier: {item!r}")
            if not qualifier.isdigit() or not qualifier.isascii():
                raise ParseError(
                    f"{item!r}: use a numeric {'uid' if tag_name == 'user' else 'gid'}"
                )
            entries.append(
                AclEntry(ACL_USER if tag_name == "user" else ACL_GROUP, int(qualifier), perm)
            )
        if not entries:
            raise ParseError("empty ACL")
        return cls.of(entries)

    # -- output ---------------------------------------------------------------------------
    def encode(self) -> bytes:
        """The xattr bytes, as posix_acl_to_xattr() writes them."""
        out = bytearray(_HEADER.pack(POSIX_ACL_XATTR_VERSION))
        for entry in self.entries:
            ident = ACL_UNDEFINED_ID if entry.id is None else entry.id
            out += _ENTRY.pack(entry.tag, entry.perm, ident)
        return bytes(out)

    def to_text(self) -> str:
        """getfacl's short form: comma-separated, canonical order."""
        return ",".join(entry.to_text() for entry in self.entries)

    def __str__(self) -> str:
        return self.to_text()

    # -- queries --------------------------------------------------------------------------
    def _one(self, tag: int) -> AclEntry | None:
        return next((e for e in self.entries if e.tag == tag), None)

    @property
    def user_obj(self) -> int:
        entry = self._one(ACL_USER_OBJ)
        assert entry is not None  # guaranteed by validation
        return entry.perm

    @property
    def group_obj(self) -> int:
        entry = self._one(ACL_GROUP_OBJ)
        assert entry is not None
        return entry.perm

    @property
    def other(self) -> int:
        entry = self._one(ACL_OTHER)
        assert entry is not None
        return entry.perm

    @property
    def mask(self) -> int | None:
        entry = self._one(ACL_MASK)
        return None if entry is None else entry.perm

    @property
    def users(self) -> dict[int, int]:
        return {e.id: e.perm for e in self.entries if e.tag == ACL_USER and e.id is not None}

    @property
    def groups(self) -> dict[int, int]:
        return {e.id: e.perm for e in self.entries if e.tag == ACL_GROUP and e.id is not None}

    def is_minimal(self) -> bool:
        """Only user::, group::, other:: — equivalent to mode bits; the kernel stores no xattr."""
        return len(self.entries) == 3

    def mode_bits(self) -> int:
        """The rwx bits of i_mode this ACL implies (posix_acl_equiv_mode): group bits = mask."""
        group = self.mask if self.mask is not None else self.group_obj
        return self.user_obj << 6 | group << 3 | self.other

    def with_chmod(self, mode: int) -> Acl:
        """posix_acl_chmod(): owner/other follow the mode, the mask (or group::) the group bits."""
        group_tag = ACL_MASK if self.mask is not None else ACL_GROUP_OBJ
        new = {ACL_USER_OBJ: (mode >> 6) & 7, group_tag: (mode >> 3) & 7, ACL_OTHER: mode & 7}
        return Acl(tuple(AclEntry(e.tag, e.id, new.get(e.tag, e.perm)) for e in self.entries))

    def base(self) -> Acl:
        """Only ``user::``, ``group::`` and ``other::``: what ``setfacl -d -m`` starts a directory's
        new default ACL from when it has none (libacl copies them from the access ACL)."""
        return Acl(
            tuple(e for e in self.entries if e.tag in (ACL_USER_OBJ, ACL_GROUP_OBJ, ACL_OTHER))
        )

    def modified(self, changes: Iterable[AclEntry]) -> Acl:
        """``setfacl -m SPEC,...``: add or replace each entry (named or base), then recalculate
        the mask as setfacl does — the union of the group class (named users, ``group::``, named
        groups) — whenever the result has named entries or already had a mask."""
        table = {(e.tag, e.id): e for e in self.entries}
        for change in changes:
            if change.tag == ACL_MASK:
                raise ParseError("an explicit mask:: entry is not supported; setfacl computes it")
            table[(change.tag, change.id)] = change
        named = any(tag in _NAMED for tag, _ in table)
        if named or (ACL_MASK, None) in table:
            group_class = 0
            for (tag, _), entry in table.items():
                if tag in (ACL_USER, ACL_GROUP_OBJ, ACL_GROUP):
                    group_class |= entry.perm
            table[(ACL_MASK, None)] = AclEntry(ACL_MASK, None, group_class)
        return Acl.of(table.values())

    def with_entry(self, tag: int, ident: int, perm: int) -> Acl:
        """``setfacl -m``: add or replace a named entry, then recalculate the mask as setfacl does
        (the union of every group-class entry)."""
        kept = [
            e for e in self.entries if not (e.tag == tag and e.id == ident) and e.tag != ACL_MASK
        ]
        kept.append(AclEntry(tag, ident, perm))
        group_class = 0
        for entry in kept:
            if entry.tag in (ACL_USER, ACL_GROUP_OBJ, ACL_GROUP):
                group_class |= entry.perm
        kept.append(AclEntry(ACL_MASK, None, group_class))
        return Acl.of(kept)
