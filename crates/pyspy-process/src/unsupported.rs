//! Platforms with no process backend (none the npm package ships for: Linux,
//! macOS, Windows and FreeBSD have theirs): every entry point answers
//! `Unsupported` at run time, so the crate still compiles anywhere.

use std::path::PathBuf;

use crate::{Error, MapRange, MappedFile, Memory, Pid, ReadCounter, ReadError};

/// A live process (not supported on this platform yet).
pub struct Process {
    counter: ReadCounter,
}

/// One OS thread of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OsThread {
    /// Kernel thread id.
    pub tid: Pid,
    /// Running when read.
    pub running: bool,
}

/// Keeps the target paused (never constructed here).
pub struct PauseGuard;

/// Resumes the target where a platform can pause it (none here); callers
/// drop it explicitly to end a pause.
impl Drop for PauseGuard {
    fn drop(&mut self) {}
}

impl Process {
    /// Always fails with [`Error::Unsupported`].
    pub fn open(_pid: Pid) -> Result<Process, Error> {
        Err(Error::Unsupported)
    }
    /// See the Linux version.
    pub fn set_child_ptrace_safe(&self) {}
    /// The pid.
    pub fn pid(&self) -> Pid {
        0
    }
    /// Whether memory can be read only while the target is paused (FreeBSD
    /// without procfs): never here.
    pub fn reads_need_pause(&self) -> bool {
        false
    }
    /// Remote read system calls so far.
    pub fn read_counter(&self) -> &ReadCounter {
        &self.counter
    }
    /// Never alive.
    pub fn is_alive(&self) -> bool {
        false
    }
    /// See the Linux version.
    pub fn denied_or_exited(&self) -> Error {
        Error::Unsupported
    }
    /// See the Linux version.
    pub fn io_error(&self, _what: &str, _source: std::io::Error) -> Error {
        Error::Unsupported
    }
    /// See the Linux version.
    pub fn read_error(&self, _source: ReadError) -> Error {
        Error::Unsupported
    }
    /// See the Linux version.
    pub fn tids(&self) -> Vec<Pid> {
        Vec::new()
    }
    /// See the Linux version.
    pub fn exe(&self) -> Result<String, Error> {
        Err(Error::Unsupported)
    }
    /// See the Linux version.
    pub fn cmdline(&self) -> Result<Vec<String>, Error> {
        Err(Error::Unsupported)
    }
    /// See the Linux version.
    pub fn maps(&self) -> Result<Vec<MapRange>, Error> {
        Err(Error::Unsupported)
    }
    /// See the Linux version.
    pub fn host_path(&self, target_path: &str) -> PathBuf {
        PathBuf::from(target_path)
    }
    /// See the Linux version.
    pub fn read_mapped_file(&self, _map: &MapRange) -> Result<MappedFile, Error> {
        Err(Error::Unsupported)
    }
    /// See the Linux version.
    pub fn threads(&self) -> Result<Vec<OsThread>, Error> {
        Err(Error::Unsupported)
    }
    /// See the Linux version.
    pub fn thread_running(&self, _tid: Pid) -> Option<bool> {
        None
    }
    /// See the Linux version.
    pub fn thread_in_syscall(&self, _tid: Pid) -> Option<bool> {
        None
    }
    /// See the Linux version.
    pub fn pause(&self) -> Result<PauseGuard, Error> {
        Err(Error::Unsupported)
    }
}

impl Memory for Process {
    fn read(&self, addr: usize, buf: &mut [u8]) -> Result<(), ReadError> {
        Err(ReadError {
            addr,
            len: buf.len(),
            errno: 0,
        })
    }
}
