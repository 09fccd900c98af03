#!/bin/sh
# Build the example tree for `unroot caps scan` / `unroot caps file` (README quickstart).
#
# git cannot store extended attributes or setuid bits, so the tree is made, not checked in:
#
#   sudo examples/make-caps-tree.sh [DIR]      # default: examples/caps-tree next to this script
#   unroot caps scan DIR
#
# DIR/
#   bin/web          cap_net_bind_service=ep          rev 2, effective bit set
#   bin/pinger       cap_net_raw=p                    rev 2, no effective bit (needs a capability-aware program)
#   bin/rootless-web cap_net_bind_service=ep rootid=1000   rev 3 (what a user namespace's root writes)
#   bin/suid-helper  setuid root, mode 4755
#   bin/sgid-helper  setgid (group tty when it exists), mode 2755
#   bin/plain, share/doc/README, share/web-link (symlink to bin/web: scans do not follow it)
#
# Needs root (setcap, chown) and libcap2-bin's setcap.  Re-running replaces DIR.
set -eu

dir=${1:-$(dirname "$0")/caps-tree}
if [ "$(id -u)" -ne 0 ]; then
    echo "make-caps-tree.sh: run as root (setcap and setuid-root files need it)" >&2
    exit 2
fi
command -v setcap >/dev/null 2>&1 || { echo "make-caps-tree.sh: setcap not found (apt install libcap2-bin)" >&2; exit 3; }

rm -rf "$dir"
mkdir -p "$dir/bin" "$dir/share/doc"
for name in web pinger rootless-web suid-helper sgid-helper plain; do
    cp /bin/true "$dir/bin/$name"
    chown 0:0 "$dir/bin/$name"
    chmod 0755 "$dir/bin/$name"
done
printf 'an ordinary file\n' > "$dir/share/doc/README"
ln -s ../bin/web "$dir/share/web-link"

setcap cap_net_bind_service=ep "$dir/bin/web"
setcap cap_net_raw=p "$dir/bin/pinger"
setcap -n 1000 cap_net_bind_service=ep "$dir/bin/rootless-web"
chmod 4755 "$dir/bin/suid-helper"
group=$(getent group tty >/dev/null 2>&1 && echo tty || echo 0)
chgrp "$group" "$dir/bin/sgid-helper"
chmod 2755 "$dir/bin/sgid-helper"

echo "$dir"
