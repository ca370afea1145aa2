//! Windows: `ReadProcessMemory` for memory, Toolhelp32 snapshots for the
//! loaded modules (the "memory map") and the threads, the PEB for the
//! command line, and `SuspendThread` for pausing (see `windows_pause.rs`).

use std::path::PathBuf;

use windows_sys::Win32::Foundation::{
    CloseHandle, GetLastError, ERROR_ACCESS_DENIED, ERROR_BAD_LENGTH, ERROR_INVALID_PARAMETER,
    ERROR_PARTIAL_COPY, HANDLE, INVALID_HANDLE_VALUE, STILL_ACTIVE,
};
use windows_sys::Win32::System::Diagnostics::Debug::ReadProcessMemory;
use windows_sys::Win32::System::Diagnostics::ToolHelp::{
    CreateToolhelp32Snapshot, Module32FirstW, Module32NextW, Thread32First, Thread32Next,
    MODULEENTRY32W, TH32CS_SNAPMODULE, TH32CS_SNAPTHREAD, THREADENTRY32,
};
use windows_sys::Win32::System::Threading::{
    GetExitCodeProcess, OpenProcess, QueryFullProcessImageNameW, PROCESS_NAME_WIN32,
    PROCESS_QUERY_LIMITED_INFORMATION, PROCESS_VM_READ,
};

use crate::mapped_file::map_file;
use crate::{Error, MapRange, MappedFile, Memory, Pid, ReadCounter, ReadError};

pub use crate::windows_pause::PauseGuard;

/// An owned Windows handle, closed on drop.
pub(crate) struct Handle(pub(crate) HANDLE);

// SAFETY: a process or thread handle is a kernel object reference that any
// thread may use; nothing here is tied to the thread that opened it.
unsafe impl Send for Handle {}
// SAFETY: as above; the calls made with it are thread-safe.
unsafe impl Sync for Handle {}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the handle was returned open by the OS and is closed once.
        unsafe { CloseHandle(self.0) };
    }
}

/// A live process, opened for reading.
pub struct Process {
    pid: Pid,
    handle: Handle,
    counter: ReadCounter,
}

/// One OS thread of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OsThread {
    /// Windows thread id.
    pub tid: Pid,
    /// Windows does not say cheaply: always `false` here.
    pub running: bool,
}

/// The last Windows error of this thread.
pub(crate) fn last_error() -> u32 {
    // SAFETY: reads this thread's error slot.
    unsafe { GetLastError() }
}

impl Process {
    /// Opens `pid` for reading, failing with [`Error::NoProcess`] when it
    /// does not exist and [`Error::PermissionDenied`] when Windows refuses.
    pub fn open(pid: Pid) -> Result<Process, Error> {
        if pid <= 0 {
            return Err(Error::NoProcess { pid });
        }
        // SAFETY: plain call; the result is checked before use.
        let raw = unsafe {
            OpenProcess(
                PROCESS_VM_READ | PROCESS_QUERY_LIMITED_INFORMATION,
                0,
                pid as u32,
            )
        };
        if raw.is_null() {
            return Err(match last_error() {
                ERROR_ACCESS_DENIED => Error::PermissionDenied {
                    pid,
                    detail: " (OpenProcess: access denied)".into(),
                },
                // What OpenProcess answers for a pid no process has.
                ERROR_INVALID_PARAMETER => Error::NoProcess { pid },
                code => Error::Io {
                    pid,
                    what: "OpenProcess".into(),
                    source: std::io::Error::from_raw_os_error(code as i32),
                },
            });
        }
        Ok(Process {
            pid,
            handle: Handle(raw),
            counter: ReadCounter::default(),
        })
    }

    /// Only Linux pauses its own children differently; nothing to do here.
    pub fn set_child_ptrace_safe(&self) {}

    /// The pid.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Whether memory can be read only while the target is paused (FreeBSD
    /// without procfs): never here.
    pub fn reads_need_pause(&self) -> bool {
        false
    }
    /// Remote read system calls made so far through this handle.
    pub fn read_counter(&self) -> &ReadCounter {
        &self.counter
    }

    pub(crate) fn raw_handle(&self) -> HANDLE {
        self.handle.0
    }

    /// True until the process has exited.
    pub fn is_alive(&self) -> bool {
        let mut code = 0u32;
        // SAFETY: the handle is open; `code` outlives the call.
        let ok = unsafe { GetExitCodeProcess(self.handle.0, &mut code) } != 0;
        // A process that exits with 259 itself looks alive; Windows offers
        // nothing better through this access right.
        ok && code == STILL_ACTIVE as u32
    }

    /// `Exited` when the process is gone, else `PermissionDenied`.
    pub fn denied_or_exited(&self) -> Error {
        if !self.is_alive() {
            return Error::Exited { pid: self.pid };
        }
        Error::PermissionDenied {
            pid: self.pid,
            detail: String::new(),
        }
    }

    /// The error to report for an I/O failure about this process.
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

    /// The error to report for a failed remote read.
    pub fn read_error(&self, source: ReadError) -> Error {
        crate::error::read_failure(
            self.pid,
            source,
            || self.is_alive(),
            || self.denied_or_exited(),
        )
    }

    /// The executable's full Win32 path (`C:\...\python.exe`).
    pub fn exe(&self) -> Result<String, Error> {
        let mut buf = vec![0u16; 32768];
        let mut len = buf.len() as u32;
        // SAFETY: `buf` holds `len` UTF-16 units; Windows writes at most that.
        let ok = unsafe {
            QueryFullProcessImageNameW(
                self.handle.0,
                PROCESS_NAME_WIN32,
                buf.as_mut_ptr(),
                &mut len,
            )
        };
        if ok == 0 {
            let e = std::io::Error::from_raw_os_error(last_error() as i32);
            return Err(self.io_error("QueryFullProcessImageNameW", e));
        }
        Ok(String::from_utf16_lossy(&buf[..len as usize]))
    }

    /// The command line, as one string (Windows keeps it unsplit), read
    /// from the target's process parameters.
    pub fn cmdline(&self) -> Result<Vec<String>, Error> {
        crate::windows_peb::command_line(self).map(|line| vec![line])
    }

    /// The loaded modules (executable and DLLs), one range each, with their
    /// full paths: what finding the interpreter needs from a memory map.
    pub fn maps(&self) -> Result<Vec<MapRange>, Error> {
        let snapshot = self.snapshot(TH32CS_SNAPMODULE, "module list")?;
        // SAFETY: a zeroed MODULEENTRY32W is valid; dwSize is set as required.
        let mut entry: MODULEENTRY32W = unsafe { std::mem::zeroed() };
        entry.dwSize = std::mem::size_of::<MODULEENTRY32W>() as u32;
        let mut out = Vec::new();
        // SAFETY: the snapshot is open and `entry` is a valid, sized buffer.
        let mut more = unsafe { Module32FirstW(snapshot.0, &mut entry) } != 0;
        while more {
            let start = entry.modBaseAddr as usize;
            out.push(MapRange {
                start,
                end: start.saturating_add(entry.modBaseSize as usize),
                read: true,
                write: false,
                exec: true,
                offset: 0,
                inode: 0,
                path: Some(wide_to_string(&entry.szExePath)),
            });
            // SAFETY: as above.
            more = unsafe { Module32NextW(snapshot.0, &mut entry) } != 0;
        }
        if out.is_empty() {
            // A process still starting lists no modules yet: not a refusal
            // (a launch retries until the interpreter is loaded).
            return Err(self.io_error(
                "module list",
                std::io::Error::other("no modules listed yet (the process may still be starting)"),
            ));
        }
        Ok(out)
    }

    /// Windows paths open as they are.
    pub fn host_path(&self, target_path: &str) -> PathBuf {
        PathBuf::from(target_path)
    }

    /// Maps a module's file, by the path the module list gives.
    pub fn read_mapped_file(&self, map: &MapRange) -> Result<MappedFile, Error> {
        let path = map.path.as_deref().unwrap_or_default();
        map_file(std::path::Path::new(path)).map_err(|e| self.io_error(path, e))
    }

    /// The OS threads.
    pub fn threads(&self) -> Result<Vec<OsThread>, Error> {
        let tids = thread_list(self.pid).map_err(|e| self.io_error("thread list", e))?;
        Ok(tids
            .into_iter()
            .map(|tid| OsThread {
                tid,
                running: false,
            })
            .collect())
    }

    /// Unknown on Windows.
    pub fn thread_running(&self, _tid: Pid) -> Option<bool> {
        None
    }

    /// Unknown on Windows.
    pub fn thread_in_syscall(&self, _tid: Pid) -> Option<bool> {
        None
    }

    /// Suspends every thread until the guard is dropped (see [`PauseGuard`]).
    pub fn pause(&self) -> Result<PauseGuard, Error> {
        crate::windows_pause::pause(self)
    }

    /// The thread ids (empty when the process is gone).
    pub fn tids(&self) -> Vec<Pid> {
        thread_list(self.pid).unwrap_or_default()
    }

    /// A Toolhelp32 snapshot of this process, retried while Windows answers
    /// `ERROR_BAD_LENGTH` (modules loading or unloading meanwhile).
    fn snapshot(&self, flags: u32, what: &str) -> Result<Handle, Error> {
        for _ in 0..8 {
            // SAFETY: plain call; the result is checked.
            let raw = unsafe { CreateToolhelp32Snapshot(flags, self.pid as u32) };
            if raw != INVALID_HANDLE_VALUE {
                return Ok(Handle(raw));
            }
            let code = last_error();
            if code != ERROR_BAD_LENGTH {
                let e = std::io::Error::from_raw_os_error(code as i32);
                return Err(self.io_error(what, e));
            }
        }
        Err(Error::Io {
            pid: self.pid,
            what: what.into(),
            source: std::io::Error::from_raw_os_error(ERROR_BAD_LENGTH as i32),
        })
    }
}

/// The ids of the threads of process `pid`, from a system-wide snapshot.
pub(crate) fn thread_list(pid: Pid) -> std::io::Result<Vec<Pid>> {
    // SAFETY: plain call; the result is checked.
    let raw = unsafe { CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0) };
    if raw == INVALID_HANDLE_VALUE {
        return Err(std::io::Error::last_os_error());
    }
    let snapshot = Handle(raw);
    // SAFETY: a zeroed THREADENTRY32 is valid; dwSize is set as required.
    let mut entry: THREADENTRY32 = unsafe { std::mem::zeroed() };
    entry.dwSize = std::mem::size_of::<THREADENTRY32>() as u32;
    let mut out = Vec::new();
    // SAFETY: the snapshot is open and `entry` a valid, sized buffer.
    let mut more = unsafe { Thread32First(snapshot.0, &mut entry) } != 0;
    while more {
        if entry.th32OwnerProcessID == pid as u32 {
            out.push(entry.th32ThreadID as Pid);
        }
        // SAFETY: as above.
        more = unsafe { Thread32Next(snapshot.0, &mut entry) } != 0;
    }
    Ok(out)
}

/// Each thread's id as itself: Windows has no PID namespaces.
pub fn thread_ids(pid: Pid) -> Vec<(Pid, Pid)> {
    thread_list(pid)
        .unwrap_or_default()
        .into_iter()
        .map(|t| (t, t))
        .collect()
}

fn wide_to_string(wide: &[u16]) -> String {
    let end = wide.iter().position(|&c| c == 0).unwrap_or(wide.len());
    String::from_utf16_lossy(&wide[..end])
}

/// The errno-style code of a failed `ReadProcessMemory`, so that
/// [`ReadError`]'s questions (gone? denied?) answer alike everywhere.
fn errno_of(code: u32) -> i32 {
    match code {
        ERROR_ACCESS_DENIED => libc::EACCES,
        // An unmapped or partly unmapped range.
        ERROR_PARTIAL_COPY | windows_sys::Win32::Foundation::ERROR_NOACCESS => libc::EFAULT,
        _ => libc::EIO,
    }
}

impl Memory for Process {
    fn read(&self, addr: usize, buf: &mut [u8]) -> Result<(), ReadError> {
        if buf.is_empty() {
            return Ok(());
        }
        let mut done = 0usize;
        // SAFETY: `buf` is writable for its length; Windows writes at most
        // that many bytes and reports how many in `done`.
        let ok = unsafe {
            ReadProcessMemory(
                self.handle.0,
                addr as *const _,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut done,
            )
        };
        self.counter.add(done);
        if ok == 0 || done != buf.len() {
            let errno = if ok == 0 { errno_of(last_error()) } else { 0 };
            return Err(ReadError {
                addr,
                len: buf.len(),
                errno,
            });
        }
        Ok(())
    }
}
