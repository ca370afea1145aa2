//! The fallback memory path: `pread`/`preadv` on `/proc/PID/mem`, for
//! sandboxes that refuse `process_vm_readv` but let the file be read
//! (older Docker seccomp profiles, gVisor, qemu-user). The file is opened
//! once, read-only, and kept; ranges that continue one another are one
//! call, as they are one iovec on the normal path.

use std::fs::File;
use std::os::fd::AsRawFd;

use crate::{ReadCounter, ReadError};

/// Most local buffers one `preadv` accepts (the kernel's `UIO_MAXIOV`).
const MAX_IOV: usize = 1024;

/// Reads each `(address, buffer)`; buffers whose remote ranges follow one
/// another are filled by one `preadv`.
pub(crate) fn read_many(
    file: &File,
    reads: &mut [(usize, &mut [u8])],
    counter: &ReadCounter,
) -> Result<(), ReadError> {
    let mut i = 0;
    while i < reads.len() {
        let start = reads[i].0;
        let mut end = start.wrapping_add(reads[i].1.len());
        let mut j = i + 1;
        while j < reads.len() && j - i < MAX_IOV && reads[j].0 == end {
            end = end.wrapping_add(reads[j].1.len());
            j += 1;
        }
        let run = &mut reads[i..j];
        let iov: Vec<libc::iovec> = run
            .iter_mut()
            .map(|(_, b)| libc::iovec {
                iov_base: b.as_mut_ptr().cast(),
                iov_len: b.len(),
            })
            .collect();
        let total = end.wrapping_sub(start);
        if let Err(errno) = preadv_all(file, start, &iov, total, counter) {
            return Err(first_short(run.iter().map(|(a, b)| (*a, b.len())), errno));
        }
        i = j;
    }
    Ok(())
}

/// Reads `(address, length)` ranges one after another into `buf` (whose
/// length is at least their sum; checked by the caller); contiguous
/// ranges are one `pread`.
pub(crate) fn read_ranges(
    file: &File,
    ranges: &[(usize, usize)],
    buf: &mut [u8],
    counter: &ReadCounter,
) -> Result<(), ReadError> {
    let mut at = 0;
    let mut i = 0;
    while i < ranges.len() {
        let start = ranges[i].0;
        let mut len = ranges[i].1;
        let mut j = i + 1;
        while j < ranges.len() && ranges[j].0 == start.wrapping_add(len) {
            len += ranges[j].1;
            j += 1;
        }
        let dst = &mut buf[at..at + len];
        let iov = [libc::iovec {
            iov_base: dst.as_mut_ptr().cast(),
            iov_len: len,
        }];
        if let Err(errno) = preadv_all(file, start, &iov, len, counter) {
            return Err(first_short(ranges[i..j].iter().copied(), errno));
        }
        at += len;
        i = j;
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

/// The error for a failed run of ranges: the first range, with `errno`
/// (the run is read as one, so the failing range within it is not known).
fn first_short(mut ranges: impl Iterator<Item = (usize, usize)>, errno: i32) -> ReadError {
    let (addr, len) = ranges.next().unwrap_or((0, 0));
    ReadError { addr, len, errno }
}

#[cfg(test)]
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
