//! What Linux reads from `/proc` per thread and per PID namespace, on
//! platforms that have neither: every answer is "unknown" or "the same".

use crate::{Activity, Pid};

/// Whether the OS tells a thread's activity (running, or blocked in which
/// call): only on Linux. Elsewhere a thread's status comes from the
/// interpreter alone (the GIL holder is running).
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

/// No PID namespaces: a process is never in another one.
pub fn namespace_pid(_pid: Pid) -> Option<Pid> {
    None
}

/// Thread ids as the process sees them are ours.
#[derive(Debug, Default)]
pub struct TidMap(());

impl TidMap {
    /// `own_tid` itself.
    pub fn host_tid(&mut self, _pid: Pid, own_tid: Pid) -> Option<Pid> {
        Some(own_tid)
    }
    /// Never.
    pub fn nested(&mut self, _pid: Pid) -> bool {
        false
    }
}
