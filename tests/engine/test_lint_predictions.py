"""``unroot lint``'s predictions against the engine: the same project linted and run.

Each situation writes a small project in ``tmp_path`` — a Dockerfile the classic builder accepts
(``FROM unroot-base:bookworm``), a ``compose.yaml`` saying how it runs, ``.unroot.toml`` with
``builder = "classic"`` — lints it in-process (``--format json``), then builds the image with
the classic builder and runs it with the equivalent ``docker run`` flags, and observes
``serving`` / ``exec-eperm`` / ``bind-eacces`` as ``test_seed002_matrix.py`` does.  The
prediction must match: an ``exec-eperm`` finding ⇔ exec-eperm observed; a ``caps-ignored`` or
``bind-fails`` finding ⇔ bind-eacces observed; none of those ⇔ serving.

On the host network the server listens on 127.0.0.1:80 — or, when other work holds :80, another
free port below 1024, written into both the image's EXPOSE/CMD and the compose file.

Observed on Docker 20.10.24+dfsg1 (runc 1.1.5), host ip_unprivileged_port_start 1024:

=========================  =====================================  ===========
situation                  lint topics                            observed
=========================  =====================================  ===========
filecaps, host default     (none)                                 serving
filecaps, host drop ALL    exec-eperm                             exec-eperm
filecaps, host drop+NBS    (none)                                 serving
filecaps, host nnp         caps-ignored                           bind-eacces
builder stage, host        caps-lost-in-build, bind-fails         bind-eacces
no filecaps, bridge        works-only-by-sysctl                   serving
no filecaps, host          bind-fails                             bind-eacces
=========================  =====================================  ===========
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import pytest
from _engine import Lab, free_port, host_port_start, host_privileged_port, run_and_observe

from unroot.commands.lint import run_lint
from unroot.facts.docker import RunOptions

pytestmark = [pytest.mark.root, pytest.mark.engine]

PAGE = "unroot-lint-prediction"
WAIT = 15.0  # seconds for a container to serve or fail
EXEC_TOPICS = {"exec-eperm"}
BIND_TOPICS = {"caps-ignored", "bind-fails"}

_SERVE = """\
USER 10001
EXPOSE {port}
CMD ["/usr/local/bin/httpd", "-f", "-v", "-p", "{port}", "-h", "/www"]
"""
DOCKERFILES = {
    # seed 002: the file capability set in the same RUN that created the binary.
    "filecaps": """\
FROM unroot-base:bookworm
RUN cp /bin/busybox /usr/local/bin/httpd \\
    && setcap cap_net_bind_service=+ep /usr/local/bin/httpd \\
    && mkdir -p /www && echo {page} > /www/index.html
"""
    + _SERVE,
    # setcap in a builder stage, COPY --from: the classic builder drops security.capability.
    "stage": """\
FROM unroot-base:bookworm AS build
RUN cp /bin/busybox /usr/local/bin/httpd \\
    && setcap cap_net_bind_service=+ep /usr/local/bin/httpd

FROM unroot-base:bookworm
COPY --from=build /usr/local/bin/httpd /usr/local/bin/httpd
RUN mkdir -p /www && echo {page} > /www/index.html
"""
    + _SERVE,
    # a non-root image without file capabilities.
    "nofilecaps": """\
FROM unroot-base:bookworm
RUN cp /bin/busybox /usr/local/bin/httpd \\
    && mkdir -p /www && echo {page} > /www/index.html
"""
    + _SERVE,
}


@dataclass(frozen=True)
class Case:
    id: str
    image: str
    network: str
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    no_new_privileges: bool = False
    expected: str = "serving"  # observed on 20.10.24 with the host sysctl at 1024
    must_report: tuple[str, ...] = ()  # topics the linter must name besides the verdict


CASES = (
    Case("filecaps-host-default", "filecaps", "host"),
    Case("filecaps-host-drop-all", "filecaps", "host", cap_drop=("ALL",), expected="exec-eperm"),
    Case(
        "filecaps-host-drop-all+nbs",
        "filecaps",
        "host",
        cap_add=("NET_BIND_SERVICE",),
        cap_drop=("ALL",),
    ),
    Case("filecaps-host-nnp", "filecaps", "host", no_new_privileges=True, expected="bind-eacces"),
    Case(
        "stage-copy-host",
        "stage",
        "host",
        expected="bind-eacces",
        must_report=("caps-lost-in-build",),
    ),
    Case("nofilecaps-bridge", "nofilecaps", "bridge"),
    Case("nofilecaps-host", "nofilecaps", "host", expected="bind-eacces"),
)

#: id → (lint topics, predicted, observed, evidence), printed as a table at the end.
TABLE: dict[str, tuple[str, str, str, str]] = {}


@pytest.fixture(scope="module", autouse=True)
def _print_table(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or not TABLE:
        return
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else nullcontext():
        reporter.write_line("")
        reporter.write_line(f"{'situation':28} {'lint topics':44} {'predicted':12} observed")
        for case_id, (topics, predicted, observed, _) in TABLE.items():
            reporter.write_line(f"{case_id:28} {topics:44} {predicted:12} {observed}")


def compose_text(case: Case, port: int) -> str:
    lines = ["services:", "  web:", "    build: ."]
    if case.network == "host":
        lines.append("    network_mode: host")
    else:
        lines.append(f'    ports: ["127.0.0.1:{port}:80"]')
    if case.cap_drop:
        lines.append(f"    cap_drop: [{', '.join(case.cap_drop)}]")
    if case.cap_add:
        lines.append(f"    cap_add: [{', '.join(case.cap_add)}]")
    if case.no_new_privileges:
        lines.append('    security_opt: ["no-new-privileges:true"]')
    return "\n".join(lines) + "\n"


def write_project(root: Path, case: Case, port: int) -> None:
    """The project: ``port`` is the server's port inside (80 unless the host's :80 is busy)
    for the Dockerfile, and the published host port on the bridge for the compose file."""
    inside = port if case.network == "host" else 80
    dockerfile = DOCKERFILES[case.image].format(port=inside, page=PAGE)
    (root / "Dockerfile").write_text(dockerfile)
    (root / "compose.yaml").write_text(compose_text(case, port))
    (root / ".unroot.toml").write_text('builder = "classic"\n')


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


def observe(lab: Lab, tag: str, case: Case, port: int) -> tuple[str, str]:
    """Run the image like the compose file says; (outcome, evidence)."""
    options = RunOptions(
        cap_add=case.cap_add,
        cap_drop=case.cap_drop,
        no_new_privileges=case.no_new_privileges,
        network=case.network,
        publish=() if case.network == "host" else (f"127.0.0.1:{port}:80",),
    )
    return run_and_observe(lab, tag, (), options, port=port, page=PAGE, wait=WAIT)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_lint_predicts_engine(lab: Lab, tmp_path: Path, case: Case) -> None:
    host = case.network == "host"
    holder = host_privileged_port() if host else nullcontext(free_port())
    with holder as port:
        write_project(tmp_path, case, port)
        findings = lint(tmp_path)
        topics = {str(f["topic"]) for f in findings}
        predicted = predict(topics)
        stages = ("build",) if case.image == "stage" else ()
        tag = lab.build(tmp_path, f"lint-{case.image}", stages=stages)
        observed, evidence = observe(lab, tag, case, port)
    listed = ", ".join(sorted(topics)) or "(none)"
    TABLE[case.id] = (listed, predicted, observed, evidence)
    messages = "\n".join(f"  {f['rule']} {f['topic']}: {f['message']}" for f in findings)
    assert predicted == observed, (
        f"{case.id}: lint predicts {predicted}, the engine did {observed} ({evidence})\n"
        f"findings:\n{messages or '  (none)'}"
    )
    for topic in case.must_report:
        assert topic in topics, f"{case.id}: no {topic} finding:\n{messages or '  (none)'}"
    if not host or host_port_start() > port:
        assert observed == case.expected, f"{case.id}: expected {case.expected}: {evidence}"
