//! Per-thread `/proc` files kept open across samples: one `pread` per
//! thread per sample instead of open, read and close (and no directory
//! listing: the caller knows the thread ids from the interpreter).

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;

use crate::{Activity, Pid};

/// Open `stat`, `schedstat` and `syscall` files of one process's threads.
#[derive(Default)]
pub struct ThreadFiles {
    stat: HashMap<Pid, File>,
    schedstat: HashMap<Pid, File>,
    syscall: HashMap<Pid, File>,
    /// Threads last found blocked, with their `schedstat` line read just
    /// before and what they were blocked in: while that line is unchanged
    /// the thread has not been on a CPU since, so it still waits there.
    blocked: HashMap<Pid, ([u8; 64], usize, Activity)>,
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
        self.activity(pid, tid, false)
            .map(|a| a == Activity::Running)
    }

    /// What thread `tid` of a running process is doing, or `None` when it is
    /// gone. With `what_blocks`, a blocked thread's `syscall` file is read
    /// too (one more `pread`), for the futex it waits on. A thread found
    /// blocked is re-checked through its `schedstat` line (see
    /// [`ThreadFiles::running`]), and keeps what it was found blocked in.
    pub fn activity(&mut self, pid: Pid, tid: Pid, what_blocks: bool) -> Option<Activity> {
        let mut line = [0u8; 64];
        let n = read(&mut self.schedstat, pid, tid, "schedstat", &mut line);
        if let (Some(n), Some((before, len, activity))) = (n, self.blocked.get(&tid)) {
            if line[..n] == before[..*len] {
                return Some(*activity);
            }
        }
        let activity = if self.state(pid, tid)? == b'R' {
            Activity::Running
        } else if what_blocks {
            match self.syscall(pid, tid) {
                // Woken between the two reads.
                Some(Syscall::Running) => Activity::Running,
                Some(Syscall::In { nr, arg0 }) => Activity::in_syscall(nr, arg0),
                // Sleeping outside a system call (a page fault, say).
                Some(Syscall::User) | None => Activity::Blocked {
                    futex: None,
                    syscall: None,
                },
            }
        } else {
            Activity::Blocked {
                futex: None,
                syscall: None,
            }
        };
        match n {
            Some(n) if activity != Activity::Running => {
                if self.blocked.len() > MAX_OPEN {
                    self.blocked.clear();
                }
                self.blocked.insert(tid, (line, n, activity));
            }
            _ => {
                self.blocked.remove(&tid);
            }
        }
        Some(activity)
    }

    /// What a *stopped* thread was doing when it stopped: in user code
    /// (computing: [`Activity::Running`]) or inside a system call; `None`
    /// when unknown (running, gone, or not readable).
    pub fn stopped_activity(&mut self, pid: Pid, tid: Pid) -> Option<Activity> {
        match self.syscall(pid, tid)? {
            Syscall::Running => None,
            Syscall::User => Some(Activity::Running),
            Syscall::In { nr, arg0 } => Some(Activity::in_syscall(nr, arg0)),
        }
    }

    /// Whether a stopped thread was inside a system call (see
    /// `Process::thread_in_syscall`).
    pub fn in_syscall(&mut self, pid: Pid, tid: Pid) -> Option<bool> {
        self.stopped_activity(pid, tid)
            .map(|a| a != Activity::Running)
    }

    fn syscall(&mut self, pid: Pid, tid: Pid) -> Option<Syscall> {
        // "nr" and eight hex words: under 200 bytes.
        let mut buf = [0u8; 256];
        let n = read(&mut self.syscall, pid, tid, "syscall", &mut buf)?;
        parse_syscall_line(&buf[..n])
    }
}

/// A `/proc/PID/task/TID/syscall` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Syscall {
    /// `running`: the thread is not blocked (for a thread not stopped).
    Running,
    /// `-1 ...`: in user code.
    User,
    /// `nr arg0 ...`: inside system call `nr`, whose first argument is `arg0`.
    In { nr: i64, arg0: u64 },
}

fn parse_syscall_line(text: &[u8]) -> Option<Syscall> {
    let text = std::str::from_utf8(text).ok()?;
    let mut words = text.split_ascii_whitespace();
    match words.next()? {
        "running" => Some(Syscall::Running),
        "-1" => Some(Syscall::User),
        nr => {
            let nr = nr.parse().ok()?;
            let arg0 = words
                .next()
                .and_then(|w| w.strip_prefix("0x"))
                .and_then(|h| u64::from_str_radix(h, 16).ok())
                .unwrap_or(0);
            Some(Syscall::In { nr, arg0 })
        }
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
    fn parses_syscall_lines() {
        assert_eq!(parse_syscall_line(b"running\n"), Some(Syscall::Running));
        assert_eq!(
            parse_syscall_line(b"-1 0x7ffc 0x7f12\n"),
            Some(Syscall::User)
        );
        assert_eq!(
            parse_syscall_line(b"202 0x7f3a1c00a0e8 0x189 0x0 0x0 0x0 0xffffffff 0x7ff0 0x7f00\n"),
            Some(Syscall::In {
                nr: 202,
                arg0: 0x7f3a_1c00_a0e8
            })
        );
        assert_eq!(parse_syscall_line(b""), None);
        assert_eq!(parse_syscall_line(b"garbage"), None);
    }

    #[test]
    fn a_thread_blocked_on_a_futex_shows_its_address() {
        let pid = std::process::id() as Pid;
        let pair = std::sync::Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let waiter = pair.clone();
        let t = std::thread::spawn(move || {
            tid_tx.send(unsafe { libc::gettid() }).unwrap();
            let (lock, cv) = &*waiter;
            let mut done = lock.lock().unwrap();
            while !*done {
                done = cv.wait(done).unwrap();
            }
        });
        let tid = tid_rx.recv().unwrap();
        let mut files = ThreadFiles::default();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            if let Some(Activity::Blocked {
                futex: Some(addr), ..
            }) = files.activity(pid, tid, true)
            {
                // Rust's condvar waits on a futex word inside the Condvar.
                let cv = &pair.1 as *const _ as u64;
                assert!(
                    addr >= cv && addr < cv + 64,
                    "futex {addr:#x} outside the condvar {cv:#x}"
                );
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "never seen blocked on a futex"
            );
        }
        // Unchanged schedstat: the same answer, from the cache.
        assert!(matches!(
            files.activity(pid, tid, true),
            Some(Activity::Blocked { futex: Some(_), .. })
        ));
        *pair.0.lock().unwrap() = true;
        pair.1.notify_all();
        t.join().unwrap();
    }

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
