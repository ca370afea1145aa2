//! Access to another process: its memory, its memory map, its threads and the
//! files it has mapped, plus pausing and resuming it.
//!
//! [`Process`] is the live target (Linux: `process_vm_readv`, `/proc`, and
//! ptrace with bounded waits; not `remoteprocess`'s reader, which makes one
//! system call per range, nor its lock, which can wait forever on a dying
//! target; Windows: `ReadProcessMemory`, Toolhelp32 and `SuspendThread`,
//! see `windows.rs`; macOS: Mach calls, `macos.rs`; FreeBSD: `/proc/PID/mem`
//! or `ptrace(PT_IO)` and the `kern.proc` sysctls, `freebsd.rs`); [`Memory`] is the one trait the stack reader
//! needs, so tests and fuzzers can feed it fake memory ([`FakeMemory`]).
//! Several ranges can be read in one system call ([`Memory::read_many`]).
//! This crate knows nothing about binaries (that is `pyspy-binary`) or about
//! CPython (that is `pyspy-cpython`).
#![deny(missing_docs)]

mod activity;
mod error;
mod fake;
#[cfg(target_os = "freebsd")]
mod freebsd;
#[cfg(target_os = "freebsd")]
mod freebsd_pause;
// Pure parsing: also compiled into the Linux unit tests.
#[cfg(any(test, target_os = "freebsd"))]
mod freebsd_records;
#[cfg(target_os = "freebsd")]
mod freebsd_sysctl;
#[cfg(target_os = "freebsd")]
mod freebsd_table;
#[cfg(target_os = "freebsd")]
mod freebsd_threads;
#[cfg(any(target_os = "linux", target_os = "freebsd"))]
mod joined;
#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "macos")]
mod macos;
mod mapped_file;
mod maps;
mod memory;
#[cfg(target_os = "linux")]
mod namespace;
#[cfg(not(target_os = "linux"))]
mod no_proc;
#[cfg(not(any(target_os = "linux", target_os = "freebsd", windows)))]
mod no_process_table;
#[cfg(target_os = "linux")]
mod pause;
#[cfg(any(target_os = "linux", target_os = "freebsd"))]
mod proc_mem;
#[cfg(target_os = "linux")]
mod proc_table;
#[cfg(target_os = "linux")]
mod resumer;
#[cfg(target_os = "linux")]
mod source;
mod target;
#[cfg(target_os = "linux")]
mod thread_files;
#[cfg(not(any(target_os = "linux", target_os = "freebsd")))]
mod thread_files_none;
#[cfg(not(any(
    target_os = "linux",
    target_os = "macos",
    target_os = "freebsd",
    windows
)))]
mod unsupported;
#[cfg(target_os = "linux")]
mod vm_read;
#[cfg(windows)]
mod windows;
#[cfg(windows)]
mod windows_pause;
#[cfg(windows)]
mod windows_peb;
#[cfg(windows)]
mod windows_table;

pub use activity::{syscall_name, Activity};
pub use error::{Error, ReadError, HOW_TO_GET_PTRACE_RIGHTS};
pub use fake::FakeMemory;
pub use mapped_file::{map_file, MappedFile};
pub use maps::{parse_maps, MapRange};
pub use memory::{joined_spans, Memory, MemoryExt, ReadCounter};
pub use target::Target;

#[cfg(target_os = "freebsd")]
pub use freebsd::{OsThread, PauseGuard, Process};
#[cfg(target_os = "freebsd")]
pub use freebsd_table::{
    process_command_line, process_ended, process_exe, process_parents, thread_ids,
};
#[cfg(target_os = "freebsd")]
pub use freebsd_threads::{ThreadFiles, OS_THREAD_ACTIVITY};
#[cfg(target_os = "linux")]
pub use linux::{OsThread, PauseGuard, Process};
#[cfg(target_os = "macos")]
pub use macos::{OsThread, PauseGuard, Process};
#[cfg(target_os = "linux")]
pub use namespace::{namespace_pid, parse_nspid, thread_ids, TidMap};
#[cfg(not(target_os = "linux"))]
pub use no_proc::{namespace_pid, TidMap};
#[cfg(not(any(target_os = "linux", target_os = "freebsd", windows)))]
pub use no_process_table::{
    process_command_line, process_ended, process_exe, process_parents, thread_ids,
};
#[cfg(target_os = "linux")]
pub use proc_table::{process_command_line, process_ended, process_exe, process_parents};
#[cfg(target_os = "linux")]
pub use source::{ReadPath, DEBUG_ENV, FORCE_PROC_MEM_ENV};
#[cfg(target_os = "linux")]
pub use thread_files::ThreadFiles;
#[cfg(not(any(target_os = "linux", target_os = "freebsd")))]
pub use thread_files_none::{ThreadFiles, OS_THREAD_ACTIVITY};
#[cfg(not(any(
    target_os = "linux",
    target_os = "macos",
    target_os = "freebsd",
    windows
)))]
pub use unsupported::{OsThread, PauseGuard, Process};
#[cfg(windows)]
pub use windows::{thread_ids, OsThread, PauseGuard, Process};
#[cfg(windows)]
pub use windows_table::{process_command_line, process_ended, process_exe, process_parents};

/// Whether the OS tells a thread's activity (running, or blocked in which
/// system call): Linux does, through `/proc`.
#[cfg(target_os = "linux")]
pub const OS_THREAD_ACTIVITY: bool = true;

/// A process id.
pub type Pid = i32;

/// Asks the kernel to wake the calling thread's sleeps within `ns`
/// nanoseconds of the deadline (the default slack, 50 µs, would cap a
/// sampler at a few thousand samples per second). Best effort.
pub fn set_timer_slack(ns: u64) {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_TIMERSLACK only changes the calling thread's slack.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, ns as libc::c_ulong, 0, 0, 0);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = ns;
}
