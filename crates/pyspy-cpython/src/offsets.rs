//! Byte offsets of the CPython structures the stack reader touches.
//!
//! One shape for every supported version: 3.13 and newer fill it from the
//! target's own `_Py_DebugOffsets` table (see `debug_offsets.rs`), 3.11 and
//! 3.12 take it from `generated.rs`, which a committed script produces by
//! compiling `offsetof()` probes against each version's headers. Field names
//! follow `_Py_DebugOffsets` so the two sources read alike. All offsets are
//! relative to the start of the named struct; sizes are the target's
//! `sizeof`. A field that a version does not have is `None`.

/// Offsets for one CPython version (64-bit Linux layouts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Offsets {
    // _PyRuntimeState
    /// `_PyRuntime.interpreters.head`.
    pub runtime_interpreters_head: usize,
    /// `_PyRuntime.gilstate.tstate_current` (3.11 only: the GIL holder's tstate).
    pub runtime_tstate_current: Option<usize>,

    // PyInterpreterState
    /// `sizeof(PyInterpreterState)`.
    pub interp_size: usize,
    /// `PyInterpreterState.next`.
    pub interp_next: usize,
    /// `PyInterpreterState.threads.head`.
    pub interp_threads_head: usize,
    /// `PyInterpreterState.modules` (3.11) or `.imports.modules` (3.12+).
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

    // PyThreadState
    /// `sizeof(PyThreadState)`.
    pub tstate_size: usize,
    /// `PyThreadState.next`.
    pub tstate_next: usize,
    /// `PyThreadState.interp`.
    pub tstate_interp: usize,
    /// `PyThreadState.current_frame` (3.13+).
    pub tstate_current_frame: Option<usize>,
    /// `PyThreadState.cframe` (3.11, 3.12: pointer to a `_PyCFrame`).
    pub tstate_cframe: Option<usize>,
    /// `_PyCFrame.current_frame` (3.11, 3.12).
    pub cframe_current_frame: Option<usize>,
    /// `PyThreadState.thread_id` (pthread_t).
    pub tstate_thread_id: usize,
    /// `PyThreadState.native_thread_id` (OS tid).
    pub tstate_native_thread_id: usize,
    /// `PyThreadState.datastack_chunk`.
    pub tstate_datastack_chunk: usize,

    // _PyInterpreterFrame
    /// `sizeof(_PyInterpreterFrame)` (without the trailing `localsplus`).
    pub frame_size: usize,
    /// `_PyInterpreterFrame.previous`.
    pub frame_previous: usize,
    /// `_PyInterpreterFrame.f_code` (3.11, 3.12) or `.f_executable` (3.13+).
    pub frame_executable: usize,
    /// `_PyInterpreterFrame.prev_instr` (3.11, 3.12) or `.instr_ptr` (3.13+).
    pub frame_instr_ptr: usize,
    /// `_PyInterpreterFrame.localsplus`.
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
    /// `PyCodeObject.co_qualname`.
    pub code_qualname: usize,
    /// `PyCodeObject.co_linetable`.
    pub code_linetable: usize,
    /// `PyCodeObject.co_firstlineno` (an `int`).
    pub code_firstlineno: usize,
    /// `PyCodeObject.co_argcount` (an `int`).
    pub code_argcount: usize,
    /// `PyCodeObject.co_localsplusnames` (a tuple of str).
    pub code_localsplusnames: usize,
    /// `PyCodeObject.co_localspluskinds` (a bytes object).
    pub code_localspluskinds: usize,
    /// `PyCodeObject.co_code_adaptive` (start of the bytecode).
    pub code_code_adaptive: usize,

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
    /// `PyHeapTypeObject.ht_cached_keys` (shared keys of split instance dicts).
    pub heap_type_cached_keys: usize,

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
    /// `PyDictObject.ma_keys`.
    pub dict_ma_keys: usize,
    /// `PyDictObject.ma_values`.
    pub dict_ma_values: usize,
    /// `PyFloatObject.ob_fval`.
    pub float_ob_fval: usize,
    /// `PyLongObject.long_value.lv_tag` (3.12+) or `ob_size` (3.11).
    pub long_lv_tag: usize,
    /// `PyLongObject.long_value.ob_digit` (3.12+) or `ob_digit` (3.11).
    pub long_ob_digit: usize,
    /// `PyBytesObject.ob_size`.
    pub bytes_ob_size: usize,
    /// `PyBytesObject.ob_sval`.
    pub bytes_ob_sval: usize,
    /// `PyASCIIObject.state` (the bit-field word).
    pub unicode_state: usize,
    /// `PyASCIIObject.length`.
    pub unicode_length: usize,
    /// `sizeof(PyASCIIObject)`: where compact ASCII data starts.
    pub unicode_ascii_size: usize,
    /// `sizeof(PyCompactUnicodeObject)`: where compact non-ASCII data starts.
    pub unicode_compact_size: usize,
    /// `PyModuleObject.md_dict`.
    pub module_md_dict: usize,
}
