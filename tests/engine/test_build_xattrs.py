"""What Docker's two builders do to ``security.capability``: the classic builder
(``DOCKER_BUILDKIT=0``) and the BuildKit the daemon embeds (``DOCKER_BUILDKIT=1``, no buildx).

Observed on Docker 20.10.24+dfsg1 (Debian 12 docker.io, containerd 1.6.20, runc 1.1.5, overlay2,
Linux 6.18) — its BuildKit is v0.8.3-31-gc0149372 (moby's 20.10 branch since 20.10.20) with the
builtin Dockerfile frontend, which resolves ``FROM unroot-base:bookworm`` from the local image
store — with ``images/xattrs/Dockerfile``; the expected values below are those observations:

====  ===========================================================  =======  ========
case  instruction                                                  classic  BuildKit
====  ===========================================================  =======  ========
(a)   ``RUN setcap cap_net_bind_service=+ep /a``                   kept     kept
(b)   ``COPY hostcapped /b``, a context file with host file caps   lost     lost
(c)   ``COPY --from=builder /x /c``, setcap'd in that stage        lost     **kept**
(d)   ``RUN cp … && setcap … && chown 0:0 /d``                     lost     lost
(e)   ``RUN cp /a /e1 && cp -a /a /e2``                            e1 lost  e1 lost
                                                                   e2 kept  e2 kept
(f)   ``COPY payload /f`` then ``RUN setcap … /f``                 kept     kept
(g)   setcap, then ``RUN chown 0:0 /g`` in a later RUN             lost     lost
====  ===========================================================  =======  ========

(a) is seen by a later RUN too; in (c) the builder stage itself had the caps (``/c.builder`` is
its getcap output); in (f) the setcap layer stores the whole file again (an xattr change is a
copy-up: both layers are the payload's size, under both builders); in (g) the chown layer
stores /g again.  Only (c) differs: KERNEL-NOTES' "the classic builder loses security.capability
on COPY --from, BuildKit keeps it" holds on this version.  Classic (a) is kept since 20.10.18
(moby/moby#43876, backport of #42934: "file capabilities dropping when moving to next command").

Also observed with ``images/mount/Dockerfile``: under BuildKit,
``RUN --mount=type=bind,source=hostcapped,target=/mnt/hostcapped cp -a /mnt/hostcapped /m`` gives
/m no file caps, and getcap sees none on the mount itself — the context transfer drops the
xattr before the mount, so ``cp -a`` has nothing to keep; the classic builder refuses the
instruction ("the --mount option requires BuildKit"); a heredoc (``RUN <<EOT``) is refused by
both ("unknown instruction": heredocs need Dockerfile frontend ≥ 1.4, BuildKit 0.8 ships 1.2).

BuildKit's cache shares a COPY layer between sources: it keys a COPY by the checksum of the
copied file — its name, mode, bytes *and* xattrs — not by whether it comes from the context or
another stage.  So after ``COPY --from=build /x /x`` of a setcap'd ``x``, a context ``COPY x /x``
of a file with the same name, bytes and host file caps reuses that layer and *keeps* them; after
such a context COPY, the ``COPY --from`` reuses the context's layer and *loses* them.  The
table's values are for a fresh cache; the files the tests copy carry random bytes so that no
cache holds them.

A different engine or BuildKit version that disagrees fails here with its versions named.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from _engine import BUILDERS, IMAGES, LABEL, Builder, Engine, Lab, parse_getcap

from unroot.engine.docker import DockerFailed, Layer, RunOptions
from unroot.facts.filecaps import read_file_caps
from unroot.model.filecaps import FileCaps

pytestmark = [pytest.mark.root, pytest.mark.engine]

NBS_EP = FileCaps.from_text("cap_net_bind_service=+ep")
PAYLOAD_SIZE = 1_500_007
PATHS = ("/a", "/b", "/c", "/d", "/e1", "/e2", "/f", "/g")
#: path → the file caps it has in the image the classic builder makes (None: lost).
CLASSIC: dict[str, FileCaps | None] = {
    "/a": NBS_EP,
    "/b": None,
    "/c": None,
    "/d": None,
    "/e1": None,
    "/e2": NBS_EP,
    "/f": NBS_EP,
    "/g": None,
}
EXPECTED: dict[Builder, dict[str, FileCaps | None]] = {
    "classic": CLASSIC,
    "buildkit": {**CLASSIC, "/c": NBS_EP},  # BuildKit copies xattrs on COPY --from
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
    builder: Builder
    caps: dict[str, FileCaps | None]
    later: str  # getcap /a as a later RUN saw it
    stage: str  # getcap /x in the builder stage
    layers: list[Layer]
    busybox_size: int


def capped_copy(path: Path, source: str = "/usr/bin/true") -> None:
    """A copy of ``source`` at ``path``, made unique by trailing random bytes (so that no build
    cache holds it: see :func:`test_buildkit_cache_shares_copy_layers_across_sources`), mode
    0755, with cap_net_bind_service=+ep set on the host."""
    path.write_bytes(Path(source).read_bytes() + os.urandom(16))
    path.chmod(0o755)
    os.setxattr(path, "security.capability", NBS_EP.encode())
    assert read_file_caps(str(path)) == NBS_EP, "could not set file caps on the host"


@pytest.fixture(scope="module")
def xattrs_context(tmp_path_factory: pytest.TempPathFactory) -> Path:
    context = tmp_path_factory.mktemp("xattrs")
    shutil.copy(IMAGES / "xattrs" / "Dockerfile", context / "Dockerfile")
    capped_copy(context / "hostcapped")
    payload = context / "payload"
    payload.write_bytes(os.urandom(PAYLOAD_SIZE))  # random: never shared with a cached layer
    payload.chmod(0o755)
    return context


@pytest.fixture(scope="module", params=BUILDERS)
def built(request: pytest.FixtureRequest, module_lab: Lab, xattrs_context: Path) -> Built:
    builder: Builder = request.param
    image = module_lab.build(xattrs_context, "xattrs", stages=("builder",), builder=builder)
    script = "getcap " + " ".join(PATHS) + "; echo ==; cat /a.later; echo ==; cat /c.builder; "
    script += "echo ==; stat -c %s /bin/busybox"
    done = module_lab.run(image, ["sh", "-c", script], RunOptions())
    assert done.ok, done.stderr
    caps_text, later, stage, size = done.stdout.split("==\n")
    found = parse_getcap(caps_text)
    caps = {p: FileCaps.from_text(found[p]) if p in found else None for p in PATHS}
    layers = module_lab.docker.history(image)
    return Built(builder, caps, later.strip(), stage.strip(), layers, int(size))


@pytest.mark.parametrize("path", PATHS)
def test_file_caps_after_build(built: Built, engine: Engine, path: str) -> None:
    want = EXPECTED[built.builder][path]
    got = built.caps[path]
    assert got == want, (
        f"{WHY[path]}: expected {'kept' if want else 'lost'}, observed "
        f"{got.to_text() if got else 'lost'} with {engine.describe(built.builder)}"
    )


def test_setcap_in_run_is_seen_by_later_run(built: Built) -> None:
    assert built.later == "/a cap_net_bind_service=ep"


def test_builder_stage_had_the_caps(built: Built) -> None:
    assert built.stage == "/x cap_net_bind_service=ep"


def _instruction(layer: Layer) -> str:
    """``created_by`` without the classic builder's ``/bin/sh -c #(nop)`` and BuildKit's
    ``# buildkit`` marks."""
    text = layer.created_by.strip().removesuffix("# buildkit").strip()
    return text.removeprefix("/bin/sh -c #(nop)").strip()


def _layer(layers: list[Layer], needle: str, *, copy_to: str | None = None) -> Layer:
    """The one layer whose instruction contains ``needle``; with ``copy_to``: the COPY into
    that path (classic: ``COPY file:<sum> in /f``, BuildKit: ``COPY payload /f``)."""
    matches = [
        layer
        for layer in layers
        if needle in _instruction(layer)
        and (copy_to is None or _instruction(layer).endswith(f" {copy_to}"))
    ]
    assert len(matches) == 1, f"{needle!r} in {[layer.created_by for layer in layers]}"
    return matches[0]


def _about(size: int, want: int) -> bool:
    """A layer holding one file of ``want`` bytes (plus a few directory entries)."""
    return want <= size <= want + 16 * 1024


def test_setcap_after_copy_stores_the_file_twice(built: Built, engine: Engine) -> None:
    copy = _layer(built.layers, "COPY ", copy_to="/f")
    setcap = _layer(built.layers, "setcap cap_net_bind_service=+ep /f")
    assert _about(copy.size, PAYLOAD_SIZE), copy
    assert _about(setcap.size, PAYLOAD_SIZE), (
        f"the setcap layer should store the {PAYLOAD_SIZE}-byte file again with "
        f"{engine.describe(built.builder)}: {setcap}"
    )


def test_chown_in_later_run_stores_the_file_again(built: Built) -> None:
    assert _about(_layer(built.layers, "chown 0:0 /g").size, built.busybox_size)


def test_setcap_in_the_installing_run_stores_it_once(built: Built) -> None:
    # Seed 002's recipe: install + setcap in one RUN → one copy of the binary in one layer.
    layer = _layer(built.layers, "cp /bin/busybox /a && setcap")
    assert _about(layer.size, built.busybox_size)


def test_buildkit_honours_target_label_and_build_args(
    module_lab: Lab, engine: Engine, xattrs_context: Path
) -> None:
    """``Docker.build(buildkit=True)`` with --target, --label and --build-arg, as the classic
    builder does: the builder stage alone, labelled, from the BASE given."""
    tag = f"unroot-test-xattrs-target-bk:{engine.session}"
    module_lab.images.append(tag)
    image_id = module_lab.docker.build(
        xattrs_context,
        tag=tag,
        buildkit=True,
        target="builder",
        build_args={"BASE": engine.base},
        labels={LABEL: engine.session},
    )
    assert image_id.startswith("sha256:"), image_id
    config = module_lab.docker.inspect(tag, "image")["Config"]
    assert config["Labels"].get(LABEL) == engine.session, config["Labels"]
    done = module_lab.run(tag, ["sh", "-c", "cat /x.caps; test ! -e /a && echo no-a"])
    assert done.stdout.split("\n")[:2] == ["/x cap_net_bind_service=ep", "no-a"], done


# -- RUN --mount and heredocs ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def mount_context(tmp_path_factory: pytest.TempPathFactory) -> Path:
    context = tmp_path_factory.mktemp("mount")
    shutil.copy(IMAGES / "mount" / "Dockerfile", context / "Dockerfile")
    capped_copy(context / "hostcapped")
    return context


def test_buildkit_bind_mount_of_a_capped_context_file_has_no_caps(
    module_lab: Lab, engine: Engine, mount_context: Path
) -> None:
    image = module_lab.build(mount_context, "mount", builder="buildkit")
    done = module_lab.run(image, ["sh", "-c", "cat /m.mount; echo ==; getcap /m"], RunOptions())
    assert done.ok, done.stderr
    on_mount, copied = (part.strip() for part in done.stdout.split("=="))
    where = engine.describe("buildkit")
    assert on_mount == "", f"the bind mount itself carried file caps ({on_mount}) with {where}"
    assert copied == "", f"cp -a from the bind mount kept file caps ({copied}) with {where}"


def _refusal(lab: Lab, context: Path, name: str, builder: Builder) -> str | None:
    """What ``docker build`` said when it refused the Dockerfile; None when it built it."""
    try:
        lab.build(context, name, builder=builder)
    except DockerFailed as exc:
        return exc.result.stderr
    return None


def test_classic_builder_refuses_run_mount(
    module_lab: Lab, engine: Engine, mount_context: Path
) -> None:
    said = _refusal(module_lab, mount_context, "mount", "classic")
    assert said is not None, f"RUN --mount built with {engine.describe('classic')}"
    assert "--mount option requires BuildKit" in said, said


@pytest.mark.parametrize("builder", BUILDERS)
def test_heredoc_is_refused(lab: Lab, engine: Engine, tmp_path: Path, builder: Builder) -> None:
    (tmp_path / "Dockerfile").write_text(
        "ARG BASE=unroot-base:bookworm\nFROM ${BASE}\nRUN <<EOT\necho heredoc > /h\nEOT\n"
    )
    said = _refusal(lab, tmp_path, "heredoc", builder)
    assert said is not None, (
        f"a heredoc (RUN <<EOT) built with {engine.describe(builder)}: its Dockerfile frontend "
        "is ≥ 1.4 — update this test's docstring and docs/lint.md"
    )
    assert "unknown instruction" in said.lower(), said


# -- BuildKit's cache ------------------------------------------------------------------------------
CACHE_STAGE = """\
ARG BASE=unroot-base:bookworm
FROM ${BASE} AS build
COPY x /tmp/x
RUN cp /tmp/x /x && setcap cap_net_bind_service=+ep /x
FROM ${BASE}
COPY --from=build /x /x
"""
CACHE_CONTEXT = """\
ARG BASE=unroot-base:bookworm
FROM ${BASE}
COPY x /x
"""


def _caps_of_x(lab: Lab, context: Path, kind: str) -> str:
    dockerfile = context / f"Dockerfile.{kind}"
    image = lab.build(context, f"cache-{kind}", dockerfile=dockerfile, builder="buildkit")
    done = lab.run(image, ["getcap", "/x"], RunOptions())
    assert done.ok, done.stderr
    return "kept" if "cap_net_bind_service" in done.stdout else "lost"


@pytest.mark.parametrize("first", ["stage", "context"])
def test_buildkit_cache_shares_copy_layers_across_sources(
    lab: Lab, engine: Engine, tmp_path: Path, first: str
) -> None:
    """BuildKit 0.8 keys a COPY by the copied file's checksum (name, mode, bytes and xattrs),
    not by where it comes from: a context ``COPY x /x`` of a file whose name, bytes, mode and
    security.capability equal those of an earlier ``COPY --from=build /x /x`` reuses that
    layer (caps *kept*), and a ``COPY --from`` after such a context COPY reuses the context's
    layer (caps *lost*).  So on a warm cache each gets what the other got; fresh, the context
    COPY loses them and COPY --from keeps them (see the table above).  A different basename
    (``COPY capped /x``) is a different key: no sharing."""
    (tmp_path / "Dockerfile.stage").write_text(CACHE_STAGE)
    (tmp_path / "Dockerfile.context").write_text(CACHE_CONTEXT)
    capped_copy(tmp_path / "x")
    second = "context" if first == "stage" else "stage"
    fresh = _caps_of_x(lab, tmp_path, first)
    cached = _caps_of_x(lab, tmp_path, second)
    where = engine.describe("buildkit")
    assert fresh == ("kept" if first == "stage" else "lost"), f"{first} on a fresh cache: {where}"
    assert cached == fresh, (
        f"{second} after {first} of the same bytes and xattr: {cached}, the {first} build had "
        f"them {fresh}, with {where} (the cache no longer shares the layer?)"
    )
