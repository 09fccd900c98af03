"""``unroot lint``'s predictions against the engine: the same project linted and run.

Each situation writes a small project — a Dockerfile (``FROM unroot-base:bookworm``, a busybox
httpd serving a page), a ``compose.yaml`` saying how it runs, ``.unroot.toml`` naming the builder
(``builder = "classic"`` or ``"buildkit"``) — lints it in-process (``--format json``), builds the
image with that builder (``DOCKER_BUILDKIT=0``/``1``) and runs it with the ``docker run`` flags
the compose service stands for (there is no ``docker compose`` here: ``user:`` → ``--user``,
``cap_add``/``cap_drop``, ``security_opt: [no-new-privileges:true]``, ``init: true`` →
``--init``, ``privileged``, ``sysctls``, ``read_only``, ``network_mode: host`` or ``ports``),
then observes ``serving`` / ``exec-eperm`` / ``bind-eacces`` as ``test_seed002_matrix.py``
does.  The prediction must match: an ``exec-eperm`` finding ⇔ exec-eperm observed; a
``caps-ignored`` or ``bind-fails`` finding ⇔ bind-eacces observed; none of those ⇔ serving.

All situations are linted and built first, then run side by side.  On the host network each
server listens on its own free port below 1024 (:80 for the first when free), written into the
image's EXPOSE/CMD; all of them are held under the lock the other engine tests take for :80.
A context file "with host file caps" is busybox taken from the base image, plus random bytes,
with ``cap_net_bind_service=+ep`` set on it on the host.  Whole run: about 20 s.

Observed on Docker 20.10.24+dfsg1 (runc 1.1.5; its BuildKit v0.8.3-31-gc0149372), host
ip_unprivileged_port_start 1024 (bk: BuildKit, cl: classic; ``user:`` is compose's, nnp is
``no-new-privileges``):

==================================  ===  ==========================================  ===========
situation                           bld  lint topics                                 observed
==================================  ===  ==========================================  ===========
filecaps, host default              cl   (none)                                      serving
filecaps, host drop ALL             cl   exec-eperm                                  exec-eperm
filecaps, host drop ALL + add NBS   cl   (none)                                      serving
filecaps, host nnp                  cl   caps-ignored                                bind-eacces
setcap in stage, COPY --from, host  cl   caps-lost-in-build, bind-fails              bind-eacces
no filecaps, bridge                 cl   works-only-by-sysctl                        serving
no filecaps, host                   cl   bind-fails                                  bind-eacces
setcap in stage, COPY --from, host  bk   (none)                                      serving
COPY of a host-capped file, host    bk   bind-fails                                  bind-eacces
RUN --mount cp -a of it, host       bk   bind-fails                                  bind-eacces
COPY, then RUN setcap, host         bk   duplicate-layer                             serving
root image + user 10001, host       bk   bind-fails                                  bind-eacces
root image + user 10001, filecaps   bk   (none)                                      serving
10001 image + user "0", host        bk   runs-as-root                                serving
root, cap_drop ALL, host            bk   bind-fails, runs-as-root                    bind-eacces
root, cap_drop ALL, filecaps, host  bk   exec-eperm, runs-as-root                    exec-eperm
root, drop ALL + add NBS, host      bk   runs-as-root                                serving
10001, cap_add NBS, host            bk   bind-fails, useless-cap-add                 bind-eacces
10001, privileged, host             bk   bind-fails                                  bind-eacces
sh -c 'exec "$@"' + filecaps, nnp   bk   caps-ignored                                bind-eacces
sh -c 'exec "$@"' + filecaps, host  bk   (none)                                      serving
tini -- + filecaps, nnp, host       bk   caps-ignored                                bind-eacces
tini -- + filecaps, host            bk   (none)                                      serving
init: true + filecaps, nnp, host    bk   caps-ignored                                bind-eacces
gosu 10001 + filecaps, host         bk   (none)                                      serving
gosu 10001 + filecaps, nnp, host    bk   caps-ignored                                bind-eacces
gosu 10001, no filecaps, host       bk   bind-fails                                  bind-eacces
entrypoint script + filecaps, nnp   bk   caps-ignored                                bind-eacces
setpriv --ambient-caps NBS, host    bk   (none)                                      serving
setpriv --reuid only, host          bk   bind-fails                                  bind-eacces
sysctl port_start=1024, bridge      bk   bind-fails                                  bind-eacces
sysctl port_start=1024, filecaps    bk   (none)                                      serving
read_only, no filecaps, bridge      bk   works-only-by-sysctl                        serving
root, nnp, host                     bk   runs-as-root                                serving
==================================  ===  ==========================================  ===========

Lint cannot see a context file's host xattr, so for "COPY of a host-capped file" it reports the
bind that fails (UR105) but no caps-lost-in-build — right verdict, no cause named.  BuildKit's
cache can turn both build rows round (a context COPY reusing the layer of an earlier COPY --from
of the same name, bytes and xattr, and the reverse: ``test_build_xattrs.py``), so the copied
binaries here carry random bytes.

``setpriv --reuid=10001 --regid=10001 --clear-groups --inh-caps=+net_bind_service
--ambient-caps=+net_bind_service -- httpd`` started as root serves: the capability survives the
switch as an ambient one (CapAmb 0x400).  This case found a false positive (lint modelled every
user-switching wrapper as clearing all capabilities); situation._setuid now applies setpriv's
capability options.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from _engine import (
    Builder,
    Engine,
    Lab,
    free_port,
    host_port_start,
    host_privileged_ports,
    image_file,
    run_and_observe,
)

from unroot.commands.lint import run_lint
from unroot.engine.docker import RunOptions
from unroot.errors import UnrootError
from unroot.model.filecaps import FileCaps

pytestmark = [pytest.mark.root, pytest.mark.engine]

PAGE = "unroot-lint-prediction"
WAIT = 20.0  # seconds for a container to serve or fail (they start side by side)
EXEC_TOPICS = {"exec-eperm"}
BIND_TOPICS = {"caps-ignored", "bind-fails"}
PORT_SYSCTL = "net.ipv4.ip_unprivileged_port_start"
HTTPD = '"/usr/local/bin/httpd", "-f", "-v", "-p", "{port}", "-h", "/www"'
NBS_EP = FileCaps.from_text("cap_net_bind_service=+ep")

_FILECAPS = """\
FROM unroot-base:bookworm
RUN cp /bin/busybox /usr/local/bin/httpd \\
    && setcap cap_net_bind_service=+ep /usr/local/bin/httpd \\
    && mkdir -p /www && echo {page} > /www/index.html
"""
_NOFILECAPS = """\
FROM unroot-base:bookworm
RUN cp /bin/busybox /usr/local/bin/httpd \\
    && mkdir -p /www && echo {page} > /www/index.html
"""
_USER = "USER 10001\n"
_EXPOSE = "EXPOSE {port}\n"
_CMD = f"CMD [{HTTPD}]\n"
_SERVE = _USER + _EXPOSE + _CMD
DOCKERFILES = {
    # seed 002: the file capability set in the same RUN that created the binary.
    "filecaps": _FILECAPS + _SERVE,
    # a non-root image without file capabilities.
    "nofilecaps": _NOFILECAPS + _SERVE,
    # setcap in a builder stage, COPY --from: the classic builder drops it, BuildKit keeps it.
    # (Random bytes appended: no other build's COPY shares BuildKit's cache key with it.)
    "stage": """\
FROM unroot-base:bookworm AS build
RUN cp /bin/busybox /usr/local/bin/httpd \\
    && head -c 16 /dev/urandom >> /usr/local/bin/httpd \\
    && setcap cap_net_bind_service=+ep /usr/local/bin/httpd

FROM unroot-base:bookworm
COPY --from=build /usr/local/bin/httpd /usr/local/bin/httpd
RUN mkdir -p /www && echo {page} > /www/index.html
"""
    + _SERVE,
    # the context's httpd carries file caps on the host: COPY drops them (both builders).
    "context": """\
FROM unroot-base:bookworm
COPY httpd /usr/local/bin/httpd
RUN mkdir -p /www && echo {page} > /www/index.html
"""
    + _SERVE,
    # the same file through a bind mount: the context transfer drops them before cp -a.
    "mount": """\
FROM unroot-base:bookworm
RUN --mount=type=bind,source=httpd,target=/mnt/httpd \\
    cp -a /mnt/httpd /usr/local/bin/httpd \\
    && mkdir -p /www && echo {page} > /www/index.html
"""
    + _SERVE,
    # COPY, then setcap in a RUN of its own: works, the binary is stored twice.
    "copy-setcap": """\
FROM unroot-base:bookworm
COPY httpd /usr/local/bin/httpd
RUN setcap cap_net_bind_service=+ep /usr/local/bin/httpd
RUN mkdir -p /www && echo {page} > /www/index.html
"""
    + _SERVE,
    # no USER: root (the base image's user).
    "root-filecaps": _FILECAPS + _EXPOSE + _CMD,
    "root-nofilecaps": _NOFILECAPS + _EXPOSE + _CMD,
    # wrappers exec'd before the capped server.
    "sh-c": _FILECAPS
    + _USER
    + _EXPOSE
    + 'ENTRYPOINT ["/bin/sh", "-c", "exec \\"$@\\"", "sh"]\n'
    + _CMD,
    "tini": _FILECAPS + _USER + _EXPOSE + 'ENTRYPOINT ["tini", "--"]\n' + _CMD,
    "script": _FILECAPS
    + """\
RUN printf '#!/bin/sh\\nexec "$@"\\n' > /docker-entrypoint.sh && chmod 755 /docker-entrypoint.sh
"""
    + _USER
    + _EXPOSE
    + 'ENTRYPOINT ["/docker-entrypoint.sh"]\n'
    + _CMD,
    # user-switching wrappers started as root.
    "gosu-filecaps": _FILECAPS + _EXPOSE + 'ENTRYPOINT ["gosu", "10001"]\n' + _CMD,
    "gosu-nofilecaps": _NOFILECAPS + _EXPOSE + 'ENTRYPOINT ["gosu", "10001"]\n' + _CMD,
    "setpriv-ambient": _NOFILECAPS
    + _EXPOSE
    + 'ENTRYPOINT ["setpriv", "--reuid=10001", "--regid=10001", "--clear-groups", '
    + '"--inh-caps=+net_bind_service", "--ambient-caps=+net_bind_service", "--"]\n'
    + _CMD,
    "setpriv-plain": _NOFILECAPS
    + _EXPOSE
    + 'ENTRYPOINT ["setpriv", "--reuid=10001", "--regid=10001", "--clear-groups", "--"]\n'
    + _CMD,
}
#: images whose context holds ``httpd`` with host file caps
NEEDS_CONTEXT_FILE = {"context", "mount", "copy-setcap"}


@dataclass(frozen=True)
class Case:
    id: str
    image: str
    builder: Builder = "buildkit"
    network: str = "host"
    user: str | None = None  # compose `user:`
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    no_new_privileges: bool = False
    init: bool = False
    privileged: bool = False
    read_only: bool = False
    sysctls: Mapping[str, str] = field(default_factory=dict)
    expected: str = "serving"  # observed on 20.10.24 with the host sysctl at 1024
    must_report: tuple[str, ...] = ()  # topics the linter must name besides the verdict
    must_not_report: tuple[str, ...] = ()
    bug: str | None = None  # a known disagreement: xfail(strict=True)


def nnp(case_id: str, image: str, builder: Builder = "buildkit", *, init: bool = False) -> Case:
    """The image run with ``security_opt: [no-new-privileges:true]``: the capped server's file
    capability is ignored, its bind fails."""
    return Case(
        case_id,
        image,
        builder,
        no_new_privileges=True,
        init=init,
        expected="bind-eacces",
        must_report=("caps-ignored",),
    )


CASES = (
    # -- the classic builder --------------------------------------------------------------------
    Case("filecaps-host-default", "filecaps", "classic"),
    Case(
        "filecaps-host-drop-all",
        "filecaps",
        "classic",
        cap_drop=("ALL",),
        expected="exec-eperm",
    ),
    Case(
        "filecaps-host-drop-all+nbs",
        "filecaps",
        "classic",
        cap_add=("NET_BIND_SERVICE",),
        cap_drop=("ALL",),
    ),
    nnp("filecaps-host-nnp", "filecaps", "classic"),
    Case(
        "stage-copy-host",
        "stage",
        "classic",
        expected="bind-eacces",
        must_report=("caps-lost-in-build",),
    ),
    Case("nofilecaps-bridge", "nofilecaps", "classic", network="bridge"),
    Case("nofilecaps-host", "nofilecaps", "classic", expected="bind-eacces"),
    # -- BuildKit: the build ------------------------------------------------------------------
    Case("bk-stage-copy-host", "stage", must_not_report=("caps-lost-in-build",)),
    Case("bk-context-copy-host", "context", expected="bind-eacces", must_report=("bind-fails",)),
    Case("bk-mount-cp-host", "mount", expected="bind-eacces", must_report=("bind-fails",)),
    Case("bk-copy-then-setcap-host", "copy-setcap", must_report=("duplicate-layer",)),
    # -- compose `user:` over the image's USER -----------------------------------------------------
    Case("user-10001-over-root-host", "root-nofilecaps", user="10001", expected="bind-eacces"),
    Case("user-10001-over-root-filecaps-host", "root-filecaps", user="10001"),
    Case("user-0-over-10001-host", "nofilecaps", user="0", must_report=("runs-as-root",)),
    # -- capabilities --------------------------------------------------------------------------
    Case("root-drop-all-host", "root-nofilecaps", cap_drop=("ALL",), expected="bind-eacces"),
    Case(
        "root-drop-all-filecaps-host",
        "root-filecaps",
        cap_drop=("ALL",),
        expected="exec-eperm",
    ),
    Case(
        "root-drop-all+nbs-host",
        "root-nofilecaps",
        cap_add=("NET_BIND_SERVICE",),
        cap_drop=("ALL",),
    ),
    Case(
        "nonroot-cap-add-nbs-host",
        "nofilecaps",
        cap_add=("NET_BIND_SERVICE",),
        expected="bind-eacces",
        must_report=("useless-cap-add",),
    ),
    Case("nonroot-privileged-host", "nofilecaps", privileged=True, expected="bind-eacces"),
    Case("root-nnp-host", "root-nofilecaps", no_new_privileges=True),
    # -- wrappers before the capped server ---------------------------------------------------
    nnp("sh-c-nnp-host", "sh-c"),
    Case("sh-c-host", "sh-c"),
    nnp("tini-nnp-host", "tini"),
    Case("tini-host", "tini"),
    nnp("init-nnp-host", "filecaps", init=True),
    nnp("script-nnp-host", "script"),
    Case("gosu-filecaps-host", "gosu-filecaps"),
    nnp("gosu-filecaps-nnp-host", "gosu-filecaps"),
    Case("gosu-nofilecaps-host", "gosu-nofilecaps", expected="bind-eacces"),
    Case("setpriv-ambient-host", "setpriv-ambient"),
    Case("setpriv-plain-host", "setpriv-plain", expected="bind-eacces"),
    # -- the container's own network namespace -------------------------------------------------
    Case(
        "sysctl-1024-bridge",
        "nofilecaps",
        network="bridge",
        sysctls={PORT_SYSCTL: "1024"},
        expected="bind-eacces",
    ),
    Case(
        "sysctl-1024-filecaps-bridge", "filecaps", network="bridge", sysctls={PORT_SYSCTL: "1024"}
    ),
    Case(
        "read-only-bridge",
        "nofilecaps",
        network="bridge",
        read_only=True,
        must_report=("works-only-by-sysctl",),
    ),
)


@dataclass(frozen=True)
class Outcome:
    findings: list[dict[str, object]]
    topics: set[str]
    predicted: str
    observed: str
    evidence: str
    port: int


#: id → outcome, printed as a table at the end.
TABLE: dict[str, Outcome] = {}


@pytest.fixture(scope="module", autouse=True)
def _print_table(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or not TABLE:
        return
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else nullcontext():
        reporter.write_line("")
        reporter.write_line(
            f"{'situation':36} {'bld':9} {'lint topics':44} {'predicted':12} observed"
        )
        builders = {case.id: case.builder for case in CASES}
        for case_id, got in TABLE.items():
            topics = ", ".join(sorted(got.topics)) or "(none)"
            reporter.write_line(
                f"{case_id:36} {builders[case_id]:9} {topics:44} {got.predicted:12} {got.observed}"
            )


def compose_text(case: Case, port: int) -> str:
    lines = ["services:", "  web:", "    build: ."]
    if case.network == "host":
        lines.append("    network_mode: host")
    else:
        lines.append(f'    ports: ["127.0.0.1:{port}:80"]')
    if case.user is not None:
        lines.append(f'    user: "{case.user}"')
    if case.cap_drop:
        lines.append(f"    cap_drop: [{', '.join(case.cap_drop)}]")
    if case.cap_add:
        lines.append(f"    cap_add: [{', '.join(case.cap_add)}]")
    if case.no_new_privileges:
        lines.append('    security_opt: ["no-new-privileges:true"]')
    if case.init:
        lines.append("    init: true")
    if case.privileged:
        lines.append("    privileged: true")
    if case.read_only:
        lines.append("    read_only: true")
    if case.sysctls:
        lines.append("    sysctls:")
        lines.extend(f'      {key}: "{value}"' for key, value in case.sysctls.items())
    return "\n".join(lines) + "\n"


def run_options(case: Case, port: int) -> RunOptions:
    """The ``docker run`` flags of the compose service."""
    extra = [
        flag
        for flag, on in (
            ("--init", case.init),
            ("--privileged", case.privileged),
            ("--read-only", case.read_only),
        )
        if on
    ]
    return RunOptions(
        user=case.user,
        cap_add=case.cap_add,
        cap_drop=case.cap_drop,
        no_new_privileges=case.no_new_privileges,
        network=case.network,
        publish=() if case.network == "host" else (f"127.0.0.1:{port}:80",),
        sysctls=case.sysctls,
        extra=tuple(extra),
    )


def write_project(root: Path, case: Case, port: int, httpd: bytes) -> None:
    """The project: ``port`` is the server's port inside on the host network, the published
    host port on the bridge (where the server listens on 80)."""
    inside = port if case.network == "host" else 80
    dockerfile = DOCKERFILES[case.image].format(port=inside, page=PAGE)
    (root / "Dockerfile").write_text(dockerfile)
    (root / "compose.yaml").write_text(compose_text(case, port))
    (root / ".unroot.toml").write_text(f'builder = "{case.builder}"\n')
    if case.image in NEEDS_CONTEXT_FILE:
        binary = root / "httpd"
        # Unique bytes (busybox runs with trailing junk): BuildKit 0.8's cache would otherwise
        # hand this COPY the layer of another build's COPY of the same bytes and xattr — see
        # test_build_xattrs.test_buildkit_cache_shares_copy_layers_across_sources.
        binary.write_bytes(httpd + os.urandom(16))
        binary.chmod(0o755)
        os.setxattr(binary, "security.capability", NBS_EP.encode())


def lint(root: Path) -> list[dict[str, object]]:
    out = io.StringIO()
    code = run_lint([str(root), "--format", "json"], stdout=out)
    assert code in (0, 1), f"unroot lint exited {code}: {out.getvalue()}"
    findings: list[dict[str, object]] = json.loads(out.getvalue())["findings"]
    return findings


def predict(topics: set[str]) -> str:
    if topics & EXEC_TOPICS:
        return "exec-eperm"
    if topics & BIND_TOPICS:
        return "bind-eacces"
    return "serving"


def _bridge_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


@pytest.fixture(scope="module")
def outcomes(
    module_lab: Lab, engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Outcome]:
    """Every case linted, built and run (builds and runs side by side)."""
    httpd = image_file(engine, engine.base, "/bin/busybox")
    host = [case for case in CASES if case.network == "host"]
    bridge = [case for case in CASES if case.network != "host"]
    with host_privileged_ports(len(host)) as low:
        ports = dict(zip([c.id for c in host], low, strict=True))
        ports.update(zip([c.id for c in bridge], _bridge_ports(len(bridge)), strict=True))
        found: dict[str, list[dict[str, object]]] = {}
        roots: dict[str, Path] = {}
        for case in CASES:
            root = roots[case.id] = tmp_path_factory.mktemp(f"lint-{case.image}")
            write_project(root, case, ports[case.id], httpd)
            found[case.id] = lint(root)

        def build(index: int, case: Case) -> str | UnrootError:
            stages = ("build",) if case.image == "stage" else ()
            name = f"lint-{index}-{case.image}"
            try:
                return module_lab.build(roots[case.id], name, stages=stages, builder=case.builder)
            except UnrootError as exc:
                return exc

        def observe(case: Case, tag: str | UnrootError) -> tuple[str, str]:
            if isinstance(tag, UnrootError):
                return "build-failed", str(tag)
            options = run_options(case, ports[case.id])
            return run_and_observe(
                module_lab, tag, (), options, port=ports[case.id], page=PAGE, wait=WAIT
            )

        with ThreadPoolExecutor(max_workers=4) as pool:
            tags = list(pool.map(build, range(len(CASES)), CASES))
        with ThreadPoolExecutor(max_workers=8) as pool:
            seen = list(pool.map(observe, CASES, tags))
    results = {}
    for case, (observed, evidence) in zip(CASES, seen, strict=True):
        topics = {str(f["topic"]) for f in found[case.id]}
        results[case.id] = Outcome(
            found[case.id], topics, predict(topics), observed, evidence, ports[case.id]
        )
    return results


def _param(case: Case) -> object:
    marks = [pytest.mark.xfail(strict=True, reason=case.bug)] if case.bug else []
    return pytest.param(case, id=case.id, marks=marks)


@pytest.mark.parametrize("case", [_param(case) for case in CASES])
def test_lint_predicts_engine(outcomes: dict[str, Outcome], engine: Engine, case: Case) -> None:
    got = outcomes[case.id]
    TABLE[case.id] = got
    messages = "\n".join(f"  {f['rule']} {f['topic']}: {f['message']}" for f in got.findings)
    where = engine.describe(case.builder)
    assert got.predicted == got.observed, (
        f"{case.id}: lint predicts {got.predicted}, {where} did {got.observed} "
        f"({got.evidence})\nfindings:\n{messages or '  (none)'}"
    )
    for topic in case.must_report:
        assert topic in got.topics, f"{case.id}: no {topic} finding:\n{messages or '  (none)'}"
    for topic in case.must_not_report:
        assert topic not in got.topics, f"{case.id}: a {topic} finding:\n{messages}"
    if case.network != "host" or host_port_start() > got.port:
        assert got.observed == case.expected, (
            f"{case.id}: expected {case.expected} with {where}: {got.evidence}"
        )
