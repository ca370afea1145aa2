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

use crate::chunks::MAX_CHUNK_TOTAL;
use crate::error::Error;
use crate::gil_state::{Gil, GilRead};
use crate::objects::usize_at;
use crate::quiet::{KeptThread, QuietBasis, FULL_READ_EVERY};
use crate::walker::StackWalker;
use crate::{InterpreterRef, ThreadState};

/// Bytes read past a chunk's last used byte, so a stack a few frames
/// deeper than last time is still inside the speculative copy.
pub(crate) const CHUNK_SLACK: usize = 1024;
/// Reads in a row a thread's stack top must stay put before its chunks are
/// read without slack: idle threads (most of a many-threaded process) then
/// cost only their used bytes; one that wakes and goes deeper costs one more
/// read, once, and gets its slack back.
pub(crate) const STILL_READS: u8 = 8;
/// Most ranges outside chunks (3.11/3.12 `cframe` words, C-stack entry
/// frames, generator frames) read again speculatively per sample.
pub(crate) const MAX_EXTRAS: usize = 256;
/// Most code objects whose check ranges ride along in the snapshot.
const MAX_SPECULATED_CODES: usize = 128;

/// Where the previous sample found each thread state and its chunks.
#[derive(Debug, Default)]
pub(crate) struct Speculation {
    pub(crate) threads: Vec<SpeculatedThread>,
    /// Ranges the last read fetched outside chunks.
    extras: Vec<(usize, usize)>,
    /// Code objects the last read walked: their checks are read along.
    codes: Vec<usize>,
    /// The code of each frame the read before walked, in order (`codes`
    /// is rebuilt only when this changes).
    walked: Vec<usize>,
    /// `extras` and `codes` of the last read that read every thread: a
    /// read that skips quiet threads notes only the others', and the next
    /// full read needs them all (`quiet.rs`).
    full_extras: Vec<(usize, usize)>,
    full_codes: Vec<usize>,
    /// Whether the last read was full (its `extras` and `codes` are the
    /// full ones: nothing to add).
    last_full: bool,
    /// 3.14+: the code-object generation the last snapshot read.
    pub(crate) last_generation: Option<u64>,
    /// Threads of each interpreter sampled, in `threads` order.
    pub(crate) per_interp: Vec<usize>,
    /// Where each interpreter's GIL holder is read (reused: no allocation
    /// per sample).
    gils: Vec<Gil>,
    /// What the last read saw of the GIL, when it proves quiet threads
    /// (`quiet.rs`).
    pub(crate) basis: Option<QuietBasis>,
}

#[derive(Debug, Default, Clone)]
pub(crate) struct SpeculatedThread {
    pub(crate) addr: usize,
    /// Newest first: remote address and bytes to read.
    pub(crate) chunks: Vec<(usize, usize)>,
    /// Used bytes of its newest chunk in the last read, and for how many
    /// reads in a row they have not changed.
    pub(crate) last_used: usize,
    pub(crate) still: u8,
    /// The thread as last read in full (stands in for it while quiet).
    pub(crate) kept: KeptThread,
}

impl Speculation {
    /// The extras a read reads along: with every thread read (`full`),
    /// the last full read's too.
    pub(crate) fn extras_to_read(&self, full: bool) -> impl Iterator<Item = (usize, usize)> + '_ {
        let more = if full && !self.last_full {
            &self.full_extras[..]
        } else {
            &[]
        };
        self.extras.iter().chain(more).copied()
    }

    /// The code objects whose checks a read reads along (likewise).
    /// Each once: a code compared twice would be evicted by the first.
    pub(crate) fn codes_to_check(&self, full: bool) -> impl Iterator<Item = &usize> + Clone + '_ {
        let more = if full && !self.last_full {
            &self.full_codes[..]
        } else {
            &[]
        };
        // `codes` is sorted.
        let new = more.iter().filter(|c| self.codes.binary_search(c).is_err());
        self.codes.iter().chain(new)
    }
}

/// How a speculative read ended.
pub(crate) enum Snap {
    /// Every thread and chunk is where it was expected (or was re-read).
    Taken,
    /// The process no longer matches: read step by step.
    Stale,
    /// The GIL switched since quiet threads were last read: read again,
    /// every thread this time.
    QuietMissed,
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

    /// Every thread state (newest first, into `states`) of the interpreter
    /// at `interp`, or with [`StackWalker::watch_interpreters`] of every
    /// interpreter (newest interpreter first), and the thread state holding
    /// `interp`'s GIL (0: none or unknown; every interpreter's holder:
    /// [`StackWalker::holds_gil`]), with each thread's data-stack chunks
    /// copied for [`StackWalker::walk_threads`]. One system call when the
    /// interpreters, threads and chunks are where the previous sample found
    /// them (and 3.11's `cframe`s aside).
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
        // The same stack walked again (the usual case) gives the same set.
        if !self.walked_codes().eq(spec.walked.iter().copied()) {
            spec.walked.clear();
            spec.walked.extend(self.walked_codes());
            spec.codes.clear();
            spec.codes.extend_from_slice(&spec.walked);
            spec.codes.sort_unstable();
            spec.codes.dedup();
            spec.codes.truncate(MAX_SPECULATED_CODES);
        }
        spec.last_full = !self.quiet.now.contains(&true);
        if spec.last_full {
            spec.full_extras.clone_from(&spec.extras);
            spec.full_codes.clone_from(&spec.codes);
        }
        self.speculation = spec;
        self.begin_read();
        self.quiet.now.clear();
        self.quiet.read_switches = None;
        let mut allow_quiet = self.quiet.enabled && self.quiet.since_full < FULL_READ_EVERY;
        let mut snap = self.read_snapshot(runtime, interp, states, allow_quiet)?;
        if matches!(snap, Snap::QuietMissed) {
            allow_quiet = false;
            self.begin_read();
            self.quiet.now.clear();
            snap = self.read_snapshot(runtime, interp, states, false)?;
        }
        self.quiet.since_full = if allow_quiet && self.quiet.now.contains(&true) {
            self.quiet.since_full + 1
        } else {
            0
        };
        if !matches!(snap, Snap::Taken) {
            self.quiet.now.clear();
            self.quiet.read_switches = None;
            self.copies.clear();
            self.extras_seen.clear();
            self.frames_read_late();
            self.refresh_interpreters(interp)?;
            states.clear();
            self.gils.holders.clear();
            self.gils.enabled.clear();
            let sampled = std::mem::take(&mut self.sampled);
            let mut counts = Vec::with_capacity(sampled.len());
            let result = (|| {
                for i in &sampled {
                    // The GIL before the threads: a switch count read after
                    // a thread's bytes would not prove them current.
                    let gil = self.read_gil_step(runtime, i.addr).unwrap_or_default();
                    let mut these = self.thread_states(i.addr)?;
                    for ts in &mut these {
                        ts.interpreter_id = i.id;
                    }
                    counts.push(these.len());
                    states.extend(these);
                    let enabled = self.read_gil_enabled(i.addr);
                    let read = GilRead { enabled, ..gil };
                    if sampled.len() == 1 && QuietBasis::from_read(&read).is_some() {
                        self.quiet.read_switches = read.switches;
                        self.quiet.read_last_holder = read.last_holder;
                    }
                    let holder = gil.holder;
                    // A disabled GIL has no holder (its fields may be stale).
                    let holder = if enabled == Some(false) { 0 } else { holder };
                    self.gils.holders.push(holder);
                    self.gils.enabled.push(enabled);
                }
                Ok::<(), Error>(())
            })();
            self.sampled = sampled;
            result?;
            self.speculation.per_interp = counts;
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
        }
        self.remember(states);
        // Only a single interpreter's GIL proves anything (`quiet.rs`).
        self.speculation.basis = match (self.sampled.len(), self.quiet.read_switches) {
            (1, Some(switches)) => Some(QuietBasis {
                switches,
                last_holder: self.quiet.read_last_holder,
            }),
            _ => None,
        };
        // `interp`'s holder: the last interpreter of the list is the main one.
        let at = self.sampled.iter().position(|i| i.addr == interp);
        Ok(at
            .and_then(|k| self.gils.holders.get(k).copied())
            .unwrap_or(0))
    }

    /// The speculative read; `None` when the process no longer matches it.
    fn read_snapshot(
        &mut self,
        runtime: usize,
        interp: usize,
        states: &mut Vec<ThreadState>,
        allow_quiet: bool,
    ) -> Result<Snap, Error> {
        let o = self.layout().offsets;
        let mut spec = std::mem::take(&mut self.speculation);
        let sampled = std::mem::take(&mut self.sampled);
        let mut gils = std::mem::take(&mut spec.gils);
        gils.clear();
        let basis = spec.basis.filter(|_| allow_quiet && sampled.len() == 1);
        let result = self.read_snapshot_with(
            runtime, interp, &spec, &sampled, &mut gils, states, &o, basis,
        );
        if matches!(result, Ok(Snap::Taken)) {
            spec.last_generation = self.generation;
        }
        spec.gils = gils;
        self.speculation = spec;
        self.sampled = sampled;
        result
    }

    #[allow(clippy::too_many_arguments)]
    fn read_snapshot_with(
        &mut self,
        runtime: usize,
        interp: usize,
        spec: &Speculation,
        sampled: &[InterpreterRef],
        gils: &mut Vec<Gil>,
        states: &mut Vec<ThreadState>,
        o: &crate::Offsets,
        basis: Option<QuietBasis>,
    ) -> Result<Snap, Error> {
        if spec.threads.is_empty() || sampled.is_empty() {
            return Ok(Snap::Stale);
        }
        let watch = self.interps.as_ref().map(|w| w.head_slot);
        if watch.is_none() && (sampled.len() != 1 || sampled[0].addr != interp) {
            return Ok(Snap::Stale);
        }
        for i in sampled {
            match self.gil_spec(runtime, i.addr) {
                Some(g) => gils.push(g),
                None => return Ok(Snap::Stale),
            }
        }
        // Quiet threads are neither read nor checked: their last full read
        // stands in (`quiet.rs`), if the GIL proves it below.
        self.quiet.now.clear();
        self.quiet.now.extend(
            spec.threads
                .iter()
                .map(|t| basis.is_some_and(|b| t.kept.stands_in(t.addr, &b))),
        );
        let tlen = self.tstate_len();
        self.ranges.clear();
        // The list itself, checked link by link: a started or ended
        // interpreter sends the read step by step.
        let link = crate::interpreters::link_range(o);
        if let (Some(slot), Some((lo, len))) = (watch, link) {
            self.ranges.push((slot, 8));
            for i in sampled {
                self.ranges.push((i.addr.wrapping_add(lo), len));
            }
        }
        let heads_at = bytes_so_far(&self.ranges);
        for i in sampled {
            self.ranges
                .push((i.addr.wrapping_add(o.interp_threads_head), 8));
        }
        let gil_at = bytes_so_far(&self.ranges);
        self.ranges.extend(gils.iter().filter_map(|g| g.range()));
        let gc_len = match self.gc_flag {
            Some(at) => {
                self.ranges.push((at, 4));
                4
            }
            None => 0,
        };
        let gc_at = bytes_so_far(&self.ranges) - gc_len;
        let threads_at = gc_at + gc_len;
        for (t, _) in spec
            .threads
            .iter()
            .zip(&self.quiet.now)
            .filter(|(_, q)| !**q)
        {
            self.ranges.push((t.addr, tlen));
        }
        // Pointers before what they point at: the extras (3.11's `cframe`
        // words among them) before the chunks, so a top frame is never
        // newer than the copy of its chunk.
        let extras_at = bytes_so_far(&self.ranges);
        let full = !self.quiet.now.contains(&true);
        self.ranges.extend(spec.extras_to_read(full));
        let chunks_at = bytes_so_far(&self.ranges);
        for (t, _) in spec
            .threads
            .iter()
            .zip(&self.quiet.now)
            .filter(|(_, q)| !**q)
        {
            self.ranges.extend(t.chunks.iter().copied());
        }
        let checks_at = bytes_so_far(&self.ranges);
        // 3.14+: code objects checked at the generation the last snapshot
        // read need no bytes while it stays put; if it moved, the walk
        // checks them in one batched read (`codes.rs`).
        let by_generation = self.layout().code_generation.is_some()
            && spec.last_generation.is_some()
            && spec.codes_to_check(full).all(|c| {
                self.codes
                    .get(c)
                    .is_none_or(|cc| cc.checked == spec.last_generation)
            });
        if !by_generation {
            for code in spec.codes_to_check(full) {
                if let Some(cc) = self.codes.get(code) {
                    self.ranges
                        .extend(cc.info.checks.iter().map(|(a, b)| (*a, b.len())));
                }
            }
        }
        // Last, after every frame byte: a code object freed before this
        // point changed it (see `codes.rs`). Each interpreter counts its own.
        if let Some(off) = self.layout().code_generation {
            for i in sampled {
                self.ranges.push((i.addr.wrapping_add(off), 8));
            }
        }
        let Some(total) = checked_total(&self.ranges).filter(|&t| t <= MAX_SNAPSHOT) else {
            return Ok(Snap::Stale);
        };
        self.copies.bytes.resize(total, 0);
        if self
            .objects
            .mem
            .read_ranges(&self.ranges, &mut self.copies.bytes)
            .is_err()
        {
            return Ok(Snap::Stale);
        }
        if let (Some(_), Some((lo, len))) = (watch, link) {
            // Head, then each interpreter's `next` and `id` as listed.
            let b = &self.copies.bytes;
            let mut expected = usize_at(b, 0);
            for (k, i) in sampled.iter().enumerate() {
                let at = 8 + k * len;
                let (next, id) = crate::interpreters::parse_link(o, lo, &b[at..at + len]);
                if expected != i.addr || id != i.id {
                    return Ok(Snap::Stale);
                }
                expected = next;
            }
            if expected != 0 {
                return Ok(Snap::Stale);
            }
        }
        let layout = SnapshotLayout {
            heads_at,
            gil_at,
            gc_at,
            gc_len,
            tlen,
            threads_at,
            extras_at,
            chunks_at,
            checks_at,
            checks_read: !by_generation,
        };
        self.check_snapshot(spec, sampled, gils, layout, states, basis)
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

/// The bytes of the ranges so far.
pub(crate) fn bytes_so_far(r: &[(usize, usize)]) -> usize {
    r.iter().map(|r| r.1).sum()
}

/// Where the parts of a snapshot sit in its copy.
#[derive(Debug, Clone)]
pub(crate) struct SnapshotLayout {
    /// Each interpreter's thread-list head.
    pub(crate) heads_at: usize,
    pub(crate) gil_at: usize,
    pub(crate) gc_at: usize,
    /// Bytes of the collector's flag (0: not read), after the GILs'.
    pub(crate) gc_len: usize,
    /// Bytes of each thread state.
    pub(crate) tlen: usize,
    pub(crate) threads_at: usize,
    pub(crate) extras_at: usize,
    pub(crate) chunks_at: usize,
    pub(crate) checks_at: usize,
    /// Whether the code objects' check ranges were read (at `checks_at`).
    pub(crate) checks_read: bool,
}
