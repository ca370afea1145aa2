//! The first read of a sample: every thread state, the GIL holder, each
//! thread's data-stack chunks (where 3.11+ keeps its frames) and, on 3.14+,
//! the interpreter's code-object generation, in one `process_vm_readv`.
//!
//! It is speculative: it reads the thread states and chunks where the
//! previous sample found them, then checks the copy link by link (the list
//! head, each `next`, each thread's chunk and `datastack_top`, each older
//! chunk's header). Whatever no longer matches is read step by step, so a
//! changed process costs speed, never a wrong stack. It does not walk frames
//! (`walker.rs`) or check code objects (`codes.rs`).

use pyspy_process::Memory;

use crate::chunks::{CHUNK_HEADER, MAX_CHUNK_TOTAL};
use crate::error::Error;
use crate::objects::{i32_at, usize_at};
use crate::threads::MAX_THREADS;
use crate::walker::StackWalker;
use crate::ThreadState;

/// Bytes read past a chunk's last used byte, so a stack a few frames
/// deeper than last time is still inside the speculative copy.
const CHUNK_SLACK: usize = 1024;
/// Most ranges outside chunks (3.11/3.12 `cframe` words, C-stack entry
/// frames, generator frames) read again speculatively per sample.
pub(crate) const MAX_EXTRAS: usize = 256;
/// Most code objects whose check ranges ride along in the snapshot.
const MAX_SPECULATED_CODES: usize = 128;

/// Where the previous sample found each thread state and its chunks.
#[derive(Debug, Default)]
pub(crate) struct Speculation {
    threads: Vec<SpeculatedThread>,
    /// Ranges the last read fetched outside chunks.
    extras: Vec<(usize, usize)>,
    /// Code objects the last read walked: their checks are read along.
    codes: Vec<usize>,
}

#[derive(Debug, Default, Clone)]
struct SpeculatedThread {
    addr: usize,
    /// Newest first: remote address and bytes to read.
    chunks: Vec<(usize, usize)>,
}

impl<M: Memory> StackWalker<M> {
    /// Forgets copies of an earlier read (their contents move on).
    pub fn begin_read(&mut self) {
        self.copies.clear();
        self.frames_read_late();
        self.extras_seen.clear();
        self.read_id += 1;
    }

    /// Frames of this read were (or will be) read after the snapshot: its
    /// code-object checks and generation no longer vouch for their code.
    pub(crate) fn frames_read_late(&mut self) {
        self.generation = None;
        self.snapshot_vouches = false;
    }

    /// Notes a range read outside the chunks, to read it along next time.
    pub(crate) fn note_extra(&mut self, addr: usize, len: usize) {
        if self.extras_seen.len() < MAX_EXTRAS {
            self.extras_seen.push((addr, len));
        }
    }

    /// Every thread state of the interpreter (newest first, into `states`)
    /// and the thread state holding the GIL (0: none or unknown), with each
    /// thread's data-stack chunks copied for [`StackWalker::walk_threads`].
    /// One system call when threads and chunks are where the previous
    /// sample found them (and 3.11's `cframe`s aside).
    pub fn sample_threads(
        &mut self,
        runtime: usize,
        interp: usize,
        states: &mut Vec<ThreadState>,
    ) -> Result<usize, Error> {
        // What the last read fetched on its own and the code objects it
        // walked are read along this time.
        let mut spec = std::mem::take(&mut self.speculation);
        spec.extras.clear();
        spec.extras.extend_from_slice(&self.extras_seen);
        spec.codes.clear();
        spec.codes.extend(self.walked_codes());
        spec.codes.sort_unstable();
        spec.codes.dedup();
        spec.codes.truncate(MAX_SPECULATED_CODES);
        self.speculation = spec;
        self.begin_read();
        let holder = match self.read_snapshot(runtime, interp, states)? {
            Some(holder) => holder,
            None => {
                self.copies.clear();
                self.extras_seen.clear();
                self.frames_read_late();
                *states = self.thread_states(interp)?;
                let holder = self.gil_holder(runtime, interp).unwrap_or(0);
                self.gc_running = self.gc_flag.is_some_and(|at| {
                    let mut flag = [0u8; 4];
                    self.objects.mem.read(at, &mut flag).is_ok() && flag != [0; 4]
                });
                for ts in states.iter() {
                    let first = self.copies.chunks.len();
                    if ts.top_frame != 0 {
                        // A chunk that cannot be copied only costs speed.
                        let _ = self.prefetch_chunks(ts.datastack_chunk, ts.datastack_top);
                    }
                    self.copies.per_thread.push(first..self.copies.chunks.len());
                }
                holder
            }
        };
        self.remember(states);
        Ok(holder)
    }

    /// The speculative read; `None` when the process no longer matches it.
    fn read_snapshot(
        &mut self,
        runtime: usize,
        interp: usize,
        states: &mut Vec<ThreadState>,
    ) -> Result<Option<usize>, Error> {
        let o = self.layout().offsets;
        if self.speculation.threads.is_empty() {
            return Ok(None);
        }
        // Where the GIL holder is read.
        let gil = if let Some(off) = o.runtime_tstate_current {
            Gil::Current(runtime.wrapping_add(off))
        } else if let (Some(locked), Some(holder)) = (o.gil_locked, o.gil_last_holder) {
            if locked.abs_diff(holder) > 64 {
                // Not one small range (no layout has them apart).
                return Ok(None);
            }
            match self.gil {
                // A GIL pointer so high that the two wrap apart is garbage.
                Some(g) if g.checked_add(locked.max(holder) + 8).is_none() => return Ok(None),
                Some(g) => Gil::State(g.wrapping_add(locked), g.wrapping_add(holder)),
                // Not found yet: the step-by-step read looks for it.
                None if o.interp_ceval_gil.is_some() => return Ok(None),
                None => Gil::None,
            }
        } else {
            Gil::None
        };
        let tlen = self.tstate_len();
        let spec = std::mem::take(&mut self.speculation);
        self.ranges.clear();
        self.ranges
            .push((interp.wrapping_add(o.interp_threads_head), 8));
        let gil_len = gil.len();
        match gil {
            Gil::Current(at) => self.ranges.push((at, 8)),
            Gil::State(locked, holder) => self.ranges.push((locked.min(holder), gil_len)),
            Gil::None => {}
        }
        let gc_len = match self.gc_flag {
            Some(at) => {
                self.ranges.push((at, 4));
                4
            }
            None => 0,
        };
        for t in &spec.threads {
            self.ranges.push((t.addr, tlen));
        }
        // Pointers before what they point at: the extras (3.11's `cframe`
        // words among them) before the chunks, so a top frame is never
        // newer than the copy of its chunk.
        let bytes_so_far = |r: &[(usize, usize)]| r.iter().map(|r| r.1).sum::<usize>();
        let extras_at = bytes_so_far(&self.ranges);
        self.ranges.extend(spec.extras.iter().copied());
        let chunks_at = bytes_so_far(&self.ranges);
        for t in &spec.threads {
            self.ranges.extend(t.chunks.iter().copied());
        }
        let checks_at = bytes_so_far(&self.ranges);
        for code in &spec.codes {
            if let Some(cc) = self.codes.get(code) {
                self.ranges
                    .extend(cc.info.checks.iter().map(|(a, b)| (*a, b.len())));
            }
        }
        // Last, after every frame byte: a code object freed before this
        // point changed it (see `codes.rs`).
        let generation_at = self.layout().code_generation;
        if let Some(off) = generation_at {
            self.ranges.push((interp.wrapping_add(off), 8));
        }
        let Some(total) = checked_total(&self.ranges).filter(|&t| t <= MAX_SNAPSHOT) else {
            self.speculation = spec;
            return Ok(None);
        };
        self.copies.bytes.resize(total, 0);
        let read = self
            .objects
            .mem
            .read_ranges(&self.ranges, &mut self.copies.bytes);
        let result = match read {
            Ok(()) => {
                let layout = SnapshotLayout {
                    gil,
                    gc_len,
                    tlen,
                    extras_at,
                    chunks_at,
                    checks_at,
                };
                self.check_snapshot(&spec, layout, states)
            }
            Err(_) => Ok(None),
        };
        self.speculation = spec;
        result
    }

    /// Parses and checks the snapshot in `copies.bytes` against `spec`.
    fn check_snapshot(
        &mut self,
        spec: &Speculation,
        at: SnapshotLayout,
        states: &mut Vec<ThreadState>,
    ) -> Result<Option<usize>, Error> {
        let SnapshotLayout {
            gil,
            gc_len,
            tlen,
            extras_at,
            chunks_at,
            checks_at,
        } = at;
        let o = self.layout().offsets;
        // Register the extras first: thread states may need their words.
        let mut pos = extras_at;
        for &(addr, len) in &spec.extras {
            self.copies.extras.push((addr, pos..pos + len));
            pos += len;
        }
        self.compare_code_checks(&spec.codes, checks_at);
        // Until a frame is read later than this snapshot, its checks (and
        // 3.14+'s generation, its last 8 bytes) vouch for the code objects.
        self.snapshot_vouches = true;
        if self.layout().code_generation.is_some() {
            let b = &self.copies.bytes;
            self.generation = Some(usize_at(b, b.len() - 8) as u64);
        }
        let bytes = &self.copies.bytes;
        let gc_at = 8 + gil.len();
        self.gc_running = gc_len > 0 && bytes[gc_at..gc_at + gc_len] != [0; 4];
        let mut at = gc_at + gc_len;
        let holder = match gil {
            Gil::Current(_) => usize_at(bytes, 8),
            Gil::State(locked, holder) => {
                let base = locked.min(holder);
                let locked = i32_at(bytes, 8 + locked - base);
                if locked == 0 {
                    0
                } else {
                    usize_at(bytes, 8 + holder - base)
                }
            }
            Gil::None => 0,
        };
        let mut expected = usize_at(bytes, 0);
        states.clear();
        // A thread state is parsed from a copy: parsing may read (3.11's
        // cframe) and look at the snapshot's other ranges.
        let mut tbuf = [0u8; 1024];
        let Some(tbuf) = tbuf.get_mut(..tlen) else {
            return Ok(None);
        };
        for t in &spec.threads {
            if expected != t.addr {
                return Ok(None);
            }
            tbuf.copy_from_slice(&self.copies.bytes[at..at + tlen]);
            at += tlen;
            match self.parse_tstate(t.addr, tbuf) {
                Ok(ts) => states.push(ts),
                Err(_) => return Ok(None),
            }
            expected = usize_at(tbuf, o.tstate_next);
        }
        if expected != 0 {
            return Ok(None);
        }
        if o.tstate_native_thread_id.is_none() {
            if let Some(off) = self.layout().pthread_tid {
                self.tids_from_pthreads(off, states);
            }
        }
        // Each thread's chunks, as copied or (changed) read again.
        let mut at = chunks_at;
        for (t, ts) in spec.threads.iter().zip(states.iter()) {
            let first = self.copies.chunks.len();
            let ok = ts.top_frame == 0 || self.accept_chunks(t, ts, at);
            at += t.chunks.iter().map(|c| c.1).sum::<usize>();
            if !ok {
                self.copies.chunks.truncate(first);
                self.frames_read_late();
                let _ = self.prefetch_chunks(ts.datastack_chunk, ts.datastack_top);
            }
            self.copies.per_thread.push(first..self.copies.chunks.len());
        }
        Ok(Some(holder))
    }

    /// Compares the check ranges of `codes` copied at `pos` in the snapshot
    /// (in the order `read_snapshot` put them) with what each cached code
    /// object expects: stale ones are evicted, the others need no other
    /// check in this read.
    fn compare_code_checks(&mut self, codes: &[usize], mut pos: usize) {
        for code in codes {
            let Some(cc) = self.codes.get_mut(code) else {
                continue;
            };
            let mut same = true;
            for (_, expected) in &cc.info.checks {
                same &= self.copies.bytes.get(pos..pos + expected.len()) == Some(&expected[..]);
                pos += expected.len();
            }
            if same {
                cc.checked_read = self.read_id;
            } else {
                self.codes.remove(code);
                self.evicted.push(*code);
            }
        }
    }

    /// Registers the chunks of thread `t` copied at `at` in the snapshot,
    /// if they are still the thread's chunks and hold all of its frames.
    fn accept_chunks(&mut self, t: &SpeculatedThread, ts: &ThreadState, mut at: usize) -> bool {
        let mut expected = ts.datastack_chunk;
        for (k, &(addr, window)) in t.chunks.iter().enumerate() {
            if expected == 0 {
                return true;
            }
            if addr != expected || window < CHUNK_HEADER {
                return false;
            }
            let head = &self.copies.bytes[at..at + CHUNK_HEADER];
            let size = usize_at(head, 8);
            let used = if k == 0 {
                ts.datastack_top.wrapping_sub(addr)
            } else {
                usize_at(head, 16)
                    .saturating_mul(8)
                    .saturating_add(CHUNK_HEADER)
            };
            if !(CHUNK_HEADER..=window).contains(&used)
                || used > size
                || self.copies.total + used > MAX_CHUNK_TOTAL
            {
                return false;
            }
            self.copies.total += used;
            self.copies.chunks.push((addr, at..at + used));
            expected = usize_at(head, 0);
            at += window;
        }
        expected == 0
    }

    /// Keeps where this read found each thread and its chunks.
    fn remember(&mut self, states: &[ThreadState]) {
        let mut spec = std::mem::take(&mut self.speculation);
        spec.threads
            .resize(states.len().min(MAX_THREADS), SpeculatedThread::default());
        for (i, (t, ts)) in spec.threads.iter_mut().zip(states).enumerate() {
            t.addr = ts.addr;
            t.chunks.clear();
            let Some(range) = self.copies.per_thread.get(i) else {
                continue;
            };
            for (addr, copy) in &self.copies.chunks[range.clone()] {
                let size = usize_at(&self.copies.bytes[copy.clone()], 8);
                let window = (copy.len() + CHUNK_SLACK).min(size).max(copy.len());
                t.chunks.push((*addr, window));
            }
        }
        self.speculation = spec;
    }
}

/// Most bytes one snapshot reads; a process that needs more is read step
/// by step (and its chunks stay within `MAX_CHUNK_TOTAL`).
const MAX_SNAPSHOT: usize = MAX_CHUNK_TOTAL;

/// The sum of the ranges' lengths, unless it overflows.
pub(crate) fn checked_total(ranges: &[(usize, usize)]) -> Option<usize> {
    ranges
        .iter()
        .try_fold(0usize, |sum, r| sum.checked_add(r.1))
}

/// Where the parts of a snapshot sit in its copy.
#[derive(Debug, Clone, Copy)]
struct SnapshotLayout {
    gil: Gil,
    /// Bytes of the collector's flag (0: not read), right after the GIL's.
    gc_len: usize,
    /// Bytes of each thread state.
    tlen: usize,
    extras_at: usize,
    chunks_at: usize,
    checks_at: usize,
}

/// Where a sample reads the GIL holder.
#[derive(Debug, Clone, Copy)]
enum Gil {
    /// 3.7–3.11: `_PyRuntime.gilstate.tstate_current`.
    Current(usize),
    /// 3.12+: the GIL state's `locked` (an int) and `last_holder`, read as
    /// one range.
    State(usize, usize),
    /// Not known.
    None,
}

impl Gil {
    /// Bytes the snapshot reads for it.
    fn len(self) -> usize {
        match self {
            Gil::Current(_) => 8,
            Gil::State(locked, holder) => {
                locked.saturating_add(4).max(holder.saturating_add(8)) - locked.min(holder)
            }
            Gil::None => 0,
        }
    }
}
