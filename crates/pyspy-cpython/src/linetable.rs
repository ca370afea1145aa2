//! Line numbers from a code object's line table.
//!
//! **3.11+ location table** (`co_linetable`): each entry starts with a byte
//! whose top bit is set: bits 3–6 are a code, bits 0–2 the entry's length in
//! code units minus one. The codes say how the line changes: 15 no location,
//! 14 long form and 13 no-columns form (signed varint line delta), 10–12
//! one-line forms (delta = code − 10), 0–9 short forms (same line). Bytes
//! without the top bit belong to the entry before.
//!
//! **`co_lnotab`** (2.7–3.9): byte pairs (bytecode offset delta, line
//! delta), starting at offset 0 and `co_firstlineno`. The line of offset
//! `lasti` is the line reached after the last pair whose cumulative offset
//! is still `<= lasti`. Line deltas are unsigned in 2.7 and `i8` from 3.6.
//!
//! **3.10 `co_linetable`** (PEP 626): byte pairs (`u8` byte-length of a
//! range, `i8` line delta), ranges back to back from offset 0; a delta of
//! −128 marks a range with no line (the running line is kept for the next
//! range). Zero-length ranges only move the line. `f_lasti` counts 2-byte
//! code units there, so the byte offset is `2 * lasti`.

use crate::layout::LineTable;

/// Size of one code unit in bytes.
const CODE_UNIT: i64 = 2;
/// Refuse tables larger than this (a real one is a few KB).
pub const MAX_LINETABLE: usize = 1 << 20;

/// The line of the instruction at byte offset `addrq` of the bytecode, or
/// `None` when the table gives it no line. `addrq < 0` (a frame that has not
/// started) is the function's first line.
pub fn line_for_offset(table: &[u8], first_line: i32, addrq: i64) -> Option<i32> {
    if addrq < 0 {
        return Some(first_line);
    }
    let mut line = first_line as i64;
    let mut addr = 0i64;
    let mut pos = 0usize;
    while pos < table.len() {
        let head = table[pos];
        if head & 0x80 == 0 {
            return None; // not at an entry start: corrupt table
        }
        let code = (head >> 3) & 15;
        let end = addr + ((head & 7) as i64 + 1) * CODE_UNIT;
        let mut p = pos + 1;
        let delta = match code {
            15 => 0,
            13 | 14 => signed_varint(table, &mut p)?,
            10..=12 => code as i64 - 10,
            _ => 0,
        };
        line += delta;
        if addrq < end {
            return (code != 15).then(|| i32::try_from(line).ok()).flatten();
        }
        addr = end;
        pos = p;
        while pos < table.len() && table[pos] & 0x80 == 0 {
            pos += 1;
        }
    }
    None
}

/// The line of a pre-3.11 frame whose `f_lasti` is `lasti`, from its
/// `co_lnotab` or 3.10 `co_linetable`. `lasti < 0` (a frame that has not
/// started) is the function's first line. `None` when the table gives the
/// position no line. `Locations` tables are not read by position: use
/// [`line_for_offset`].
pub fn line_for_lasti(kind: LineTable, table: &[u8], first_line: i32, lasti: i32) -> Option<i32> {
    if lasti < 0 {
        return Some(first_line);
    }
    let mut line = first_line as i64;
    match kind {
        LineTable::Lnotab { signed } => {
            let mut addr = 0i64;
            for pair in table.chunks_exact(2) {
                addr += pair[0] as i64;
                if addr > lasti as i64 {
                    break;
                }
                line += if signed {
                    pair[1] as i8 as i64
                } else {
                    pair[1] as i64
                };
            }
            i32::try_from(line).ok()
        }
        LineTable::Pep626 => {
            let addrq = lasti as i64 * CODE_UNIT;
            let mut end = 0i64;
            for pair in table.chunks_exact(2) {
                let start = end;
                end += pair[0] as i64;
                let delta = pair[1] as i8;
                let here = if delta == -128 {
                    None
                } else {
                    line += delta as i64;
                    Some(line)
                };
                if start < end && addrq < end {
                    return here.and_then(|l| i32::try_from(l).ok());
                }
            }
            None
        }
        LineTable::Locations => None,
    }
}

fn varint(table: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    let mut shift = 0;
    loop {
        let b = *table.get(*pos)?;
        *pos += 1;
        value |= ((b & 63) as u64) << shift;
        if b & 64 == 0 {
            return Some(value);
        }
        shift += 6;
        if shift > 60 {
            return None;
        }
    }
}

fn signed_varint(table: &[u8], pos: &mut usize) -> Option<i64> {
    let v = varint(table, pos)?;
    Some(if v & 1 == 1 {
        -((v >> 1) as i64)
    } else {
        (v >> 1) as i64
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(code: u8, units: u8) -> u8 {
        0x80 | (code << 3) | (units - 1)
    }

    #[test]
    fn walks_short_one_line_and_long_forms() {
        // 2 units at first line (short form, 1 column byte),
        // 1 unit one line later (one-line form 11, 2 column bytes),
        // 3 units with a no-columns delta of -2 (varint 5 = -(2)),
        // 1 unit with no location,
        // 2 units long form with delta +40 (varint 80 = 0x50: 0b01_010000 → continuation).
        let table = [
            entry(0, 2),
            0x10,
            entry(11, 1),
            4,
            9,
            entry(13, 3),
            5,
            entry(15, 1),
            entry(14, 2),
            0x40 | 16,
            1,
            0,
            0,
            0,
        ];
        let l = |a| line_for_offset(&table, 10, a);
        assert_eq!(l(-2), Some(10));
        assert_eq!(l(0), Some(10));
        assert_eq!(l(3), Some(10));
        assert_eq!(l(4), Some(11));
        assert_eq!(l(6), Some(9));
        assert_eq!(l(10), Some(9));
        assert_eq!(l(12), None);
        assert_eq!(l(14), Some(9 + 40));
        assert_eq!(l(17), Some(49));
        assert_eq!(l(18), None);
    }

    #[test]
    fn corrupt_tables_give_none_not_panic() {
        assert_eq!(line_for_offset(&[0x01, 0x02], 1, 0), None);
        assert_eq!(line_for_offset(&[entry(14, 1)], 1, 0), None);
        assert_eq!(
            line_for_offset(
                &[
                    entry(13, 1),
                    0x7f,
                    0x7f,
                    0x7f,
                    0x7f,
                    0x7f,
                    0x7f,
                    0x7f,
                    0x7f,
                    0x7f,
                    0x7f,
                    0x7f
                ],
                1,
                0
            ),
            None
        );
        assert_eq!(line_for_offset(&[], 1, 0), None);
    }

    #[test]
    fn lnotab_pairs() {
        // Offsets 0..6 on the first line, 6..10 two lines down, then a
        // backwards jump of 1 (signed from 3.6, 255 up in 2.7).
        let table = [6, 2, 4, 0xff];
        let signed = LineTable::Lnotab { signed: true };
        let unsigned = LineTable::Lnotab { signed: false };
        let l = |kind, lasti| line_for_lasti(kind, &table, 10, lasti);
        assert_eq!(l(signed, -1), Some(10));
        assert_eq!(l(signed, 0), Some(10));
        assert_eq!(l(signed, 5), Some(10));
        assert_eq!(l(signed, 6), Some(12));
        assert_eq!(l(signed, 9), Some(12));
        assert_eq!(l(signed, 10), Some(11));
        assert_eq!(l(signed, 500), Some(11));
        assert_eq!(l(unsigned, 10), Some(12 + 255));
        assert_eq!(line_for_lasti(signed, &[], 7, 3), Some(7));
        // An odd trailing byte is ignored, not read past.
        assert_eq!(line_for_lasti(signed, &[2, 1, 9], 1, 8), Some(2));
    }

    #[test]
    fn pep626_ranges() {
        // 3.10: bytes 0..4 line 5 (+0), a zero-length step to line 8 (+3),
        // bytes 4..10 line 8+1 = 9, bytes 10..12 no line (-128), bytes
        // 12..16 line 9-2 = 7 (the no-line range kept the running line).
        let table = [4, 0, 0, 3, 6, 1, 2, 0x80, 4, 0xfe];
        let l = |lasti| line_for_lasti(LineTable::Pep626, &table, 5, lasti);
        assert_eq!(l(-1), Some(5));
        assert_eq!(l(0), Some(5));
        assert_eq!(l(1), Some(5)); // byte 2
        assert_eq!(l(2), Some(9)); // byte 4
        assert_eq!(l(4), Some(9)); // byte 8
        assert_eq!(l(5), None); // byte 10
        assert_eq!(l(6), Some(7)); // byte 12
        assert_eq!(l(7), Some(7)); // byte 14
        assert_eq!(l(8), None); // past the table
        assert_eq!(line_for_lasti(LineTable::Locations, &table, 5, 0), None);
    }

    #[test]
    fn matches_python_on_a_real_table() {
        // `def f():\n    a = 1\n    return a` compiled by CPython 3.11:
        // co_firstlineno 1, RESUME at line 1, then lines 2, 2, 3, 3.
        // (Table bytes as printed by `f.__code__.co_linetable`.)
        let table = [
            0x80, 0x00, 0xd8, 0x08, 0x09, 0x80, 0x41, 0xd8, 0x0b, 0x0c, 0x80, 0x48,
        ];
        assert_eq!(line_for_offset(&table, 1, 0), Some(1));
        assert_eq!(line_for_offset(&table, 1, 2), Some(2));
        assert_eq!(line_for_offset(&table, 1, 6), Some(3));
    }
}
