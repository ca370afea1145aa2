/*
 * offsets-probe-legacy.c: prints CPython struct offsets for 2.7 and 3.6 to
 * 3.10, the versions whose threads run `PyFrameObject`s.
 *
 * The counterpart of offsets-probe.c (3.11+): compiled by generate-offsets.sh
 * against one version's headers with -DPy_BUILD_CORE, it prints the same
 * `Offsets` fields in the same order, "<field> <rust expression>", so both
 * feed one table shape. Every value is a compile-time offsetof()/sizeof() or
 * macro value from the headers, except the few structs no installed header
 * declares, which are marked "not in the headers" below and explained there.
 * Fields a version lacks print `None`. With -DPROBE_FACTS it prints the layout
 * facts the reader relies on beyond offsets (see LAYOUT_NOTES.md).
 *
 * Where each struct lives:
 *   _PyRuntimeState     3.7 internal/pystate.h, 3.8 internal/pycore_pystate.h,
 *                       3.9+ internal/pycore_runtime.h; none before 3.7
 *                       (the interpreter list is the static `interp_head`)
 *   PyInterpreterState  pystate.h up to 3.7, internal/pycore_pystate.h in 3.8,
 *                       internal/pycore_interp.h from 3.9
 *   PyThreadState       pystate.h (cpython/pystate.h from 3.8)
 *   PyFrameObject       frameobject.h (cpython/frameobject.h in 3.10)
 *   PyCodeObject        code.h (cpython/code.h from 3.8)
 *
 * 64-bit Linux, default builds only.
 */
#include "Python.h"

#if !(PY_MAJOR_VERSION == 2 && PY_MINOR_VERSION == 7) && \
    !(PY_MAJOR_VERSION == 3 && PY_MINOR_VERSION >= 6 && PY_MINOR_VERSION <= 10)
#  error "offsets-probe-legacy.c knows CPython 2.7 and 3.6 to 3.10 only"
#endif

#include "code.h"
#include "frameobject.h"
#include "longintrepr.h"

#if PY_MAJOR_VERSION == 3 && PY_MINOR_VERSION == 7
#  include "internal/pystate.h"
#elif PY_MAJOR_VERSION == 3 && PY_MINOR_VERSION == 8
#  include "internal/pycore_pystate.h"
#elif PY_MAJOR_VERSION == 3 && PY_MINOR_VERSION >= 9
#  include "internal/pycore_runtime.h"
#  include "internal/pycore_interp.h"
#endif
#if PY_MAJOR_VERSION == 3 && PY_MINOR_VERSION >= 10
#  include "internal/pycore_moduleobject.h"
#endif

#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* V: 27 for 2.7, else the 3.x minor (6..10). */
#if PY_MAJOR_VERSION == 2
#  define V 27
#  define PY2 1
#else
#  define V PY_MINOR_VERSION
#  define PY2 0
#endif

/* PyVarObject's ob_size: a direct member in 2.7, inside ob_base in 3.x. */
#if PY2
#  define OB_SIZE ob_size
#else
#  define OB_SIZE ob_base.ob_size
#endif

static void req(const char *name, size_t value) {
    printf("%s %zu\n", name, value);
}
static void some(const char *name, size_t value) {
    printf("%s Some(%zu)\n", name, value);
}
static void none(const char *name) {
    printf("%s None\n", name);
}

/* Not in the headers before 3.10 (Objects/moduleobject.c keeps it private):
 * PyModuleObject is PyObject_HEAD followed by `PyObject *md_dict`, in every
 * version, so md_dict sits right after the object header. */
#if V == 27 || V < 10
typedef struct {
    PyObject_HEAD
    PyObject *md_dict;
} probe_module_head;
#  define MODULE_MD_DICT offsetof(probe_module_head, md_dict)
#else
#  define MODULE_MD_DICT offsetof(PyModuleObject, md_dict)
#endif

#ifndef PROBE_FACTS

int main(void) {
    /* _PyRuntimeState (3.7+) */
#if PY2 || V == 6
    none("runtime_interpreters_head");
    none("runtime_tstate_current");
#else
    some("runtime_interpreters_head", offsetof(_PyRuntimeState, interpreters.head));
    some("runtime_tstate_current", offsetof(_PyRuntimeState, gilstate.tstate_current));
#endif

    /* PyInterpreterState */
    req("interp_size", sizeof(PyInterpreterState));
    req("interp_next", offsetof(PyInterpreterState, next));
    none("interp_id");
    req("interp_threads_head", offsetof(PyInterpreterState, tstate_head));
    req("interp_modules", offsetof(PyInterpreterState, modules));
    none("interp_ceval_gil");
    none("interp_gil_locked");
    none("interp_gil_holder");
    none("gil_locked");
    none("gil_last_holder");

    /* The GIL and the collector's flag (3.7+ keep both in _PyRuntime; the
     * collector moves to the interpreter in 3.9). Before 3.7 they are
     * static variables: discover.rs finds them by symbol. */
#if PY2 || V == 6
    none("runtime_ceval_gil");
    none("gil_size");
    none("runtime_gc");
    none("interp_gc");
    none("gc_collecting");
#else
    some("runtime_ceval_gil", offsetof(_PyRuntimeState, ceval.gil));
    some("gil_size", sizeof(struct _gil_runtime_state));
#  if V <= 8
    some("runtime_gc", offsetof(_PyRuntimeState, gc));
    none("interp_gc");
#  else
    none("runtime_gc");
    some("interp_gc", offsetof(PyInterpreterState, gc));
#  endif
    some("gc_collecting", offsetof(struct _gc_runtime_state, collecting));
#endif

    /* PyThreadState */
    req("tstate_size", sizeof(PyThreadState));
    req("tstate_next", offsetof(PyThreadState, next));
    req("tstate_interp", offsetof(PyThreadState, interp));
    none("tstate_status");
    some("tstate_frame", offsetof(PyThreadState, frame));
    none("tstate_current_frame");
    none("tstate_cframe");
    none("cframe_current_frame");
    req("tstate_thread_id", offsetof(PyThreadState, thread_id));
    none("tstate_native_thread_id");
    none("tstate_datastack_chunk");

    /* PyFrameObject */
    req("frame_size", sizeof(PyFrameObject));
    req("frame_previous", offsetof(PyFrameObject, f_back));
    req("frame_executable", offsetof(PyFrameObject, f_code));
    req("frame_instr_ptr", offsetof(PyFrameObject, f_lasti));
    req("frame_localsplus", offsetof(PyFrameObject, f_localsplus));
    none("frame_owner");
    none("frame_is_entry");

    /* PyCodeObject */
    req("code_size", sizeof(PyCodeObject));
    req("code_filename", offsetof(PyCodeObject, co_filename));
    req("code_name", offsetof(PyCodeObject, co_name));
    none("code_qualname");
#if V == 10
    req("code_linetable", offsetof(PyCodeObject, co_linetable));
#else
    req("code_linetable", offsetof(PyCodeObject, co_lnotab));
#endif
    req("code_firstlineno", offsetof(PyCodeObject, co_firstlineno));
    req("code_argcount", offsetof(PyCodeObject, co_argcount));
    req("code_localsplusnames", offsetof(PyCodeObject, co_varnames));
    none("code_localspluskinds");
    some("code_nlocals", offsetof(PyCodeObject, co_nlocals));
    none("code_code_adaptive");

    /* PyObject / PyTypeObject / PyHeapTypeObject */
    req("ob_type", offsetof(PyObject, ob_type));
    req("type_tp_name", offsetof(PyTypeObject, tp_name));
    req("type_tp_flags", offsetof(PyTypeObject, tp_flags));
    req("type_tp_basicsize", offsetof(PyTypeObject, tp_basicsize));
    req("type_tp_dictoffset", offsetof(PyTypeObject, tp_dictoffset));
#if PY2
    none("heap_type_cached_keys");
#else
    some("heap_type_cached_keys", offsetof(PyHeapTypeObject, ht_cached_keys));
#endif

    /* Containers and scalars */
    req("tuple_ob_size", offsetof(PyTupleObject, OB_SIZE));
    req("tuple_ob_item", offsetof(PyTupleObject, ob_item));
    req("list_ob_size", offsetof(PyListObject, OB_SIZE));
    req("list_ob_item", offsetof(PyListObject, ob_item));
    req("dict_ma_used", offsetof(PyDictObject, ma_used));
#if PY2
    none("dict_ma_keys");
    none("dict_ma_values");
    some("dict_ma_mask", offsetof(PyDictObject, ma_mask));
    some("dict_ma_table", offsetof(PyDictObject, ma_table));
#else
    some("dict_ma_keys", offsetof(PyDictObject, ma_keys));
    some("dict_ma_values", offsetof(PyDictObject, ma_values));
    none("dict_ma_mask");
    none("dict_ma_table");
#endif
    req("float_ob_fval", offsetof(PyFloatObject, ob_fval));
    req("long_lv_tag", offsetof(PyLongObject, OB_SIZE));
    req("long_ob_digit", offsetof(PyLongObject, ob_digit));
#if PY2
    some("int_ob_ival", offsetof(PyIntObject, ob_ival));
    req("bytes_ob_size", offsetof(PyStringObject, ob_size));
    req("bytes_ob_sval", offsetof(PyStringObject, ob_sval));
    none("unicode_state");
    req("unicode_length", offsetof(PyUnicodeObject, length));
    none("unicode_ascii_size");
    none("unicode_compact_size");
    some("unicode_str", offsetof(PyUnicodeObject, str));
    some("unicode_char_size", Py_UNICODE_SIZE);
#else
    none("int_ob_ival");
    req("bytes_ob_size", offsetof(PyBytesObject, OB_SIZE));
    req("bytes_ob_sval", offsetof(PyBytesObject, ob_sval));
    some("unicode_state", offsetof(PyASCIIObject, state));
    req("unicode_length", offsetof(PyASCIIObject, length));
    some("unicode_ascii_size", sizeof(PyASCIIObject));
    some("unicode_compact_size", sizeof(PyCompactUnicodeObject));
    none("unicode_str");
    none("unicode_char_size");
#endif
    req("module_md_dict", MODULE_MD_DICT);
    return 0;
}

#else /* PROBE_FACTS */

#if !PY2
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

#define STATE_MASK(field, ones) __extension__ ({          \
    PyASCIIObject o_;                                      \
    unsigned int w_;                                       \
    memset(&o_, 0, sizeof o_);                             \
    o_.state.field = (ones);                               \
    memcpy(&w_, (char *)&o_ + offsetof(PyASCIIObject, state), sizeof w_); \
    w_; })
#endif

int main(void) {
    printf("version %s\n", PY_VERSION);
    printf("version_hex 0x%08x\n", (unsigned)PY_VERSION_HEX);
    printf("PyLong_SHIFT %d\n", (int)PyLong_SHIFT);
    printf("digit_sizeof %zu\n", sizeof(digit));
    printf("f_lasti_sizeof %zu\n", sizeof(((PyFrameObject *)0)->f_lasti));
    printf("thread_id_sizeof %zu\n", sizeof(((PyThreadState *)0)->thread_id));
    printf("co_firstlineno_sizeof %zu\n", sizeof(((PyCodeObject *)0)->co_firstlineno));
    printf("PyDictObject_sizeof %zu\n", sizeof(PyDictObject));
    printf("PyObject_sizeof %zu\n", sizeof(PyObject));
    printf("Py_TPFLAGS_HEAPTYPE 0x%lx\n", (unsigned long)Py_TPFLAGS_HEAPTYPE);
#if PY2
    printf("PyDictEntry_sizeof %zu\n", sizeof(PyDictEntry));
    printf("PyDictEntry.me_hash %zu\n", offsetof(PyDictEntry, me_hash));
    printf("PyDictEntry.me_key %zu\n", offsetof(PyDictEntry, me_key));
    printf("PyDictEntry.me_value %zu\n", offsetof(PyDictEntry, me_value));
    printf("PyDict_MINSIZE %d\n", (int)PyDict_MINSIZE);
    printf("PyStringObject.ob_shash %zu\n", offsetof(PyStringObject, ob_shash));
    printf("PyStringObject.ob_sstate %zu\n", offsetof(PyStringObject, ob_sstate));
    printf("Py_UNICODE_SIZE %d\n", (int)Py_UNICODE_SIZE);
    printf("PyUnicodeObject.hash %zu\n", offsetof(PyUnicodeObject, hash));
    printf("Py_TPFLAGS_INT_SUBCLASS 0x%lx\n", (unsigned long)Py_TPFLAGS_INT_SUBCLASS);
#else
    printf("PyDictObject.ma_version_tag %zu\n", offsetof(PyDictObject, ma_version_tag));
    printf("unicode_state_sizeof %zu\n", sizeof(((PyASCIIObject *)0)->state));
    bits("state.interned", STATE_MASK(interned, 3));
    bits("state.kind", STATE_MASK(kind, 7));
    bits("state.compact", STATE_MASK(compact, 1));
    bits("state.ascii", STATE_MASK(ascii, 1));
    bits("state.ready", STATE_MASK(ready, 1));
    printf("PyASCIIObject.wstr %zu\n", offsetof(PyASCIIObject, wstr));
#endif
#if V == 10
    printf("frame.f_state %zu\n", offsetof(PyFrameObject, f_state));
#endif
#if !PY2 && V >= 7
    printf("gilstate.autoInterpreterState %zu\n",
           offsetof(_PyRuntimeState, gilstate.autoInterpreterState));
    printf("interpreters.main %zu\n", offsetof(_PyRuntimeState, interpreters.main));
#endif
    return 0;
}

#endif /* PROBE_FACTS */
