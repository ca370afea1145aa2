//! Reading `dict`s and instance attributes (3.11+ layouts), bounded.

use pyspy_process::MemoryExt;

use crate::error::{Error, ReadContext};
use crate::layout::{ManagedDict, TPFLAGS_INLINE_VALUES, TPFLAGS_MANAGED_DICT};
use crate::objects::{usize_at, ObjectReader};

/// Most entries read from one dict.
pub const MAX_DICT_ENTRIES: usize = 1 << 16;
/// Header of `PyDictKeysObject` before `dk_indices` (64-bit, GIL builds).
const KEYS_HEADER: usize = 32;

impl<M: pyspy_process::Memory> ObjectReader<M> {
    /// The `(key, value)` object pointers of a dict, in insertion order,
    /// skipping deleted slots.
    pub fn dict_items(&self, dict: usize) -> Result<Vec<(usize, usize)>, Error> {
        let o = &self.layout.offsets;
        let keys = self
            .mem
            .read_usize(dict.wrapping_add(o.dict_ma_keys))
            .what("dict keys")?;
        let values = self
            .mem
            .read_usize(dict.wrapping_add(o.dict_ma_values))
            .what("dict values")?;
        let values =
            (values != 0).then(|| values.wrapping_add(self.layout.flavor.dict_values_array));
        self.keys_items(keys, values)
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
        let head_len = o.unicode_state.max(o.unicode_length) + 8;
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
                let state =
                    u32::from_le_bytes(h[o.unicode_state..o.unicode_state + 4].try_into().unwrap());
                let compact_ascii = (state >> 5) & 3 == 3;
                compact_ascii && usize_at(h, o.unicode_length) == name.len()
            })
            .collect();
        let mut texts = vec![0u8; name.len() * candidates.len()];
        let mut reads: Vec<(usize, &mut [u8])> = candidates
            .iter()
            .zip(texts.chunks_mut(name.len().max(1)))
            .map(|(&i, b)| (items[i].0 + o.unicode_ascii_size, b))
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
        if flags & TPFLAGS_MANAGED_DICT == 0 {
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
            self.mem
                .read_usize(ty.wrapping_add(o.heap_type_cached_keys))
                .what("cached keys")
        };
        let array = self.layout.flavor.dict_values_array;
        match self.layout.flavor.managed_dict {
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
