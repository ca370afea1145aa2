//! The checks of a sample's snapshot (`snapshot.rs`): the code objects'
//! check ranges, each thread's copied chunks, and what to read along next
//! time.

use pyspy_process::Memory;

use crate::chunks::CHUNK_HEADER;
use crate::chunks::MAX_CHUNK_TOTAL;
use crate::objects::usize_at;
use crate::snapshot::{SpeculatedThread, CHUNK_SLACK, STILL_READS};
use crate::threads::MAX_THREADS;
use crate::walker::StackWalker;
use crate::ThreadState;

impl<M: Memory> StackWalker<M> {
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
