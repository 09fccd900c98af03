#!/usr/bin/env bash
# Build the offline base image for the engine tests (no container registry needed):
#   scripts/base-image.sh [NAME]        NAME defaults to unroot-base:bookworm
# debootstrap --variant=minbase bookworm + busybox (httpd, nc, wget: something that listens and
# answers) + libcap2-bin (setcap/getcap) + tini (an init, /usr/bin/tini) + gosu (a user-switching
# wrapper, /usr/sbin/gosu), docs/man/locales and apt caches removed, then
# `docker import`. Idempotent: skipped when NAME exists with the same recipe label (a hash of
# this script and the mirror), so edit this file to force a rebuild. Needs root and a running
# engine (scripts/docker-engine.sh). Prints one line: NAME, image id, size, built|cached.
# On failure: one line "base-image.sh: <why>" on stderr, exit 1.
#
# Environment: UNROOT_DOCKER (the CLI, default /usr/bin/docker), UNROOT_DEBIAN_MIRROR.
set -euo pipefail

NAME=${1:-unroot-base:bookworm}
DOCKER=${UNROOT_DOCKER:-/usr/bin/docker}
MIRROR=${UNROOT_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
PACKAGES=busybox,libcap2-bin,tini,gosu
LOCK=/var/lock/unroot-base-image.lock

die() {
    echo "base-image.sh: $*" >&2
    exit 1
}

[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap)"
[ -x "$DOCKER" ] || die "no docker CLI at $DOCKER (run scripts/docker-engine.sh)"
timeout 10 "$DOCKER" info >/dev/null 2>&1 || die "the engine does not answer (run scripts/docker-engine.sh)"

RECIPE=$( (cat "$0" && echo "$MIRROR") | sha256sum | cut -c1-16)

cached() {
    local have
    have=$("$DOCKER" image inspect --format '{{index .Config.Labels "org.unroot.recipe"}}' "$NAME" 2>/dev/null) &&
        [ "$have" = "$RECIPE" ]
}

say_image() {
    "$DOCKER" image inspect --format "$NAME {{.Id}} {{.Size}} bytes $1" "$NAME" | cut -c1-200
}

if cached; then
    say_image cached
    exit 0
fi

exec 9>"$LOCK"
flock -w 600 9 || die "another base-image.sh still holds $LOCK after 600 s"
if cached; then # built by whoever held the lock
    say_image cached
    exit 0
fi

if ! command -v debootstrap >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends debootstrap; } \
        >/tmp/unroot-debootstrap-apt.log 2>&1 ||
        die "apt-get install debootstrap failed (see /tmp/unroot-debootstrap-apt.log)"
fi

OLD_ID=$("$DOCKER" image inspect --format '{{.Id}}' "$NAME" 2>/dev/null || true)
ROOT=$(mktemp -d /var/tmp/unroot-base.XXXXXX)
trap 'rm -rf "$ROOT"' EXIT
LOG=$ROOT.log
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOT" "$MIRROR" >"$LOG" 2>&1 ||
    die "debootstrap failed: $(grep -E '^(E|W):' "$LOG" | tail -1) (see $LOG)"

# Small and deterministic enough: no package caches, docs, man pages or locales.
rm -rf "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/lib/apt/lists/* \
    "$ROOT"/usr/share/doc/* "$ROOT"/usr/share/man/* "$ROOT"/usr/share/info/* \
    "$ROOT"/usr/share/locale/* "$ROOT"/var/log/*.log "$ROOT"/var/log/apt/* "$ROOT"/debootstrap
for tool in httpd nc wget; do
    [ -e "$ROOT/bin/$tool" ] || ln -s busybox "$ROOT/bin/$tool"
done
for tool in usr/sbin/setcap usr/sbin/getcap usr/bin/tini usr/sbin/gosu usr/bin/setpriv; do
    [ -x "$ROOT/$tool" ] || die "/$tool missing from the image"
done

tar --numeric-owner --xattrs --xattrs-include='*' -C "$ROOT" -c . |
    "$DOCKER" import \
        --change "LABEL org.unroot.recipe=$RECIPE" \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["/bin/sh"]' \
        - "$NAME" >/dev/null ||
    die "docker import failed"
rm -f "$LOG"
# The previous recipe's image lost its tag: remove it unless something still uses it.
if [ -n "$OLD_ID" ]; then
    "$DOCKER" image rm "$OLD_ID" >/dev/null 2>&1 || true
fi
say_image built
