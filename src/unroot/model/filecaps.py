"""The ``security.capability`` extended attribute: struct vfs_ns_cap_data.

include/uapi/linux/capability.h and security/commoncap.c (get_vfs_caps_from_disk,
cap_convert_nscap).  Little-endian u32 words:

===  ==========  =====  ================================================
rev  magic       bytes  words
===  ==========  =====  ================================================
1    0x01000000  12     magic_etc, permitted, inheritable
2    0x02000000  20     magic_etc, perm[0], inh[0], perm[1], inh[1]
3    0x03000000  24     as revision 2, then rootid (a uid in the fs's user namespace)
===  ==========  =====  ================================================

``magic_etc | 1`` (VFS_CAP_FLAGS_EFFECTIVE) is the file's single effective bit.  The kernel
rejects any size that does not match the revision's (get_vfs_caps_from_disk returns -EINVAL), and
any flag other than the effective bit.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, replace

from unroot.model.caps import EMPTY, CapSet, FileCapText
from unroot.model.errors import ParseError

VFS_CAP_REVISION_MASK = 0xFF000000
VFS_CAP_FLAGS_MASK = ~VFS_CAP_REVISION_MASK & 0xFFFFFFFF
VFS_CAP_FLAGS_EFFECTIVE = 0x000001
_MAGIC = {1: 0x01000000, 2: 0x02000000, 3: 0x03000000}
_SIZE = {1: 12, 2: 20, 3: 24}
XATTR_NAME_CAPS = "security.capability"
_ROOTID = re.compile(r"\s*\[?\s*rootid\s*=\s*(\d+)\s*\]?\s*$")


@dataclass(frozen=True, slots=True)
class FileCaps:
    """A file's capabilities: permitted, inheritable, the effective bit, and for v3 the rootid."""

    permitted: CapSet = EMPTY
    inheritable: CapSet = EMPTY
    effective: bool = False
    revision: int = 2
    rootid: int | None = None

    def __post_init__(self) -> None:
        if self.revision not in _MAGIC:
            raise ParseError(f"security.capability revision must be 1, 2 or 3, not {self.revision}")
        if (self.rootid is not None) != (self.revision == 3):
            raise ParseError("a rootid belongs to revision 3 file capabilities only")
        if self.revision == 1 and (self.permitted.mask | self.inheritable.mask) >> 32:
            raise ParseError("revision 1 file capabilities hold only capabilities 0..31")

    # -- the on-disk bytes ----------------------------------------------------------------
    @classmethod
    def decode(cls, data: bytes) -> FileCaps:
        """Decode the xattr value exactly as get_vfs_caps_from_disk() validates it."""
        if len(data) < 4:
            raise ParseError(f"security.capability is {len(data)} bytes, too short for a header")
        (magic_etc,) = struct.unpack_from("<I", data)
        revision = (magic_etc & VFS_CAP_REVISION_MASK) >> 24
        if revision not in _MAGIC:
            raise ParseError(f"security.capability has unknown revision {magic_etc:#010x}")
        if len(data) != _SIZE[revision]:
            raise ParseError(
                f"security.capability revision {revision} must be {_SIZE[revision]} bytes, "
                f"not {len(data)} (the kernel returns EINVAL)"
            )
        if magic_etc & VFS_CAP_FLAGS_MASK & ~VFS_CAP_FLAGS_EFFECTIVE:
            raise ParseError(f"security.capability has unknown flags {magic_etc:#010x}")
        words = struct.unpack(f"<{len(data) // 4}I", data)
        if revision == 1:
            permitted, inheritable = words[1], words[2]
        else:
            permitted = words[1] | words[3] << 32
            inheritable = words[2] | words[4] << 32
        return cls(
            permitted=CapSet(permitted),
            inheritable=CapSet(inheritable),
            effective=bool(magic_etc & VFS_CAP_FLAGS_EFFECTIVE),
            revision=revision,
            rootid=words[5] if revision == 3 else None,
        )

    @classmethod
    def from_hex(cls, text: str) -> FileCaps:
        """Raw xattr bytes as hex (``0x0100000200040000…``, spaces and ``:`` allowed)."""
        cleaned = "".join(text.split()).replace(":", "").lower().removeprefix("0x")
        try:
            data = bytes.fromhex(cleaned)
        except ValueError:
            raise ParseError(f"not a hex byte string: {text!r}") from None
        return cls.decode(data)

    def encode(self) -> bytes:
        """The exact xattr bytes (what setxattr(2) would be given)."""
        magic = _MAGIC[self.revision] | (VFS_CAP_FLAGS_EFFECTIVE if self.effective else 0)
        p, i = self.permitted.mask, self.inheritable.mask
        if self.revision == 1:
            return struct.pack("<3I", magic, p, i)
        words = [magic, p & 0xFFFFFFFF, i & 0xFFFFFFFF, p >> 32, i >> 32]
        if self.revision == 3:
            words.append(self.rootid or 0)
        return struct.pack(f"<{len(words)}I", *words)

    # -- the text form --------------------------------------------------------------------
    @classmethod
    def from_text(cls, text: str) -> FileCaps:
        """setcap(8) text such as ``cap_net_bind_service=+ep``.

        The file has one effective bit, so like setcap(8) the text must raise ``e`` for all of
        its permitted and inheritable capabilities or for none.  A trailing ``rootid=N`` (as
        getcap(8) prints it, brackets allowed) makes a revision 3 entry for that rootid, as
        ``setcap -n N`` writes it.
        """
        rootid = None
        match = _ROOTID.search(text)
        if match:
            rootid = int(match.group(1))
            if rootid > 0xFFFFFFFF:
                raise ParseError(f"file capability text {text!r}: rootid must be a 32-bit uid")
            text = text[: match.start()]
        parsed = FileCapText.parse(text)
        if parsed.effective and parsed.effective != parsed.permitted | parsed.inheritable:
            # setcap(8) refuses the same text: a file has one effective bit, not a set.
            raise ParseError(
                f"file capability text {text!r}: effective must be empty or exactly the "
                "permitted and inheritable capabilities (a file has a single effective bit)"
            )
        caps = cls(parsed.permitted, parsed.inheritable, bool(parsed.effective))
        return caps if rootid is None else replace(caps, revision=3, rootid=rootid)

    def to_text(self) -> str:
        """getcap-style text (``cap_net_bind_service=ep``)."""
        effective = self.permitted | self.inheritable if self.effective else EMPTY
        return FileCapText(self.permitted, self.inheritable, effective).to_text()

    def to_json(self) -> dict[str, object]:
        return {
            "text": self.to_text(),
            "permitted": self.permitted.names(),
            "inheritable": self.inheritable.names(),
            "effective": self.effective,
            "revision": self.revision,
            "rootid": self.rootid,
            "hex": self.encode().hex(),
        }
