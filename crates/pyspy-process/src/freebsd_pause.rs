//! FreeBSD: stopping a process with ptrace, and reading it while stopped.
//!
//! `PT_ATTACH` makes us the target's tracer and sends it `SIGSTOP`; once
//! `waitpid` reports that stop, every thread is suspended and `PT_IO`
//! (`PIOD_READ_D`) reads its memory. FreeBSD's `ptrace(2)` serves `PT_IO`
//! only to the tracer of a process that is stopped and whose stop was
//! waited for (`EBUSY` otherwise), so without procfs every read needs a
//! stop: a read outside a pause stops the target for that one call
//! ([`Tracer::stopped`]). `PT_DETACH` resumes it. Nothing is written into
//! the target.
//!
//! A signal that arrives while we wait for our stop is taken out of the
//! way (the target is continued to reach our `SIGSTOP`) and handed back on
//! detach, so the target still gets it.
//!
//! A target that is this process's own child, started by its JavaScript
//! runtime, is not stopped: a ptrace stop is reported to the parent's
//! `waitpid`, which Node's libuv calls for its children and would take for
//! an exit ([`StopError::OwnChild`]; Linux pauses such a child with
//! `SIGSTOP` instead, which needs no ptrace, but FreeBSD's `PT_IO` does).
//! A child we spawned ourselves (`launch.rs`) is declared safe.
//!
//! If this process dies while the target is attached, FreeBSD kills the
//! target when `kern.kill_on_debugger_exit` is 1 (its default) and resumes
//! it when 0: pauses are kept short, and the README says to set it to 0
//! where a profiler may be killed (`kill -9`) mid-pause.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{Error, Pid};

/// Longest wait for the target to stop before the pause is reported as
/// failed (the target is still resumed).
const STOP_DEADLINE: Duration = Duration::from_millis(1000);
/// Signals set aside while stopping, most kept.
const MAX_SET_ASIDE: usize = 8;

/// Our ptrace hold on one process: stops it and resumes it, counting
/// nested pauses, and reads it while stopped.
pub(crate) struct Tracer {
    pid: Pid,
    state: Mutex<State>,
    /// Our own child that no other code of ours waits for.
    child_ptrace_safe: AtomicBool,
}

#[derive(Default)]
struct State {
    /// Pauses (guards) alive; the target is stopped while above zero.
    depth: usize,
    /// Signals that arrived while stopping, delivered on resume.
    set_aside: Vec<i32>,
}

/// Why a stop failed: the errno of `PT_ATTACH` or `waitpid`, or a timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopError {
    Errno(i32),
    /// Exited while being stopped.
    Exited,
    TimedOut,
    /// Our own child, whose stops our runtime's `waitpid` would take.
    OwnChild,
}

/// The address `PT_CONTINUE` and `PT_DETACH` take to mean "go on from
/// where it stopped": `(caddr_t)1` in ptrace(2).
fn where_stopped() -> *mut libc::c_char {
    std::ptr::without_provenance_mut(1)
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

impl Tracer {
    pub(crate) fn new(pid: Pid) -> Tracer {
        Tracer {
            pid,
            state: Mutex::new(State::default()),
            child_ptrace_safe: AtomicBool::new(false),
        }
    }

    /// Declares the target our child that only we wait for (we spawned it).
    pub(crate) fn set_child_ptrace_safe(&self) {
        self.child_ptrace_safe.store(true, Ordering::Relaxed);
    }

    fn own_child(&self) -> bool {
        !self.child_ptrace_safe.load(Ordering::Relaxed)
            && crate::freebsd_sysctl::process(self.pid)
                .is_ok_and(|p| p.ppid == std::process::id() as Pid)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `read` with the target stopped: inside a pause as it is, else
    /// stopped for this call only.
    pub(crate) fn stopped<R>(&self, read: impl FnOnce() -> R) -> Result<R, StopError> {
        let mut state = self.lock();
        if state.depth > 0 {
            return Ok(read());
        }
        self.stop(&mut state)?;
        let out = read();
        self.resume(&mut state);
        Ok(out)
    }

    /// Stops the target until the guard drops.
    pub(crate) fn pause(self: &Arc<Self>) -> Result<PauseGuard, StopError> {
        let mut state = self.lock();
        if state.depth == 0 {
            self.stop(&mut state)?;
        }
        state.depth += 1;
        Ok(PauseGuard {
            tracer: self.clone(),
        })
    }

    fn stop(&self, state: &mut State) -> Result<(), StopError> {
        if self.own_child() {
            return Err(StopError::OwnChild);
        }
        // SAFETY: PT_ATTACH takes no address or data.
        if unsafe { libc::ptrace(libc::PT_ATTACH, self.pid, std::ptr::null_mut(), 0) } != 0 {
            return Err(StopError::Errno(errno()));
        }
        let deadline = Instant::now() + STOP_DEADLINE;
        loop {
            let mut status = 0;
            let options = if Instant::now() < deadline {
                libc::WNOHANG
            } else {
                // Past the deadline the target is still ours: wait for its
                // stop (it comes once its threads leave the kernel) so it can
                // be detached, never left traced.
                0
            };
            // SAFETY: `status` is an out-parameter.
            let got = unsafe { libc::waitpid(self.pid, &mut status, options) };
            if got == 0 {
                std::thread::sleep(Duration::from_micros(50));
                continue;
            }
            if got < 0 {
                let e = errno();
                if e == libc::EINTR {
                    continue;
                }
                return Err(StopError::Errno(e));
            }
            if !libc::WIFSTOPPED(status) {
                // Exited or killed: waiting for it as its tracer handed the
                // exit on to its real parent.
                return Err(StopError::Exited);
            }
            let sig = libc::WSTOPSIG(status);
            if sig == libc::SIGSTOP {
                if options == 0 {
                    self.resume(state);
                    return Err(StopError::TimedOut);
                }
                return Ok(());
            }
            // Another signal reached it first: keep it for the resume, and
            // let the target run on to our SIGSTOP.
            if state.set_aside.len() < MAX_SET_ASIDE && !state.set_aside.contains(&sig) {
                state.set_aside.push(sig);
            }
            // SAFETY: PT_CONTINUE from where it stopped (address 1), no signal.
            unsafe { libc::ptrace(libc::PT_CONTINUE, self.pid, where_stopped(), 0) };
        }
    }

    fn resume(&self, state: &mut State) {
        let mut pending = std::mem::take(&mut state.set_aside).into_iter();
        let first = pending.next().unwrap_or(0);
        // SAFETY: PT_DETACH from where it stopped (address 1), delivering
        // the first set-aside signal.
        let rc = unsafe { libc::ptrace(libc::PT_DETACH, self.pid, where_stopped(), first) };
        if rc != 0 {
            // Killed while stopped: collecting it as tracer hands the exit
            // on to its parent.
            let mut status = 0;
            // SAFETY: `status` is an out-parameter.
            unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) };
            return;
        }
        for sig in pending {
            // SAFETY: re-sends a signal the target was already sent.
            unsafe { libc::kill(self.pid, sig) };
        }
    }
}

/// Keeps the target stopped; resumes it (`PT_DETACH`) when the last guard
/// drops.
pub struct PauseGuard {
    tracer: Arc<Tracer>,
}

impl Drop for PauseGuard {
    fn drop(&mut self) {
        let mut state = self.tracer.lock();
        state.depth = state.depth.saturating_sub(1);
        if state.depth == 0 {
            self.tracer.resume(&mut state);
        }
    }
}

/// The error a failed stop means for the caller: the target exited, ptrace
/// was refused (`EPERM`; `EBUSY`: another tracer holds it), or the stop did
/// not come in time.
pub(crate) fn stop_error(pid: Pid, e: StopError, denied: impl FnOnce(&str) -> Error) -> Error {
    match e {
        StopError::Exited | StopError::Errno(libc::ESRCH) => Error::Exited { pid },
        StopError::Errno(libc::EPERM) => denied(" (PT_ATTACH: EPERM)"),
        StopError::Errno(libc::EBUSY) => denied(
            " (PT_ATTACH: EBUSY: the process is already traced, by a debugger, truss or \
             another profiler)",
        ),
        StopError::Errno(libc::ENOSYS) | StopError::OwnChild => Error::PauseUnavailable { pid },
        StopError::Errno(e) => Error::Pause {
            pid,
            reason: format!("ptrace: {}", std::io::Error::from_raw_os_error(e)),
        },
        StopError::TimedOut => Error::Pause {
            pid,
            reason: format!(
                "it did not stop within {} ms (a thread in an uninterruptible wait?); it was \
                 resumed",
                STOP_DEADLINE.as_millis()
            ),
        },
    }
}

/// Reads `buf.len()` bytes at `addr` of a stopped, traced process with
/// `PT_IO`; the errno on failure (`EFAULT` for an unmapped range, 0 for a
/// short read).
pub(crate) fn pt_io_read(pid: Pid, addr: usize, buf: &mut [u8]) -> Result<(), i32> {
    if buf.is_empty() {
        return Ok(());
    }
    let mut desc = libc::ptrace_io_desc {
        piod_op: libc::PIOD_READ_D,
        piod_offs: addr as *mut libc::c_void,
        piod_addr: buf.as_mut_ptr().cast(),
        piod_len: buf.len(),
    };
    // SAFETY: the descriptor names our buffer and its length; the kernel
    // writes at most that many bytes into it.
    let rc = unsafe {
        libc::ptrace(
            libc::PT_IO,
            pid,
            (&mut desc as *mut libc::ptrace_io_desc).cast(),
            0,
        )
    };
    if rc != 0 {
        return Err(errno());
    }
    if desc.piod_len != buf.len() {
        return Err(0);
    }
    Ok(())
}
