"""Reading an image's files without running it: layers top first, whiteouts, symlinks resolved
inside the image (merged /usr), the ``security.capability`` of a saved layer's PAX header, the
ENTRYPOINT/CMD chain and USER resolution."""

from __future__ import annotations

import io
import tarfile

import pytest

from unroot.errors import UsageError
from unroot.model.filecaps import FileCaps
from unroot.verify.image import ImageFacts, _TarLayer
from unroot.verify.predict import resolve_user

CAPS = FileCaps.from_text("cap_net_bind_service=+ep")


def _layer(*members: tuple[str, str, bytes | str]) -> _TarLayer:
    """(kind, name, data-or-target): kinds "file", "capfile", "dir", "symlink"."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for kind, name, data in members:
            info = tarfile.TarInfo(name)
            info.mode = 0o755
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = str(data)
                tar.addfile(info)
            else:
                raw = data if isinstance(data, bytes) else data.encode()
                info.size = len(raw)
                if kind == "capfile":
                    info.pax_headers = {
                        "SCHILY.xattr.security.capability": CAPS.encode().decode(
                            "utf-8", "surrogateescape"
                        )
                    }
                tar.addfile(info, io.BytesIO(raw))
    buffer.seek(0)
    return _TarLayer(tarfile.open(fileobj=buffer))


def _image(layers: list[_TarLayer], user: str = "", cmd: tuple[str, ...] = ()) -> ImageFacts:
    facts = ImageFacts("img", "ab" * 32, user, None, cmd or None, "/usr/local/bin:/usr/bin:/bin",
                       (80,), "save")  # fmt: skip
    facts.layers = layers
    return facts


BASE = _layer(
    ("symlink", "bin", "usr/bin"),
    ("dir", "usr", ""),
    ("dir", "usr/bin", ""),
    ("file", "usr/bin/busybox", "x"),
    ("file", "usr/bin/gone", "x"),
    ("dir", "etc", ""),
    ("file", "etc/passwd", "root:x:0:0::/root:/bin/sh\nwww:x:33:34::/var/www:/bin/sh\n"),
    ("file", "etc/group", "root:x:0:\nweb:x:80:\n"),
)
TOP = _layer(
    ("dir", "usr/local/bin", ""),
    ("capfile", "usr/local/bin/httpd", "x"),
    ("file", "usr/bin/.wh.gone", ""),
)


def test_lookup_through_layers() -> None:
    image = _image([TOP, BASE])
    found = image.lookup("/bin/busybox")
    assert found is not None
    assert found[0] == "/usr/bin/busybox"
    assert image.lookup("/bin/gone") is None  # whited out by the top layer
    assert image.lookup("/nonexistent") is None
    httpd = image.exec_file("httpd", None)
    assert httpd.path == "/usr/local/bin/httpd"
    assert httpd.file_caps == CAPS


def test_chain_of_cmd() -> None:
    image = _image([TOP, BASE], cmd=("/bin/sh", "-c", "exec httpd -f -p 80"))
    programs, files = image.chain(None, None)
    assert programs == ["/bin/sh", "httpd"]
    assert [f.file_caps for f in files] == [None, CAPS]
    programs, files = image.chain(("/usr/local/bin/httpd", "-p", "81"), None)
    assert programs == ["/usr/local/bin/httpd"]


@pytest.mark.parametrize(
    ("user", "ids"),
    [("", (0, 0)), ("10001", (10001, 0)), ("10001:10001", (10001, 10001)), ("www", (33, 34)),
     ("www:web", (33, 80)), ("33", (33, 34))],
)  # fmt: skip
def test_resolve_user(user: str, ids: tuple[int, int]) -> None:
    identity = resolve_user(_image([TOP, BASE], user=user), None)
    assert (identity.uid, identity.gid) == ids


def test_unknown_user_is_bad_input() -> None:
    with pytest.raises(UsageError, match="nobody-here"):
        resolve_user(_image([TOP, BASE]), "nobody-here")
