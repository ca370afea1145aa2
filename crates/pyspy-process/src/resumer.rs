//! Resuming SIGSTOP-paused own children when this process dies mid-pause.
//!
//! A target that is this process's own child is paused with `SIGSTOP` (see
//! `pause.rs`), and nothing in the kernel undoes that when the profiler
//! dies, whether by SIGKILL or by a SIGTERM or SIGINT that Node's default
//! action turns into an exit without running any code of ours. So, on the
//! first such pause, a small helper process is forked: it blocks on a pipe
//! whose write end only this process holds, and is told (8-byte messages)
//! which pids are stopped and which were continued. When this process dies,
//! for any reason, the pipe reaches end-of-file and the helper sends
//! `SIGCONT` to every pid still marked stopped, then exits. It holds no
//! other file descriptors (stdio is `/dev/null`) and blocks all signals.
//!
//! Best effort: when the helper cannot be started, pausing works as before.

use std::sync::OnceLock;

use crate::Pid;

/// The pipe's write end, once the helper runs (`None`: it could not start).
static RESUMER: OnceLock<Option<i32>> = OnceLock::new();

/// Most pids the helper remembers as stopped at once.
const SLOTS: usize = 1024;

/// Marks `pid` as stopped by us (before the `SIGSTOP` is sent).
pub(crate) fn stopping(pid: Pid) {
    send(pid, 1);
}

/// Marks `pid` as continued (after the `SIGCONT` was sent).
pub(crate) fn continued(pid: Pid) {
    if RESUMER.get().is_some() {
        send(pid, 0);
    }
}

fn send(pid: Pid, op: i32) {
    let Some(fd) = *RESUMER.get_or_init(start) else {
        return;
    };
    let mut msg = [0u8; 8];
    msg[..4].copy_from_slice(&pid.to_ne_bytes());
    msg[4..].copy_from_slice(&op.to_ne_bytes());
    loop {
        // SAFETY: writes 8 bytes from a live buffer; 8 < PIPE_BUF, so the
        // write is atomic and messages of several threads never interleave.
        let n = unsafe { libc::write(fd, msg.as_ptr().cast(), msg.len()) };
        if n >= 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return;
        }
    }
}

/// Forks the helper; returns the write end of its pipe.
fn start() -> Option<i32> {
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 fills the two-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return None;
    }
    let (read_end, write_end) = (fds[0], fds[1]);
    // SAFETY: the child only makes async-signal-safe system calls (no
    // allocation, no locks) and ends with `_exit`, as a child forked from a
    // multithreaded process must.
    match unsafe { libc::fork() } {
        -1 => {
            unsafe {
                libc::close(read_end);
                libc::close(write_end);
            }
            None
        }
        0 => unsafe { helper(read_end) },
        _ => {
            unsafe { libc::close(read_end) };
            Some(write_end)
        }
    }
}

/// The helper's whole life (in the forked child).
unsafe fn helper(read_end: i32) -> ! {
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::sigprocmask(libc::SIG_SETMASK, &all, std::ptr::null_mut());
        libc::prctl(
            libc::PR_SET_NAME,
            c"pyspy-resume".as_ptr() as libc::c_ulong,
            0,
            0,
            0,
        );
        // Keep the pipe at fd 3 and nothing else: stdio to /dev/null, every
        // other descriptor (sockets, pipes of the parent) closed.
        let high = libc::fcntl(read_end, libc::F_DUPFD, 64);
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            for fd in 0..3 {
                libc::dup2(null, fd);
            }
        }
        let pipe = if high >= 0 { high } else { read_end };
        libc::dup2(pipe, 3);
        if libc::syscall(libc::SYS_close_range, 4u32, u32::MAX, 0u32) != 0 {
            for fd in 4..65536 {
                libc::close(fd);
            }
        }
        let mut stopped = [0 as Pid; SLOTS];
        loop {
            let mut msg = [0u8; 8];
            let n = libc::read(3, msg.as_mut_ptr().cast(), msg.len());
            if n < 0 && *libc::__errno_location() == libc::EINTR {
                continue;
            }
            if n != 8 {
                break; // end of file: the profiler is gone
            }
            let pid = Pid::from_ne_bytes([msg[0], msg[1], msg[2], msg[3]]);
            let op = i32::from_ne_bytes([msg[4], msg[5], msg[6], msg[7]]);
            if op == 1 {
                if let Some(slot) = stopped.iter_mut().find(|p| **p == 0) {
                    *slot = pid;
                }
            } else if let Some(slot) = stopped.iter_mut().find(|p| **p == pid) {
                *slot = 0;
            }
        }
        for &pid in stopped.iter().filter(|p| **p > 0) {
            libc::kill(pid, libc::SIGCONT);
        }
        libc::_exit(0)
    }
}
