//! Reads by address: from the core's `PT_LOAD` segments, else from the
//! binary an `NT_FILE` entry maps there.

use pyspy_process::{Memory, ReadError};

use crate::CoreFile;

impl CoreFile {
    /// Copies up to `buf.len()` bytes at `addr` from one source; returns
    /// how many (0: nothing holds `addr`).
    fn read_piece(&self, addr: u64, buf: &mut [u8]) -> usize {
        // Loads are sorted by address: the last one starting at or below.
        let i = self.loads.partition_point(|l| l.vaddr <= addr);
        if let Some(l) = i.checked_sub(1).map(|i| &self.loads[i]) {
            let dumped_end = l.vaddr.saturating_add(l.filesz);
            if addr < dumped_end {
                let n = buf.len().min((dumped_end - addr) as usize);
                let from = (l.offset + (addr - l.vaddr)) as usize;
                buf[..n].copy_from_slice(&self.bytes[from..from + n]);
                return n;
            }
        }
        let Some(f) = self.files.iter().find(|f| f.start <= addr && addr < f.end) else {
            return 0;
        };
        let Ok(file) = self.binary(&f.path) else {
            return 0;
        };
        let Some(at) = f.offset.checked_add(addr - f.start) else {
            return 0;
        };
        let n = buf.len().min((f.end - addr) as usize);
        match usize::try_from(at)
            .ok()
            .and_then(|at| file.get(at..at.checked_add(n)?))
        {
            Some(bytes) => {
                buf[..n].copy_from_slice(bytes);
                n
            }
            // Past the end of the file: the zero fill of a mapping's last page.
            None => {
                let have = usize::try_from(at)
                    .ok()
                    .and_then(|at| file.get(at..))
                    .unwrap_or(&[]);
                let k = have.len().min(n);
                buf[..k].copy_from_slice(&have[..k]);
                buf[k..n].fill(0);
                n
            }
        }
    }
}

impl Memory for CoreFile {
    fn read(&self, addr: usize, buf: &mut [u8]) -> Result<(), ReadError> {
        let mut done = 0;
        while done < buf.len() {
            let at = (addr as u64).wrapping_add(done as u64);
            let n = self.read_piece(at, &mut buf[done..]);
            if n == 0 {
                return Err(ReadError {
                    addr,
                    len: buf.len(),
                    errno: libc::EFAULT,
                });
            }
            done += n;
        }
        Ok(())
    }
}
