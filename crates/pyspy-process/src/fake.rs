use std::collections::BTreeMap;

use crate::{Memory, ReadError};

/// Memory made of byte ranges placed at chosen addresses: for tests and
/// fuzzing of readers without a live process. Reads that leave the placed
/// ranges fail with `EFAULT`, as in a real process; reads of zero bytes
/// succeed anywhere, as `process_vm_readv`'s do.
#[derive(Debug, Default, Clone)]
pub struct FakeMemory {
    ranges: BTreeMap<usize, Vec<u8>>,
}

impl FakeMemory {
    /// An empty address space.
    pub fn new() -> Self {
        Self::default()
    }
    /// Places `bytes` at `addr` (replacing a range that starts there).
    pub fn place(&mut self, addr: usize, bytes: Vec<u8>) {
        self.ranges.insert(addr, bytes);
    }
}

impl Memory for FakeMemory {
    fn read(&self, addr: usize, buf: &mut [u8]) -> Result<(), ReadError> {
        let fail = ReadError {
            addr,
            len: buf.len(),
            errno: libc::EFAULT,
        };
        if buf.is_empty() {
            return Ok(());
        }
        let (start, bytes) = self.ranges.range(..=addr).next_back().ok_or(fail)?;
        let off = addr - start;
        let end = off.checked_add(buf.len()).ok_or(fail)?;
        let src = bytes.get(off..end).ok_or(fail)?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryExt;

    #[test]
    fn reads_inside_and_fails_outside() {
        let mut m = FakeMemory::new();
        m.place(0x1000, (0u8..16).collect());
        assert_eq!(m.read_vec(0x1004, 4).unwrap(), vec![4, 5, 6, 7]);
        assert!(m.read_vec(0x100e, 4).is_err());
        assert!(m.read_vec(0xfff, 1).is_err());
        assert_eq!(m.read_usize(0x1000).unwrap(), 0x0706050403020100);
        assert_eq!(m.read_vec(0x9000, 0).unwrap(), Vec::<u8>::new());
    }
}
