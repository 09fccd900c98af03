"""What Docker's classic builder (DOCKER_BUILDKIT=0) does to ``security.capability``.

Observed on Docker 20.10.24+dfsg1 (Debian 12 docker.io, containerd 1.6.20, runc 1.1.5, overlay2,
Linux 6.18) with ``images/xattrs/Dockerfile``; the expected values below are those observations:

(a) ``RUN setcap cap_net_bind_service=+ep /a`` — kept, in a later RUN and in the container;
(b) ``COPY hostcapped /b`` of a context file carrying file caps on the host — lost;
(c) ``COPY --from=builder /x /c`` of a file setcap'd in that stage — lost (the builder stage
    itself had them: ``/c.builder`` is its getcap output);
(d) ``RUN cp … && setcap … && chown 0:0 /d`` — lost (any chown strips the xattr);
(e) ``RUN cp /a /e1 && cp -a /a /e2`` — ``cp`` loses them, ``cp -a`` keeps them;
(f) ``COPY payload /f`` then ``RUN setcap … /f`` — kept, but the setcap layer stores the whole
    file again (an xattr change is a copy-up): both layers are the payload's size;
(g) setcap, then ``RUN chown 0:0 /g`` in a later RUN — lost, and that layer stores /g again.

So KERNEL-NOTES' "classic builder loses security.capability on COPY and COPY --from" holds on
this version too. A different engine version that disagrees fails here with its version named.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

import pytest
from _engine import IMAGES, Engine, Lab, parse_getcap

from unroot.facts.docker import Layer, RunOptions
from unroot.facts.filecaps import read_file_caps
from unroot.model.filecaps import FileCaps

pytestmark = [pytest.mark.root, pytest.mark.engine]

NBS_EP = FileCaps.from_text("cap_net_bind_service=+ep")
PAYLOAD_SIZE = 1_500_007
PATHS = ("/a", "/b", "/c", "/d", "/e1", "/e2", "/f", "/g")
#: path → the file caps it has in the built image (None: lost).
EXPECTED: dict[str, FileCaps | None] = {
    "/a": NBS_EP,
    "/b": None,
    "/c": None,
    "/d": None,
    "/e1": None,
    "/e2": NBS_EP,
    "/f": NBS_EP,
    "/g": None,
}
WHY = {
    "/a": "(a) setcap in a RUN",
    "/b": "(b) COPY of a context file with host file caps",
    "/c": "(c) COPY --from=builder of a setcap'd file",
    "/d": "(d) chown after setcap in the same RUN",
    "/e1": "(e) cp without -a",
    "/e2": "(e) cp -a",
    "/f": "(f) setcap in its own RUN after COPY",
    "/g": "(g) chown in a RUN after setcap",
}


@dataclass(frozen=True)
class Built:
    caps: dict[str, FileCaps | None]
    later: str  # getcap /a as a later RUN saw it
    builder: str  # getcap /x in the builder stage
    layers: list[Layer]
    busybox_size: int


@pytest.fixture(scope="module")
def built(module_lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Built:
    context = tmp_path_factory.mktemp("xattrs")
    shutil.copy(IMAGES / "xattrs" / "Dockerfile", context / "Dockerfile")
    hostcapped = context / "hostcapped"
    shutil.copy("/usr/bin/true", hostcapped)
    os.setxattr(hostcapped, "security.capability", NBS_EP.encode())
    assert read_file_caps(str(hostcapped)) == NBS_EP, "could not set file caps on the host"
    payload = context / "payload"
    payload.write_bytes(os.urandom(PAYLOAD_SIZE))  # random: never shared with a cached layer
    payload.chmod(0o755)

    image = module_lab.build(context, "xattrs", stages=("builder",))
    script = "getcap " + " ".join(PATHS) + "; echo ==; cat /a.later; echo ==; cat /c.builder; "
    script += "echo ==; stat -c %s /bin/busybox"
    done = module_lab.run(image, ["sh", "-c", script], RunOptions())
    assert done.ok, done.stderr
    caps_text, later, builder, size = done.stdout.split("==\n")
    found = parse_getcap(caps_text)
    caps = {p: FileCaps.from_text(found[p]) if p in found else None for p in PATHS}
    layers = module_lab.docker.history(image)
    return Built(caps, later.strip(), builder.strip(), layers, int(size))


@pytest.mark.parametrize("path", PATHS)
def test_file_caps_after_classic_build(built: Built, engine: Engine, path: str) -> None:
    want = EXPECTED[path]
    got = built.caps[path]
    assert got == want, (
        f"{WHY[path]}: expected {'kept' if want else 'lost'}, observed "
        f"{got.to_text() if got else 'lost'} on {engine.describe()}"
    )


def test_setcap_in_run_is_seen_by_later_run(built: Built) -> None:
    assert built.later == "/a cap_net_bind_service=ep"


def test_builder_stage_had_the_caps_copy_from_dropped(built: Built) -> None:
    assert built.builder == "/x cap_net_bind_service=ep"


def _layer(layers: list[Layer], needle: str) -> Layer:
    matches = [layer for layer in layers if needle in layer.created_by]
    assert len(matches) == 1, f"{needle!r} in {[layer.created_by for layer in layers]}"
    return matches[0]


def _about(size: int, want: int) -> bool:
    """A layer holding one file of ``want`` bytes (plus a few directory entries)."""
    return want <= size <= want + 16 * 1024


def test_setcap_after_copy_stores_the_file_twice(built: Built, engine: Engine) -> None:
    copy = _layer(built.layers, " in /f")
    setcap = _layer(built.layers, "setcap cap_net_bind_service=+ep /f")
    assert _about(copy.size, PAYLOAD_SIZE), copy
    assert _about(setcap.size, PAYLOAD_SIZE), (
        f"the setcap layer should store the {PAYLOAD_SIZE}-byte file again on "
        f"{engine.describe()}: {setcap}"
    )


def test_chown_in_later_run_stores_the_file_again(built: Built) -> None:
    assert _about(_layer(built.layers, "chown 0:0 /g").size, built.busybox_size)


def test_setcap_in_the_installing_run_stores_it_once(built: Built) -> None:
    # Seed 002's recipe: install + setcap in one RUN → one copy of the binary in one layer.
    layer = _layer(built.layers, "cp /bin/busybox /a && setcap")
    assert _about(layer.size, built.busybox_size)
