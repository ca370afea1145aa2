//! macOS: another process through its Mach task port (`task_for_pid`),
//! memory with `mach_vm_read_overwrite`, the memory map from `mach_vm_region`
//! and `proc_regionfilename`, threads from `task_threads`, pausing with
//! `task_suspend`/`task_resume`. The same functions as the Linux backend.
//!
//! `task_for_pid` answers only root (or a binary signed with the debugger
//! entitlement), and never for a binary under System Integrity Protection
//! (Apple's `/usr/bin/python3` and anything else under `/System` or
//! `/usr/bin`): both refusals say so. Type-checked on Linux
//! (`cargo clippy --target x86_64-apple-darwin`, `aarch64-apple-darwin`);
//! run by the release workflow's macOS job only.

use std::path::PathBuf;

use mach2::kern_return::KERN_SUCCESS;
use mach2::mach_port::mach_port_deallocate;
use mach2::mach_types::{task_t, thread_act_array_t};
use mach2::message::mach_msg_type_number_t;
use mach2::port::{mach_port_name_t, MACH_PORT_NULL};
use mach2::task::{task_resume, task_suspend, task_threads};
use mach2::traps::{mach_task_self, task_for_pid};
use mach2::vm::{mach_vm_deallocate, mach_vm_read_overwrite, mach_vm_region};
use mach2::vm_prot::{VM_PROT_EXECUTE, VM_PROT_READ, VM_PROT_WRITE};
use mach2::vm_region::{vm_region_basic_info_64, vm_region_info_t, VM_REGION_BASIC_INFO_64};
use mach2::vm_types::{mach_vm_address_t, mach_vm_size_t};

use crate::{map_file, Error, MapRange, MappedFile, Memory, Pid, ReadCounter, ReadError};

/// Paths System Integrity Protection guards: their processes refuse
/// `task_for_pid` even to root.
const SIP_PREFIXES: [&str; 4] = ["/System/", "/usr/bin/", "/usr/libexec/", "/usr/sbin/"];

/// A live process, through its task port.
pub struct Process {
    pid: Pid,
    task: task_t,
    counter: ReadCounter,
}

/// One OS thread of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OsThread {
    /// Mach thread id (`thread_identifier_info.thread_id`), cut to a `Pid`.
    pub tid: Pid,
    /// Running when read.
    pub running: bool,
}

/// Keeps the target suspended; resumes it when dropped.
pub struct PauseGuard {
    task: task_t,
}

impl Drop for PauseGuard {
    fn drop(&mut self) {
        // SAFETY: a task port we hold; suspend and resume are counted.
        unsafe { task_resume(self.task) };
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // SAFETY: the send right task_for_pid gave us.
        unsafe { mach_port_deallocate(mach_task_self(), self.task) };
    }
}

/// The executable's path (`proc_pidpath`).
fn pid_path(pid: Pid) -> Option<String> {
    let mut buf = vec![0u8; libc::PROC_PIDPATHINFO_MAXSIZE as usize];
    // SAFETY: the buffer is as long as we say.
    let n = unsafe { libc::proc_pidpath(pid, buf.as_mut_ptr().cast(), buf.len() as u32) };
    (n > 0).then(|| String::from_utf8_lossy(&buf[..n as usize]).into_owned())
}

impl Process {
    /// Opens `pid`: refused unless root, and for SIP-protected binaries.
    pub fn open(pid: Pid) -> Result<Process, Error> {
        // SAFETY: signal 0 only checks the pid.
        if unsafe { libc::kill(pid, 0) } != 0
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
        {
            return Err(Error::NoProcess { pid });
        }
        let exe = pid_path(pid).unwrap_or_default();
        if let Some(prefix) = SIP_PREFIXES.iter().find(|p| exe.starts_with(*p)) {
            return Err(Error::Refused {
                pid,
                reason: format!(
                    "{exe} is under {prefix}, which System Integrity Protection guards: macOS gives \
                     no process access to it, even as root; profile a Python installed elsewhere \
                     (python.org, Homebrew, pyenv, uv)"
                ),
            });
        }
        let mut task: mach_port_name_t = MACH_PORT_NULL;
        // SAFETY: out-parameter for the task port.
        let kr = unsafe { task_for_pid(mach_task_self(), pid, &mut task) };
        if kr != KERN_SUCCESS {
            return Err(Error::Refused {
                pid,
                reason: format!(
                    "task_for_pid failed (kern_return {kr}): reading another process on macOS \
                     needs root (run with sudo)"
                ),
            });
        }
        Ok(Process {
            pid,
            task,
            counter: ReadCounter::default(),
        })
    }
    /// No ptrace here; children are paused like any process.
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
    /// Remote read calls so far.
    pub fn read_counter(&self) -> &ReadCounter {
        &self.counter
    }
    /// Whether the process still exists.
    pub fn is_alive(&self) -> bool {
        // SAFETY: signal 0 only checks the pid.
        unsafe { libc::kill(self.pid, 0) == 0 }
    }
    /// Why reads fail: the process exited, or access was refused.
    pub fn denied_or_exited(&self) -> Error {
        if self.is_alive() {
            Error::Refused {
                pid: self.pid,
                reason: "the task port refused a read (run with sudo)".into(),
            }
        } else {
            Error::Exited { pid: self.pid }
        }
    }
    /// A failed file read, or the exit that explains it.
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
    /// A failed memory read, or the exit that explains it.
    pub fn read_error(&self, source: ReadError) -> Error {
        crate::error::read_failure(
            self.pid,
            source,
            || self.is_alive(),
            || self.denied_or_exited(),
        )
    }
    /// Thread ids.
    pub fn tids(&self) -> Vec<Pid> {
        self.threads()
            .map(|t| t.into_iter().map(|t| t.tid).collect())
            .unwrap_or_default()
    }
    /// The executable's path.
    pub fn exe(&self) -> Result<String, Error> {
        pid_path(self.pid).ok_or(Error::Exited { pid: self.pid })
    }
    /// The command line (`KERN_PROCARGS2`: argc, the executable path, then
    /// the arguments, NUL-separated).
    pub fn cmdline(&self) -> Result<Vec<String>, Error> {
        let mut mib = [libc::CTL_KERN, libc::KERN_PROCARGS2, self.pid];
        let mut buf = vec![0u8; 256 * 1024];
        let mut len = buf.len();
        // SAFETY: buffer and length describe the same memory.
        let rc = unsafe {
            libc::sysctl(
                mib.as_mut_ptr(),
                3,
                buf.as_mut_ptr().cast(),
                &mut len,
                std::ptr::null_mut(),
                0,
            )
        };
        if rc != 0 || len < 4 {
            return Err(self.io_error("KERN_PROCARGS2", std::io::Error::last_os_error()));
        }
        let argc = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        let args = buf[4..len]
            .split(|&b| b == 0)
            .skip(1) // the executable path
            .filter(|a| !a.is_empty())
            .take(argc)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        Ok(args)
    }
    /// The memory map, region by region.
    pub fn maps(&self) -> Result<Vec<MapRange>, Error> {
        let mut out = Vec::new();
        let mut addr: mach_vm_address_t = 0;
        loop {
            let mut size: mach_vm_size_t = 0;
            let mut info = vm_region_basic_info_64::default();
            let mut count = vm_region_basic_info_64::count();
            let mut object: mach_port_name_t = MACH_PORT_NULL;
            // SAFETY: out-parameters sized for VM_REGION_BASIC_INFO_64.
            let kr = unsafe {
                mach_vm_region(
                    self.task,
                    &mut addr,
                    &mut size,
                    VM_REGION_BASIC_INFO_64,
                    &mut info as *mut vm_region_basic_info_64 as vm_region_info_t,
                    &mut count,
                    &mut object,
                )
            };
            if kr != KERN_SUCCESS {
                break; // past the last region
            }
            let prot = info.protection;
            out.push(MapRange {
                start: addr as usize,
                end: (addr + size) as usize,
                read: prot & VM_PROT_READ != 0,
                write: prot & VM_PROT_WRITE != 0,
                exec: prot & VM_PROT_EXECUTE != 0,
                offset: info.offset,
                inode: 0,
                path: self.region_file(addr),
            });
            addr += size;
        }
        if out.is_empty() {
            return Err(self.denied_or_exited());
        }
        Ok(out)
    }
    fn region_file(&self, addr: u64) -> Option<String> {
        let mut buf = vec![0u8; libc::PATH_MAX as usize];
        // SAFETY: the buffer is as long as we say.
        let n = unsafe {
            libc::proc_regionfilename(self.pid, addr, buf.as_mut_ptr().cast(), buf.len() as u32)
        };
        (n > 0).then(|| String::from_utf8_lossy(&buf[..n as usize]).into_owned())
    }
    /// Paths are the host's: no mount namespaces.
    pub fn host_path(&self, target_path: &str) -> PathBuf {
        PathBuf::from(target_path)
    }
    /// The file behind `map`, mapped read-only.
    pub fn read_mapped_file(&self, map: &MapRange) -> Result<MappedFile, Error> {
        let path = map.path.as_deref().unwrap_or_default();
        map_file(std::path::Path::new(path)).map_err(|e| self.io_error(path, e))
    }
    /// Threads with their Mach ids and run states.
    pub fn threads(&self) -> Result<Vec<OsThread>, Error> {
        let mut list: thread_act_array_t = std::ptr::null_mut();
        let mut count: mach_msg_type_number_t = 0;
        // SAFETY: out-parameters; the array is ours to deallocate.
        if unsafe { task_threads(self.task, &mut list, &mut count) } != KERN_SUCCESS {
            return Err(self.denied_or_exited());
        }
        // SAFETY: task_threads gave `count` ports at `list`.
        let ports = unsafe { std::slice::from_raw_parts(list, count as usize) };
        let threads = ports
            .iter()
            .filter_map(|&port| {
                let t = thread_of(port);
                // SAFETY: each port is a send right task_threads gave us.
                unsafe { mach_port_deallocate(mach_task_self(), port) };
                t
            })
            .collect();
        // SAFETY: the array task_threads allocated in our address space.
        unsafe {
            mach_vm_deallocate(
                mach_task_self(),
                list as mach_vm_address_t,
                (count as usize * std::mem::size_of::<mach_port_name_t>()) as mach_vm_size_t,
            )
        };
        Ok(threads)
    }
    /// Whether thread `tid` runs now.
    pub fn thread_running(&self, tid: Pid) -> Option<bool> {
        self.threads()
            .ok()?
            .into_iter()
            .find(|t| t.tid == tid)
            .map(|t| t.running)
    }
    /// Not known on macOS.
    pub fn thread_in_syscall(&self, _tid: Pid) -> Option<bool> {
        None
    }
    /// Suspends the whole task until the guard drops.
    pub fn pause(&self) -> Result<PauseGuard, Error> {
        // SAFETY: a task port we hold.
        if unsafe { task_suspend(self.task) } != KERN_SUCCESS {
            return Err(self.denied_or_exited());
        }
        Ok(PauseGuard { task: self.task })
    }
}

/// A thread's id and run state, from `thread_info`.
fn thread_of(port: mach_port_name_t) -> Option<OsThread> {
    let mut ident: libc::thread_identifier_info = unsafe { std::mem::zeroed() };
    let mut count = libc::THREAD_IDENTIFIER_INFO_COUNT;
    // SAFETY: out-parameter sized by its count.
    let kr = unsafe {
        libc::thread_info(
            port,
            libc::THREAD_IDENTIFIER_INFO as u32,
            &mut ident as *mut _ as libc::thread_info_t,
            &mut count,
        )
    };
    if kr != KERN_SUCCESS {
        return None;
    }
    let mut basic: libc::thread_basic_info = unsafe { std::mem::zeroed() };
    let mut count = libc::THREAD_BASIC_INFO_COUNT;
    // SAFETY: as above.
    let kr = unsafe {
        libc::thread_info(
            port,
            libc::THREAD_BASIC_INFO as u32,
            &mut basic as *mut _ as libc::thread_info_t,
            &mut count,
        )
    };
    Some(OsThread {
        tid: ident.thread_id as Pid,
        running: kr == KERN_SUCCESS && basic.run_state == libc::TH_STATE_RUNNING,
    })
}

impl Memory for Process {
    fn read(&self, addr: usize, buf: &mut [u8]) -> Result<(), ReadError> {
        self.counter.add(buf.len());
        let mut got: mach_vm_size_t = 0;
        // SAFETY: the kernel writes at most buf.len() bytes into buf.
        let kr = unsafe {
            mach_vm_read_overwrite(
                self.task,
                addr as mach_vm_address_t,
                buf.len() as mach_vm_size_t,
                buf.as_mut_ptr() as mach_vm_address_t,
                &mut got,
            )
        };
        if kr == KERN_SUCCESS && got as usize == buf.len() {
            Ok(())
        } else {
            Err(ReadError {
                addr,
                len: buf.len(),
                errno: if kr == KERN_SUCCESS { 0 } else { libc::EFAULT },
            })
        }
    }
}
