//! Walking a thread's frames: from the thread state to the innermost
//! `_PyInterpreterFrame` (3.11+) or `PyFrameObject` (up to 3.10), then
//! outwards through `previous` / `f_back`, resolving each frame's code object
//! (cached by address, see `codes.rs`) and line number. Data-stack chunks
//! and the per-sample snapshot live in `snapshot.rs`.

use rustc_hash::{FxHashMap, FxHashSet};

use pyspy_process::{Memory, MemoryExt};

use crate::chunks::{ChunkCopies, Copied};
use crate::codes::{fingerprint_range, CachedCode};
use crate::error::{Error, ReadContext};
use crate::interpreters::{GilHolders, InterpreterRef, InterpreterWatch};
use crate::layout::LineTable;
use crate::linetable::{line_for_lasti, line_for_offset};
use crate::objects::{usize_at, ObjectReader};
use crate::quiet::QuietState;
use crate::snapshot::Speculation;
use crate::{Frame, Layout, ThreadState};

/// Most bytecode copies a code object may have (one per thread that ran it
/// at once; bounds a garbage `co_tlbc`).
const MAX_TLBC_COPIES: usize = 1 << 16;

/// Deepest stack walked; deeper ones are cut (and flagged) rather than
/// followed forever through a corrupt or cyclic chain.
pub const MAX_FRAMES: usize = 4096;
/// Most frames walked in one read, all threads together (a real process
/// has far fewer; a corrupt one could chain `MAX_FRAMES` in every thread).
const MAX_READ_FRAMES: usize = 1 << 17;
/// Longest function or file name kept.
pub(crate) const MAX_NAME: usize = 4096;

/// A frame as the walk saw it: where it is, its code, its position and
/// the frame it links to (re-compared by [`StackWalker::walk_unchanged`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct WalkedFrame {
    pub(crate) addr: usize,
    pub(crate) code: usize,
    pub(crate) instr: usize,
    pub(crate) previous: usize,
    /// Free-threaded 3.14+: which bytecode copy `instr` points into.
    pub(crate) tlbc_index: i32,
}

/// One thread's walk within the current read: where its top-frame pointer
/// lives, the top frame, and its frames in `pending`.
#[derive(Debug, Clone)]
pub(crate) struct Walk {
    pub(crate) slot: usize,
    pub(crate) top: usize,
    pub(crate) frames: std::ops::Range<usize>,
    /// How [`StackWalker::resolve_walk`] treats it.
    pub(crate) kind: WalkKind,
}

/// Whose walk a [`Walk`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WalkKind {
    /// A one-off walk (`raw_frames`).
    Single,
    /// Thread `n` of the read, walked: its frames are kept for when it is
    /// quiet (`quiet.rs`).
    Thread(usize),
    /// Thread `n` of the read, quiet: its kept frames stand in.
    Quiet(usize),
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
    pub(crate) codes: FxHashMap<usize, CachedCode>,
    pub(crate) code_types: FxHashSet<usize>,
    pub(crate) other_types: FxHashSet<usize>,
    frame_len: usize,
    /// Bytes copied during the current read (the snapshot and data-stack
    /// chunks): frames that live in them are read from here.
    pub(crate) copies: ChunkCopies,
    /// What the previous sample found, read again at once by
    /// [`StackWalker::sample_threads`].
    pub(crate) speculation: Speculation,
    /// Each interpreter's GIL pointer (3.12+), once known, and the GIL
    /// holders of the last read.
    pub(crate) gils: GilHolders,
    /// With [`StackWalker::watch_interpreters`]: the interpreter list.
    pub(crate) interps: Option<InterpreterWatch>,
    /// The interpreters the last read sampled, newest first.
    pub(crate) sampled: Vec<InterpreterRef>,
    /// 3.14+: the code-object generation the current read's snapshot saw,
    /// while every frame walked came from that snapshot (`None` otherwise:
    /// code objects are then checked by their bytes).
    pub(crate) generation: Option<u64>,
    /// Byte range of a code object compared to validate the cache.
    pub(crate) fingerprint: std::ops::Range<usize>,
    /// Frames of the current read's walks, before their code objects are
    /// checked.
    pub(crate) pending: Vec<WalkedFrame>,
    /// The current read's walks, one per thread walked.
    pub(crate) walks: Vec<Walk>,
    /// Scratch for validation reads.
    pub(crate) check_buf: Vec<u8>,
    /// Scratch ranges for batched reads.
    pub(crate) ranges: Vec<(usize, usize)>,
    /// Code addresses evicted as stale since the last `take_evicted`.
    pub(crate) evicted: Vec<usize>,
    /// Counts reads ([`StackWalker::begin_read`]).
    pub(crate) read_id: u64,
    /// Whether every frame of this read so far came from its snapshot,
    /// which checked the code objects of the last read's stacks.
    pub(crate) snapshot_vouches: bool,
    /// Ranges this read fetched outside chunks (read along next time).
    pub(crate) extras_seen: Vec<(usize, usize)>,
    /// The collector's `collecting` flag, read along with each sample.
    pub(crate) gc_flag: Option<usize>,
    /// Whether the last [`StackWalker::sample_threads`] saw it set.
    pub(crate) gc_running: bool,
    /// Threads not read again while the GIL proves them unchanged.
    pub(crate) quiet: QuietState,
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
        if let Some(t) = layout.tlbc {
            frame_len = frame_len.max(t.frame_index + 4);
        }
        StackWalker {
            objects: ObjectReader::new(mem, layout),
            codes: FxHashMap::default(),
            code_types: FxHashSet::default(),
            other_types: FxHashSet::default(),
            frame_len,
            copies: ChunkCopies::default(),
            speculation: Speculation::default(),
            gils: GilHolders::default(),
            interps: None,
            sampled: Vec::new(),
            generation: None,
            fingerprint: fingerprint_range(&layout),
            pending: Vec::new(),
            walks: Vec::new(),
            check_buf: Vec::new(),
            ranges: Vec::new(),
            evicted: Vec::new(),
            read_id: 0,
            snapshot_vouches: false,
            extras_seen: Vec::new(),
            gc_flag: None,
            gc_running: false,
            quiet: QuietState::default(),
        }
    }

    /// Reads the collector's `collecting` flag at `addr` (an `int`) along
    /// with every [`StackWalker::sample_threads`] from now on.
    pub fn watch_gc(&mut self, addr: Option<usize>) {
        self.gc_flag = addr;
    }

    /// Whether the last [`StackWalker::sample_threads`] found a garbage
    /// collection running (always false unless [`StackWalker::watch_gc`]).
    pub fn gc_running(&self) -> bool {
        self.gc_running
    }

    /// The layout in use.
    pub fn layout(&self) -> &Layout {
        &self.objects.layout
    }

    /// The innermost frame of a thread, given its thread-state bytes, and
    /// where the pointer to it lives.
    pub fn top_frame(
        &mut self,
        tstate_addr: usize,
        tstate: &[u8],
    ) -> Result<(usize, usize), Error> {
        let o = &self.layout().offsets;
        if let Some(off) = o.tstate_current_frame.or(o.tstate_frame) {
            return Ok((usize_at(tstate, off), tstate_addr.wrapping_add(off)));
        }
        let cframe = usize_at(tstate, o.tstate_cframe.unwrap_or(0));
        if cframe == 0 {
            return Ok((0, 0));
        }
        let at = cframe.wrapping_add(o.cframe_current_frame.unwrap_or(0));
        self.note_extra(at, 8);
        let mut word = [0u8; 8];
        if self.copies.copy_out(at, &mut word) == Copied::No {
            self.objects
                .mem
                .read(at, &mut word)
                .what("cframe current frame")?;
        }
        Ok((usize::from_le_bytes(word), at))
    }

    /// Whether the stack of the last [`StackWalker::raw_frames`] is still
    /// the one walked (see [`StackWalker::walks_unchanged`]). One batched read.
    pub fn walk_unchanged(&mut self, slot: usize, top: usize) -> Result<bool, Error> {
        if let Some(w) = self.walks.last_mut() {
            w.slot = slot;
            w.top = top;
        }
        self.walks_unchanged()
    }

    /// Raw frames from `top` outwards (innermost first), skipping frames
    /// that run no Python code (C-stack shims, interpreter entry frames).
    /// Before 3.11 every frame is a `PyFrameObject` running a code object,
    /// and the position recorded is the word holding its `int f_lasti`.
    pub fn raw_frames(&mut self, top: usize, out: &mut Vec<RawFrame>) -> Result<(), Error> {
        self.pending.clear();
        self.walks.clear();
        self.walk(0, top, WalkKind::Single)?;
        self.validate_walked()?;
        self.resolve_walk(0, out)
    }

    /// Walks every thread of `states` (from [`StackWalker::sample_threads`])
    /// and checks the code objects they run in one batched read; then
    /// [`StackWalker::walks_unchanged`] and [`StackWalker::resolve_walk`].
    pub fn walk_threads(&mut self, states: &[ThreadState]) -> Result<(), Error> {
        self.pending.clear();
        self.walks.clear();
        for (n, ts) in states.iter().enumerate() {
            if self.was_quiet(n) {
                let at = self.pending.len();
                self.walks.push(Walk {
                    slot: 0,
                    top: 0,
                    frames: at..at,
                    kind: WalkKind::Quiet(n),
                });
                continue;
            }
            self.walk(ts.top_slot, ts.top_frame, WalkKind::Thread(n))?;
        }
        self.validate_walked()
    }

    /// Appends the walk from `top` to the current read's walks.
    fn walk(&mut self, slot: usize, top: usize, kind: WalkKind) -> Result<(), Error> {
        let o = self.layout().offsets;
        let flavor = self.layout().flavor;
        let start = self.pending.len();
        let tlbc_frame_index = self.layout().tlbc.map(|t| t.frame_index);
        let mut buf = [0u8; 256];
        let Some(buf) = buf.get_mut(..self.frame_len) else {
            // No real frame has its fields this far in.
            return Err(Error::Corrupt {
                what: "frame layout",
                addr: top,
            });
        };
        let mut addr = top;
        let mut steps = 0;
        let mut result = Ok(());
        while addr != 0 {
            steps += 1;
            if steps > MAX_FRAMES || self.pending.len() >= MAX_READ_FRAMES {
                result = Err(Error::Corrupt {
                    what: "frame chain (too deep or cyclic)",
                    addr,
                });
                break;
            }
            // Parsed in place where the snapshot copied it (no copy per
            // frame), else read into `buf`.
            let found = self.copies.find(addr, buf.len());
            let copied = found.map_or(Copied::No, |f| f.0);
            if copied != Copied::Chunk {
                self.note_extra(addr, buf.len());
            }
            if copied == Copied::No {
                // Read outside the snapshot: its checks no longer vouch
                // for the code objects of this read.
                self.frames_read_late();
                if let Err(e) = self.objects.mem.read(addr, buf).what("interpreter frame") {
                    result = Err(e);
                    break;
                }
            }
            let bytes: &[u8] = match found {
                Some((_, at)) => &self.copies.bytes[at..at + buf.len()],
                None => buf,
            };
            let previous = usize_at(bytes, o.frame_previous);
            // 3.14+ tags the executable reference in its low bits; code
            // objects are at least 8-aligned, so masking is always safe.
            let code = usize_at(bytes, o.frame_executable) & !7;
            let owner = o.frame_owner.and_then(|off| bytes.get(off).copied());
            let shim = owner.is_some()
                && (owner == flavor.owner_cstack || owner == flavor.owner_interpreter);
            if !shim && code != 0 {
                let frame = WalkedFrame {
                    addr,
                    code,
                    instr: usize_at(bytes, o.frame_instr_ptr),
                    previous,
                    tlbc_index: tlbc_frame_index
                        .and_then(|at| bytes.get(at..at + 4))
                        .map_or(0, |b| i32::from_le_bytes(b.try_into().unwrap())),
                };
                self.pending.push(frame);
            }
            addr = previous;
        }
        self.walks.push(Walk {
            slot,
            top,
            frames: start..self.pending.len(),
            kind,
        });
        result
    }

    /// The code objects of the last read's walks (repeats included).
    pub(crate) fn walked_codes(&self) -> impl Iterator<Item = usize> + '_ {
        self.pending.iter().map(|f| f.code)
    }

    /// Checks the cached code objects of every walk of this read (one
    /// batched read, or none while the snapshot vouches for them), then
    /// reads the new ones: all before the torn-read check, so that a code
    /// object freed and replaced at its address after the frames were
    /// copied shows up as a changed stack, not under the wrong name.
    fn validate_walked(&mut self) -> Result<(), Error> {
        let pending = std::mem::take(&mut self.pending);
        let mut result = self.validate_codes(pending.iter().map(|p| p.code));
        if result.is_ok() {
            let mut last = None;
            for f in &pending {
                if last.replace(f.code) != Some(f.code) && !self.codes.contains_key(&f.code) {
                    // Not a code object (or unreadable): resolve_walk
                    // decides what to do with the frame.
                    if let Ok(true) = self.is_code(f.code) {
                        if let Err(e) = self.code(f.code) {
                            result = Err(e);
                            break;
                        }
                    }
                }
            }
        }
        self.pending = pending;
        result
    }

    /// The frames of walk `index` with lines (innermost first), into `out`.
    pub fn resolve_walk(&mut self, index: usize, out: &mut Vec<RawFrame>) -> Result<(), Error> {
        let Some((range, kind)) = self.walks.get(index).map(|w| (w.frames.clone(), w.kind)) else {
            return Ok(());
        };
        if let WalkKind::Quiet(n) = kind {
            if let Some(t) = self.speculation.threads.get(n) {
                out.extend_from_slice(&t.kept.frames);
            }
            return Ok(());
        }
        let first = out.len();
        // A frame at the position of the one before (recursion) is on its
        // line: no lookup.
        let mut last: Option<(usize, usize, i32, Option<i32>)> = None;
        for i in range {
            let WalkedFrame {
                addr,
                code,
                instr,
                tlbc_index,
                ..
            } = self.pending[i];
            let line = match last {
                Some((c, at, copy, line)) if (c, at, copy) == (code, instr, tlbc_index) => line,
                _ => self.line_in_copy(code, instr, tlbc_index)?,
            };
            last = Some((code, instr, tlbc_index, line));
            let Some(line) = line else {
                continue;
            };
            out.push(RawFrame { addr, code, line });
        }
        if let WalkKind::Thread(n) = kind {
            if let Some(t) = self.speculation.threads.get_mut(n) {
                t.kept.frames.clear();
                t.kept.frames.extend_from_slice(&out[first..]);
                t.kept.frames_read = self.read_id;
            }
        }
        Ok(())
    }

    /// The line a frame of `code` at `instr` is on (0 when unknown), or
    /// `None` when `code` is not a code object. Cached per code object.
    pub fn line_of(&mut self, code: usize, instr: usize) -> Result<Option<i32>, Error> {
        self.line_in_copy(code, instr, 0)
    }

    /// [`StackWalker::line_of`] for a frame running bytecode copy
    /// `tlbc_index` of `code` (free-threaded 3.14+; 0: the code object's
    /// own bytecode).
    pub fn line_in_copy(
        &mut self,
        code: usize,
        instr: usize,
        tlbc_index: i32,
    ) -> Result<Option<i32>, Error> {
        if let Some(line) = self.codes.get(&code).and_then(|cc| cc.cached_line(instr)) {
            return Ok(Some(line));
        }
        if !self.is_code(code)? {
            return Ok(None);
        }
        let info = self.code(code)?;
        let table = self.layout().flavor.line_table;
        let line = match table {
            LineTable::Locations => {
                let base = self.bytecode_base(code, tlbc_index)?;
                let addrq = (instr as i64).wrapping_sub(base as i64);
                line_for_offset(&info.linetable, info.first_line, addrq)
            }
            // `instr` is the 8-byte word at `f_lasti`: the int is its low half.
            _ => line_for_lasti(table, &info.linetable, info.first_line, instr as u32 as i32),
        }
        .unwrap_or(0);
        if let Some(cc) = self.codes.get_mut(&code) {
            cc.cache_line(instr, line);
        }
        Ok(Some(line))
    }

    /// Where the bytecode a frame of `code` runs begins: the code object's
    /// own `co_code_adaptive`, or (free-threaded 3.14+, `tlbc_index` > 0)
    /// the thread's copy, `co_tlbc->entries[tlbc_index]`. Read on a line
    /// cache miss only.
    fn bytecode_base(&self, code: usize, tlbc_index: i32) -> Result<usize, Error> {
        let adaptive = self.layout().offsets.code_code_adaptive.unwrap_or(0);
        let own = code.wrapping_add(adaptive);
        let Some(t) = self.layout().tlbc.filter(|_| tlbc_index > 0) else {
            return Ok(own);
        };
        let array = self
            .objects
            .mem
            .read_usize(code.wrapping_add(t.code_array))
            .what("co_tlbc")?;
        let size = self.objects.mem.read_usize(array).what("co_tlbc size")?;
        let index = tlbc_index as usize;
        if index >= size || size > MAX_TLBC_COPIES {
            return Err(Error::Corrupt {
                what: "thread-local bytecode index",
                addr: array,
            });
        }
        self.objects
            .mem
            .read_usize(array.wrapping_add(8 + 8 * index))
            .what("co_tlbc entry")
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
}
