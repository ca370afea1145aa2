//! PID namespaces, which only Linux has: elsewhere a process is never in
//! another one, and the thread ids it stores are ours.

use crate::Pid;

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
