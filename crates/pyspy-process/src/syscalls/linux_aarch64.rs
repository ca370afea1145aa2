//! Names of the aarch64 Linux system calls a blocked thread is commonly in
//! (the generic table of `include/uapi/asm-generic/unistd.h`: aarch64 has
//! no `poll`, `select`, `pause`, `epoll_wait`, only their newer forms).

/// The name of aarch64 system call `nr`, for the ones a blocked thread is
/// commonly found in (`None` for the rest: the number is still known).
pub fn syscall_name(nr: i64) -> Option<&'static str> {
    Some(match nr {
        22 => "epoll_pwait",
        63 => "read",
        64 => "write",
        65 => "readv",
        67 => "pread64",
        72 => "pselect6",
        73 => "ppoll",
        95 => "waitid",
        98 => "futex",
        101 => "nanosleep",
        115 => "clock_nanosleep",
        128 => "restart_syscall",
        202 => "accept",
        207 => "recvfrom",
        212 => "recvmsg",
        242 => "accept4",
        243 => "recvmmsg",
        260 => "wait4",
        441 => "epoll_pwait2",
        449 => "futex_waitv",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn futex_and_restart_match_libc() {
        assert_eq!(super::syscall_name(libc::SYS_futex), Some("futex"));
        assert_eq!(
            super::syscall_name(libc::SYS_restart_syscall),
            Some("restart_syscall")
        );
        assert_eq!(
            super::syscall_name(libc::SYS_clock_nanosleep),
            Some("clock_nanosleep")
        );
        assert_eq!(
            super::syscall_name(libc::SYS_epoll_pwait),
            Some("epoll_pwait")
        );
    }
}
