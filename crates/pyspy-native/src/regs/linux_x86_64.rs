//! Registers of a ptrace-paused thread on Linux x86-64 (`PTRACE_GETREGS`).

use pyspy_process::Pid;

use super::Registers;
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
        let mut r = Registers::default();
        let values = [
            user.rax, user.rdx, user.rcx, user.rbx, user.rsi, user.rdi, user.rbp, user.rsp,
            user.r8, user.r9, user.r10, user.r11, user.r12, user.r13, user.r14, user.r15, user.rip,
        ];
        for (slot, v) in r.regs.iter_mut().zip(values) {
            *slot = Some(v);
        }
        return Ok(r);
    }
    let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    let path = format!("/proc/{pid}/task/{tid}/syscall");
    if let Some((sp, ip)) = std::fs::read(&path)
        .ok()
        .and_then(|t| parse_syscall_file(&t))
    {
        return Ok(Registers::from_ip_sp(ip, sp, None));
    }
    Err(Error::Registers { tid, errno })
}

/// `(sp, pc)` from `/proc/PID/task/TID/syscall` of a stopped thread:
/// `NR ARG1..ARG6 SP PC` inside a system call, `-1 SP PC` outside one;
/// `running` (or anything else) gives `None`.
pub(crate) fn parse_syscall_file(text: &[u8]) -> Option<(u64, u64)> {
    let text = std::str::from_utf8(text).ok()?;
    let fields: Vec<&str> = text.split_whitespace().collect();
    let n = fields.len();
    if !(n == 3 || n == 9) {
        return None;
    }
    let hex = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok();
    let (sp, pc) = (hex(fields[n - 2])?, hex(fields[n - 1])?);
    (sp != 0 && pc != 0).then_some((sp, pc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_syscall_files() {
        assert_eq!(
            parse_syscall_file(b"230 0x1 0x0 0x7ffd 0x0 0x0 0x0 0x7ffc1000 0x7f0012345678\n"),
            Some((0x7ffc1000, 0x7f0012345678))
        );
        assert_eq!(
            parse_syscall_file(b"-1 0x7ffc2000 0x55aa00001234\n"),
            Some((0x7ffc2000, 0x55aa00001234))
        );
        assert_eq!(parse_syscall_file(b"running\n"), None);
        assert_eq!(parse_syscall_file(b""), None);
    }
}
