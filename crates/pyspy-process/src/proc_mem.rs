//! The fallback memory path: `pread`/`preadv` on `/proc/PID/mem`, for
//! sandboxes that refuse `process_vm_readv` but let the file be read
//! (older Docker seccomp profiles, gVisor, qemu-user). The file is opened
//! once, read-only, and kept. A call reads one span of the file, where
//! `process_vm_readv` takes many ranges: the ranges are planned as spans
//! of nearby ranges (`joined.rs`), one `preadv` each.

use std::fs::File;
use std::os::fd::AsRawFd;

use crate::joined::{ranges_in_chunks, reads_in_chunks, Piece, Plan, Scratch};
#[cfg(test)]
use crate::memory::{joins, PAGE};
use crate::{ReadCounter, ReadError};

/// Reads each `(address, buffer)`: one `preadv` per span of nearby ranges.
pub(crate) fn read_many(
    file: &File,
    reads: &mut [(usize, &mut [u8])],
    counter: &ReadCounter,
) -> Result<(), ReadError> {
    reads_in_chunks(reads, |pieces| read_pieces(file, pieces, counter))
}

/// Reads `(address, length)` ranges one after another into `buf` (at least
/// their total length; else `EINVAL`), as [`read_many`].
pub(crate) fn read_ranges(
    file: &File,
    ranges: &[(usize, usize)],
    buf: &mut [u8],
    counter: &ReadCounter,
) -> Result<(), ReadError> {
    ranges_in_chunks(ranges, buf, |pieces| read_pieces(file, pieces, counter))
}

/// A `preadv` per span of `pieces`; a failed span is named by its first
/// range (the span is read as one, so the failing range within it is not
/// known).
fn read_pieces(file: &File, pieces: &mut [Piece], counter: &ReadCounter) -> Result<(), ReadError> {
    let mut scratch = Scratch::uninit();
    let mut plan = Plan::empty();
    plan.make(pieces, &mut scratch)?;
    for span in plan.spans() {
        preadv_all(
            file,
            span.start,
            plan.locals_of(span),
            span.end - span.start,
            counter,
        )
        .map_err(|errno| ReadError {
            addr: pieces[span.first].addr,
            len: pieces[span.first].len,
            errno,
        })?;
    }
    Ok(())
}

/// One `preadv` at remote address `addr` into `iov` (`total` bytes), with
/// no partial result: the errno to report otherwise (`EFAULT` for memory
/// that is not mapped, which the file reports as `EIO` or a short read).
fn preadv_all(
    file: &File,
    addr: usize,
    iov: &[libc::iovec],
    total: usize,
    counter: &ReadCounter,
) -> Result<(), i32> {
    if total == 0 {
        return Ok(());
    }
    let Ok(offset) = libc::off_t::try_from(addr) else {
        return Err(libc::EFAULT);
    };
    // SAFETY: every iovec points into a live, exclusively borrowed buffer
    // of its stated length (built by the callers from `&mut [u8]`).
    let got = unsafe {
        libc::preadv(
            file.as_raw_fd(),
            iov.as_ptr(),
            iov.len() as libc::c_int,
            offset,
        )
    };
    counter.add(got.max(0) as usize);
    if got < 0 {
        let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        return Err(if errno == libc::EIO {
            libc::EFAULT
        } else {
            errno
        });
    }
    // The kernel copies page by page and stops at the first unmapped one:
    // a short count means the rest is not readable.
    if got as usize == total {
        Ok(())
    } else {
        Err(libc::EFAULT)
    }
}

// Linux always has /proc/self/mem; FreeBSD only with procfs mounted (the
// release workflow's FreeBSD job reads through it end to end instead).
#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn own_mem() -> File {
        File::open("/proc/self/mem").expect("open /proc/self/mem")
    }

    #[test]
    fn reads_contiguous_runs_in_one_call() {
        let a = [7u8; 64];
        // On the heap: not next to `a`, which would make one run of both.
        let b = Box::new([3u8; 16]);
        let file = own_mem();
        let counter = ReadCounter::default();
        let (mut x, mut y, mut z) = ([0u8; 32], [0u8; 32], [0u8; 16]);
        let base = a.as_ptr() as usize;
        read_many(
            &file,
            &mut [
                (base, &mut x[..]),
                (base + 32, &mut y[..]),
                (b.as_ptr() as usize, &mut z[..]),
            ],
            &counter,
        )
        .unwrap();
        assert_eq!(counter.calls(), 2, "a's two halves are one call");
        assert_eq!((x, y, &z[..]), ([7u8; 32], [7u8; 32], &b[..]));

        let mut buf = [0u8; 80];
        read_ranges(
            &file,
            &[(base, 40), (base + 40, 24), (b.as_ptr() as usize, 16)],
            &mut buf,
            &counter,
        )
        .unwrap();
        assert_eq!(counter.calls(), 4);
        assert_eq!(&buf[..64], &a[..]);
        assert_eq!(&buf[64..], &b[..]);
    }

    #[test]
    fn nearby_ranges_are_one_call_and_far_ones_are_not() {
        let data: Vec<u8> = (0..3 * PAGE as u32).map(|i| (i % 251) as u8).collect();
        let base = data.as_ptr() as usize;
        let file = own_mem();
        let counter = ReadCounter::default();
        // Gaps within the next page: one call; the bytes land in order.
        let ranges = [(base + 8, 8), (base + 100, 4), (base + PAGE + 10, 6)];
        let mut buf = [0u8; 18];
        read_ranges(&file, &ranges, &mut buf, &counter).unwrap();
        assert_eq!(counter.calls(), 1);
        assert_eq!(&buf[..8], &data[8..16]);
        assert_eq!(&buf[8..12], &data[100..104]);
        assert_eq!(&buf[12..], &data[PAGE + 10..PAGE + 16]);
        // Out of order: sorted, still one call, each into its own place.
        let shuffled = [(base + PAGE + 10, 6), (base + 8, 8), (base + 100, 4)];
        read_ranges(&file, &shuffled, &mut buf, &counter).unwrap();
        assert_eq!(counter.calls(), 2);
        assert_eq!(&buf[..6], &data[PAGE + 10..PAGE + 16]);
        assert_eq!(&buf[6..14], &data[8..16]);
        assert_eq!(&buf[14..], &data[100..104]);
        // Overlapping, or two pages on: a call each.
        let far = [(base + 8, 8), (base + 12, 4), (base + 2 * PAGE + 600, 4)];
        read_ranges(&file, &far, &mut buf[..16], &counter).unwrap();
        assert_eq!(counter.calls(), 5);
        assert_eq!(&buf[8..12], &data[12..16]);
        assert_eq!(&buf[12..16], &data[2 * PAGE + 600..2 * PAGE + 604]);
        assert!(joins(base + 16, base + 100));
        assert!(!joins(base + 16, base + 8));
    }

    #[test]
    fn an_unmapped_address_is_efault() {
        let file = own_mem();
        let counter = ReadCounter::default();
        let mut x = [0u8; 8];
        let err = read_many(&file, &mut [(8, &mut x[..])], &counter).unwrap_err();
        assert_eq!((err.addr, err.errno), (8, libc::EFAULT));
        let mut buf = [0u8; 8];
        let err = read_ranges(&file, &[(usize::MAX - 4, 8)], &mut buf, &counter).unwrap_err();
        assert_eq!(err.errno, libc::EFAULT);
        // Zero bytes succeed anywhere, as with process_vm_readv.
        read_ranges(&file, &[(8, 0)], &mut buf, &counter).unwrap();
    }
}
