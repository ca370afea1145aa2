#!/usr/bin/env bash
# generate-offsets.sh: writes crates/pyspy-cpython/src/generated.rs.
#
# For each CPython minor 3.11 to 3.15 it finds that version's headers,
# compiles scripts/offsets-probe.c against them with -DPy_BUILD_CORE (so the
# internal/ structs are visible), runs the probe and turns its output into one
# `pub(crate) const OFFSETS_3_X: Offsets` per version.
#
# Header sources, first match wins:
#   1. a pyenv build: ${PYENV_ROOT:-$HOME/.pyenv}/versions/3.X.<patch>
#      (the highest plain 3.X.<n> that ships include/python3.X/internal);
#   2. Debian's libpython3.X-dev + python3.X-dev, downloaded by name with a
#      private apt state (suites bookworm, trixie and sid) into .cache/.
# 3.12 is in no current Debian suite, so without pyenv it cannot be generated.
#
# Re-runs are deterministic: the Debian version chosen for each minor is
# pinned in .cache/pyspy-cpython-offsets/debian/ on first use and the .debs
# are kept, so a second run makes no network access and writes the same file.
# Nothing is written outside .cache/ and src/generated.rs.
#
# Usage: generate-offsets.sh [--check] [--no-pyenv] [--refresh] [--facts]
#   --check     write nothing; exit 1 if src/generated.rs is not up to date
#   --no-pyenv  ignore pyenv builds, take every version from Debian
#   --refresh   forget the pinned Debian versions and take the newest ones
#   --facts     also print the layout facts (offsets-probe.c -DPROBE_FACTS)
#               of every version; they are always saved under .cache/ too
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CRATE_DIR=$(dirname "$SCRIPT_DIR")
REPO_DIR=$(cd "$CRATE_DIR/../.." && pwd)
OUT="$CRATE_DIR/src/generated.rs"
OFFSETS_RS="$CRATE_DIR/src/offsets.rs"
PROBE_C="$SCRIPT_DIR/offsets-probe.c"
CACHE="$REPO_DIR/.cache/pyspy-cpython-offsets"
MINORS=(11 12 13 14 15)
DEBIAN_SUITES=(bookworm trixie sid)

check=0 use_pyenv=1 refresh=0 show_facts=0
for arg in "$@"; do
    case "$arg" in
        --check) check=1 ;;
        --no-pyenv) use_pyenv=0 ;;
        --refresh) refresh=1 ;;
        --facts) show_facts=1 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "generate-offsets.sh: unknown option $arg (try --help)" >&2; exit 2 ;;
    esac
done

die() { echo "generate-offsets.sh: $*" >&2; exit 1; }
log() { echo "generate-offsets.sh: $*" >&2; }

command -v gcc >/dev/null || die "gcc is required"
mkdir -p "$CACHE/build" "$CACHE/tmp"
export TMPDIR="$CACHE/tmp"   # keep gcc's temporaries inside .cache/ too

# ---------------------------------------------------------------- pyenv

# Prints the newest pyenv prefix for 3.$1 that ships internal headers.
pyenv_prefix() {
    local minor=$1 root=${PYENV_ROOT:-$HOME/.pyenv} d name best=""
    [ -d "$root/versions" ] || return 0
    for d in "$root/versions/3.$minor."*; do
        name=${d##*/}
        [[ $name =~ ^3\.$minor\.[0-9]+$ ]] || continue   # skip 3.X.Yt, -dev, ...
        [ -f "$d/include/python3.$minor/internal/pycore_frame.h" ] || continue
        [ -f "$d/include/python3.$minor/pyconfig.h" ] || continue
        best+="$name"$'\n'
    done
    [ -n "$best" ] || return 0
    name=$(printf '%s' "$best" | sort -V | tail -n 1)
    echo "$root/versions/$name"
}

# ---------------------------------------------------------------- Debian

APT_DIR="$CACHE/debian/apt"
apt_opts() {
    printf '%s\n' \
        -o "Dir::Etc::sourcelist=$APT_DIR/sources.list" \
        -o Dir::Etc::sourceparts=/dev/null \
        -o "Dir::State=$APT_DIR/state" \
        -o "Dir::State::Lists=$APT_DIR/lists" \
        -o Dir::State::status=/dev/null \
        -o "Dir::Cache=$APT_DIR/cache" \
        -o APT::Sandbox::User=root
}

# The archive URI of the system's own Debian source (same mirror, other suites).
debian_uri() {
    local f=/etc/apt/sources.list.d/debian.sources uri=""
    [ -f "$f" ] && uri=$(awk '/^URIs:/ { print $2; exit }' "$f")
    echo "${uri:-http://deb.debian.org/debian}"
}

apt_ready=0
apt_update() {
    [ "$apt_ready" = 1 ] && return 0
    command -v apt-get >/dev/null || die "apt-get is required for Debian header packages"
    mkdir -p "$APT_DIR/lists/partial" "$APT_DIR/cache/archives/partial" "$APT_DIR/state"
    local uri suite
    uri=$(debian_uri)
    : > "$APT_DIR/sources.list"
    for suite in "${DEBIAN_SUITES[@]}"; do
        echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg target=Packages] $uri $suite main" \
            >> "$APT_DIR/sources.list"
    done
    log "updating private apt lists (${DEBIAN_SUITES[*]})"
    mapfile -t opts < <(apt_opts)
    apt-get "${opts[@]}" -qq update >&2 || die "apt-get update failed"
    apt_ready=1
}

# Sets DEB_VERSION, DEB_SUITE, DEB_ROOT for python3.$1 (downloading and
# unpacking libpython3.X-dev and python3.X-dev on first use).
debian_headers() {
    local minor=$1 pkg="libpython3.$1-dev" pkg2="python3.$1-dev"
    local pin="$CACHE/debian/python3.$minor.pin" opts
    mkdir -p "$CACHE/debian/debs"
    if [ "$refresh" = 1 ] || [ ! -s "$pin" ]; then
        apt_update
        mapfile -t opts < <(apt_opts)
        DEB_VERSION=$(apt-cache "${opts[@]}" policy "$pkg" 2>/dev/null | awk '/Candidate:/ { print $2 }')
        if [ -z "$DEB_VERSION" ] || [ "$DEB_VERSION" = "(none)" ]; then
            return 1
        fi
        DEB_SUITE=$(apt-cache "${opts[@]}" madison "$pkg" |
            awk -F'|' -v v="$DEB_VERSION" '{ gsub(/ /, "", $2) } $2 == v { split($3, a, " "); split(a[2], s, "/"); print s[1]; exit }')
        echo "$DEB_VERSION ${DEB_SUITE:-unknown}" > "$pin"
    fi
    read -r DEB_VERSION DEB_SUITE < "$pin"
    local file_ver=${DEB_VERSION//:/%3a} p
    for p in "$pkg" "$pkg2"; do
        if [ ! -f "$CACHE/debian/debs/${p}_${file_ver}_amd64.deb" ]; then
            apt_update
            mapfile -t opts < <(apt_opts)
            log "downloading $p=$DEB_VERSION ($DEB_SUITE)"
            (cd "$CACHE/debian/debs" && apt-get "${opts[@]}" -qq download "$p=$DEB_VERSION" >&2) ||
                die "could not download $p=$DEB_VERSION"
        fi
    done
    DEB_ROOT="$CACHE/debian/root/python3.$minor-$file_ver"
    if [ ! -f "$DEB_ROOT/.unpacked" ]; then
        rm -rf "$DEB_ROOT"
        mkdir -p "$DEB_ROOT"
        for p in "$pkg" "$pkg2"; do
            dpkg-deb -x "$CACHE/debian/debs/${p}_${file_ver}_amd64.deb" "$DEB_ROOT"
        done
        touch "$DEB_ROOT/.unpacked"
    fi
}

# ---------------------------------------------------------------- probe

# Field names of `struct Offsets`, in declaration order.
mapfile -t FIELDS < <(sed -n '/^pub struct Offsets {/,/^}/ s/^ *pub \([a-z0-9_]*\):.*/\1/p' "$OFFSETS_RS")
[ "${#FIELDS[@]}" -gt 0 ] || die "no fields found in $OFFSETS_RS"

declare -A VERSION ORIGIN BODY
for minor in "${MINORS[@]}"; do
    inc="" extra_inc="" prefix=""
    [ "$use_pyenv" = 1 ] && prefix=$(pyenv_prefix "$minor")
    if [ -n "$prefix" ]; then
        inc="$prefix/include/python3.$minor"
        ORIGIN[$minor]="pyenv include/python3.$minor"
    elif debian_headers "$minor"; then
        inc="$DEB_ROOT/usr/include/python3.$minor"
        extra_inc="$DEB_ROOT/usr/include"   # Debian's pyconfig.h includes <x86_64-linux-gnu/python3.X/pyconfig.h>
        ORIGIN[$minor]="Debian $DEB_SUITE libpython3.$minor-dev $DEB_VERSION"
    else
        die "no headers for CPython 3.$minor: no pyenv 3.$minor.x build and no libpython3.$minor-dev in Debian ${DEBIAN_SUITES[*]}"
    fi

    VERSION[$minor]=$(sed -n 's/^#define PY_VERSION[[:space:]]*"\(.*\)".*/\1/p' "$inc/patchlevel.h")
    [[ ${VERSION[$minor]} == 3.$minor.* ]] || die "$inc/patchlevel.h is not CPython 3.$minor"

    for mode in offsets facts; do
        exe="$CACHE/build/probe-3.$minor-$mode"
        flags=(-std=gnu11 -O0 -w -DPy_BUILD_CORE -I"$inc" -I"$inc/internal")
        [ -n "$extra_inc" ] && flags+=(-I"$extra_inc")
        [ "$mode" = facts ] && flags+=(-DPROBE_FACTS)
        gcc "${flags[@]}" -o "$exe" "$PROBE_C" || die "probe does not compile against 3.$minor headers in $inc"
        "$exe" > "$CACHE/build/$mode-3.$minor.txt" || die "probe for 3.$minor failed"
    done
    if [ "$show_facts" = 1 ]; then
        echo "== ${VERSION[$minor]} from ${ORIGIN[$minor]}"
        cat "$CACHE/build/facts-3.$minor.txt"
    fi

    # The probe must print exactly the fields of `struct Offsets`, in order.
    mapfile -t got < <(cut -d' ' -f1 "$CACHE/build/offsets-3.$minor.txt")
    if [ "${got[*]}" != "${FIELDS[*]}" ]; then
        diff <(printf '%s\n' "${FIELDS[@]}") <(printf '%s\n' "${got[@]}") >&2 || true
        die "offsets-probe.c and struct Offsets in src/offsets.rs list different fields (diff above: < offsets.rs, > probe)"
    fi
    BODY[$minor]=$(awk '{ printf "    %s: %s,\n", $1, $2 }' "$CACHE/build/offsets-3.$minor.txt")
done

# ---------------------------------------------------------------- output

tmp_out="$CACHE/build/generated.rs"
{
    echo "// @generated by crates/pyspy-cpython/scripts/generate-offsets.sh — do not edit."
    echo "// Change the script or scripts/offsets-probe.c and re-run it instead."
    echo "//"
    echo "// Each value is an offsetof()/sizeof() printed by offsets-probe.c, compiled"
    echo "// with -DPy_BUILD_CORE against the headers below (x86_64 Linux, default GIL"
    echo "// build; free-threaded layouts differ). Header sources:"
    for minor in "${MINORS[@]}"; do
        echo "//   3.$minor: ${VERSION[$minor]} from ${ORIGIN[$minor]}"
    done
    echo "// The *_size fields can change in patch releases (sizeof(PyThreadState) is"
    echo "// 304 in 3.13.0 and 312 in 3.13.18); the offsets checked so far did not."
    echo
    echo "use crate::offsets::Offsets;"
    for minor in "${MINORS[@]}"; do
        echo
        echo "/// CPython ${VERSION[$minor]} (${ORIGIN[$minor]})."
        echo "pub(crate) const OFFSETS_3_$minor: Offsets = Offsets {"
        printf '%s\n' "${BODY[$minor]}"
        echo "};"
    done
} > "$tmp_out"

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
