//! Per-thread OS state where the OS does not give it cheaply (macOS,
//! Windows): every answer is "unknown", and a thread's status comes from
//! the interpreter alone (the GIL holder is running).

use crate::{Activity, Pid};

/// Whether the OS tells a thread's activity (running, or blocked): not
/// here.
pub const OS_THREAD_ACTIVITY: bool = false;

/// Per-thread OS state: none to read on this platform.
#[derive(Default)]
// A private field keeps `ThreadFiles::default()` the one way to make one,
// as on Linux.
pub struct ThreadFiles(());

impl ThreadFiles {
    /// Unknown here.
    pub fn state(&mut self, _pid: Pid, _tid: Pid) -> Option<u8> {
        None
    }
    /// Unknown here.
    pub fn running(&mut self, _pid: Pid, _tid: Pid) -> Option<bool> {
        None
    }
    /// Unknown here.
    pub fn in_syscall(&mut self, _pid: Pid, _tid: Pid) -> Option<bool> {
        None
    }
    /// Unknown here.
    pub fn activity(&mut self, _pid: Pid, _tid: Pid, _what_blocks: bool) -> Option<Activity> {
        None
    }
    /// Unknown here.
    pub fn stopped_activity(&mut self, _pid: Pid, _tid: Pid) -> Option<Activity> {
        None
    }
}
