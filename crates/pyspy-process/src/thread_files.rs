//! Per-thread `/proc` files kept open across samples: one `pread` per
//! thread per sample instead of open, read and close (and no directory
//! listing: the caller knows the thread ids from the interpreter).

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;

use crate::Pid;

/// Open `stat`, `schedstat` and `syscall` files of one process's threads.
#[derive(Default)]
pub struct ThreadFiles {
    stat: HashMap<Pid, File>,
    schedstat: HashMap<Pid, File>,
    syscall: HashMap<Pid, File>,
    /// Threads last found blocked, with their `schedstat` line read just
    /// before: while it is unchanged the thread has not been on a CPU since.
    blocked: HashMap<Pid, ([u8; 64], usize)>,
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

    /// Whether thread `tid` is running (state `R`), or `None` when it is
    /// gone. A thread found blocked is re-checked through its `schedstat`
    /// line (run time, wait time, times scheduled: three numbers, a third
    /// of the cost of `stat`): while that line is unchanged the thread has
    /// not been scheduled since, so it is still blocked (or, at most, woken
    /// and still waiting for a CPU). Many idle threads are the common case
    /// this keeps cheap.
    pub fn running(&mut self, pid: Pid, tid: Pid) -> Option<bool> {
        let mut line = [0u8; 64];
        let n = read(&mut self.schedstat, pid, tid, "schedstat", &mut line);
        if let (Some(n), Some((before, len))) = (n, self.blocked.get(&tid)) {
            if line[..n] == before[..*len] {
                return Some(false);
            }
        }
        let running = self.state(pid, tid)? == b'R';
        match n {
            Some(n) if !running => {
                if self.blocked.len() > MAX_OPEN {
                    self.blocked.clear();
                }
                self.blocked.insert(tid, (line, n));
            }
            _ => {
                self.blocked.remove(&tid);
            }
        }
        Some(running)
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

    #[test]
    fn a_blocked_thread_stays_blocked_until_it_runs() {
        let pid = std::process::id() as Pid;
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let t = std::thread::spawn(move || {
            tid_tx.send(unsafe { libc::gettid() }).unwrap();
            rx.recv().unwrap();
            // Busy until told to stop.
            let start = std::time::Instant::now();
            while start.elapsed() < std::time::Duration::from_millis(300) {
                std::hint::spin_loop();
            }
        });
        let tid = tid_rx.recv().unwrap();
        let mut files = ThreadFiles::default();
        // Blocked in recv: found blocked, then kept blocked by schedstat.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while files.running(pid, tid) != Some(false) {
            assert!(std::time::Instant::now() < deadline, "thread never blocked");
        }
        assert!(files.blocked.contains_key(&tid));
        assert_eq!(files.running(pid, tid), Some(false));
        // Woken and spinning: schedstat moves, stat says running.
        tx.send(()).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while files.running(pid, tid) != Some(true) {
            assert!(
                std::time::Instant::now() < deadline,
                "running thread not seen"
            );
        }
        t.join().unwrap();
    }
}
