"""Writes .cache/pythons/matrix.json: one entry per interpreter the e2e tests may use.

Called by install.sh (with the host's python3.11) after the interpreters are in
place. It runs each interpreter once to ask its exact version and build
configuration, and reads the ELF files to tell static/shared and stripped builds
apart. It installs nothing.
"""

import argparse
import json
import os
import re
import struct
import subprocess
import sys

# Versions `pyspy-node dump` supports: 2.7 and 3.6 on. Others are listed with
# "supported": false.
def version_supported(major, minor):
    return (major, minor) == (2, 7) or (major == 3 and minor >= 6)

# Runs inside each interpreter; must stay valid Python 2.7.
PROBE = r"""
import json, platform, sys, sysconfig
v = sysconfig.get_config_var
sys.stdout.write(json.dumps({
    "implementation": platform.python_implementation(),
    "version": platform.python_version(),
    "hexversion": sys.hexversion,
    "shared": bool(v("Py_ENABLE_SHARED")),
    "libdir": v("LIBDIR"),
    "ldlibrary": v("LDLIBRARY"),
    "gil_disabled": bool(v("Py_GIL_DISABLED")),
    "debug": hasattr(sys, "gettotalrefcount"),
    "executable": sys.executable,
}))
"""


def elf_info(path):
    """Returns {"symtab": bool, "needed": [sonames]} for an ELF64 little-endian file, or None."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return None
    (e_shoff,) = struct.unpack_from("<Q", data, 0x28)
    e_shentsize, e_shnum, e_shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    sections = []
    for i in range(e_shnum):
        off = e_shoff + i * e_shentsize
        name, stype, _flags, _addr, soff, size, link = struct.unpack_from("<IIQQQQI", data, off)
        sections.append((name, stype, soff, size, link))
    if not sections:
        return {"symtab": False, "needed": []}
    shstr_off = sections[e_shstrndx][2]

    def cstr(off):
        end = data.index(b"\0", off)
        return data[off:end].decode("utf-8", "replace")

    names = [cstr(shstr_off + s[0]) for s in sections]
    needed = []
    for (name, stype, soff, size, link), sname in zip(sections, names):
        if sname != ".dynamic":
            continue
        strtab_off = sections[link][2]
        for j in range(0, size, 16):
            tag, val = struct.unpack_from("<qQ", data, soff + j)
            if tag == 0:
                break
            if tag == 1:  # DT_NEEDED
                needed.append(cstr(strtab_off + val))
    return {"symtab": ".symtab" in names, "needed": needed}


def probe(argv):
    try:
        out = subprocess.run(
            argv + ["-c", PROBE], capture_output=True, timeout=60, check=True,
            env={"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                 "LC_ALL": "C.UTF-8"},
        ).stdout
        return json.loads(out.decode("utf-8"))
    except (OSError, subprocess.SubprocessError, ValueError) as e:
        print("matrix.py: cannot run %s: %s" % (" ".join(argv), e), file=sys.stderr)
        return None


def build_of(binary, info, root):
    """("static-stripped"|"shared-unstripped"|..., host path of libpython or None)."""
    exe = elf_info(binary)
    lib = None
    if info["shared"] and info["ldlibrary"] and info["libdir"]:
        candidate = os.path.join(info["libdir"], info["ldlibrary"])
        if root:
            candidate = os.path.join(root, candidate.lstrip("/"))
        if os.path.exists(candidate):
            lib = os.path.realpath(candidate)
    linked = bool(exe and lib and any(n.startswith("libpython") for n in exe["needed"]))
    holder = elf_info(lib) if linked else exe
    strip = "unknown" if holder is None else ("unstripped" if holder["symtab"] else "stripped")
    return ("shared" if linked else "static") + "-" + strip, (lib if linked else None)


def entry(id_, kind, argv, root, binary, required, extra=None):
    info = probe(argv)
    if info is None:
        return None
    major, minor = info["hexversion"] >> 24, (info["hexversion"] >> 16) & 0xFF
    build, libpython = build_of(binary, info, root)
    notes = []
    if info["implementation"] != "CPython":
        notes.append("not CPython")
    if info["gil_disabled"]:
        notes.append("free-threaded build")
    if not version_supported(major, minor):
        notes.append("dump supports 2.7 and 3.6+")
    e = {
        "id": id_,
        "version": info["version"],
        "kind": kind,
        "argv": argv,
        "root": root,
        "build": build,
        "supported": not notes,
        "required": required,
        "binary": binary,
        "libpython": libpython,
        "debug": info["debug"],
    }
    if notes:
        e["note"] = "; ".join(notes)
    if extra:
        e.update(extra)
    return e


def version_key(name):
    return [int(p) if p.isdigit() else p for p in re.split(r"[.\-]", name)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--roots", required=True)
    ap.add_argument("--host-python", required=True)
    ap.add_argument("--chroot-versions", required=True)
    ap.add_argument("--inplace-versions", default="")
    args = ap.parse_args()

    entries = []
    missing = []  # required interpreters that are absent or do not run
    e = None
    if os.access(args.host_python, os.X_OK):
        e = entry("debian-3.11", "debian-host", [args.host_python], None, args.host_python, True)
    if e:
        entries.append(e)
    else:
        missing.append("debian-3.11")

    for v in args.chroot_versions.split():
        root = os.path.join(args.roots, "debian-" + v)
        binary = os.path.join(root, "usr/bin/python" + v)
        manifest = os.path.join(root, ".pyspy-packages")
        if not (os.path.exists(manifest) and os.access(binary, os.X_OK)):
            missing.append("debian-" + v)
            continue
        with open(manifest) as f:
            packages = dict(line.strip().split("=", 1) for line in f if "=" in line)
        e = entry("debian-" + v, "debian-chroot", ["chroot", root, "/usr/bin/python" + v],
                  root, binary, True, {"packages": packages})
        if e:
            entries.append(e)
        else:
            missing.append("debian-" + v)

    for v in args.inplace_versions.split():
        root = os.path.join(args.roots, "debian-" + v)
        binary = os.path.join(root, "usr/bin/python" + v)
        manifest = os.path.join(root, ".pyspy-packages")
        if not (os.path.exists(manifest) and os.access(binary, os.X_OK)):
            missing.append("debian-" + v)
            continue
        with open(manifest) as f:
            packages = dict(line.strip().split("=", 1) for line in f if "=" in line)
        # Not a chroot: the process sees host paths, so "root" stays null.
        e = entry("debian-" + v, "debian-inplace", [binary], None, binary, True, {"packages": packages})
        if e:
            entries.append(e)
        else:
            missing.append("debian-" + v)

    pyenv = os.environ.get("PYENV_DIR", "")
    if pyenv and os.path.isdir(pyenv):
        for name in sorted(os.listdir(pyenv), key=version_key):
            bindir = os.path.join(pyenv, name, "bin")
            if os.path.islink(os.path.join(pyenv, name)) or not os.path.isdir(bindir):
                continue
            exes = sorted(n for n in os.listdir(bindir) if re.fullmatch(r"python\d+\.\d+t?", n))
            if not exes:
                continue
            binary = os.path.realpath(os.path.join(bindir, exes[-1]))
            e = entry("pyenv-" + name, "pyenv", [binary], None, binary, False)
            if e:
                entries.append(e)

    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(entries, f, indent=2)
        f.write("\n")
    os.replace(tmp, args.out)

    def fmt(es):
        return ", ".join("%s (%s, %s)" % (e["id"], e["version"], e["build"]) for e in es) or "none"

    print("pythons: supported: %s | unsupported: %s" % (
        fmt([e for e in entries if e["supported"]]),
        ", ".join("%s (%s)" % (e["id"], e["version"]) for e in entries if not e["supported"]) or "none",
    ))
    if missing:
        print("matrix.py: required interpreters missing or not runnable: " + ", ".join(missing),
              file=sys.stderr)
        sys.exit(3)


if __name__ == "__main__":
    main()
