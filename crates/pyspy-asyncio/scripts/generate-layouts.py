#!/usr/bin/env python3
"""Writes crates/pyspy-asyncio/src/generated.rs: per-minor offsets of the
asyncio objects (the `_asyncio` module's private TaskObj/FutureObj) and of
the generator/frame fields a coroutine chain needs, read out of DWARF with
`gdb ptype /o` (nothing is re-declared or compiled).

DWARF sources (x86-64 Linux):
  3.11, 3.12, 3.13: the pyenv builds (--enable-shared, -g) under
      ${PYENV_ROOT:-~/.pyenv}/versions/3.1X.*: lib-dynload/_asyncio*.so and
      lib/libpython3.1X.so.1.0;
  3.14, 3.15: Debian sid's libpython3.1X-dbg (a Py_DEBUG build whose object
      layouts are the release ones: no Py_TRACE_REFS), downloaded with a
      private apt state into .cache/asyncio-layouts/ (see --help);
  3.13t: the free-threaded build scripts/freethreaded.mjs makes (-g) in
      ~/.cache/pyspy-node/cpython-3.13.5t.
Cross-checks: the task fields 3.14+ also publish in the `.AsyncioDebug`
section of the Debian release binaries the tests run (matrix roots) must
agree with the DWARF ones, or the script fails.

Usage: generate-layouts.py [--check]
"""
import glob
import os
import re
import struct
import subprocess
import sys

CRATE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(os.path.dirname(CRATE))
CACHE = os.path.join(REPO, ".cache", "asyncio-layouts")
OUT = os.path.join(CRATE, "src", "generated.rs")
PYENV = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
ROOTS = os.path.join(REPO, ".cache", "pythons", "roots")
DEBIAN_DBG = {"3.14": "3.14.10-1", "3.15": "3.15.2-1"}


def die(msg):
    sys.exit(f"generate-layouts.py: {msg}")


def ptype(binary, types):
    """gdb `ptype /o` of each type: {type: {field: offset, '.size': n}}."""
    args = ["gdb", "-batch", "-nx"]
    for t in types:
        args += ["-ex", f"echo @@{t}\\n", "-ex", f"ptype /o {t}"]
    out = subprocess.run(args + [binary], capture_output=True, text=True, timeout=600).stdout
    result, cur, stack = {}, None, []
    for line in out.splitlines():
        if line.startswith("@@"):
            cur = result.setdefault(line[2:], {})
            stack = []
            continue
        if cur is None:
            continue
        m = re.match(r"/\*\s+(\d+)(?::\s*(\d+))?\s+\|\s+\d+ \*/\s+(.*)$", line)
        if m:
            off, bit, decl = int(m.group(1)), m.group(2), m.group(3)
            if decl.endswith("{"):
                stack.append(off)
                continue
            name = re.search(r"([A-Za-z_][A-Za-z0-9_]*)(\[\d*\])?(\s*:\s*\d+)?;$", decl)
            if name and len(stack) == 0:
                cur.setdefault(name.group(1), off if bit is None else (off, int(bit)))
            continue
        m = re.match(r"\s*}\s*([A-Za-z_][A-Za-z0-9_]*);$", line)
        if m and stack:
            off = stack.pop()
            if not stack:
                cur.setdefault(m.group(1), off)
            continue
        m = re.search(r"total size \(bytes\):\s+(\d+)", line)
        if m and not stack:
            cur[".size"] = int(m.group(1))
    return result


def pyenv_sources(minor):
    vers = sorted(glob.glob(f"{PYENV}/versions/3.{minor}.*"))
    vers = [v for v in vers if re.fullmatch(r"3\.\d+\.\d+", os.path.basename(v))]
    if not vers:
        die(f"no pyenv build of 3.{minor} under {PYENV}/versions")
    prefix = vers[-1]
    so = glob.glob(f"{prefix}/lib/python3.{minor}/lib-dynload/_asyncio*.so")
    lib = f"{prefix}/lib/libpython3.{minor}.so.1.0"
    if not so or not os.path.exists(lib):
        die(f"{prefix} is not a shared build with _asyncio as a module")
    return os.path.basename(prefix), f"pyenv {os.path.basename(prefix)}", so[0], lib


def debian_sources(minor):
    ver = DEBIAN_DBG[f"3.{minor}"]
    root = os.path.join(CACHE, f"dbg-3.{minor}")
    if not os.path.isdir(root):
        deb = glob.glob(os.path.join(CACHE, "debs", f"libpython3.{minor}-dbg_{ver}_amd64.deb"))
        if not deb:
            die(f"missing {CACHE}/debs/libpython3.{minor}-dbg_{ver}_amd64.deb: download it with "
                f"`apt-get download libpython3.{minor}-dbg={ver}` (Debian sid) into that folder")
        subprocess.run(["dpkg-deb", "-x", deb[0], root], check=True)
    lib = glob.glob(f"{root}/usr/lib/x86_64-linux-gnu/libpython3.{minor}d.so.1.0")[0]
    so = glob.glob(f"{root}/usr/lib/python3.{minor}/lib-dynload/_asyncio*.so") or [lib]
    return ver.split("-")[0], f"Debian sid libpython3.{minor}-dbg {ver}", so[0], lib


FREE_THREADED = os.path.expanduser("~/.cache/pyspy-node/cpython-3.13.5t")


def freethreaded_sources(minor):
    """The free-threaded 3.13t that scripts/freethreaded.mjs builds (-g, static libpython)."""
    so = glob.glob(f"{FREE_THREADED}/lib/python3.{minor}t/lib-dynload/_asyncio*.so")
    exe = f"{FREE_THREADED}/bin/python3.{minor}t"
    if not so or not os.path.exists(exe):
        die(f"no free-threaded 3.{minor}t under {FREE_THREADED}: run `node scripts/freethreaded.mjs`")
    return "3.13.5t", "scripts/freethreaded.mjs's --disable-gil build", so[0], exe


def section_table(minor):
    """The 13 u64s of `.AsyncioDebug` in the matrix's Debian release build."""
    root = os.path.join(ROOTS, f"debian-3.{minor}")
    cands = glob.glob(f"{root}/usr/lib/python3.{minor}/lib-dynload/_asyncio*.so") + [
        f"{root}/usr/bin/python3.{minor}"]
    for path in cands:
        if not os.path.exists(path):
            continue
        out = subprocess.run(["objcopy", "-O", "binary", "--only-section=.AsyncioDebug", path,
                              "/dev/stdout"], capture_output=True).stdout
        if len(out) >= 104:
            return path, struct.unpack("<13Q", out[:104])
    return None, None


def need(d, key, what):
    if key not in d:
        die(f"{what}: no field {key}")
    return d[key]


def rust(v):
    if v is None:
        return "None"
    return f"Some({v})"


def generate():
    blocks = []
    notes = []
    for minor, ft in ((11, False), (12, False), (13, False), (13, True), (14, False),
                      (15, False)):
        if ft:
            full, origin, so, lib = freethreaded_sources(minor)
        else:
            full, origin, so, lib = pyenv_sources(minor) if minor <= 13 else debian_sources(minor)
        task_types = ["TaskObj", "FutureObj", "futureiterobject"]
        if minor == 11:
            task_types.append("PyRunningLoopHolder")
        a = ptype(so, task_types)
        lib_types = ["PyGenObject", "struct _PyInterpreterFrame", "PyCFunctionObject",
                     "PyMethodObject", "PySetObject", "PyWeakReference", "PyThreadState",
                     "PyTypeObject"]
        if minor >= 13:
            lib_types.append("_PyThreadStateImpl")
        b = ptype(lib, lib_types)
        t, f, it = a["TaskObj"], a["FutureObj"], a["futureiterobject"]
        gen, frame = b["PyGenObject"], b["struct _PyInterpreterFrame"]
        state = need(t, "task_state", "TaskObj")
        vals = {
            "task_size": need(t, ".size", "TaskObj"),
            "future_size": need(f, ".size", "FutureObj"),
            "fut_loop": need(t, "task_loop", "TaskObj"),
            "fut_callback0": need(t, "task_callback0", "TaskObj"),
            "fut_callbacks": need(t, "task_callbacks", "TaskObj"),
            "fut_state": state,
            "fut_awaited_by": t.get("task_awaited_by"),
            "fut_is_task": t.get("task_is_task"),
            "fut_awaited_by_is_set": t.get("task_awaited_by_is_set"),
            "task_fut_waiter": need(t, "task_fut_waiter", "TaskObj"),
            "task_coro": need(t, "task_coro", "TaskObj"),
            "task_name": need(t, "task_name", "TaskObj"),
            "task_node": t.get("task_node"),
            "futureiter_future": need(it, "future", "futureiterobject"),
            "running_loop_holder_loop": a.get("PyRunningLoopHolder", {}).get("rl_loop"),
            "gen_frame_state": need(gen, "gi_frame_state", "PyGenObject"),
            "gen_iframe": need(gen, "gi_iframe", "PyGenObject"),
            "frame_stacktop": frame.get("stacktop"),
            "frame_stackpointer": frame.get("stackpointer"),
            "frame_localsplus": need(frame, "localsplus", "_PyInterpreterFrame"),
            "frame_owner": need(frame, "owner", "_PyInterpreterFrame"),
            "cfunction_self": need(b["PyCFunctionObject"], "m_self", "PyCFunctionObject"),
            "method_self": need(b["PyMethodObject"], "im_self", "PyMethodObject"),
            "set_used": need(b["PySetObject"], "used", "PySetObject"),
            "set_mask": need(b["PySetObject"], "mask", "PySetObject"),
            "set_table": need(b["PySetObject"], "table", "PySetObject"),
            "weakref_object": need(b["PyWeakReference"], "wr_object", "PyWeakReference"),
            "tstate_dict": b["PyThreadState"].get("dict") if minor <= 12 else None,
            "tstate_running_loop": (b.get("_PyThreadStateImpl", {}).get("asyncio_running_loop")
                                    if minor == 13 else None),
            "tstate_size": need(b["PyThreadState"], ".size", "PyThreadState"),
            "task_dictoffset": t.get("dict", -1),
            "type_base": need(b["PyTypeObject"], "tp_base", "PyTypeObject"),
        }
        if isinstance(state, tuple):
            die("TaskObj.task_state is a bit-field?")
        # 3.14+: the release build's own table must agree with the DWARF.
        cross = ""
        if minor >= 14:
            path, sec = section_table(minor)
            if sec is None:
                die(f"no .AsyncioDebug section found for 3.{minor} under {ROOTS}")
            want = {"task_size": sec[0], "task_name": sec[1], "fut_awaited_by": sec[2],
                    "fut_is_task": sec[3], "fut_awaited_by_is_set": sec[4], "task_coro": sec[5],
                    "task_node": sec[6]}
            for k, v in want.items():
                if vals[k] != v:
                    die(f"3.{minor}: {k} is {vals[k]} in DWARF but {v} in {path}'s .AsyncioDebug")
            cross = f"\n/// Cross-checked: `.AsyncioDebug` of {os.path.relpath(path, ROOTS)} agrees."
        suffix = "t" if ft else ""
        notes.append(f"//   3.{minor}{suffix}: {full} from {origin}")
        fields = "\n".join(
            f"    {k}: {v}," if k in ("task_size", "future_size", "fut_loop", "fut_callback0",
                                    "fut_callbacks", "fut_state", "task_fut_waiter", "task_coro",
                                    "task_name", "futureiter_future", "gen_frame_state",
                                    "gen_iframe", "frame_localsplus", "frame_owner",
                                    "cfunction_self", "method_self", "set_used", "set_mask",
                                    "set_table", "weakref_object", "tstate_size", "task_dictoffset",
                                    "type_base")
            else f"    {k}: {rust(v)},"
            for k, v in vals.items())
        blocks.append(f"/// CPython {full} ({origin}).{cross}\n"
                      f"pub(crate) const ASYNCIO_3_{minor}{suffix.upper()}: AsyncioOffsets = AsyncioOffsets {{\n"
                      f"{fields}\n}};\n")
    head = (
        "// @generated by crates/pyspy-asyncio/scripts/generate-layouts.py — do not edit.\n"
        "// Change the script and re-run it instead.\n//\n"
        "// Every value is an offset or size printed by `gdb ptype /o` from the DWARF of\n"
        "// these builds (x86-64 Linux; the T ones are free-threaded, --disable-gil):\n"
        + "\n".join(notes) + "\n\nuse crate::offsets::AsyncioOffsets;\n\n")
    return head + "\n".join(blocks)


def main():
    text = generate()
    if "--check" in sys.argv:
        with open(OUT) as fh:
            if fh.read() != text:
                die(f"{OUT} is not up to date")
        return
    with open(OUT, "w") as fh:
        fh.write(text)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
