"""debug_offsets_check.py: compares probe offsets with a binary's own table.

Usage: python3 debug_offsets_check.py HEADER BINARY OFFSETS.txt FACTS.txt [GENERATED.rs MINOR]

HEADER is the version's pycore_runtime.h (3.13) or pycore_debug_offsets.h
(3.14+). The field order of `_Py_DebugOffsets` is parsed from it, so the table
can be read as a sequence of u64s. BINARY is an ELF file holding the
interpreter (a Debian `pythonX.Y` executable or a pyenv `libpythonX.Y.so`); its
`.PyRuntime` section starts with the table (`_PyRuntime.debug_offsets`).
OFFSETS.txt / FACTS.txt are offsets-probe.c output from the same headers.

Checks: the table's cookie and version, that the parsed field list accounts
for sizeof(_Py_DebugOffsets), and that every table entry that has an
`Offsets` counterpart equals the probe's value. With GENERATED.rs and MINOR it
also reports where the committed OFFSETS_3_MINOR (maybe from another patch
release) differs from this binary's table. Prints the decoded table; exits 1
on a mismatch with the probe.
"""

import re
import struct
import sys

# _Py_DebugOffsets entry -> Offsets field.
MAPPING = {
    "runtime_state.interpreters_head": "runtime_interpreters_head",
    "interpreter_state.size": "interp_size",
    "interpreter_state.next": "interp_next",
    "interpreter_state.threads_head": "interp_threads_head",
    "interpreter_state.imports_modules": "interp_modules",
    "interpreter_state.ceval_gil": "interp_ceval_gil",
    "interpreter_state.gil_runtime_state_locked": "interp_gil_locked",
    "interpreter_state.gil_runtime_state_holder": "interp_gil_holder",
    "thread_state.size": "tstate_size",
    "thread_state.next": "tstate_next",
    "thread_state.interp": "tstate_interp",
    "thread_state.current_frame": "tstate_current_frame",
    "thread_state.thread_id": "tstate_thread_id",
    "thread_state.native_thread_id": "tstate_native_thread_id",
    "thread_state.datastack_chunk": "tstate_datastack_chunk",
    "interpreter_frame.size": "frame_size",
    "interpreter_frame.previous": "frame_previous",
    "interpreter_frame.executable": "frame_executable",
    "interpreter_frame.instr_ptr": "frame_instr_ptr",
    "interpreter_frame.localsplus": "frame_localsplus",
    "interpreter_frame.owner": "frame_owner",
    "code_object.size": "code_size",
    "code_object.filename": "code_filename",
    "code_object.name": "code_name",
    "code_object.qualname": "code_qualname",
    "code_object.linetable": "code_linetable",
    "code_object.firstlineno": "code_firstlineno",
    "code_object.argcount": "code_argcount",
    "code_object.localsplusnames": "code_localsplusnames",
    "code_object.localspluskinds": "code_localspluskinds",
    "code_object.co_code_adaptive": "code_code_adaptive",
    "pyobject.ob_type": "ob_type",
    "type_object.tp_name": "type_tp_name",
    "type_object.tp_flags": "type_tp_flags",
    "type_object.tp_basicsize": "type_tp_basicsize",
    "type_object.tp_dictoffset": "type_tp_dictoffset",
    "heap_type_object.ht_cached_keys": "heap_type_cached_keys",
    "tuple_object.ob_item": "tuple_ob_item",
    "tuple_object.ob_size": "tuple_ob_size",
    "list_object.ob_item": "list_ob_item",
    "list_object.ob_size": "list_ob_size",
    "dict_object.ma_keys": "dict_ma_keys",
    "dict_object.ma_values": "dict_ma_values",
    "float_object.ob_fval": "float_ob_fval",
    "long_object.lv_tag": "long_lv_tag",
    "long_object.ob_digit": "long_ob_digit",
    "bytes_object.ob_size": "bytes_ob_size",
    "bytes_object.ob_sval": "bytes_ob_sval",
    "unicode_object.state": "unicode_state",
    "unicode_object.length": "unicode_length",
    "unicode_object.asciiobject_size": "unicode_ascii_size",
    "unicode_object.compactunicodeobject_size": "unicode_compact_size",
}

# _Py_DebugOffsets entry -> FACTS key (offsets-probe.c -DPROBE_FACTS).
FACT_MAPPING = {
    "thread_state.holds_gil": "tstate.holds_gil",
    "thread_state.base_frame": "tstate.base_frame",
    "interpreter_frame.stackpointer": "frame.stackpointer",
}


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def parse_fields(header):
    """[(name, size)] of `typedef struct _Py_DebugOffsets`, in memory order."""
    text = strip_comments(open(header).read())
    start = text.index("typedef struct _Py_DebugOffsets {")
    lines = text[start:].split("\n")[1:]
    fields, stack = [], []
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("} _Py_DebugOffsets;"):
            return fields
        m = re.fullmatch(r"struct(?:\s+\w+)?\s*\{", line)
        if m:
            stack.append(None)
            continue
        m = re.fullmatch(r"\}\s*(\w+);", line)
        if m:
            stack.pop()
            # name the fields collected for this sub-struct
            for i, (name, size) in enumerate(fields):
                if name.startswith("?."):
                    fields[i] = (m.group(1) + name[1:], size)
            continue
        m = re.fullmatch(r"uint64_t\s+(\w+);", line)
        if m:
            fields.append((("?." if stack else "") + m.group(1), 8))
            continue
        m = re.fullmatch(r"char\s+cookie\[8\].*;", line)
        if m and not stack and not fields:
            fields.append(("cookie", 8))
            continue
        raise SystemExit("%s: cannot parse %r inside _Py_DebugOffsets" % (header, line))
    raise SystemExit("%s: end of _Py_DebugOffsets not found" % header)


def elf_section(path, wanted):
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 2:
        raise SystemExit("%s: not a 64-bit ELF file" % path)
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)

    def header(i):
        return struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize)

    strtab = header(shstrndx)
    for i in range(shnum):
        name_off, _, _, _, offset, size = header(i)
        name_at = strtab[4] + name_off
        name = data[name_at:data.index(b"\0", name_at)].decode()
        if name == wanted:
            return data[offset:offset + size]
    raise SystemExit("%s: no %s section" % (path, wanted))


def load(path):
    out = {}
    for line in open(path):
        key, _, value = line.rstrip("\n").partition(" ")
        out[key] = value
    return out


def value_of(text):
    if text == "None":
        return None
    if text.startswith("Some("):
        return int(text[5:-1])
    return int(text)


def generated_const(path, minor):
    text = open(path).read()
    body = re.search(r"OFFSETS_3_%d: Offsets = Offsets \{(.*?)\n\};" % minor, text, re.S).group(1)
    return {k: value_of(v) for k, v in re.findall(r"(\w+): ([^,]+),", body)}


def main():
    header, binary, offsets_path, facts_path = sys.argv[1:5]
    probe = {k: value_of(v) for k, v in load(offsets_path).items()}
    facts = load(facts_path)
    fields = parse_fields(header)
    total = sum(size for _, size in fields)
    bad = 0
    if total != int(facts["debug_offsets_sizeof"]):
        print("FAIL field list covers %d bytes, sizeof(_Py_DebugOffsets) is %s" % (total, facts["debug_offsets_sizeof"]))
        bad += 1
    section = elf_section(binary, ".PyRuntime")
    table, pos = {}, 0
    for name, size in fields:
        if name == "cookie":
            table[name] = section[pos:pos + size]
        else:
            table[name] = struct.unpack_from("<Q", section, pos)[0]
        pos += size
    cookie_ok = table["cookie"] == b"xdebugpy"
    version_ok = table["version"] == int(facts["version_hex"], 16)
    print("%s %s: cookie %r, version %#010x (headers %s), free_threaded %d, %d u64 fields, %d bytes" % (
        "ok  " if cookie_ok and version_ok else "FAIL", binary, table["cookie"], table["version"],
        facts["version_hex"], table["free_threaded"], len(fields) - 1, total))
    bad += not (cookie_ok and version_ok)
    compared = 0
    for name, value in table.items():
        field = MAPPING.get(name)
        note = ""
        if field is None and name in FACT_MAPPING and FACT_MAPPING[name] in facts:
            field = FACT_MAPPING[name]
            want = int(facts[field])
        elif field is not None:
            want = probe[field]
        if field is not None:
            compared += 1
            if want != value:
                note = "  <-- probe says %s" % want
                bad += 1
            else:
                note = "  = %s" % field
        shown = value if isinstance(value, int) else repr(value)
        print("    %-50s %s%s" % (name, shown, note))
    print("%s %d table entries equal the probe's values" % ("ok  " if not bad else "FAIL", compared))
    if len(sys.argv) > 6:
        gen = generated_const(sys.argv[5], int(sys.argv[6]))
        diffs = ["%s: generated %s, binary %s" % (MAPPING[n], gen[MAPPING[n]], v)
                 for n, v in table.items() if n in MAPPING and gen[MAPPING[n]] != v]
        print("info generated OFFSETS_3_%s vs this binary: %s" % (sys.argv[6], "; ".join(diffs) or "identical"))
    sys.exit(1 if bad else 0)


main()
