//! FreeBSD: the system's processes from the `kern.proc` sysctls (what
//! `--subprocesses` walks). Linux has the same functions in
//! `proc_table.rs`, Windows in `windows_table.rs`.

use std::collections::HashMap;

use crate::{freebsd_sysctl as sysctl, Pid};

/// Every process's parent.
pub fn process_parents() -> HashMap<Pid, Pid> {
    sysctl::all_processes()
        .unwrap_or_default()
        .into_iter()
        .map(|p| (p.pid, p.ppid))
        .collect()
}

/// The command line of `pid`, arguments joined by spaces (empty if unreadable).
pub fn process_command_line(pid: Pid) -> String {
    sysctl::args(pid).map(|a| a.join(" ")).unwrap_or_default()
}

/// The executable of `pid`, when readable.
pub fn process_exe(pid: Pid) -> Option<String> {
    sysctl::exe(pid).ok()
}

/// Whether `pid` is gone, a zombie or exiting.
pub fn process_ended(pid: Pid) -> bool {
    sysctl::process(pid).map_or(true, |p| p.ended())
}

/// Each thread's id, as ours and as the process's own (the same: FreeBSD
/// has no PID namespaces; a jail sees the host's ids).
pub fn thread_ids(pid: Pid) -> Vec<(Pid, Pid)> {
    sysctl::threads(pid)
        .unwrap_or_default()
        .into_iter()
        .map(|r| (r.tid, r.tid))
        .collect()
}
