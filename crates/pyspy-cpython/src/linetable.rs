//! Line numbers from the 3.11+ location table (`co_linetable`).
//!
//! Each entry starts with a byte whose top bit is set: bits 3–6 are a code,
//! bits 0–2 the entry's length in code units minus one. The codes say how the
//! line changes: 15 no location, 14 long form and 13 no-columns form (signed
//! varint line delta), 10–12 one-line forms (delta = code − 10), 0–9 short
//! forms (same line). Bytes without the top bit belong to the entry before.

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
