//! Registers of a ptrace-paused thread on Linux aarch64: `PTRACE_GETREGSET`
//! with `NT_PRSTATUS`, which fills a `user_pt_regs` (x0..x30, sp, pc,
//! pstate); aarch64 has no `PTRACE_GETREGS`.

use pyspy_process::Pid;

use super::{syscall_file, Registers};
use crate::Error;

/// Reads the registers of `tid`, which this very thread must have paused
/// with ptrace. A thread stopped some other way (our own child, paused with
/// `SIGSTOP`) is not traced; for it only the stack and instruction pointers
/// are known, from `/proc/PID/task/TID/syscall`.
pub fn read_registers(pid: Pid, tid: Pid) -> Result<Registers, Error> {
    let mut words = [0u64; 34];
    let mut iov = libc::iovec {
        iov_base: words.as_mut_ptr().cast(),
        iov_len: std::mem::size_of_val(&words),
    };
    // SAFETY: the iovec describes `words`, which outlives the call; the
    // kernel writes at most iov_len bytes and shortens iov_len to what it
    // wrote.
    let rc = unsafe {
        libc::ptrace(
            libc::PTRACE_GETREGSET,
            tid,
            libc::NT_PRSTATUS as usize as *mut libc::c_void,
            &mut iov as *mut libc::iovec as *mut libc::c_void,
        )
    };
    // x0..x30, sp and pc at least: pstate is not needed.
    if rc == 0 && iov.iov_len >= 33 * 8 {
        return Ok(Registers::from_aarch64_user_regs(&words));
    }
    let errno = if rc == 0 {
        libc::EIO
    } else {
        std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
    };
    if let Some((sp, ip)) = syscall_file::sp_pc(pid, tid) {
        return Ok(Registers::from_ip_sp(ip, sp, None));
    }
    Err(Error::Registers { tid, errno })
}
