use std::sync::atomic::{AtomicU64, Ordering};

use crate::ReadError;

/// Remote memory, read by address. Every address is the target's.
pub trait Memory {
    /// Fills `buf` from `addr`. Fails unless every byte was read.
    fn read(&self, addr: usize, buf: &mut [u8]) -> Result<(), ReadError>;

    /// Reads several ranges, in one system call where the OS allows. The
    /// default reads them one by one. Fails if any range fails.
    fn read_many(&self, reads: &mut [(usize, &mut [u8])]) -> Result<(), ReadError> {
        for (addr, buf) in reads.iter_mut() {
            self.read(*addr, buf)?;
        }
        Ok(())
    }

    /// Reads `(address, length)` ranges one after another into `buf`
    /// (which holds their lengths' sum), in one system call where the OS
    /// allows: [`Memory::read_many`] without building a list of slices.
    fn read_ranges(&self, ranges: &[(usize, usize)], buf: &mut [u8]) -> Result<(), ReadError> {
        let mut rest = buf;
        for &(addr, len) in ranges {
            if len > rest.len() {
                return Err(ReadError {
                    addr,
                    len,
                    errno: libc::EINVAL,
                });
            }
            let (head, tail) = std::mem::take(&mut rest).split_at_mut(len);
            self.read(addr, head)?;
            rest = tail;
        }
        Ok(())
    }
}

impl<M: Memory + ?Sized> Memory for &M {
    fn read(&self, addr: usize, buf: &mut [u8]) -> Result<(), ReadError> {
        (**self).read(addr, buf)
    }
    fn read_many(&self, reads: &mut [(usize, &mut [u8])]) -> Result<(), ReadError> {
        (**self).read_many(reads)
    }
    fn read_ranges(&self, ranges: &[(usize, usize)], buf: &mut [u8]) -> Result<(), ReadError> {
        (**self).read_ranges(ranges, buf)
    }
}

impl<M: Memory + ?Sized> Memory for std::sync::Arc<M> {
    fn read(&self, addr: usize, buf: &mut [u8]) -> Result<(), ReadError> {
        (**self).read(addr, buf)
    }
    fn read_many(&self, reads: &mut [(usize, &mut [u8])]) -> Result<(), ReadError> {
        (**self).read_many(reads)
    }
    fn read_ranges(&self, ranges: &[(usize, usize)], buf: &mut [u8]) -> Result<(), ReadError> {
        (**self).read_ranges(ranges, buf)
    }
}

/// The smallest page size; nearby ranges are joined within neighbouring
/// pages of it.
pub(crate) const PAGE: usize = 4096;

/// Whether a range at `addr` joins a run of ranges (sorted by address) that
/// ends at `end`, to be read as one span: it follows, and starts on the
/// run's last page or the next one, so the bytes between lie on pages that
/// hold bytes asked for.
pub(crate) fn joins(end: usize, addr: usize) -> bool {
    addr >= end && addr / PAGE <= (end - 1) / PAGE + 1
}

/// How many spans a read of `ranges` makes on Linux and FreeBSD (remote
/// iovecs of `process_vm_readv`, calls of `preadv` on `/proc/PID/mem`):
/// the ranges sorted by address, nearby ones joined. For benchmarks.
pub fn joined_spans(ranges: &[(usize, usize)]) -> usize {
    let mut sorted: Vec<(usize, usize)> = ranges.iter().copied().filter(|r| r.1 > 0).collect();
    sorted.sort_unstable();
    let mut end = None;
    let mut spans = 0;
    for (addr, len) in sorted {
        if !end.is_some_and(|e| joins(e, addr)) {
            spans += 1;
        }
        end = Some(addr.saturating_add(len));
    }
    spans
}

/// Typed helpers over [`Memory`] for little-endian 64-bit targets.
pub trait MemoryExt: Memory {
    /// Reads a pointer-sized word.
    fn read_usize(&self, addr: usize) -> Result<usize, ReadError> {
        let mut b = [0u8; 8];
        self.read(addr, &mut b)?;
        Ok(u64::from_le_bytes(b) as usize)
    }
    /// Reads a `u64`.
    fn read_u64(&self, addr: usize) -> Result<u64, ReadError> {
        let mut b = [0u8; 8];
        self.read(addr, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    /// Reads an `i32`.
    fn read_i32(&self, addr: usize) -> Result<i32, ReadError> {
        let mut b = [0u8; 4];
        self.read(addr, &mut b)?;
        Ok(i32::from_le_bytes(b))
    }
    /// Reads `len` bytes into a new vector.
    fn read_vec(&self, addr: usize, len: usize) -> Result<Vec<u8>, ReadError> {
        let mut v = vec![0u8; len];
        self.read(addr, &mut v)?;
        Ok(v)
    }
}

impl<M: Memory + ?Sized> MemoryExt for M {}

/// Counts remote read system calls, for measurements and tests.
#[derive(Debug, Default)]
pub struct ReadCounter {
    calls: AtomicU64,
    bytes: AtomicU64,
}

impl ReadCounter {
    /// Adds one system call that moved `bytes` bytes.
    pub fn add(&self, bytes: usize) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }
    /// System calls so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }
    /// Bytes read so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}
