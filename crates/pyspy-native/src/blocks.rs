//! Remote memory read a page at a time and kept for one sample: unwinding
//! reads a few words per frame, all close together on one stack, and the
//! Python frame walk reads frames that sit side by side in data-stack
//! chunks. One `process_vm_readv` per page instead of one per word.

use pyspy_process::Memory;

/// Bytes per block: one page, so a block never straddles a mapped and an
/// unmapped page.
const BLOCK: usize = 4096;
/// Blocks kept per sample before the oldest are reused.
const MAX_BLOCKS: usize = 256;

/// Pages of remote memory read during one sample.
#[derive(Default)]
pub(crate) struct Blocks {
    /// Block start addresses, parallel to `data`.
    starts: Vec<usize>,
    data: Vec<Box<[u8; BLOCK]>>,
    /// Pages that failed to read (unmapped): not asked again this sample.
    failed: Vec<usize>,
    /// Where the next block goes once `MAX_BLOCKS` are held.
    next_victim: usize,
}

impl Blocks {
    /// Forgets everything read: the target moves on between samples.
    pub(crate) fn clear(&mut self) {
        self.starts.clear();
        self.failed.clear();
        self.next_victim = 0;
    }

    /// Reads `buf.len()` bytes at `addr` (within one or two pages).
    pub(crate) fn read<M: Memory + ?Sized>(
        &mut self,
        mem: &M,
        addr: usize,
        buf: &mut [u8],
    ) -> bool {
        let mut done = 0;
        while done < buf.len() {
            let at = match addr.checked_add(done) {
                Some(a) => a,
                None => return false,
            };
            let start = at & !(BLOCK - 1);
            let Some(block) = self.block(mem, start) else {
                return false;
            };
            let off = at - start;
            let n = (BLOCK - off).min(buf.len() - done);
            buf[done..done + n].copy_from_slice(&block[off..off + n]);
            done += n;
        }
        true
    }

    /// Reads a little-endian `u64`.
    pub(crate) fn read_u64<M: Memory + ?Sized>(&mut self, mem: &M, addr: u64) -> Option<u64> {
        let mut b = [0u8; 8];
        self.read(mem, usize::try_from(addr).ok()?, &mut b)
            .then(|| u64::from_le_bytes(b))
    }

    fn block<M: Memory + ?Sized>(&mut self, mem: &M, start: usize) -> Option<&[u8; BLOCK]> {
        if let Some(i) = self.starts.iter().position(|&s| s == start) {
            return Some(&self.data[i]);
        }
        if self.failed.contains(&start) {
            return None;
        }
        let slot = if self.starts.len() < MAX_BLOCKS {
            if self.data.len() == self.starts.len() {
                self.data.push(Box::new([0u8; BLOCK]));
            }
            self.starts.push(usize::MAX);
            self.starts.len() - 1
        } else {
            let v = self.next_victim;
            self.next_victim = (v + 1) % MAX_BLOCKS;
            v
        };
        if mem.read(start, &mut self.data[slot][..]).is_err() {
            // Leave the slot unusable until it is filled again.
            self.starts[slot] = usize::MAX;
            self.failed.push(start);
            return None;
        }
        self.starts[slot] = start;
        Some(&self.data[slot])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pyspy_process::FakeMemory;

    #[test]
    fn reads_across_pages_and_caches() {
        let mut fake = FakeMemory::new();
        let bytes: Vec<u8> = (0..3 * BLOCK).map(|i| (i % 251) as u8).collect();
        fake.place(0x10000, bytes.clone());
        let mut blocks = Blocks::default();
        let mut buf = [0u8; 16];
        assert!(blocks.read(&fake, 0x10000 + BLOCK - 8, &mut buf));
        assert_eq!(&buf[..], &bytes[BLOCK - 8..BLOCK + 8]);
        assert_eq!(
            blocks.read_u64(&fake, 0x10008),
            Some(u64::from_le_bytes(bytes[8..16].try_into().unwrap()))
        );
        assert!(!blocks.read(&fake, 0x90000, &mut buf), "unmapped");
        assert!(!blocks.read(&fake, usize::MAX - 2, &mut buf), "wraps");
    }
}
