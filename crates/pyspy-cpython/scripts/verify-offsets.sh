#!/usr/bin/env bash
# verify-offsets.sh: checks the probe's offsets against real interpreters.
#
#  1. generate-offsets.sh --check: src/generated.rs is what the script makes.
#  2. For every interpreter it can get (pyenv 3.11+ builds; Debian's 3.11,
#     3.13, 3.14 and 3.15 packages), builds offsets-probe.c against that
#     interpreter's own headers and
#     - runs live_check.py in it: reads its own memory with ctypes at
#       id(obj) + offset and compares with what Python reports (code objects,
#       types, containers, str state bits, ints, modules, managed dicts,
#       runtime/interpreter/thread chain, GIL holder, frame chain and the line
#       the instruction pointer maps to);
#     - for 3.13+, runs debug_offsets_check.py: decodes the `_Py_DebugOffsets`
#       table in the binary's .PyRuntime section, using the field order parsed
#       from that version's header, and compares it with the probe and with the
#       committed OFFSETS_3_X.
#
# Debian interpreters run in a small chroot under .cache/ (sid's libc; the
# 3.13+ packages need glibc 2.38+), so this must run as root. Debian packages
# are fetched by name into .cache/ like generate-offsets.sh does.
#
# Usage: verify-offsets.sh [--no-debian] [--no-pyenv]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

use_debian=1 use_pyenv=1
for arg in "$@"; do
    case "$arg" in
        --no-debian) use_debian=0 ;;
        --no-pyenv) use_pyenv=0 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $arg (try --help)" ;;
    esac
done

HOST_PY=$(command -v python3 || true)
[ -n "$HOST_PY" ] || die "python3 is required on the host"
VDIR="$CACHE/verify"
mkdir -p "$VDIR"
failures=0
summary=()

"$SCRIPT_DIR/generate-offsets.sh" --check || { failures=$((failures + 1)); summary+=("FAIL generated.rs is stale"); }

# debug_header MINOR INCLUDE_DIR: the header that defines _Py_DebugOffsets.
debug_header() {
    if [ "$1" = 13 ]; then echo "$2/internal/pycore_runtime.h"; else echo "$2/internal/pycore_debug_offsets.h"; fi
}

# verify LABEL MINOR INCLUDE_DIR EXTRA_INCLUDE DEFINES ELF ROOT RUNNER...
# RUNNER is the command that runs a script in the target interpreter; the
# script and its arguments are appended. ROOT is the chroot the runner enters
# (the files are copied into its /tmp/verify), or empty.
verify() {
    local label=$1 minor=$2 inc=$3 extra=$4 defines=$5 elf=$6 root=$7
    shift 7
    local offsets="$VDIR/$label-offsets.txt" facts="$VDIR/$label-facts.txt" ok=1
    build_probe "$inc" "$extra" "$defines" offsets "$offsets"
    build_probe "$inc" "$extra" "$defines" facts "$facts"
    echo "=== $label (headers $(py_version "$inc")${defines:+, $defines})"
    local in_script=$SCRIPT_DIR/live_check.py in_offsets=$offsets in_facts=$facts
    if [ -n "$root" ]; then
        mkdir -p "$root/tmp/verify"
        cp "$SCRIPT_DIR/live_check.py" "$offsets" "$facts" "$root/tmp/verify/"
        in_script=/tmp/verify/live_check.py
        in_offsets=/tmp/verify/${offsets##*/}
        in_facts=/tmp/verify/${facts##*/}
    fi
    if ! "$@" "$in_script" "$in_offsets" "$in_facts" > "$VDIR/$label-live.txt" 2>&1; then
        ok=0
    fi
    grep -v '^ok ' "$VDIR/$label-live.txt" || true
    if [ "$minor" -ge 13 ]; then
        if ! "$HOST_PY" "$SCRIPT_DIR/debug_offsets_check.py" "$(debug_header "$minor" "$inc")" "$elf" \
            "$offsets" "$facts" "$CRATE_DIR/src/generated.rs" "$minor" > "$VDIR/$label-table.txt" 2>&1; then
            ok=0
        fi
        grep -v '^    ' "$VDIR/$label-table.txt" || true
    fi
    if [ "$ok" = 1 ]; then
        summary+=("ok   $label")
    else
        summary+=("FAIL $label (see $VDIR/$label-*.txt)")
        failures=$((failures + 1))
    fi
}

if [ "$use_pyenv" = 1 ]; then
    for minor in 11 12 13 14 15; do
        prefix=$(pyenv_prefix "$minor")
        [ -n "$prefix" ] || continue
        verify "pyenv-${prefix##*/}" "$minor" "$prefix/include/python3.$minor" "" \
            "$(core_defines "$prefix/lib" "$minor")" "$prefix/lib/libpython3.$minor.so.1.0" "" \
            env LD_LIBRARY_PATH="$prefix/lib" "$prefix/bin/python3.$minor"
    done
fi

# Base libraries for the chroots, from sid.
SID_LIBS=(libc6 libexpat1 zlib1g libzstd1 libgcc-s1 libssl3t64 libffi8)

if [ "$use_debian" = 1 ]; then
    command -v chroot >/dev/null || die "chroot is required for the Debian interpreters (or use --no-debian)"
    base_debs=()
    for pkg in "${SID_LIBS[@]}"; do
        debian_pin "sid-$pkg" "$pkg" sid || die "sid has no $pkg"
        base_debs+=("$(debian_deb "$pkg" "$PIN_VERSION")")
    done
    for minor in 11 13 14 15; do
        debian_headers "$minor" || { log "Debian has no libpython3.$minor-dev; skipped"; continue; }
        ver=$DEB_VERSION
        debs=("${base_debs[@]}")
        for pkg in "python3.$minor-minimal" "libpython3.$minor-minimal" "libpython3.$minor-stdlib"; do
            debs+=("$(debian_deb "$pkg" "$ver")")
        done
        root="$VDIR/root-python3.$minor-${ver//:/%3a}"
        debian_unpack "$root" "${debs[@]}"
        for link in lib bin sbin lib64; do
            [ -e "$root/$link" ] || [ ! -d "$root/usr/$link" ] || ln -s "usr/$link" "$root/$link"
        done
        mkdir -p "$root/tmp"
        verify "debian-$ver" "$minor" "$DEB_ROOT/usr/include/python3.$minor" "$DEB_ROOT/usr/include" \
            "$(core_defines "$DEB_ROOT/usr/lib" "$minor")" "$root/usr/bin/python3.$minor" "$root" \
            chroot "$root" "/usr/bin/python3.$minor"
    done
fi

echo "=== summary"
printf '%s\n' "${summary[@]}"
[ "$failures" = 0 ] || die "$failures check(s) failed"
