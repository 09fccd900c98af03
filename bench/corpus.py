"""A large, deterministic corpus of deployment files for the lint benchmarks.

    .venv/bin/python bench/corpus.py OUTDIR [--seed 1] [--scale 1.0]

Writes ``OUTDIR/p0000/`` … one directory per project, the way a monorepo holds them: each
project has one or more Dockerfiles (``Dockerfile``, ``app.Dockerfile``, ``Containerfile``,
``docker/Dockerfile.prod``) and, for some, a compose file (whose ``build:`` points at the
project's Dockerfile), Kubernetes manifests under ``deploy/`` (Deployment, Pod, StatefulSet,
DaemonSet, List, multi-document with a Service and a ConfigMap) and systemd units (``.service``,
sometimes with a ``.socket``).  The mix covers what the rules look at: multi-stage builds with
``COPY --from``, ``setcap`` in the builder or in a later RUN, ``USER`` in every spelling
(missing, ``root``, ``0:0``, ``10001``, names, variables), ``EXPOSE`` of low and high ports,
exec chains through ``tini``/``dumb-init``/``gosu``/``sh -c``, compose ``cap_add``/``cap_drop``/
``no-new-privileges``/``network_mode: host``, Kubernetes ``securityContext`` and
``hostNetwork``, systemd ``AmbientCapabilities=``/``DynamicUser=``/``LimitNOFILE=``.  Nothing in
it is executed; it only has to look like what people write.

The default size is 2,000 Dockerfiles, 500 compose files, 500 Kubernetes files and 200 systemd
services; ``--scale`` multiplies every count.  The same seed gives byte-identical files.
"""

from __future__ import annotations

import argparse
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_COUNTS = {"dockerfile": 2000, "compose": 500, "k8s": 500, "systemd": 200}


@dataclass
class Corpus:
    """What :func:`generate` wrote, by kind (paths relative to the corpus root)."""

    root: Path
    files: dict[str, list[str]] = field(default_factory=dict)

    @property
    def dockerfiles(self) -> list[str]:
        return self.files.get("dockerfile", [])

    def all_files(self) -> list[str]:
        return sorted(path for paths in self.files.values() for path in paths)

    def summary(self) -> str:
        counts = ", ".join(f"{len(v)} {k}" for k, v in sorted(self.files.items()))
        size = sum((self.root / p).stat().st_size for p in self.all_files())
        return f"{counts} ({size / 1e6:.1f} MB) in {self.root}"


# -- vocabulary ---------------------------------------------------------------------------------
_LOW_PORTS = [80, 443, 53, 25, 389, 636, 993, 514, 123, 853]
_HIGH_PORTS = [8080, 8443, 3000, 5000, 8000, 9000, 9090, 6379, 5432, 1080]
_USERS = [None, "root", "0", "0:0", "root:root", "10001", "10001:10001", "app", "www-data",
          "nobody", "65532:65532", "${UID}", "node", "app:app"]  # fmt: skip
_RUNTIME_BASES = [
    "debian:12-slim",
    "debian:bookworm",
    "ubuntu:24.04",
    "alpine:3.20",
    "gcr.io/distroless/static-debian12",
    "gcr.io/distroless/base-debian12:nonroot",
    "registry.access.redhat.com/ubi9/ubi-minimal",
    "scratch",
]
_BUILDERS = {
    "go": ("golang:1.22-bookworm", "go build -trimpath -o /out/{bin} ./cmd/{bin}"),
    "rust": ("rust:1.80-slim", "cargo build --release && cp target/release/{bin} /out/{bin}"),
    "c": ("gcc:14", "make -j4 && install -m 0755 build/{bin} /out/{bin}"),
    "zig": ("alpine:3.20", "apk add --no-cache zig && zig build -Doptimize=ReleaseSafe "
            "&& cp zig-out/bin/{bin} /out/{bin}"),
}  # fmt: skip
_BINARIES = ["server", "api", "proxy", "gateway", "web", "dnsd", "smtpd", "edge", "relay", "app"]
_PACKAGES = ["ca-certificates", "curl", "tzdata", "libcap2-bin", "tini", "dumb-init", "gosu",
             "openssl", "netbase", "iproute2", "procps", "jq", "git", "unzip"]  # fmt: skip
_WRAPPERS = [[], [], ["/usr/bin/tini", "--"], ["dumb-init"], ["gosu", "app"], ["su-exec", "app"]]
_PORT_FLAGS = ["--port {p}", "--listen :{p}", "-addr :{p}", "--bind 0.0.0.0:{p}", "-p {p}",
               "--http-port={p}"]  # fmt: skip
_INTERPRETED = {
    "python": ("python:3.12-slim", "pip install --no-cache-dir -r requirements.txt",
               ["python", "-m", "http.server", "{p}"]),
    "uvicorn": ("python:3.12-slim", "pip install --no-cache-dir uvicorn fastapi",
                ["uvicorn", "app:app", "--host", "0.0.0.0", "--port", "{p}"]),
    "node": ("node:20-alpine", "npm ci --omit=dev", ["node", "server.js", "--port", "{p}"]),
    "nginx": ("nginx:1.27-alpine", "rm /etc/nginx/conf.d/default.conf",
              ["nginx", "-g", "daemon off;"]),
    "caddy": ("caddy:2.8", "caddy validate --config /etc/caddy/Caddyfile",
              ["caddy", "run", "--config", "/etc/caddy/Caddyfile"]),
}  # fmt: skip


def _exec_form(argv: list[str]) -> str:
    return "[" + ", ".join(f'"{a}"' for a in argv) + "]"


class _Writer:
    def __init__(self, root: Path, rng: random.Random) -> None:
        self.root = root
        self.rng = rng
        self.corpus = Corpus(root)

    def write(self, kind: str, relative: str, text: str) -> None:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        self.corpus.files.setdefault(kind, []).append(relative)

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def port(self, low: float = 0.6) -> int:
        return self.rng.choice(_LOW_PORTS if self.chance(low) else _HIGH_PORTS)


# -- Dockerfiles --------------------------------------------------------------------------------
def dockerfile(rng: random.Random) -> tuple[str, str, int]:
    """(text, binary path in the image, port) of one plausible Dockerfile."""
    w = _Writer(Path(), rng)
    if w.chance(0.55):
        return _compiled_dockerfile(w)
    return _interpreted_dockerfile(w)


def _header(w: _Writer, lines: list[str]) -> None:
    if w.chance(0.3):
        lines.append("# syntax=docker/dockerfile:1.7")
    if w.chance(0.4):
        lines.append(f"# Built by CI for team-{w.rng.randint(1, 40)}; do not edit by hand.")
    if w.chance(0.3):
        lines.append(f"ARG VERSION=1.{w.rng.randint(0, 30)}.{w.rng.randint(0, 9)}")


def _apt(w: _Writer, base: str) -> str:
    packages = " ".join(sorted(w.rng.sample(_PACKAGES, w.rng.randint(1, 5))))
    if "alpine" in base:
        return f"RUN apk add --no-cache {packages}"
    if "ubi" in base:
        return f"RUN microdnf install -y {packages} && microdnf clean all"
    return (
        "RUN apt-get update \\\n"
        f"    && apt-get install -y --no-install-recommends {packages} \\\n"
        "    && rm -rf /var/lib/apt/lists/*"
    )


def _user_lines(w: _Writer, lines: list[str]) -> None:
    user = w.rng.choice(_USERS)
    if user in ("app", "app:app") and w.chance(0.7):
        lines.append("RUN groupadd -r app && useradd -r -g app -u 10001 app")
    if user is not None:
        lines.append(f"USER {user}")


def _compiled_dockerfile(w: _Writer) -> tuple[str, str, int]:
    rng = w.rng
    lang = rng.choice(sorted(_BUILDERS))
    builder, build = _BUILDERS[lang]
    binary = rng.choice(_BINARIES)
    port = w.port()
    base = rng.choice(_RUNTIME_BASES)
    target = f"/usr/local/bin/{binary}"
    lines: list[str] = []
    _header(w, lines)
    lines += [f"FROM {builder} AS build", "WORKDIR /src"]
    if w.chance(0.5):
        lines += ["COPY go.* Cargo.* Makefile* ./", "RUN mkdir -p /out"]
    lines.append("COPY . .")
    setcap_in_builder = w.chance(0.45)
    run = build.format(bin=binary)
    if setcap_in_builder:
        run += f" \\\n    && setcap 'cap_net_bind_service=+ep' /out/{binary}"
    lines.append(f"RUN {run}")
    if w.chance(0.2):
        lines += ["", "FROM build AS test", f"RUN /out/{binary} --version"]
    lines += ["", f"FROM {base}"]
    if w.chance(0.4):
        lines.append(f'LABEL org.opencontainers.image.source="https://example.org/{binary}"')
    if base != "scratch" and "distroless" not in base and w.chance(0.6):
        lines.append(_apt(w, base))
    chown = " --chown=10001:10001" if w.chance(0.25) else ""
    link = " --link" if w.chance(0.15) else ""
    lines.append(f"COPY{chown}{link} --from=build /out/{binary} {target}")
    if w.chance(0.3) and base != "scratch":
        lines.append(f"RUN setcap cap_net_bind_service=+ep {target}")
    elif w.chance(0.15) and base != "scratch":
        lines.append(f"RUN chown 10001 {target} && chmod 0755 {target}")
    if w.chance(0.3):
        lines.append("COPY config/ /etc/" + binary + "/")
    if w.chance(0.1):
        lines.append("# unroot: ignore=UR105")
    _user_lines(w, lines)
    lines.append(f"EXPOSE {port}" + ("/udp" if port in (53, 123, 514) and w.chance(0.5) else ""))
    if w.chance(0.2):
        lines.append(f"EXPOSE {w.port(low=0.2)}")
    if w.chance(0.2):
        lines.append(
            f'HEALTHCHECK --interval=30s CMD ["{target}", "healthcheck", "--port", "{port}"]'
        )
    wrapper = [] if base == "scratch" else rng.choice(_WRAPPERS)
    flag = rng.choice(_PORT_FLAGS).format(p=port).split()
    if w.chance(0.15) and base != "scratch":
        lines.append(f'ENTRYPOINT ["/bin/sh", "-c", "exec {target} {" ".join(flag)}"]')
    elif w.chance(0.5):
        lines.append(f"ENTRYPOINT {_exec_form([*wrapper, target])}")
        lines.append(f"CMD {_exec_form(flag)}")
    else:
        lines.append(f"CMD {_exec_form([*wrapper, target, *flag])}")
    return "\n".join(lines) + "\n", target, port


def _interpreted_dockerfile(w: _Writer) -> tuple[str, str, int]:
    rng = w.rng
    name = rng.choice(sorted(_INTERPRETED))
    base, install, argv = _INTERPRETED[name]
    port = w.port(low=0.5)
    lines: list[str] = []
    _header(w, lines)
    if w.chance(0.35):
        lines += [f"FROM {base} AS deps", "WORKDIR /app", "COPY requirements.txt package*.json ./"]
        lines += [f"RUN {install}", "", f"FROM {base}", "WORKDIR /app"]
        lines.append("COPY --from=deps /app /app")
    else:
        lines += [f"FROM {base}", "WORKDIR /app"]
        if w.chance(0.5):
            lines.append(_apt(w, base))
        lines.append(f"RUN {install}")
    lines.append("COPY . /app")
    env = rng.choice(["ENV PORT={p}", "ENV PYTHONUNBUFFERED=1 PORT={p}", "ENV NODE_ENV=production"])
    lines.append(env.format(p=port))
    interpreter = {"python": "python3", "uvicorn": "python3", "node": "node"}.get(name, name)
    if w.chance(0.25):
        where = rng.choice(["/usr/local/bin", "/usr/bin", "/usr/sbin"])
        lines.append(f"RUN setcap cap_net_bind_service=+ep {where}/{interpreter}")
    if w.chance(0.2):
        lines.append("RUN chown -R 10001:0 /app && chmod -R g=u /app")
    _user_lines(w, lines)
    lines.append(f"EXPOSE {port}")
    command = [a.format(p=port) for a in argv]
    if w.chance(0.2):
        lines.append(f"CMD {' '.join(command)}")  # shell form
    else:
        lines.append(f"CMD {_exec_form(command)}")
    return "\n".join(lines) + "\n", f"/usr/local/bin/{interpreter}", port


# -- compose ------------------------------------------------------------------------------------
def compose(rng: random.Random, dockerfiles: list[str]) -> str:
    w = _Writer(Path(), rng)
    lines = []
    if w.chance(0.2):
        lines += ["name: stack-" + str(rng.randint(1, 999)), ""]
    lines.append("services:")
    for i in range(rng.randint(1, 5)):
        port = w.port()
        name = rng.choice(["web", "api", "proxy", "dns", "mail", "worker", "edge"]) + str(i)
        lines.append(f"  {name}:")
        if dockerfiles and w.chance(0.6):
            lines.append("    build:")
            lines.append("      context: .")
            lines.append(f"      dockerfile: {rng.choice(dockerfiles)}")
            lines.append(f"    image: registry.example.org/{name}:1.{rng.randint(0, 9)}")
        else:
            lines.append(f"    image: {rng.choice(['nginx:1.27', 'caddy:2', 'coredns/coredns'])}")
        user = rng.choice(_USERS)
        if user is not None:
            lines.append(f'    user: "{user}"')
        if w.chance(0.25):
            lines.append("    network_mode: host")
        else:
            lines.append("    ports:")
            lines.append(f'      - "{port}:{port}"')
            if w.chance(0.3):
                lines.append(f'      - "127.0.0.1:{w.port()}:{port}/udp"')
        if w.chance(0.4):
            lines.append("    cap_drop: [ALL]")
        if w.chance(0.35):
            lines.append("    cap_add:")
            lines.append("      - NET_BIND_SERVICE")
        if w.chance(0.3):
            lines.append("    security_opt:")
            lines.append("      - no-new-privileges:true")
        if w.chance(0.15):
            lines.append("    sysctls:")
            lines.append("      net.ipv4.ip_unprivileged_port_start: 0")
        if w.chance(0.4):
            lines.append("    volumes:")
            lines.append("      - /etc/letsencrypt:/etc/letsencrypt:ro")
            lines.append(f"      - ./data/{name}:/var/lib/{name}")
        if w.chance(0.4):
            flag = rng.choice(_PORT_FLAGS).format(p=port)
            lines.append(f'    command: ["serve", {", ".join(f"{a!r}" for a in flag.split())}]')
        if w.chance(0.3):
            lines += ["    environment:", f"      PORT: {port}", "      LOG_LEVEL: info"]
        if w.chance(0.2):
            lines += ["    ulimits:", "      nofile: {soft: 1024, hard: 4096}"]
        if w.chance(0.2):
            lines.append("    restart: unless-stopped")
    if w.chance(0.2):
        lines += ["x-unroot-ignore: [UR109]"]
    return "\n".join(lines).replace("'", '"') + "\n"


# -- Kubernetes ---------------------------------------------------------------------------------
def _container(w: _Writer, name: str, tls: bool) -> list[str]:
    rng = w.rng
    port = w.port()
    out = [
        f"- name: {name}",
        f"  image: registry.example.org/{name}:{rng.randint(1, 9)}.{rng.randint(0, 20)}",
    ]
    if w.chance(0.5):
        flag = rng.choice(_PORT_FLAGS).format(p=port).split()
        out.append(f"  args: [{', '.join(repr(a) for a in flag)}]".replace("'", '"'))
    out += ["  ports:", f"  - containerPort: {port}"]
    if w.chance(0.2):
        out.append(f"    hostPort: {port}")
    if w.chance(0.85):
        out.append("  securityContext:")
        if w.chance(0.6):
            out.append(f"    runAsUser: {rng.choice([0, 1000, 10001, 65532])}")
        if w.chance(0.5):
            out.append("    runAsNonRoot: true")
        if w.chance(0.6):
            out.append("    allowPrivilegeEscalation: false")
        if w.chance(0.4):
            out.append("    readOnlyRootFilesystem: true")
        if w.chance(0.7):
            out.append("    capabilities:")
            if w.chance(0.8):
                out.append("      drop: [ALL]")
            if w.chance(0.5):
                out.append("      add: [NET_BIND_SERVICE]")
    if tls and w.chance(0.8):
        out += ["  volumeMounts:", "  - {name: tls, mountPath: /etc/tls, readOnly: true}"]
    if w.chance(0.3):
        out += ["  resources:", "    limits: {cpu: 500m, memory: 256Mi}"]
    return out


def _pod_spec(w: _Writer, name: str, indent: int) -> list[str]:
    rng = w.rng
    spec = []
    if w.chance(0.2):
        spec.append("hostNetwork: true")
    if w.chance(0.4):
        spec += ["securityContext:", f"  runAsUser: {rng.choice([0, 1000, 10001])}"]
        if w.chance(0.5):
            spec.append(f"  fsGroup: {rng.choice([1000, 10001])}")
        if w.chance(0.2):
            spec += ["  sysctls:", '  - {name: net.ipv4.ip_unprivileged_port_start, value: "0"}']
    tls = w.chance(0.3)
    spec.append("containers:")
    for i in range(rng.randint(1, 3)):
        spec += _container(w, f"{name}-{i}" if i else name, tls)
    if tls:
        spec += ["volumes:", "- name: tls", "  hostPath: {path: /etc/letsencrypt/live}"]
    pad = " " * indent
    return [pad + line for line in spec]


def k8s(rng: random.Random) -> str:
    w = _Writer(Path(), rng)
    name = rng.choice(_BINARIES) + str(rng.randint(0, 99))
    kind = rng.choice(["Deployment", "Deployment", "Pod", "StatefulSet", "DaemonSet", "List"])
    docs: list[list[str]] = []
    annotations = ["  annotations:", "    unroot.dev/ignore: UR109"] if w.chance(0.1) else []
    meta = ["metadata:", f"  name: {name}", "  labels: {app: " + name + "}", *annotations]
    if kind == "Pod":
        docs.append(["apiVersion: v1", "kind: Pod", *meta, "spec:", *_pod_spec(w, name, 2)])
    elif kind == "List":
        item = ["- apiVersion: v1", "  kind: Pod", "  metadata: {name: " + name + "}", "  spec:"]
        docs.append(["apiVersion: v1", "kind: List", "items:", *item, *_pod_spec(w, name, 4)])
    else:
        body = ["  replicas: " + str(rng.randint(1, 5))] if kind != "DaemonSet" else []
        if kind == "StatefulSet":
            body.append(f"  serviceName: {name}")
        body += [
            "  selector:",
            "    matchLabels: {app: " + name + "}",
            "  template:",
            "    metadata:",
            "      labels: {app: " + name + "}",
            "    spec:",
            *_pod_spec(w, name, 6),
        ]
        docs.append(["apiVersion: apps/v1", f"kind: {kind}", *meta, "spec:", *body])
    if w.chance(0.5):
        port = w.port()
        docs.append([
            "apiVersion: v1", "kind: Service", f"metadata: {{name: {name}}}", "spec:",
            f"  selector: {{app: {name}}}",
            f"  ports: [{{port: {port}, targetPort: {port}}}]",
        ])  # fmt: skip
    if w.chance(0.3):
        docs.append([
            "apiVersion: v1", "kind: ConfigMap", f"metadata: {{name: {name}-config}}", "data:",
            "  LOG_LEVEL: info",
        ])  # fmt: skip
    return "---\n".join("\n".join(doc) + "\n" for doc in docs)


# -- systemd ------------------------------------------------------------------------------------
def systemd(rng: random.Random, name: str) -> tuple[str, str | None]:
    """(service text, socket text or None)."""
    w = _Writer(Path(), rng)
    port = w.port(low=0.7)
    flag = rng.choice(_PORT_FLAGS).format(p=port)
    lines = [
        "[Unit]",
        f"Description={name} server",
        "After=network-online.target",
        "Wants=network-online.target",
        "",
        "[Service]",
        "Type=" + rng.choice(["simple", "notify", "exec"]),
    ]
    if w.chance(0.25):
        lines.append("DynamicUser=yes")
    elif w.chance(0.8):
        lines += [f"User={rng.choice(['www-data', name, 'nobody'])}", f"Group={name}"]
    lines.append(f"ExecStart=/usr/local/bin/{name} {flag}")
    if w.chance(0.4):
        lines.append("AmbientCapabilities=CAP_NET_BIND_SERVICE")
    if w.chance(0.4):
        lines.append(
            "CapabilityBoundingSet=" + rng.choice(["CAP_NET_BIND_SERVICE", "", "CAP_CHOWN"])
        )
    if w.chance(0.4):
        lines.append("NoNewPrivileges=" + rng.choice(["yes", "true", "no"]))
    if w.chance(0.3):
        lines.append(f"LimitNOFILE={rng.choice([1024, 4096, 65536, 1048576])}")
    if w.chance(0.3):
        lines += ["ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes"]
    lines += ["Restart=on-failure", "", "[Install]", "WantedBy=multi-user.target"]
    socket = None
    if w.chance(0.2):
        socket = "\n".join([
            "[Unit]", f"Description={name} socket", "", "[Socket]", f"ListenStream={port}",
            "", "[Install]", "WantedBy=sockets.target",
        ]) + "\n"  # fmt: skip
    return "\n".join(lines) + "\n", socket


# -- the corpus ---------------------------------------------------------------------------------
def generate(
    root: Path, seed: int = 1, scale: float = 1.0, counts: dict[str, int] | None = None
) -> Corpus:
    """Write the corpus under ``root`` (created; must be empty or missing)."""
    rng = random.Random(seed)
    wanted = {k: max(1, round(v * scale)) for k, v in (counts or DEFAULT_COUNTS).items()}
    writer = _Writer(root, rng)
    projects = max(1, wanted["dockerfile"] // 2)
    per_project: list[list[str]] = [[] for _ in range(projects)]
    names = ["Dockerfile", "app.Dockerfile", "Containerfile", "docker/Dockerfile.prod",
             "build/web.Dockerfile", "Dockerfile.dev"]  # fmt: skip
    for i in range(wanted["dockerfile"]):
        project = i % projects
        name = names[len(per_project[project]) % len(names)]
        text, _, _ = dockerfile(rng)
        writer.write("dockerfile", f"p{project:04d}/{name}", text)
        per_project[project].append(name)
    for i in range(wanted["compose"]):
        project = i % projects
        name = rng.choice(["compose.yaml", "docker-compose.yml", "docker-compose.prod.yml"])
        if f"p{project:04d}/{name}" in writer.corpus.files.get("compose", []):
            name = f"compose.{i}.yaml"
        writer.write("compose", f"p{project:04d}/{name}", compose(rng, per_project[project]))
    for i in range(wanted["k8s"]):
        project = i % projects
        name = rng.choice(["deployment", "pod", "web", "api", "statefulset"])
        writer.write("k8s", f"p{project:04d}/deploy/{name}-{i}.yaml", k8s(rng))
    for i in range(wanted["systemd"]):
        project = i % projects
        unit = f"{rng.choice(_BINARIES)}{i}"
        service, socket = systemd(rng, unit)
        writer.write("systemd", f"p{project:04d}/systemd/{unit}.service", service)
        if socket is not None:
            writer.write("systemd-socket", f"p{project:04d}/systemd/{unit}.socket", socket)
    return writer.corpus


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args(argv)
    if args.outdir.exists() and any(args.outdir.iterdir()):
        print(f"{args.outdir}: not empty", file=sys.stderr)
        return 2
    corpus = generate(args.outdir, args.seed, args.scale)
    print(corpus.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
