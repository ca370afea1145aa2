//! Reading many ranges of another process's memory as few spans, for both
//! Linux/FreeBSD memory paths: `process_vm_readv` (`vm_read.rs`: each span
//! one remote iovec of one call) and `/proc/PID/mem` (`proc_mem.rs`: one
//! `preadv` per span).
//!
//! The kernel pays per span (the address-space lock, a VMA lookup, pinning)
//! and per page, hardly per byte. So a call's ranges are sorted by address
//! and those on the same or the next page ([`joins`]) are one span; the
//! bytes between them land in a scratch buffer. Such a gap lies on pages
//! that hold bytes asked for, so it cannot fault where the ranges
//! themselves do not. Each range is still scattered into its own buffer:
//! callers see no difference. Overlapping ranges start a new span. Nothing
//! is allocated: a plan of up to [`MAX_RANGES`] ranges lives on the stack,
//! and longer lists are read [`MAX_RANGES`] at a time.

use std::mem::MaybeUninit;

use crate::memory::{joins, PAGE};
use crate::ReadError;

/// Most iovecs one call accepts (the kernel's `UIO_MAXIOV`).
pub(crate) const MAX_IOV: usize = 1024;
/// Most ranges per plan: on the local side each may need a gap before it.
pub(crate) const MAX_RANGES: usize = MAX_IOV / 2;

/// One range to read and where its bytes go (a caller's exclusively
/// borrowed buffer of `len` bytes).
#[derive(Clone, Copy)]
pub(crate) struct Piece {
    pub(crate) addr: usize,
    pub(crate) len: usize,
    dest: *mut u8,
}

/// Where every gap of a plan is written, over and over; never read.
pub(crate) type Scratch = MaybeUninit<[u8; 2 * PAGE]>;

/// One span: remote bytes `start..end`, filling local iovecs
/// `locals.0..locals.1`; `first` is the index of its first piece.
#[derive(Clone, Copy)]
pub(crate) struct Span {
    pub(crate) start: usize,
    pub(crate) end: usize,
    locals: (usize, usize),
    pub(crate) first: usize,
}

/// The spans of up to [`MAX_RANGES`] pieces and their local iovecs.
pub(crate) struct Plan {
    spans: [MaybeUninit<Span>; MAX_RANGES],
    remote: [MaybeUninit<libc::iovec>; MAX_RANGES],
    locals: [MaybeUninit<libc::iovec>; MAX_IOV],
    n_spans: usize,
    n_locals: usize,
}

impl Plan {
    /// An empty plan (nothing initialized: no cost). Inlined, so that the
    /// ~44 KB of arrays are made where they are used, not copied.
    #[inline(always)]
    pub(crate) fn empty() -> Plan {
        Plan {
            spans: [MaybeUninit::uninit(); MAX_RANGES],
            remote: [MaybeUninit::uninit(); MAX_RANGES],
            locals: [MaybeUninit::uninit(); MAX_IOV],
            n_spans: 0,
            n_locals: 0,
        }
    }

    /// Plans reading `pieces` (sorted here by address; at most
    /// [`MAX_RANGES`]); gaps go to `scratch`.
    pub(crate) fn make(
        &mut self,
        pieces: &mut [Piece],
        scratch: &mut Scratch,
    ) -> Result<(), ReadError> {
        debug_assert!(pieces.len() <= MAX_RANGES);
        if !pieces.windows(2).all(|w| w[0].addr <= w[1].addr) {
            pieces.sort_unstable_by_key(|p| p.addr);
        }
        let gap_buf = scratch.as_mut_ptr().cast::<libc::c_void>();
        let plan = self;
        plan.n_spans = 0;
        plan.n_locals = 0;
        let mut open: Option<Span> = None;
        for (i, p) in pieces.iter().enumerate().take(MAX_RANGES) {
            // Zero bytes succeed anywhere (nothing is read for them).
            if p.len == 0 {
                continue;
            }
            let Some(end) = p.addr.checked_add(p.len) else {
                return Err(ReadError {
                    addr: p.addr,
                    len: p.len,
                    errno: libc::EFAULT,
                });
            };
            match open.as_mut() {
                Some(span) if joins(span.end, p.addr) => {
                    if p.addr > span.end {
                        plan.push_local(gap_buf, p.addr - span.end);
                    }
                    span.end = end;
                }
                _ => {
                    if let Some(span) = open.take() {
                        plan.close(span);
                    }
                    open = Some(Span {
                        start: p.addr,
                        end,
                        locals: (plan.n_locals, plan.n_locals),
                        first: i,
                    });
                }
            }
            plan.push_local(p.dest.cast(), p.len);
        }
        if let Some(span) = open {
            plan.close(span);
        }
        Ok(())
    }

    fn push_local(&mut self, base: *mut libc::c_void, len: usize) {
        self.locals[self.n_locals].write(libc::iovec {
            iov_base: base,
            iov_len: len,
        });
        self.n_locals += 1;
    }

    fn close(&mut self, mut span: Span) {
        span.locals.1 = self.n_locals;
        self.remote[self.n_spans].write(libc::iovec {
            iov_base: span.start as *mut libc::c_void,
            iov_len: span.end - span.start,
        });
        self.spans[self.n_spans].write(span);
        self.n_spans += 1;
    }

    /// The spans, in address order.
    pub(crate) fn spans(&self) -> &[Span] {
        // SAFETY: the first `n_spans` entries were written by `close`.
        unsafe { std::slice::from_raw_parts(self.spans.as_ptr().cast::<Span>(), self.n_spans) }
    }

    /// Every local iovec (pieces and gaps), in remote order.
    pub(crate) fn locals(&self) -> &[libc::iovec] {
        // SAFETY: the first `n_locals` entries were written by `push_local`.
        unsafe {
            std::slice::from_raw_parts(self.locals.as_ptr().cast::<libc::iovec>(), self.n_locals)
        }
    }

    /// The local iovecs of `span`.
    pub(crate) fn locals_of(&self, span: &Span) -> &[libc::iovec] {
        &self.locals()[span.locals.0..span.locals.1]
    }
}

/// What only `process_vm_readv` (one call for every span) needs.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
impl Plan {
    /// One remote iovec per span.
    pub(crate) fn remote(&self) -> &[libc::iovec] {
        // SAFETY: the first `n_spans` entries were written by `close`.
        unsafe {
            std::slice::from_raw_parts(self.remote.as_ptr().cast::<libc::iovec>(), self.n_spans)
        }
    }

    /// Bytes all spans read, gaps included.
    pub(crate) fn total(&self) -> usize {
        self.spans().iter().map(|s| s.end - s.start).sum()
    }

    /// The piece a read of every span in order stopped in after `got` bytes
    /// (the kernel copies page by page and stops at the first it cannot
    /// read), as an `EFAULT` error.
    pub(crate) fn short_read(&self, pieces: &[Piece], got: usize) -> ReadError {
        let mut at = 0usize;
        for span in self.spans() {
            let len = span.end - span.start;
            if got < at + len {
                // Within this span: the piece whose bytes were not all read.
                let inside = got - at;
                let piece = pieces[span.first..]
                    .iter()
                    .filter(|p| p.len > 0)
                    .find(|p| p.addr + p.len > span.start + inside)
                    .unwrap_or(&pieces[span.first]);
                return ReadError {
                    addr: piece.addr,
                    len: piece.len,
                    errno: libc::EFAULT,
                };
            }
            at += len;
        }
        ReadError {
            addr: 0,
            len: at,
            errno: libc::EFAULT,
        }
    }
}

/// Calls `read` with the pieces of `ranges` (read one after another into
/// `buf`), [`MAX_RANGES`] at a time. A `buf` too short for them all is
/// `EINVAL`, before anything is read.
pub(crate) fn ranges_in_chunks(
    ranges: &[(usize, usize)],
    buf: &mut [u8],
    mut read: impl FnMut(&mut [Piece]) -> Result<(), ReadError>,
) -> Result<(), ReadError> {
    let total = ranges
        .iter()
        .try_fold(0usize, |sum, r| sum.checked_add(r.1))
        .unwrap_or(usize::MAX);
    if total > buf.len() {
        return Err(ReadError {
            addr: ranges.first().map_or(0, |r| r.0),
            len: total,
            errno: libc::EINVAL,
        });
    }
    let mut rest = buf;
    for chunk in ranges.chunks(MAX_RANGES) {
        let mut pieces = [MaybeUninit::<Piece>::uninit(); MAX_RANGES];
        for (slot, &(addr, len)) in pieces.iter_mut().zip(chunk) {
            let (head, tail) = std::mem::take(&mut rest).split_at_mut(len);
            slot.write(Piece {
                addr,
                len,
                dest: head.as_mut_ptr(),
            });
            rest = tail;
        }
        // SAFETY: the first `chunk.len()` (≤ MAX_RANGES) entries were written above.
        read(unsafe {
            std::slice::from_raw_parts_mut(pieces.as_mut_ptr().cast::<Piece>(), chunk.len())
        })?;
    }
    Ok(())
}

/// Calls `read` with the pieces of `reads`, [`MAX_RANGES`] at a time.
pub(crate) fn reads_in_chunks(
    reads: &mut [(usize, &mut [u8])],
    mut read: impl FnMut(&mut [Piece]) -> Result<(), ReadError>,
) -> Result<(), ReadError> {
    for chunk in reads.chunks_mut(MAX_RANGES) {
        let mut pieces = [MaybeUninit::<Piece>::uninit(); MAX_RANGES];
        for (slot, (addr, buf)) in pieces.iter_mut().zip(chunk.iter_mut()) {
            slot.write(Piece {
                addr: *addr,
                len: buf.len(),
                dest: buf.as_mut_ptr(),
            });
        }
        // SAFETY: the first `chunk.len()` (≤ MAX_RANGES) entries were written above.
        read(unsafe {
            std::slice::from_raw_parts_mut(pieces.as_mut_ptr().cast::<Piece>(), chunk.len())
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_of(ranges: &[(usize, usize)]) -> (Vec<(usize, usize)>, Vec<usize>, usize) {
        let total: usize = ranges.iter().map(|r| r.1).sum();
        let mut buf = vec![0u8; total];
        let mut out = None;
        ranges_in_chunks(ranges, &mut buf, |pieces| {
            let mut scratch = Scratch::uninit();
            let mut plan = Plan::empty();
            plan.make(pieces, &mut scratch)?;
            let spans = plan.spans().iter().map(|s| (s.start, s.end)).collect();
            let locals = plan.locals().iter().map(|l| l.iov_len).collect();
            out = Some((spans, locals, plan.total()));
            Ok(())
        })
        .unwrap();
        out.unwrap()
    }

    #[test]
    fn nearby_ranges_are_one_span_far_and_overlapping_ones_are_not() {
        let p = 0x10_0000;
        let (spans, locals, total) = plan_of(&[
            (p + 300, 16),
            (p + 8, 24),
            (p + 310, 4),
            (p + 100, 0),
            (p + PAGE - 10, 30),
            (p + 3 * PAGE, 7),
        ]);
        // Sorted: 8..32, 300..316 (gap 268), then 310..314 overlaps: a new
        // span, joined by the next-page range (gap PAGE-10-314); the far one alone.
        assert_eq!(
            spans,
            vec![
                (p + 8, p + 316),
                (p + 310, p + PAGE + 20),
                (p + 3 * PAGE, p + 3 * PAGE + 7)
            ]
        );
        assert_eq!(locals, vec![24, 268, 16, 4, PAGE - 10 - 314, 30, 7]);
        assert_eq!(total, locals.iter().sum::<usize>());
    }

    #[test]
    fn a_short_read_names_the_piece_it_stopped_in() {
        let mut buf = [0u8; 40];
        let ranges = [(0x2000, 8), (0x2010, 8), (0x9000, 24)];
        ranges_in_chunks(&ranges, &mut buf, |pieces| {
            let mut scratch = Scratch::uninit();
            let mut plan = Plan::empty();
            plan.make(pieces, &mut scratch)?;
            // Span 0x2000..0x2018 (8 + gap 8 + 8), then 0x9000..0x9018.
            assert_eq!(plan.short_read(pieces, 4).addr, 0x2000);
            assert_eq!(
                plan.short_read(pieces, 12).addr,
                0x2010,
                "stopped in the gap: the next piece"
            );
            assert_eq!(plan.short_read(pieces, 24).addr, 0x9000);
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn a_buffer_too_short_is_einval_and_nothing_is_read() {
        let mut buf = [0u8; 8];
        let mut called = false;
        let err = ranges_in_chunks(&[(0x1000, 8), (0x2000, 1)], &mut buf, |_| {
            called = true;
            Ok(())
        })
        .unwrap_err();
        assert_eq!(err.errno, libc::EINVAL);
        assert!(!called);
    }

    #[test]
    fn long_lists_are_planned_max_ranges_at_a_time() {
        let ranges: Vec<(usize, usize)> = (0..MAX_RANGES + 3)
            .map(|i| (0x100_0000 + i * 3 * PAGE, 1))
            .collect();
        let mut buf = vec![0u8; ranges.len()];
        let mut sizes = Vec::new();
        ranges_in_chunks(&ranges, &mut buf, |pieces| {
            sizes.push(pieces.len());
            Ok(())
        })
        .unwrap();
        assert_eq!(sizes, vec![MAX_RANGES, 3]);
    }
}
