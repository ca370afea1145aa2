//! Code objects: what a frame's code says (name, file, line table), cached
//! by address and re-validated on every read, because a freed code object's
//! address is soon reused by another one.

use std::sync::Arc;

use pyspy_process::MemoryExt;

use crate::error::{Error, ReadContext};
use crate::linetable::MAX_LINETABLE;
use crate::objects::{i32_at, usize_at};
use crate::walker::{StackWalker, MAX_NAME};
use crate::Layout;
use pyspy_process::Memory;

/// What a frame's code object says about it (immutable while it lives).
#[derive(Debug)]
pub struct CodeInfo {
    /// The name frames are shown by: `co_qualname` (e.g. `Class.method`,
    /// `outer.<locals>.inner`) on 3.11+, `co_name` before (no qualified
    /// name exists there).
    pub name: Arc<str>,
    /// `co_filename`.
    pub filename: Arc<str>,
    /// `co_firstlineno`.
    pub first_line: i32,
    /// `co_linetable` contents (`co_lnotab` before 3.10).
    pub linetable: Vec<u8>,
    /// `co_argcount`.
    pub argcount: i32,
    /// `co_localsplusnames` (a tuple of str; `co_varnames` before 3.11).
    pub localsplusnames: usize,
    /// `co_localspluskinds` (a bytes object; 0 before 3.11).
    pub localspluskinds: usize,
    /// `co_nlocals` before 3.11 (how many of `co_varnames` are the frame's
    /// first slots); `None` from 3.11 on.
    pub nlocals: Option<i32>,
    /// Remote ranges and the bytes they held when this was read: the code
    /// object's name/qualified-name/filename/line-table/first-line fields,
    /// and the length, hash, state and last bytes of its shown name
    /// (qualified on 3.11+) and filename strings. Compared
    /// on later reads to notice that the object was freed and its address
    /// reused (possibly with the same pointers but other text).
    pub(crate) checks: Vec<(usize, Vec<u8>)>,
}

/// A cached code object and the 3.14+ code-object generation at which it
/// was last known valid (`None`: checked by its bytes every read).
#[derive(Debug)]
pub(crate) struct CachedCode {
    pub(crate) info: Arc<CodeInfo>,
    pub(crate) checked: Option<u64>,
    /// The read (`StackWalker::read_id`) whose snapshot last checked it.
    pub(crate) checked_read: u64,
    /// Recent (instruction position, line) answers: decoding a line table
    /// per frame per sample was the walk's largest cost.
    lines: [(usize, i32); LINE_CACHE],
    next_line: usize,
}

/// Longest string header-to-end range checked as one piece.
const MERGED_STR: usize = 96;

/// Lines remembered per code object.
const LINE_CACHE: usize = 8;

impl CachedCode {
    fn new(info: Arc<CodeInfo>, checked: Option<u64>, checked_read: u64) -> Self {
        CachedCode {
            info,
            checked,
            checked_read,
            lines: [(usize::MAX, 0); LINE_CACHE],
            next_line: 0,
        }
    }

    /// The line cached for `instr`.
    pub(crate) fn cached_line(&self, instr: usize) -> Option<i32> {
        self.lines.iter().find(|l| l.0 == instr).map(|l| l.1)
    }

    /// Remembers a line, replacing the oldest one.
    pub(crate) fn cache_line(&mut self, instr: usize, line: i32) {
        self.lines[self.next_line] = (instr, line);
        self.next_line = (self.next_line + 1) % LINE_CACHE;
    }
}

impl<M: Memory> StackWalker<M> {
    /// Evicts cached code objects whose checked bytes no longer match
    /// memory (freed, and the address reused): one `read_many` for all.
    pub(crate) fn validate_codes(
        &mut self,
        codes: impl Iterator<Item = usize>,
    ) -> Result<(), Error> {
        // 3.14+: a code object freed since one was checked bumps the
        // interpreter's generation; while it is unchanged (and every frame
        // came from the snapshot that read it) no text needs comparing.
        let (generation, read) = (self.generation, self.read_id);
        let vouched = |cc: &CachedCode| {
            (self.snapshot_vouches && cc.checked_read == read)
                || (generation.is_some() && cc.checked == generation)
        };
        // A code repeated frame after frame (recursion) is looked up once.
        let mut last = None;
        let mut cached: Vec<usize> = codes
            .filter(|&c| last.replace(c) != Some(c))
            .filter(|c| self.codes.get(c).is_some_and(|cc| !vouched(cc)))
            .collect();
        cached.sort_unstable();
        cached.dedup();
        if cached.is_empty() {
            return Ok(());
        }
        let infos: Vec<Arc<CodeInfo>> = cached.iter().map(|c| self.codes[c].info.clone()).collect();
        let total: usize = infos
            .iter()
            .flat_map(|i| &i.checks)
            .map(|(_, b)| b.len())
            .sum();
        self.check_buf.resize(total, 0);
        let mut rest = &mut self.check_buf[..];
        let mut reads: Vec<(usize, &mut [u8])> = Vec::new();
        for (addr, expected) in infos.iter().flat_map(|i| &i.checks) {
            let (head, tail) = rest.split_at_mut(expected.len());
            reads.push((*addr, head));
            rest = tail;
        }
        let ok = self.objects.mem.read_many(&mut reads).is_ok();
        drop(reads);
        let mut at = 0;
        for (code, info) in cached.iter().zip(&infos) {
            let mut same = ok;
            for (_, expected) in &info.checks {
                same &= self.check_buf[at..at + expected.len()] == expected[..];
                at += expected.len();
            }
            if !same {
                // Gone or replaced: re-read on next use.
                self.codes.remove(code);
                self.evicted.push(*code);
            } else if let Some(cc) = self.codes.get_mut(code) {
                cc.checked = generation;
                cc.checked_read = read;
            }
        }
        Ok(())
    }

    /// The ranges [`CodeInfo::checks`] compares, read now.
    fn code_checks(&self, addr: usize, raw: &[u8]) -> Result<Vec<(usize, Vec<u8>)>, Error> {
        let o = self.layout().offsets;
        let window = self.fingerprint.clone();
        let mut checks = vec![(
            addr.wrapping_add(window.start),
            raw.get(window).unwrap_or_default().to_vec(),
        )];
        // The texts shown: on 3.11+ the qualified name stands in for the
        // name (whose pointer the fingerprint still covers), so a sample
        // checks as many ranges as before.
        for field in [o.code_qualname.unwrap_or(o.code_name), o.code_filename] {
            let s = usize_at(raw, field);
            // length, hash and state (not the reference count, which moves);
            // Python 2: the byte string's size (its hash is set lazily).
            let (head_at, head_len) = match o.unicode_state {
                Some(state) if !self.layout().flavor.py2 => (
                    s.wrapping_add(o.unicode_length),
                    (state + 4).saturating_sub(o.unicode_length).clamp(8, 32),
                ),
                _ => (s.wrapping_add(o.bytes_ob_size), 8),
            };
            let tail = self.objects.str_tail(s, 16)?;
            // A short string's header and last bytes as one range (one
            // iovec per check instead of two: a sample reads these for every
            // code object on its stacks).
            let merged = tail.and_then(|(at, len)| {
                at.checked_add(len)?
                    .checked_sub(head_at)
                    .filter(|&n| at >= head_at && n <= MERGED_STR)
            });
            let ranges = match tail {
                Some(_) if merged.is_some() => {
                    vec![(head_at, merged.unwrap_or(head_len), "str")]
                }
                Some((tail_at, tail_len)) => {
                    vec![
                        (head_at, head_len, "str header"),
                        (tail_at, tail_len, "str data"),
                    ]
                }
                None => vec![(head_at, head_len, "str header")],
            };
            for (at, len, what) in ranges {
                checks.push((at, self.objects.mem.read_vec(at, len).what(what)?));
            }
        }
        Ok(checks)
    }

    /// Code addresses found stale since the last call: callers that cache
    /// anything by code address must forget those.
    pub fn take_evicted(&mut self) -> Vec<usize> {
        std::mem::take(&mut self.evicted)
    }

    /// Whether the object at `obj` is a code object (types cached).
    pub(crate) fn is_code(&mut self, obj: usize) -> Result<bool, Error> {
        if self.codes.contains_key(&obj) {
            return Ok(true);
        }
        let ty = self.objects.type_of(obj)?;
        if self.code_types.contains(&ty) {
            return Ok(true);
        }
        if self.other_types.contains(&ty) {
            return Ok(false);
        }
        let is_code = &*self.objects.type_name(ty)? == "code";
        if is_code {
            self.code_types.insert(ty);
        } else {
            self.other_types.insert(ty);
        }
        Ok(is_code)
    }

    /// A code object's details, cached by address.
    pub fn code(&mut self, addr: usize) -> Result<Arc<CodeInfo>, Error> {
        if let Some(cc) = self.codes.get(&addr) {
            return Ok(cc.info.clone());
        }
        let o = self.layout().offsets;
        let len = [
            o.code_filename,
            o.code_name,
            o.code_linetable,
            o.code_localsplusnames,
            o.code_localspluskinds.unwrap_or(0),
            o.code_qualname.unwrap_or(0),
        ]
        .into_iter()
        .max()
        .unwrap_or(0)
        .max(o.code_firstlineno.max(o.code_argcount) + 4)
        .max(o.code_nlocals.map_or(0, |n| n + 4));
        let raw = self
            .objects
            .mem
            .read_vec(addr, len + 8)
            .what("code object")?;
        let name: Arc<str> = self
            .objects
            .read_str(
                usize_at(&raw, o.code_qualname.unwrap_or(o.code_name)),
                MAX_NAME,
            )?
            .into();
        let filename: Arc<str> = self
            .objects
            .read_str(usize_at(&raw, o.code_filename), MAX_NAME)?
            .into();
        let linetable = self
            .objects
            .read_bytes(usize_at(&raw, o.code_linetable), MAX_LINETABLE)?;
        let info = Arc::new(CodeInfo {
            name,
            filename,
            first_line: i32_at(&raw, o.code_firstlineno),
            linetable,
            argcount: i32_at(&raw, o.code_argcount),
            localsplusnames: usize_at(&raw, o.code_localsplusnames),
            localspluskinds: o.code_localspluskinds.map_or(0, |k| usize_at(&raw, k)),
            nlocals: o.code_nlocals.map(|n| i32_at(&raw, n)),
            checks: self.code_checks(addr, &raw)?,
        });
        self.codes.insert(
            addr,
            CachedCode::new(info.clone(), self.generation, self.read_id),
        );
        Ok(info)
    }
}

/// The bytes of a code object that identify it: from the first to the last
/// of its name, qualified name, filename, line-table and first-line fields.
pub(crate) fn fingerprint_range(layout: &Layout) -> std::ops::Range<usize> {
    let o = &layout.offsets;
    let fields = [
        o.code_filename,
        o.code_name,
        o.code_qualname.unwrap_or(o.code_name),
        o.code_linetable,
        o.code_firstlineno,
    ];
    let start = fields.iter().copied().min().unwrap_or(0);
    let end = fields.iter().copied().max().unwrap_or(0) + 8;
    start..end.min(start + 128)
}
