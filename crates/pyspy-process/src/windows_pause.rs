//! Pausing a Windows process: every thread suspended with `SuspendThread`,
//! resumed when the guard drops, on errors too.
//!
//! `SuspendThread` only asks: the thread may still run until the kernel
//! gets to it, so each suspension is completed with `GetThreadContext`,
//! which returns once the thread has stopped. Threads started while pausing
//! are caught by listing again until a listing brings no new thread (at
//! most [`MAX_ROUNDS`] times, within [`PAUSE_DEADLINE`]). Suspensions nest
//! (Windows keeps a count per thread), so pauses of one target from several
//! threads of ours need no turn-taking. Unlike a ptrace stop on Linux, a
//! suspension outlives a profiler killed mid-pause (`TerminateProcess`):
//! pauses are kept short (one read of every stack) for that reason.

use std::time::{Duration, Instant};

use windows_sys::Win32::System::Diagnostics::Debug::{
    GetThreadContext, CONTEXT, CONTEXT_CONTROL_AMD64,
};
use windows_sys::Win32::System::Threading::{
    OpenThread, ResumeThread, SuspendThread, THREAD_GET_CONTEXT, THREAD_SUSPEND_RESUME,
};

use crate::windows::{last_error, thread_list, Handle, Process};
use crate::{Error, Pid};

/// Longest time spent pausing before giving up (and resuming).
pub const PAUSE_DEADLINE: Duration = Duration::from_millis(1000);
/// Rounds of re-listing threads to catch ones started while pausing.
const MAX_ROUNDS: usize = 16;

/// Keeps the target's threads suspended; resumes them when dropped.
pub struct PauseGuard {
    suspended: Vec<(Pid, Handle)>,
}

impl Drop for PauseGuard {
    fn drop(&mut self) {
        for (_, thread) in &self.suspended {
            // SAFETY: the handle is open with THREAD_SUSPEND_RESUME and was
            // suspended once by us; this undoes exactly that suspension.
            unsafe { ResumeThread(thread.0) };
        }
    }
}

/// `GetThreadContext` needs a 16-byte aligned `CONTEXT`.
#[repr(C, align(16))]
struct AlignedContext(CONTEXT);

pub(crate) fn pause(process: &Process) -> Result<PauseGuard, Error> {
    let deadline = Instant::now() + PAUSE_DEADLINE;
    // Dropping the guard on any early return resumes what was suspended.
    let mut guard = PauseGuard {
        suspended: Vec::new(),
    };
    let own_pid = std::process::id() as Pid;
    for _ in 0..MAX_ROUNDS {
        if Instant::now() >= deadline {
            break;
        }
        let tids = thread_list(process.pid()).map_err(|e| process.io_error("thread list", e))?;
        let mut new = 0;
        for tid in tids {
            if guard.suspended.iter().any(|(t, _)| *t == tid) {
                continue;
            }
            // Reading ourselves (tests do): never suspend the reader.
            if process.pid() == own_pid && tid as u32 == current_thread_id() {
                continue;
            }
            new += 1;
            if let Some(thread) = suspend(tid) {
                guard.suspended.push((tid, thread));
            }
        }
        if new == 0 {
            if guard.suspended.is_empty() {
                return Err(process.denied_or_exited());
            }
            return Ok(guard);
        }
    }
    Err(Error::Pause {
        pid: process.pid(),
        reason: format!(
            "threads kept starting: {} suspended, still new ones after {MAX_ROUNDS} rounds or {} ms",
            guard.suspended.len(),
            PAUSE_DEADLINE.as_millis()
        ),
    })
}

fn current_thread_id() -> u32 {
    // SAFETY: plain call.
    unsafe { windows_sys::Win32::System::Threading::GetCurrentThreadId() }
}

/// Suspends thread `tid` and waits until it has stopped; `None` when it
/// is gone or cannot be opened (a thread that exited since the listing).
fn suspend(tid: Pid) -> Option<Handle> {
    // SAFETY: plain call; the result is checked.
    let raw = unsafe { OpenThread(THREAD_SUSPEND_RESUME | THREAD_GET_CONTEXT, 0, tid as u32) };
    if raw.is_null() {
        let _ = last_error();
        return None;
    }
    let thread = Handle(raw);
    // SAFETY: the handle is open with THREAD_SUSPEND_RESUME.
    if unsafe { SuspendThread(thread.0) } == u32::MAX {
        return None;
    }
    // SAFETY: a zeroed CONTEXT is valid input once ContextFlags is set.
    let mut context: AlignedContext = unsafe { std::mem::zeroed() };
    context.0.ContextFlags = CONTEXT_CONTROL_AMD64;
    // SAFETY: the handle has THREAD_GET_CONTEXT; the buffer is aligned.
    // Its answer does not matter: it returns once the thread has stopped.
    unsafe { GetThreadContext(thread.0, &mut context.0) };
    Some(thread)
}
