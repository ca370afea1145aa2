//! Which system call reads a target's memory, decided once per process
//! handle on its first read: `process_vm_readv` when it works; `pread` on
//! `/proc/PID/mem` where a sandbox refuses it (EPERM, ENOSYS, or EFAULT on
//! memory that is mapped) but the file can be read; neither, with both
//! refusals kept so the error can name them. The stack reader sees only
//! [`crate::Memory`] and never knows which path is used.

use std::fs::File;
use std::os::unix::fs::FileExt;

use crate::{parse_maps, Pid, ReadCounter};

/// Set (to anything but `0`) to read through `/proc/PID/mem` even where
/// `process_vm_readv` works: for tests and benchmarks of that path.
pub const FORCE_PROC_MEM_ENV: &str = "PYSPY_NODE_PROC_MEM";
/// Set (to anything but `0`) to print, on stderr, which path each attach
/// uses (the CLI also prints stack traces of errors then).
pub const DEBUG_ENV: &str = "PYSPY_NODE_DEBUG";

/// A page no process maps (the first pages are kept unmapped: `mmap_min_addr`).
const UNMAPPED: usize = 0x1000;

/// How a process handle reads its target's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadPath {
    /// `process_vm_readv`, many ranges per call.
    ProcessVmReadv,
    /// `pread`/`preadv` on `/proc/PID/mem`, kept open.
    ProcMem,
    /// Both refused: every read fails with `EPERM`.
    Denied,
}

/// The decision, with what it needs to read.
pub(crate) enum Source {
    VmReadv,
    ProcMem(File),
    Denied {
        /// errno of the refused `process_vm_readv`.
        vm_errno: i32,
        /// errno of the refused open or read of `/proc/PID/mem`.
        mem_errno: i32,
    },
}

impl Source {
    pub(crate) fn path(&self) -> ReadPath {
        match self {
            Source::VmReadv => ReadPath::ProcessVmReadv,
            Source::ProcMem(_) => ReadPath::ProcMem,
            Source::Denied { .. } => ReadPath::Denied,
        }
    }

    /// What was refused, for [`crate::Error::PermissionDenied`]; empty when
    /// nothing was (a refusal found later, by ptrace say).
    pub(crate) fn denial(&self, pid: Pid) -> String {
        match self {
            Source::Denied {
                vm_errno,
                mem_errno,
            } => format!(
                " (process_vm_readv: {}; /proc/{pid}/mem: {})",
                errno_name(*vm_errno),
                errno_name(*mem_errno)
            ),
            _ => String::new(),
        }
    }
}

fn env_flag(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| !v.is_empty() && v != "0")
}

/// Decides how to read `pid`'s memory (see the module doc).
pub(crate) fn decide(pid: Pid) -> Source {
    // The probe is not counted: counts are of the reader's own reads.
    let counter = &ReadCounter::default();
    let (source, why) = if env_flag(FORCE_PROC_MEM_ENV) {
        forced(pid)
    } else {
        probe(pid, counter)
    };
    if env_flag(DEBUG_ENV) {
        let how = match &source {
            Source::VmReadv => "process_vm_readv".to_owned(),
            Source::ProcMem(_) => format!("pread on /proc/{pid}/mem"),
            Source::Denied { .. } => format!("nothing: refused{}", source.denial(pid)),
        };
        eprintln!("pyspy-node: process {pid}: memory reads through {how}{why}");
    }
    source
}

/// `/proc/PID/mem`, as [`FORCE_PROC_MEM_ENV`] asks.
fn forced(pid: Pid) -> (Source, String) {
    match File::open(format!("/proc/{pid}/mem")) {
        Ok(f) => (
            Source::ProcMem(f),
            format!(" ({FORCE_PROC_MEM_ENV} is set)"),
        ),
        Err(e) => (
            Source::Denied {
                vm_errno: 0,
                mem_errno: e.raw_os_error().unwrap_or(libc::EACCES),
            },
            String::new(),
        ),
    }
}

/// The decision, and a note on why for the debug line.
fn probe(pid: Pid, counter: &ReadCounter) -> (Source, String) {
    let open_mem = || File::open(format!("/proc/{pid}/mem"));
    // A byte that is surely mapped: the start of the first readable mapping.
    let mapped = std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .ok()
        .and_then(|text| {
            parse_maps(&text)
                .into_iter()
                .find(|m| m.read && !m.path.as_deref().is_some_and(|p| p.starts_with("[v")))
                .map(|m| m.start)
        });
    // Maps unreadable (denied, most likely): both calls check the rights
    // before they touch memory, so an unmapped page still tells refused
    // (EPERM, ENOSYS; EACCES on open) from allowed (EFAULT, EIO).
    let addr = mapped.unwrap_or(UNMAPPED);
    let allowed = |errno: i32, unmapped_errno: i32| mapped.is_none() && errno == unmapped_errno;
    let mut byte = [0u8; 1];
    let vm_errno = match crate::vm_read::vm_readv(pid, &mut [(addr, &mut byte[..])], counter) {
        Ok(()) => return (Source::VmReadv, String::new()),
        // Gone: later reads report the exit.
        Err(e) if e.errno == libc::ESRCH => return (Source::VmReadv, String::new()),
        Err(e) if allowed(e.errno, libc::EFAULT) => return (Source::VmReadv, String::new()),
        Err(e) => e.errno,
    };
    let (mem, mem_errno) = match open_mem() {
        Ok(f) => {
            let errno = match f.read_at(&mut byte, addr as u64) {
                Ok(1) => 0,
                Ok(_) => libc::EIO,
                Err(e) => e.raw_os_error().unwrap_or(libc::EIO),
            };
            (Some(f), errno)
        }
        Err(e) => (None, e.raw_os_error().unwrap_or(libc::EACCES)),
    };
    if let Some(f) = mem.filter(|_| mem_errno == 0 || allowed(mem_errno, libc::EIO)) {
        let why = format!(" (process_vm_readv refused: {})", errno_name(vm_errno));
        return (Source::ProcMem(f), why);
    }
    let refused = |errno: i32| matches!(errno, libc::EPERM | libc::EACCES | libc::ENOSYS);
    if refused(vm_errno) || refused(mem_errno) {
        (
            Source::Denied {
                vm_errno,
                mem_errno,
            },
            String::new(),
        )
    } else {
        // Neither path read a mapped byte, and neither said no: not a
        // policy (the mapping went away, say); let reads report it.
        (Source::VmReadv, String::new())
    }
}

/// `EPERM` for 1, and so on; the number for others.
pub(crate) fn errno_name(errno: i32) -> String {
    match errno {
        0 => "not tried".into(),
        libc::EPERM => "EPERM".into(),
        libc::EACCES => "EACCES".into(),
        libc::ENOSYS => "ENOSYS".into(),
        libc::EFAULT => "EFAULT".into(),
        libc::EIO => "EIO".into(),
        libc::ENOENT => "ENOENT".into(),
        libc::ESRCH => "ESRCH".into(),
        n => format!("errno {n}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_reads_through_process_vm_readv() {
        let counter = ReadCounter::default();
        let (source, _) = probe(std::process::id() as Pid, &counter);
        assert_eq!(source.path(), ReadPath::ProcessVmReadv);
        assert_eq!(source.denial(1), "");
        let (forced, why) = forced(std::process::id() as Pid);
        assert_eq!(forced.path(), ReadPath::ProcMem);
        assert!(why.contains(FORCE_PROC_MEM_ENV));
    }

    #[test]
    fn a_denial_names_both_refusals() {
        let s = Source::Denied {
            vm_errno: libc::EPERM,
            mem_errno: libc::EACCES,
        };
        assert_eq!(s.path(), ReadPath::Denied);
        assert_eq!(
            s.denial(42),
            " (process_vm_readv: EPERM; /proc/42/mem: EACCES)"
        );
    }
}
