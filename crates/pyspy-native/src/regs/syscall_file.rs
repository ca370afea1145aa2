//! The stack and instruction pointers of a stopped thread that we do not
//! trace, from `/proc/PID/task/TID/syscall` (Linux, any architecture).

use pyspy_process::Pid;

/// `(sp, pc)` of `tid`, when the kernel tells them.
pub(super) fn sp_pc(pid: Pid, tid: Pid) -> Option<(u64, u64)> {
    let path = format!("/proc/{pid}/task/{tid}/syscall");
    std::fs::read(path)
        .ok()
        .and_then(|t| parse_syscall_file(&t))
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
