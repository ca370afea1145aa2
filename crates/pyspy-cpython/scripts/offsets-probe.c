/*
 * offsets-probe.c: prints CPython struct offsets for one version.
 *
 * Compiled by generate-offsets.sh against one CPython minor's headers
 * (3.11 to 3.15), with -DPy_BUILD_CORE so the internal/ headers are usable.
 * Older versions (2.7, 3.6 to 3.10) have their own probe,
 * offsets-probe-legacy.c, which prints the same fields.
 * Everything printed is a compile-time offsetof()/sizeof() or macro value,
 * except the bit-field positions, which are found by setting each field in a
 * zeroed struct and looking at which bits of the word changed.
 *
 * Default output: one line per `Offsets` field, in the order of
 * crates/pyspy-cpython/src/offsets.rs, as "<field> <rust expression>".
 * With -DPROBE_FACTS: "<key> <value>" lines describing layouts the walker
 * needs beyond plain offsets (used to write and re-check LAYOUT_NOTES.md).
 *
 * 64-bit Linux, default (GIL) builds, and free-threaded 3.13t-3.15t.
 */
#include "Python.h"

#if PY_MAJOR_VERSION != 3 || PY_MINOR_VERSION < 11 || PY_MINOR_VERSION > 15
#  error "offsets-probe.c knows CPython 3.11 to 3.15 only"
#endif
#if defined(Py_GIL_DISABLED) && PY_MINOR_VERSION < 13
#  error "free-threaded headers are supported from 3.13t on"
#endif

/* Internal headers that hold the structs. Which ones exist moves between
 * versions; each includes what it needs. */
#include "internal/pycore_runtime.h"
#include "internal/pycore_interp.h"
#include "internal/pycore_frame.h"
#include "internal/pycore_code.h"
#include "internal/pycore_dict.h"
#include "internal/pycore_moduleobject.h"
#include "internal/pycore_object.h"
#if PY_MINOR_VERSION >= 12
#  include "internal/pycore_long.h"
#endif
#if PY_MINOR_VERSION >= 14
#  include "internal/pycore_interpframe_structs.h"
#  include "internal/pycore_stackref.h"
#  include "internal/pycore_debug_offsets.h"
#endif

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define V PY_MINOR_VERSION

/* A plain field. */
static void req(const char *name, size_t value) {
    printf("%s %zu\n", name, value);
}
/* An optional field that this version has. */
static void some(const char *name, size_t value) {
    printf("%s Some(%zu)\n", name, value);
}
/* An optional field that this version lacks. */
static void none(const char *name) {
    printf("%s None\n", name);
}

/* Lowest set bit and width of a bit mask, as "shift:width". */
static void bits(const char *name, unsigned int mask) {
    int shift = 0, width = 0;
    if (mask == 0) {
        printf("%s none\n", name);
        return;
    }
    while (!(mask & 1u)) { mask >>= 1; shift++; }
    while (mask & 1u) { mask >>= 1; width++; }
    printf("%s %d:%d\n", name, shift, width);
}

/* Mask of the bits that FIELD occupies inside the 4-byte PyASCIIObject.state
 * word: set the field to all ones in a zeroed object and read the word. */
#define STATE_MASK(field, ones) __extension__ ({          \
    PyASCIIObject o_;                                      \
    unsigned int w_;                                       \
    memset(&o_, 0, sizeof o_);                             \
    o_.state.field = (ones);                               \
    memcpy(&w_, (char *)&o_ + offsetof(PyASCIIObject, state), sizeof w_); \
    w_; })

#ifndef PROBE_FACTS

/* The state word follows `hash` directly; checked here, since 3.11's
 * reader code historically computed it that way. */
_Static_assert(offsetof(PyASCIIObject, state) ==
               offsetof(PyASCIIObject, hash) + sizeof(Py_hash_t),
               "PyASCIIObject.state does not follow hash");
_Static_assert(offsetof(_PyInterpreterFrame, localsplus) + sizeof(void *) ==
               sizeof(_PyInterpreterFrame),
               "_PyInterpreterFrame is not localsplus + one slot");

int main(void) {
    /* _PyRuntimeState */
    some("runtime_interpreters_head", offsetof(_PyRuntimeState, interpreters.head));
#if V == 11
    some("runtime_tstate_current", offsetof(_PyRuntimeState, gilstate.tstate_current));
#else
    none("runtime_tstate_current");
#endif

    /* PyInterpreterState */
    req("interp_size", sizeof(PyInterpreterState));
    req("interp_next", offsetof(PyInterpreterState, next));
#if V >= 12
    some("interp_id", offsetof(PyInterpreterState, id));
#else
    none("interp_id");
#endif
    req("interp_threads_head", offsetof(PyInterpreterState, threads.head));
#if V == 11
    req("interp_modules", offsetof(PyInterpreterState, modules));
#else
    req("interp_modules", offsetof(PyInterpreterState, imports.modules));
#endif
#if V >= 12
    some("interp_ceval_gil", offsetof(PyInterpreterState, ceval.gil));
#else
    none("interp_ceval_gil");
#endif
#if V >= 13
    some("interp_gil_locked", offsetof(PyInterpreterState, _gil.locked));
    some("interp_gil_holder", offsetof(PyInterpreterState, _gil.last_holder));
#else
    none("interp_gil_locked");
    none("interp_gil_holder");
#endif

    /* struct _gil_runtime_state, through interp->ceval.gil (3.12 only, as
     * documented in offsets.rs; 3.13+ use the interp_gil_* fields). */
#if V == 12
    some("gil_locked", offsetof(struct _gil_runtime_state, locked));
    some("gil_last_holder", offsetof(struct _gil_runtime_state, last_holder));
#else
    none("gil_locked");
    none("gil_last_holder");
#endif

    /* The GIL's extent (its locks are what a thread waiting for it sleeps
     * on) and the collector's flag. 3.11 keeps the GIL in _PyRuntime;
     * 3.12+ reach it through interp->ceval.gil. */
#if V == 11
    some("runtime_ceval_gil", offsetof(_PyRuntimeState, ceval.gil));
#else
    none("runtime_ceval_gil");
#endif
    some("gil_size", sizeof(struct _gil_runtime_state));
    none("runtime_gc");
    some("interp_gc", offsetof(PyInterpreterState, gc));
    some("gc_collecting", offsetof(struct _gc_runtime_state, collecting));

    /* PyThreadState */
    req("tstate_size", sizeof(PyThreadState));
    req("tstate_next", offsetof(PyThreadState, next));
    req("tstate_interp", offsetof(PyThreadState, interp));
#if V >= 12
    some("tstate_status", offsetof(PyThreadState, _status));
#else
    none("tstate_status");
#endif
    none("tstate_frame");
#if V >= 13
    some("tstate_current_frame", offsetof(PyThreadState, current_frame));
    none("tstate_cframe");
    none("cframe_current_frame");
#else
    none("tstate_current_frame");
    some("tstate_cframe", offsetof(PyThreadState, cframe));
    some("cframe_current_frame", offsetof(_PyCFrame, current_frame));
#endif
    req("tstate_thread_id", offsetof(PyThreadState, thread_id));
    some("tstate_native_thread_id", offsetof(PyThreadState, native_thread_id));
    some("tstate_datastack_chunk", offsetof(PyThreadState, datastack_chunk));

    /* _PyInterpreterFrame */
    req("frame_size", sizeof(_PyInterpreterFrame));
    req("frame_previous", offsetof(_PyInterpreterFrame, previous));
#if V >= 13
    req("frame_executable", offsetof(_PyInterpreterFrame, f_executable));
    req("frame_instr_ptr", offsetof(_PyInterpreterFrame, instr_ptr));
#else
    req("frame_executable", offsetof(_PyInterpreterFrame, f_code));
    req("frame_instr_ptr", offsetof(_PyInterpreterFrame, prev_instr));
#endif
    req("frame_localsplus", offsetof(_PyInterpreterFrame, localsplus));
    /* 3.11 has `owner` too (values 0..2), so it is filled for every version. */
    some("frame_owner", offsetof(_PyInterpreterFrame, owner));
#if V == 11
    some("frame_is_entry", offsetof(_PyInterpreterFrame, is_entry));
#else
    none("frame_is_entry");
#endif

    /* PyCodeObject */
    req("code_size", sizeof(PyCodeObject));
    req("code_filename", offsetof(PyCodeObject, co_filename));
    req("code_name", offsetof(PyCodeObject, co_name));
    some("code_qualname", offsetof(PyCodeObject, co_qualname));
    req("code_linetable", offsetof(PyCodeObject, co_linetable));
    req("code_firstlineno", offsetof(PyCodeObject, co_firstlineno));
    req("code_argcount", offsetof(PyCodeObject, co_argcount));
    req("code_localsplusnames", offsetof(PyCodeObject, co_localsplusnames));
    some("code_localspluskinds", offsetof(PyCodeObject, co_localspluskinds));
    none("code_nlocals");
    some("code_code_adaptive", offsetof(PyCodeObject, co_code_adaptive));

    /* PyObject / PyTypeObject / PyHeapTypeObject */
    req("ob_type", offsetof(PyObject, ob_type));
    req("type_tp_name", offsetof(PyTypeObject, tp_name));
    req("type_tp_flags", offsetof(PyTypeObject, tp_flags));
    req("type_tp_basicsize", offsetof(PyTypeObject, tp_basicsize));
    req("type_tp_dictoffset", offsetof(PyTypeObject, tp_dictoffset));
    some("heap_type_cached_keys", offsetof(PyHeapTypeObject, ht_cached_keys));

    /* Containers and scalars */
    req("tuple_ob_size", offsetof(PyTupleObject, ob_base.ob_size));
    req("tuple_ob_item", offsetof(PyTupleObject, ob_item));
    req("list_ob_size", offsetof(PyListObject, ob_base.ob_size));
    req("list_ob_item", offsetof(PyListObject, ob_item));
    req("dict_ma_used", offsetof(PyDictObject, ma_used));
    some("dict_ma_keys", offsetof(PyDictObject, ma_keys));
    some("dict_ma_values", offsetof(PyDictObject, ma_values));
    none("dict_ma_mask");
    none("dict_ma_table");
    req("float_ob_fval", offsetof(PyFloatObject, ob_fval));
#if V == 11
    req("long_lv_tag", offsetof(PyLongObject, ob_base.ob_size));
    req("long_ob_digit", offsetof(PyLongObject, ob_digit));
#else
    req("long_lv_tag", offsetof(PyLongObject, long_value.lv_tag));
    req("long_ob_digit", offsetof(PyLongObject, long_value.ob_digit));
#endif
    none("int_ob_ival");
    req("bytes_ob_size", offsetof(PyBytesObject, ob_base.ob_size));
    req("bytes_ob_sval", offsetof(PyBytesObject, ob_sval));
    some("unicode_state", offsetof(PyASCIIObject, state));
    req("unicode_length", offsetof(PyASCIIObject, length));
    some("unicode_ascii_size", sizeof(PyASCIIObject));
    some("unicode_compact_size", sizeof(PyCompactUnicodeObject));
    none("unicode_str");
    none("unicode_char_size");
    req("module_md_dict", offsetof(PyModuleObject, md_dict));
    return 0;
}

#else /* PROBE_FACTS */

int main(void) {
    printf("version %s\n", PY_VERSION);
    printf("version_hex 0x%08x\n", (unsigned)PY_VERSION_HEX);

    /* Frame owner enum */
    printf("FRAME_OWNED_BY_THREAD %d\n", (int)FRAME_OWNED_BY_THREAD);
    printf("FRAME_OWNED_BY_GENERATOR %d\n", (int)FRAME_OWNED_BY_GENERATOR);
    printf("FRAME_OWNED_BY_FRAME_OBJECT %d\n", (int)FRAME_OWNED_BY_FRAME_OBJECT);
#if V == 12 || V == 13 || V == 14
    printf("FRAME_OWNED_BY_CSTACK %d\n", (int)FRAME_OWNED_BY_CSTACK);
#else
    printf("FRAME_OWNED_BY_CSTACK absent\n");
#endif
#if V >= 14
    printf("FRAME_OWNED_BY_INTERPRETER %d\n", (int)FRAME_OWNED_BY_INTERPRETER);
#else
    printf("FRAME_OWNED_BY_INTERPRETER absent\n");
#endif
    printf("frame_owner_sizeof %zu\n", sizeof(((_PyInterpreterFrame *)0)->owner));

    /* _PyStackRef tags (f_executable is a _PyStackRef from 3.14 on) */
#if V >= 14
    printf("stackref_sizeof %zu\n", sizeof(_PyStackRef));
    printf("Py_TAG_BITS %lu\n", (unsigned long)Py_TAG_BITS);
    printf("Py_TAG_REFCNT %lu\n", (unsigned long)Py_TAG_REFCNT);
    printf("Py_INT_TAG %lu\n", (unsigned long)Py_INT_TAG);
#  ifdef Py_TAG_INVALID
    printf("Py_TAG_INVALID %lu\n", (unsigned long)Py_TAG_INVALID);
#  endif
#endif

    /* PyASCIIObject.state bit-field positions inside the 32-bit word */
    printf("unicode_state_offset %zu\n", offsetof(PyASCIIObject, state));
    printf("unicode_state_sizeof %zu\n", sizeof(((PyASCIIObject *)0)->state));
    bits("state.interned", STATE_MASK(interned, 3));
    bits("state.kind", STATE_MASK(kind, 7));
    bits("state.compact", STATE_MASK(compact, 1));
    bits("state.ascii", STATE_MASK(ascii, 1));
#if V == 11
    bits("state.ready", STATE_MASK(ready, 1));
#else
    bits("state.statically_allocated", STATE_MASK(statically_allocated, 1));
#endif

    /* PyLongObject */
    printf("PyLong_SHIFT %d\n", (int)PyLong_SHIFT);
    printf("digit_sizeof %zu\n", sizeof(digit));
#if V >= 12
    printf("_PyLong_NON_SIZE_BITS %d\n", (int)_PyLong_NON_SIZE_BITS);
    printf("_PyLong_SIGN_MASK %d\n", (int)_PyLong_SIGN_MASK);
    printf("SIGN_ZERO %d\n", (int)SIGN_ZERO);
    printf("SIGN_NEGATIVE %d\n", (int)SIGN_NEGATIVE);
#endif

    /* Dict keys */
    printf("dk_refcnt %zu\n", offsetof(PyDictKeysObject, dk_refcnt));
    printf("dk_log2_size %zu\n", offsetof(PyDictKeysObject, dk_log2_size));
    printf("dk_log2_index_bytes %zu\n", offsetof(PyDictKeysObject, dk_log2_index_bytes));
    printf("dk_kind %zu\n", offsetof(PyDictKeysObject, dk_kind));
    printf("dk_version %zu\n", offsetof(PyDictKeysObject, dk_version));
    printf("dk_usable %zu\n", offsetof(PyDictKeysObject, dk_usable));
    printf("dk_nentries %zu\n", offsetof(PyDictKeysObject, dk_nentries));
    printf("dk_indices %zu\n", offsetof(PyDictKeysObject, dk_indices));
    printf("DICT_KEYS_GENERAL %d\n", (int)DICT_KEYS_GENERAL);
    printf("DICT_KEYS_UNICODE %d\n", (int)DICT_KEYS_UNICODE);
    printf("DICT_KEYS_SPLIT %d\n", (int)DICT_KEYS_SPLIT);
    printf("PyDictKeyEntry_sizeof %zu\n", sizeof(PyDictKeyEntry));
    printf("PyDictKeyEntry.me_hash %zu\n", offsetof(PyDictKeyEntry, me_hash));
    printf("PyDictKeyEntry.me_key %zu\n", offsetof(PyDictKeyEntry, me_key));
    printf("PyDictKeyEntry.me_value %zu\n", offsetof(PyDictKeyEntry, me_value));
    printf("PyDictUnicodeEntry_sizeof %zu\n", sizeof(PyDictUnicodeEntry));
    printf("PyDictUnicodeEntry.me_key %zu\n", offsetof(PyDictUnicodeEntry, me_key));
    printf("PyDictUnicodeEntry.me_value %zu\n", offsetof(PyDictUnicodeEntry, me_value));
    printf("SHARED_KEYS_MAX_SIZE %d\n", (int)SHARED_KEYS_MAX_SIZE);

    /* Dict values (split tables / managed instance dicts) */
    printf("PyDictValues.values %zu\n", offsetof(PyDictValues, values));
#if V >= 13
    printf("PyDictValues.capacity %zu\n", offsetof(PyDictValues, capacity));
    printf("PyDictValues.size %zu\n", offsetof(PyDictValues, size));
    printf("PyDictValues.embedded %zu\n", offsetof(PyDictValues, embedded));
    printf("PyDictValues.valid %zu\n", offsetof(PyDictValues, valid));
#endif
#if V >= 12
    printf("MANAGED_WEAKREF_OFFSET %ld\n", (long)MANAGED_WEAKREF_OFFSET);
#endif
#ifdef MANAGED_DICT_OFFSET
    printf("MANAGED_DICT_OFFSET %ld\n", (long)MANAGED_DICT_OFFSET);
#else
    /* 3.12 has no macro: _PyObject_DictOrValuesPointer() returns
     * ((PyDictOrValues *)obj) - 3. */
    printf("MANAGED_DICT_OFFSET(dict_or_values) %ld\n", -3L * (long)sizeof(PyDictOrValues));
#endif
#if V == 11
    /* _PyObject_ValuesPointer() returns ((PyDictValues **)obj) - 4. */
    printf("VALUES_POINTER_OFFSET %ld\n", -4L * (long)sizeof(PyDictValues *));
#endif
    printf("PyGC_Head_sizeof %zu\n", sizeof(PyGC_Head));

    /* Type flags */
    printf("Py_TPFLAGS_MANAGED_DICT 0x%lx\n", (unsigned long)Py_TPFLAGS_MANAGED_DICT);
#ifdef Py_TPFLAGS_MANAGED_WEAKREF
    printf("Py_TPFLAGS_MANAGED_WEAKREF 0x%lx\n", (unsigned long)Py_TPFLAGS_MANAGED_WEAKREF);
#endif
#ifdef Py_TPFLAGS_INLINE_VALUES
    printf("Py_TPFLAGS_INLINE_VALUES 0x%lx\n", (unsigned long)Py_TPFLAGS_INLINE_VALUES);
#endif
    printf("Py_TPFLAGS_HEAPTYPE 0x%lx\n", (unsigned long)Py_TPFLAGS_HEAPTYPE);
    printf("Py_TPFLAGS_HAVE_GC 0x%lx\n", (unsigned long)Py_TPFLAGS_HAVE_GC);
    printf("Py_TPFLAGS_LONG_SUBCLASS 0x%lx\n", (unsigned long)Py_TPFLAGS_LONG_SUBCLASS);
    printf("Py_TPFLAGS_LIST_SUBCLASS 0x%lx\n", (unsigned long)Py_TPFLAGS_LIST_SUBCLASS);
    printf("Py_TPFLAGS_TUPLE_SUBCLASS 0x%lx\n", (unsigned long)Py_TPFLAGS_TUPLE_SUBCLASS);
    printf("Py_TPFLAGS_BYTES_SUBCLASS 0x%lx\n", (unsigned long)Py_TPFLAGS_BYTES_SUBCLASS);
    printf("Py_TPFLAGS_UNICODE_SUBCLASS 0x%lx\n", (unsigned long)Py_TPFLAGS_UNICODE_SUBCLASS);
    printf("Py_TPFLAGS_DICT_SUBCLASS 0x%lx\n", (unsigned long)Py_TPFLAGS_DICT_SUBCLASS);
    printf("Py_TPFLAGS_BASE_EXC_SUBCLASS 0x%lx\n", (unsigned long)Py_TPFLAGS_BASE_EXC_SUBCLASS);
    printf("Py_TPFLAGS_TYPE_SUBCLASS 0x%lx\n", (unsigned long)Py_TPFLAGS_TYPE_SUBCLASS);

    /* Sizes the walker may want */
    printf("PyObject_sizeof %zu\n", sizeof(PyObject));
    printf("PyDictObject_sizeof %zu\n", sizeof(PyDictObject));
    printf("_Py_CODEUNIT_sizeof %zu\n", sizeof(_Py_CODEUNIT));
    printf("code._co_firsttraceable %zu\n", offsetof(PyCodeObject, _co_firsttraceable));
    printf("code.co_nlocalsplus %zu\n", offsetof(PyCodeObject, co_nlocalsplus));
    printf("code.co_flags %zu\n", offsetof(PyCodeObject, co_flags));
#if V >= 12
    printf("frame.f_funcobj %zu\n", offsetof(_PyInterpreterFrame, f_funcobj));
#else
    printf("frame.f_func %zu\n", offsetof(_PyInterpreterFrame, f_func));
#endif
#if V >= 14
    printf("frame.stackpointer %zu\n", offsetof(_PyInterpreterFrame, stackpointer));
#else
    printf("frame.stacktop %zu\n", offsetof(_PyInterpreterFrame, stacktop));
#endif
    printf("gil.locked %zu\n", offsetof(struct _gil_runtime_state, locked));
    printf("gil.last_holder %zu\n", offsetof(struct _gil_runtime_state, last_holder));
#if V == 11
    printf("runtime.ceval.gil.locked %zu\n", offsetof(_PyRuntimeState, ceval.gil.locked));
    printf("runtime.ceval.gil.last_holder %zu\n", offsetof(_PyRuntimeState, ceval.gil.last_holder));
#else
    printf("interp._gil.locked %zu\n", offsetof(PyInterpreterState, _gil.locked));
    printf("interp._gil.last_holder %zu\n", offsetof(PyInterpreterState, _gil.last_holder));
#endif
#if V >= 14
    printf("tstate.holds_gil %zu\n", offsetof(PyThreadState, holds_gil));
#endif
#if V == 13
    {   /* 3.13 keeps the flag in the _status bit-field word */
        PyThreadState t;
        unsigned int w;
        memset(&t, 0, sizeof t);
        t._status.holds_gil = 1;
        memcpy(&w, (char *)&t + offsetof(PyThreadState, _status), sizeof w);
        printf("tstate._status %zu\n", offsetof(PyThreadState, _status));
        bits("tstate._status.holds_gil", w);
    }
#endif
#if V >= 14 && !defined(Py_GIL_DISABLED)
    printf("PyStackRef_NULL_BITS %lu\n", (unsigned long)PyStackRef_NULL_BITS);
#endif
#if V >= 14 && defined(Py_GIL_DISABLED)
    /* free-threaded stack references: the deferred bit, and where a frame's
     * copy of the bytecode is picked */
    printf("Py_TAG_BITS %lu\n", (unsigned long)Py_TAG_BITS);
    printf("frame.tlbc_index %zu\n", offsetof(_PyInterpreterFrame, tlbc_index));
    printf("code.co_tlbc %zu\n", offsetof(PyCodeObject, co_tlbc));
    printf("_PyCodeArray.entries %zu\n", offsetof(_PyCodeArray, entries));
#endif
#if V >= 15
    printf("tstate.base_frame %zu\n", offsetof(PyThreadState, base_frame));
#endif
#if V >= 13
    printf("debug_offsets_sizeof %zu\n", sizeof(_Py_DebugOffsets));
    printf("debug_offsets_at_runtime_offset %zu\n", offsetof(_PyRuntimeState, debug_offsets));
#endif
    return 0;
}

#endif /* PROBE_FACTS */
