"""Paths whose access unroot never advises widening: credentials and root-equivalents.

Every fix unroot prints or applies is followed by people, so the fix generation
(:func:`unroot.model.access.access_verdict`, and through it ``explain``, ``lint`` and
``doctor``) asks :func:`protection` before it suggests a ``setfacl``/``chmod``/``chgrp``.  A
protected path keeps its verdict (denied, and why); its fixes become one that says why no grant
is offered and what to do instead.

The rule is not "never touch a private key": a service reading *its own* TLS key is the point
of the product (seed 000: a blog container reads ``/etc/letsencrypt`` as gid 2200).  It is
"never widen access to credentials that belong to others or are root-equivalent".  So a path is
one of three things:

* **refused** — no grant at all, whoever asks: password hashes, CA and control-plane keys,
  container-engine sockets, host SSH keys, ``/root``, raw memory and disks; and, for writing
  only, what root executes or obeys (``/etc/passwd`` is readable by all, writing it is root);
* **a key store** (``/etc/letsencrypt/live`` and ``archive``, ``/etc/ssl/private``,
  ``/etc/pki/tls/private``) — several services' keys side by side: reading and searching may be
  granted to exactly the identity asked about, inode by inode with ACL entries; never
  recursively, never for "other", never by a ``chgrp`` (the store's group serves the others);
  writing is refused (the ACME client or the administrator writes keys, services read them);
* anything else: not this module's business.

Sources, once:

* capabilities(7), ``CAP_SYS_RAWIO``: "access /proc/kcore"; drivers/char/mem.c
  ``open_port()`` and fs/proc/kcore.c ``open_kcore()`` refuse without it — ``/dev/mem``,
  ``/dev/kmem``, ``/dev/port`` and ``/proc/kcore`` are the kernel's memory, never a grant.
* Debian base-passwd, users-and-groups: ``disk`` "Raw access to disks. Mostly equivalent to
  root access."; ``shadow`` (gid 42) reads ``/etc/shadow``; shadow(5), gshadow(5).
* Docker, "Linux post-installation steps": "The docker group grants root-level privileges to
  the user" (and "Docker daemon attack surface": control of the daemon is control of the host);
  the same holds for containerd, CRI-O and rootful Podman, whose APIs start privileged
  containers; a rootless engine runs as its user, so its socket is that user's account.
* Kubernetes, "PKI certificates and requirements" (kubeadm): ``/etc/kubernetes/pki/ca.key``,
  ``etcd/ca.key``, ``front-proxy-ca.key`` are CAs, ``sa.key`` signs service-account tokens;
  ``admin.conf``, ``super-admin.conf``, ``controller-manager.conf``, ``scheduler.conf`` and
  ``kubelet.conf`` are the kubeconfigs kubeadm writes beside ``pki/``; the kubelet keeps its
  client key in ``/var/lib/kubelet/pki`` and every pod's Secret volumes below
  ``/var/lib/kubelet/pods``; etcd's data directory holds every Secret.
* sshd(8): the host keys ``/etc/ssh/ssh_host_*_key`` "must be readable by root only".
* subuid(5), newuidmap(1): whoever writes ``/etc/subuid`` maps any host uid, 0 included.
* rename(2), unlink(2): write permission on a directory (without the sticky bit) lets the
  writer replace what it holds, so a write on a directory above a protected path is protected
  as well (``/etc``, ``/run``, ``/var/lib``, ``/home/alice``).
* FHS 3.0 §5.13: ``/var/run`` is ``/run`` (a symlink on every systemd host); paths are compared
  after that, after collapsing ``//``, ``.`` and ``..`` (lexically: a caller holding a tree, as
  the access walk does, passes the resolved path too).

Patterns are per segment (:func:`fnmatch.fnmatchcase`); a last ``**`` is the path and everything
below it, a first ``**`` any directory above.  The first row that matches decides.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase

from unroot.model.errors import ParseError

KEY_STORE = "key-store"
PARENT = "protected-parent"


@dataclass(frozen=True, slots=True)
class _Class:
    why: str
    instead: str


#: class slug (stable: it is the JSON ``protected.class``) → why no grant, what to do instead
CLASSES: dict[str, _Class] = {
    "password-hashes": _Class(
        "the password hashes of every account: whoever reads them can crack them offline, "
        "whoever writes them sets root's password",
        "authenticate through PAM (pam_unix checks passwords with its setgid-shadow helper "
        "unix_chkpwd) or a directory service; never give a service access to the hashes",
    ),
    "account-database": _Class(
        "writing it is root: an account with uid 0, a seat in the sudo group, or host uid 0 "
        "mapped into a user namespace (subuid(5))",
        "create accounts and groups with useradd/groupadd as root at deploy time; services "
        "only read these files",
    ),
    "sudo-policy": _Class(
        "sudo's policy: writing it is root, and reading it tells which accounts and commands "
        "lead to root",
        "edit it with visudo as root; a service that needs one privileged operation gets that "
        "capability (systemd AmbientCapabilities=, a file capability) instead",
    ),
    "root-executes": _Class(
        "root runs or obeys what is written there (cron jobs, unit files, PAM modules, "
        "preloaded libraries, programs on root's PATH, static pods, the engine's "
        "configuration): writing it is root",
        "install these files as root at deploy time (a package, configuration management); "
        "a service writes only its own state directory (systemd StateDirectory=, a volume it "
        "owns)",
    ),
    "trust-store": _Class(
        "a certificate added there is trusted by every TLS client on the host",
        "install CA certificates as root (update-ca-certificates); give a service that needs "
        "an extra CA its own bundle",
    ),
    "engine-socket": _Class(
        "whoever can connect to a container engine's API can start a privileged container "
        "with the host's / mounted: root on the host (Docker: \"the docker group grants "
        'root-level privileges")',
        "use a socket proxy that allows only the API calls the service needs (e.g. read-only "
        "container listing), or rootless Docker/Podman; never add the service to the engine's "
        "group or an ACL on its socket",
    ),
    "rootless-engine-socket": _Class(
        "a rootless engine's API acts as the user who runs it (uid 0 in its containers is "
        "that user): whoever connects owns that account",
        "give the service its own rootless engine under its own user, or a socket proxy with "
        "an allowlist",
    ),
    "engine-state": _Class(
        "the engine's storage holds every container's filesystem and configuration, with the "
        "secrets they carry; writing there is root",
        "bind-mount a directory the service owns rather than reaching into the engine's "
        "storage; read container logs through the engine (`docker logs`, a logging driver)",
    ),
    "ca-key": _Class(
        "a CA's private key signs certificates for any name: whoever reads it can impersonate "
        "every service that trusts the CA",
        "issue the service its own key and certificate signed by the CA; never share the CA "
        "key (a service that is the CA creates its key as its own user)",
    ),
    "cluster-credentials": _Class(
        "Kubernetes control-plane credentials: admin.conf is cluster-admin, sa.key mints any "
        "service-account token, the kubelet's and etcd's keys and data read every Secret",
        "give the service its own identity: a ServiceAccount with a narrow Role, or its own "
        "client certificate (a CertificateSigningRequest); never copy control-plane "
        "credentials",
    ),
    "host-key": _Class(
        "the host's SSH identity: whoever reads it can impersonate this host to every SSH client",
        "a service that needs an SSH key gets its own (ssh-keygen as its user); never share "
        "the host keys",
    ),
    "root-home": _Class(
        "root's home holds root's SSH keys, kubeconfig, shell history and the scripts root runs",
        "put what the service needs in a directory of its own (/srv/NAME, /etc/NAME, a "
        "StateDirectory=), owned by its group",
    ),
    "user-credentials": _Class(
        "another account's keys and tokens (SSH, kubeconfig, registry logins, GnuPG): "
        "whoever reads them acts as that account",
        "give the service credentials of its own",
    ),
    "acme-account": _Class(
        "certbot's ACME account keys and the keys of its certificate requests belong to "
        "certbot: with the account key anyone can revoke or order certificates for these "
        "domains",
        "a server reads its certificate and key from live/DOMAIN/ only",
    ),
    "raw-memory": _Class(
        "physical memory, kernel memory or I/O ports: reading exposes every secret in memory, "
        "writing is root, and the kernel demands CAP_SYS_RAWIO to open them anyway",
        "there is no safe grant: read kernel data through /proc and /sys, or run the tool that "
        "needs it as root",
    ),
    "raw-disk": _Class(
        "a disk's raw blocks: reading them reads every file on it (/etc/shadow too) past all "
        'permissions, writing them is root (Debian: the disk group is "mostly equivalent to '
        'root access")',
        "mount the filesystem and grant access to the files the service needs, or give it a "
        "volume of its own",
    ),
    KEY_STORE: _Class(
        "a key store holds the private keys of several services",
        "grant only the service that owns this key, with ACL entries naming it on exactly the "
        "inodes it needs — never recursively, never for 'other', never a chgrp of the store; "
        "if the key is another service's, give this one its own copy owned by its group, "
        "refreshed by a certbot deploy hook (`certbot renew --deploy-hook`)",
    ),
    PARENT: _Class(
        "whoever may write a directory may rename, remove and replace what it holds "
        "(rename(2), unlink(2); no sticky bit here): writing it is as good as writing what "
        "lies below",
        "a service writes only directories of its own (systemd StateDirectory=, "
        "RuntimeDirectory=, a volume it owns)",
    ),
    "key-store-write": _Class(
        "a key store holds the private keys of several services: whoever writes it replaces "
        "their keys",
        "services read their keys; the ACME client (certbot, as root) or the administrator "
        "writes them",
    ),
}

_ANY, _WRITE, _READ = "rwx", "w", "rx"

#: (pattern, the access it covers: rwx any, w writing, rx reading/searching; class; what it is)
TABLE: tuple[tuple[str, str, str, str], ...] = (
    # password hashes — shadow(5), gshadow(5); Debian's daily backups and pam_pwhistory
    ("/etc/shadow", _ANY, "password-hashes", "the shadow password file"),
    ("/etc/shadow-", _ANY, "password-hashes", "the shadow password file's backup"),
    ("/etc/gshadow", _ANY, "password-hashes", "the group shadow file"),
    ("/etc/gshadow-", _ANY, "password-hashes", "the group shadow file's backup"),
    ("/var/backups/shadow.bak", _ANY, "password-hashes", "a backup of /etc/shadow"),
    ("/var/backups/gshadow.bak", _ANY, "password-hashes", "a backup of /etc/gshadow"),
    ("/etc/security/opasswd", _ANY, "password-hashes", "the old password hashes"),
    # accounts: readable by every process, writing them is root
    ("/etc/passwd", _WRITE, "account-database", "the account database"),
    ("/etc/group", _WRITE, "account-database", "the group database"),
    ("/etc/subuid", _WRITE, "account-database", "the subordinate uid ranges"),
    ("/etc/subgid", _WRITE, "account-database", "the subordinate gid ranges"),
    ("/etc/sudoers", _ANY, "sudo-policy", "sudo's policy"),
    ("/etc/sudoers.d/**", _ANY, "sudo-policy", "sudo's policy"),
    # keys of a CA, wherever they lie (kubeadm, cfssl, openssl ca, easy-rsa)
    ("**/ca.key", _ANY, "ca-key", "a CA's private key"),
    ("**/*-ca.key", _ANY, "ca-key", "a CA's private key"),
    ("**/ca-key.pem", _ANY, "ca-key", "a CA's private key"),
    ("**/*-ca-key.pem", _ANY, "ca-key", "a CA's private key"),
    ("**/cakey.pem", _ANY, "ca-key", "a CA's private key"),
    ("/etc/pki/CA/private/**", _ANY, "ca-key", "a CA's private key directory"),
    # Kubernetes (kubeadm, k3s, RKE2)
    ("/etc/kubernetes/*.conf", _ANY, "cluster-credentials", "a control-plane kubeconfig"),
    ("/etc/kubernetes/pki/*.key", _ANY, "cluster-credentials", "a control-plane private key"),
    ("/etc/kubernetes/pki/etcd/*.key", _ANY, "cluster-credentials", "an etcd private key"),
    ("/var/lib/kubelet/**", _ANY, "cluster-credentials", "the kubelet's state (keys, pod secrets)"),
    ("/var/lib/etcd/**", _ANY, "cluster-credentials", "etcd's data (every Secret)"),
    ("/etc/rancher/k3s/k3s.yaml", _ANY, "cluster-credentials", "k3s's admin kubeconfig"),
    ("/etc/rancher/rke2/rke2.yaml", _ANY, "cluster-credentials", "RKE2's admin kubeconfig"),
    ("/var/lib/rancher/k3s/server/**", _ANY, "cluster-credentials", "k3s's server state"),
    ("/var/lib/rancher/rke2/server/**", _ANY, "cluster-credentials", "RKE2's server state"),
    # container engines: their sockets, their storage
    ("/run/docker.sock", _ANY, "engine-socket", "Docker's API socket"),
    ("/run/containerd/containerd.sock", _ANY, "engine-socket", "containerd's API socket"),
    ("/run/containerd/containerd.sock.ttrpc", _ANY, "engine-socket", "containerd's socket"),
    ("/run/k3s/containerd/containerd.sock", _ANY, "engine-socket", "k3s's containerd socket"),
    ("/run/podman/podman.sock", _ANY, "engine-socket", "Podman's API socket"),
    ("/run/crio/**", _ANY, "engine-socket", "CRI-O's API directory"),
    ("/run/cri-dockerd.sock", _ANY, "engine-socket", "cri-dockerd's API socket"),
    ("/run/dockershim.sock", _ANY, "engine-socket", "dockershim's API socket"),
    ("/run/user/*/docker.sock", _ANY, "rootless-engine-socket", "a rootless Docker socket"),
    ("/run/user/*/podman/podman.sock", _ANY, "rootless-engine-socket", "a rootless Podman socket"),
    ("/var/lib/docker/**", _ANY, "engine-state", "Docker's storage"),
    ("/var/lib/containerd/**", _ANY, "engine-state", "containerd's storage"),
    ("/var/lib/containers/**", _ANY, "engine-state", "Podman's storage"),
    # identities of the host and of other accounts
    ("/etc/ssh/ssh_host_*_key", _ANY, "host-key", "an SSH host private key"),
    ("/root/**", _ANY, "root-home", "root's home"),
    ("/home/*/.ssh/**", _ANY, "user-credentials", "another account's SSH directory"),
    ("/home/*/.kube/**", _ANY, "user-credentials", "another account's kubeconfig directory"),
    ("/home/*/.docker/config.json", _ANY, "user-credentials", "another account's registry logins"),
    ("/home/*/.gnupg/**", _ANY, "user-credentials", "another account's GnuPG keyring"),
    # the kernel's memory and the disks' raw blocks — mem(4), capabilities(7), base-passwd
    ("/dev/mem", _ANY, "raw-memory", "physical memory"),
    ("/dev/kmem", _ANY, "raw-memory", "kernel memory"),
    ("/dev/port", _ANY, "raw-memory", "the I/O ports"),
    ("/proc/kcore", _ANY, "raw-memory", "kernel memory"),
    *(
        (f"/dev/{name}", _ANY, "raw-disk", "a disk device")
        for name in (
            "sd[a-z]*",
            "hd[a-z]*",
            "vd[a-z]*",
            "xvd[a-z]*",
            "nvme[0-9]*",
            "mmcblk[0-9]*",
            "dm-[0-9]*",
            "md[0-9]*",
            "loop[0-9]*",
            "nbd[0-9]*",
            "zd[0-9]*",
            "rbd[0-9]*",
            "sg[0-9]*",
            "root",
            "mapper/*",
        )
    ),
    ("/dev/disk/**", _ANY, "raw-disk", "the disks' device links"),
    # key stores: several services' keys; read by exactly the one that owns a key
    ("/etc/letsencrypt/keys/**", _ANY, "acme-account", "certbot's request keys"),
    ("/etc/letsencrypt/accounts/**", _ANY, "acme-account", "certbot's ACME account keys"),
    *(
        row
        for store in (
            "/etc/letsencrypt/live",
            "/etc/letsencrypt/archive",
            "/etc/ssl/private",
            "/etc/pki/tls/private",
        )
        for row in (
            (f"{store}/**", _WRITE, "key-store-write", f"the key store {store}"),
            (f"{store}/**", _READ, KEY_STORE, f"the key store {store}"),
        )
    ),
    # trust stores, then what root runs or obeys: write only
    ("/etc/ssl/certs/**", _WRITE, "trust-store", "the host's trusted CAs"),
    ("/usr/local/share/ca-certificates/**", _WRITE, "trust-store", "the host's trusted CAs"),
    ("/etc/pki/ca-trust/**", _WRITE, "trust-store", "the host's trusted CAs"),
    *(
        (pattern, _WRITE, "root-executes", what)
        for pattern, what in (
            ("/etc/crontab", "root's crontab"),
            ("/etc/cron.d/**", "cron's job directory"),
            ("/etc/cron.*/**", "cron's job directories"),
            ("/var/spool/cron/**", "the users' crontabs"),
            ("/etc/systemd/**", "systemd's configuration"),
            ("/run/systemd/system/**", "systemd's runtime units"),
            ("/etc/init.d/**", "the init scripts"),
            ("/etc/rc.local", "a boot script"),
            ("/etc/pam.d/**", "PAM's configuration"),
            ("/etc/security/**", "PAM's configuration"),
            ("/etc/ld.so.preload", "libraries preloaded into every program"),
            ("/etc/ld.so.conf", "the dynamic linker's search path"),
            ("/etc/ld.so.conf.d/**", "the dynamic linker's search path"),
            ("/etc/environment", "every login's environment"),
            ("/etc/profile", "every login shell's startup"),
            ("/etc/profile.d/**", "every login shell's startup"),
            ("/etc/polkit-1/**", "polkit's rules"),
            ("/etc/udev/**", "udev's rules"),
            ("/etc/modprobe.d/**", "kernel module options"),
            ("/etc/apt/**", "APT's sources and hooks"),
            ("/etc/letsencrypt/renewal/**", "certbot's renewal settings (their hooks run as root)"),
            ("/etc/letsencrypt/renewal-hooks/**", "certbot's hooks (run as root)"),
            ("/etc/letsencrypt/cli.ini", "certbot's settings"),
            ("/etc/ssh/sshd_config", "sshd's configuration"),
            ("/etc/ssh/sshd_config.d/**", "sshd's configuration"),
            ("/etc/kubernetes/**", "the kubelet's configuration and static pods"),
            ("/etc/docker/**", "Docker's configuration"),
            ("/etc/containerd/**", "containerd's configuration"),
            ("/etc/containers/**", "Podman's configuration"),
            ("/etc/crio/**", "CRI-O's configuration"),
            ("/usr/**", "the system's programs and libraries"),
            ("/bin/**", "the system's programs"),
            ("/sbin/**", "the system's programs"),
            ("/lib/**", "the system's libraries"),
            ("/lib32/**", "the system's libraries"),
            ("/lib64/**", "the system's libraries"),
            ("/boot/**", "the boot files"),
        )
    ),
)

_Pattern = tuple[str, ...]
_ROWS: tuple[tuple[_Pattern, str, str, str], ...] = tuple(
    (tuple(pattern.strip("/").split("/")), access, kind, what)
    for pattern, access, kind, what in TABLE
)
_ALIASES = {("var", "run"): ("run",)}


@dataclass(frozen=True, slots=True)
class Protection:
    """Why unroot offers no grant (or only a narrow one) on ``path``, and what to do instead.

    ``kind`` is the class slug (``password-hashes``, ``engine-socket``, ``key-store`` …);
    ``narrow`` marks a key store, where ACL entries naming exactly the identity asked about
    may still be suggested (no ``chgrp``, nothing recursive, nothing for "other").
    """

    path: str
    kind: str
    what: str  # what the path is, after "is": "the shadow password file", "in root's home"
    why: str
    instead: str

    @property
    def narrow(self) -> bool:
        return self.kind == KEY_STORE

    def text(self) -> str:
        """The explanation a fix carries."""
        if self.narrow:
            return f"{self.path} is {self.what}: {self.why}; {self.instead}"
        return (
            f"no grant is suggested: {self.path} is {self.what} — {self.why}; instead, "
            f"{self.instead}"
        )


def normalise(path: str) -> str:
    """Collapse ``//``, ``.`` and ``..`` (``/..`` is ``/``) and read ``/var/run`` as ``/run``."""
    return "/" + "/".join(_segments(path))


def _segments(path: str) -> tuple[str, ...]:
    if not isinstance(path, str) or not path.startswith("/") or "\0" in path:
        raise ParseError(f"path must be absolute (start with '/'), not {path!r}")
    parts: list[str] = []
    for part in path.split("/"):
        if part == "..":
            if parts:
                parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    for alias, real in _ALIASES.items():
        if tuple(parts[: len(alias)]) == alias:
            return real + tuple(parts[len(alias) :])
    return tuple(parts)


def _match(pattern: _Pattern, segments: tuple[str, ...]) -> bool:
    if not pattern:
        return not segments
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_match(rest, segments[i:]) for i in range(len(segments) + 1))
    return bool(segments) and fnmatchcase(segments[0], head) and _match(rest, segments[1:])


def _above(pattern: _Pattern, segments: tuple[str, ...]) -> bool:
    """``segments`` names a directory on the way to what ``pattern`` names."""
    if pattern[0] == "**":
        return False  # "anywhere": every directory would be above one
    fixed = pattern[:-1] if pattern[-1] == "**" else pattern
    return len(segments) < len(fixed) and all(map(fnmatchcase, segments, fixed))


def protection(path: str, *, write: bool) -> Protection | None:
    """Whether ``path`` may have its access widened, for writing (``write``) or for reading,
    searching or executing; None when this module has nothing against it."""
    segments = _segments(path)
    shown = "/" + "/".join(segments)
    wanted = _WRITE if write else "r"
    for pattern, access, kind, what in _ROWS:
        if wanted in access and _match(pattern, segments):
            cls = CLASSES[kind]
            below = pattern[-1] == "**" and len(segments) >= len(pattern)
            return Protection(shown, kind, f"in {what}" if below else what, cls.why, cls.instead)
    if write:
        for pattern, access, _kind, what in _ROWS:
            if _WRITE in access and _above(pattern, segments):
                cls = CLASSES[PARENT]
                return Protection(shown, PARENT, f"a directory above {what}", cls.why, cls.instead)
    return None


def advice(protections: Iterable[Protection]) -> tuple[str, ...]:
    """One sentence per class for several refused paths (lint names many at once)."""
    by_kind: dict[str, list[Protection]] = {}
    for item in protections:
        if not item.narrow:
            by_kind.setdefault(item.kind, []).append(item)
    return tuple(
        f"never widen access to {', '.join(dict.fromkeys(p.path for p in group))}: "
        f"{group[0].why}; instead, {group[0].instead}"
        for group in by_kind.values()
    )
