#!/bin/sh
# container.sh ROOT FIXTURES CMD [ARGS...]
#
# Runs CMD as pid 1 of a new PID and mount namespace whose root is a
# container root built from ROOT (an extracted Debian root such as
# .cache/pythons/roots/debian-3.14), the way a container runtime does:
# a tmpfs root with ROOT's /usr and /etc bound in, the merged-/usr links,
# a fresh /proc for the namespace, FIXTURES copied to /tmp/fixtures, then
# pivot_root into it and the old root detached. Nothing is written to ROOT
# or to the host's filesystem: every mount lives in the new mount
# namespace and goes with its last process. `--kill-child` ends the
# namespace (its init gets SIGKILL) when this unshare is killed.
set -eu
ROOT=$1
FIXTURES=$2
shift 2
exec unshare --pid --fork --kill-child --mount sh -c '
set -eu
ROOT=$1; FIXTURES=$2; shift 2
mount --make-rprivate /
mount -t tmpfs -o mode=755 container-root /mnt
cd /mnt
mkdir usr etc proc tmp .oldroot
mount --rbind "$ROOT/usr" usr
mount --rbind "$ROOT/etc" etc
ln -s usr/lib lib
ln -s usr/lib64 lib64
ln -s usr/bin bin
ln -s usr/sbin sbin
chmod 1777 tmp
cp -r "$FIXTURES" tmp/fixtures
mount -t proc proc proc
pivot_root . .oldroot
cd /
# The old root has the only umount; run it with its own loader and libraries.
OLD=/.oldroot
"$OLD/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" \
  --library-path "$OLD/usr/lib/x86_64-linux-gnu" "$OLD/usr/bin/umount" -l "$OLD"
exec "$@"
' sh "$ROOT" "$FIXTURES" "$@"
