//! What a thread was doing, as the kernel shows it, on every platform:
//! one definition for live threads (`/proc`), stopped ones and the threads
//! a core file recorded.

/// What a thread was doing, as the kernel shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    /// On a CPU or waiting for one; for a stopped thread, stopped in user
    /// code (computing).
    Running,
    /// Blocked in a system call; `futex` is the address a `futex` wait
    /// sleeps on (what tells a wait for the GIL from any other wait).
    Blocked {
        /// The futex word's address, for a `futex` call.
        futex: Option<u64>,
        /// The system call's number, when known.
        syscall: Option<i64>,
    },
}

impl Activity {
    /// A thread blocked in Linux system call `nr` with first argument
    /// `arg0`. A timed futex wait interrupted by a ptrace stop (ours: a
    /// previous pause) resumes as `restart_syscall`, whose argument
    /// registers are still the original call's; any other restarted call's
    /// first argument (a `timespec` on the stack, say) never lies inside the
    /// interpreter's structures, which is all the futex is compared with.
    pub fn in_syscall(nr: i64, arg0: u64) -> Activity {
        let futex = cfg!(target_os = "linux") && (nr == FUTEX || nr == RESTART_SYSCALL);
        Activity::Blocked {
            futex: futex.then_some(arg0),
            syscall: Some(nr),
        }
    }
}

/// `SYS_futex` and `SYS_restart_syscall` of this architecture (Linux).
#[cfg(target_os = "linux")]
const FUTEX: i64 = libc::SYS_futex;
#[cfg(target_os = "linux")]
const RESTART_SYSCALL: i64 = libc::SYS_restart_syscall;
#[cfg(not(target_os = "linux"))]
const FUTEX: i64 = -2;
#[cfg(not(target_os = "linux"))]
const RESTART_SYSCALL: i64 = -2;

/// The name of x86-64 system call `nr`, for the ones a blocked thread is
/// commonly found in (`None` for the rest: the number is still known).
pub fn syscall_name(nr: i64) -> Option<&'static str> {
    if !cfg!(all(target_os = "linux", target_arch = "x86_64")) {
        return None;
    }
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

#[cfg(all(test, target_os = "linux", target_arch = "x86_64"))]
mod tests {
    use super::*;

    #[test]
    fn futex_waits_and_their_restarts_carry_the_address() {
        let futex = |a: Activity| match a {
            Activity::Blocked { futex, .. } => futex,
            Activity::Running => None,
        };
        assert_eq!(futex(Activity::in_syscall(202, 0x10)), Some(0x10));
        assert_eq!(futex(Activity::in_syscall(219, 0x10)), Some(0x10));
        assert_eq!(futex(Activity::in_syscall(230, 0x10)), None);
        assert_eq!(syscall_name(230), Some("clock_nanosleep"));
        assert_eq!(syscall_name(9999), None);
    }
}
