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
            .read_usize(obj.wrapping_sub(24))
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
