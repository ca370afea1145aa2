//! The checks of a sample's snapshot (`snapshot.rs`): the copy parsed and
//! checked link by link (thread list, GIL, quiet threads' speculation), the
//! code objects' check ranges, each thread's copied chunks, and what to read
//! along next time.

use pyspy_process::Memory;

use crate::chunks::CHUNK_HEADER;
use crate::chunks::MAX_CHUNK_TOTAL;
use crate::error::Error;
use crate::gil_state::{Gil, GilRead};
use crate::objects::usize_at;
use crate::quiet::QuietBasis;
use crate::snapshot::{
    Snap, SnapshotLayout, SpeculatedThread, Speculation, CHUNK_SLACK, STILL_READS,
};
use crate::threads::MAX_THREADS;
use crate::walker::StackWalker;
use crate::InterpreterRef;
use crate::ThreadState;

impl<M: Memory> StackWalker<M> {
    /// Parses and checks the snapshot in `copies.bytes` against `spec`.
    pub(crate) fn check_snapshot(
        &mut self,
        spec: &Speculation,
        sampled: &[InterpreterRef],
        gils: &[Gil],
        at: SnapshotLayout,
        states: &mut Vec<ThreadState>,
        basis: Option<QuietBasis>,
    ) -> Result<Snap, Error> {
        let SnapshotLayout {
            heads_at,
            gil_at,
            gc_at,
            gc_len,
            tlen,
            threads_at,
            extras_at,
            chunks_at,
            checks_at,
            checks_read,
        } = at;
        let o = self.layout().offsets;
        if spec.per_interp.len() != sampled.len()
            || spec.per_interp.iter().sum::<usize>() != spec.threads.len()
        {
            return Ok(Snap::Stale);
        }
        let mut first_gil = GilRead::default();
        if let Some(g) = gils.first() {
            first_gil = g.parse(&self.copies.bytes[gil_at..gil_at + g.len()]);
        }
        if basis.is_some_and(|b| !b.still_holds(&first_gil)) {
            return Ok(Snap::QuietMissed);
        }
        if sampled.len() == 1 && QuietBasis::from_read(&first_gil).is_some() {
            self.quiet.read_switches = first_gil.switches;
            self.quiet.read_last_holder = first_gil.last_holder;
        }
        // Register the extras first: thread states may need their words.
        let mut pos = extras_at;
        let full = !self.quiet.now.contains(&true);
        for (addr, len) in spec.extras_to_read(full) {
            self.copies.extras.push((addr, pos..pos + len));
            pos += len;
        }
        if self.layout().code_generation.is_some() {
            // Generations only grow: their sum changes when any does.
            let b = &self.copies.bytes;
            let gens = b.len() - 8 * sampled.len();
            let sum = (0..sampled.len()).fold(0u64, |s, k| {
                s.wrapping_add(usize_at(b, gens + 8 * k) as u64)
            });
            self.generation = Some(sum);
        }
        if checks_read {
            self.compare_code_checks(spec.codes_to_check(full), checks_at, spec.last_generation);
        }
        // Until a frame is read later than this snapshot, its checks (and
        // 3.14+'s generations, its last bytes) vouch for the code objects.
        self.snapshot_vouches = checks_read;
        let bytes = &self.copies.bytes;
        self.gc_running = gc_len > 0 && bytes[gc_at..gc_at + gc_len] != [0; 4];
        self.gils.holders.clear();
        self.gils.enabled.clear();
        let mut g_at = gil_at;
        for g in gils {
            let read = g.parse(&bytes[g_at..g_at + g.len()]);
            g_at += g.len();
            self.gils.holders.push(read.holder);
            self.gils.enabled.push(read.enabled);
        }
        states.clear();
        // A thread state is parsed from a copy: parsing may read (3.11's
        // cframe) and look at the snapshot's other ranges.
        let mut tbuf = [0u8; 1024];
        let Some(tbuf) = tbuf.get_mut(..tlen) else {
            return Ok(Snap::Stale);
        };
        let mut at = threads_at;
        let mut threads = spec.threads.iter().enumerate();
        for (k, (i, &count)) in sampled.iter().zip(&spec.per_interp).enumerate() {
            let mut expected = usize_at(&self.copies.bytes, heads_at + 8 * k);
            for (n, t) in threads.by_ref().take(count) {
                if expected != t.addr {
                    return Ok(Snap::Stale);
                }
                let quiet = self.quiet.now.get(n).copied().unwrap_or(false);
                if let (true, Some(mut ts)) = (quiet, t.kept.state) {
                    ts.interpreter_id = i.id;
                    states.push(ts);
                    expected = t.kept.next;
                    continue;
                }
                tbuf.copy_from_slice(&self.copies.bytes[at..at + tlen]);
                at += tlen;
                match self.parse_tstate(t.addr, tbuf) {
                    Ok(mut ts) => {
                        ts.interpreter_id = i.id;
                        states.push(ts);
                    }
                    Err(_) => return Ok(Snap::Stale),
                }
                expected = usize_at(tbuf, o.tstate_next);
            }
            if expected != 0 {
                return Ok(Snap::Stale);
            }
        }
        if o.tstate_native_thread_id.is_none() {
            if let Some(off) = self.layout().pthread_tid {
                self.tids_from_pthreads(off, states);
            }
        }
        // Each thread's chunks, as copied or (changed) read again.
        let mut at = chunks_at;
        for (n, (t, ts)) in spec.threads.iter().zip(states.iter()).enumerate() {
            let first = self.copies.chunks.len();
            if self.quiet.now.get(n) == Some(&true) {
                // Not read: its walk is reused.
                self.copies.per_thread.push(first..first);
                continue;
            }
            let ok = ts.top_frame == 0 || self.accept_chunks(t, ts, at);
            at += t.chunks.iter().map(|c| c.1).sum::<usize>();
            if !ok {
                self.copies.chunks.truncate(first);
                self.frames_read_late();
                let _ = self.prefetch_chunks(ts.datastack_chunk, ts.datastack_top);
            }
            self.copies.per_thread.push(first..self.copies.chunks.len());
        }
        Ok(Snap::Taken)
    }

    /// Compares the check ranges of `codes` copied at `pos` in the snapshot
    /// (in the order `read_snapshot` put them) with what each cached code
    /// object expects: stale ones are evicted, the others need no other
    /// check in this read.
    pub(crate) fn compare_code_checks<'a>(
        &mut self,
        codes: impl Iterator<Item = &'a usize>,
        mut pos: usize,
        before: Option<u64>,
    ) {
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
                // 3.14+: checked as of the generation the previous snapshot
                // read, which came before these bytes (this snapshot's own
                // comes after them: a code object freed in between would not
                // show). While the generation stays there, the next
                // snapshots need not read these bytes.
                if before.is_some() {
                    cc.checked = before;
                }
            } else {
                self.codes.remove(code);
                self.evicted.push(*code);
            }
        }
    }

    /// Registers the chunks of thread `t` copied at `at` in the snapshot,
    /// if they are still the thread's chunks and hold all of its frames.
    pub(crate) fn accept_chunks(
        &mut self,
        t: &SpeculatedThread,
        ts: &ThreadState,
        mut at: usize,
    ) -> bool {
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
    pub(crate) fn remember(&mut self, states: &[ThreadState]) {
        let mut spec = std::mem::take(&mut self.speculation);
        spec.threads
            .resize(states.len().min(MAX_THREADS), SpeculatedThread::default());
        for (i, (t, ts)) in spec.threads.iter_mut().zip(states).enumerate() {
            if self.quiet.now.get(i) == Some(&true) {
                // Not read: kept as it was, chunks and all.
                continue;
            }
            if t.addr != ts.addr {
                (t.last_used, t.still) = (0, 0);
            }
            t.addr = ts.addr;
            // What stands in for it while quiet: its `next` is the state
            // after it in its interpreter's list (checked link by link).
            t.kept.state = Some(*ts);
            t.kept.next = states
                .get(i + 1)
                .filter(|n| n.interp == ts.interp)
                .map_or(0, |n| n.addr);
            t.kept.state_read = self.read_id;
            t.kept.switches = self.quiet.read_switches;
            t.chunks.clear();
            let Some(range) = self.copies.per_thread.get(i) else {
                continue;
            };
            let chunks = &self.copies.chunks[range.clone()];
            let used = chunks.first().map_or(0, |c| c.1.len());
            t.still = if used == t.last_used {
                t.still.saturating_add(1)
            } else {
                0
            };
            t.last_used = used;
            let slack = if t.still >= STILL_READS {
                0
            } else {
                CHUNK_SLACK
            };
            for (addr, copy) in chunks {
                let size = usize_at(&self.copies.bytes[copy.clone()], 8);
                let window = (copy.len() + slack).min(size).max(copy.len());
                t.chunks.push((*addr, window));
            }
        }
        self.speculation = spec;
    }
}
