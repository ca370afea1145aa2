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

// System call numbers differ per architecture (x86-64 has its own table;
// aarch64 uses the generic one), so each has its own file.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
#[path = "syscalls/linux_x86_64.rs"]
mod names;
#[cfg(all(target_os = "linux", target_arch = "aarch64"))]
#[path = "syscalls/linux_aarch64.rs"]
mod names;
#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
#[path = "syscalls/unknown.rs"]
mod names;

pub use names::syscall_name;

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
