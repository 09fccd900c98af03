#!/usr/bin/env bash
# The bundled example: seed 002, a non-root image whose binary carries
# cap_net_bind_service=+ep, under three Docker capability settings — then a scan
# of a small tree with file capabilities and setuid bits.
set -uo pipefail
cd "$(dirname "$0")" || exit 2

run() {
    printf '\n$ %s\n' "$*"
    "$@"
    printf '(exit %s)\n' "$?"
}

echo "### Seed 002: uid 10001, /usr/bin/gateway has cap_net_bind_service=+ep"
echo "### 1. docker run --cap-drop ALL  (bounding set empty)"
run unroot explain exec --path /usr/bin/gateway --uid 10001 --gid 10001 --bounding none \
    --file-caps cap_net_bind_service=+ep
echo "### 2. docker run --cap-drop ALL --cap-add NET_BIND_SERVICE"
run unroot explain exec --uid 10001 --gid 10001 --bounding net_bind_service \
    --file-caps cap_net_bind_service=+ep
echo "### 3. ... and can it then bind :80 on the host network (sysctl 1024)?"
run unroot explain bind --port 80 --effective net_bind_service --unprivileged-port-start 1024
echo "### 4. docker run --security-opt no-new-privileges --network host (default caps)"
run unroot explain exec --uid 10001 --gid 10001 --bounding 0xa80425fb --nnp \
    --file-caps cap_net_bind_service=+ep
run unroot explain bind --port 80 --unprivileged-port-start 1024

tree=$(mktemp -d /tmp/unroot-demo.XXXXXX)
trap 'rm -rf "$tree"' EXIT
bash ./make-caps-tree.sh "$tree" >/dev/null
echo
echo "### A small tree with file capabilities and setuid/setgid bits"
run unroot caps scan "$tree"

echo
echo "### unroot lint: the same situations, found in the deployment files before deploy"
run unroot lint lint/

echo
echo "### unroot run: bind :80 as root, drop everything, exec the service as nobody with the socket"
# shellcheck disable=SC2016 # the service's shell expands these, not this one
service='echo "LISTEN_FDS=$LISTEN_FDS LISTEN_FDNAMES=$LISTEN_FDNAMES"
ls -l /proc/$$/fd | sed "s/.* \([0-9]* -> \)/\1/" | tail -n +2
grep -E "^(Uid|Gid|Groups|Cap|NoNewPrivs)" /proc/self/status'
run unroot run -l web=127.0.0.1:80 --user nobody -- /bin/sh -c "$service"
