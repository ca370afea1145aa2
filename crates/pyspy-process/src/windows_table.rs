//! Windows: the system's processes, from a Toolhelp32 process snapshot
//! (what `--subprocesses` walks). Linux has the same functions in
//! `proc_table.rs`.

use std::collections::HashMap;

use windows_sys::Win32::Foundation::INVALID_HANDLE_VALUE;
use windows_sys::Win32::System::Diagnostics::ToolHelp::{
    CreateToolhelp32Snapshot, Process32FirstW, Process32NextW, PROCESSENTRY32W, TH32CS_SNAPPROCESS,
};

use crate::windows::{Handle, Process};
use crate::Pid;

/// Every process's parent. Windows keeps a parent's id after the parent
/// exits (and may give it to a new process): a tree walk from a live root
/// only follows ids it reached from that root.
pub fn process_parents() -> HashMap<Pid, Pid> {
    let mut out = HashMap::new();
    // SAFETY: plain call; the result is checked.
    let raw = unsafe { CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0) };
    if raw == INVALID_HANDLE_VALUE {
        return out;
    }
    let snapshot = Handle(raw);
    // SAFETY: a zeroed PROCESSENTRY32W is valid; dwSize is set as required.
    let mut entry: PROCESSENTRY32W = unsafe { std::mem::zeroed() };
    entry.dwSize = std::mem::size_of::<PROCESSENTRY32W>() as u32;
    // SAFETY: the snapshot is open and `entry` a valid, sized buffer.
    let mut more = unsafe { Process32FirstW(snapshot.0, &mut entry) } != 0;
    while more {
        // Pid 0 (the idle process) names itself as its parent.
        if entry.th32ProcessID != 0 {
            out.insert(entry.th32ProcessID as Pid, entry.th32ParentProcessID as Pid);
        }
        // SAFETY: as above.
        more = unsafe { Process32NextW(snapshot.0, &mut entry) } != 0;
    }
    out
}

/// The command line of `pid` (empty if unreadable).
pub fn process_command_line(pid: Pid) -> String {
    Process::open(pid)
        .and_then(|p| p.cmdline())
        .map(|a| a.join(" "))
        .unwrap_or_default()
}

/// The executable of `pid`, when readable.
pub fn process_exe(pid: Pid) -> Option<String> {
    Process::open(pid).and_then(|p| p.exe()).ok()
}

/// Whether `pid` is gone (or cannot be opened any more).
pub fn process_ended(pid: Pid) -> bool {
    Process::open(pid).map_or(true, |p| !p.is_alive())
}
