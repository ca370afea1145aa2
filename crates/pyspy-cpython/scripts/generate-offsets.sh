#!/usr/bin/env bash
# generate-offsets.sh: writes crates/pyspy-cpython/src/generated.rs.
#
# For each CPython version (2.7, 3.6 to 3.15) it finds that version's headers,
# compiles scripts/offsets-probe.c (3.11+) or scripts/offsets-probe-legacy.c
# (2.7, 3.6-3.10) against them with -DPy_BUILD_CORE (so the internal/ structs
# are visible), runs the probe and turns its output into one
# `pub(crate) const OFFSETS_X_Y: Offsets` per version.
#
# Header sources:
#   2.7 and 3.9: always Debian bullseye's libpythonX.Y-dev + pythonX.Y-dev,
#      the headers of the Debian interpreters the tests always run; when a
#      pyenv build of the same version is present, its headers are probed too
#      and every offset must agree (sizes may differ; the comment says which).
#   Every other version, first match wins:
#   1. a pyenv build: ${PYENV_ROOT:-$HOME/.pyenv}/versions/X.Y.<patch>
#      (the highest plain X.Y.<n> whose headers the probe can use: from 3.7 on
#      that needs the internal/ headers);
#   2. Debian's libpythonX.Y-dev + pythonX.Y-dev (newest in bullseye,
#      bookworm, trixie or sid), downloaded by name with a private apt state
#      into .cache/.
# 3.6, 3.7, 3.8, 3.10 and 3.12 are in no current Debian suite, so without pyenv
# they cannot be generated.
#
# Re-runs are deterministic: the Debian version chosen for each version is
# pinned under .cache/pyspy-cpython-offsets/debian/ on first use and the .debs
# are kept, so later runs make no network access and write the same file.
# Nothing is written outside .cache/ and src/generated.rs.
#
# Usage: generate-offsets.sh [--check] [--no-pyenv] [--refresh] [--facts]
#   --check     write nothing; exit 1 if src/generated.rs is not up to date
#   --no-pyenv  ignore pyenv builds, take every version from Debian (fails
#               for the versions only pyenv has)
#   --refresh   forget the pinned Debian versions and take the newest ones
#   --facts     also print the layout facts (offsets-probe.c -DPROBE_FACTS)
#               of every version; they are always saved under .cache/ too
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

OUT="$CRATE_DIR/src/generated.rs"
OFFSETS_RS="$CRATE_DIR/src/offsets.rs"
VERSIONS=(2.7 3.6 3.7 3.8 3.9 3.10 3.11 3.12 3.13 3.14 3.15)
# Taken from Debian even when pyenv has them (see above).
DEBIAN_ALWAYS=(2.7 3.9)

check=0 use_pyenv=1 refresh=0 show_facts=0
for arg in "$@"; do
    case "$arg" in
        --check) check=1 ;;
        --no-pyenv) use_pyenv=0 ;;
        --refresh) refresh=1 ;;
        --facts) show_facts=1 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $arg (try --help)" ;;
    esac
done
command -v gcc >/dev/null || die "gcc is required"

# Field names of `struct Offsets`, in declaration order.
mapfile -t FIELDS < <(sed -n '/^pub struct Offsets {/,/^}/ s/^ *pub \([a-z0-9_]*\):.*/\1/p' "$OFFSETS_RS")
[ "${#FIELDS[@]}" -gt 0 ] || die "no fields found in $OFFSETS_RS"

declare -A VERSION ORIGIN DEFINES BODY CROSS TABLES

# probe_version X.Y INC EXTRA DEFINES LABEL: runs both probes against one
# header set (outputs under $CACHE/build/*-LABEL.txt), checks the fields.
probe_version() {
    local ver=$1 inc=$2 extra=$3 defines=$4 label=$5 got
    build_probe "$inc" "$extra" "$defines" offsets "$CACHE/build/offsets-$label.txt"
    build_probe "$inc" "$extra" "$defines" facts "$CACHE/build/facts-$label.txt"
    # The probe must print exactly the fields of `struct Offsets`, in order.
    mapfile -t got < <(cut -d' ' -f1 "$CACHE/build/offsets-$label.txt")
    if [ "${got[*]}" != "${FIELDS[*]}" ]; then
        diff <(printf '%s\n' "${FIELDS[@]}") <(printf '%s\n' "${got[@]}") >&2 || true
        die "the probe for $ver and struct Offsets in src/offsets.rs list different fields (< offsets.rs, > probe)"
    fi
}

for ver in "${VERSIONS[@]}"; do
    inc="" extra_inc="" prefix="" defines="" debian_first=0
    [[ " ${DEBIAN_ALWAYS[*]} " == *" $ver "* ]] && debian_first=1
    [ "$use_pyenv" = 1 ] && prefix=$(pyenv_prefix "$ver")
    if [ "$debian_first" = 1 ] || [ -z "$prefix" ]; then
        debian_headers "$ver" "$refresh" ||
            die "no headers for CPython $ver: no pyenv $ver.x build and no libpython$ver-dev in Debian ${DEBIAN_SUITES[*]}"
        inc="$DEB_ROOT/usr/include/python$ver"
        extra_inc="$DEB_ROOT/usr/include"
        defines=$(core_defines "$DEB_ROOT/usr/lib" "$ver")
        ORIGIN[$ver]="Debian $DEB_SUITE libpython$ver-dev $DEB_VERSION"
    else
        inc=$(include_dir "$prefix" "$ver")
        defines=$(core_defines "$prefix/lib" "$ver")
        ORIGIN[$ver]="pyenv ${inc#"$prefix"/}"
    fi
    VERSION[$ver]=$(py_version "$inc")
    [[ ${VERSION[$ver]} == $ver.* ]] || die "$inc/patchlevel.h is not CPython $ver"
    DEFINES[$ver]=$defines
    probe_version "$ver" "$inc" "$extra_inc" "$defines" "$ver"
    if [ "$show_facts" = 1 ]; then
        echo "== ${VERSION[$ver]} from ${ORIGIN[$ver]}"
        cat "$CACHE/build/facts-$ver.txt"
    fi

    # Debian-first versions: a pyenv build's headers must give the same offsets.
    if [ "$debian_first" = 1 ] && [ -n "$prefix" ]; then
        pinc=$(include_dir "$prefix" "$ver")
        pver=$(py_version "$pinc")
        probe_version "$ver" "$pinc" "" "$(core_defines "$prefix/lib" "$ver")" "$ver-pyenv"
        differ=$(join <(sort "$CACHE/build/offsets-$ver.txt") <(sort "$CACHE/build/offsets-$ver-pyenv.txt") |
            awk '$2 != $3 { print $1 }' | sort | tr '\n' ' ' | sed 's/ $//')
        offsets_differ=$(tr ' ' '\n' <<< "$differ" | grep -v '_size$' | grep -v '^$' || true)
        if [ -n "$offsets_differ" ]; then
            diff "$CACHE/build/offsets-$ver.txt" "$CACHE/build/offsets-$ver-pyenv.txt" >&2 || true
            die "CPython $ver: ${VERSION[$ver]} (Debian) and $pver (pyenv) headers give different offsets: $offsets_differ"
        fi
        CROSS[$ver]="pyenv $pver agrees${differ:+ except for the sizes $differ}"
    fi
    BODY[$ver]=$(awk '{ printf "    %s: %s,\n", $1, $2 }' "$CACHE/build/offsets-$ver.txt")
done

# The free-threaded 3.13t: no package ships its headers, so they come from
# the build scripts/freethreaded.mjs caches per machine (built when missing).
ft_python=$(node "$REPO_DIR/scripts/freethreaded.mjs" | tail -n 1)
[ -x "$ft_python" ] || die "scripts/freethreaded.mjs gave no free-threaded python ($ft_python)"
ft_prefix=$(dirname "$(dirname "$ft_python")")
ver=3.13t
inc="$ft_prefix/include/python3.13t"
[ -f "$inc/Python.h" ] || die "no free-threaded headers in $inc"
VERSIONS+=("$ver")
VERSION[$ver]="$(py_version "$inc")t"
ORIGIN[$ver]="scripts/freethreaded.mjs build, include/python3.13t"
DEFINES[$ver]=$(core_defines "$ft_prefix/lib" "$ver")
probe_version "$ver" "$inc" "" "${DEFINES[$ver]}" "$ver"
BODY[$ver]=$(awk '{ printf "    %s: %s,\n", $1, $2 }' "$CACHE/build/offsets-$ver.txt")

# 3.14t and 3.15t: no free-threaded build of them can be had here. Debian
# sid's headers of the GIL build, compiled with -DPy_GIL_DISABLED (their
# pyconfig.h leaves it undefined), give the free-threaded structs: checked
# on fake memory only (src/free_threaded_tests.rs), not on a live target.
for base in 3.14 3.15; do
    ver=${base}t
    debian_headers "$base" "$refresh" || die "no libpython$base-dev headers for $ver"
    inc="$DEB_ROOT/usr/include/python$base"
    VERSIONS+=("$ver")
    VERSION[$ver]="$(py_version "$inc")t"
    ORIGIN[$ver]="Debian $DEB_SUITE libpython$base-dev $DEB_VERSION headers"
    DEFINES[$ver]="$(core_defines "$DEB_ROOT/usr/lib" "$base") -DPy_GIL_DISABLED"
    probe_version "$ver" "$inc" "$DEB_ROOT/usr/include" "${DEFINES[$ver]}" "$ver"
    BODY[$ver]=$(awk '{ printf "    %s: %s,\n", $1, $2 }' "$CACHE/build/offsets-$ver.txt")
    # And the debug offsets table such a build carries, for the tests.
    table_exe="$CACHE/build/debug-table-$ver"
    # shellcheck disable=SC2086
    gcc -std=gnu11 -O0 -w -DPy_BUILD_CORE ${DEFINES[$ver]} -I"$inc" -I"$inc/internal" \
        -I"$DEB_ROOT/usr/include" -o "$table_exe" "$SCRIPT_DIR/debug-table-probe.c" ||
        die "debug-table-probe.c does not compile against $inc"
    TABLES[$ver]=$("$table_exe") || die "the debug table probe for $ver failed"
done

tmp_out="$CACHE/build/generated.rs"
{
    echo "// @generated by crates/pyspy-cpython/scripts/generate-offsets.sh — do not edit."
    echo "// Change the script or scripts/offsets-probe*.c and re-run it instead."
    echo "//"
    echo "// Each value is an offsetof()/sizeof() printed by offsets-probe.c (3.11+) or"
    echo "// offsets-probe-legacy.c (2.7, 3.6-3.10), compiled"
    echo "// with -DPy_BUILD_CORE against the headers below (x86_64 Linux, default GIL"
    echo "// builds, and the free-threaded 3.13t-3.15t), plus the -D flags of the version's"
    echo "// config Makefile that CPython's own sources were built with. Sources:"
    for ver in "${VERSIONS[@]}"; do
        printf '//   %-5s %s from %s\n' "$ver:" "${VERSION[$ver]}" "${ORIGIN[$ver]}"
        [ -z "${DEFINES[$ver]}" ] || echo "//          with ${DEFINES[$ver]}"
    done
    echo "// The *_size fields can change in patch releases (sizeof(PyThreadState) is"
    echo "// 304 in 3.13.0 and 312 in 3.13.18); no offset differed between the patch"
    echo "// releases compared by scripts/verify-offsets.sh. Layout facts beyond these"
    echo "// offsets: scripts/LAYOUT_NOTES.md."
    echo
    echo "use crate::offsets::Offsets;"
    for ver in "${VERSIONS[@]}"; do
        echo
        echo "/// CPython ${VERSION[$ver]} (${ORIGIN[$ver]}${DEFINES[$ver]:+, ${DEFINES[$ver]}})."
        [ -z "${CROSS[$ver]:-}" ] || echo "/// Cross-checked: ${CROSS[$ver]}."
        echo "pub(crate) const OFFSETS_$(tr a-z. A-Z_ <<< "$ver"): Offsets = Offsets {"
        printf '%s\n' "${BODY[$ver]}"
        echo "};"
    done
} > "$tmp_out"

# The 3.14t/3.15t tables (hex of the raw bytes, 32 a line).
for ver in "${!TABLES[@]}"; do
    {
        echo "# @generated by crates/pyspy-cpython/scripts/generate-offsets.sh — do not edit."
        echo "# _Py_DebugOffsets of a free-threaded CPython ${VERSION[$ver]}, from ${ORIGIN[$ver]}"
        echo "# compiled with ${DEFINES[$ver]} (scripts/debug-table-probe.c)."
        printf '%s\n' "${TABLES[$ver]}"
    } > "$CACHE/build/debug_offsets_$ver.hex"
    dest="$CRATE_DIR/tests/data/debug_offsets_$ver.hex"
    if [ "$check" = 1 ]; then
        cmp -s "$CACHE/build/debug_offsets_$ver.hex" "$dest" ||
            die "${dest#"$REPO_DIR"/} is out of date; re-run scripts/generate-offsets.sh"
    else
        cp "$CACHE/build/debug_offsets_$ver.hex" "$dest"
    fi
done

if [ "$check" = 1 ]; then
    if cmp -s "$tmp_out" "$OUT"; then
        log "src/generated.rs is up to date"
        exit 0
    fi
    diff -u "$OUT" "$tmp_out" >&2 || true
    die "src/generated.rs is out of date; re-run scripts/generate-offsets.sh"
fi
cp "$tmp_out" "$OUT"
log "wrote ${OUT#"$REPO_DIR"/}"
