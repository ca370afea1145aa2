//! Byte offsets of the CPython structures the stack reader touches.
//!
//! One shape for every supported version: 3.13 and newer fill it from the
//! target's own `_Py_DebugOffsets` table (see `debug_offsets.rs`), 2.7 and
//! 3.6–3.12 take it from `generated.rs`, which a committed script produces by
//! compiling `offsetof()` probes against each version's headers. Field names
//! follow `_Py_DebugOffsets` so the two sources read alike; before 3.11 some
//! name the older struct that plays the same part (a `PyFrameObject` instead
//! of a `_PyInterpreterFrame`, `co_lnotab` instead of `co_linetable`), as
//! each field's comment says. All offsets are relative to the start of the
//! named struct; sizes are the target's `sizeof`. A field that a version does
//! not have is `None`.

/// Offsets for one CPython version (64-bit Linux layouts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Offsets {
    // _PyRuntimeState
    /// `_PyRuntime.interpreters.head` (3.7+; before, the static `interp_head`).
    pub runtime_interpreters_head: Option<usize>,
    /// `_PyRuntime.gilstate.tstate_current` (3.7–3.11: the GIL holder's
    /// tstate; before 3.7 the global `_PyThreadState_Current` plays its part).
    pub runtime_tstate_current: Option<usize>,

    // PyInterpreterState
    /// `sizeof(PyInterpreterState)`.
    pub interp_size: usize,
    /// `PyInterpreterState.next`.
    pub interp_next: usize,
    /// `PyInterpreterState.id` (an `int64_t`; 0 for the main interpreter;
    /// 3.12+, where every interpreter in the list is read).
    pub interp_id: Option<usize>,
    /// `PyInterpreterState.threads.head` (`.tstate_head` before 3.11).
    pub interp_threads_head: usize,
    /// `PyInterpreterState.modules` (up to 3.11) or `.imports.modules` (3.12+).
    pub interp_modules: usize,
    /// `PyInterpreterState.ceval.gil` (3.12+: pointer to the GIL in use).
    pub interp_ceval_gil: Option<usize>,
    /// `PyInterpreterState._gil.locked` (3.13+, relative to the interpreter).
    pub interp_gil_locked: Option<usize>,
    /// `PyInterpreterState._gil.last_holder` (3.13+, relative to the interpreter).
    pub interp_gil_holder: Option<usize>,

    // struct _gil_runtime_state (3.12, reached through `interp_ceval_gil`)
    /// `_gil_runtime_state.locked`.
    pub gil_locked: Option<usize>,
    /// `_gil_runtime_state.last_holder`.
    pub gil_last_holder: Option<usize>,
    /// `_PyRuntime.ceval.gil` (3.7–3.11: the GIL itself, inside the runtime;
    /// 3.12+ reach it through `interp_ceval_gil`).
    pub runtime_ceval_gil: Option<usize>,
    /// `sizeof(struct _gil_runtime_state)` (3.7+): a thread blocked on a
    /// lock inside these bytes is waiting for the GIL.
    pub gil_size: Option<usize>,

    // struct _gc_runtime_state
    /// `_PyRuntime.gc` (3.7, 3.8).
    pub runtime_gc: Option<usize>,
    /// `PyInterpreterState.gc` (3.9+).
    pub interp_gc: Option<usize>,
    /// `_gc_runtime_state.collecting` (3.7+): non-zero while a collection runs.
    pub gc_collecting: Option<usize>,

    // PyThreadState
    /// `sizeof(PyThreadState)`.
    pub tstate_size: usize,
    /// `PyThreadState.next`.
    pub tstate_next: usize,
    /// `PyThreadState.interp`.
    pub tstate_interp: usize,
    /// `PyThreadState._status` (3.12+: a word of bit-fields; see
    /// `Flavor::bound_gilstate_bit`).
    pub tstate_status: Option<usize>,
    /// `PyThreadState.frame` (up to 3.10: the innermost `PyFrameObject`).
    pub tstate_frame: Option<usize>,
    /// `PyThreadState.current_frame` (3.13+).
    pub tstate_current_frame: Option<usize>,
    /// `PyThreadState.cframe` (3.11, 3.12: pointer to a `_PyCFrame`).
    pub tstate_cframe: Option<usize>,
    /// `_PyCFrame.current_frame` (3.11, 3.12).
    pub cframe_current_frame: Option<usize>,
    /// `PyThreadState.thread_id` (pthread_t).
    pub tstate_thread_id: usize,
    /// `PyThreadState.native_thread_id` (OS tid; 3.11+).
    pub tstate_native_thread_id: Option<usize>,
    /// `PyThreadState.datastack_chunk` (3.11+).
    pub tstate_datastack_chunk: Option<usize>,

    // _PyInterpreterFrame (3.11+) or PyFrameObject (up to 3.10)
    /// `sizeof(_PyInterpreterFrame)` (3.11+), `sizeof(PyFrameObject)` before
    /// (both count one `localsplus` slot).
    pub frame_size: usize,
    /// `_PyInterpreterFrame.previous`; `PyFrameObject.f_back`.
    pub frame_previous: usize,
    /// `_PyInterpreterFrame.f_code` (3.11, 3.12) or `.f_executable` (3.13+);
    /// `PyFrameObject.f_code`.
    pub frame_executable: usize,
    /// `_PyInterpreterFrame.prev_instr` (3.11, 3.12) or `.instr_ptr` (3.13+);
    /// before 3.11 `PyFrameObject.f_lasti`, an `int` (see `Flavor::lasti`).
    pub frame_instr_ptr: usize,
    /// `_PyInterpreterFrame.localsplus`; `PyFrameObject.f_localsplus`.
    pub frame_localsplus: usize,
    /// `_PyInterpreterFrame.owner` (3.12+; a `char`).
    pub frame_owner: Option<usize>,
    /// `_PyInterpreterFrame.is_entry` (3.11 only; a `bool`).
    pub frame_is_entry: Option<usize>,

    // PyCodeObject
    /// `sizeof(PyCodeObject)`.
    pub code_size: usize,
    /// `PyCodeObject.co_filename`.
    pub code_filename: usize,
    /// `PyCodeObject.co_name`.
    pub code_name: usize,
    /// `PyCodeObject.co_qualname` (3.11+).
    pub code_qualname: Option<usize>,
    /// `PyCodeObject.co_linetable` (3.10+), `.co_lnotab` before.
    pub code_linetable: usize,
    /// `PyCodeObject.co_firstlineno` (an `int`).
    pub code_firstlineno: usize,
    /// `PyCodeObject.co_argcount` (an `int`).
    pub code_argcount: usize,
    /// `PyCodeObject.co_localsplusnames` (a tuple of str; 3.11+), or
    /// `co_varnames` before (names of the first `co_nlocals` slots).
    pub code_localsplusnames: usize,
    /// `PyCodeObject.co_localspluskinds` (a bytes object; 3.11+).
    pub code_localspluskinds: Option<usize>,
    /// `PyCodeObject.co_nlocals` (an `int`; up to 3.10).
    pub code_nlocals: Option<usize>,
    /// `PyCodeObject.co_code_adaptive` (start of the bytecode; 3.11+).
    pub code_code_adaptive: Option<usize>,

    // PyObject / PyTypeObject / PyHeapTypeObject
    /// `PyObject.ob_type`.
    pub ob_type: usize,
    /// `PyTypeObject.tp_name` (a `const char *`).
    pub type_tp_name: usize,
    /// `PyTypeObject.tp_flags` (an `unsigned long`).
    pub type_tp_flags: usize,
    /// `PyTypeObject.tp_basicsize`.
    pub type_tp_basicsize: usize,
    /// `PyTypeObject.tp_dictoffset`.
    pub type_tp_dictoffset: usize,
    /// `PyHeapTypeObject.ht_cached_keys` (shared keys of split instance
    /// dicts; 3.x).
    pub heap_type_cached_keys: Option<usize>,

    // Containers and scalars
    /// `PyTupleObject.ob_size` (from `PyVarObject`).
    pub tuple_ob_size: usize,
    /// `PyTupleObject.ob_item`.
    pub tuple_ob_item: usize,
    /// `PyListObject.ob_size`.
    pub list_ob_size: usize,
    /// `PyListObject.ob_item` (a pointer to the item array).
    pub list_ob_item: usize,
    /// `PyDictObject.ma_used`.
    pub dict_ma_used: usize,
    /// `PyDictObject.ma_keys` (3.x).
    pub dict_ma_keys: Option<usize>,
    /// `PyDictObject.ma_values` (3.x).
    pub dict_ma_values: Option<usize>,
    /// `PyDictObject.ma_mask` (2.7: slots - 1).
    pub dict_ma_mask: Option<usize>,
    /// `PyDictObject.ma_table` (2.7: the `PyDictEntry` array).
    pub dict_ma_table: Option<usize>,
    /// `PyFloatObject.ob_fval`.
    pub float_ob_fval: usize,
    /// `PyLongObject.long_value.lv_tag` (3.12+) or `ob_size` (3.11).
    pub long_lv_tag: usize,
    /// `PyLongObject.long_value.ob_digit` (3.12+) or `ob_digit` (up to 3.11).
    pub long_ob_digit: usize,
    /// `PyIntObject.ob_ival` (2.7: a C `long`).
    pub int_ob_ival: Option<usize>,
    /// `PyBytesObject.ob_size` (2.7: `PyStringObject.ob_size`).
    pub bytes_ob_size: usize,
    /// `PyBytesObject.ob_sval` (2.7: `PyStringObject.ob_sval`).
    pub bytes_ob_sval: usize,
    /// `PyASCIIObject.state` (the bit-field word; 3.x).
    pub unicode_state: Option<usize>,
    /// `PyASCIIObject.length` (2.7: `PyUnicodeObject.length`).
    pub unicode_length: usize,
    /// `sizeof(PyASCIIObject)`: where compact ASCII data starts (3.x).
    pub unicode_ascii_size: Option<usize>,
    /// `sizeof(PyCompactUnicodeObject)`: where compact non-ASCII data starts (3.x).
    pub unicode_compact_size: Option<usize>,
    /// `PyUnicodeObject.str` (2.7: pointer to the `Py_UNICODE` array).
    pub unicode_str: Option<usize>,
    /// `Py_UNICODE_SIZE` (2.7: 2 or 4, a build option; see `Flavor`).
    pub unicode_char_size: Option<usize>,
    /// `PyModuleObject.md_dict`.
    pub module_md_dict: usize,
}
