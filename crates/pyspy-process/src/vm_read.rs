//! The normal memory path: `process_vm_readv`, many ranges per call. The
//! ranges are planned as spans (`joined.rs`): each span is one remote
//! iovec, and a call reads up to [`crate::joined::MAX_RANGES`] ranges.

use crate::joined::{ranges_in_chunks, reads_in_chunks, Piece, Plan, Scratch};
#[cfg(test)]
use crate::memory::PAGE;
use crate::{Pid, ReadCounter, ReadError};

/// Reads `ranges` one after another into `buf` (at least their total
/// length; else `EINVAL`).
pub(crate) fn vm_readv_ranges(
    pid: Pid,
    ranges: &[(usize, usize)],
    buf: &mut [u8],
    counter: &ReadCounter,
) -> Result<(), ReadError> {
    ranges_in_chunks(ranges, buf, |pieces| read_pieces(pid, pieces, counter))
}

/// Reads each `(address, buffer)`.
pub(crate) fn vm_readv(
    pid: Pid,
    reads: &mut [(usize, &mut [u8])],
    counter: &ReadCounter,
) -> Result<(), ReadError> {
    reads_in_chunks(reads, |pieces| read_pieces(pid, pieces, counter))
}

/// One `process_vm_readv` of `pieces`, a remote iovec per span.
fn read_pieces(pid: Pid, pieces: &mut [Piece], counter: &ReadCounter) -> Result<(), ReadError> {
    let mut scratch = Scratch::uninit();
    let mut plan = Plan::empty();
    plan.make(pieces, &mut scratch)?;
    let (local, remote) = (plan.locals(), plan.remote());
    if remote.is_empty() {
        return Ok(());
    }
    // SAFETY: the plan's local iovecs point into the callers' live,
    // exclusively borrowed buffers of the stated lengths, or into
    // `scratch`; remote ones are only read by the kernel.
    let got = unsafe {
        libc::process_vm_readv(
            pid,
            local.as_ptr(),
            local.len() as libc::c_ulong,
            remote.as_ptr(),
            remote.len() as libc::c_ulong,
            0,
        )
    };
    counter.add(got.max(0) as usize);
    if got < 0 {
        let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        let (addr, len) = pieces.first().map_or((0, 0), |p| (p.addr, p.len));
        return Err(ReadError { addr, len, errno });
    }
    if got as usize == plan.total() {
        return Ok(());
    }
    Err(plan.short_read(pieces, got as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own_pid() -> Pid {
        std::process::id() as Pid
    }

    #[test]
    fn nearby_ranges_are_one_iovec_and_each_lands_in_its_place() {
        // One page-aligned block of three pages, known bytes throughout.
        let layout = std::alloc::Layout::from_size_align(3 * PAGE, PAGE).unwrap();
        // SAFETY: a non-zero size; freed below.
        let block = unsafe { std::alloc::alloc(layout) };
        assert!(!block.is_null());
        for i in 0..3 * PAGE {
            // SAFETY: within the block.
            unsafe { *block.add(i) = (i % 251) as u8 };
        }
        let base = block as usize;
        let expect = |addr: usize, len: usize| -> Vec<u8> {
            (addr - base..addr - base + len)
                .map(|i| (i % 251) as u8)
                .collect()
        };
        let counter = ReadCounter::default();
        // Out of order, a gap on the same page, one overlapping another,
        // an empty one, and one across into the next page.
        let ranges = [
            (base + 300, 16),
            (base + 8, 24),
            (base + 310, 4),
            (base + 100, 0),
            (base + PAGE - 10, 30),
            (base + 2 * PAGE + 5, 7),
        ];
        let total: usize = ranges.iter().map(|r| r.1).sum();
        let mut buf = vec![0u8; total];
        vm_readv_ranges(own_pid(), &ranges, &mut buf, &counter).unwrap();
        let mut at = 0;
        for &(addr, len) in &ranges {
            assert_eq!(
                buf[at..at + len],
                expect(addr, len)[..],
                "range at +{:#x}",
                addr - base
            );
            at += len;
        }
        assert_eq!(counter.calls(), 1);
        // The gaps were read too (into scratch): more bytes than asked for.
        assert!(counter.bytes() as usize > total);

        let (mut x, mut y) = ([0u8; 5], [0u8; 9]);
        vm_readv(
            own_pid(),
            &mut [(base + 2 * PAGE, &mut x[..]), (base + 40, &mut y[..])],
            &counter,
        )
        .unwrap();
        assert_eq!(
            (x.to_vec(), y.to_vec()),
            (expect(base + 2 * PAGE, 5), expect(base + 40, 9))
        );
        // SAFETY: allocated above with this layout.
        unsafe { std::alloc::dealloc(block, layout) };
    }

    #[test]
    fn a_short_read_names_the_range_that_failed() {
        let data = [7u8; 64];
        let base = data.as_ptr() as usize;
        // Page 0 is never mapped.
        let ranges = [(base, 16), (0x10, 8), (base + 32, 8)];
        let mut buf = vec![0u8; 32];
        let err =
            vm_readv_ranges(own_pid(), &ranges, &mut buf, &ReadCounter::default()).unwrap_err();
        assert_eq!((err.addr, err.len), (0x10, 8), "{err:?}");
        assert_eq!(err.errno, libc::EFAULT);
        // Sorted first, the bad range fails the whole call: its own error.
        let mut one = [0u8; 8];
        let err = vm_readv(
            own_pid(),
            &mut [(0x10, &mut one[..])],
            &ReadCounter::default(),
        )
        .unwrap_err();
        assert_eq!(err.addr, 0x10);
    }
}
