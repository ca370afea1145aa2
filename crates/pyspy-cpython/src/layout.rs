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
}

/// Where a `Py_TPFLAGS_MANAGED_DICT` object keeps its attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManagedDict {
    /// 3.11: dict pointer at `obj - 24`, values pointer at `obj - 32`.
    V311,
    /// 3.12: a tagged dict-or-values word at `obj - 24` (low bit set: the
    /// values array minus one byte).
    V312,
    /// 3.13+: dict pointer at `obj - 24`; without a dict, the values sit
    /// inline at `obj + tp_basicsize` when the type has `INLINE_VALUES`.
    V313,
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
}

impl Flavor {
    /// The facts for a version, or `None` when this reader does not know it.
    /// Versions newer than the newest known one reuse its facts: 3.13+
    /// offsets come from the target itself, so only these need to hold.
    pub fn for_version(v: Version) -> Option<Flavor> {
        if v.major != 3 || v.minor < 11 {
            return None;
        }
        Some(match v.minor {
            11 => Flavor {
                owner_cstack: None,
                owner_interpreter: None,
                long_lv_tag: false,
                managed_dict: ManagedDict::V311,
                dict_values_array: 0,
            },
            12 => Flavor {
                owner_cstack: Some(3),
                owner_interpreter: None,
                long_lv_tag: true,
                managed_dict: ManagedDict::V312,
                dict_values_array: 0,
            },
            13 => Flavor {
                owner_cstack: Some(3),
                owner_interpreter: None,
                long_lv_tag: true,
                managed_dict: ManagedDict::V313,
                dict_values_array: 8,
            },
            14 => Flavor {
                owner_cstack: Some(4),
                owner_interpreter: Some(3),
                long_lv_tag: true,
                managed_dict: ManagedDict::V313,
                dict_values_array: 8,
            },
            _ => Flavor {
                owner_cstack: None,
                owner_interpreter: Some(3),
                long_lv_tag: true,
                managed_dict: ManagedDict::V313,
                dict_values_array: 8,
            },
        })
    }
}
