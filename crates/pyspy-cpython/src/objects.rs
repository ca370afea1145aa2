//! Reading Python objects out of remote memory: str, bytes, int, float and
//! type names. Every length read from the target is bounded before use.
//!
//! Python 2 differs: its `str` is a byte string (`PyStringObject`, decoded
//! as UTF-8 here), text is `unicode` (`PyUnicodeObject`: a length and a
//! pointer to `Py_UNICODE` units), and small integers are `PyIntObject`s.
//! Which of those an object is comes from its type's name.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use pyspy_process::{Memory, MemoryExt};

use crate::error::{Error, ReadContext};
use crate::Layout;

/// Longest bytes object read (line tables, `co_localspluskinds`).
pub const MAX_BYTES: usize = 1 << 20;

/// Remote memory plus the layout to read it with, and caches of what never
/// changes while it is alive (type names).
pub struct ObjectReader<M> {
    /// The target's memory.
    pub mem: M,
    /// The target's layout.
    pub layout: Layout,
    type_names: Mutex<HashMap<usize, Arc<str>>>,
}

impl<M: Memory> ObjectReader<M> {
    /// A reader with empty caches.
    pub fn new(mem: M, layout: Layout) -> Self {
        ObjectReader {
            mem,
            layout,
            type_names: Mutex::new(HashMap::new()),
        }
    }

    /// The PEP 393 offsets (3.x): the state word, where compact ASCII and
    /// compact non-ASCII text start.
    fn pep393(&self, addr: usize) -> Result<(usize, usize, usize), Error> {
        let o = &self.layout.offsets;
        match (
            o.unicode_state,
            o.unicode_ascii_size,
            o.unicode_compact_size,
        ) {
            (Some(state), Some(ascii), Some(compact)) => Ok((state, ascii, compact)),
            _ => Err(Error::Corrupt {
                what: "str layout",
                addr,
            }),
        }
    }

    /// A `str` object's text (Python 2: a `str` or `unicode` object's).
    /// Strings over `max_chars` are cut to it.
    pub fn read_str(&self, addr: usize, max_chars: usize) -> Result<String, Error> {
        if self.layout.flavor.py2 {
            return self.read_str_py2(addr, max_chars);
        }
        let o = &self.layout.offsets;
        let (state_off, ascii_size, compact_size) = self.pep393(addr)?;
        let mut head = [0u8; 96];
        let head_len = compact_size.min(head.len());
        if head_len < state_off + 4 || head_len < o.unicode_length + 8 {
            return Err(Error::Corrupt {
                what: "str layout",
                addr,
            });
        }
        self.mem
            .read(addr, &mut head[..head_len])
            .what("str header")?;
        let length = usize_at(&head, o.unicode_length);
        let state = u32::from_le_bytes(head[state_off..state_off + 4].try_into().unwrap());
        let kind = ((state >> 2) & 7) as usize;
        let compact = (state >> 5) & 1 == 1;
        let ascii = (state >> 6) & 1 == 1;
        // kind 0 (3.6-3.11: a legacy string not made "ready") is refused.
        if length > isize::MAX as usize || !matches!(kind, 1 | 2 | 4) || (ascii && kind != 1) {
            return Err(Error::Corrupt {
                what: "str header",
                addr,
            });
        }
        let data = match (compact, ascii) {
            (true, true) => addr.wrapping_add(ascii_size),
            (true, false) => addr.wrapping_add(compact_size),
            // Legacy (non-compact) strings keep a data pointer after the
            // compact header.
            (false, _) => self
                .mem
                .read_usize(addr.wrapping_add(compact_size))
                .what("str data pointer")?,
        };
        let chars = length.min(max_chars);
        let raw = self.mem.read_vec(data, chars * kind).what("str data")?;
        Ok(decode_units(&raw, kind, ascii))
    }

    /// Python 2: a `unicode` object's text, else (a `str`) its bytes as UTF-8.
    fn read_str_py2(&self, addr: usize, max_chars: usize) -> Result<String, Error> {
        let ty = self.type_of(addr)?;
        if &*self.type_name(ty)? == "unicode" {
            return self.read_unicode_py2(addr, max_chars);
        }
        let o = &self.layout.offsets;
        let size = self
            .mem
            .read_usize(addr.wrapping_add(o.bytes_ob_size))
            .what("str size")?;
        if size > isize::MAX as usize {
            return Err(Error::Corrupt {
                what: "str size",
                addr,
            });
        }
        // A character is at most 4 bytes of UTF-8.
        let raw = self
            .mem
            .read_vec(
                addr.wrapping_add(o.bytes_ob_sval),
                size.min(max_chars.saturating_mul(4)),
            )
            .what("str data")?;
        Ok(String::from_utf8_lossy(&raw)
            .chars()
            .take(max_chars)
            .collect())
    }

    /// Python 2 `unicode`: `length` `Py_UNICODE` units (2 or 4 bytes) at `str`.
    fn read_unicode_py2(&self, addr: usize, max_chars: usize) -> Result<String, Error> {
        let o = &self.layout.offsets;
        let (Some(str_off), Some(unit)) = (o.unicode_str, o.unicode_char_size) else {
            return Err(Error::Corrupt {
                what: "unicode layout",
                addr,
            });
        };
        let length = self
            .mem
            .read_usize(addr.wrapping_add(o.unicode_length))
            .what("unicode length")?;
        let data = self
            .mem
            .read_usize(addr.wrapping_add(str_off))
            .what("unicode data pointer")?;
        if length > isize::MAX as usize / 4 || !matches!(unit, 2 | 4) {
            return Err(Error::Corrupt {
                what: "unicode header",
                addr,
            });
        }
        let raw = self
            .mem
            .read_vec(data, length.min(max_chars) * unit)
            .what("unicode data")?;
        Ok(decode_units(&raw, unit, false))
    }

    /// Where the last (up to) `max` bytes of a compact `str`'s text are, or
    /// `None` for an empty or non-compact string (Python 2: of a `str`'s
    /// bytes).
    pub fn str_tail(&self, addr: usize, max: usize) -> Result<Option<(usize, usize)>, Error> {
        let o = &self.layout.offsets;
        if self.layout.flavor.py2 {
            let size = self
                .mem
                .read_usize(addr.wrapping_add(o.bytes_ob_size))
                .what("str size")?;
            if size == 0 || size > isize::MAX as usize {
                return Ok(None);
            }
            let len = size.min(max);
            return Ok(Some((
                addr.wrapping_add(o.bytes_ob_sval).wrapping_add(size - len),
                len,
            )));
        }
        let (state_off, ascii_size, compact_size) = self.pep393(addr)?;
        let length = self
            .mem
            .read_usize(addr.wrapping_add(o.unicode_length))
            .what("str length")?;
        let state = self
            .mem
            .read_u64(addr.wrapping_add(state_off))
            .what("str state")? as u32;
        let (kind, compact, ascii) = (
            (state >> 2) & 7,
            (state >> 5) & 1 == 1,
            (state >> 6) & 1 == 1,
        );
        if length == 0 || !compact || !matches!(kind, 1 | 2 | 4) || length > isize::MAX as usize / 4
        {
            return Ok(None);
        }
        let data = addr.wrapping_add(if ascii { ascii_size } else { compact_size });
        let bytes = length * kind as usize;
        let len = bytes.min(max);
        Ok(Some((data.wrapping_add(bytes - len), len)))
    }

    /// A `bytes` object's contents, refusing ones over `max` bytes.
    pub fn read_bytes(&self, addr: usize, max: usize) -> Result<Vec<u8>, Error> {
        let o = &self.layout.offsets;
        let size = self
            .mem
            .read_usize(addr.wrapping_add(o.bytes_ob_size))
            .what("bytes size")?;
        if size > max {
            return Err(Error::Corrupt {
                what: "bytes size",
                addr,
            });
        }
        self.mem
            .read_vec(addr.wrapping_add(o.bytes_ob_sval), size)
            .what("bytes data")
    }

    /// The type object of an object.
    pub fn type_of(&self, obj: usize) -> Result<usize, Error> {
        self.mem
            .read_usize(obj.wrapping_add(self.layout.offsets.ob_type))
            .what("object type")
    }

    /// A type's `tp_name`, cached by type address.
    pub fn type_name(&self, ty: usize) -> Result<Arc<str>, Error> {
        if let Some(name) = self.names().get(&ty) {
            return Ok(name.clone());
        }
        let ptr = self
            .mem
            .read_usize(ty.wrapping_add(self.layout.offsets.type_tp_name))
            .what("type name pointer")?;
        let mut buf = [0u8; 128];
        self.mem.read(ptr, &mut buf[..64]).what("type name")?;
        let end = buf.iter().position(|b| *b == 0).unwrap_or(64);
        let name: Arc<str> = String::from_utf8_lossy(&buf[..end]).into();
        self.names().insert(ty, name.clone());
        Ok(name)
    }

    fn names(&self) -> std::sync::MutexGuard<'_, HashMap<usize, Arc<str>>> {
        // The map stays consistent even if a holder panicked.
        self.type_names
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A type's `tp_flags`.
    pub fn type_flags(&self, ty: usize) -> Result<u64, Error> {
        self.mem
            .read_u64(ty.wrapping_add(self.layout.offsets.type_tp_flags))
            .what("type flags")
    }

    /// An `int`'s value when it fits in an `i128`; `None` when larger.
    /// Python 2: an `int` (or `bool`, a C `long`) or a `long`.
    pub fn read_int(&self, addr: usize) -> Result<Option<i128>, Error> {
        let o = &self.layout.offsets;
        if let Some(ival) = o.int_ob_ival {
            let ty = self.type_of(addr)?;
            if matches!(&*self.type_name(ty)?, "int" | "bool") {
                let v = self
                    .mem
                    .read_u64(addr.wrapping_add(ival))
                    .what("int value")?;
                return Ok(Some(v as i64 as i128));
            }
        }
        let tag = self
            .mem
            .read_u64(addr.wrapping_add(o.long_lv_tag))
            .what("int size")?;
        let (negative, ndigits) = if self.layout.flavor.long_lv_tag {
            // 3.12+: low 2 bits sign (0 positive, 1 zero, 2 negative), the
            // rest the digit count.
            ((tag & 3) == 2, (tag >> 3) as usize)
        } else {
            let size = tag as i64;
            (size < 0, size.unsigned_abs() as usize)
        };
        if ndigits > 4 {
            return Ok(None);
        }
        let mut digits = [0u8; 16];
        self.mem
            .read(
                addr.wrapping_add(o.long_ob_digit),
                &mut digits[..ndigits * 4],
            )
            .what("int digits")?;
        let mut value: i128 = 0;
        for i in (0..ndigits).rev() {
            let d =
                u32::from_le_bytes(digits[i * 4..i * 4 + 4].try_into().unwrap()) & ((1 << 30) - 1);
            value = (value << 30) | d as i128;
        }
        Ok(Some(if negative { -value } else { value }))
    }

    /// A `float`'s value.
    pub fn read_float(&self, addr: usize) -> Result<f64, Error> {
        let bits = self
            .mem
            .read_u64(addr.wrapping_add(self.layout.offsets.float_ob_fval))
            .what("float")?;
        Ok(f64::from_bits(bits))
    }

    /// The item pointers of a tuple, refusing more than `max` items.
    pub fn tuple_items(&self, addr: usize, max: usize) -> Result<Vec<usize>, Error> {
        let o = &self.layout.offsets;
        let n = self
            .mem
            .read_usize(addr.wrapping_add(o.tuple_ob_size))
            .what("tuple size")?;
        if n > max {
            return Err(Error::Corrupt {
                what: "tuple size",
                addr,
            });
        }
        self.pointers(addr.wrapping_add(o.tuple_ob_item), n)
    }

    /// `n` pointers starting at `addr`, in one read.
    pub fn pointers(&self, addr: usize, n: usize) -> Result<Vec<usize>, Error> {
        let raw = self.mem.read_vec(addr, n * 8).what("pointer array")?;
        Ok(raw
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()) as usize)
            .collect())
    }
}

/// A little-endian `usize` at `off` of `bytes` (0 when out of range).
pub(crate) fn usize_at(bytes: &[u8], off: usize) -> usize {
    bytes
        .get(off..off + 8)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap()) as usize)
        .unwrap_or(0)
}

/// A little-endian `i32` at `off` of `bytes` (0 when out of range).
pub(crate) fn i32_at(bytes: &[u8], off: usize) -> i32 {
    bytes
        .get(off..off + 4)
        .map(|b| i32::from_le_bytes(b.try_into().unwrap()))
        .unwrap_or(0)
}

/// Text from code units of `unit` bytes (1: Latin-1, or ASCII when `ascii`;
/// 2: UTF-16; 4: UCS-4), little-endian. Bad units become U+FFFD.
fn decode_units(raw: &[u8], unit: usize, ascii: bool) -> String {
    match unit {
        1 if ascii => String::from_utf8_lossy(raw).into_owned(),
        1 => raw.iter().map(|&b| b as char).collect(),
        2 => {
            let units: Vec<u16> = raw
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16_lossy(&units)
        }
        _ => raw
            .chunks_exact(4)
            .map(|c| {
                char::from_u32(u32::from_le_bytes([c[0], c[1], c[2], c[3]])).unwrap_or('\u{fffd}')
            })
            .collect(),
    }
}
