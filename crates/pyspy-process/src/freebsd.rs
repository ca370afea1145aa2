//! FreeBSD: memory through `/proc/PID/mem` when procfs is mounted (it is
//! not by default: `mount -t procfs proc /proc`), else `ptrace(PT_IO)` with
//! the target stopped (`freebsd_pause.rs`); the memory map, threads,
//! executable and command line from the `kern.proc` sysctls
//! (`freebsd_sysctl.rs`); pausing with `PT_ATTACH`/`PT_DETACH`. The same
//! functions as the Linux backend.
//!
//! Without procfs a read needs a stop, so [`Process::reads_need_pause`]
//! tells the sampler to pause for every sample (and to refuse
//! `--nonblocking`). Thread registers (`--native`) are not read here.
//! Type-checked on Linux (`cargo clippy --target x86_64-unknown-freebsd`);
//! run by the release workflow's FreeBSD job only.

use std::fs::File;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use crate::freebsd_pause::{pt_io_read, stop_error, StopError, Tracer};
use crate::{freebsd_sysctl as sysctl, map_file};
use crate::{Error, MapRange, MappedFile, Memory, Pid, ReadCounter, ReadError};

pub use crate::freebsd_pause::PauseGuard;

/// A live process, opened for reading.
pub struct Process {
    pid: Pid,
    counter: ReadCounter,
    tracer: Arc<Tracer>,
    /// `/proc/PID/mem`, when procfs is mounted and opens (decided once).
    proc_mem: OnceLock<Option<File>>,
}

/// One OS thread of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OsThread {
    /// Kernel thread id (`ki_tid`, what `pthread_getthreadid_np` and
    /// CPython's `native_thread_id` give).
    pub tid: Pid,
    /// Running or runnable (`SRUN`) when listed.
    pub running: bool,
}

/// `ESRCH`-style failures of the sysctls mean the process is gone.
fn sysctl_error(p: &Process, what: &str, e: std::io::Error) -> Error {
    if e.raw_os_error() == Some(libc::ESRCH) {
        return Error::Exited { pid: p.pid };
    }
    p.io_error(what, e)
}

impl Process {
    /// Opens `pid`, failing with [`Error::NoProcess`] when it does not exist.
    pub fn open(pid: Pid) -> Result<Process, Error> {
        if pid <= 0 || sysctl::process(pid).is_err() {
            return Err(Error::NoProcess { pid });
        }
        Ok(Process {
            pid,
            counter: ReadCounter::default(),
            tracer: Arc::new(Tracer::new(pid)),
            proc_mem: OnceLock::new(),
        })
    }

    /// Declares that this process is our child but no other code of ours
    /// waits for it (we spawned it ourselves, not the JS runtime), so it may
    /// be stopped with ptrace (see `freebsd_pause.rs`).
    pub fn set_child_ptrace_safe(&self) {
        self.tracer.set_child_ptrace_safe();
    }

    /// The pid.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Remote read system calls made so far through this handle.
    pub fn read_counter(&self) -> &ReadCounter {
        &self.counter
    }

    fn proc_mem(&self) -> Option<&File> {
        self.proc_mem
            .get_or_init(|| File::open(format!("/proc/{}/mem", self.pid)).ok())
            .as_ref()
    }

    /// True when memory can only be read with the target stopped (no
    /// procfs): every sample is then taken paused, and `--nonblocking`
    /// cannot be honoured.
    pub fn reads_need_pause(&self) -> bool {
        self.proc_mem().is_none()
    }

    /// True while the process exists and has not begun to exit.
    pub fn is_alive(&self) -> bool {
        sysctl::process(self.pid).is_ok_and(|p| !p.ended())
    }

    /// `Exited` when the process is gone, else `PermissionDenied`.
    pub fn denied_or_exited(&self) -> Error {
        self.denied_because("")
    }

    fn denied_because(&self, detail: &str) -> Error {
        if !self.is_alive() {
            return Error::Exited { pid: self.pid };
        }
        Error::PermissionDenied {
            pid: self.pid,
            detail: detail.to_owned(),
        }
    }

    /// The error to report for a failed query about this process.
    pub fn io_error(&self, what: &str, source: std::io::Error) -> Error {
        crate::error::io_failure(
            self.pid,
            what,
            source,
            false,
            || self.is_alive(),
            || self.denied_or_exited(),
        )
    }

    /// The error to report for a failed remote read (`EBUSY`: another
    /// tracer holds the target, which only ptrace rights can change).
    pub fn read_error(&self, source: ReadError) -> Error {
        if source.errno == libc::EBUSY {
            return self.denied_because(" (PT_ATTACH: EBUSY: the process is already traced)");
        }
        crate::error::read_failure(
            self.pid,
            source,
            || self.is_alive(),
            || self.denied_or_exited(),
        )
    }

    /// The executable's path.
    pub fn exe(&self) -> Result<String, Error> {
        sysctl::exe(self.pid).map_err(|e| sysctl_error(self, "KERN_PROC_PATHNAME", e))
    }

    /// The command line, one entry per argument.
    pub fn cmdline(&self) -> Result<Vec<String>, Error> {
        sysctl::args(self.pid).map_err(|e| sysctl_error(self, "KERN_PROC_ARGS", e))
    }

    /// The memory map, with each file-backed range's path and file offset.
    pub fn maps(&self) -> Result<Vec<MapRange>, Error> {
        sysctl::vmmap(self.pid).map_err(|e| sysctl_error(self, "KERN_PROC_VMMAP", e))
    }

    /// Paths open as they are (a jailed target's paths are not translated:
    /// run the profiler inside the jail).
    pub fn host_path(&self, target_path: &str) -> PathBuf {
        PathBuf::from(target_path)
    }

    /// Maps a file the target has mapped, by its path.
    pub fn read_mapped_file(&self, map: &MapRange) -> Result<MappedFile, Error> {
        let path = map.path.as_deref().unwrap_or_default();
        map_file(std::path::Path::new(path)).map_err(|e| self.io_error(path, e))
    }

    /// The OS threads, with whether each was running when listed.
    pub fn threads(&self) -> Result<Vec<OsThread>, Error> {
        let recs =
            sysctl::threads(self.pid).map_err(|e| sysctl_error(self, "KERN_PROC_INC_THREAD", e))?;
        Ok(recs
            .iter()
            .map(|r| OsThread {
                tid: r.tid,
                running: r.running(),
            })
            .collect())
    }

    /// Whether thread `tid` runs now; `None` when it no longer exists.
    pub fn thread_running(&self, tid: Pid) -> Option<bool> {
        let recs = sysctl::threads(self.pid).ok()?;
        recs.iter().find(|r| r.tid == tid).map(|r| r.running())
    }

    /// Whether a stopped thread was in the kernel (sleeping) when it
    /// stopped: see `ProcRecord::stopped_activity`.
    pub fn thread_in_syscall(&self, tid: Pid) -> Option<bool> {
        let recs = sysctl::threads(self.pid).ok()?;
        let rec = recs.iter().find(|r| r.tid == tid)?;
        match rec.stopped_activity()? {
            crate::Activity::Running => Some(false),
            crate::Activity::Blocked { .. } => Some(true),
        }
    }

    /// Stops the process (`PT_ATTACH`) until the guard drops (`PT_DETACH`).
    pub fn pause(&self) -> Result<PauseGuard, Error> {
        self.tracer.pause().map_err(|e| match e {
            // ptrace off (`security.bsd.allow_ptrace=0`) and no procfs:
            // nothing can read the target, running or not.
            StopError::Errno(libc::ENOSYS) if self.reads_need_pause() => Error::Refused {
                pid: self.pid,
                reason: "ptrace is disabled (sysctl security.bsd.allow_ptrace=0) and procfs is \
                         not mounted: enable one (sysctl security.bsd.allow_ptrace=1, or \
                         mount -t procfs proc /proc)"
                    .into(),
            },
            StopError::OwnChild if self.reads_need_pause() => Error::Refused {
                pid: self.pid,
                reason: "it is this process's own child, started by its JavaScript runtime: on \
                         FreeBSD only ptrace reads it without procfs, and the runtime's waitpid \
                         would take ptrace's stops for an exit; mount procfs (mount -t procfs \
                         proc /proc) to read it running, or start it with pyspy-node record -- \
                         COMMAND"
                    .into(),
            },
            // With procfs: read running, the stacks checked (as where
            // ptrace is missing).
            e => stop_error(self.pid, e, |d| self.denied_because(d)),
        })
    }

    /// The thread ids (empty when the process is gone).
    pub fn tids(&self) -> Vec<Pid> {
        sysctl::threads(self.pid)
            .map(|recs| recs.iter().map(|r| r.tid).collect())
            .unwrap_or_default()
    }

    /// Reads every range with `PT_IO`, the target stopped once for all.
    fn read_traced(&self, reads: &mut [(usize, &mut [u8])]) -> Result<(), ReadError> {
        let first = reads.first().map_or((0, 0), |(a, b)| (*a, b.len()));
        let result = self.tracer.stopped(|| {
            for (addr, buf) in reads.iter_mut() {
                self.counter.add(buf.len());
                pt_io_read(self.pid, *addr, buf).map_err(|errno| ReadError {
                    addr: *addr,
                    len: buf.len(),
                    errno,
                })?;
            }
            Ok(())
        });
        result.unwrap_or_else(|e| {
            Err(ReadError {
                addr: first.0,
                len: first.1,
                errno: match e {
                    StopError::Errno(errno) => errno,
                    StopError::OwnChild => libc::EPERM,
                    StopError::TimedOut => libc::EAGAIN,
                    StopError::Exited => libc::ESRCH,
                },
            })
        })
    }
}

impl Memory for Process {
    fn read(&self, addr: usize, buf: &mut [u8]) -> Result<(), ReadError> {
        self.read_many(&mut [(addr, buf)])
    }

    fn read_many(&self, reads: &mut [(usize, &mut [u8])]) -> Result<(), ReadError> {
        match self.proc_mem() {
            Some(file) => crate::proc_mem::read_many(file, reads, &self.counter),
            None => self.read_traced(reads),
        }
    }

    fn read_ranges(&self, ranges: &[(usize, usize)], buf: &mut [u8]) -> Result<(), ReadError> {
        if let Some(file) = self.proc_mem() {
            return crate::proc_mem::read_ranges(file, ranges, buf, &self.counter);
        }
        let mut rest = buf;
        let mut reads = Vec::with_capacity(ranges.len());
        for &(addr, len) in ranges {
            if len > rest.len() {
                return Err(ReadError {
                    addr,
                    len,
                    errno: libc::EINVAL,
                });
            }
            let (head, tail) = std::mem::take(&mut rest).split_at_mut(len);
            reads.push((addr, head));
            rest = tail;
        }
        self.read_traced(&mut reads)
    }
}

// Run by the release workflow's FreeBSD job (`cargo test --lib`); only
// type-checked here. The target is a child `sleep`: FreeBSD refuses to
// ptrace oneself.
#[cfg(test)]
mod tests {
    use super::*;

    struct Child(std::process::Child);

    impl Drop for Child {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn sleeper() -> (Child, Process) {
        let child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let pid = child.id() as Pid;
        let child = Child(child);
        // Until exec is done, the map is the parent's copy.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while sysctl::exe(pid).map_or(true, |e| !e.ends_with("/sleep")) {
            assert!(std::time::Instant::now() < deadline, "sleep never exec'd");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let p = Process::open(pid).expect("open the child");
        // The test harness never waits for it: ptrace's stops are ours.
        p.set_child_ptrace_safe();
        (child, p)
    }

    /// The first mapping of the executable: its ELF header.
    fn exe_header(p: &Process) -> usize {
        let exe = p.exe().unwrap();
        let maps = p.maps().unwrap();
        maps.iter()
            .find(|m| m.path.as_deref() == Some(exe.as_str()) && m.offset == 0)
            .unwrap_or_else(|| panic!("no offset-0 mapping of {exe} in {maps:?}"))
            .start
    }

    fn state(pid: Pid) -> u8 {
        sysctl::process(pid).unwrap().stat
    }

    #[test]
    fn reads_a_child_through_its_stops_and_leaves_it_running() {
        let (child, p) = sleeper();
        let pid = p.pid();
        let at = exe_header(&p);
        let mut magic = [0u8; 4];
        p.read(at, &mut magic).unwrap();
        assert_eq!(&magic, b"\x7fELF");
        // Paused: reads go through the held stop, and the target shows it.
        let guard = p.pause().unwrap();
        assert_eq!(state(pid), crate::freebsd_records::kip::SSTOP);
        let (mut a, mut b) = ([0u8; 4], [0u8; 1]);
        p.read_many(&mut [(at, &mut a[..]), (at + 4, &mut b[..])])
            .unwrap();
        assert_eq!(&a, b"\x7fELF");
        assert_eq!(b[0], 2, "ELFCLASS64");
        drop(guard);
        // Resumed, not left stopped (a sleeping process is SSLEEP).
        assert_ne!(state(pid), crate::freebsd_records::kip::SSTOP);
        let err = p.read(8, &mut magic).unwrap_err();
        assert_eq!(p.read_error(err).code(), "EREAD");
        drop(child);
    }

    #[test]
    fn lists_a_childs_threads_maps_and_arguments() {
        let (_child, p) = sleeper();
        assert_eq!(p.cmdline().unwrap(), ["sleep", "30"]);
        let threads = p.threads().unwrap();
        assert_eq!(threads.len(), 1);
        assert!(!threads[0].running, "sleep sleeps");
        assert_eq!(p.tids(), [threads[0].tid]);
        assert!(p.maps().unwrap().iter().any(|m| m.exec));
        assert!(p.is_alive());
        let table = crate::process_parents();
        assert_eq!(table.get(&p.pid()), Some(&(std::process::id() as Pid)));
    }

    #[test]
    fn a_missing_pid_is_no_process() {
        assert!(matches!(
            Process::open(99_999_999),
            Err(Error::NoProcess { .. })
        ));
    }
}
