//! Per-thread `/proc` files kept open across samples: one `pread` per
//! thread per sample instead of open, read and close (and no directory
//! listing: the caller knows the thread ids from the interpreter).

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;

use crate::Pid;

/// Open `stat` and `syscall` files of one process's threads.
#[derive(Default)]
pub struct ThreadFiles {
    stat: HashMap<Pid, File>,
    syscall: HashMap<Pid, File>,
}

/// Most files kept per kind before the cache is cleared (threads come and go).
const MAX_OPEN: usize = 4096;

impl ThreadFiles {
    /// The scheduler state letter of thread `tid` (`R`, `S`, `D`, ...), or
    /// `None` when it is gone.
    pub fn state(&mut self, pid: Pid, tid: Pid) -> Option<u8> {
        let mut buf = [0u8; 512];
        let n = read(&mut self.stat, pid, tid, "stat", &mut buf)?;
        crate::linux::stat_state(&buf[..n])
    }

    /// Whether a stopped thread was inside a system call (see
    /// `Process::thread_in_syscall`).
    pub fn in_syscall(&mut self, pid: Pid, tid: Pid) -> Option<bool> {
        let mut buf = [0u8; 32];
        let n = read(&mut self.syscall, pid, tid, "syscall", &mut buf)?;
        crate::linux::parse_syscall(&buf[..n])
    }
}

fn read(
    files: &mut HashMap<Pid, File>,
    pid: Pid,
    tid: Pid,
    name: &str,
    buf: &mut [u8],
) -> Option<usize> {
    if files.len() > MAX_OPEN {
        files.clear();
    }
    if let Some(f) = files.get(&tid) {
        // procfs regenerates the text on every read from offset 0.
        match f.read_at(buf, 0) {
            Ok(n) if n > 0 => return Some(n),
            _ => {
                files.remove(&tid);
                return None;
            }
        }
    }
    let f = File::open(format!("/proc/{pid}/task/{tid}/{name}")).ok()?;
    let n = f.read_at(buf, 0).ok().filter(|n| *n > 0)?;
    files.insert(tid, f);
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_thread_state_repeatedly() {
        let pid = std::process::id() as Pid;
        let tid = unsafe { libc::gettid() };
        let mut files = ThreadFiles::default();
        for _ in 0..3 {
            assert_eq!(files.state(pid, tid), Some(b'R'), "this thread is running");
        }
        assert_eq!(files.stat.len(), 1, "one file, reused");
        assert_eq!(files.state(pid, 999_999_999), None);
    }
}
