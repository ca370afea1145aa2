//! The normal memory path: `process_vm_readv`, many ranges per call.

use crate::{Pid, ReadCounter, ReadError};

/// Most iovecs one `process_vm_readv` call accepts (the kernel's `UIO_MAXIOV`).
pub(crate) const MAX_IOV: usize = 1024;

/// One `process_vm_readv` of up to `MAX_IOV` ranges into consecutive bytes
/// of `buf` (exactly their total length).
pub(crate) fn vm_readv_ranges(
    pid: Pid,
    ranges: &[(usize, usize)],
    buf: &mut [u8],
    counter: &ReadCounter,
) -> Result<(), ReadError> {
    // Ranges that continue one another are one iovec: the kernel pays per
    // iovec (and per page), and the local side is one buffer anyway.
    let mut remote = [std::mem::MaybeUninit::<libc::iovec>::uninit(); MAX_IOV];
    let mut n = 0;
    let mut end = usize::MAX;
    let mut len_n = 0;
    for &(addr, len) in ranges {
        if n > 0 && addr == end {
            len_n += len;
        } else {
            if n > 0 {
                remote[n - 1].write(libc::iovec {
                    iov_base: end.wrapping_sub(len_n) as *mut libc::c_void,
                    iov_len: len_n,
                });
            }
            n += 1;
            len_n = len;
        }
        end = addr.wrapping_add(len);
    }
    if n > 0 {
        remote[n - 1].write(libc::iovec {
            iov_base: (end.wrapping_sub(len_n)) as *mut libc::c_void,
            iov_len: len_n,
        });
    }
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: one local iovec over the whole exclusively borrowed buffer;
    // the first `n` remote entries are initialized above and only read.
    let got = unsafe {
        libc::process_vm_readv(
            pid,
            &local,
            1,
            remote.as_ptr().cast::<libc::iovec>(),
            n as libc::c_ulong,
            0,
        )
    };
    counter.add(got.max(0) as usize);
    if got < 0 {
        let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        let (addr, len) = ranges.first().copied().unwrap_or((0, 0));
        return Err(ReadError { addr, len, errno });
    }
    let mut left = got as usize;
    for &(addr, len) in ranges {
        if left < len {
            return Err(ReadError {
                addr,
                len,
                errno: libc::EFAULT,
            });
        }
        left -= len;
    }
    Ok(())
}

/// One `process_vm_readv` for up to `MAX_IOV` ranges. The call stops at the
/// first range that faults, so on a short read the failing range is named.
pub(crate) fn vm_readv(
    pid: Pid,
    reads: &mut [(usize, &mut [u8])],
    counter: &ReadCounter,
) -> Result<(), ReadError> {
    // Only the first `n` entries are written and passed: zeroing two full
    // 1024-entry arrays (32 KB) per call cost more than a small read itself.
    let n = reads.len();
    let mut local = [std::mem::MaybeUninit::<libc::iovec>::uninit(); MAX_IOV];
    let mut remote = [std::mem::MaybeUninit::<libc::iovec>::uninit(); MAX_IOV];
    let mut total = 0usize;
    for (i, (addr, buf)) in reads.iter_mut().enumerate() {
        local[i].write(libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        });
        remote[i].write(libc::iovec {
            iov_base: *addr as *mut libc::c_void,
            iov_len: buf.len(),
        });
        total += buf.len();
    }
    // SAFETY: the first `n` entries of both arrays are initialized above;
    // the local ones point into live, exclusively borrowed buffers of the
    // stated lengths; the remote ones are only read by the kernel.
    let got = unsafe {
        libc::process_vm_readv(
            pid,
            local.as_ptr().cast::<libc::iovec>(),
            n as libc::c_ulong,
            remote.as_ptr().cast::<libc::iovec>(),
            n as libc::c_ulong,
            0,
        )
    };
    counter.add(got.max(0) as usize);
    if got < 0 {
        let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        let (addr, len) = reads.first().map(|(a, b)| (*a, b.len())).unwrap_or((0, 0));
        return Err(ReadError { addr, len, errno });
    }
    if got as usize == total {
        return Ok(());
    }
    // Short read: find the first range not fully read.
    let mut left = got as usize;
    for (addr, buf) in reads.iter() {
        if left < buf.len() {
            return Err(ReadError {
                addr: *addr,
                len: buf.len(),
                errno: libc::EFAULT,
            });
        }
        left -= buf.len();
    }
    Err(ReadError {
        addr: 0,
        len: total,
        errno: 0,
    })
}
