"""live_check.py: checks probe offsets against the interpreter running it.

Usage: pythonX.Y live_check.py OFFSETS.txt FACTS.txt

OFFSETS.txt and FACTS.txt are the outputs of offsets-probe.c (offsets and
-DPROBE_FACTS modes) built from this interpreter's own headers. The script
reads its own process memory with ctypes at id(obj) + offset and compares what
it finds with what Python reports about the same objects: code objects, types,
containers, strings, ints, modules, managed instance dicts, the runtime ->
interpreter -> thread state chain, the GIL holder and the frame chain
(including which line the recorded instruction pointer maps to).

Prints one line per check and exits 1 if any check failed. Runs on CPython
3.11 to 3.15, default (GIL) builds, 64-bit Linux.
"""

import ctypes
import sys
import threading

V = sys.version_info[:2]
PTR = ctypes.sizeof(ctypes.c_void_p)
assert PTR == 8, "64-bit only"


def load(path):
    out = {}
    with open(path) as f:
        for line in f:
            key, _, value = line.rstrip("\n").partition(" ")
            out[key] = value
    return out


def parse_offsets(raw):
    out = {}
    for key, value in raw.items():
        if value == "None":
            out[key] = None
        elif value.startswith("Some("):
            out[key] = int(value[5:-1])
        else:
            out[key] = int(value)
    return out


O = parse_offsets(load(sys.argv[1]))
F = load(sys.argv[2])


def fact(key):
    value = F[key]
    return int(value, 0)


def u8(a):
    return ctypes.c_uint8.from_address(a).value


def i32(a):
    return ctypes.c_int32.from_address(a).value


def u32(a):
    return ctypes.c_uint32.from_address(a).value


def i64(a):
    return ctypes.c_int64.from_address(a).value


def u64(a):
    return ctypes.c_uint64.from_address(a).value


def f64(a):
    return ctypes.c_double.from_address(a).value


def ptr(a):
    return ctypes.c_void_p.from_address(a).value or 0


def cstr(a):
    return ctypes.string_at(a).decode()


RESULTS = []


def check(name, ok, detail=""):
    RESULTS.append((name, bool(ok), detail))


def bitfield(word, key):
    shift, width = (int(x) for x in F[key].split(":"))
    return (word >> shift) & ((1 << width) - 1)


STACKREF_MASK = ~fact("Py_TAG_BITS") if V >= (3, 14) else ~0


def stackref(a):
    """Reads a PyObject* or (3.14+) a _PyStackRef and strips the tag bits."""
    return ptr(a) & STACKREF_MASK


# ------------------------------------------------------------------ objects

def check_objects():
    for obj in (1, "s", [], object(), 1.5):
        check("ob_type(%s)" % type(obj).__name__, ptr(id(obj) + O["ob_type"]) == id(type(obj)))

    class Plain:
        def __init__(self):
            self.alpha_attr = ["a"]
            self.beta_attr = ("b",)

    for tp in (int, str, list, dict, tuple, Plain):
        base = id(tp)
        check("type_tp_name(%s)" % tp.__name__, cstr(ptr(base + O["type_tp_name"])) == tp.__name__)
        check("type_tp_flags(%s)" % tp.__name__, u64(base + O["type_tp_flags"]) == tp.__flags__)
        check("type_tp_basicsize(%s)" % tp.__name__, i64(base + O["type_tp_basicsize"]) == tp.__basicsize__)
        check("type_tp_dictoffset(%s)" % tp.__name__, i64(base + O["type_tp_dictoffset"]) == tp.__dictoffset__)

    # tuple, list
    items = (object(), "x", 3)
    check("tuple_ob_size", i64(id(items) + O["tuple_ob_size"]) == 3)
    check("tuple_ob_item", all(ptr(id(items) + O["tuple_ob_item"] + PTR * i) == id(items[i]) for i in range(3)))
    lst = [object(), "y"]
    check("list_ob_size", i64(id(lst) + O["list_ob_size"]) == 2)
    arr = ptr(id(lst) + O["list_ob_item"])
    check("list_ob_item", all(ptr(arr + PTR * i) == id(lst[i]) for i in range(2)))

    # float, bytes
    value = float("2.25")
    check("float_ob_fval", f64(id(value) + O["float_ob_fval"]) == 2.25)
    data = bytes(range(65, 75))
    check("bytes_ob_size", i64(id(data) + O["bytes_ob_size"]) == len(data))
    check("bytes_ob_sval", ctypes.string_at(id(data) + O["bytes_ob_sval"], len(data) + 1) == data + b"\0")

    # int: 2 digits of PyLong_SHIFT bits
    shift = fact("PyLong_SHIFT")
    big = (5 << shift) + 7
    neg = -big
    zero = int("0")
    digits_ok = (u32(id(big) + O["long_ob_digit"]) == 7 and u32(id(big) + O["long_ob_digit"] + 4) == 5)
    check("long_ob_digit", digits_ok)
    if V == (3, 11):
        check("long_lv_tag(ob_size)", i64(id(big) + O["long_lv_tag"]) == 2 and i64(id(neg) + O["long_lv_tag"]) == -2
              and i64(id(zero) + O["long_lv_tag"]) == 0)
    else:
        nsb = fact("_PyLong_NON_SIZE_BITS")
        mask = fact("_PyLong_SIGN_MASK")
        tag_big, tag_neg, tag_zero = (u64(id(x) + O["long_lv_tag"]) for x in (big, neg, zero))
        check("long_lv_tag", tag_big >> nsb == 2 and tag_big & mask == 0
              and tag_neg >> nsb == 2 and tag_neg & mask == fact("SIGN_NEGATIVE")
              and tag_zero & mask == fact("SIGN_ZERO"),
              "tags %#x %#x %#x" % (tag_big, tag_neg, tag_zero))

    # str: lengths, state bits, data placement
    def state(s):
        return u32(id(s) + O["unicode_state"])

    ascii_s = "".join(["ascii", "_text"])           # built at run time: not interned
    latin = "".join(["h\u00e9", "llo"])
    ucs2 = "".join(["\u20ac", "uro"])
    ucs4 = "".join(["\U0001F600", "x"])
    check("unicode_length", all(i64(id(s) + O["unicode_length"]) == len(s) for s in (ascii_s, latin, ucs2, ucs4)))
    st = state(ascii_s)
    check("unicode_state(ascii)", bitfield(st, "state.ascii") == 1 and bitfield(st, "state.compact") == 1
          and bitfield(st, "state.kind") == 1 and bitfield(st, "state.interned") == 0, hex(st))
    kinds = [bitfield(state(s), "state.kind") for s in (latin, ucs2, ucs4)]
    asciis = [bitfield(state(s), "state.ascii") for s in (latin, ucs2, ucs4)]
    check("unicode_state(kind)", kinds == [1, 2, 4] and asciis == [0, 0, 0], "kinds %s" % kinds)
    interned = sys.intern("".join(["interned", "_probe_text"]))
    check("unicode_state(interned)", bitfield(state(interned), "state.interned") != 0, hex(state(interned)))
    if V == (3, 11):
        check("unicode_state(ready)", bitfield(st, "state.ready") == 1)
    else:
        # The one-character latin-1 strings are static singletons since 3.12.
        check("unicode_state(statically_allocated)",
              bitfield(state(chr(65)), "state.statically_allocated") == 1
              and bitfield(st, "state.statically_allocated") == 0)
    check("unicode_ascii_size", ctypes.string_at(id(ascii_s) + O["unicode_ascii_size"], len(ascii_s)) == ascii_s.encode())
    check("unicode_compact_size",
          ctypes.string_at(id(latin) + O["unicode_compact_size"], len(latin)) == latin.encode("latin-1")
          and ctypes.string_at(id(ucs2) + O["unicode_compact_size"], 2 * len(ucs2)) == ucs2.encode("utf-16-le")
          and ctypes.string_at(id(ucs4) + O["unicode_compact_size"], 4 * len(ucs4)) == ucs4.encode("utf-32-le"))

    # module
    check("module_md_dict", ptr(id(sys) + O["module_md_dict"]) == id(sys.__dict__))

    check_dicts(Plain)


def dict_entries(keys):
    """(kind, [(key_ptr, value_ptr)]) of a PyDictKeysObject at address keys."""
    log2_size = u8(keys + fact("dk_log2_size"))
    log2_index_bytes = u8(keys + fact("dk_log2_index_bytes"))
    kind = u8(keys + fact("dk_kind"))
    nentries = i64(keys + fact("dk_nentries"))
    start = keys + fact("dk_indices") + (1 << log2_index_bytes)
    out = []
    for i in range(nentries):
        if kind == fact("DICT_KEYS_GENERAL"):
            e = start + i * fact("PyDictKeyEntry_sizeof")
            out.append((ptr(e + fact("PyDictKeyEntry.me_key")), ptr(e + fact("PyDictKeyEntry.me_value"))))
        else:
            e = start + i * fact("PyDictUnicodeEntry_sizeof")
            out.append((ptr(e + fact("PyDictUnicodeEntry.me_key")), ptr(e + fact("PyDictUnicodeEntry.me_value"))))
    return kind, log2_size, log2_index_bytes, out


def check_dicts(Plain):
    k1, k2 = sys.intern("key_one"), sys.intern("key_two")
    v1, v2 = object(), object()
    d = {k1: v1, k2: v2}
    check("dict_ma_used", i64(id(d) + O["dict_ma_used"]) == 2)
    check("dict_ma_values(combined)", ptr(id(d) + O["dict_ma_values"]) == 0)
    kind, log2_size, log2_ib, entries = dict_entries(ptr(id(d) + O["dict_ma_keys"]))
    check("dict keys (unicode)", kind == fact("DICT_KEYS_UNICODE") and entries == [(id(k1), id(v1)), (id(k2), id(v2))]
          and log2_ib == log2_size, "kind %d entries %s" % (kind, entries))
    g = {10**20: v1}
    kind, _, _, entries = dict_entries(ptr(id(g) + O["dict_ma_keys"]))
    check("dict keys (general)", kind == fact("DICT_KEYS_GENERAL") and entries == [(id(next(iter(g))), id(v1))])

    # Instance attributes of a plain class: shared keys + values.
    obj = Plain()
    tp_flags = Plain.__flags__
    check("Py_TPFLAGS_MANAGED_DICT set", tp_flags & fact("Py_TPFLAGS_MANAGED_DICT"))
    keys = ptr(id(Plain) + O["heap_type_cached_keys"])
    kind, _, _, entries = dict_entries(keys)
    names = [ctypes.cast(k, ctypes.py_object).value for k, _ in entries]
    check("heap_type_cached_keys", kind == fact("DICT_KEYS_SPLIT") and names[:2] == ["alpha_attr", "beta_attr"],
          "kind %d names %s" % (kind, names))
    ia, ib = names.index("alpha_attr"), names.index("beta_attr")
    base = id(obj)
    if V == (3, 11):
        values = ptr(base + fact("VALUES_POINTER_OFFSET"))
        dictp = ptr(base + fact("MANAGED_DICT_OFFSET"))
        order = [u8(values - 3 - n) for n in range(u8(values - 2))]
    elif V == (3, 12):
        tagged = ptr(base + fact("MANAGED_DICT_OFFSET(dict_or_values)"))
        check("3.12 dict_or_values tagged", tagged & 1 == 1, hex(tagged))
        values = tagged + 1
        dictp = 0
        order = [u8(values - 3 - n) for n in range(u8(values - 2))]
    else:
        check("Py_TPFLAGS_INLINE_VALUES set", tp_flags & fact("Py_TPFLAGS_INLINE_VALUES"))
        header = base + Plain.__basicsize__
        capacity = u8(header + fact("PyDictValues.capacity"))
        size = u8(header + fact("PyDictValues.size"))
        check("inline values header", u8(header + fact("PyDictValues.embedded")) == 1
              and u8(header + fact("PyDictValues.valid")) == 1 and size == 2 and capacity >= 2,
              "capacity %d size %d" % (capacity, size))
        values = header + fact("PyDictValues.values")
        dictp = ptr(base + fact("MANAGED_DICT_OFFSET"))
        order = [u8(values + PTR * capacity + n) for n in range(size)]
    check("instance values", ptr(values + PTR * ia) == id(obj.alpha_attr) and ptr(values + PTR * ib) == id(obj.beta_attr))
    check("instance insertion order", order == [ia, ib], "order %s" % order)
    check("managed dict pointer unset", dictp == 0, hex(dictp))
    materialized = obj.__dict__
    if V == (3, 12):
        dictp = ptr(base + fact("MANAGED_DICT_OFFSET(dict_or_values)"))
    else:
        dictp = ptr(base + fact("MANAGED_DICT_OFFSET"))
    check("managed dict pointer set", dictp == id(materialized), "%#x != %#x" % (dictp, id(materialized)))
    if V >= (3, 13):
        check("materialized dict shares inline values",
              ptr(id(materialized) + O["dict_ma_values"]) == base + Plain.__basicsize__)


# ------------------------------------------------------------------ code

def never_called(a, b=2):
    local_one = a + b
    return local_one


def check_code():
    co = never_called.__code__
    base = id(co)
    check("code_firstlineno", i32(base + O["code_firstlineno"]) == co.co_firstlineno)
    check("code_argcount", i32(base + O["code_argcount"]) == co.co_argcount)
    check("code_filename", ptr(base + O["code_filename"]) == id(co.co_filename))
    check("code_name", ptr(base + O["code_name"]) == id(co.co_name))
    check("code_qualname", ptr(base + O["code_qualname"]) == id(co.co_qualname))
    check("code_linetable", ptr(base + O["code_linetable"]) == id(co.co_linetable))
    names = ctypes.cast(ptr(base + O["code_localsplusnames"]), ctypes.py_object).value
    check("code_localsplusnames", names == co.co_varnames + co.co_cellvars + co.co_freevars, repr(names))
    kinds = ctypes.cast(ptr(base + O["code_localspluskinds"]), ctypes.py_object).value
    check("code_localspluskinds", isinstance(kinds, bytes) and len(kinds) == len(names))
    first = ctypes.string_at(base + O["code_code_adaptive"], 2)
    check("code_code_adaptive", first == co.co_code[:2], "%r vs %r" % (first, co.co_code[:2]))


# ------------------------------------------------------------------ runtime

def runtime_address():
    return ctypes.addressof(ctypes.c_char.in_dll(ctypes.pythonapi, "_PyRuntime"))


def current_tstate():
    f = ctypes.pythonapi.PyThreadState_Get
    f.restype = ctypes.c_void_p
    return f()


def check_runtime():
    rt = runtime_address()
    if V >= (3, 13):
        check("_Py_DebugOffsets cookie", ctypes.string_at(rt + fact("debug_offsets_at_runtime_offset"), 8) == b"xdebugpy")
    get_interp = ctypes.pythonapi.PyInterpreterState_Get
    get_interp.restype = ctypes.c_void_p
    interp = ptr(rt + O["runtime_interpreters_head"])
    check("runtime_interpreters_head", interp == get_interp(), "%#x" % interp)
    check("interp_next", ptr(interp + O["interp_next"]) == 0)
    check("interp_modules", ptr(interp + O["interp_modules"]) == id(sys.modules))
    me = current_tstate()

    started = threading.Event()
    release = threading.Event()
    info = {}

    def worker():
        info["ident"] = threading.get_ident()
        info["native"] = threading.get_native_id()
        started.set()
        release.wait()

    t = threading.Thread(target=worker)
    t.start()
    started.wait()
    try:
        seen = []
        ts = ptr(interp + O["interp_threads_head"])
        while ts and len(seen) < 64:
            seen.append(ts)
            ts = ptr(ts + O["tstate_next"])
        check("interp_threads_head/tstate_next", me in seen and len(seen) >= 2, "%d tstates" % len(seen))
        check("tstate_interp", all(ptr(ts + O["tstate_interp"]) == interp for ts in seen))
        check("tstate_thread_id(main)", u64(me + O["tstate_thread_id"]) == threading.get_ident())
        check("tstate_native_thread_id(main)", u64(me + O["tstate_native_thread_id"]) == threading.get_native_id())
        other = [ts for ts in seen if u64(ts + O["tstate_thread_id"]) == info["ident"]]
        check("tstate_thread_id(worker)", len(other) == 1)
        if other:
            check("tstate_native_thread_id(worker)", u64(other[0] + O["tstate_native_thread_id"]) == info["native"])
        check_gil(rt, interp, me, other[0] if other else 0)
    finally:
        release.set()
        t.join()


def check_gil(rt, interp, me, other):
    # This thread runs Python code, so it holds the GIL right now.
    if V == (3, 11):
        check("runtime_tstate_current", ptr(rt + O["runtime_tstate_current"]) == me)
        check("runtime.ceval.gil", i32(rt + fact("runtime.ceval.gil.locked")) == 1
              and ptr(rt + fact("runtime.ceval.gil.last_holder")) == me)
        return
    gil = ptr(interp + O["interp_ceval_gil"])
    check("interp_ceval_gil -> interp._gil", gil == interp + fact("interp._gil.locked") - fact("gil.locked"))
    if V == (3, 12):
        check("gil_locked", i32(gil + O["gil_locked"]) == 1)
        check("gil_last_holder", ptr(gil + O["gil_last_holder"]) == me)
    else:
        check("interp_gil_locked", i32(interp + O["interp_gil_locked"]) == 1)
        check("interp_gil_holder", ptr(interp + O["interp_gil_holder"]) == me)
    if V >= (3, 14):
        check("tstate.holds_gil", i32(me + fact("tstate.holds_gil")) == 1
              and (not other or i32(other + fact("tstate.holds_gil")) == 0))
    if V == (3, 13):
        def holds(ts):
            return bitfield(u32(ts + fact("tstate._status")), "tstate._status.holds_gil")
        check("tstate._status.holds_gil", holds(me) == 1 and (not other or holds(other) == 0))


# ------------------------------------------------------------------ frames
#
# Frames are read while they are alive: a frame's memory is reused as soon as
# its function returns, so every check on a frame runs inside that function or
# one it calls.

def caller_frame(ts):
    """Address of the frame that called caller_frame.

    The reads go through ctypes directly (C calls push no Python frame), so the
    running frame is caller_frame's own and its `previous` is the caller's."""
    if O["tstate_current_frame"] is not None:
        own = ctypes.c_void_p.from_address(ts + O["tstate_current_frame"]).value
    else:
        cframe = ctypes.c_void_p.from_address(ts + O["tstate_cframe"]).value
        own = ctypes.c_void_p.from_address(cframe + O["cframe_current_frame"]).value
    own_code = ctypes.c_void_p.from_address(own + O["frame_executable"]).value & STACKREF_MASK
    check("frame_executable(running frame)", own_code == id(caller_frame.__code__))
    return ctypes.c_void_p.from_address(own + O["frame_previous"]).value


def walk(ts):
    """[(frame, owner, executable, is_entry)] from walk's caller down."""
    out = []
    frame = caller_frame(ts)                   # walk's own frame
    check("frame_previous(walk)", stackref(frame + O["frame_executable"]) == id(walk.__code__))
    frame = ptr(frame + O["frame_previous"])   # start at walk's caller
    while frame and len(out) < 200:
        owner = u8(frame + O["frame_owner"])
        exe = stackref(frame + O["frame_executable"])
        entry = u8(frame + O["frame_is_entry"]) if O["frame_is_entry"] is not None else None
        out.append((frame, owner, exe, entry))
        frame = ptr(frame + O["frame_previous"])
    return out


def inner(marker_arg):
    marker_local = object()
    ts = current_tstate()
    frames = walk(ts)
    me = frames[0][0]
    check("frame_executable(inner)", frames[0][2] == id(inner.__code__), "%#x" % frames[0][2])
    check("frame_owner(inner)=THREAD", frames[0][1] == fact("FRAME_OWNED_BY_THREAD"))
    slots = [stackref(me + O["frame_localsplus"] + PTR * i) for i in range(2)]
    check("frame_localsplus", slots == [id(marker_arg), id(marker_local)])
    chunk = ptr(ts + O["tstate_datastack_chunk"])
    chunk_size = u64(chunk + PTR)          # _PyStackChunk {previous, size, top, data[]}
    check("tstate_datastack_chunk", chunk <= me < chunk + chunk_size)
    # outer is suspended in its call to inner: where does its instruction
    # pointer point, and which line does that map to?
    caller, caller_code = frames[1][0], outer.__code__
    check("frame_previous(inner) -> outer", frames[1][2] == id(caller_code))
    ip = ptr(caller + O["frame_instr_ptr"])
    offset = ip - (id(caller_code) + O["code_code_adaptive"])
    line = None
    for start, end, ln in caller_code.co_lines():
        if start <= offset < end:
            line = ln
    want = caller_code.co_firstlineno + 1
    check("frame_instr_ptr -> line of the call", line == want, "offset %d line %s want %d" % (offset, line, want))
    return frames, offset, u8(ip)


def outer():
    return inner("arg")  # the line outer's frame_instr_ptr must map to


def gen():
    ts = current_tstate()
    yield walk(ts)[0][1]


def called_from_c():
    """walk() from a lambda that C code (map) calls: what lies between?"""
    ts = current_tstate()
    frames = list(map(lambda _: walk(ts), [0]))[0]
    lam, below = frames[0], frames[1]
    if V == (3, 11):
        check("C-called frame has is_entry", lam[3] == 1 and below[2] == id(called_from_c.__code__))
    else:
        shim = fact("FRAME_OWNED_BY_CSTACK") if V <= (3, 13) else fact("FRAME_OWNED_BY_INTERPRETER")
        check("shim frame between C-called frame and its caller",
              below[1] == shim and frames[2][2] == id(called_from_c.__code__),
              "owners %s" % [f[1] for f in frames[:3]])


def check_frames():
    import dis
    called_from_c()
    frames, offset, op = outer()
    calls = [i.offset for i in dis.get_instructions(outer) if i.opname.startswith("CALL")]
    RESULTS.append(("  (info) outer's instruction pointer: byte %d, opcode %s; CALL at %s" % (
        offset, dis.opname[op], calls), True, ""))
    # frames[0:2] (inner, outer) are dead now; the rest are still running.
    owners = [f[1] for f in frames]
    bottom = frames[-1]
    if V == (3, 11):
        check("frame_is_entry", frames[0][3] == 0 and bottom[3] == 1, "entry flags %s" % [f[3] for f in frames])
        check("owners (3.11)", set(owners) == {fact("FRAME_OWNED_BY_THREAD")}, str(owners))
    elif V <= (3, 13):
        check("bottom frame owned by CSTACK", bottom[1] == fact("FRAME_OWNED_BY_CSTACK"), str(owners))
    elif V == (3, 14):
        # 3.14 has both INTERPRETER (3) and CSTACK (4); the entry frame that
        # each C-level call into the eval loop pushes is INTERPRETER-owned.
        check("bottom frame owned by INTERPRETER", bottom[1] == fact("FRAME_OWNED_BY_INTERPRETER"), str(owners))
    else:
        check("bottom frame is tstate base_frame",
              bottom[0] == ptr(current_tstate() + fact("tstate.base_frame")), str(owners))
        check("bottom frame owned by INTERPRETER", bottom[1] == fact("FRAME_OWNED_BY_INTERPRETER"), str(owners))
    RESULTS.append(("  (info) frame owners, innermost first: %s" % owners, True, ""))
    for frame, owner, exe, _ in frames[2:]:
        if owner != fact("FRAME_OWNED_BY_THREAD"):
            raw = ptr(frame + O["frame_executable"])
            kind = cstr(ptr(ptr(exe + O["ob_type"]) + O["type_tp_name"])) if exe else "NULL"
            if kind == "code":
                kind += " " + repr(ctypes.cast(ptr(exe + O["code_name"]), ctypes.py_object).value)
            RESULTS.append(("  (info) owner-%d frame: f_executable word %#x -> %s" % (owner, raw, kind), True, ""))
    check("generator frame owner", next(gen()) == fact("FRAME_OWNED_BY_GENERATOR"))


def main():
    check_objects()
    check_code()
    check_runtime()
    check_frames()
    failed = 0
    for name, ok, detail in RESULTS:
        if name.startswith("  (info)"):
            print(name)
            continue
        print("%-4s %s%s" % ("ok" if ok else "FAIL", name, (": " + detail) if detail and not ok else ""))
        failed += not ok
    print("%s %s: %d checks, %d failed" % (sys.executable, sys.version.split()[0], sum(1 for r in RESULTS if not r[0].startswith("  ")), failed))
    sys.exit(1 if failed else 0)


main()
