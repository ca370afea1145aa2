//! Linux: `process_vm_readv` (or `/proc/PID/mem`, see `source.rs`) for
//! memory, `/proc` for everything else, and bounded ptrace for pausing.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::mapped_file::map_file;
use crate::source::{ReadPath, Source};
use crate::vm_read::{vm_readv, vm_readv_ranges};
use crate::{parse_maps, Error, MapRange, MappedFile, Memory, Pid, ReadCounter, ReadError};

/// A live process, opened for reading.
pub struct Process {
    pid: Pid,
    counter: ReadCounter,
    ptrace_own_child: std::sync::atomic::AtomicBool,
    /// How memory is read: decided on the first read, then kept.
    source: std::sync::OnceLock<Source>,
}

/// One OS thread of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OsThread {
    /// Kernel thread id.
    pub tid: Pid,
    /// Running or runnable (state `R`) when read.
    pub running: bool,
}

pub use crate::pause::PauseGuard;

impl Process {
    /// Opens `pid`, failing with [`Error::NoProcess`] when it does not exist.
    pub fn open(pid: Pid) -> Result<Process, Error> {
        if pid <= 0 || !Path::new(&format!("/proc/{pid}")).exists() {
            return Err(Error::NoProcess { pid });
        }
        Ok(Process {
            pid,
            counter: ReadCounter::default(),
            ptrace_own_child: Default::default(),
            source: std::sync::OnceLock::new(),
        })
    }

    /// Declares that this process is our child but no other code of ours
    /// waits for it (we spawned it ourselves, not the JS runtime), so
    /// pausing may use ptrace rather than SIGSTOP (see `pause.rs`).
    pub fn set_child_ptrace_safe(&self) {
        self.ptrace_own_child
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn child_ptrace_safe(&self) -> bool {
        self.ptrace_own_child
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The pid.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// How this handle reads the target's memory (decided now if no read
    /// has been made yet).
    pub fn read_path(&self) -> ReadPath {
        self.source().path()
    }

    fn source(&self) -> &Source {
        self.source.get_or_init(|| crate::source::decide(self.pid))
    }

    /// Whether memory can be read only while the target is paused (FreeBSD
    /// without procfs): never here.
    pub fn reads_need_pause(&self) -> bool {
        false
    }
    /// Remote read system calls made so far through this handle.
    pub fn read_counter(&self) -> &ReadCounter {
        &self.counter
    }

    /// True while the process exists, is not a zombie and has not begun to
    /// exit (a SIGKILLed process keeps a running state for milliseconds
    /// while the kernel tears it down, and refuses reads meanwhile).
    pub fn is_alive(&self) -> bool {
        match std::fs::read(format!("/proc/{}/stat", self.pid)) {
            Ok(stat) => {
                stat_state(&stat).is_some_and(|s| s != b'Z' && s != b'X')
                    && stat_flags(&stat).is_some_and(|f| f & PF_EXITING == 0)
            }
            Err(_) => false,
        }
    }

    /// `PermissionDenied`, unless the process turns out to be exiting: a
    /// target being killed refuses reads and ptrace before its `/proc`
    /// entry says so, so a refusal is re-checked for a short while.
    pub fn denied_or_exited(&self) -> Error {
        let deadline = std::time::Instant::now() + DENIED_GRACE;
        loop {
            if !self.is_alive() {
                return Error::Exited { pid: self.pid };
            }
            if std::time::Instant::now() >= deadline {
                return Error::PermissionDenied {
                    pid: self.pid,
                    // Probes the memory paths if no read has yet, so the
                    // message can say which were refused.
                    detail: self.source().denial(self.pid),
                };
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }

    /// The error to report for an I/O failure on one of this process's
    /// `/proc` files: gone, denied, or plain I/O.
    pub fn io_error(&self, what: &str, source: std::io::Error) -> Error {
        // An exiting process loses /proc entries such as `exe` before it
        // becomes a zombie: a missing /proc file means it is going away.
        let proc_file = what.starts_with("/proc/");
        crate::error::io_failure(
            self.pid,
            what,
            source,
            proc_file,
            || self.is_alive(),
            || self.denied_or_exited(),
        )
    }

    /// The error to report for a failed remote read.
    pub fn read_error(&self, source: ReadError) -> Error {
        crate::error::read_failure(
            self.pid,
            source,
            || self.is_alive(),
            || self.denied_or_exited(),
        )
    }

    /// The executable's path as the target sees it.
    pub fn exe(&self) -> Result<String, Error> {
        let p = format!("/proc/{}/exe", self.pid);
        std::fs::read_link(&p)
            .map(|p| p.to_string_lossy().into_owned())
            .map_err(|e| self.io_error(&p, e))
    }

    /// The command line, one entry per argument.
    pub fn cmdline(&self) -> Result<Vec<String>, Error> {
        let p = format!("/proc/{}/cmdline", self.pid);
        let raw = std::fs::read(&p).map_err(|e| self.io_error(&p, e))?;
        Ok(raw
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect())
    }

    /// The memory map.
    pub fn maps(&self) -> Result<Vec<MapRange>, Error> {
        let p = format!("/proc/{}/maps", self.pid);
        let text = std::fs::read_to_string(&p).map_err(|e| self.io_error(&p, e))?;
        Ok(parse_maps(&text))
    }

    /// Where a path of the target (as in its maps) can be opened from here:
    /// through `/proc/PID/root`, so chroots and containers work.
    pub fn host_path(&self, target_path: &str) -> PathBuf {
        let rel = target_path.trim_start_matches('/');
        PathBuf::from(format!("/proc/{}/root", self.pid)).join(rel)
    }

    /// Maps a file the target has mapped, by its target-side path, for
    /// reading: through `/proc/PID/root` (chroots, containers), falling
    /// back to `/proc/PID/map_files` (which also covers deleted files).
    /// Mapped rather than read: a parse touches only headers and symbol
    /// tables, a few hundred KB of a libpython that can weigh 30 MB.
    pub fn read_mapped_file(&self, map: &MapRange) -> Result<MappedFile, Error> {
        let path = map.path.as_deref().unwrap_or_default();
        let primary = self.host_path(path);
        let by_range = PathBuf::from(format!(
            "/proc/{}/map_files/{:x}-{:x}",
            self.pid, map.start, map.end
        ));
        let mut first_err = None;
        for candidate in [primary, by_range] {
            match map_file(&candidate) {
                Ok(m) => return Ok(m),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        let err = first_err.unwrap_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound));
        Err(self.io_error(path, err))
    }

    /// The OS threads, with whether each was running when listed.
    pub fn threads(&self) -> Result<Vec<OsThread>, Error> {
        let dir = format!("/proc/{}/task", self.pid);
        let entries = std::fs::read_dir(&dir).map_err(|e| self.io_error(&dir, e))?;
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let Some(tid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<Pid>().ok())
            else {
                continue;
            };
            // A thread may exit between the listing and this read: skip it.
            if let Some(running) = self.thread_running(tid) {
                out.push(OsThread { tid, running });
            }
        }
        Ok(out)
    }

    /// Whether thread `tid` of this process is running (state `R`); `None`
    /// when it no longer exists.
    pub fn thread_running(&self, tid: Pid) -> Option<bool> {
        self.thread_state(tid).map(|s| s == b'R')
    }

    /// The state letter of thread `tid` (`R`, `S`, `D`, `T`, `t`, `Z`, ...);
    /// `None` when it no longer exists.
    pub fn thread_state(&self, tid: Pid) -> Option<u8> {
        let mut buf = [0u8; 512];
        let mut f = std::fs::File::open(format!("/proc/{}/task/{tid}/stat", self.pid)).ok()?;
        let n = f.read(&mut buf).ok()?;
        stat_state(&buf[..n])
    }

    /// Whether a *stopped* thread was inside a system call when it stopped
    /// (`/proc/PID/task/TID/syscall`): `Some(true)` in a syscall (waiting:
    /// sleeping, blocked on a lock or I/O), `Some(false)` in user code
    /// (computing), `None` when unknown (running, gone, or not readable).
    pub fn thread_in_syscall(&self, tid: Pid) -> Option<bool> {
        let mut buf = [0u8; 32];
        let mut f = std::fs::File::open(format!("/proc/{}/task/{tid}/syscall", self.pid)).ok()?;
        let n = f.read(&mut buf).ok()?;
        parse_syscall(&buf[..n])
    }

    /// The parent's pid, when readable.
    pub fn parent_pid(&self) -> Option<Pid> {
        let stat = std::fs::read(format!("/proc/{}/stat", self.pid)).ok()?;
        let close = stat.iter().rposition(|b| *b == b')')?;
        let rest = std::str::from_utf8(stat.get(close + 2..)?).ok()?;
        rest.split(' ').nth(1)?.parse().ok()
    }

    /// Pauses every thread until the guard is dropped (see [`PauseGuard`]).
    pub fn pause(&self) -> Result<PauseGuard, Error> {
        crate::pause::pause(self)
    }

    /// The tids listed in `/proc/PID/task` (empty when the process is gone).
    pub fn tids(&self) -> Vec<Pid> {
        let Ok(entries) = std::fs::read_dir(format!("/proc/{}/task", self.pid)) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect()
    }
}

impl Memory for Process {
    fn read(&self, addr: usize, buf: &mut [u8]) -> Result<(), ReadError> {
        let mut one = [(addr, buf)];
        self.read_many(&mut one)
    }

    fn read_many(&self, reads: &mut [(usize, &mut [u8])]) -> Result<(), ReadError> {
        match self.source() {
            Source::VmReadv => vm_readv(self.pid, reads, &self.counter),
            Source::ProcMem(file) => crate::proc_mem::read_many(file, reads, &self.counter),
            Source::Denied { .. } => Err(denied(reads.iter().map(|(a, b)| (*a, b.len())))),
        }
    }

    fn read_ranges(&self, ranges: &[(usize, usize)], buf: &mut [u8]) -> Result<(), ReadError> {
        match self.source() {
            Source::VmReadv => vm_readv_ranges(self.pid, ranges, buf, &self.counter),
            Source::ProcMem(file) => crate::proc_mem::read_ranges(file, ranges, buf, &self.counter),
            Source::Denied { .. } => Err(denied(ranges.iter().copied())),
        }
    }
}

/// The read error when both memory paths were refused.
fn denied(mut ranges: impl Iterator<Item = (usize, usize)>) -> ReadError {
    let (addr, len) = ranges.next().unwrap_or((0, 0));
    ReadError {
        addr,
        len,
        errno: libc::EPERM,
    }
}

/// Reads `/proc/.../syscall`: a syscall number (in a syscall), `-1` (user
/// code) or `running`.
pub(crate) fn parse_syscall(text: &[u8]) -> Option<bool> {
    let first = text.split(|b| *b == b' ' || *b == b'\n').next()?;
    match first {
        b"running" | b"" => None,
        b"-1" => Some(false),
        nr if nr.iter().all(u8::is_ascii_digit) => Some(true),
        _ => None,
    }
}

/// The state letter of a `/proc/.../stat` line: the field after the
/// parenthesised command name (which may itself contain spaces and ')').
pub(crate) fn stat_state(stat: &[u8]) -> Option<u8> {
    let close = stat.iter().rposition(|b| *b == b')')?;
    stat.get(close + 2).copied()
}

/// The `flags` field (the 9th) of a `/proc/.../stat` line.
fn stat_flags(stat: &[u8]) -> Option<u32> {
    let close = stat.iter().rposition(|b| *b == b')')?;
    let field = stat.get(close + 2..)?.split(|b| *b == b' ').nth(6)?;
    std::str::from_utf8(field).ok()?.parse().ok()
}

/// `PF_EXITING` in a task's flags: set as it begins to exit.
const PF_EXITING: u32 = 0x4;
/// How long a refused read or attach waits to see the target exit before
/// it is reported as a permission problem.
const DENIED_GRACE: std::time::Duration = std::time::Duration::from_millis(50);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryExt;

    #[test]
    fn reads_own_memory_in_one_call() {
        let a = [1u8, 2, 3, 4, 5, 6, 7, 8];
        let b = 0x1122334455667788u64;
        let me = Process::open(std::process::id() as Pid).unwrap();
        let mut x = [0u8; 8];
        let mut y = [0u8; 8];
        let before = me.read_counter().calls();
        me.read_many(&mut [
            (a.as_ptr() as usize, &mut x[..]),
            (&b as *const u64 as usize, &mut y[..]),
        ])
        .unwrap();
        assert_eq!(me.read_counter().calls() - before, 1);
        assert_eq!(x, a);
        assert_eq!(u64::from_le_bytes(y), b);
        assert_eq!(me.read_u64(&b as *const u64 as usize).unwrap(), b);
    }

    #[test]
    fn reads_ranges_into_one_buffer_in_one_call() {
        let a = [1u8, 2, 3, 4, 5, 6, 7, 8];
        let b = [9u8; 20];
        let me = Process::open(std::process::id() as Pid).unwrap();
        let mut buf = vec![0u8; 28];
        let before = me.read_counter().calls();
        me.read_ranges(
            &[
                (a.as_ptr() as usize + 4, 4),
                (b.as_ptr() as usize, 20),
                (a.as_ptr() as usize, 4),
            ],
            &mut buf,
        )
        .unwrap();
        assert_eq!(me.read_counter().calls() - before, 1);
        assert_eq!(&buf[..4], &a[4..]);
        assert_eq!(&buf[4..24], &b[..]);
        assert_eq!(&buf[24..], &a[..4]);
        let err = me
            .read_ranges(&[(a.as_ptr() as usize, 4), (8, 8)], &mut buf[..12])
            .unwrap_err();
        assert_eq!(err.addr, 8);
        assert!(me
            .read_ranges(&[(a.as_ptr() as usize, 8)], &mut buf[..4])
            .is_err());
        // Ranges that continue one another are merged into one iovec: the
        // bytes still land in order, and a fault is still named.
        let base = b.as_ptr() as usize;
        let mut out = [0u8; 20];
        me.read_ranges(&[(base, 4), (base + 4, 6), (base + 10, 10)], &mut out)
            .unwrap();
        assert_eq!(out, b);
        let err = me
            .read_ranges(&[(base, 4), (base + 4, 4), (8, 8)], &mut out[..16])
            .unwrap_err();
        assert_eq!(err.addr, 8);
    }

    #[test]
    fn names_the_range_that_faults() {
        let a = [9u8; 16];
        let me = Process::open(std::process::id() as Pid).unwrap();
        let mut x = [0u8; 16];
        let mut y = [0u8; 8];
        let err = me
            .read_many(&mut [(a.as_ptr() as usize, &mut x[..]), (8, &mut y[..])])
            .unwrap_err();
        // Read in address order, the bad range first: it is named (the
        // other buffers are unspecified after an error; no caller uses them).
        assert_eq!((err.addr, err.len), (8, 8));
        assert!(me
            .read_many(&mut [(a.as_ptr() as usize, &mut x[..])])
            .is_ok());
        assert_eq!(x, a);
    }

    #[test]
    fn missing_pid_is_no_process() {
        assert!(matches!(
            Process::open(999_999_999),
            Err(Error::NoProcess { .. })
        ));
        assert!(matches!(Process::open(-1), Err(Error::NoProcess { .. })));
    }

    #[test]
    fn lists_own_threads_and_maps() {
        let me = Process::open(std::process::id() as Pid).unwrap();
        let threads = me.threads().unwrap();
        assert!(
            threads.iter().any(|t| t.running),
            "the reading thread itself is running"
        );
        let maps = me.maps().unwrap();
        let exe = me.exe().unwrap();
        assert!(maps.iter().any(|m| m.path.as_deref() == Some(exe.as_str())));
        let exe_map = maps
            .iter()
            .find(|m| m.path.as_deref() == Some(exe.as_str()))
            .unwrap();
        let bytes = me.read_mapped_file(exe_map).unwrap();
        assert_eq!(&bytes[..4], b"\x7fELF");
    }

    #[test]
    fn stat_state_survives_odd_names() {
        assert_eq!(stat_state(b"12 (a) b) c) S 1 2"), Some(b'S'));
        assert_eq!(stat_state(b"12 (python3) R 1"), Some(b'R'));
        assert_eq!(stat_state(b"garbage"), None);
    }

    #[test]
    fn stat_flags_reads_the_ninth_field() {
        let line = b"12 (a) b) R 1 12 12 0 -1 4194564 100 0";
        assert_eq!(stat_flags(line), Some(4194564));
        assert_eq!(stat_flags(line).map(|f| f & PF_EXITING), Some(4));
        assert_eq!(stat_flags(b"12 (x) S 1"), None);
    }

    #[test]
    fn this_process_is_alive() {
        let me = Process::open(std::process::id() as Pid).unwrap();
        assert!(me.is_alive());
    }
}
