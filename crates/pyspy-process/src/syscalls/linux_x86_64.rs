//! Names of the x86-64 Linux system calls a blocked thread is commonly in.

/// The name of x86-64 system call `nr`, for the ones a blocked thread is
/// commonly found in (`None` for the rest: the number is still known).
pub fn syscall_name(nr: i64) -> Option<&'static str> {
    Some(match nr {
        0 => "read",
        1 => "write",
        7 => "poll",
        17 => "pread64",
        19 => "readv",
        23 => "select",
        34 => "pause",
        35 => "nanosleep",
        43 => "accept",
        45 => "recvfrom",
        47 => "recvmsg",
        61 => "wait4",
        202 => "futex",
        219 => "restart_syscall",
        230 => "clock_nanosleep",
        232 => "epoll_wait",
        247 => "waitid",
        270 => "pselect6",
        271 => "ppoll",
        281 => "epoll_pwait",
        288 => "accept4",
        299 => "recvmmsg",
        441 => "epoll_pwait2",
        449 => "futex_waitv",
        _ => return None,
    })
}
