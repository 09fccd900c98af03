#!/usr/bin/env bash
# Make a rootful Docker engine answer on /var/run/docker.sock (Debian 12, as root). Idempotent:
#   - installs docker.io (pulls containerd, runc, iptables, tini) when missing, and apparmor when
#     the kernel has AppArmor enabled;
#   - does nothing more when `docker info` already answers;
#   - otherwise starts the engine: `systemctl start docker` under systemd, else dockerd in the
#     background (log: /var/log/unroot-dockerd.log), after removing a stale pid file;
#   - waits up to 60 s for `docker info`.
# On failure it prints one line, "docker-engine.sh: <why>", to stderr and exits 1.
# On success it prints one line: server version, storage driver, iptables backend.
#
# Environment: UNROOT_DOCKER (the CLI; default /usr/bin/docker, the one docker.io ships: a newer
# CLI elsewhere on PATH may insist on buildx), UNROOT_DOCKERD_LOG, UNROOT_DOCKER_WAIT (seconds),
# UNROOT_DOCKERD_FLAGS (extra dockerd flags when we start it, e.g. "--storage-driver vfs" where
# overlayfs is missing, "--iptables=false" where netfilter is; neither was needed on the Debian 12
# VMs tried: overlay2 and iptables-nft work).
set -euo pipefail

DOCKER=${UNROOT_DOCKER:-/usr/bin/docker}
LOG=${UNROOT_DOCKERD_LOG:-/var/log/unroot-dockerd.log}
WAIT=${UNROOT_DOCKER_WAIT:-60}
read -r -a FLAGS <<<"${UNROOT_DOCKERD_FLAGS:-}"
PIDFILE=/var/run/docker.pid
LOCK=/var/lock/unroot-docker-engine.lock

die() {
    echo "docker-engine.sh: $*" >&2
    exit 1
}

[ "$(id -u)" -eq 0 ] || die "needs root (installs docker.io and starts dockerd)"

# One caller at a time: several test sessions may race to start the same engine.
exec 9>"$LOCK"
flock -w 300 9 || die "another docker-engine.sh still holds $LOCK after 300 s"

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

wanted=(docker.io iptables)
# With AppArmor on (Debian 12's default kernel) dockerd needs apparmor_parser to load its
# docker-default profile, else every `docker run` fails ("AppArmor enabled on system but the
# docker-default profile could not be loaded"); docker.io only recommends the package.
if grep -qs Y /sys/module/apparmor/parameters/enabled; then
    wanted+=(apparmor)
fi
missing=()
for pkg in "${wanted[@]}"; do
    installed "$pkg" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
        >/tmp/unroot-docker-apt.log 2>&1 ||
        die "apt-get install ${missing[*]} failed (see /tmp/unroot-docker-apt.log)"
fi
[ -x "$DOCKER" ] || die "no docker CLI at $DOCKER (set UNROOT_DOCKER)"

answers() { timeout 10 "$DOCKER" info >/dev/null 2>&1; }

report() {
    local info backend
    info=$(timeout 10 "$DOCKER" info --format '{{.ServerVersion}} storage={{.Driver}}') ||
        die "docker info answered once, then failed"
    backend=$(iptables --version 2>/dev/null | sed -n 's/.*(\(.*\)).*/\1/p')
    echo "docker ${info} iptables=${backend:-none}"
}

if answers; then
    report
    exit 0
fi

dockerd_alive() {
    # The pid file names a live dockerd (not a recycled pid).
    local pid
    [ -s "$PIDFILE" ] || return 1
    pid=$(cat "$PIDFILE")
    [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" = dockerd ] &&
        ! grep -Eq '^State:[[:space:]]+[ZX]' "/proc/$pid/status" # a zombie is not alive
}

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
    systemctl start docker.service >>"$LOG" 2>&1 || die "systemctl start docker failed (journalctl -u docker)"
elif dockerd_alive; then
    : # already starting (or hung): just wait for it below
else
    if [ -e "$PIDFILE" ]; then
        echo "docker-engine.sh: removing stale $PIDFILE ($(cat "$PIDFILE" 2>/dev/null))" >>"$LOG"
        rm -f "$PIDFILE"
    fi
    # A dockerd that died leaves its managed containerd's pid file too; dockerd handles that one.
    command -v dockerd >/dev/null || die "dockerd not found although docker.io is installed"
    echo "--- $(date -Is) docker-engine.sh starting dockerd" >>"$LOG"
    # setsid: the daemon must not die with the caller's session or process group (pytest, CI step).
    # 9>&-: the daemon must not inherit (and so hold forever) the lock.
    setsid dockerd --pidfile "$PIDFILE" "${FLAGS[@]}" </dev/null >>"$LOG" 2>&1 9>&- &
    started=$!
fi

for _ in $(seq "$WAIT"); do
    if answers; then
        report
        exit 0
    fi
    if [ -n "${started:-}" ] && ! kill -0 "$started" 2>/dev/null; then
        die "dockerd exited: $(grep -E 'level=(fatal|error)|failed' "$LOG" | tail -1 | cut -c1-300)"
    fi
    sleep 1
done
die "docker info did not answer within ${WAIT} s (see $LOG)"
