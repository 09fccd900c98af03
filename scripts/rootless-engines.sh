#!/usr/bin/env bash
# Rootless Docker and rootless Podman for a test user, on a host without systemd (Debian 12, as
# root). For the engine tests of `unroot doctor --rootless` and `unroot verify` (issues 10, 11).
#
#   scripts/rootless-engines.sh [start]          start what is not running (idempotent, fast when up)
#   scripts/rootless-engines.sh stop [docker|podman]   stop both engines (or one)
#   scripts/rootless-engines.sh env              print DOCKER_HOST=... and CONTAINER_HOST=... lines
#
# `start`:
#   - installs rootlesskit, uidmap, slirp4netns, podman and attr when missing;
#   - creates the user (`useradd -m`, which gives it /etc/subuid and /etc/subgid ranges);
#   - makes /dev/net/tun mode 0666, as on a normal host (slirp4netns opens it as the user);
#   - creates XDG_RUNTIME_DIR=/run/user/UID (the user's, 0700);
#   - rootless Docker: docker.io's own /usr/share/docker.io/contrib/dockerd-rootless.sh as the
#     user, without systemd --user (setsid + setpriv, in the background): rootlesskit (pid file
#     /run/unroot-rootless/USER/dockerd.pid, the process group's leader) -> dockerd, socket
#     unix:///run/user/UID/docker.sock, log /var/log/unroot-rootless/USER/dockerd.log; open-file limit
#     (soft = hard) UNROOT_ROOTLESS_NOFILE, default the caller's hard limit (the setuptool's
#     unit says LimitNOFILE=infinity, i.e. fs.nr_open under systemd; raising the hard limit needs
#     CAP_SYS_RESOURCE, which a sandbox may lack); checks SecurityOptions name=rootless;
#   - rootless Podman: native overlay storage (~/.config/containers/storage.conf; the kernel
#     allows overlay in a user namespace, so no fuse-overlayfs; the default vfs copies the image
#     per container) and `podman system service` as the user (pid file
#     /run/unroot-rootless/USER/podman.pid, socket unix:///run/user/UID/podman/podman.sock, log
#     /var/log/unroot-rootless/USER/podman.log); checks host.security.rootless;
#   - loads the offline base image (scripts/base-image.sh) from the rootful engine into both,
#     when its id differs there.
# Root reaches them through the sockets (root may connect to any unix socket):
#   DOCKER_HOST=unix:///run/user/UID/docker.sock docker ...
#   CONTAINER_HOST=unix:///run/user/UID/podman/podman.sock podman --remote ...
# so nothing of unroot (its venv under /root is not executable by the user) runs as the user.
# Prints one line per engine. On failure: one line "rootless-engines.sh: <why>" on stderr, exit 1.
#
# Environment: UNROOT_ROOTLESS_USER (default unroot-rl), UNROOT_BASE_IMAGE (default
# unroot-base:bookworm), UNROOT_DOCKER (the CLI, default /usr/bin/docker), UNROOT_ROOTLESS_WAIT
# (seconds per engine, default 60), UNROOT_ROOTLESS_NOFILE.
set -euo pipefail

ACTION=${1:-start}
WHICH=${2:-all}
USER_NAME=${UNROOT_ROOTLESS_USER:-unroot-rl}
IMAGE=${UNROOT_BASE_IMAGE:-unroot-base:bookworm}
DOCKER=${UNROOT_DOCKER:-/usr/bin/docker}
WAIT=${UNROOT_ROOTLESS_WAIT:-60}
NOFILE=${UNROOT_ROOTLESS_NOFILE:-$(ulimit -Hn)}
STATE=/run/unroot-rootless/$USER_NAME
LOGS=/var/log/unroot-rootless/$USER_NAME
DOCKERD_LOG=$LOGS/dockerd.log
PODMAN_LOG=$LOGS/podman.log
LOCK=/var/lock/unroot-rootless-engines.lock
ROOTLESS_SH=/usr/share/docker.io/contrib/dockerd-rootless.sh
USER_PATH=/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin

die() {
    echo "rootless-engines.sh: $*" >&2
    exit 1
}

[ "$(id -u)" -eq 0 ] || die "needs root (useradd, /dev/net/tun, starting engines as the user)"

uid_of() { id -u "$USER_NAME" 2>/dev/null; }

if [ "$ACTION" = env ]; then
    uid=$(uid_of) || die "no user $USER_NAME (run: scripts/rootless-engines.sh start)"
    echo "DOCKER_HOST=unix:///run/user/$uid/docker.sock"
    echo "CONTAINER_HOST=unix:///run/user/$uid/podman/podman.sock"
    exit 0
fi
case "$ACTION" in start | stop) ;; *) die "unknown action $ACTION (start, stop, env)" ;; esac

# One caller at a time: several test sessions may race to start the same engines.
mkdir -p "$STATE" "$LOGS"
exec 9>"$LOCK"
flock -w 300 9 || die "another rootless-engines.sh still holds $LOCK after 300 s"

alive() {
    # $1: pid file, $2: the comm its process must have (not a recycled pid, not a zombie).
    local pid
    [ -s "$1" ] || return 1
    pid=$(cat "$1")
    [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" = "$2" ] &&
        ! grep -Eq '^State:[[:space:]]+[ZX]' "/proc/$pid/status"
}

stop_one() {
    # $1: pid file, $2: comm. TERM to the leader (rootlesskit tears its namespace down with
    # dockerd and containerd in it), then KILL to the whole process group after 20 s.
    local pid
    alive "$1" "$2" || {
        rm -f "$1"
        return 0
    }
    pid=$(cat "$1")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 40); do
        alive "$1" "$2" || break
        sleep 0.5
    done
    if alive "$1" "$2"; then
        kill -KILL -- "-$pid" 2>/dev/null || true
        sleep 1
    fi
    rm -f "$1"
}

wait_dockerd_gone() {
    # rootlesskit's exit does not wait for its dockerd's graceful shutdown; a dockerd still
    # shutting down keeps XDG_RUNTIME_DIR/docker.pid, and a new one started meanwhile exits.
    local pid owner
    owner=$(uid_of) || return 0
    for _ in $(seq 60); do
        pid=$(cat "/run/user/$owner/docker.pid" 2>/dev/null || true)
        if [ -z "$pid" ] || ! [ -d "/proc/$pid" ]; then
            return 0
        fi
        sleep 0.5
    done
    kill -KILL "$pid" 2>/dev/null || true
}

if [ "$ACTION" = stop ]; then
    case "$WHICH" in
    docker)
        stop_one "$STATE/dockerd.pid" rootlesskit
        wait_dockerd_gone
        ;;
    podman) stop_one "$STATE/podman.pid" podman ;;
    all)
        stop_one "$STATE/dockerd.pid" rootlesskit
        wait_dockerd_gone
        stop_one "$STATE/podman.pid" podman
        ;;
    *) die "stop what? $WHICH (docker, podman)" ;;
    esac
    echo "rootless engines of $USER_NAME stopped: $WHICH"
    exit 0
fi

# --- packages, user, devices ---------------------------------------------------------------
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
missing=()
for pkg in rootlesskit uidmap slirp4netns podman attr; do
    installed "$pkg" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
        >/tmp/unroot-rootless-apt.log 2>&1 ||
        die "apt-get install ${missing[*]} failed (see /tmp/unroot-rootless-apt.log)"
fi
[ -x "$ROOTLESS_SH" ] || die "$ROOTLESS_SH missing (docker.io installs it; run scripts/docker-engine.sh)"
[ -x "$DOCKER" ] || die "no docker CLI at $DOCKER (set UNROOT_DOCKER)"

if ! uid_of >/dev/null; then
    useradd -m -s /bin/bash -c "unroot rootless engines (tests)" "$USER_NAME" ||
        die "useradd $USER_NAME failed"
fi
uid=$(uid_of)
[ "$uid" -ne 0 ] || die "UNROOT_ROOTLESS_USER must not be root ($USER_NAME has uid 0)"
gid=$(id -g "$USER_NAME")
home=$(getent passwd "$USER_NAME" | cut -d: -f6)
{ grep -q "^$USER_NAME:" /etc/subuid && grep -q "^$USER_NAME:" /etc/subgid; } ||
    die "$USER_NAME has no /etc/subuid or /etc/subgid range (useradd adds them when SUB_UID_COUNT > 0)"
[ "$(cat /proc/sys/user/max_user_namespaces)" -gt 0 ] || die "user.max_user_namespaces is 0"

if [ ! -e /dev/net/tun ]; then
    mkdir -p /dev/net
    mknod -m 0666 /dev/net/tun c 10 200
elif [ "$(stat -c %a /dev/net/tun)" != 666 ]; then
    chmod 0666 /dev/net/tun
fi

XDG=/run/user/$uid
if [ ! -d "$XDG" ] || [ "$(stat -c '%u %a' "$XDG")" != "$uid 700" ]; then
    mkdir -p "$XDG"
    chown "$uid:$gid" "$XDG"
    chmod 0700 "$XDG"
fi
DOCKER_SOCK=unix://$XDG/docker.sock
PODMAN_SOCK=unix://$XDG/podman/podman.sock

as_user() {
    # Run "$@" as the user with a clean login-like environment, from its home.
    (cd "$home" && exec setpriv --reuid="$uid" --regid="$gid" --init-groups \
        env -i PATH="$USER_PATH" HOME="$home" USER="$USER_NAME" LOGNAME="$USER_NAME" \
        XDG_RUNTIME_DIR="$XDG" "$@")
}

rdocker() { timeout 30 "$DOCKER" -H "$DOCKER_SOCK" "$@"; }
rpodman() { timeout 30 podman --remote --url "$PODMAN_SOCK" "$@"; }

wait_for() {
    # $1: what, $2: pid file, $3: comm, $4...: the command that answers when it is up.
    local what=$1 pidfile=$2 comm=$3 log=$4
    shift 4
    for _ in $(seq "$WAIT"); do
        "$@" >/dev/null 2>&1 && return 0
        alive "$pidfile" "$comm" ||
            die "$what exited: $(grep -Eai 'level=(fatal|error)|error|failed' "$log" | tail -1 | cut -c1-300) (see $log)"
        sleep 1
    done
    die "$what did not answer within ${WAIT} s (see $log)"
}

start_background() {
    # $1: pid file, $2: log, $3...: command (run as the user). setsid: a process group and
    # session of its own (not killed with the caller's); the subshell execs all the way down,
    # so $! is the pid of the command itself. It keeps no descriptor but 0-2: an inherited one
    # (our lock on 9, a caller's `flock FILE cmd`) would hold that lock as long as the daemon.
    local pidfile=$1 log=$2
    shift 2
    echo "--- $(date -Is) rootless-engines.sh starting $*" >>"$log"
    (
        for fd in /proc/"$BASHPID"/fd/*; do
            fd=${fd##*/}
            if [ "$fd" -gt 2 ] && [ "$fd" != 255 ]; then eval "exec $fd>&-"; fi
        done
        ulimit -n "$NOFILE" || exit 1
        cd "$home"
        exec setsid setpriv --reuid="$uid" --regid="$gid" --init-groups \
            env -i PATH="$USER_PATH" HOME="$home" USER="$USER_NAME" LOGNAME="$USER_NAME" \
            XDG_RUNTIME_DIR="$XDG" "$@"
    ) </dev/null >>"$log" 2>&1 &
    echo $! >"$pidfile"
}

# --- rootless Docker ---------------------------------------------------------------------------
docker_state=running
if ! rdocker info >/dev/null 2>&1; then
    if ! alive "$STATE/dockerd.pid" rootlesskit; then
        # A dockerd killed hard leaves its pid file in XDG_RUNTIME_DIR; it would refuse to start.
        if [ -s "$XDG/docker.pid" ] && ! [ -d "/proc/$(cat "$XDG/docker.pid")" ]; then
            rm -f "$XDG/docker.pid"
        fi
        start_background "$STATE/dockerd.pid" "$DOCKERD_LOG" "$ROOTLESS_SH"
        docker_state=started
    fi
    wait_for "rootless dockerd" "$STATE/dockerd.pid" rootlesskit "$DOCKERD_LOG" rdocker info
fi
# Into a variable first: `| grep -q` may exit before docker has written everything, and the
# SIGPIPE would fail the pipeline (pipefail).
security=$(rdocker info --format '{{range .SecurityOptions}}{{println .}}{{end}}') ||
    die "docker info on $DOCKER_SOCK answered once, then failed"
grep -qx 'name=rootless' <<<"$security" ||
    die "the dockerd on $DOCKER_SOCK does not report SecurityOptions name=rootless"

# --- rootless Podman ---------------------------------------------------------------------------
storage_conf=$home/.config/containers/storage.conf
if ! grep -qs '^driver = "overlay"' "$storage_conf"; then
    as_user mkdir -p "$home/.config/containers"
    printf '# Written by unroot scripts/rootless-engines.sh: native overlay (vfs copies each image).\n[storage]\ndriver = "overlay"\n' |
        as_user tee "$storage_conf" >/dev/null
fi
# runc, as the ground truth was measured: with crun installed too (./dev installs it for the
# doctor --error tests) Podman would pick crun, whose rlimit and cgroup handling differ here.
containers_conf=$home/.config/containers/containers.conf
if ! grep -qs '^runtime = "runc"' "$containers_conf"; then
    printf '# Written by unroot scripts/rootless-engines.sh: the OCI runtime the tests measured.\n[engine]\nruntime = "runc"\n' |
        as_user tee "$containers_conf" >/dev/null
fi
podman_state=running
if ! rpodman info >/dev/null 2>&1; then
    if ! alive "$STATE/podman.pid" podman; then
        driver=$(as_user podman info --format '{{.Store.GraphDriverName}}' 2>/dev/null || true)
        if [ "$driver" != overlay ]; then # a store made with another driver: start it over
            as_user podman system reset --force >>"$PODMAN_LOG" 2>&1 ||
                die "podman system reset failed (see $PODMAN_LOG)"
        fi
        as_user mkdir -p -m 0700 "$XDG/podman"
        start_background "$STATE/podman.pid" "$PODMAN_LOG" podman system service --time=0 "$PODMAN_SOCK"
        podman_state=started
    fi
    wait_for "podman system service" "$STATE/podman.pid" podman "$PODMAN_LOG" rpodman info
fi
[ "$(rpodman info --format '{{.Host.Security.Rootless}}')" = true ] ||
    die "the podman on $PODMAN_SOCK does not report host.security.rootless"

# --- the offline base image in both ------------------------------------------------------------
want=$(timeout 30 "$DOCKER" image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null) ||
    die "no $IMAGE in the rootful engine (run scripts/docker-engine.sh and scripts/base-image.sh)"
have=$(rdocker image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
if [ "$have" != "$want" ]; then
    timeout 300 "$DOCKER" save "$IMAGE" | timeout 300 "$DOCKER" -H "$DOCKER_SOCK" load >/dev/null ||
        die "loading $IMAGE into rootless Docker failed"
    rdocker image prune --force >/dev/null # the previous recipe's image, now untagged
fi
have=$(rpodman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
if [ "sha256:$have" != "$want" ]; then
    timeout 300 "$DOCKER" save "$IMAGE" | timeout 300 podman --remote --url "$PODMAN_SOCK" load >/dev/null ||
        die "loading $IMAGE into rootless Podman failed"
    rpodman image prune --force >/dev/null
fi

# --- one line per engine -----------------------------------------------------------------------
cap=$(getcap "$(command -v rootlesskit)" | sed 's/^[^ ]* //')
nofile=$(awk '/^Max open files/ {print $4}' "/proc/$(cat "$XDG/docker.pid" 2>/dev/null || echo none)/limits" 2>/dev/null || echo ?)
echo "rootless docker: $(rdocker info --format '{{.ServerVersion}} storage={{.Driver}} cgroup={{.CgroupDriver}}') user=$USER_NAME($uid) pid=$(cat "$STATE/dockerd.pid" 2>/dev/null || echo ?) $DOCKER_SOCK nofile=$nofile rootlesskit-cap=${cap:-none} $docker_state"
echo "rootless podman: $(rpodman info --format '{{.Version.Version}} storage={{.Store.GraphDriverName}} runtime={{.Host.OCIRuntime.Name}} cgroup={{.Host.CgroupManager}}') user=$USER_NAME($uid) pid=$(cat "$STATE/podman.pid" 2>/dev/null || echo ?) $PODMAN_SOCK $podman_state"
