#!/usr/bin/env bash
# aarch64-check.sh: checks what src/arch.rs says about 3.13-3.15 on Linux
# aarch64: compiled for aarch64, offsets-probe.c prints the same offsets and
# layout facts as for x86-64, except the GIL state's size (16 bytes more:
# glibc's pthread_mutex_t is 48 bytes there, not 40, and the GIL holds two)
# and the interpreter state's size (which 3.13+ read from the target's own
# _Py_DebugOffsets). GIL and free-threaded (-DPy_GIL_DISABLED) builds.
#
# Headers: the Debian ones generate-offsets.sh pins (lib.sh), with the
# arm64 pyconfig.h of the same libpythonX.Y-dev version (a private arm64 apt
# of the pinned suite under .cache/pyspy-cpython-offsets/debian/apt-arm64).
# The aarch64 probes are linked statically and run under qemu-user from
# scripts/arm64.mjs (run `node scripts/arm64.mjs --no-build` first).
# Nothing is written outside .cache/. Exit 1 on any other difference.
#
# Usage: aarch64-check.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CC_ARM=aarch64-linux-gnu-gcc
command -v "$CC_ARM" >/dev/null || die "$CC_ARM is required (node scripts/arm64.mjs installs it)"
QEMU=$(node "$REPO_DIR/scripts/arm64.mjs" --paths | sed -n 's/^ *"qemu": "\(.*\)",$/\1/p')
[ -x "$QEMU" ] || die "no qemu-aarch64 at '$QEMU': run node scripts/arm64.mjs --no-build"
ARM_APT="$CACHE/debian/apt-arm64"
OUT="$CACHE/build/aarch64"
mkdir -p "$OUT"

# arm64_include VERSION SUITE: prints the usr/include of libpythonVERSION-dev:arm64
# at $DEB_VERSION (downloaded and unpacked once).
arm64_include() {
    local ver=$1 suite=$2 root="$CACHE/debian/root/arm64-python$1-dev-${DEB_VERSION//:/%3a}" opts deb
    if [ ! -f "$root/.unpacked" ]; then
        mkdir -p "$ARM_APT/lists/partial" "$ARM_APT/cache/archives/partial" "$ARM_APT/state"
        echo "deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg target=Packages] $(debian_uri) $suite main" \
            > "$ARM_APT/sources.list"
        opts=(-o "Dir::Etc::sourcelist=$ARM_APT/sources.list" -o Dir::Etc::sourceparts=/dev/null
            -o "Dir::State=$ARM_APT/state" -o "Dir::State::Lists=$ARM_APT/lists" -o Dir::State::status=/dev/null
            -o "Dir::Cache=$ARM_APT/cache" -o APT::Sandbox::User=root
            -o APT::Architecture=arm64 -o APT::Architectures::=arm64)
        if [ ! -f "$ARM_APT/updated-$suite" ]; then
            apt-get "${opts[@]}" -qq update >&2 || die "apt-get update ($suite arm64) failed"
            touch "$ARM_APT/updated-$suite"
        fi
        deb="$DEBS_DIR/libpython$ver-dev_${DEB_VERSION//:/%3a}_arm64.deb"
        [ -f "$deb" ] || (cd "$DEBS_DIR" && apt-get "${opts[@]}" -qq download "libpython$ver-dev:arm64=$DEB_VERSION" >&2) ||
            die "could not download libpython$ver-dev:arm64=$DEB_VERSION"
        rm -rf "$root" && mkdir -p "$root"
        dpkg-deb -x "$deb" "$root"
        touch "$root/.unpacked"
    fi
    echo "$root/usr/include"
}

failed=0
for ver in 3.13 3.14 3.15; do
    debian_headers "$ver" || die "no libpython$ver-dev in Debian"
    inc="$DEB_ROOT/usr/include/python$ver"
    arm_inc=$(arm64_include "$ver" "$DEB_SUITE")
    read -ra defines <<< "$(core_defines "$DEB_ROOT/usr/lib" "$ver")"
    for build in gil free-threaded; do
        extra=()
        [ "$build" = free-threaded ] && extra=(-DPy_GIL_DISABLED)
        for mode in offsets facts; do
            [ "$mode" = facts ] && extra+=(-DPROBE_FACTS)
            flags=(-std=gnu11 -O0 -w -DPy_BUILD_CORE -I"$inc" -I"$inc/internal" "${defines[@]}" "${extra[@]}")
            x86="$OUT/$ver-$build-$mode-x86_64" arm="$OUT/$ver-$build-$mode-aarch64"
            gcc "${flags[@]}" -I"$DEB_ROOT/usr/include" -o "$x86" "$PROBE_C"
            "$CC_ARM" -static "${flags[@]}" -I"$arm_inc" -I"$DEB_ROOT/usr/include" -o "$arm" "$PROBE_C"
            "$x86" > "$x86.txt"
            "$QEMU" "$arm" > "$arm.txt"
            # Fields that differ, with both values: "field x86 aarch64".
            differ=$(join <(sort "$x86.txt") <(sort "$arm.txt") | awk '$2 != $3')
            expected=""
            if [ "$mode" = offsets ]; then
                expected=$(awk '$1 == "interp_size" || ($1 == "gil_size" && $3 == "Some(" substr($2, 6) + 16 ")")' <<< "$differ")
            fi
            unexpected=$(grep -vxF -f <(printf '%s\n' "$expected") <<< "$differ" || true)
            [ "$mode" = offsets ] && ! grep -q '^gil_size ' <<< "$expected" && unexpected+=$'\ngil_size: not 16 bytes larger'
            if [ -n "${unexpected//$'\n'/}" ]; then
                log "CPython $ver ($build, $mode): aarch64 differs from x86-64 beyond the GIL's and the interpreter's size:"
                echo "$unexpected" >&2
                failed=1
            else
                echo "CPython $DEB_VERSION $build $mode: $(wc -l < "$x86.txt") lines; differ: ${expected//$'\n'/; }"
            fi
        done
    done
done
[ "$failed" = 0 ] || die "src/arch.rs's aarch64 adjustment does not hold (see above)"
echo "aarch64: only the GIL state (+16) and the interpreter state's size differ"
