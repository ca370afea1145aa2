# lib.sh: helpers shared by generate-offsets.sh and verify-offsets.sh.
# Source it; it defines paths and functions and runs nothing else.
#
# Debian packages are fetched by name with a private apt state (own
# sources.list, lists, cache; the system's apt state is not touched) from the
# system's own Debian mirror, suites bullseye, bookworm, trixie and sid. Every
# file this writes lives under $CACHE (.cache/ is gitignored).
#
# Versions are given as X.Y (2.7, 3.10); a bare number N means 3.N.

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CRATE_DIR=$(dirname "$SCRIPT_DIR")
REPO_DIR=$(cd "$CRATE_DIR/../.." && pwd)
CACHE="$REPO_DIR/.cache/pyspy-cpython-offsets"
PROBE_C="$SCRIPT_DIR/offsets-probe.c"
PROBE_LEGACY_C="$SCRIPT_DIR/offsets-probe-legacy.c"
DEBIAN_SUITES=(bullseye bookworm trixie sid)
APT_DIR="$CACHE/debian/apt"
DEBS_DIR="$CACHE/debian/debs"

die() { echo "${0##*/}: $*" >&2; exit 1; }
log() { echo "${0##*/}: $*" >&2; }

# full_version V: prints X.Y for X.Y, and 3.N for a bare N.
full_version() {
    case "$1" in *.*) echo "$1" ;; *) echo "3.$1" ;; esac
}

# is_legacy X.Y: true for the versions offsets-probe-legacy.c handles (2.7,
# 3.6-3.10: threads run PyFrameObjects), false for 3.11+.
is_legacy() {
    local v=$1
    [ "$v" = 2.7 ] || { [ "${v%%.*}" = 3 ] && [ "${v#3.}" -le 10 ]; }
}

# ---------------------------------------------------------------- pyenv

# include_dir PREFIX X.Y: the version's header directory under PREFIX/include
# (python3.6m and python3.7m carry the ABI flag), or nothing.
include_dir() {
    local d
    for d in "$1/include/python$2" "$1/include/python$2m"; do
        [ -f "$d/Python.h" ] && { echo "$d"; return 0; }
    done
    return 0
}

# probe_header X.Y: a header, relative to the include directory, that the
# version's probe needs and that only a full header install has.
probe_header() {
    case "$1" in
        2.7|3.6) echo frameobject.h ;;
        3.7) echo internal/pystate.h ;;
        3.8) echo internal/pycore_pystate.h ;;
        3.9|3.10) echo internal/pycore_runtime.h ;;
        *) echo internal/pycore_frame.h ;;
    esac
}

# Prints the newest pyenv prefix for version $1 whose headers the probe can
# use, or nothing. Only plain X.Y.<n> names count (not 3.X.Yt, 3.X-dev, ...).
pyenv_prefix() {
    local ver root=${PYENV_ROOT:-$HOME/.pyenv} d name names="" inc
    ver=$(full_version "$1")
    [ -d "$root/versions" ] || return 0
    for d in "$root/versions/$ver."*; do
        name=${d##*/}
        [[ $name =~ ^${ver//./\\.}\.[0-9]+$ ]] || continue
        inc=$(include_dir "$d" "$ver")
        [ -n "$inc" ] || continue
        [ -f "$inc/$(probe_header "$ver")" ] || continue
        [ -f "$inc/pyconfig.h" ] || continue
        names+="$name"$'\n'
    done
    [ -n "$names" ] || return 0
    name=$(printf '%s' "$names" | sort -V | tail -n 1)
    echo "$root/versions/$name"
}

# ---------------------------------------------------------------- Debian

# apt options that point every piece of state into $APT_DIR.
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

APT_READY=0
apt_update() {
    [ "$APT_READY" = 1 ] && return 0
    command -v apt-get >/dev/null || die "apt-get is required to fetch Debian packages"
    mkdir -p "$APT_DIR/lists/partial" "$APT_DIR/cache/archives/partial" "$APT_DIR/state"
    local uri suite
    uri=$(debian_uri)
    : > "$APT_DIR/sources.list"
    for suite in "${DEBIAN_SUITES[@]}"; do
        echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg target=Packages] $uri $suite main" \
            >> "$APT_DIR/sources.list"
    done
    log "updating private apt lists (${DEBIAN_SUITES[*]})"
    local opts
    mapfile -t opts < <(apt_opts)
    apt-get "${opts[@]}" -qq update >&2 || die "apt-get update failed"
    APT_READY=1
}

# debian_pin NAME PKG [SUITE] [REFRESH]: sets PIN_VERSION and PIN_SUITE for PKG.
# The first call records apt's candidate (or SUITE's version) in
# $CACHE/debian/NAME.pin; later calls reuse it without network access unless
# REFRESH is 1. Returns 1 if no suite has PKG.
debian_pin() {
    local name=$1 pkg=$2 suite=${3:-} refresh=${4:-0} pin="$CACHE/debian/$1.pin" opts
    mkdir -p "$CACHE/debian"
    if [ "$refresh" = 1 ] || [ ! -s "$pin" ]; then
        apt_update
        mapfile -t opts < <(apt_opts)
        local madison
        madison=$(apt-cache "${opts[@]}" madison "$pkg" 2>/dev/null | awk -F'|' '{
            gsub(/ /, "", $2); split($3, a, " "); split(a[2], s, "/"); print $2, s[1] }')
        [ -n "$madison" ] || return 1
        if [ -n "$suite" ]; then
            PIN_VERSION=$(awk -v s="$suite" '$2 == s { print $1; exit }' <<< "$madison")
            PIN_SUITE=$suite
        else
            PIN_VERSION=$(apt-cache "${opts[@]}" policy "$pkg" | awk '/Candidate:/ { print $2 }')
            PIN_SUITE=$(awk -v v="$PIN_VERSION" '$1 == v { print $2; exit }' <<< "$madison")
        fi
        if [ -z "$PIN_VERSION" ] || [ "$PIN_VERSION" = "(none)" ]; then
            return 1
        fi
        echo "$PIN_VERSION ${PIN_SUITE:-unknown}" > "$pin"
    fi
    read -r PIN_VERSION PIN_SUITE < "$pin"
}

# debian_deb PKG VERSION: prints the path of PKG_VERSION_amd64.deb (or _all),
# downloading it into $DEBS_DIR first if needed.
debian_deb() {
    local pkg=$1 version=$2 file_ver=${2//:/%3a} f opts
    mkdir -p "$DEBS_DIR"
    for f in "$DEBS_DIR/${pkg}_${file_ver}_amd64.deb" "$DEBS_DIR/${pkg}_${file_ver}_all.deb"; do
        [ -f "$f" ] && { echo "$f"; return 0; }
    done
    apt_update
    mapfile -t opts < <(apt_opts)
    log "downloading $pkg=$version"
    (cd "$DEBS_DIR" && apt-get "${opts[@]}" -qq download "$pkg=$version" >&2) ||
        die "could not download $pkg=$version"
    for f in "$DEBS_DIR/${pkg}_${file_ver}_amd64.deb" "$DEBS_DIR/${pkg}_${file_ver}_all.deb"; do
        [ -f "$f" ] && { echo "$f"; return 0; }
    done
    die "apt-get download $pkg=$version left no .deb in $DEBS_DIR"
}

# debian_unpack ROOT DEB...: extracts the .debs into ROOT once.
debian_unpack() {
    local root=$1 deb
    shift
    [ -f "$root/.unpacked" ] && return 0
    rm -rf "$root"
    mkdir -p "$root"
    for deb in "$@"; do
        dpkg-deb -x "$deb" "$root"
    done
    touch "$root/.unpacked"
}

# debian_headers VERSION [REFRESH]: fetches libpythonX.Y-dev and pythonX.Y-dev
# (newest in any suite, pinned) and sets DEB_VERSION, DEB_SUITE and DEB_ROOT.
# Returns 1 if Debian has no libpythonX.Y-dev.
debian_headers() {
    local ver refresh=${2:-0}
    ver=$(full_version "$1")
    debian_pin "python$ver" "libpython$ver-dev" "" "$refresh" || return 1
    DEB_VERSION=$PIN_VERSION DEB_SUITE=$PIN_SUITE
    local a b
    a=$(debian_deb "libpython$ver-dev" "$DEB_VERSION")
    b=$(debian_deb "python$ver-dev" "$DEB_VERSION")
    DEB_ROOT="$CACHE/debian/root/python$ver-dev-${DEB_VERSION//:/%3a}"
    debian_unpack "$DEB_ROOT" "$a" "$b"
}

# ---------------------------------------------------------------- probe

# py_version INCLUDE_DIR: prints PY_VERSION from patchlevel.h.
py_version() {
    sed -n 's/^#define PY_VERSION[[:space:]]*"\(.*\)".*/\1/p' "$1/patchlevel.h"
}

# core_defines LIBDIR VERSION: prints the -D flags CPython's own sources were
# compiled with beyond pyconfig.h, taken from the installed config Makefile
# (LIBDIR/pythonX.Y/config-X.Y-*/Makefile, or config/Makefile in 2.7). They matter: Debian builds 3.14+
# with -D_Py_TIER2=3 -D_Py_JIT, which adds a field to _PyThreadStateImpl and
# so changes sizeof(PyInterpreterState) in 3.15. Prints nothing if there is no
# Makefile.
core_defines() {
    local makefile ver
    ver=$(full_version "$2")
    makefile=$(ls "$1/python$ver"/config-"$ver"*/Makefile "$1/python$ver"/config/Makefile 2>/dev/null | head -n 1)
    [ -n "$makefile" ] || return 0
    sed -n 's/^\(CONFIGURE_CFLAGS\|CONFIGURE_CFLAGS_NODIST\|CONFIGURE_CPPFLAGS\)[[:space:]]*=//p' "$makefile" |
        tr ' \t' '\n\n' | { grep -E '^-D[A-Za-z_][A-Za-z0-9_]*(=.*)?$' || true; } |
        { grep -v '^-D_FORTIFY_SOURCE' || true; } | tr '\n' ' ' | sed 's/ $//'
}

# build_probe INCLUDE_DIR EXTRA_INCLUDE_DIR DEFINES MODE OUT: compiles
# offsets-probe.c, or offsets-probe-legacy.c for 2.7 and 3.6-3.10 (MODE
# offsets or facts), against one version's headers and writes its output to
# OUT. EXTRA_INCLUDE_DIR (may be empty) is Debian's
# usr/include, where the arch-specific pyconfig.h lives; DEFINES is the
# core_defines output (may be empty).
build_probe() {
    local inc=$1 extra=$2 defines=$3 mode=$4 out=$5 exe
    exe="$CACHE/build/probe-$(basename "$out" .txt)"
    local flags=(-std=gnu11 -O0 -w -DPy_BUILD_CORE -I"$inc" -I"$inc/internal")
    [ -n "$extra" ] && flags+=(-I"$extra")
    local d
    for d in $defines; do flags+=("$d"); done
    [ "$mode" = facts ] && flags+=(-DPROBE_FACTS)
    local probe=$PROBE_C version
    version=$(py_version "$inc")
    is_legacy "$(echo "$version" | cut -d. -f1,2)" && probe=$PROBE_LEGACY_C
    mkdir -p "$CACHE/build" "$CACHE/tmp"
    TMPDIR="$CACHE/tmp" gcc "${flags[@]}" -o "$exe" "$probe" ||
        die "${probe##*/} does not compile against the headers in $inc"
    "$exe" > "$out" || die "the probe built from $inc failed"
}
