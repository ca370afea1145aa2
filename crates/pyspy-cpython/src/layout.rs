//! Everything the reader needs to know about one target's CPython: its
//! version, struct offsets, and the version facts no offset table carries.

use crate::{Offsets, Version};

/// What a version does that is semantics rather than offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flavor {
    /// `_PyInterpreterFrame.owner` value of C-stack shim/entry frames, which
    /// hold no Python code of their own (3.12+).
    pub owner_cstack: Option<u8>,
    /// `owner` value of interpreter-owned base/entry frames (3.14+).
    pub owner_interpreter: Option<u8>,
    /// `PyLongObject` keeps sign and size in `lv_tag` (3.12+) rather than a
    /// signed `ob_size` (3.11).
    pub long_lv_tag: bool,
    /// How instance `__dict__`s are stored (see `dict.rs`).
    pub managed_dict: ManagedDict,
    /// Offset of the value array inside `PyDictValues`.
    pub dict_values_array: usize,
    /// What a thread's frames are.
    pub frames: Frames,
    /// How a code object maps instructions to lines.
    pub line_table: LineTable,
    /// How dicts are laid out (see `dict.rs`).
    pub dict: DictKind,
    /// Python 2: `str` is a byte string (`PyStringObject`), text is
    /// `unicode` (`PyUnicodeObject`), small integers are `PyIntObject`.
    pub py2: bool,
    /// The instance attribute that holds a `threading.Thread`'s name
    /// (`_Thread__name` on 2.7, where `self.__name` is name-mangled).
    pub thread_name_attr: &'static str,
    /// Built without the GIL (`--disable-gil`, 3.13t): object headers are
    /// 16 bytes longer (offsets say so), the managed dict pointer sits at
    /// `obj - 8` (no GC pre-header), and the GIL is used only when enabled
    /// at run time (`PYTHON_GIL=1`).
    pub free_threaded: bool,
    /// Bit of `PyThreadState._status` set on the thread state its OS thread
    /// uses now (`bound_gilstate`, 3.12+): of the thread states one OS thread
    /// has in several interpreters, the others wait for it to come back.
    pub bound_gilstate_bit: Option<u32>,
    /// Bit of `PyThreadState._status` set while the thread is attached to
    /// its interpreter (`active`, 3.12+): set on attaching, cleared on
    /// detaching (a blocking call, a GIL hand-off, a stop-the-world pause).
    /// Without a GIL it is what says a thread runs Python.
    pub active_bit: Option<u32>,
}

/// What `PyThreadState` points at for its innermost frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frames {
    /// `_PyInterpreterFrame`s, linked by `previous` (3.11+).
    Interpreter,
    /// `PyFrameObject`s, linked by `f_back`, with the position as the `int`
    /// `f_lasti` (up to 3.10).
    Object,
}

/// The line-number table of a code object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineTable {
    /// `co_lnotab` (up to 3.9): (bytecode delta, line delta) byte pairs,
    /// `f_lasti` in bytes; the line delta is signed from 3.6 on.
    Lnotab {
        /// Line deltas are `i8` (3.6+), not `u8` (2.7).
        signed: bool,
    },
    /// 3.10's `co_linetable` (PEP 626): (byte delta, `i8` line delta) pairs,
    /// -128 for "no line"; `f_lasti` counts 2-byte code units.
    Pep626,
    /// The 3.11+ location table (see `linetable.rs`).
    Locations,
}

/// How a `dict` stores its entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DictKind {
    /// 2.7: an open-addressing table of `PyDictEntry` (hash, key, value),
    /// `ma_mask + 1` slots at `ma_table`.
    Table27,
    /// 3.6–3.10: `ma_keys` points at a `PyDictKeysObject` whose entries
    /// follow its index array; split tables keep values in `ma_values`.
    Compact36,
    /// 3.11+: the `PyDictKeysObject` of LAYOUT_NOTES.md §6.
    Compact311,
}

/// Where a `Py_TPFLAGS_MANAGED_DICT` object keeps its attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManagedDict {
    /// Before 3.11 there are no managed dicts (and bit 4 of `tp_flags`
    /// means something else): only `tp_dictoffset`.
    None,
    /// 3.11: dict pointer at `obj - 24`, values pointer at `obj - 32`.
    V311,
    /// 3.12: a tagged dict-or-values word at `obj - 24` (low bit set: the
    /// values array minus one byte).
    V312,
    /// 3.13+: dict pointer at `obj - 24`; without a dict, the values sit
    /// inline at `obj + tp_basicsize` when the type has `INLINE_VALUES`.
    V313,
}

impl Flavor {
    /// Distance below an object of its managed dict pointer (3.11+).
    pub fn managed_dict_offset(&self) -> usize {
        if self.free_threaded {
            8
        } else {
            24
        }
    }
}

/// `Py_TPFLAGS_INLINE_VALUES` (3.13+).
pub const TPFLAGS_INLINE_VALUES: u64 = 1 << 2;
/// `Py_TPFLAGS_MANAGED_DICT` (3.11+).
pub const TPFLAGS_MANAGED_DICT: u64 = 1 << 4;

/// The full description of a target interpreter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// The target's version.
    pub version: Version,
    /// Struct offsets.
    pub offsets: Offsets,
    /// Semantics.
    pub flavor: Flavor,
    /// Before 3.11 (no `native_thread_id`): where the C library keeps the
    /// kernel thread id inside the thread descriptor a `pthread_t` points
    /// at, when [`crate::find_interpreter`] found and checked it (glibc
    /// x86_64: `struct pthread.tid` at 0x2d0) against the target's threads.
    pub pthread_tid: Option<usize>,
    /// 3.14+: `PyInterpreterState._code_object_generation` (bumped each
    /// time a code object is freed), from the target's debug offsets.
    pub code_generation: Option<usize>,
    /// Free-threaded builds: offset of the GIL's `enabled` counter (an
    /// `int`: 0 while the GIL is off) inside the GIL struct.
    pub gil_enabled: Option<usize>,
    /// Free-threaded 3.14+: where a frame's bytecode copy is picked.
    pub tlbc: Option<Tlbc>,
}

/// Thread-local bytecode (free-threaded 3.14+): a thread may run its own
/// copy of a code object's bytecode, so a frame's instruction pointer is an
/// offset into `co_tlbc->entries[frame.tlbc_index]` (index 0 is the code
/// object's own `co_code_adaptive`), not into the code object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlbc {
    /// `_PyInterpreterFrame.tlbc_index` (an `int32_t`).
    pub frame_index: usize,
    /// `PyCodeObject.co_tlbc` (a `_PyCodeArray *`: `Py_ssize_t size`, then
    /// `char *entries[size]`).
    pub code_array: usize,
}

impl Flavor {
    /// The facts for a version, or `None` when this reader does not know it
    /// (2.7, 3.6 and newer are known). Versions newer than the newest known
    /// one reuse its facts: 3.13+ offsets come from the target itself, so
    /// only these need to hold.
    pub fn for_version(v: Version) -> Option<Flavor> {
        let modern = Flavor {
            owner_cstack: None,
            owner_interpreter: None,
            long_lv_tag: true,
            managed_dict: ManagedDict::V313,
            dict_values_array: 8,
            frames: Frames::Interpreter,
            line_table: LineTable::Locations,
            dict: DictKind::Compact311,
            py2: false,
            thread_name_attr: "_name",
            free_threaded: false,
            // Bit 3 in 3.12–3.15 (`cpython/pystate.h`).
            bound_gilstate_bit: Some(3),
            // Bit 4 in 3.12–3.15 (`cpython/pystate.h`).
            active_bit: Some(4),
        };
        let legacy = Flavor {
            long_lv_tag: false,
            managed_dict: ManagedDict::None,
            dict_values_array: 0,
            frames: Frames::Object,
            line_table: LineTable::Lnotab { signed: true },
            dict: DictKind::Compact36,
            bound_gilstate_bit: None,
            active_bit: None,
            ..modern
        };
        Some(match (v.major, v.minor) {
            (2, 7) => Flavor {
                line_table: LineTable::Lnotab { signed: false },
                dict: DictKind::Table27,
                py2: true,
                thread_name_attr: "_Thread__name",
                ..legacy
            },
            (3, 6..=9) => legacy,
            (3, 10) => Flavor {
                line_table: LineTable::Pep626,
                ..legacy
            },
            (3, 11) => Flavor {
                long_lv_tag: false,
                bound_gilstate_bit: None,
                active_bit: None,
                managed_dict: ManagedDict::V311,
                dict_values_array: 0,
                ..modern
            },
            (3, 12) => Flavor {
                owner_cstack: Some(3),
                managed_dict: ManagedDict::V312,
                dict_values_array: 0,
                ..modern
            },
            (3, 13) => Flavor {
                owner_cstack: Some(3),
                ..modern
            },
            (3, 14) => Flavor {
                owner_cstack: Some(4),
                owner_interpreter: Some(3),
                ..modern
            },
            (3, 15..) => Flavor {
                owner_interpreter: Some(3),
                ..modern
            },
            _ => return None,
        })
    }
}
