//! The torn-read check of the default read mode: after a sample was copied
//! from a running target, one more batched read shows whether every stack
//! walked was really there, at once.

use pyspy_process::Memory;

use crate::error::Error;
use crate::objects::usize_at;
use crate::snapshot::checked_total;
use crate::walker::StackWalker;

/// Frames closer than this are re-read as one range (one iovec): the
/// kernel's cost is per range and per page, not per byte.
const RUN_GAP: usize = 512;
/// Most bytes one check re-reads (4,096 frames per thread at most, each
/// with a gap of at most `RUN_GAP` before it).
const MAX_CHECK: usize = 64 << 20;

impl<M: Memory> StackWalker<M> {
    /// Whether every stack walked in this read is still the one walked: its
    /// top-frame pointer points at the same top frame before and after the
    /// frames are compared, the top frame still runs the same code, and
    /// every frame below it still links to the same frame and is suspended
    /// at the same instruction in the same code. A frame below the top
    /// cannot move without the frames above it returning first, so a stack
    /// that passes was really there, at once, even if it was copied while
    /// running. One batched read for all threads: every top-frame pointer,
    /// then the frames (neighbours as one range), then the pointers again.
    pub fn walks_unchanged(&mut self) -> Result<bool, Error> {
        let o = self.layout().offsets;
        let fields = [o.frame_executable, o.frame_instr_ptr, o.frame_previous];
        let lo = fields.into_iter().min().unwrap_or(0);
        let hi = fields.into_iter().max().unwrap_or(0) + 8;
        let span = hi - lo;
        if span > 256 {
            // No real frame has these pointers this far apart.
            return Err(Error::Corrupt {
                what: "frame layout",
                addr: self.walks.first().map_or(0, |w| w.top),
            });
        }
        let walks = std::mem::take(&mut self.walks);
        let checked = || walks.iter().filter(|w| w.slot != 0 && w.top != 0);
        // Frames by address, grouped into runs of neighbours.
        let mut order: Vec<(usize, usize)> = checked()
            .flat_map(|w| w.frames.clone())
            .map(|i| (self.pending[i].addr.wrapping_add(lo), i))
            .collect();
        order.sort_unstable();
        let mut runs: Vec<(usize, usize)> = Vec::new();
        // Per frame of `pending`: its run and its offset in that run.
        let mut place = vec![(0usize, 0usize); self.pending.len()];
        for &(start, i) in &order {
            let last = runs.len().wrapping_sub(1);
            match runs.last_mut() {
                Some(run) if start >= run.0 && start - run.0 <= run.1 + RUN_GAP => {
                    place[i] = (last, start - run.0);
                    run.1 = run.1.max(start - run.0 + span);
                }
                _ => {
                    place[i] = (runs.len(), 0);
                    runs.push((start, span));
                }
            }
        }
        let slots = checked().count();
        self.ranges.clear();
        self.ranges.extend(checked().map(|w| (w.slot, 8)));
        self.ranges.extend(runs.iter().copied());
        self.ranges.extend(checked().map(|w| (w.slot, 8)));
        let Some(total) = checked_total(&self.ranges).filter(|&t| t <= MAX_CHECK) else {
            self.walks = walks;
            return Err(Error::Corrupt {
                what: "frame chain (too spread out to re-read)",
                addr: self.walks.first().map_or(0, |w| w.top),
            });
        };
        self.check_buf.resize(total, 0);
        let read = self.ranges.is_empty()
            || self
                .objects
                .mem
                .read_ranges(&self.ranges, &mut self.check_buf)
                .is_ok();
        // Where each run starts in the buffer.
        let mut run_at = Vec::with_capacity(runs.len());
        let mut at = slots * 8;
        for r in &runs {
            run_at.push(at);
            at += r.1;
        }
        let after = at;
        let buf = &self.check_buf;
        let mut same = read;
        for (k, w) in checked().enumerate() {
            if !same {
                break;
            }
            same &= usize_at(buf, k * 8) == w.top && usize_at(buf, after + k * 8) == w.top;
            for i in w.frames.clone() {
                let f = &self.pending[i];
                let (run, off) = place[i];
                let now = &buf[run_at[run] + off..run_at[run] + off + span];
                same &= usize_at(now, o.frame_executable - lo) & !7 == f.code;
                same &= usize_at(now, o.frame_previous - lo) == f.previous;
                if f.addr != w.top {
                    same &= usize_at(now, o.frame_instr_ptr - lo) == f.instr;
                }
            }
        }
        self.walks = walks;
        Ok(same)
    }
}
