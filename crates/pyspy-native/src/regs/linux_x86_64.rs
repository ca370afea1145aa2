//! Registers of a ptrace-paused thread on Linux x86-64 (`PTRACE_GETREGS`).

use pyspy_process::Pid;

use super::{syscall_file, Arch, Registers};
use crate::Error;

/// Reads the registers of `tid`, which this very thread must have paused
/// with ptrace. A thread stopped some other way (our own child, paused with
/// `SIGSTOP`: see `pyspy-process`'s pause.rs) is not traced; for it only
/// the stack and instruction pointers are known, from
/// `/proc/PID/task/TID/syscall`.
pub fn read_registers(pid: Pid, tid: Pid) -> Result<Registers, Error> {
    // SAFETY: zeroed user_regs_struct is a valid out-parameter that
    // PTRACE_GETREGS fills completely.
    let mut user: libc::user_regs_struct = unsafe { std::mem::zeroed() };
    let rc = unsafe {
        libc::ptrace(
            libc::PTRACE_GETREGS,
            tid,
            std::ptr::null_mut::<libc::c_void>(),
            &mut user as *mut libc::user_regs_struct as *mut libc::c_void,
        )
    };
    if rc == 0 {
        let mut r = Registers::empty(Arch::X86_64);
        let values = [
            user.rax, user.rdx, user.rcx, user.rbx, user.rsi, user.rdi, user.rbp, user.rsp,
            user.r8, user.r9, user.r10, user.r11, user.r12, user.r13, user.r14, user.r15,
        ];
        for (reg, v) in values.into_iter().enumerate() {
            r.set(reg as u16, Some(v));
        }
        r.set_ip(Some(user.rip));
        return Ok(r);
    }
    let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    if let Some((sp, ip)) = syscall_file::sp_pc(pid, tid) {
        return Ok(Registers::from_ip_sp(ip, sp, None));
    }
    Err(Error::Registers { tid, errno })
}
