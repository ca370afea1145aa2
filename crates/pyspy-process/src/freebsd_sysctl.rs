//! FreeBSD: the `kern.proc` sysctls, as raw answers (parsed by
//! `freebsd_records.rs`): a process's threads, memory map, executable path
//! and arguments, and the whole process table. Every one reads the kernel's
//! view; none touches the target.

use crate::freebsd_records::{parse_args, parse_procs, parse_vmmap, ProcRecord};
use crate::{MapRange, Pid};

/// Calls `sysctl(mib)` into a buffer sized by asking first, growing it
/// when the answer grew meanwhile (threads or mappings added).
fn sysctl(mib: &[libc::c_int]) -> std::io::Result<Vec<u8>> {
    for _ in 0..8 {
        let mut len: libc::size_t = 0;
        // SAFETY: a size query (null buffer); `len` is an out-parameter.
        let rc = unsafe {
            libc::sysctl(
                mib.as_ptr(),
                mib.len() as libc::c_uint,
                std::ptr::null_mut(),
                &mut len,
                std::ptr::null(),
                0,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // Room for what appears between the two calls.
        let mut buf = vec![0u8; len + len / 4 + 4096];
        let mut got = buf.len();
        // SAFETY: `buf` holds `got` writable bytes; the kernel writes at
        // most that and says how many.
        let rc = unsafe {
            libc::sysctl(
                mib.as_ptr(),
                mib.len() as libc::c_uint,
                buf.as_mut_ptr().cast(),
                &mut got,
                std::ptr::null(),
                0,
            )
        };
        if rc == 0 {
            buf.truncate(got);
            return Ok(buf);
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::ENOMEM) {
            return Err(err);
        }
    }
    Err(std::io::Error::from_raw_os_error(libc::ENOMEM))
}

/// One record per thread of `pid` (`ESRCH` once it is gone).
pub(crate) fn threads(pid: Pid) -> std::io::Result<Vec<ProcRecord>> {
    let mib = [
        libc::CTL_KERN,
        libc::KERN_PROC,
        libc::KERN_PROC_PID | libc::KERN_PROC_INC_THREAD,
        pid,
    ];
    let recs = parse_procs(&sysctl(&mib)?);
    if recs.is_empty() {
        return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
    }
    Ok(recs)
}

/// The process record of `pid` (its first thread's, which holds the
/// process-wide fields).
pub(crate) fn process(pid: Pid) -> std::io::Result<ProcRecord> {
    let mib = [libc::CTL_KERN, libc::KERN_PROC, libc::KERN_PROC_PID, pid];
    parse_procs(&sysctl(&mib)?)
        .into_iter()
        .next()
        .ok_or_else(|| std::io::Error::from_raw_os_error(libc::ESRCH))
}

/// Every process on the host that this user may see (one record each).
pub(crate) fn all_processes() -> std::io::Result<Vec<ProcRecord>> {
    let mib = [libc::CTL_KERN, libc::KERN_PROC, libc::KERN_PROC_PROC, 0];
    Ok(parse_procs(&sysctl(&mib)?))
}

/// The memory map of `pid` (`KERN_PROC_VMMAP`; the kernel checks the same
/// debug rights as ptrace).
pub(crate) fn vmmap(pid: Pid) -> std::io::Result<Vec<MapRange>> {
    let mib = [libc::CTL_KERN, libc::KERN_PROC, libc::KERN_PROC_VMMAP, pid];
    Ok(parse_vmmap(&sysctl(&mib)?))
}

/// The executable's path (`KERN_PROC_PATHNAME`).
pub(crate) fn exe(pid: Pid) -> std::io::Result<String> {
    let mib = [
        libc::CTL_KERN,
        libc::KERN_PROC,
        libc::KERN_PROC_PATHNAME,
        pid,
    ];
    let buf = sysctl(&mib)?;
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    if end == 0 {
        return Err(std::io::Error::from(std::io::ErrorKind::NotFound));
    }
    Ok(String::from_utf8_lossy(&buf[..end]).into_owned())
}

/// The command line (`KERN_PROC_ARGS`).
pub(crate) fn args(pid: Pid) -> std::io::Result<Vec<String>> {
    let mib = [libc::CTL_KERN, libc::KERN_PROC, libc::KERN_PROC_ARGS, pid];
    Ok(parse_args(&sysctl(&mib)?))
}
