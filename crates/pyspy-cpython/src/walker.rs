//! Walking a thread's frames: from the thread state to the innermost
//! `_PyInterpreterFrame` (3.11+) or `PyFrameObject` (up to 3.10), then
//! outwards through `previous` / `f_back`, resolving each frame's code object
//! (cached by address) and line number.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use pyspy_process::{Memory, MemoryExt};

use crate::error::{Error, ReadContext};
use crate::layout::LineTable;
use crate::linetable::{line_for_lasti, line_for_offset, MAX_LINETABLE};
use crate::objects::{i32_at, usize_at, ObjectReader};
use crate::{Frame, Layout};

/// Deepest stack walked; deeper ones are cut (and flagged) rather than
/// followed forever through a corrupt or cyclic chain.
pub const MAX_FRAMES: usize = 4096;
/// Longest function or file name kept.
const MAX_NAME: usize = 4096;
/// Most data-stack chunks read per thread, and the largest chunk read.
const MAX_CHUNKS: usize = 64;
const MAX_CHUNK_BYTES: usize = 4 << 20;
/// Most bytes of chunks copied in one read (all threads together); frames
/// past it are read one by one.
const MAX_CHUNK_TOTAL: usize = 32 << 20;
/// `_PyStackChunk` header: previous, size, top.
const CHUNK_HEADER: usize = 24;

/// What a frame's code object says about it (immutable while it lives).
#[derive(Debug)]
pub struct CodeInfo {
    /// `co_name`.
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
    /// object's name/filename/line-table/first-line fields, and the length,
    /// hash, state and last bytes of its name and filename strings. Compared
    /// on later reads to notice that the object was freed and its address
    /// reused (possibly with the same pointers but other text).
    checks: Vec<(usize, Vec<u8>)>,
}

/// A frame as the walk saw it: where it is, its code, its position and
/// the frame it links to (re-compared by [`StackWalker::walk_unchanged`]).
#[derive(Debug, Clone, Copy)]
struct WalkedFrame {
    addr: usize,
    code: usize,
    instr: usize,
    previous: usize,
}

/// One frame as read from memory, before names are attached.
#[derive(Debug, Clone, Copy)]
pub struct RawFrame {
    /// Remote address of the `_PyInterpreterFrame` (the `PyFrameObject`
    /// before 3.11).
    pub addr: usize,
    /// Remote address of its code object.
    pub code: usize,
    /// Line number (0 when unknown).
    pub line: i32,
}

/// Reads stacks of one interpreter, caching code objects across calls.
pub struct StackWalker<M> {
    /// The object reader (memory, layout, type-name cache).
    pub objects: ObjectReader<M>,
    codes: HashMap<usize, Arc<CodeInfo>>,
    code_types: HashSet<usize>,
    other_types: HashSet<usize>,
    frame_len: usize,
    /// Copies of data-stack chunks taken during the current read: frames
    /// that live in them are read from here instead of one call each.
    chunks: Vec<(usize, Vec<u8>)>,
    /// Bytes in `chunks`.
    chunk_bytes: usize,
    /// The interpreter's GIL state (3.12+), once known.
    pub(crate) gil: Option<usize>,
    /// Byte range of a code object compared to validate the cache.
    fingerprint: std::ops::Range<usize>,
    /// Frames of the current walk, before their code objects are checked.
    pending: Vec<WalkedFrame>,
    /// Scratch for validation reads.
    check_buf: Vec<u8>,
    /// Code addresses evicted as stale since the last `take_evicted`.
    evicted: Vec<usize>,
}

impl<M: Memory> StackWalker<M> {
    /// A walker with empty caches.
    pub fn new(mem: M, layout: Layout) -> Self {
        let o = &layout.offsets;
        let mut frame_len = o
            .frame_previous
            .max(o.frame_executable)
            .max(o.frame_instr_ptr)
            + 8;
        if let Some(owner) = o.frame_owner.or(o.frame_is_entry) {
            frame_len = frame_len.max(owner + 1);
        }
        StackWalker {
            objects: ObjectReader::new(mem, layout),
            codes: HashMap::new(),
            code_types: HashSet::new(),
            other_types: HashSet::new(),
            frame_len,
            chunks: Vec::new(),
            chunk_bytes: 0,
            gil: None,
            fingerprint: fingerprint_range(&layout),
            pending: Vec::new(),
            check_buf: Vec::new(),
            evicted: Vec::new(),
        }
    }

    /// The layout in use.
    pub fn layout(&self) -> &Layout {
        &self.objects.layout
    }

    /// The innermost frame of a thread, given its thread-state bytes, and
    /// where the pointer to it lives.
    pub fn top_frame(&self, tstate_addr: usize, tstate: &[u8]) -> Result<(usize, usize), Error> {
        let o = &self.layout().offsets;
        if let Some(off) = o.tstate_current_frame.or(o.tstate_frame) {
            return Ok((usize_at(tstate, off), tstate_addr.wrapping_add(off)));
        }
        let cframe = usize_at(tstate, o.tstate_cframe.unwrap_or(0));
        if cframe == 0 {
            return Ok((0, 0));
        }
        let at = cframe.wrapping_add(o.cframe_current_frame.unwrap_or(0));
        Ok((
            self.objects
                .mem
                .read_usize(at)
                .what("cframe current frame")?,
            at,
        ))
    }

    /// Whether a thread's stack is still the one just walked: its top-frame
    /// pointer (at `slot`) still points at `top`, the top frame still runs
    /// the same code, and every frame below it is still suspended at the
    /// same instruction in the same code. A frame below the top cannot move
    /// without the frames above it returning first, so a stack that passes
    /// was really there, at once, even if it was copied while running (and
    /// one that unwound and came back to the same top between the copy and
    /// this check is caught by the frames whose position changed). One
    /// batched read.
    pub fn walk_unchanged(&mut self, slot: usize, top: usize) -> Result<bool, Error> {
        if slot == 0 || top == 0 {
            return Ok(true);
        }
        let o = self.layout().offsets;
        let fields = [o.frame_executable, o.frame_instr_ptr, o.frame_previous];
        let lo = fields.into_iter().min().unwrap_or(0);
        let hi = fields.into_iter().max().unwrap_or(0) + 8;
        let span = hi - lo;
        if span > 256 {
            // No real frame has these pointers this far apart: checked
            // before allocating span x frames.
            return Err(Error::Corrupt {
                what: "frame layout",
                addr: top,
            });
        }
        let frames = std::mem::take(&mut self.pending);
        self.check_buf.resize(16 + span * frames.len(), 0);
        let (slots, rest) = self.check_buf.split_at_mut(16);
        let (first_slot, last_slot) = slots.split_at_mut(8);
        let mut reads: Vec<(usize, &mut [u8])> = Vec::with_capacity(frames.len() + 2);
        reads.push((slot, first_slot));
        for (f, buf) in frames.iter().zip(rest.chunks_mut(span)) {
            reads.push((f.addr.wrapping_add(lo), buf));
        }
        // The top-frame pointer again, after the frames: a stack that
        // unwound and was rebuilt at the same addresses (frame objects are
        // reused) while the frames were compared shows a different top.
        reads.push((slot, last_slot));
        let read = self.objects.mem.read_many(&mut reads).is_ok();
        drop(reads);
        let mut same =
            read && usize_at(&self.check_buf, 0) == top && usize_at(&self.check_buf, 8) == top;
        for (i, f) in frames.iter().enumerate() {
            if !same {
                break;
            }
            let now = &self.check_buf[16 + i * span..16 + (i + 1) * span];
            same &= usize_at(now, o.frame_executable - lo) & !7 == f.code;
            same &= usize_at(now, o.frame_previous - lo) == f.previous;
            if f.addr != top {
                same &= usize_at(now, o.frame_instr_ptr - lo) == f.instr;
            }
        }
        self.pending = frames;
        Ok(same)
    }

    /// Raw frames from `top` outwards (innermost first), skipping frames
    /// that run no Python code (C-stack shims, interpreter entry frames).
    /// Before 3.11 every frame is a `PyFrameObject` running a code object,
    /// and the position recorded is the word holding its `int f_lasti`.
    pub fn raw_frames(&mut self, top: usize, out: &mut Vec<RawFrame>) -> Result<(), Error> {
        let o = self.layout().offsets;
        let flavor = self.layout().flavor;
        let mut buf = vec![0u8; self.frame_len];
        let mut pending = std::mem::take(&mut self.pending);
        pending.clear();
        let mut addr = top;
        let mut steps = 0;
        while addr != 0 {
            steps += 1;
            if steps > MAX_FRAMES {
                self.pending = pending;
                return Err(Error::Corrupt {
                    what: "frame chain (too deep or cyclic)",
                    addr,
                });
            }
            if !self.copy_from_chunks(addr, &mut buf) {
                self.objects
                    .mem
                    .read(addr, &mut buf)
                    .what("interpreter frame")?;
            }
            let previous = usize_at(&buf, o.frame_previous);
            // 3.14+ tags the executable reference in its low bits; code
            // objects are at least 8-aligned, so masking is always safe.
            let code = usize_at(&buf, o.frame_executable) & !7;
            let owner = o.frame_owner.map(|off| buf[off]);
            let shim = owner.is_some()
                && (owner == flavor.owner_cstack || owner == flavor.owner_interpreter);
            if !shim && code != 0 {
                pending.push(WalkedFrame {
                    addr,
                    code,
                    instr: usize_at(&buf, o.frame_instr_ptr),
                    previous,
                });
            }
            addr = previous;
        }
        let result = self.resolve_pending(&pending, out);
        self.pending = pending;
        result
    }

    /// Checks the cached code objects of a walk in one batched read, then
    /// turns the walk into frames with lines.
    fn resolve_pending(
        &mut self,
        pending: &[WalkedFrame],
        out: &mut Vec<RawFrame>,
    ) -> Result<(), Error> {
        self.validate_codes(pending.iter().map(|p| p.code))?;
        let adaptive = self.layout().offsets.code_code_adaptive.unwrap_or(0);
        let table = self.layout().flavor.line_table;
        for &WalkedFrame {
            addr, code, instr, ..
        } in pending
        {
            if !self.is_code(code)? {
                continue;
            }
            let info = self.code(code)?;
            let line = match table {
                LineTable::Locations => {
                    let addrq = (instr as i64).wrapping_sub(code.wrapping_add(adaptive) as i64);
                    line_for_offset(&info.linetable, info.first_line, addrq)
                }
                // `instr` is the 8-byte word at `f_lasti`: the int is its low half.
                _ => line_for_lasti(table, &info.linetable, info.first_line, instr as u32 as i32),
            };
            out.push(RawFrame {
                addr,
                code,
                line: line.unwrap_or(0),
            });
        }
        Ok(())
    }

    /// Evicts cached code objects whose checked bytes no longer match
    /// memory (freed, and the address reused): one `read_many` for all.
    fn validate_codes(&mut self, codes: impl Iterator<Item = usize>) -> Result<(), Error> {
        let mut cached: Vec<usize> = codes.filter(|c| self.codes.contains_key(c)).collect();
        cached.sort_unstable();
        cached.dedup();
        if cached.is_empty() {
            return Ok(());
        }
        let infos: Vec<Arc<CodeInfo>> = cached.iter().map(|c| self.codes[c].clone()).collect();
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
        for field in [o.code_name, o.code_filename] {
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
            checks.push((
                head_at,
                self.objects
                    .mem
                    .read_vec(head_at, head_len)
                    .what("str header")?,
            ));
            if let Some((tail_at, tail_len)) = self.objects.str_tail(s, 16)? {
                checks.push((
                    tail_at,
                    self.objects
                        .mem
                        .read_vec(tail_at, tail_len)
                        .what("str data")?,
                ));
            }
        }
        Ok(checks)
    }

    /// Code addresses found stale since the last call: callers that cache
    /// anything by code address must forget those.
    pub fn take_evicted(&mut self) -> Vec<usize> {
        std::mem::take(&mut self.evicted)
    }

    /// Forgets chunk copies of an earlier read (their contents move on).
    pub fn begin_read(&mut self) {
        self.chunks.clear();
        self.chunk_bytes = 0;
    }

    /// Copies the used part of a thread's data-stack chunks
    /// (`_PyStackChunk`: previous, size, top, data) so its frames can be
    /// walked without a read per frame: the newest chunk up to the thread's
    /// `datastack_top` in one read, older ones (deep stacks) up to their
    /// saved `top`. Frames outside them (generators, frame objects) are read
    /// one by one.
    pub fn prefetch_chunks(&mut self, chunk: usize, top: usize) -> Result<(), Error> {
        if chunk == 0 {
            return Ok(());
        }
        let used = top.wrapping_sub(chunk);
        if !(CHUNK_HEADER..=MAX_CHUNK_BYTES).contains(&used) {
            return Err(Error::Corrupt {
                what: "data stack top",
                addr: top,
            });
        }
        if self.chunk_bytes + used > MAX_CHUNK_TOTAL {
            return Ok(());
        }
        self.chunk_bytes += used;
        let data = self
            .objects
            .mem
            .read_vec(chunk, used)
            .what("data stack chunk")?;
        if usize_at(&data, 8) < used {
            return Err(Error::Corrupt {
                what: "data stack chunk size",
                addr: chunk,
            });
        }
        let mut previous = usize_at(&data, 0);
        let first = self.chunks.len();
        self.chunks.push((chunk, data));
        for _ in 1..MAX_CHUNKS {
            // A chunk this thread already copied: a cycle (garbage, reused memory).
            if previous == 0 || self.chunks[first..].iter().any(|c| c.0 == previous) {
                break;
            }
            let mut head = [0u8; CHUNK_HEADER];
            self.objects
                .mem
                .read(previous, &mut head)
                .what("data stack chunk")?;
            let (size, slots) = (usize_at(&head, 8), usize_at(&head, 16));
            let used = slots.saturating_mul(8).saturating_add(CHUNK_HEADER);
            if used > size || used > MAX_CHUNK_BYTES {
                return Err(Error::Corrupt {
                    what: "data stack chunk top",
                    addr: previous,
                });
            }
            if self.chunk_bytes + used > MAX_CHUNK_TOTAL {
                break;
            }
            self.chunk_bytes += used;
            let data = self
                .objects
                .mem
                .read_vec(previous, used)
                .what("data stack chunk")?;
            self.chunks.push((previous, data));
            previous = usize_at(&head, 0);
        }
        Ok(())
    }

    fn copy_from_chunks(&self, addr: usize, buf: &mut [u8]) -> bool {
        for (start, data) in &self.chunks {
            if let Some(off) = addr.checked_sub(*start) {
                if let Some(src) = data.get(off..off.saturating_add(buf.len())) {
                    buf.copy_from_slice(src);
                    return true;
                }
            }
        }
        false
    }

    /// Frames with names, innermost first; with `locals`, each frame's
    /// arguments and local variables too.
    pub fn frames(&mut self, top: usize, locals: bool) -> Result<Vec<Frame>, Error> {
        let mut raw = Vec::new();
        self.raw_frames(top, &mut raw)?;
        raw.iter()
            .map(|r| {
                let info = self.code(r.code)?;
                Ok(Frame {
                    name: info.name.to_string(),
                    filename: info.filename.to_string(),
                    short_filename: None,
                    line: r.line,
                    module: None,
                    locals: if locals {
                        Some(self.locals(r.addr, &info)?)
                    } else {
                        None
                    },
                })
            })
            .collect()
    }

    /// Whether the object at `obj` is a code object (types cached).
    fn is_code(&mut self, obj: usize) -> Result<bool, Error> {
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
        if let Some(info) = self.codes.get(&addr) {
            return Ok(info.clone());
        }
        let o = self.layout().offsets;
        let len = [
            o.code_filename,
            o.code_name,
            o.code_linetable,
            o.code_localsplusnames,
            o.code_localspluskinds.unwrap_or(0),
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
            .read_str(usize_at(&raw, o.code_name), MAX_NAME)?
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
        self.codes.insert(addr, info.clone());
        Ok(info)
    }
}

/// The bytes of a code object that identify it: from the first to the last
/// of its name, filename, line-table and first-line fields.
fn fingerprint_range(layout: &Layout) -> std::ops::Range<usize> {
    let o = &layout.offsets;
    let fields = [
        o.code_filename,
        o.code_name,
        o.code_linetable,
        o.code_firstlineno,
    ];
    let start = fields.iter().copied().min().unwrap_or(0);
    let end = fields.iter().copied().max().unwrap_or(0) + 8;
    start..end.min(start + 128)
}
