//! Sanity checks on the committed `generated.rs` tables.
//!
//! They hold whichever patch release the generator found headers for, so the
//! checks stick to facts that do not move within a minor version: which
//! fields exist, how fields relate to each other, and offsets that were read
//! back from the binaries' own `_Py_DebugOffsets` tables (3.13.18, 3.14.10,
//! 3.15.2) and from live interpreters (3.11.7, 3.12.1, 3.13.0) by
//! `scripts/verify-offsets.sh`. Sizes (`*_size`) are deliberately left out:
//! they change in patch releases. The tables of 2.7 and 3.6–3.10 are checked
//! separately (`LEGACY`).

use crate::generated::{
    OFFSETS_2_7, OFFSETS_3_10, OFFSETS_3_11, OFFSETS_3_12, OFFSETS_3_13, OFFSETS_3_14,
    OFFSETS_3_15, OFFSETS_3_6, OFFSETS_3_7, OFFSETS_3_8, OFFSETS_3_9,
};
use crate::offsets::Offsets;

/// 2.7 and 3.6–3.10, by `(major, minor)`.
const LEGACY: [((u8, u8), Offsets); 6] = [
    ((2, 7), OFFSETS_2_7),
    ((3, 6), OFFSETS_3_6),
    ((3, 7), OFFSETS_3_7),
    ((3, 8), OFFSETS_3_8),
    ((3, 9), OFFSETS_3_9),
    ((3, 10), OFFSETS_3_10),
];

const ALL: [(u8, Offsets); 5] = [
    (11, OFFSETS_3_11),
    (12, OFFSETS_3_12),
    (13, OFFSETS_3_13),
    (14, OFFSETS_3_14),
    (15, OFFSETS_3_15),
];

#[test]
fn optional_fields_exist_where_the_version_has_them() {
    for (minor, o) in ALL {
        assert_eq!(
            o.runtime_tstate_current.is_some(),
            minor == 11,
            "3.{minor} runtime_tstate_current"
        );
        assert_eq!(
            o.interp_ceval_gil.is_some(),
            minor >= 12,
            "3.{minor} interp_ceval_gil"
        );
        assert_eq!(
            o.interp_gil_locked.is_some(),
            minor >= 13,
            "3.{minor} interp_gil_locked"
        );
        assert_eq!(
            o.interp_gil_holder.is_some(),
            minor >= 13,
            "3.{minor} interp_gil_holder"
        );
        assert_eq!(o.gil_locked.is_some(), minor == 12, "3.{minor} gil_locked");
        assert_eq!(
            o.gil_last_holder.is_some(),
            minor == 12,
            "3.{minor} gil_last_holder"
        );
        assert_eq!(
            o.tstate_current_frame.is_some(),
            minor >= 13,
            "3.{minor} tstate_current_frame"
        );
        assert_eq!(
            o.tstate_cframe.is_some(),
            minor <= 12,
            "3.{minor} tstate_cframe"
        );
        assert_eq!(
            o.cframe_current_frame.is_some(),
            minor <= 12,
            "3.{minor} cframe_current_frame"
        );
        assert_eq!(
            o.frame_is_entry.is_some(),
            minor == 11,
            "3.{minor} frame_is_entry"
        );
        // 3.11 has `owner` too (values 0..=2), so it is filled everywhere.
        assert!(o.frame_owner.is_some(), "3.{minor} frame_owner");
        for (name, field) in [
            ("runtime_interpreters_head", o.runtime_interpreters_head),
            ("tstate_native_thread_id", o.tstate_native_thread_id),
            ("tstate_datastack_chunk", o.tstate_datastack_chunk),
            ("code_qualname", o.code_qualname),
            ("code_localspluskinds", o.code_localspluskinds),
            ("code_code_adaptive", o.code_code_adaptive),
            ("heap_type_cached_keys", o.heap_type_cached_keys),
            ("dict_ma_keys", o.dict_ma_keys),
            ("dict_ma_values", o.dict_ma_values),
            ("unicode_state", o.unicode_state),
            ("unicode_ascii_size", o.unicode_ascii_size),
            ("unicode_compact_size", o.unicode_compact_size),
        ] {
            assert!(field.is_some(), "3.{minor} {name}");
        }
        for (name, field) in [
            ("tstate_frame", o.tstate_frame),
            ("code_nlocals", o.code_nlocals),
            ("dict_ma_mask", o.dict_ma_mask),
            ("dict_ma_table", o.dict_ma_table),
            ("int_ob_ival", o.int_ob_ival),
            ("unicode_str", o.unicode_str),
            ("unicode_char_size", o.unicode_char_size),
        ] {
            assert!(field.is_none(), "3.{minor} {name} (a pre-3.11 field)");
        }
    }
}

#[test]
fn legacy_fields_exist_where_the_version_has_them() {
    for ((major, minor), o) in LEGACY {
        let v = format!("{major}.{minor}");
        let py2 = major == 2;
        // The runtime state (and its GIL holder) exists from 3.7 on.
        let runtime = !py2 && minor >= 7;
        assert_eq!(o.runtime_interpreters_head.is_some(), runtime, "{v}");
        assert_eq!(o.runtime_tstate_current.is_some(), runtime, "{v}");
        // Frame objects, no interpreter frames, no native thread id.
        assert!(o.tstate_frame.is_some(), "{v}");
        assert!(o.code_nlocals.is_some(), "{v}");
        for (name, field) in [
            ("interp_ceval_gil", o.interp_ceval_gil),
            ("interp_gil_locked", o.interp_gil_locked),
            ("gil_locked", o.gil_locked),
            ("tstate_current_frame", o.tstate_current_frame),
            ("tstate_cframe", o.tstate_cframe),
            ("tstate_native_thread_id", o.tstate_native_thread_id),
            ("tstate_datastack_chunk", o.tstate_datastack_chunk),
            ("frame_owner", o.frame_owner),
            ("frame_is_entry", o.frame_is_entry),
            ("code_qualname", o.code_qualname),
            ("code_localspluskinds", o.code_localspluskinds),
            ("code_code_adaptive", o.code_code_adaptive),
        ] {
            assert!(field.is_none(), "{v} {name}");
        }
        // Python 2's dict, int, str and unicode; PEP 393 strings and compact
        // dicts in 3.x.
        assert_eq!(o.dict_ma_mask.is_some(), py2, "{v}");
        assert_eq!(o.dict_ma_table.is_some(), py2, "{v}");
        assert_eq!(o.dict_ma_keys.is_some(), !py2, "{v}");
        assert_eq!(o.dict_ma_values.is_some(), !py2, "{v}");
        assert_eq!(o.int_ob_ival.is_some(), py2, "{v}");
        assert_eq!(o.unicode_str.is_some(), py2, "{v}");
        assert_eq!(o.unicode_char_size.is_some(), py2, "{v}");
        assert_eq!(o.unicode_state.is_some(), !py2, "{v}");
        assert_eq!(o.unicode_ascii_size.is_some(), !py2, "{v}");
        assert_eq!(o.heap_type_cached_keys.is_some(), !py2, "{v}");
    }
}

#[test]
fn legacy_layouts_are_self_consistent() {
    for ((major, minor), o) in LEGACY {
        let v = format!("{major}.{minor}");
        // PyFrameObject ends with `f_localsplus[1]`.
        assert_eq!(o.frame_size, o.frame_localsplus + 8, "{v} frame_size");
        // PyVarObject header, then f_back and f_code.
        assert_eq!((o.frame_previous, o.frame_executable), (24, 32), "{v}");
        assert!(o.frame_instr_ptr > o.frame_executable, "{v} f_lasti");
        assert_eq!(o.ob_type, 8, "{v}");
        for size_field in [o.tuple_ob_size, o.list_ob_size, o.bytes_ob_size] {
            assert_eq!(size_field, 16, "{v} PyVarObject.ob_size");
        }
        assert_eq!((o.long_lv_tag, o.long_ob_digit), (16, 24), "{v}");
        assert_eq!(o.module_md_dict, 16, "{v}");
        assert_eq!(o.unicode_length, 16, "{v}");
        if major == 2 {
            // PyStringObject: ob_size, ob_shash, int ob_sstate, then the text.
            assert_eq!(o.bytes_ob_sval, 36, "{v}");
            assert_eq!(o.int_ob_ival, Some(16), "{v}");
            assert_eq!(o.unicode_str, Some(24), "{v}");
        } else {
            assert_eq!(o.bytes_ob_sval, 32, "{v}");
            // PyASCIIObject: ..., length, hash, state, wstr (up to 3.11).
            assert_eq!(o.unicode_state, Some(32), "{v}");
            assert_eq!(
                (o.unicode_ascii_size, o.unicode_compact_size),
                (Some(48), Some(72)),
                "{v}"
            );
            assert!(
                o.heap_type_cached_keys.unwrap() > o.type_tp_dictoffset,
                "{v}"
            );
        }
    }
}

#[test]
fn layouts_are_self_consistent() {
    for (minor, o) in ALL {
        // `localsplus` is declared as a one-element array, which sizeof counts.
        assert_eq!(o.frame_size, o.frame_localsplus + 8, "3.{minor} frame_size");
        // PyASCIIObject: ob_refcnt, ob_type, length, hash, state.
        assert_eq!(o.unicode_length, 16, "3.{minor}");
        assert_eq!(
            o.unicode_state,
            Some(o.unicode_length + 16),
            "3.{minor} state follows hash"
        );
        // PyCompactUnicodeObject adds utf8_length and utf8 (3.11: and wstr_length).
        let extra = if minor == 11 { 24 } else { 16 };
        assert_eq!(
            o.unicode_compact_size,
            o.unicode_ascii_size.map(|a| a + extra),
            "3.{minor} compact size"
        );
        assert_eq!(o.ob_type, 8, "3.{minor}");
        for size_field in [o.tuple_ob_size, o.list_ob_size, o.bytes_ob_size] {
            assert_eq!(size_field, 16, "3.{minor} PyVarObject.ob_size");
        }
        assert_eq!(o.long_lv_tag, 16, "3.{minor}");
        assert_eq!(o.long_ob_digit, 24, "3.{minor}");
        assert_eq!(o.module_md_dict, 16, "3.{minor}");
        assert!(
            o.code_code_adaptive.unwrap() < o.code_size,
            "3.{minor} co_code_adaptive is the trailing array"
        );
        assert!(
            o.heap_type_cached_keys.unwrap() > o.type_tp_dictoffset,
            "3.{minor}"
        );
    }
}

#[test]
fn offsets_checked_against_real_interpreters() {
    // 3.11: live ctypes checks on 3.11.7 (pyenv) and 3.11.2 (Debian).
    let o = OFFSETS_3_11;
    assert_eq!(o.runtime_interpreters_head, Some(40));
    assert_eq!(o.runtime_tstate_current, Some(576));
    assert_eq!(
        (o.tstate_cframe, o.cframe_current_frame),
        (Some(56), Some(8))
    );
    assert_eq!(
        (o.frame_executable, o.frame_previous, o.frame_instr_ptr),
        (32, 48, 56)
    );
    assert_eq!(
        (o.frame_is_entry, o.frame_owner, o.frame_localsplus),
        (Some(68), Some(69), 72)
    );
    assert_eq!((o.code_firstlineno, o.code_code_adaptive), (72, Some(184)));
    assert_eq!(
        (o.unicode_ascii_size, o.unicode_compact_size),
        (Some(48), Some(72))
    );

    // 3.12: live ctypes checks on 3.12.1 (pyenv).
    let o = OFFSETS_3_12;
    assert_eq!((o.interp_threads_head, o.interp_ceval_gil), (72, Some(384)));
    assert_eq!((o.gil_last_holder, o.gil_locked), (Some(8), Some(16)));
    assert_eq!(
        (o.tstate_cframe, o.cframe_current_frame),
        (Some(56), Some(0))
    );
    assert_eq!(
        (o.frame_executable, o.frame_previous, o.frame_owner),
        (0, 8, Some(70))
    );
    assert_eq!((o.code_firstlineno, o.code_code_adaptive), (68, Some(192)));
    assert_eq!(
        (o.unicode_ascii_size, o.unicode_compact_size),
        (Some(40), Some(56))
    );

    // 3.13 to 3.15: equal to the `_Py_DebugOffsets` tables of Debian's
    // 3.13.18, 3.14.10 and 3.15.2 binaries (and live checks on each).
    let o = OFFSETS_3_13;
    assert_eq!(
        (
            o.runtime_interpreters_head,
            o.interp_threads_head,
            o.interp_modules
        ),
        (Some(632), 7344, 7656)
    );
    assert_eq!(
        (o.interp_gil_holder, o.interp_gil_locked),
        (Some(7760), Some(7768))
    );
    assert_eq!(
        (o.tstate_current_frame, o.tstate_datastack_chunk),
        (Some(72), Some(232))
    );
    assert_eq!(
        (o.frame_localsplus, o.frame_owner, o.code_code_adaptive),
        (72, Some(70), Some(200))
    );
    let o = OFFSETS_3_14;
    assert_eq!(
        (
            o.runtime_interpreters_head,
            o.interp_threads_head,
            o.interp_modules
        ),
        (Some(808), 7344, 7688)
    );
    assert_eq!(
        (o.interp_gil_holder, o.interp_gil_locked),
        (Some(7792), Some(7800))
    );
    assert_eq!(
        (o.frame_localsplus, o.frame_owner, o.code_code_adaptive),
        (80, Some(74), Some(208))
    );
    assert_eq!(o.tuple_ob_item, 32);
    let o = OFFSETS_3_15;
    assert_eq!(
        (
            o.runtime_interpreters_head,
            o.interp_threads_head,
            o.interp_modules
        ),
        (Some(936), 7336, 7592)
    );
    assert_eq!(
        (
            o.tstate_thread_id,
            o.tstate_native_thread_id,
            o.tstate_datastack_chunk
        ),
        (176, Some(184), Some(256))
    );
    assert_eq!(
        (
            o.type_tp_basicsize,
            o.type_tp_dictoffset,
            o.heap_type_cached_keys
        ),
        (32, 288, Some(888))
    );
    assert_eq!(o.unicode_compact_size, Some(56));
}
