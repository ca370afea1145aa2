//! Parsing a target's own `_Py_DebugOffsets` table (3.13+).
//!
//! CPython 3.13 and newer place this table at the start of `_PyRuntime`: an
//! 8-byte cookie `xdebugpy`, the `PY_VERSION_HEX`, a free-threaded flag, then
//! groups of `u64`s, most of them a struct's `size` followed by field
//! offsets. The groups and their order are per minor version (listed below,
//! read from each version's `pycore_debug_offsets.h`); the values are the
//! target's own, so patch releases that move fields keep working. The table
//! is untrusted input: every offset must lie inside its struct's size.

use std::collections::HashMap;

use crate::{Error, Offsets, Version};

/// The cookie at the start of the table.
pub const COOKIE: &[u8; 8] = b"xdebugpy";
/// Bytes enough to hold any known table (3.15's is 888).
pub const MAX_TABLE: usize = 2048;

/// One group of the table: its name, whether it starts with a `size`, and
/// its fields after the size.
type Group = (&'static str, bool, &'static [&'static str]);

const RUNTIME: Group = ("runtime_state", true, &["finalizing", "interpreters_head"]);
const INTERP_313: Group = (
    "interpreter_state",
    true,
    &[
        "id",
        "next",
        "threads_head",
        "gc",
        "imports_modules",
        "sysdict",
        "builtins",
        "ceval_gil",
        "gil_runtime_state",
        "gil_runtime_state_enabled",
        "gil_runtime_state_locked",
        "gil_runtime_state_holder",
    ],
);
const INTERP_314: Group = (
    "interpreter_state",
    true,
    &[
        "id",
        "next",
        "threads_head",
        "threads_main",
        "gc",
        "imports_modules",
        "sysdict",
        "builtins",
        "ceval_gil",
        "gil_runtime_state",
        "gil_runtime_state_enabled",
        "gil_runtime_state_locked",
        "gil_runtime_state_holder",
        "code_object_generation",
        "tlbc_generation",
    ],
);
const TSTATE_313: Group = (
    "thread_state",
    true,
    &[
        "prev",
        "next",
        "interp",
        "current_frame",
        "thread_id",
        "native_thread_id",
        "datastack_chunk",
        "status",
    ],
);
const TSTATE_315: Group = (
    "thread_state",
    true,
    &[
        "prev",
        "next",
        "interp",
        "current_frame",
        "base_frame",
        "last_profiled_frame",
        "last_profiled_frame_seq",
        "thread_id",
        "native_thread_id",
        "datastack_chunk",
        "status",
        "holds_gil",
        "gil_requested",
        "current_exception",
        "exc_state",
    ],
);
const ERR_STACKITEM: Group = ("err_stackitem", false, &["exc_value"]);
const FRAME_313: Group = (
    "interpreter_frame",
    true,
    &["previous", "executable", "instr_ptr", "localsplus", "owner"],
);
const FRAME_314: Group = (
    "interpreter_frame",
    true,
    &[
        "previous",
        "executable",
        "instr_ptr",
        "localsplus",
        "owner",
        "stackpointer",
        "tlbc_index",
    ],
);
const CODE_313: Group = (
    "code_object",
    true,
    &[
        "filename",
        "name",
        "qualname",
        "linetable",
        "firstlineno",
        "argcount",
        "localsplusnames",
        "localspluskinds",
        "co_code_adaptive",
    ],
);
const CODE_314: Group = (
    "code_object",
    true,
    &[
        "filename",
        "name",
        "qualname",
        "linetable",
        "firstlineno",
        "argcount",
        "localsplusnames",
        "localspluskinds",
        "co_code_adaptive",
        "co_tlbc",
    ],
);
const PYOBJECT: Group = ("pyobject", true, &["ob_type"]);
const TYPE_313: Group = ("type_object", true, &["tp_name", "tp_repr", "tp_flags"]);
const TYPE_315: Group = (
    "type_object",
    true,
    &[
        "tp_name",
        "tp_repr",
        "tp_flags",
        "tp_basicsize",
        "tp_dictoffset",
    ],
);
const HEAP_TYPE: Group = ("heap_type_object", true, &["ht_cached_keys"]);
const TUPLE: Group = ("tuple_object", true, &["ob_item", "ob_size"]);
const LIST: Group = ("list_object", true, &["ob_item", "ob_size"]);
const SET: Group = ("set_object", true, &["used", "table", "mask"]);
const DICT: Group = ("dict_object", true, &["ma_keys", "ma_values"]);
const FLOAT: Group = ("float_object", true, &["ob_fval"]);
const LONG: Group = ("long_object", true, &["lv_tag", "ob_digit"]);
const BYTES: Group = ("bytes_object", true, &["ob_size", "ob_sval"]);
const UNICODE_313: Group = (
    "unicode_object",
    true,
    &["state", "length", "asciiobject_size"],
);
const UNICODE_315: Group = (
    "unicode_object",
    true,
    &[
        "state",
        "length",
        "asciiobject_size",
        "compactunicodeobject_size",
    ],
);

/// The groups of each known minor version, in table order. Only the groups
/// up to the last one the reader uses are listed; later ones do not move
/// earlier ones.
fn groups(minor: u8) -> &'static [Group] {
    const V313: &[Group] = &[
        RUNTIME,
        INTERP_313,
        TSTATE_313,
        FRAME_313,
        CODE_313,
        PYOBJECT,
        TYPE_313,
        TUPLE,
        LIST,
        DICT,
        FLOAT,
        LONG,
        BYTES,
        UNICODE_313,
    ];
    const V314: &[Group] = &[
        RUNTIME,
        INTERP_314,
        TSTATE_313,
        FRAME_314,
        CODE_314,
        PYOBJECT,
        TYPE_313,
        TUPLE,
        LIST,
        SET,
        DICT,
        FLOAT,
        LONG,
        BYTES,
        UNICODE_313,
    ];
    const V315: &[Group] = &[
        RUNTIME,
        INTERP_314,
        TSTATE_315,
        ERR_STACKITEM,
        FRAME_314,
        CODE_314,
        PYOBJECT,
        TYPE_315,
        HEAP_TYPE,
        TUPLE,
        LIST,
        SET,
        DICT,
        FLOAT,
        LONG,
        BYTES,
        UNICODE_315,
    ];
    match minor {
        13 => V313,
        14 => V314,
        // Newer versions are read with the newest known order and then
        // validated; a changed order fails validation rather than misreads.
        _ => V315,
    }
}

/// What the table header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableHeader {
    /// The version the table was built for.
    pub version: Version,
    /// Built without the GIL (3.13t/3.14t).
    pub free_threaded: bool,
}

/// Reads the header (cookie, version, free-threaded flag), or `None` when the
/// bytes do not start with the cookie.
pub fn header(table: &[u8]) -> Option<TableHeader> {
    if table.len() < 24 || &table[..8] != COOKIE {
        return None;
    }
    let version = Version::from_hex(u64::from_le_bytes(table[8..16].try_into().ok()?))?;
    let free_threaded = u64::from_le_bytes(table[16..24].try_into().ok()?) != 0;
    Some(TableHeader {
        version,
        free_threaded,
    })
}

/// Parses the table into named values (`"code_object.filename"` → offset),
/// checking each offset against its group's size.
pub fn parse_fields(table: &[u8], minor: u8) -> Result<HashMap<String, u64>, String> {
    let mut pos = 24;
    let mut next = || -> Result<u64, String> {
        let b = table.get(pos..pos + 8).ok_or("table is truncated")?;
        pos += 8;
        Ok(u64::from_le_bytes(b.try_into().unwrap()))
    };
    let mut out = HashMap::new();
    for (group, has_size, fields) in groups(minor) {
        let size = if *has_size { Some(next()?) } else { None };
        if let Some(size) = size {
            if size == 0 || size > 1 << 20 {
                return Err(format!("{group}.size is {size}"));
            }
            out.insert(format!("{group}.size"), size);
        }
        for field in *fields {
            let value = next()?;
            if let Some(size) = size {
                if value >= size
                    && !(*group == "code_object" && *field == "co_code_adaptive" && value == size)
                {
                    return Err(format!(
                        "{group}.{field} = {value} lies outside its struct ({size} bytes)"
                    ));
                }
            }
            out.insert(format!("{group}.{field}"), value);
        }
    }
    Ok(out)
}

/// Builds [`Offsets`] from a target's table. `supplement` gives what the
/// table lacks in this version (type sizes and dict offsets before 3.15,
/// stable fields such as `PyModuleObject.md_dict`).
pub fn offsets_from_table(
    table: &[u8],
    supplement: &Offsets,
) -> Result<(TableHeader, Offsets), Error> {
    let head = header(table)
        .ok_or_else(|| Error::NotPython("no _Py_DebugOffsets cookie at _PyRuntime".into()))?;
    let v = head.version;
    let bad = |detail: String| Error::UnsupportedVersion {
        version: v,
        detail: format!(": debug offsets table: {detail}"),
    };
    let f = parse_fields(table, v.minor).map_err(bad)?;
    // 3.14t+ run per-thread bytecode copies: without where a frame's copy
    // is, its line numbers would be wrong.
    if head.free_threaded && v.minor >= 14 && tlbc(table, v.minor).is_none() {
        return Err(bad(
            "free-threaded, but no thread-local bytecode offsets".into()
        ));
    }
    let get = |k: &str| f.get(k).map(|v| *v as usize);
    let req = |k: &str| get(k).ok_or_else(|| bad(format!("missing {k}")));
    let gil_base = req("interpreter_state.gil_runtime_state")?;
    let rel = |k: &str| -> Result<usize, Error> {
        req(k)?
            .checked_sub(gil_base)
            .ok_or_else(|| bad(format!("{k} lies before the GIL state")))
    };
    let s = supplement;
    Ok((
        head,
        Offsets {
            runtime_interpreters_head: Some(req("runtime_state.interpreters_head")?),
            runtime_tstate_current: None,
            interp_size: req("interpreter_state.size")?,
            interp_next: req("interpreter_state.next")?,
            interp_id: Some(req("interpreter_state.id")?),
            interp_threads_head: req("interpreter_state.threads_head")?,
            interp_modules: req("interpreter_state.imports_modules")?,
            interp_ceval_gil: Some(req("interpreter_state.ceval_gil")?),
            interp_gil_locked: Some(req("interpreter_state.gil_runtime_state_locked")?),
            interp_gil_holder: Some(req("interpreter_state.gil_runtime_state_holder")?),
            gil_locked: Some(rel("interpreter_state.gil_runtime_state_locked")?),
            gil_last_holder: Some(rel("interpreter_state.gil_runtime_state_holder")?),
            runtime_ceval_gil: None,
            // Not in the table: the size of the GIL struct and the flag's
            // place inside the collector's state come from the headers.
            gil_size: s.gil_size,
            runtime_gc: None,
            interp_gc: Some(req("interpreter_state.gc")?),
            gc_collecting: s.gc_collecting,
            tstate_size: req("thread_state.size")?,
            tstate_next: req("thread_state.next")?,
            tstate_interp: req("thread_state.interp")?,
            tstate_status: Some(req("thread_state.status")?),
            tstate_frame: None,
            tstate_current_frame: Some(req("thread_state.current_frame")?),
            tstate_cframe: None,
            cframe_current_frame: None,
            tstate_thread_id: req("thread_state.thread_id")?,
            tstate_native_thread_id: Some(req("thread_state.native_thread_id")?),
            tstate_datastack_chunk: Some(req("thread_state.datastack_chunk")?),
            frame_size: req("interpreter_frame.size")?,
            frame_previous: req("interpreter_frame.previous")?,
            frame_executable: req("interpreter_frame.executable")?,
            frame_instr_ptr: req("interpreter_frame.instr_ptr")?,
            frame_localsplus: req("interpreter_frame.localsplus")?,
            frame_owner: Some(req("interpreter_frame.owner")?),
            frame_is_entry: None,
            code_size: req("code_object.size")?,
            code_filename: req("code_object.filename")?,
            code_name: req("code_object.name")?,
            code_qualname: Some(req("code_object.qualname")?),
            code_linetable: req("code_object.linetable")?,
            code_firstlineno: req("code_object.firstlineno")?,
            code_argcount: req("code_object.argcount")?,
            code_localsplusnames: req("code_object.localsplusnames")?,
            code_localspluskinds: Some(req("code_object.localspluskinds")?),
            code_nlocals: None,
            code_code_adaptive: Some(req("code_object.co_code_adaptive")?),
            ob_type: req("pyobject.ob_type")?,
            type_tp_name: req("type_object.tp_name")?,
            type_tp_flags: req("type_object.tp_flags")?,
            type_tp_basicsize: get("type_object.tp_basicsize").unwrap_or(s.type_tp_basicsize),
            type_tp_dictoffset: get("type_object.tp_dictoffset").unwrap_or(s.type_tp_dictoffset),
            heap_type_cached_keys: get("heap_type_object.ht_cached_keys")
                .or(s.heap_type_cached_keys),
            tuple_ob_size: req("tuple_object.ob_size")?,
            tuple_ob_item: req("tuple_object.ob_item")?,
            list_ob_size: req("list_object.ob_size")?,
            list_ob_item: req("list_object.ob_item")?,
            dict_ma_used: s.dict_ma_used,
            dict_ma_keys: Some(req("dict_object.ma_keys")?),
            dict_ma_values: Some(req("dict_object.ma_values")?),
            dict_ma_mask: None,
            dict_ma_table: None,
            float_ob_fval: req("float_object.ob_fval")?,
            long_lv_tag: req("long_object.lv_tag")?,
            long_ob_digit: req("long_object.ob_digit")?,
            int_ob_ival: None,
            bytes_ob_size: req("bytes_object.ob_size")?,
            bytes_ob_sval: req("bytes_object.ob_sval")?,
            unicode_state: Some(req("unicode_object.state")?),
            unicode_length: req("unicode_object.length")?,
            unicode_ascii_size: Some(req("unicode_object.asciiobject_size")?),
            unicode_compact_size: get("unicode_object.compactunicodeobject_size")
                .or(s.unicode_compact_size),
            unicode_str: None,
            unicode_char_size: None,
            module_md_dict: s.module_md_dict,
        },
    ))
}

/// Free-threaded builds: where the GIL's `enabled` counter sits inside the
/// GIL struct. Unlike its neighbours (`locked`, `holder`), the table gives
/// this one relative to the GIL struct, not to the interpreter state.
pub(crate) fn gil_enabled_offset(table: &[u8], minor: u8, gil_size: usize) -> Option<usize> {
    if !header(table)?.free_threaded {
        return None;
    }
    let fields = parse_fields(table, minor).ok()?;
    let enabled = *fields.get("interpreter_state.gil_runtime_state_enabled")? as usize;
    (enabled + 4 <= gil_size).then_some(enabled)
}

/// Free-threaded 3.14+: where a frame's bytecode copy is (both offsets are
/// 0 in a GIL build's table).
pub(crate) fn tlbc(table: &[u8], minor: u8) -> Option<crate::layout::Tlbc> {
    if minor < 14 || !header(table)?.free_threaded {
        return None;
    }
    let fields = parse_fields(table, minor).ok()?;
    let frame_index = *fields.get("interpreter_frame.tlbc_index")? as usize;
    let code_array = *fields.get("code_object.co_tlbc")? as usize;
    (frame_index != 0 && code_array != 0).then_some(crate::layout::Tlbc {
        frame_index,
        code_array,
    })
}

/// `interpreter_state.code_object_generation` (3.14+), when the table has it.
pub(crate) fn code_generation(table: &[u8], minor: u8) -> Option<usize> {
    let fields = parse_fields(table, minor).ok()?;
    fields
        .get("interpreter_state.code_object_generation")
        .map(|v| *v as usize)
}
