#!/usr/bin/env bash
# Installs what some end-to-end tests need beyond the interpreters:
#
#   zsh     for test/e2e/completions.test.ts (runs the generated zsh script);
#           taken from PATH, else installed with the system apt (like install.sh's python3.11).
#   numpy   for test/e2e/locals.test.ts (and uvloop, the same way, for
#           test/e2e/asyncio-dump.test.ts): PyPI's manylinux wheel for each CPython 3.9+
#           minor of .cache/pythons/matrix.json, fetched with pip (bookworm's
#           python3.11 -m pip download, nothing installed into any interpreter) and
#           unpacked into ${XDG_CACHE_HOME:-~/.cache}/pyspy-node/PKG-3.X/ (outside
#           the checkout; kept between runs). Chroot interpreters cannot see that
#           directory, so a copy goes into their root at /opt/pyspy-node-PKG-3.X
#           (with bookworm's libstdc++, which numpy needs and those roots lack).
#
# Writes .cache/extras.json: {"zsh": PATH, "numpy" and "uvloop": {"3.X": {"dir": HOST DIR,
# "chrootDirs": {ROOT: DIR AS SEEN INSIDE}, "version": V} or {"error": WHY}}}.
# A minor without a wheel is recorded with its error (the tests report it),
# never dropped. Safe to run again: it does nothing when everything is there.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MATRIX=$REPO/.cache/pythons/matrix.json
OUT=$REPO/.cache/extras.json
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/pyspy-node
HOST_PY=/usr/bin/python3.11

log() { echo "extras: $*" >&2; }

mkdir -p "$CACHE"
exec 9>"$CACHE/.extras.lock"
flock 9

# --- zsh -------------------------------------------------------------------------
ZSH=$(command -v zsh || true)
if [[ -z $ZSH ]]; then
  log "zsh missing; installing it with the system apt"
  apt-get install -y --no-install-recommends zsh >&2 ||
    { apt-get update >&2 && apt-get install -y --no-install-recommends zsh >&2; } ||
    { log "could not install zsh"; exit 1; }
  ZSH=$(command -v zsh)
fi

# --- numpy -------------------------------------------------------------------------
[[ -r $MATRIX ]] || { log "$MATRIX missing: run test/pythons/install.sh first"; exit 1; }
if ! "$HOST_PY" -m pip --version >/dev/null 2>&1; then
  log "pip missing for $HOST_PY; installing python3-pip with the system apt"
  apt-get install -y --no-install-recommends python3-pip >&2 ||
    { apt-get update >&2 && apt-get install -y --no-install-recommends python3-pip >&2; } ||
    { log "could not install python3-pip"; exit 1; }
fi

# minor versions (3.9+) and the chroot roots that run each.
mapfile -t ROWS < <("$HOST_PY" - "$MATRIX" <<'EOF'
import json, sys
seen = {}
for e in json.load(open(sys.argv[1])):
    v = e.get("version", "")
    parts = v.split(".")
    if len(parts) < 2 or not e.get("supported") or parts[0] != "3" or int(parts[1]) < 9:
        continue
    minor = "3." + parts[1]
    seen.setdefault(minor, set())
    if e.get("root"):
        seen[minor].add(e["root"])
for minor in sorted(seen, key=lambda m: int(m.split(".")[1])):
    print(minor + " " + " ".join(sorted(seen[minor])))
EOF
)

# One package's wheel per minor: prints a row per minor,
# "MINOR|ok|HOST DIR|VERSION|ROOT=INSIDE ..." or "MINOR|error|WHY".
wheel_rows() {
  local pkg=$1 row minor roots tag dir wheel version inside root
  for row in "${ROWS[@]}"; do
    read -r minor roots <<<"$row"
    tag=cp${minor/./}
    dir=$CACHE/$pkg-$minor
    if [[ ! -f $dir/.complete ]]; then
      log "$pkg for $minor: pip download (manylinux x86-64 wheel)"
      rm -rf "$dir" "$CACHE/wheels-$pkg-$minor"
      mkdir -p "$CACHE/wheels-$pkg-$minor"
      if "$HOST_PY" -m pip download "$pkg" --only-binary=:all: --no-deps --quiet \
        --python-version "$minor" --implementation cp --abi "$tag" \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d "$CACHE/wheels-$pkg-$minor" >"$CACHE/wheels-$pkg-$minor.log" 2>&1; then
        wheel=$(ls "$CACHE/wheels-$pkg-$minor"/"$pkg"-*.whl | head -1)
        mkdir -p "$dir"
        "$HOST_PY" -m zipfile -e "$wheel" "$dir"
        basename "$wheel" | cut -d- -f2 >"$dir/.complete"
      else
        log "$pkg for $minor: NO WHEEL ($(tail -1 "$CACHE/wheels-$pkg-$minor.log"))"
      fi
    fi
    if [[ -f $dir/.complete ]]; then
      version=$(cat "$dir/.complete")
      local chroot_dirs=()
      for root in $roots; do
        inside=/opt/pyspy-node-$pkg-$minor
        if [[ ! -f $root$inside/.complete ]] || ! cmp -s "$dir/.complete" "$root$inside/.complete"; then
          log "$pkg $version into the chroot $root$inside"
          rm -rf "$root$inside"
          mkdir -p "$root/opt"
          cp -a "$dir" "$root$inside"
        fi
        # numpy's extensions need libstdc++, which manylinux wheels take from the
        # system and the minimal chroots lack: bookworm's goes next to numpy's own
        # bundled libraries, which the extensions' RPATH ($ORIGIN/../../numpy.libs) names.
        if [[ $pkg == numpy ]] && ! ls "$root"/usr/lib/x86_64-linux-gnu/libstdc++.so.6 >/dev/null 2>&1 &&
          [[ ! -f $root$inside/numpy.libs/libstdc++.so.6 ]]; then
          cp -L /usr/lib/x86_64-linux-gnu/libstdc++.so.6 "$root$inside/numpy.libs/"
        fi
        chroot_dirs+=("$root=$inside")
      done
      echo "$minor|ok|$dir|$version|${chroot_dirs[*]:-}"
    else
      echo "$minor|error|$pkg has no manylinux x86-64 wheel for CPython $minor on PyPI (see $CACHE/wheels-$pkg-$minor.log)"
    fi
  done
}

# numpy for the locals test; uvloop for the asyncio tests (its loop, the stdlib's tasks).
mapfile -t NUMPY < <(wheel_rows numpy)
mapfile -t UVLOOP < <(wheel_rows uvloop)

"$HOST_PY" - "$OUT" "$ZSH" "${#NUMPY[@]}" "${NUMPY[@]}" "${UVLOOP[@]}" <<'EOF'
import json, sys
out, zsh, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
rows = sys.argv[4:]
def table(rows):
    t = {}
    for row in rows:
        f = row.split("|")
        if f[1] == "ok":
            chroot = dict(p.split("=", 1) for p in f[4].split() if p)
            t[f[0]] = {"dir": f[2], "version": f[3], "chrootDirs": chroot}
        else:
            t[f[0]] = {"error": f[2]}
    return t
json.dump({"zsh": zsh, "numpy": table(rows[:n]), "uvloop": table(rows[n:])}, open(out, "w"), indent=2)
EOF
log "wrote ${OUT#"$REPO/"}"
