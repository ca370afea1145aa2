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

    /// Only Linux pauses its own children differently; nothing to do here.
    pub fn set_child_ptrace_safe(&self) {}

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
                    _ => libc::ESRCH,
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
