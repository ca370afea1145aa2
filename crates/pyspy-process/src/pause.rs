//! Pausing a process with ptrace, bounded in time.
//!
//! `remoteprocess::Process::lock` waits for each thread's stop with a
//! blocking `waitpid`, which can wait forever on a process that is exiting.
//! Here every wait polls against a deadline, so a dying target costs at
//! most [`PAUSE_DEADLINE`] and never a hang. Threads are seized with
//! `PTRACE_SEIZE` + `PTRACE_INTERRUPT` (no signals are sent to the target),
//! and detached when the guard drops; if the profiler itself dies, the
//! kernel detaches them, so the target is always resumed.

use std::time::{Duration, Instant};

use crate::linux::Process;
use crate::{Error, Pid};

/// Longest time spent pausing before giving up.
pub const PAUSE_DEADLINE: Duration = Duration::from_millis(1000);
/// Rounds of re-listing threads to catch ones started while pausing.
const MAX_ROUNDS: usize = 16;

/// Keeps the target paused; resumes it when dropped. The kernel also resumes
/// it if this process dies, because ptrace-seized threads are detached when
/// their tracer exits.
pub struct PauseGuard {
    tids: Vec<Pid>,
}

impl Drop for PauseGuard {
    fn drop(&mut self) {
        for &tid in &self.tids {
            // SAFETY: plain syscall on a thread we seized; errors (the thread
            // is gone) need no handling.
            unsafe {
                libc::ptrace(libc::PTRACE_DETACH, tid, 0, 0);
            }
        }
    }
}

enum Stop {
    Stopped,
    Gone,
}

pub(crate) fn pause(process: &Process) -> Result<PauseGuard, Error> {
    let pid = process.pid();
    let deadline = Instant::now() + PAUSE_DEADLINE;
    let mut guard = PauseGuard { tids: Vec::new() };
    let mut seen: Vec<Pid> = Vec::new();
    for _ in 0..MAX_ROUNDS {
        let fresh: Vec<Pid> = process
            .tids()
            .into_iter()
            .filter(|t| !seen.contains(t))
            .collect();
        if fresh.is_empty() {
            break;
        }
        for tid in fresh {
            seen.push(tid);
            // SAFETY: plain ptrace syscalls on a tid of the target.
            if unsafe { libc::ptrace(libc::PTRACE_SEIZE, tid, 0, 0) } != 0 {
                match errno() {
                    libc::ESRCH => continue,
                    libc::EPERM if process.thread_running(tid).is_some() => {
                        return Err(Error::PermissionDenied { pid });
                    }
                    libc::EPERM => continue,
                    e => {
                        return Err(pause_failed(
                            process,
                            format!("PTRACE_SEIZE of thread {tid}: errno {e}"),
                        ))
                    }
                }
            }
            guard.tids.push(tid);
            if unsafe { libc::ptrace(libc::PTRACE_INTERRUPT, tid, 0, 0) } != 0 {
                continue; // exited in between; the detach in drop is harmless
            }
            match wait_for_stop(tid, deadline) {
                Ok(Stop::Stopped) => {}
                Ok(Stop::Gone) => guard.tids.retain(|t| *t != tid),
                Err(()) => {
                    return Err(pause_failed(
                        process,
                        format!("thread {tid} did not stop within {PAUSE_DEADLINE:?}"),
                    ));
                }
            }
        }
    }
    if guard.tids.is_empty() {
        return Err(if process.is_alive() {
            Error::PermissionDenied { pid }
        } else {
            Error::Exited { pid }
        });
    }
    Ok(guard)
}

fn wait_for_stop(tid: Pid, deadline: Instant) -> Result<Stop, ()> {
    let mut spins = 0u32;
    loop {
        match poll_stop(tid) {
            Poll::Stopped => return Ok(Stop::Stopped),
            Poll::Gone => return Ok(Stop::Gone),
            Poll::Pending => {}
        }
        if Instant::now() > deadline {
            return Err(());
        }
        spins += 1;
        if spins < 200 {
            std::thread::yield_now();
        } else {
            std::thread::sleep(Duration::from_micros(50));
        }
    }
}

enum Poll {
    Stopped,
    Gone,
    Pending,
}

/// One non-blocking look at `tid`. An exit is only peeked at (`WNOWAIT`),
/// never reaped: the target may be our own child (launch mode), whose exit
/// status belongs to whoever spawned it.
fn poll_stop(tid: Pid) -> Poll {
    // SAFETY: zeroed siginfo is a valid out-parameter; waitid only writes it.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let flags = libc::WEXITED | libc::WSTOPPED | libc::WNOHANG | libc::WNOWAIT | libc::__WALL;
    if unsafe { libc::waitid(libc::P_PID, tid as libc::id_t, &mut info, flags) } != 0 {
        return Poll::Gone; // ECHILD: not ours to wait for any more
    }
    // SAFETY: si_pid is valid for SIGCHLD-style siginfo filled by waitid.
    if unsafe { info.si_pid() } == 0 {
        return Poll::Pending;
    }
    if matches!(
        info.si_code,
        libc::CLD_EXITED | libc::CLD_KILLED | libc::CLD_DUMPED
    ) {
        return Poll::Gone;
    }
    // A stop: consume it (only the stop) and see which kind it is.
    let mut status = 0;
    let r = unsafe { libc::waitpid(tid, &mut status, libc::__WALL | libc::WNOHANG) };
    if r != tid || !libc::WIFSTOPPED(status) {
        return if r == tid { Poll::Gone } else { Poll::Pending };
    }
    if (status >> 16) & 0xff == libc::PTRACE_EVENT_STOP {
        return Poll::Stopped;
    }
    // A signal meant for the target: hand it back and keep waiting.
    unsafe { libc::ptrace(libc::PTRACE_CONT, tid, 0, libc::WSTOPSIG(status)) };
    Poll::Pending
}

fn pause_failed(process: &Process, reason: String) -> Error {
    if process.is_alive() {
        Error::Pause {
            pid: process.pid(),
            reason,
        }
    } else {
        Error::Exited { pid: process.pid() }
    }
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn sleeper() -> std::process::Child {
        Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep")
    }

    #[test]
    fn pauses_and_resumes_a_child() {
        let mut child = sleeper();
        let process = Process::open(child.id() as Pid).unwrap();
        {
            let _guard = process.pause().expect("pause");
            let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.id())).unwrap();
            assert!(stat.contains(") t "), "traced stop while paused: {stat}");
        }
        // Resumed: no longer in a traced stop (it may be briefly running).
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.id())).unwrap();
        assert!(
            !stat.contains(") t "),
            "resumed after the guard dropped: {stat}"
        );
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn an_exited_process_fails_fast_without_hanging() {
        let mut child = sleeper();
        let process = Process::open(child.id() as Pid).unwrap();
        child.kill().unwrap();
        // Zombie until reaped: pausing it must fail, quickly.
        let t = Instant::now();
        let result = process.pause();
        assert!(result.is_err());
        assert!(t.elapsed() < PAUSE_DEADLINE * 2);
        // The exit status is still there for the parent: pausing never reaps.
        assert!(child.wait().is_ok());
    }
}
