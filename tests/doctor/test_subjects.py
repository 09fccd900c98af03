"""Who a container, a compose service or a unit really is — against the real engines.

Each container test compares the Subject with the kernel's own answer for the running process
(``/proc/PID/status``: host uid/gid and CapEff; ``/proc/PID/uid_map``), so the builders are
checked against the machine, not against themselves.  Containers and images carry the engine
tests' session label and are removed by their scope; the rootless engines are reached through
their sockets, under the engine tests' shared lock.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from _doctor import Rootless
from _engine import LABEL, Engine, Lab, free_port

from unroot.doctor.sources import compose_subject, container_subject
from unroot.doctor.subject import PathAsk, PortAsk, RootlessRef, Subject
from unroot.engine.docker import RunOptions
from unroot.errors import EnvironmentProblem, UsageError
from unroot.facts.proc import read_status
from unroot.model.caps import EMPTY, CapSet

pytestmark = [pytest.mark.root, pytest.mark.engine]

NBS = CapSet.of("net_bind_service")
#: A non-root image: a named user with a supplementary group, a capped entrypoint found on PATH.
DOCKERFILE = """\
ARG BASE
FROM ${BASE}
RUN cp /bin/sleep /usr/local/bin/capsleep \\
    && setcap cap_net_bind_service=+ep /usr/local/bin/capsleep \\
    && groupadd -g 2400 certs && useradd -M -u 2300 -U -G certs www
USER www
EXPOSE 80
ENTRYPOINT ["capsleep"]
CMD ["600"]
"""


@pytest.fixture(scope="module")
def capped_image(module_lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> str:
    context = tmp_path_factory.mktemp("capped")
    (context / "Dockerfile").write_text(DOCKERFILE)
    return module_lab.build(context, "doctor-capped")


def _start(lab: Lab, image: str, command: list[str], options: RunOptions) -> str:
    done = lab.start(image, command, options)
    assert done.ok, f"docker run: {done.stderr.strip()}"
    return lab.docker.inspect(done.stdout)["Name"].lstrip("/")


def _pid(subject: Subject) -> int:
    assert subject.exe is not None
    return int(subject.exe.path.split("/")[2])


def _agrees_with_kernel(subject: Subject, pid: int) -> None:
    """The Subject's host ids and effective set are what the kernel shows for the process."""
    status = read_status(pid)
    assert (status.uid.effective, status.gid.effective) == (subject.uid, subject.gid)
    assert status.effective == subject.effective


@pytest.fixture
def letsencrypt(tmp_path: Path) -> Path:
    """A certbot-shaped tree: live/ → ../archive/ relative symlinks, the key 0640 root:2200."""
    root = tmp_path / "letsencrypt"
    (root / "archive" / "example.org").mkdir(parents=True)
    (root / "live" / "example.org").mkdir(parents=True)
    key = root / "archive" / "example.org" / "privkey1.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\n")
    os.chown(key, 0, 2200)
    key.chmod(0o640)
    (root / "live" / "example.org" / "privkey.pem").symlink_to(
        "../../archive/example.org/privkey1.pem"
    )
    return root


def test_blog_container_on_the_host_network(lab: Lab, engine: Engine, letsencrypt: Path) -> None:
    """Seed 000: 2200:2200 on the host network, /etc/letsencrypt bind-mounted read-only."""
    name = _start(
        lab,
        engine.base,
        ["sleep", "600"],
        RunOptions(
            user="2200:2200", network="host", extra=("-v", f"{letsencrypt}:/etc/letsencrypt:ro")
        ),
    )
    subject = container_subject(name)
    assert (subject.uid, subject.gid, subject.groups) == (2200, 2200, ())
    assert subject.host_network
    assert subject.netns_pid is None
    assert subject.container_uid is None
    assert subject.rootless is None
    assert subject.paths == (
        PathAsk(str(letsencrypt), "r", f"bind mount {letsencrypt} → /etc/letsencrypt (ro)"),
    )
    assert subject.effective == EMPTY
    assert subject.exe is not None
    assert subject.exe.shown == "/usr/bin/sleep"
    assert subject.exe.path.endswith("/root/usr/bin/sleep")
    assert os.path.isfile(subject.exe.path)
    assert f"docker inspect {name}: Config.User=2200:2200" in subject.evidence
    assert "no user namespace: host ids are the container's ids" in subject.evidence
    _agrees_with_kernel(subject, _pid(subject))
    # the container really reads the key through the symlink as group 2200 (what doctor checks)
    read = lab.docker.call(["exec", name, "cat", "/etc/letsencrypt/live/example.org/privkey.pem"])
    assert read.stdout.startswith("-----BEGIN")


def test_bridge_container_with_published_port_and_one_capability(lab: Lab, engine: Engine) -> None:
    port = free_port()
    name = _start(
        lab,
        engine.base,
        ["sleep", "600"],
        RunOptions(
            cap_drop=("ALL",),
            cap_add=("NET_BIND_SERVICE",),
            no_new_privileges=True,
            publish=(f"127.0.0.1:{port}:80",),
        ),
    )
    subject = container_subject(name)
    pid = _pid(subject)
    assert (subject.uid, subject.gid) == (0, 0)
    assert not subject.host_network
    assert subject.netns_pid == pid
    assert subject.binds == (PortAsk(80, "tcp", "container port 80/tcp"),)
    assert subject.publishes == (PortAsk(port, "tcp", f"-p 127.0.0.1:{port}:80/tcp"),)
    assert subject.effective == NBS  # root: the bounding set is effective
    assert subject.exe is not None
    assert subject.exe.no_new_privs
    assert subject.exe.bounding == NBS
    assert f"docker inspect {name}: HostConfig.SecurityOpt=no-new-privileges" in subject.evidence
    _agrees_with_kernel(subject, pid)
    assert read_status(pid).no_new_privs


def test_named_user_and_file_caps_in_the_image(lab: Lab, capped_image: str) -> None:
    """USER www (resolved in the container's /etc/passwd and /etc/group) runs a capped binary
    found on PATH: its file caps read through /proc/PID/root give it cap_net_bind_service."""
    name = _start(lab, capped_image, [], RunOptions())
    subject = container_subject(name)
    assert (subject.uid, subject.gid, subject.groups, subject.name) == (2300, 2300, (2400,), "www")
    assert subject.exe is not None
    assert subject.exe.shown == "/usr/local/bin/capsleep"
    assert subject.effective == NBS
    assert subject.binds == (PortAsk(80, "tcp", "container port 80/tcp"),)
    assert subject.netns_pid is not None
    assert subject.publishes == ()
    assert any(
        "capsleep (read via /proc/PID/root): file caps cap_net_bind_service=ep" in line
        for line in subject.evidence
    )
    assert f"{name}:/etc/passwd: www is uid 2300" in subject.evidence
    _agrees_with_kernel(subject, _pid(subject))
    assert sorted(read_status(_pid(subject)).groups) == [2300, 2400]


def test_user_switch_by_gosu(lab: Lab, capped_image: str) -> None:
    """Started as root, ``gosu www`` switches before it executes the service: the host ids are
    www's, and the capped program regains cap_net_bind_service after setuid(2) cleared all."""
    name = _start(
        lab, capped_image, ["www", "capsleep", "600"], RunOptions(user="0", entrypoint="gosu")
    )
    subject = container_subject(name)
    assert (subject.uid, subject.gid, subject.groups) == (2300, 2300, (2400,))
    assert subject.effective == NBS
    assert any("gosu www: switches to uid 2300 gid 2300" in e for e in subject.evidence)
    _agrees_with_kernel(subject, _pid(subject))


def test_stopped_container_is_read_from_its_layers(lab: Lab, capped_image: str) -> None:
    """Not running: no /proc/PID/root, so the user database and the entrypoint are read from
    the container's overlay layers (GraphDriver), and the port sysctl from the profile."""
    done = lab.docker.call(
        [
            "create",
            "--label",
            f"{LABEL}={lab.engine.session}",
            "--sysctl",
            "net.ipv4.ip_unprivileged_port_start=443",
            capped_image,
        ]
    )
    lab.containers.append(done.stdout.strip())
    subject = container_subject(done.stdout.strip())
    assert (subject.uid, subject.gid, subject.groups, subject.name) == (2300, 2300, (2400,), "www")
    assert subject.netns_pid is None
    assert subject.unprivileged_port_start == 443
    assert subject.effective == NBS
    assert subject.exe is not None
    assert subject.exe.shown == "/usr/local/bin/capsleep"
    assert subject.exe.path.startswith("/var/lib/docker/overlay2/")
    assert any(
        "is not running: its files are read from its overlay layers" in line
        for line in subject.evidence
    )
    assert any(
        "capsleep (read from its overlay layers): file caps cap_net_bind_service=ep" in e
        for e in subject.evidence
    )


@pytest.fixture
def public_dir() -> Iterator[Path]:
    """A directory the rootless engines' user can reach (pytest's tmp_path is root's, 0700)."""
    path = Path(tempfile.mkdtemp(prefix="unroot-doctor-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def _rootless_start(rl: Rootless, kind: str, *args: str) -> str:
    done = subprocess.run(
        [*rl.cli(kind), "run", "-d", "--label", f"{LABEL}={rl.session}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"{kind} run: {done.stderr.strip()}"
    return done.stdout.strip()


@pytest.mark.parametrize("kind", ["docker", "podman"])
def test_rootless_container_maps_through_subuid(
    rootless: Rootless, kind: str, public_dir: Path
) -> None:
    """Container uid 1001 is host uid subuid_start + 1000 on both engines, as uid_map says."""
    shared = public_dir / "shared"
    shared.mkdir()
    host_uid, host_gid = rootless.subuid_start + 1000, rootless.subgid_start + 1000
    os.chown(shared, host_uid, host_gid)
    shared.chmod(0o700)
    cid = _rootless_start(
        rootless,
        kind,
        "--user",
        "1001:1001",
        "--cap-add",
        "NET_BIND_SERVICE",
        "-v",
        f"{shared}:/data",
        rootless.image,
        "sleep",
        "600",
    )
    ref = RootlessRef(rootless.user, rootless.uid, kind)  # type: ignore[arg-type]
    subject = container_subject(cid, rootless=ref)
    assert (subject.uid, subject.gid) == (host_uid, host_gid)
    assert (subject.container_uid, subject.container_gid) == (1001, 1001)
    assert subject.rootless == ref
    assert subject.paths == (PathAsk(str(shared), "rw", f"bind mount {shared} → /data"),)
    pid = _pid(subject)
    assert f"/proc/{pid}/uid_map and gid_map agree (cross-checked)" in subject.evidence
    # Docker gives a non-root user only the bounding set; Podman the added caps as ambient
    assert subject.effective == (NBS if kind == "podman" else EMPTY)
    _agrees_with_kernel(subject, pid)
    # the engine's view: the container's uid 1001 owns the 0700 mount (host uid
    # subuid_start + 1000) and reads it; uid 1002 does not
    cli = rootless.cli(kind)

    def inside(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*cli, "exec", *argv], capture_output=True, text=True, timeout=60, check=False
        )

    assert inside(cid, "stat", "-c", "%u:%g", "/data").stdout.strip() == "1001:1001"
    assert inside(cid, "ls", "/data").returncode == 0
    assert inside("--user", "1002", cid, "ls", "/data").returncode != 0


@pytest.fixture(scope="module")
def rootful_podman(engine: Engine) -> Iterator[str]:
    """Rootful Podman with the offline base image (loaded from Docker once, kept like the base
    image itself), or a skip saying why."""
    podman = shutil.which("podman")
    if podman is None:
        pytest.skip("no podman CLI: install Debian's podman")
    have = subprocess.run([podman, "image", "exists", engine.base], check=False, timeout=60)
    if have.returncode != 0:
        with subprocess.Popen(
            [engine.docker.cli, "save", engine.base], stdout=subprocess.PIPE
        ) as saved:
            loaded = subprocess.run(
                [podman, "load"], stdin=saved.stdout, capture_output=True, timeout=300, check=False
            )
        if loaded.returncode != 0:
            pytest.skip(f"rootful podman cannot load {engine.base}: {loaded.stderr!r}")
    yield podman
    label = f"label={LABEL}={engine.session}"
    ids = subprocess.run([podman, "ps", "-aq", "--filter", label], capture_output=True,
                         text=True, timeout=60, check=False).stdout.split()  # fmt: skip
    if ids:
        subprocess.run([podman, "rm", "-f", "--time", "0", *ids], capture_output=True,
                       timeout=120, check=False)  # fmt: skip


def test_rootful_podman_container(engine: Engine, rootful_podman: str) -> None:
    """No user namespace: host ids are the container's; Podman gives a non-root user its added
    capabilities as ambient, so they survive the exec."""
    done = subprocess.run(
        [
            rootful_podman,
            "--runtime",
            "runc",  # the runtime the engine tests measure (crun may be installed too)
            "run",
            "-d",
            "--label",
            f"{LABEL}={engine.session}",
            "--user",
            "2200:2200",
            "--cap-add",
            "NET_BIND_SERVICE",
            engine.base,
            "sleep",
            "600",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if "rlimit" in done.stderr and "operation not permitted" in done.stderr.lower():
        # the runtime raises RLIMIT_NOFILE/NPROC to Podman's defaults: that needs
        # CAP_SYS_RESOURCE, which a sandbox without it (CapEff 0x1fffeffffff) cannot give
        pytest.skip(f"rootful podman cannot start a container here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    cid = done.stdout.strip()
    try:
        subject = container_subject(cid, engine="podman")
        assert (subject.uid, subject.gid) == (2200, 2200)
        assert subject.container_uid is None
        assert subject.effective == NBS
        assert "no user namespace: host ids are the container's ids" in subject.evidence
        _agrees_with_kernel(subject, _pid(subject))
    finally:
        subprocess.run(
            [rootful_podman, "rm", "-f", "--time", "0", cid],
            capture_output=True,
            timeout=120,
            check=False,
        )


def test_rootless_docker_host_network_is_rootlesskits(rootless: Rootless) -> None:
    """``--network host`` under rootless Docker is rootlesskit's network namespace, not the
    host's: the subject binds in the container process's namespace."""
    cid = _rootless_start(rootless, "docker", "--network", "host", rootless.image, "sleep", "600")
    subject = container_subject(cid, rootless=RootlessRef(rootless.user, rootless.uid, "docker"))
    pid = _pid(subject)
    assert subject.host_network
    assert subject.netns_pid == pid
    assert os.readlink(f"/proc/{pid}/ns/net") != os.readlink("/proc/self/ns/net")
    assert (subject.uid, subject.container_uid) == (rootless.uid, 0)  # root is the owner


def test_rootless_owner_without_an_engine_is_an_environment_problem() -> None:
    with pytest.raises(EnvironmentProblem, match="does not answer"):
        container_subject("blog", rootless=RootlessRef("nobody", 65534, "docker"))


def test_unknown_container_is_bad_input(engine: Engine) -> None:
    with pytest.raises(UsageError, match="docker has no container 'no-such-blog'"):
        container_subject("no-such-blog")


# -- compose --------------------------------------------------------------------------------------
COMPOSE = """\
services:
  blog:
    image: {image}
    user: "2200:2200"
    network_mode: host
    volumes:
      - ./certs:/etc/letsencrypt:ro
  web:
    image: {image}
    user: "2200:2200"
    ports: ["127.0.0.1:8443:443"]
    cap_drop: [ALL]
    cap_add: [NET_BIND_SERVICE]
    security_opt: [no-new-privileges:true]
    volumes:
      - type: bind
        source: ~/unroot-doctor-does-not-exist
        target: /data
  named:
    image: {image}
    user: www
  missing:
    image: unroot-test-never-built:none
    user: "10"
"""


@pytest.fixture
def compose_file(tmp_path: Path, capped_image: str) -> Path:
    (tmp_path / "certs").mkdir()
    path = tmp_path / "compose.yaml"
    path.write_text(COMPOSE.format(image=capped_image))
    return path


def test_compose_blog_on_the_host_network(compose_file: Path, capped_image: str) -> None:
    """A relative bind source is the compose file's directory's; the image gives the program."""
    subject = compose_subject(str(compose_file), "blog")
    assert (subject.uid, subject.gid) == (2200, 2200)
    assert subject.host_network
    assert subject.publishes == ()
    certs = compose_file.parent / "certs"
    assert subject.paths == (
        PathAsk(str(certs), "r", f"{compose_file}:7:9: bind mount {certs} → /etc/letsencrypt (ro)"),
    )
    assert [p.port for p in subject.binds] == [80]  # EXPOSE 80 of the image
    assert subject.effective == NBS  # capsleep's file caps, read from the image's layers
    assert f"image inspect {capped_image}: Entrypoint+Cmd=capsleep 600" in subject.evidence
    assert "no user namespace: host ids are the container's ids" in subject.evidence


def test_compose_user_name_resolved_in_the_image_layers(compose_file: Path) -> None:
    """USER www of the image: resolved through the image's /etc/passwd and /etc/group read from
    its overlay layers; its capped entrypoint's file caps read there too."""
    subject = compose_subject(str(compose_file), "named")
    assert (subject.uid, subject.gid, subject.groups, subject.name) == (2300, 2300, (2400,), None)
    assert subject.effective == NBS
    assert subject.exe is not None
    assert subject.exe.shown == "/usr/local/bin/capsleep"
    assert any("www is uid 2300" in e for e in subject.evidence)


def test_compose_unknown_user_name(tmp_path: Path, capped_image: str) -> None:
    path = tmp_path / "compose.yaml"
    path.write_text(f"services:\n  web:\n    image: {capped_image}\n    user: nosuchuser\n")
    with pytest.raises(UsageError, match="runs as 'nosuchuser', which is not in the image's"):
        compose_subject(str(path), "web")


def test_compose_service_with_numeric_user(compose_file: Path, capped_image: str) -> None:
    subject = compose_subject(str(compose_file), "web")
    assert (subject.uid, subject.gid) == (2200, 2200)
    assert subject.effective == EMPTY  # no_new_privs: the file caps cannot raise pP
    assert not subject.host_network
    assert subject.unprivileged_port_start == 0
    assert [p.port for p in subject.binds] == [443, 80]
    assert [p.port for p in subject.publishes] == [8443]
    home = os.path.expanduser("~")
    assert subject.paths[0].path == f"{home}/unroot-doctor-does-not-exist"
    assert subject.paths[0].want == "rw"
    assert any(f"image inspect {capped_image}: ExposedPorts=80/tcp" in e for e in subject.evidence)


def test_compose_rootless_service_maps_to_subordinate_ids(
    compose_file: Path, rootless: Rootless
) -> None:
    ref = RootlessRef(rootless.user, rootless.uid, "docker")
    subject = compose_subject(str(compose_file), "missing", rootless=ref)
    assert subject.uid == rootless.subuid_start + 9
    assert subject.container_uid == 10
    assert subject.container_gid == 0
    assert subject.gid == rootless.uid  # container gid 0 is the owner's own gid (1001 here)
    assert any("not in the engine's local store" in e for e in subject.evidence)


@pytest.mark.parametrize(
    ("service", "error"),
    [
        ("nope", "has no service 'nope' (it has: blog, web, named, missing)"),
        (None, "has 4 services: name one with --service"),
    ],
)
def test_compose_bad_service(compose_file: Path, service: str | None, error: str) -> None:
    with pytest.raises(UsageError, match=error.replace("(", r"\(").replace(")", r"\)")):
        compose_subject(str(compose_file), service)


@pytest.mark.parametrize(
    ("service", "options"),
    [
        ("named", RunOptions()),
        ("blog", RunOptions(user="2200:2200", network="host")),
        ("web", RunOptions(user="2200:2200", cap_drop=("ALL",), cap_add=("NET_BIND_SERVICE",),
                           no_new_privileges=True)),
    ],
)  # fmt: skip
def test_compose_service_is_who_its_container_is(
    lab: Lab, compose_file: Path, capped_image: str, service: str, options: RunOptions
) -> None:
    """A compose service read from its file and image is the same identity as the container
    ``docker run`` makes of the same settings, read from the running process."""
    from_file = compose_subject(str(compose_file), service)
    name = _start(lab, capped_image, [], options)
    running = container_subject(name)
    assert (from_file.uid, from_file.gid, from_file.groups) == (
        running.uid,
        running.gid,
        running.groups,
    )
    assert from_file.effective == running.effective
    assert from_file.host_network == running.host_network
    assert from_file.exe is not None
    assert running.exe is not None
    assert from_file.exe.shown == running.exe.shown
    assert from_file.exe.bounding == running.exe.bounding
    _agrees_with_kernel(running, _pid(running))
