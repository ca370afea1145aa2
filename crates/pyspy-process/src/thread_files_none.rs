//! Everywhere but Linux: no per-thread `/proc` files, so thread states are
//! not known (every thread counts as running).

use crate::{Activity, Pid};

/// Per-thread `/proc` files (nothing to read on this platform).
#[derive(Default)]
pub struct ThreadFiles {
    _none: (),
}

impl ThreadFiles {
    /// See the Linux version.
    pub fn state(&mut self, _pid: Pid, _tid: Pid) -> Option<u8> {
        None
    }
    /// See the Linux version.
    pub fn running(&mut self, _pid: Pid, _tid: Pid) -> Option<bool> {
        None
    }
    /// See the Linux version.
    pub fn in_syscall(&mut self, _pid: Pid, _tid: Pid) -> Option<bool> {
        None
    }
    /// See the Linux version.
    pub fn activity(&mut self, _pid: Pid, _tid: Pid, _what_blocks: bool) -> Option<Activity> {
        None
    }
    /// See the Linux version.
    pub fn stopped_activity(&mut self, _pid: Pid, _tid: Pid) -> Option<Activity> {
        None
    }
}
