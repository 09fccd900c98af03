"""A bind-mounted host path the container's identity cannot read on a default host.

What it does
    For each bind mount (compose ``volumes``) and ``hostPath`` volume whose source is a host
    path with well-known default ownership — ``/etc/letsencrypt/{live,archive,keys}`` (certbot
    creates them ``0700 root``), ``/etc/ssl/private`` (``0710 root:ssl-cert``), SSH host keys,
    ``/etc/shadow``, ``/root``, kubeadm's keys, the Docker socket — walks the path with the
    model's access rules (search on every directory, owner/group/other, ACLs, CAP_DAC_*) as the
    host sees the service: the container's uid and gid (Docker and the CRIs add no user
    namespace), or the invoking user and its subordinate ids under rootless engines.  It
    reports only a denial the model derives; paths it does not know say nothing.

    Only paths the service is known to open count, and the ``assumes:`` line says why each
    one does: the mount names it or something in it (``/var/run/docker.sock``,
    ``/etc/letsencrypt/live/example.org``, ``/etc/ssl/private``); the mounted tree exists only
    for it (``/etc/letsencrypt``: certbot's tree holds nothing but certificates and keys, and
    live/'s symlinks point into archive/); or a path the service names leads into it through
    the mount — an argument (``--tls-key=/host/etc/letsencrypt/live/x/privkey.pem`` with host
    ``/`` at ``/host``), an environment value, or a line of a configuration file lint can read
    (a project file bind-mounted into the service: ``ssl_certificate_key
    /etc/ssl/private/site.key;`` in its ``nginx.conf``).  What a mounted tree merely contains
    is not reported: node-exporter mounts host ``/`` read-only for filesystem statistics and
    never opens ``/etc/shadow``; ``/etc/ssl`` is mounted for its CA bundle.  Its fixes
    are the model's, so they never widen access to a credential or a root-equivalent
    (``unroot.model.protected``: ``/etc/shadow``, CA keys, the Docker socket, host SSH keys,
    ``/root`` …): for those the fix says why not and what to do instead.

Why is this bad?
    Making the service non-root moves the failure from the port to the keys: the server starts
    and then cannot open ``/etc/letsencrypt/live/example.org/privkey.pem`` (EACCES), or in a
    rootless container even "root" cannot, because container uid 0 is the invoking user on the
    host (seed 001).  The finding assumes the host's default ownership: ``unroot doctor
    --compose FILE --service S`` checks each bind source on the real host for the container's
    real uid and gid (mapped through /etc/subuid for a rootless engine), and ``--apply`` grants
    exactly that, in a way certbot's renewals keep (``unroot undo`` takes it back).

Example
    ``user: "2200:2200"`` with ``/etc/letsencrypt:/etc/letsencrypt:ro`` (seed 000).

Use instead
    Grant exactly the service's identity what it needs on the host, with an ACL
    (``setfacl -m g:2200:rx /etc/letsencrypt/live /etc/letsencrypt/archive`` and ``g:2200:r``
    on its own domain's keys) or a host group with the container's gid (seed 000) — never a
    recursive ``chmod`` or ``setfacl`` of a key store, never "other"; or copy the key to a
    file the service's group owns from a certbot deploy hook.  Credentials that belong to
    others or are root-equivalent get no grant at all: the Docker socket is root on the host
    (a socket proxy with an allowlist, or rootless Docker), a CA key signs for any name (issue
    the service its own certificate), ``/etc/shadow`` is every password hash (PAM).

References
    - seed 000: a host group with the container's gid to read /etc/letsencrypt
    - seed 001: rootless Docker, uid 0 in the container is the invoking user on the host
    - certbot: live/ and archive/ are created 0700
    - Docker, Linux post-installation steps: "The docker group grants root-level privileges"

UR108: uid 2200 and the certificates of /etc/letsencrypt (seed 000)
    # kind: compose
    services:
      blog:
        image: jakeblog:latest
        network_mode: host
        user: "2200:2200"
        volumes:
          - /etc/letsencrypt:/etc/letsencrypt:ro

Okay: root in a rootful container reads them
    # kind: compose
    services:
      blog:
        image: jakeblog:latest
        user: "0:0"
        volumes:
          - /etc/letsencrypt:/etc/letsencrypt:ro

UR108: rootless Docker: container root is the invoking user on the host
    --- .unroot.toml
    runtime = "docker-rootless"
    --- compose.yaml
    services:
      coredns:
        image: coredns/coredns:1.11.1
        user: "0"
        volumes:
          - /etc/letsencrypt/live/vpn.example.org:/certs:ro

UR108: a non-root Traefik and the Docker socket (0660 root:docker)
    # kind: compose
    services:
      traefik:
        image: traefik:v3.1
        user: "1000:1000"
        volumes:
          - /var/run/docker.sock:/var/run/docker.sock:ro

Okay: the host's docker group is added (its gid is host-specific: not judged)
    # kind: compose
    services:
      traefik:
        image: traefik:v3.1
        user: "1000:1000"
        group_add: ["998"]
        volumes:
          - /var/run/docker.sock:/var/run/docker.sock:ro

Okay: host / mounted read-only for statistics: it contains /etc/shadow, nothing opens it
    # kind: k8s
    apiVersion: v1
    kind: Pod
    metadata: {name: node-exporter}
    spec:
      securityContext: {runAsUser: 65534, runAsGroup: 65534}
      containers:
        - name: node-exporter
          image: quay.io/prometheus/node-exporter:v1.8.2
          args: [--path.rootfs=/host/root]
          volumeMounts: [{name: root, mountPath: /host/root, readOnly: true}]
      volumes:
        - {name: root, hostPath: {path: /}}

UR108: the same mount, and a key named through it on the command line
    # kind: k8s
    apiVersion: v1
    kind: Pod
    metadata: {name: node-exporter}
    spec:
      securityContext: {runAsUser: 65534, runAsGroup: 65534}
      containers:
        - name: node-exporter
          image: quay.io/prometheus/node-exporter:v1.8.2
          args: [--path.rootfs=/host/root, --web.tls-key=/host/root/etc/ssl/private/node.key]
          volumeMounts: [{name: root, mountPath: /host/root, readOnly: true}]
      volumes:
        - {name: root, hostPath: {path: /}}

Okay: /etc/ssl mounted for the CA bundle
    # kind: compose
    services:
      web:
        image: nginx:1.27
        user: "101:101"
        environment: [SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt]
        volumes:
          - /etc/ssl:/etc/ssl:ro

Okay: a directory of the project (ownership unknown: nothing to say)
    # kind: compose
    services:
      web:
        image: nginx:1.27
        user: "101:101"
        volumes:
          - ./site:/usr/share/nginx/html:ro
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator

from unroot.lint.known_paths import (
    KnownPath,
    canonical,
    known_tree,
    needed_below,
    placeholder_gid,
    placeholder_names,
    uses_of,
)
from unroot.lint.registry import Report, rule
from unroot.model.access import Inode, access_verdict
from unroot.model.protected import advice
from unroot.model.verdict import Verdict
from unroot.situation import NAMED_UID, Situation
from unroot.sources._shared import absolute_paths
from unroot.sources.parsed import Location, MountFact

_VERB = {"r": "read", "rx": "read", "x": "reach the files in", "rw": "connect to"}
_ASSUMPTION = (
    "host paths have the ownership their packages create (certbot: live/ and archive/ 0700 "
    "root); `unroot doctor --compose FILE --service S` checks the real host"
)


@rule("UR108", topic="root-only-mount", severity="warning", kinds=("compose", "k8s"))
def root_only_mount(situation: Situation) -> Iterator[Report]:
    """A bind-mounted host path the container's identity cannot read on a default host."""
    workload, creds, who = situation.workload, situation.access_creds, situation.service_user
    if workload is None or creds is None or who is None:
        return
    known = known_tree()
    mentions = _mentions(situation)
    for mount in workload.mounts:
        if mount.kind not in ("bind", "hostPath") or not mount.source.startswith("/"):
            continue
        denials: list[tuple[KnownPath, Verdict]] = []
        reasons: list[str] = []
        for entry in needed_below(mount.source):
            reason = _used(entry, mount, mentions)
            if reason is None:
                continue  # the mount only contains it: nothing says the service opens it
            if entry.gid is None and entry.group in who.named_groups:
                continue  # the workload names the group: it may well be in it
            if entry.gid is None and (who.groups or who.gid not in (0, who.uid)):
                continue  # a numeric group that may be this host's gid for entry.group
            gid = creds.gid.fs
            tree = known if entry.path in known else {**known, entry.path: Inode("dir")}
            verdict = access_verdict(
                tree,
                entry.path,
                creds,
                entry.want or "r",
                userns=situation.userns,
                fix_group=gid if gid not in (0, placeholder_gid(entry.group)) else None,
            )
            if not verdict.allowed and verdict.errno == "EACCES":
                denials.append((entry, verdict))
                reasons.append(reason)
        if denials:
            where = mount.location or situation.location
            yield _report(situation, where, denials, tuple(dict.fromkeys(reasons)))


def _mentions(situation: Situation) -> list[tuple[str, str]]:
    """The absolute paths the service names — on its command line, in its environment, in the
    configuration files lint could read — each with where it was named."""
    found: list[tuple[str, str]] = []
    words: list[str] = []
    workload = situation.workload
    for link in situation.links:
        words.extend((link.link.program, *link.link.args))
    if workload is not None:
        words.extend((*(workload.entrypoint or ()), *(workload.command or ())))
        for name, value in workload.environment:
            found.extend((path, f"${name}") for path in absolute_paths(value))
        found.extend(workload.config_paths)
    for word in dict.fromkeys(words):
        found.extend((path, f"`{word}` on its command line") for path in absolute_paths(word))
    return found


def _used(entry: KnownPath, mount: MountFact, mentions: list[tuple[str, str]]) -> str | None:
    """Why the service is taken to open ``entry`` through ``mount``, or None: the mount names
    it (or something in it), the mounted tree exists only for it (certbot's), or a path the
    service names leads into it.  A tree that merely contains it (host ``/`` for statistics,
    ``/etc/ssl`` for the CA bundle) is not a reason."""
    source, target = canonical(mount.source), posixpath.normpath(mount.target)
    if entry.path == source:
        return f"the service opens what it mounts: {mount.source} at {mount.target}"
    if entry.path in uses_of(source):
        return f"{mount.source} is mounted for what it holds: {', '.join(uses_of(source))}"
    for path, why in mentions:
        norm = posixpath.normpath(path)
        if target == "/" or not (norm == target or norm.startswith(target + "/")):
            continue
        host = canonical(source + norm[len(target) :])
        if host == entry.path or host.startswith(entry.path + "/") or entry.path in uses_of(host):
            seen = f"{path}, which is {host} on the host" if path != host else path
            return f"the service opens {seen} ({why})"
    return None


def _report(
    situation: Situation,
    where: Location,
    denials: list[tuple[KnownPath, Verdict]],
    reasons: tuple[str, ...],
) -> Report:
    who, creds = situation.service_user, situation.access_creds
    assert who is not None
    assert creds is not None
    entry, verdict = denials[0]
    reason = next((r.text for r in verdict.reasons if r.code not in ("searched", "symlink")), "")
    for gid, name in placeholder_names().items():
        reason = reason.replace(f":{gid}", f":{name}").replace(f"group {gid}", f"group {name}")
    identity = f"{who.label} (gid {who.gid})" if not who.is_root else "root"
    reason = who.shown(reason)
    if situation.runtime.user_namespace and NAMED_UID not in (who.uid, creds.uid.fs):
        identity += f", which is host uid {creds.uid.fs} under {situation.runtime.title},"
    paths = ", ".join(e.path for e, _ in denials)
    what = f" ({entry.what})" if entry.what else ""
    commands = _merge([v.fixes[0].command for _, v in denials if v.fixes and v.fixes[0].command])
    why = next((v.fixes[0].why for _, v in denials if v.fixes and v.fixes[0].command), "")
    fix = f"on the host: `{' && '.join(commands)}` — {why}" if commands else None
    fix = who.shown(fix) if fix else None
    qualifier = who.shown(f"g:{creds.gid.fs}" if creds.gid.fs != 0 else f"u:{creds.uid.fs}")
    for known_entry, _ in denials:
        if fix and known_entry.advice:
            fix += "; " + known_entry.advice.format(who=qualifier)
    refused = advice(f.protected for _, v in denials for f in v.fixes if f.protected is not None)
    if refused:
        fix = "; ".join((fix, *refused) if fix else refused)
    return Report(
        where,
        f"{identity} cannot {_VERB.get(entry.want or 'r', 'open')} {paths}{what} on a default "
        f"host — {reason}: the service fails when it opens {'it' if len(denials) == 1 else 'them'}",
        fix=fix,
        assumptions=(*reasons, _ASSUMPTION),
    )


def _merge(commands: list[str]) -> list[str]:
    """``setfacl -m g:2200:rx A`` and ``… B`` → ``setfacl -m g:2200:rx A B``."""
    merged: dict[str, list[str]] = {}
    for command in commands:
        if "&&" in command or " " not in command:
            merged.setdefault(command, [])
            continue
        head, path = command.rsplit(" ", 1)
        merged.setdefault(head, []).append(path)
    return [" ".join([head, *dict.fromkeys(paths)]) for head, paths in merged.items()]
