#!/usr/bin/env bash
# Installs the CPython interpreters the end-to-end tests run against and writes
# <repo>/.cache/pythons/matrix.json describing them.
#
#   test/pythons/install.sh             install what is missing, rewrite matrix.json
#   test/pythons/install.sh --refresh   re-resolve the Debian packages (apt-get update)
#
# What it provides (and fails without):
#   debian-3.11   bookworm's own /usr/bin/python3.11 (static, stripped); apt-installed if missing
#   debian-3.13   \
#   debian-3.14    } Debian trixie/sid builds, each in a small chroot under .cache/pythons/roots/
#   debian-3.15   /  (they need a newer glibc than bookworm's, so they bring their own)
#   debian-2.7    \  Debian bullseye builds (static, stripped), unpacked with dpkg -x under
#   debian-3.9    /  .cache/pythons/roots/ and run in place: no chroot (bookworm's libc runs them)
# What it discovers (never required): pyenv builds under ${PYENV_ROOT:-$HOME/.pyenv}/versions/*.
#
# Downloaded .debs are kept in .cache/pythons/debs, so a rebuilt chroot does not
# download again; the exact versions installed are in matrix.json ("version",
# and "packages" for the chroots and in-place roots). The system's apt state is never touched:
# the bullseye/trixie/sid indexes live in .cache/pythons/apt. See /work/shared/PYTHONS.md for background.
set -euo pipefail

REFRESH=0
for arg in "$@"; do
  case "$arg" in
    --refresh) REFRESH=1 ;;
    -h | --help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
OUT="${PYSPY_PYTHONS_DIR:-$REPO/.cache/pythons}"  # override only for experiments: the tests read .cache/pythons
APT_DIR="$OUT/apt"
DEBS="$OUT/debs"
ROOTS="$OUT/roots"
HOST_PY=/usr/bin/python3.11
DEBIAN_CHROOT_VERSIONS=(3.13 3.14 3.15)
# Old versions from bullseye, run in place (their executable finds its stdlib next to it).
DEBIAN_INPLACE_VERSIONS=(2.7 3.9)
# Besides the three python packages, what the interpreters need at run time.
CHROOT_RUNTIME_PKGS=(libc6 libexpat1 zlib1g libzstd1 libgcc-s1 libssl3t64)

log() { echo "install.sh: $*" >&2; }
die() { echo "install.sh: error: $*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root (it uses chroot to run the Debian 3.13+ interpreters)"
mkdir -p "$OUT" "$DEBS" "$ROOTS"

# One run at a time: two parallel test runs would otherwise extract into the same root.
exec 9>"$OUT/.install.lock"
flock 9

FAILURES=()

# --- bookworm's own python3.11 ------------------------------------------------
ensure_host_python() {
  if [[ -x $HOST_PY ]]; then return 0; fi
  log "$HOST_PY missing; installing python3.11-minimal with the system apt"
  if ! { apt-get install -y --no-install-recommends python3.11-minimal >&2 ||
    { apt-get update >&2 && apt-get install -y --no-install-recommends python3.11-minimal >&2; }; }; then
    return 1
  fi
  [[ -x $HOST_PY ]]
}

# --- private apt state for bullseye + trixie + sid -----------------------------
mirror_uri() {
  if [[ -n ${PYSPY_DEBIAN_MIRROR:-} ]]; then echo "$PYSPY_DEBIAN_MIRROR"; return; fi
  local src=/etc/apt/sources.list.d/debian.sources uri=""
  if [[ -r $src ]]; then
    # First URIs: of a stanza whose suites are not *-security.
    uri=$(awk '
      /^[[:space:]]*$/ { if (u != "" && s !~ /security/) { print u; exit } u = ""; s = ""; next }
      /^URIs:/ { u = $2 } /^Suites:/ { s = $0 }
      END { if (u != "" && s !~ /security/) print u }' "$src" | head -n1)
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

APT_OPTS=(
  -o "Dir::Etc::sourcelist=$APT_DIR/sources.list"
  -o "Dir::Etc::sourceparts=/dev/null"
  -o "Dir::Etc::preferences=/dev/null"
  -o "Dir::Etc::preferencesparts=/dev/null"
  -o "Dir::State=$APT_DIR/state"
  -o "Dir::State::Lists=$APT_DIR/lists"
  -o "Dir::State::status=$APT_DIR/state/status"
  -o "Dir::Cache=$APT_DIR/cache"
  -o "Dir::Cache::pkgcache=pkgcache.bin"
  -o "Dir::Cache::srcpkgcache=srcpkgcache.bin"
  -o "Acquire::Languages=none"
  -o "APT::Get::List-Cleanup=true"
  -o "Debug::NoLocking=true"
)
APT_UPDATED=0

apt_setup() {
  mkdir -p "$APT_DIR/lists/partial" "$APT_DIR/cache/archives/partial" "$APT_DIR/state"
  : >>"$APT_DIR/state/status"
  local uri keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  uri=$(mirror_uri)
  {
    echo "# written by test/pythons/install.sh; mirror from /etc/apt/sources.list.d/debian.sources"
    echo "deb [signed-by=$keyring] $uri bullseye main"
    echo "deb [signed-by=$keyring] $uri trixie main"
    echo "deb [signed-by=$keyring] $uri sid main"
  } >"$APT_DIR/sources.list.new"
  if ! cmp -s "$APT_DIR/sources.list.new" "$APT_DIR/sources.list" 2>/dev/null; then
    mv "$APT_DIR/sources.list.new" "$APT_DIR/sources.list"
    rm -f "$APT_DIR/lists/"*_Packages* "$APT_DIR/lists/"*Release*
  else
    rm -f "$APT_DIR/sources.list.new"
  fi
}

apt_update() {
  [[ $APT_UPDATED -eq 1 ]] && return 0
  log "apt-get update (bullseye + trixie + sid, private state in ${APT_DIR#"$REPO/"})"
  # apt-get update exits 0 even when it fetched nothing, so check for the indexes too.
  if ! apt-get "${APT_OPTS[@]}" update >"$APT_DIR/update.log" 2>&1 || grep -q '^[WE]:' "$APT_DIR/update.log" ||
    ! apt_lists_present; then
    cat "$APT_DIR/update.log" >&2
    log "apt-get update of bullseye/trixie/sid from $(mirror_uri) failed (see above)"
    return 1
  fi
  APT_UPDATED=1
}

apt_lists_present() { compgen -G "$APT_DIR/lists/*_Packages*" >/dev/null; }

declare -A CAND_VER=() CAND_ARCH=()

# Fills CAND_VER/CAND_ARCH for PKGS (the highest version across bullseye, trixie and sid)
# with one apt-cache call: each call parses the indexes, which takes a while.
resolve() {
  local pkg ver arch
  CAND_VER=() CAND_ARCH=()
  while read -r pkg ver arch; do
    CAND_VER[$pkg]=$ver
    CAND_ARCH[$pkg]=$arch
  done < <(apt-cache "${APT_OPTS[@]}" show --no-all-versions "$@" 2>/dev/null | awk '
    /^Package:/ { p = $2 } /^Version:/ { v = $2 } /^Architecture:/ { a = $2 }
    /^$/ { if (p != "") print p, v, a; p = "" }
    END { if (p != "") print p, v, a }')
}

deb_path() { local v=${CAND_VER[$1]}; echo "$DEBS/${1}_${v//:/%3a}_${CAND_ARCH[$1]}.deb"; }

# Downloads the candidates of PKGS that are not in the .deb cache yet, in one apt-get call.
download() {
  local pkg want=() tmp got
  for pkg in "$@"; do [[ -s $(deb_path "$pkg") ]] || want+=("$pkg=${CAND_VER[$pkg]}"); done
  [[ ${#want[@]} -gt 0 ]] || return 0
  log "downloading ${#want[@]} packages"
  tmp=$(mktemp -d "$DEBS/.dl.XXXXXX")
  if ! (cd "$tmp" && apt-get "${APT_OPTS[@]}" download "${want[@]}" >"$tmp/log" 2>&1); then
    cat "$tmp/log" >&2
    rm -rf "$tmp"
    return 1
  fi
  for pkg in "${want[@]%%=*}"; do
    got=$(compgen -G "$tmp/${pkg}_*.deb" | head -n1 || true)
    [[ -n $got ]] || { log "apt-get download $pkg produced no .deb"; rm -rf "$tmp"; return 1; }
    mv "$got" "$(deb_path "$pkg")"
  done
  rm -rf "$tmp"
}

chroot_pkgs() { echo "python$1-minimal libpython$1-minimal libpython$1-stdlib ${CHROOT_RUNTIME_PKGS[*]}"; }

chroot_ready() { [[ -f $ROOTS/debian-$1/.pyspy-packages && -x $ROOTS/debian-$1/usr/bin/python$1 ]]; }

# Builds ROOTS/debian-V from the cached .debs (resolve and download first).
build_chroot() {
  local v=$1 root="$ROOTS/debian-$1" stage pkg deb d
  local debs=()
  for pkg in $(chroot_pkgs "$v"); do debs+=("$(deb_path "$pkg")"); done
  stage=$(mktemp -d "$ROOTS/.stage-$v.XXXXXX")
  for deb in "${debs[@]}"; do
    dpkg -x "$deb" "$stage" || { rm -rf "$stage"; return 1; }
  done
  # Merged /usr, as on a real trixie/sid system (the ELF interpreter is /lib64/ld-linux-x86-64.so.2).
  for d in bin sbin lib lib64; do
    mkdir -p "$stage/usr/$d"
    [[ -e $stage/$d || -L $stage/$d ]] || ln -s "usr/$d" "$stage/$d"
  done
  mkdir -p "$stage/tmp" && chmod 1777 "$stage/tmp"
  for pkg in $(chroot_pkgs "$v"); do printf '%s=%s\n' "$pkg" "${CAND_VER[$pkg]}"; done >"$stage/.pyspy-packages"
  if ! chroot "$stage" "/usr/bin/python$v" -c 'import json, threading, time, importlib' 2>"$stage/.smoke.err"; then
    log "python$v does not start in its chroot:"
    cat "$stage/.smoke.err" >&2
    rm -rf "$stage"
    return 1
  fi
  rm -f "$stage/.smoke.err"
  rm -rf "$root"
  mv "$stage" "$root"
}

# Resolves, downloads and builds the chroots for VERSIONS; prints the versions that failed.
build_chroots() {
  local v pkg pkgs=() failed=()
  for v in "$@"; do read -ra p <<<"$(chroot_pkgs "$v")"; pkgs+=("${p[@]}"); done
  resolve "${pkgs[@]}"
  for v in "$@"; do
    read -ra p <<<"$(chroot_pkgs "$v")"
    log "building chroot for Python $v"
    for pkg in "${p[@]}"; do
      [[ -n ${CAND_VER[$pkg]:-} ]] || { log "no candidate for $pkg in trixie/sid"; failed+=("$v"); continue 2; }
    done
    if ! { download "${p[@]}" && build_chroot "$v"; }; then failed+=("$v"); fi
  done
  echo "${failed[*]}"
}

ensure_chroots() {
  local v need=() failed
  for v in "$@"; do
    if [[ $REFRESH -eq 1 ]] || ! chroot_ready "$v"; then need+=("$v"); fi
  done
  [[ ${#need[@]} -gt 0 ]] || return 0
  apt_setup
  if [[ $REFRESH -eq 1 ]] || ! apt_lists_present; then
    apt_update || { echo "${need[*]}"; return 0; }
  fi
  failed=$(build_chroots "${need[@]}")
  # Stale indexes point at .debs the mirror no longer serves: refresh once and retry.
  if [[ -n $failed && $APT_UPDATED -eq 0 ]]; then
    if apt_update; then
      # shellcheck disable=SC2086 # a list of versions
      failed=$(build_chroots $failed)
    fi
  fi
  echo "$failed"
}

# --- bullseye's 2.7 and 3.9, run in place -------------------------------------
inplace_pkgs() {
  if [[ $1 == 2.7 ]]; then echo "python2.7-minimal libpython2.7-minimal libpython2.7-stdlib"
  else echo "python$1-minimal libpython$1-minimal libpython$1-stdlib"; fi
}

inplace_ready() { [[ -f $ROOTS/debian-$1/.pyspy-packages && -x $ROOTS/debian-$1/usr/bin/python$1 ]]; }

# Builds ROOTS/debian-V (dpkg -x only, no chroot) from the cached .debs.
build_inplace() {
  local v=$1 root="$ROOTS/debian-$1" stage pkg
  stage=$(mktemp -d "$ROOTS/.stage-$v.XXXXXX")
  for pkg in $(inplace_pkgs "$v"); do
    dpkg -x "$(deb_path "$pkg")" "$stage" || { rm -rf "$stage"; return 1; }
  done
  for pkg in $(inplace_pkgs "$v"); do printf '%s=%s\n' "$pkg" "${CAND_VER[$pkg]}"; done >"$stage/.pyspy-packages"
  # It finds its standard library relative to the executable, wherever the root is; smoke-test
  # that from the final path (the stage's name is only temporary).
  rm -rf "$root"
  mv "$stage" "$root"
  if ! "$root/usr/bin/python$v" -c 'import json, threading, time, argparse, io, dis, tempfile' 2>"$root/.smoke.err"; then
    log "python$v does not run in place from ${root#"$REPO/"}:"
    cat "$root/.smoke.err" >&2
    rm -rf "$root"
    return 1
  fi
  rm -f "$root/.smoke.err"
}

# Resolves, downloads and unpacks VERSIONS; prints the versions that failed.
build_inplaces() {
  local v pkg pkgs=() failed=()
  for v in "$@"; do read -ra p <<<"$(inplace_pkgs "$v")"; pkgs+=("${p[@]}"); done
  resolve "${pkgs[@]}"
  for v in "$@"; do
    read -ra p <<<"$(inplace_pkgs "$v")"
    log "unpacking Python $v (bullseye) to run in place"
    for pkg in "${p[@]}"; do
      [[ -n ${CAND_VER[$pkg]:-} ]] || { log "no candidate for $pkg in bullseye"; failed+=("$v"); continue 2; }
    done
    if ! { download "${p[@]}" && build_inplace "$v"; }; then failed+=("$v"); fi
  done
  echo "${failed[*]}"
}

ensure_inplaces() {
  local v need=() failed
  for v in "$@"; do
    if [[ $REFRESH -eq 1 ]] || ! inplace_ready "$v"; then need+=("$v"); fi
  done
  [[ ${#need[@]} -gt 0 ]] || return 0
  apt_setup
  if [[ $REFRESH -eq 1 ]] || ! apt_lists_present || ! compgen -G "$APT_DIR/lists/*bullseye*_Packages*" >/dev/null; then
    apt_update || { echo "${need[*]}"; return 0; }
  fi
  failed=$(build_inplaces "${need[@]}")
  if [[ -n $failed && $APT_UPDATED -eq 0 ]]; then
    if apt_update; then
      # shellcheck disable=SC2086 # a list of versions
      failed=$(build_inplaces $failed)
    fi
  fi
  echo "$failed"
}

if ! ensure_host_python; then
  FAILURES+=("debian-3.11: $HOST_PY is missing and 'apt-get install python3.11-minimal' failed")
fi
for v in $(ensure_chroots "${DEBIAN_CHROOT_VERSIONS[@]}"); do
  FAILURES+=("debian-$v: could not build the chroot ${ROOTS#"$REPO/"}/debian-$v (see messages above)")
done
for v in $(ensure_inplaces "${DEBIAN_INPLACE_VERSIONS[@]}"); do
  FAILURES+=("debian-$v: could not unpack ${ROOTS#"$REPO/"}/debian-$v (see messages above)")
done

# --- matrix.json ----------------------------------------------------------------
PROBE_PY=$HOST_PY
[[ -x $PROBE_PY ]] || PROBE_PY=$(command -v python3 || true)
[[ -n $PROBE_PY ]] || die "no python3 on the host to write matrix.json with; ${FAILURES[*]:-}"

# Roots by their real path: that is what the kernel reports (/proc/PID/exe) when .cache/pythons
# is a symlink shared between checkouts, and it keeps one checkout from writing its own path
# into the others' matrix.
# matrix.py exits 3 when a required interpreter does not run (it says which), else 1 on its own errors.
rc=0
PYENV_DIR="${PYENV_ROOT:-$HOME/.pyenv}/versions" "$PROBE_PY" "$HERE/matrix.py" \
  --out "$OUT/matrix.json" --roots "$(cd "$ROOTS" && pwd -P)" --host-python "$HOST_PY" \
  --chroot-versions "${DEBIAN_CHROOT_VERSIONS[*]}" --inplace-versions "${DEBIAN_INPLACE_VERSIONS[*]}" || rc=$?
if [[ $rc -eq 3 && ${#FAILURES[@]} -eq 0 ]]; then
  FAILURES+=("a required interpreter is installed but does not run (see matrix.py above)")
elif [[ $rc -ne 0 && $rc -ne 3 ]]; then
  FAILURES+=("writing matrix.json failed (matrix.py exit code $rc)")
fi

if [[ ${#FAILURES[@]} -gt 0 ]]; then
  for f in "${FAILURES[@]}"; do echo "install.sh: error: $f" >&2; done
  exit 1
fi
