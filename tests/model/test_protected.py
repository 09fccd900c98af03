"""Paths whose access unroot never advises widening — model/protected.py, by path alone."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from unroot.errors import ParseError
from unroot.model.protected import CLASSES, KEY_STORE, TABLE, advice, normalise, protection

# (path, write, the class expected, or None: nothing against it) — one row per reason
ROWS: list[tuple[str, bool, str | None]] = [
    # shadow(5), gshadow(5), their backups: any access
    ("/etc/shadow", False, "password-hashes"),
    ("/etc/shadow", True, "password-hashes"),
    ("/etc/shadow-", False, "password-hashes"),
    ("/etc/gshadow", False, "password-hashes"),
    ("/etc/gshadow-", False, "password-hashes"),
    ("/var/backups/shadow.bak", False, "password-hashes"),
    # accounts: reading /etc/passwd is fine, writing it is root
    ("/etc/passwd", False, None),
    ("/etc/passwd", True, "account-database"),
    ("/etc/group", False, None),
    ("/etc/group", True, "account-database"),
    ("/etc/subuid", True, "account-database"),
    ("/etc/sudoers", False, "sudo-policy"),
    ("/etc/sudoers.d/app", False, "sudo-policy"),
    ("/etc/sudoers.d", True, "sudo-policy"),
    # root's home and below
    ("/root", False, "root-home"),
    ("/root/x", False, "root-home"),
    ("/root/.kube/config", False, "root-home"),
    # SSH host keys, not their public halves
    ("/etc/ssh/ssh_host_ed25519_key", False, "host-key"),
    ("/etc/ssh/ssh_host_rsa_key", False, "host-key"),
    ("/etc/ssh/ssh_host_ed25519_key.pub", False, None),
    ("/etc/ssh/sshd_config", False, None),
    ("/etc/ssh/sshd_config", True, "root-executes"),
    # kubeadm's PKI: CA keys, control-plane keys and kubeconfigs; certificates are public
    ("/etc/kubernetes/pki/ca.key", False, "ca-key"),
    ("/etc/kubernetes/pki/etcd/ca.key", False, "ca-key"),
    ("/etc/kubernetes/pki/front-proxy-ca.key", False, "ca-key"),
    ("/etc/kubernetes/pki/sa.key", False, "cluster-credentials"),
    ("/etc/kubernetes/pki/apiserver.key", False, "cluster-credentials"),
    ("/etc/kubernetes/pki/etcd/server.key", False, "cluster-credentials"),
    ("/etc/kubernetes/pki/ca.crt", False, None),
    ("/etc/kubernetes/pki/sa.pub", False, None),
    ("/etc/kubernetes/admin.conf", False, "cluster-credentials"),
    ("/etc/kubernetes/super-admin.conf", False, "cluster-credentials"),
    ("/etc/kubernetes/kubelet.conf", False, "cluster-credentials"),
    ("/etc/kubernetes/controller-manager.conf", False, "cluster-credentials"),
    ("/etc/kubernetes/scheduler.conf", False, "cluster-credentials"),
    ("/etc/kubernetes/manifests/kube-apiserver.yaml", True, "root-executes"),
    ("/var/lib/kubelet/pki/kubelet-client-current.pem", False, "cluster-credentials"),
    ("/var/lib/etcd/member/snap/db", False, "cluster-credentials"),
    ("/etc/rancher/k3s/k3s.yaml", False, "cluster-credentials"),
    # other CAs' keys, wherever they lie
    ("/srv/pki/ca-key.pem", False, "ca-key"),
    ("/etc/easy-rsa/pki/private/ca.key", False, "ca-key"),
    ("/etc/pki/CA/private/cakey.pem", False, "ca-key"),
    ("/srv/pki/ca.pem", False, None),
    # container engines: sockets (any access) and storage
    ("/run/docker.sock", False, "engine-socket"),
    ("/run/docker.sock", True, "engine-socket"),
    ("/var/run/docker.sock", True, "engine-socket"),
    ("/run/containerd/containerd.sock", True, "engine-socket"),
    ("/run/podman/podman.sock", True, "engine-socket"),
    ("/run/crio/crio.sock", True, "engine-socket"),
    ("/var/run/crio/crio.sock", True, "engine-socket"),
    ("/var/run/crio", False, "engine-socket"),
    ("/run/user/1000/docker.sock", True, "rootless-engine-socket"),
    ("/run/user/1000/podman/podman.sock", True, "rootless-engine-socket"),
    ("/run/user/1000/app.sock", True, None),
    ("/var/lib/docker", False, "engine-state"),
    ("/var/lib/docker/volumes/data/_data/x", False, "engine-state"),
    ("/var/lib/containerd", False, "engine-state"),
    # other accounts' credentials
    ("/home/alice/.ssh/id_ed25519", False, "user-credentials"),
    ("/home/alice/.ssh/authorized_keys", True, "user-credentials"),
    ("/home/alice/.kube/config", False, "user-credentials"),
    ("/home/alice/.docker/config.json", False, "user-credentials"),
    ("/home/alice/www/index.html", False, None),
    # the kernel's memory, the disks' blocks (capabilities(7), mem(4), base-passwd's disk)
    ("/dev/mem", False, "raw-memory"),
    ("/dev/kmem", False, "raw-memory"),
    ("/dev/port", True, "raw-memory"),
    ("/proc/kcore", False, "raw-memory"),
    ("/dev/sda", False, "raw-disk"),
    ("/dev/sda1", True, "raw-disk"),
    ("/dev/nvme0n1p2", False, "raw-disk"),
    ("/dev/vda", False, "raw-disk"),
    ("/dev/xvdb", False, "raw-disk"),
    ("/dev/mmcblk0", False, "raw-disk"),
    ("/dev/dm-0", False, "raw-disk"),
    ("/dev/mapper/vg-root", False, "raw-disk"),
    ("/dev/md0", False, "raw-disk"),
    ("/dev/loop0", False, "raw-disk"),
    ("/dev/disk/by-uuid/1234", False, "raw-disk"),
    ("/dev/null", True, None),
    ("/dev/sgx_enclave", False, None),
    ("/dev/net/tun", False, None),
    # key stores: a narrow grant for reading; writing is refused
    ("/etc/letsencrypt/live/blog/privkey.pem", False, KEY_STORE),
    ("/etc/letsencrypt/archive/blog/privkey1.pem", False, KEY_STORE),
    ("/etc/letsencrypt/live", False, KEY_STORE),
    ("/etc/letsencrypt/live/blog/privkey.pem", True, "key-store-write"),
    ("/etc/ssl/private", False, KEY_STORE),
    ("/etc/ssl/private/ssl-cert-snakeoil.key", False, KEY_STORE),
    ("/etc/pki/tls/private/web.key", False, KEY_STORE),
    (
        "/etc/letsencrypt/accounts/acme-v02.api.letsencrypt.org/directory/x/private_key.json",
        False,
        "acme-account",
    ),
    ("/etc/letsencrypt/keys/0000_key-certbot.pem", False, "acme-account"),
    ("/etc/letsencrypt/renewal-hooks/deploy/copy.sh", True, "root-executes"),
    ("/etc/letsencrypt/renewal-hooks/deploy/copy.sh", False, None),
    ("/etc/letsencrypt", False, None),
    ("/etc/ssl/certs/ca-certificates.crt", False, None),
    ("/etc/ssl/certs/ca-certificates.crt", True, "trust-store"),
    # what root runs or obeys, for writing
    ("/etc/crontab", True, "root-executes"),
    ("/etc/cron.d/backup", True, "root-executes"),
    ("/etc/cron.daily/logrotate", True, "root-executes"),
    ("/etc/cron.d/backup", False, None),
    ("/etc/systemd/system/app.service", True, "root-executes"),
    ("/usr/lib/systemd/system/app.service", True, "root-executes"),
    ("/lib/systemd/system/app.service", True, "root-executes"),
    ("/usr/local/bin/app", True, "root-executes"),
    ("/usr/local/bin/app", False, None),
    ("/etc/ld.so.preload", True, "root-executes"),
    ("/etc/pam.d/sshd", True, "root-executes"),
    # writing a directory above a protected path replaces what is below it (rename(2))
    ("/", True, "protected-parent"),
    ("/etc", True, "protected-parent"),
    ("/etc/ssh", True, "protected-parent"),
    ("/etc/kubernetes/pki", True, "root-executes"),
    ("/run", True, "protected-parent"),
    ("/var/lib", True, "protected-parent"),
    ("/home/alice", True, "protected-parent"),
    ("/etc", False, None),
    ("/etc/kubernetes/pki", False, None),
    ("/home/alice", False, None),
    # the service's own places
    ("/srv/www", True, None),
    ("/var/lib/app", True, None),
    ("/var/log/app/access.log", True, None),
    ("/run/app/app.sock", True, None),
    ("/tmp/x", True, None),
    ("/etc/app/config.toml", False, None),
]


@pytest.mark.parametrize(("path", "write", "kind"), ROWS)
def test_table(path: str, write: bool, kind: str | None) -> None:
    found = protection(path, write=write)
    assert (found.kind if found else None) == kind
    if found is not None:
        assert all((found.why, found.instead, found.what))
        assert found.path == normalise(path)
        assert found.narrow is (kind == KEY_STORE)


@pytest.mark.parametrize(
    "spelling",
    [
        "/etc/shadow",
        "//etc//shadow",
        "/etc/./shadow",
        "/etc/../etc/shadow",
        "/./etc/shadow/",
        "/../../etc/shadow",
        "/srv/../etc/x/../shadow",
    ],
)
def test_spellings_of_the_same_path(spelling: str) -> None:
    found = protection(spelling, write=False)
    assert found is not None
    assert (found.kind, found.path) == ("password-hashes", "/etc/shadow")


def test_var_run_is_run() -> None:
    assert normalise("/var/run/docker.sock") == "/run/docker.sock"
    assert normalise("/var//run/./docker.sock") == "/run/docker.sock"
    assert normalise("/var/runner/x") == "/var/runner/x"


@pytest.mark.parametrize("path", ["etc/shadow", "", "shadow", "/etc/sha\0dow"])
def test_relative_paths_are_rejected(path: str) -> None:
    with pytest.raises(ParseError):
        protection(path, write=False)


def test_every_class_is_explained_and_used() -> None:
    used = {kind for _pattern, _access, kind, _what in TABLE}
    assert used <= set(CLASSES)
    assert set(CLASSES) - used == {"protected-parent"}  # derived, never a row


def test_texts_say_why_and_what_instead() -> None:
    shadow = protection("/etc/shadow", write=False)
    assert shadow is not None
    assert shadow.text().startswith("no grant is suggested: /etc/shadow is the shadow password")
    assert "PAM" in shadow.text()
    sock = protection("/run/docker.sock", write=True)
    assert sock is not None
    assert "root-level privileges" in sock.text()
    assert "socket proxy" in sock.text()
    ca = protection("/etc/kubernetes/pki/ca.key", write=False)
    assert ca is not None
    assert "own key and certificate" in ca.text()
    below = protection("/root/x", write=False)
    assert below is not None
    assert below.text().startswith("no grant is suggested: /root/x is in root's home")
    store = protection("/etc/letsencrypt/archive/blog/privkey1.pem", write=False)
    assert store is not None
    assert "never recursively, never for 'other'" in store.text()
    assert "deploy hook" in store.text()


def test_advice_groups_refusals_by_class_and_skips_key_stores() -> None:
    found = [
        protection(path, write=False)
        for path in (
            "/etc/shadow",
            "/etc/gshadow",
            "/run/docker.sock",
            "/etc/letsencrypt/live",
            "/etc/shadow",
        )
    ]
    lines = advice(p for p in found if p is not None)
    assert len(lines) == 2
    assert lines[0].startswith("never widen access to /etc/shadow, /etc/gshadow: ")
    assert lines[1].startswith("never widen access to /run/docker.sock: ")


names = st.sampled_from(["etc", "shadow", "root", "run", "docker.sock", "var", "x", "ca.key"])
noise = st.sampled_from(["", ".", "x/..", "./"])


@given(st.lists(names, min_size=1, max_size=5), st.lists(noise, min_size=6, max_size=6))
def test_spelling_never_changes_the_answer(parts: list[str], extra: list[str]) -> None:
    plain = "/" + "/".join(parts)
    noisy = "/" + "/".join(f"{e}/{p}" if e else p for e, p in zip(extra, parts, strict=False))
    for write in (False, True):
        assert protection(plain, write=write) == protection(noisy, write=write)


@given(st.lists(names, min_size=1, max_size=5))
def test_writing_is_refused_wherever_reading_is(parts: list[str]) -> None:
    path = "/" + "/".join(parts)
    read = protection(path, write=False)
    if read is not None:
        assert protection(path, write=True) is not None
