//! Reading `dict`s and instance attributes, bounded: the 2.7 hash table,
//! the 3.6–3.10 compact dict and the 3.11+ layouts.

use pyspy_process::MemoryExt;

use crate::error::{Error, ReadContext};
use crate::layout::{DictKind, ManagedDict, TPFLAGS_INLINE_VALUES, TPFLAGS_MANAGED_DICT};
use crate::objects::{usize_at, ObjectReader};

/// Most entries read from one dict.
pub const MAX_DICT_ENTRIES: usize = 1 << 16;
/// Header of `PyDictKeysObject` before `dk_indices` (3.11+, 64-bit, GIL builds).
const KEYS_HEADER: usize = 32;
/// 3.6–3.10 `PyDictKeysObject` (declared in `Objects/dict-common.h`, which
/// is not installed, so not probed): `dk_refcnt`, `dk_size`, `dk_lookup`,
/// `dk_usable`, `dk_nentries`, each 8 bytes, then `dk_indices`, whose
/// entries are 1, 2, 4 or 8 bytes wide by `dk_size`. The `PyDictKeyEntry`s
/// (hash, key, value) follow the index array.
const KEYS36_SIZE: usize = 8;
const KEYS36_NENTRIES: usize = 32;
const KEYS36_INDICES: usize = 40;
/// `PyDictKeyEntry` / 2.7 `PyDictEntry`: hash, key, value.
const ENTRY_SIZE: usize = 24;

impl<M: pyspy_process::Memory> ObjectReader<M> {
    /// The `(key, value)` object pointers of a dict, in insertion order
    /// (2.7: table order), skipping deleted slots.
    pub fn dict_items(&self, dict: usize) -> Result<Vec<(usize, usize)>, Error> {
        let o = &self.layout.offsets;
        let field = |off: Option<usize>, what: &'static str| -> Result<usize, Error> {
            let off = off.ok_or(Error::Corrupt {
                what: "dict layout",
                addr: dict,
            })?;
            self.mem.read_usize(dict.wrapping_add(off)).what(what)
        };
        if self.layout.flavor.dict == DictKind::Table27 {
            return self.table27_items(
                field(o.dict_ma_mask, "dict mask")?,
                field(o.dict_ma_table, "dict table")?,
            );
        }
        let keys = field(o.dict_ma_keys, "dict keys")?;
        let values = field(o.dict_ma_values, "dict values")?;
        let values =
            (values != 0).then(|| values.wrapping_add(self.layout.flavor.dict_values_array));
        match self.layout.flavor.dict {
            DictKind::Compact36 => self.keys36_items(keys, values),
            _ => self.keys_items(keys, values),
        }
    }

    /// 2.7: `mask + 1` entries at `table`; unused slots have no key and
    /// deleted ones no value.
    fn table27_items(&self, mask: usize, table: usize) -> Result<Vec<(usize, usize)>, Error> {
        let slots = mask.wrapping_add(1);
        if !slots.is_power_of_two() || slots > MAX_DICT_ENTRIES * 4 {
            return Err(Error::Corrupt {
                what: "dict mask",
                addr: table,
            });
        }
        let raw = self
            .mem
            .read_vec(table, slots * ENTRY_SIZE)
            .what("dict table")?;
        Ok(raw
            .chunks_exact(ENTRY_SIZE)
            .map(|e| (usize_at(e, 8), usize_at(e, 16)))
            .filter(|&(k, v)| k != 0 && v != 0)
            .collect())
    }

    /// 3.6–3.10: the entries of a keys object; `values` is the value array
    /// of a split table (value `i` belongs to entry `i`).
    fn keys36_items(
        &self,
        keys: usize,
        values: Option<usize>,
    ) -> Result<Vec<(usize, usize)>, Error> {
        let mut head = [0u8; KEYS36_INDICES];
        self.mem.read(keys, &mut head).what("dict keys header")?;
        let size = usize_at(&head, KEYS36_SIZE);
        let nentries = usize_at(&head, KEYS36_NENTRIES);
        if !size.is_power_of_two() || size > 1 << 30 || nentries > size.min(MAX_DICT_ENTRIES) {
            return Err(Error::Corrupt {
                what: "dict keys header",
                addr: keys,
            });
        }
        let index_bytes = match size {
            0..=0xff => 1,
            0x100..=0xffff => 2,
            0x1_0000..=0xffff_ffff => 4,
            _ => 8,
        };
        let entries = keys.wrapping_add(KEYS36_INDICES + size * index_bytes);
        let raw = self
            .mem
            .read_vec(entries, nentries * ENTRY_SIZE)
            .what("dict entries")?;
        let vals = match values {
            Some(v) => Some(self.pointers(v, nentries)?),
            None => None,
        };
        let mut out = Vec::with_capacity(nentries);
        for (i, e) in raw.chunks_exact(ENTRY_SIZE).enumerate() {
            let key = usize_at(e, 8);
            let value = match &vals {
                Some(v) => v[i],
                None => usize_at(e, 16),
            };
            if key != 0 && value != 0 {
                out.push((key, value));
            }
        }
        Ok(out)
    }

    /// Items of a keys object; `values` is the value array of a split table.
    fn keys_items(&self, keys: usize, values: Option<usize>) -> Result<Vec<(usize, usize)>, Error> {
        let mut head = [0u8; KEYS_HEADER];
        self.mem.read(keys, &mut head).what("dict keys header")?;
        let (log2_size, log2_index_bytes, kind) = (head[8], head[9], head[10]);
        let nentries = usize_at(&head, 24);
        if log2_size > 30
            || log2_index_bytes > 34
            || kind > 2
            || nentries > MAX_DICT_ENTRIES
            || nentries > 1 << log2_size
        {
            return Err(Error::Corrupt {
                what: "dict keys header",
                addr: keys,
            });
        }
        let entry_size = if kind == 0 { 24 } else { 16 };
        let entries = keys.wrapping_add(KEYS_HEADER + (1usize << log2_index_bytes));
        let raw = self
            .mem
            .read_vec(entries, nentries * entry_size)
            .what("dict entries")?;
        let vals = match values {
            Some(v) => Some(self.pointers(v, nentries)?),
            None => None,
        };
        let key_at = if kind == 0 { 8 } else { 0 };
        let mut out = Vec::with_capacity(nentries);
        for i in 0..nentries {
            let e = &raw[i * entry_size..(i + 1) * entry_size];
            let key = usize_at(e, key_at);
            let value = match &vals {
                Some(v) => v[i],
                None => usize_at(e, key_at + 8),
            };
            if key != 0 && value != 0 {
                out.push((key, value));
            }
        }
        Ok(out)
    }

    /// The value stored under the ASCII `str` key `name`, if any. Reads the
    /// headers of all keys in one call and the text of only those of the
    /// right length in a second.
    pub fn lookup_str_key(&self, items: &[(usize, usize)], name: &str) -> Option<usize> {
        let o = &self.layout.offsets;
        // Where the length and the text are, and (3.x) the state word that
        // says the text is compact ASCII. Python 2 keys are byte strings.
        let (len_at, text_at, state_at) = if self.layout.flavor.py2 {
            (o.bytes_ob_size, o.bytes_ob_sval, None)
        } else {
            (
                o.unicode_length,
                o.unicode_ascii_size?,
                Some(o.unicode_state?),
            )
        };
        let head_len = state_at.unwrap_or(0).max(len_at) + 8;
        if head_len > 256 {
            return None; // a layout no real str has: checked before allocating
        }
        let mut heads = vec![0u8; head_len * items.len()];
        let mut reads: Vec<(usize, &mut [u8])> = items
            .iter()
            .zip(heads.chunks_mut(head_len))
            .map(|(&(k, _), b)| (k, b))
            .collect();
        if self.mem.read_many(&mut reads).is_err() {
            // One unreadable key: fall back to reading them one by one.
            return items
                .iter()
                .find_map(|&(k, v)| (self.read_str(k, name.len() + 1).ok()? == name).then_some(v));
        }
        let candidates: Vec<usize> = (0..items.len())
            .filter(|&i| {
                let h = &heads[i * head_len..(i + 1) * head_len];
                let compact_ascii = state_at.is_none_or(|at| {
                    let state = u32::from_le_bytes(h[at..at + 4].try_into().unwrap());
                    (state >> 5) & 3 == 3
                });
                compact_ascii && usize_at(h, len_at) == name.len()
            })
            .collect();
        let mut texts = vec![0u8; name.len() * candidates.len()];
        let mut reads: Vec<(usize, &mut [u8])> = candidates
            .iter()
            .zip(texts.chunks_mut(name.len().max(1)))
            .map(|(&i, b)| (items[i].0.wrapping_add(text_at), b))
            .collect();
        self.mem.read_many(&mut reads).ok()?;
        candidates
            .iter()
            .zip(texts.chunks(name.len().max(1)))
            .find(|(_, text)| *text == name.as_bytes())
            .map(|(&i, _)| items[i].1)
    }

    /// The items of an object's `__dict__`, wherever this version keeps it.
    pub fn instance_dict_items(&self, obj: usize) -> Result<Vec<(usize, usize)>, Error> {
        let o = &self.layout.offsets;
        let ty = self.type_of(obj)?;
        let flags = self.type_flags(ty)?;
        let managed = self.layout.flavor.managed_dict != ManagedDict::None;
        if !managed || flags & TPFLAGS_MANAGED_DICT == 0 {
            let dictoffset = self
                .mem
                .read_usize(ty.wrapping_add(o.type_tp_dictoffset))
                .what("type dictoffset")? as isize;
            if dictoffset <= 0 {
                return Ok(Vec::new());
            }
            let dict = self
                .mem
                .read_usize(obj.wrapping_add(dictoffset as usize))
                .what("instance dict")?;
            return if dict == 0 {
                Ok(Vec::new())
            } else {
                self.dict_items(dict)
            };
        }
        let word = self
            .mem
            .read_usize(obj.wrapping_sub(self.layout.flavor.managed_dict_offset()))
            .what("managed dict")?;
        let shared_keys = || {
            let off = o.heap_type_cached_keys.ok_or(Error::Corrupt {
                what: "type layout",
                addr: ty,
            })?;
            self.mem
                .read_usize(ty.wrapping_add(off))
                .what("cached keys")
        };
        let array = self.layout.flavor.dict_values_array;
        match self.layout.flavor.managed_dict {
            ManagedDict::None => Ok(Vec::new()),
            ManagedDict::V311 => {
                if word != 0 {
                    return self.dict_items(word);
                }
                let values = self
                    .mem
                    .read_usize(obj.wrapping_sub(32))
                    .what("managed values")?;
                if values == 0 {
                    return Ok(Vec::new());
                }
                self.keys_items(shared_keys()?, Some(values.wrapping_add(array)))
            }
            ManagedDict::V312 => {
                if word & 1 == 1 {
                    self.keys_items(shared_keys()?, Some(word.wrapping_add(1 + array)))
                } else if word != 0 {
                    self.dict_items(word)
                } else {
                    Ok(Vec::new())
                }
            }
            ManagedDict::V313 => {
                if word != 0 {
                    return self.dict_items(word);
                }
                if flags & TPFLAGS_INLINE_VALUES == 0 {
                    return Ok(Vec::new());
                }
                let basicsize = self
                    .mem
                    .read_usize(ty + o.type_tp_basicsize)
                    .what("type basicsize")?;
                if basicsize == 0 || basicsize > 1 << 20 {
                    return Err(Error::Corrupt {
                        what: "type basicsize",
                        addr: ty,
                    });
                }
                self.keys_items(shared_keys()?, Some(obj.wrapping_add(basicsize + array)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{layout_for, Version};
    use pyspy_process::FakeMemory;

    fn reader(mem: FakeMemory, major: u8, minor: u8) -> ObjectReader<FakeMemory> {
        let layout = layout_for(&FakeMemory::new(), Version::new(major, minor, 0), 0).unwrap();
        ObjectReader::new(mem, layout)
    }

    fn words(ws: &[usize]) -> Vec<u8> {
        ws.iter().flat_map(|w| (*w as u64).to_le_bytes()).collect()
    }

    /// A 3.6–3.10 keys object at `keys` with `size` slots and the given
    /// (key, value) entries; the index array is left zero.
    fn place_keys36(mem: &mut FakeMemory, keys: usize, size: usize, entries: &[(usize, usize)]) {
        mem.place(keys, words(&[1, size, 0, 0, entries.len()]));
        let width = match size {
            0..=0xff => 1,
            0x100..=0xffff => 2,
            _ => 4,
        };
        let mut raw = vec![0u8; size * width];
        for (hash, (k, v)) in entries.iter().enumerate() {
            raw.extend(words(&[hash, *k, *v]));
        }
        mem.place(keys + KEYS36_INDICES, raw);
    }

    #[test]
    fn compact_36_dicts_by_index_width_and_split_values() {
        for size in [8, 512, 0x1_0000] {
            let mut mem = FakeMemory::new();
            let (dict, keys) = (0x1000, 0x10_0000);
            let o = reader(FakeMemory::new(), 3, 9).layout.offsets;
            let mut d = vec![0u8; 48];
            d[o.dict_ma_keys.unwrap()..][..8].copy_from_slice(&(keys as u64).to_le_bytes());
            mem.place(dict, d);
            // A deleted entry (no key) is skipped.
            place_keys36(&mut mem, keys, size, &[(0xa0, 0xb0), (0, 0), (0xa1, 0xb1)]);
            let r = reader(mem, 3, 9);
            assert_eq!(
                r.dict_items(dict).unwrap(),
                vec![(0xa0, 0xb0), (0xa1, 0xb1)],
                "dk_size {size}"
            );
        }
        // Split table: values from ma_values, in entry order.
        let mut mem = FakeMemory::new();
        let (dict, keys, values) = (0x1000, 0x2000, 0x3000);
        let o = reader(FakeMemory::new(), 3, 6).layout.offsets;
        let mut d = vec![0u8; 48];
        d[o.dict_ma_keys.unwrap()..][..8].copy_from_slice(&(keys as u64).to_le_bytes());
        d[o.dict_ma_values.unwrap()..][..8].copy_from_slice(&(values as u64).to_le_bytes());
        mem.place(dict, d);
        place_keys36(&mut mem, keys, 8, &[(0xa0, 0), (0xa1, 0)]);
        mem.place(values, words(&[0xc0, 0]));
        let r = reader(mem, 3, 6);
        assert_eq!(r.dict_items(dict).unwrap(), vec![(0xa0, 0xc0)]);
    }

    #[test]
    fn corrupt_36_keys_are_refused() {
        for (size, nentries) in [(0, 0), (12, 1), (8, 9), (1 << 40, 1)] {
            let mut mem = FakeMemory::new();
            mem.place(0x1000, words(&[0, 0, 0, 0, 0x2000, 0]));
            mem.place(0x2000, words(&[1, size, 0, 0, nentries]));
            let r = reader(mem, 3, 8);
            assert!(
                r.dict_items(0x1000).is_err(),
                "size {size}, {nentries} entries"
            );
        }
        // The same dict with a sound header reads (here: no entries).
        let mut mem = FakeMemory::new();
        mem.place(0x1000, words(&[0, 0, 0, 0, 0x2000, 0]));
        mem.place(0x2000, words(&[1, 8, 0, 0, 0]));
        mem.place(0x2000 + KEYS36_INDICES, vec![0u8; 8]);
        assert_eq!(reader(mem, 3, 8).dict_items(0x1000).unwrap(), vec![]);
    }

    #[test]
    fn python2_hash_tables() {
        let mut mem = FakeMemory::new();
        let (dict, table) = (0x1000, 0x2000);
        let o = reader(FakeMemory::new(), 2, 7).layout.offsets;
        let mut d = vec![0u8; 48];
        d[o.dict_ma_mask.unwrap()..][..8].copy_from_slice(&7u64.to_le_bytes());
        d[o.dict_ma_table.unwrap()..][..8].copy_from_slice(&(table as u64).to_le_bytes());
        mem.place(dict, d);
        // 8 slots: used, unused, deleted (dummy key, no value), used, 4 unused.
        let mut slots = words(&[1, 0xa0, 0xb0, 0, 0, 0, 2, 0xdd, 0, 3, 0xa3, 0xb3]);
        slots.resize(8 * ENTRY_SIZE, 0);
        mem.place(table, slots);
        let r = reader(mem, 2, 7);
        assert_eq!(
            r.dict_items(dict).unwrap(),
            vec![(0xa0, 0xb0), (0xa3, 0xb3)]
        );
        // A mask that is not 2^n - 1: refused.
        let mut mem = FakeMemory::new();
        let mut d = vec![0u8; 48];
        d[o.dict_ma_mask.unwrap()..][..8].copy_from_slice(&6u64.to_le_bytes());
        mem.place(dict, d);
        assert!(reader(mem, 2, 7).dict_items(dict).is_err());
    }
}
