//! Pausing a process with ptrace, bounded in time.
//!
//! `remoteprocess::Process::lock` waits for each thread's stop with a
//! blocking `waitpid`, which can wait forever on a process that is exiting.
//! Here every wait polls against a deadline, so a dying target costs at
//! most [`PAUSE_DEADLINE`] and never a hang. Threads are seized with
//! `PTRACE_SEIZE` + `PTRACE_INTERRUPT` (no signals are sent to the target),
//! and detached when the guard drops; if the profiler itself dies, the
//! kernel detaches them, so the target is always resumed. A thread that
//! exits while seized reports its exit to us, its tracer, first: the guard
//! collects it, which hands the exit on to the real parent (otherwise the
//! process would stay a zombie its parent never sees while we live).
//!
//! One exception: a target that is this process's own child. Its parent's
//! runtime (Node's libuv) reaps children with `waitpid` from another thread
//! of ours, and `waitpid` reports ptrace stops to any thread of the tracer:
//! it would swallow our stop and report a false exit. Such a target is
//! paused with `SIGSTOP`/`SIGCONT` instead, which a `waitpid` without
//! `WUNTRACED` does not see. The kernel does not undo a `SIGSTOP` when the
//! profiler dies, so a helper process does (`resumer.rs`): killed mid-pause
//! by any signal, SIGKILL included, the profiler leaves no child stopped.
//!
//! Pauses of one target from several threads of this process (concurrent
//! `dump()` calls, a recording and a dump at once) take turns: a thread can
//! be traced by only one tracer thread, so a second `PTRACE_SEIZE` would
//! fail with `EPERM`, and a second `SIGSTOP` pause would be ended by the
//! first one's `SIGCONT` while it still reads. A pause waits (bounded by
//! [`PAUSE_DEADLINE`]) for the one before it to end.

use std::sync::{Condvar, Mutex};
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
    /// Set when paused with SIGSTOP: the pid to send SIGCONT.
    continue_pid: Option<Pid>,
    /// A seized target that is this process's own child: its exit is left
    /// for the code that spawned it to collect.
    own_leader: Option<Pid>,
    /// This process's turn to pause the target; released after the resume
    /// (fields drop after `drop` has run).
    _turn: Turn,
}

/// Targets some thread of this process is pausing now.
static PAUSING: Mutex<Vec<Pid>> = Mutex::new(Vec::new());
static TURN_ENDED: Condvar = Condvar::new();

/// The right to pause one target, held by one thread of this process at a
/// time.
struct Turn(Pid);

impl Turn {
    /// Waits until no other thread of this process is pausing `pid`, or
    /// until `deadline`.
    fn take(pid: Pid, deadline: Instant) -> Option<Turn> {
        let mut pausing = PAUSING.lock().unwrap_or_else(|p| p.into_inner());
        while pausing.contains(&pid) {
            let left = deadline.checked_duration_since(Instant::now())?;
            pausing = TURN_ENDED
                .wait_timeout(pausing, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        pausing.push(pid);
        Some(Turn(pid))
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut pausing = PAUSING.lock().unwrap_or_else(|p| p.into_inner());
        pausing.retain(|&p| p != self.0);
        drop(pausing);
        TURN_ENDED.notify_all();
    }
}

impl Drop for PauseGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.continue_pid {
            // SAFETY: plain syscall; an exited target needs nothing.
            unsafe { libc::kill(pid, libc::SIGCONT) };
            crate::resumer::continued(pid);
        }
        for &tid in &self.tids {
            // SAFETY: plain syscall on a thread we seized.
            if unsafe { libc::ptrace(libc::PTRACE_DETACH, tid, 0, 0) } != 0 {
                release(tid, self.own_leader);
            }
        }
    }
}

/// Lets go of a seized thread that `PTRACE_DETACH` refused: one that
/// exited while seized (as its tracer this thread holds its exit, and the
/// process cannot finish exiting for its real parent until that exit is
/// collected: collecting it hands the process back, it reaps nothing of
/// ours) or one still running (never stopped: stop it, then detach).
fn release(tid: Pid, own_leader: Option<Pid>) {
    let deadline = Instant::now() + RELEASE_DEADLINE;
    // SAFETY: plain syscall on a thread we seized; fails if it is gone.
    let interrupted = unsafe { libc::ptrace(libc::PTRACE_INTERRUPT, tid, 0, 0) } == 0;
    loop {
        match poll_stop(tid) {
            Poll::Stopped => {
                // SAFETY: as above; the thread is now in a ptrace stop.
                unsafe { libc::ptrace(libc::PTRACE_DETACH, tid, 0, 0) };
                return;
            }
            Poll::Gone => {
                collect_exit(tid, own_leader);
                return;
            }
            Poll::Pending if interrupted && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_micros(200));
            }
            Poll::Pending => return,
        }
    }
}

/// Collects the exit of a tracee that exited while seized (`__WALL`: it
/// may be a thread), if there is one to collect and it is not the exit of
/// this process's own child (`own_leader`), which its spawner collects.
fn collect_exit(tid: Pid, own_leader: Option<Pid>) {
    if own_leader == Some(tid) {
        return;
    }
    let mut status = 0;
    // SAFETY: plain syscall; only ever about a thread we traced.
    unsafe { libc::waitpid(tid, &mut status, libc::__WALL | libc::WNOHANG) };
}

/// How long [`release`] waits for a still-running seized thread to stop.
const RELEASE_DEADLINE: Duration = Duration::from_millis(200);

enum Stop {
    Stopped,
    Gone,
}

pub(crate) fn pause(process: &Process) -> Result<PauseGuard, Error> {
    let pid = process.pid();
    let deadline = Instant::now() + PAUSE_DEADLINE;
    let Some(turn) = Turn::take(pid, deadline) else {
        return Err(pause_failed(
            process,
            format!("another thread of this process kept it paused for over {PAUSE_DEADLINE:?}"),
        ));
    };
    if !process.child_ptrace_safe() && process.parent_pid() == Some(std::process::id() as Pid) {
        return pause_own_child(process, turn);
    }
    let own = process.parent_pid() == Some(std::process::id() as Pid);
    let mut guard = PauseGuard {
        own_leader: own.then_some(pid),
        tids: Vec::new(),
        continue_pid: None,
        _turn: turn,
    };
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
                        return Err(process.denied_or_exited());
                    }
                    libc::EPERM => continue,
                    // No ptrace at all (qemu-user): nothing was seized yet.
                    libc::ENOSYS if guard.tids.is_empty() => {
                        drop(guard);
                        return Err(Error::PauseUnavailable { pid });
                    }
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
                Ok(Stop::Gone) => {
                    // Exited while seized: its exit is ours to hand back.
                    guard.tids.retain(|t| *t != tid);
                    collect_exit(tid, guard.own_leader);
                }
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
        drop(guard);
        return Err(process.denied_or_exited());
    }
    Ok(guard)
}

/// Group-stops our own child with SIGSTOP and waits until every thread
/// shows as stopped. A child that is already stopped (job control) is read
/// as it is and not continued afterwards.
fn pause_own_child(process: &Process, turn: Turn) -> Result<PauseGuard, Error> {
    let pid = process.pid();
    let all_stopped = || {
        let tids = process.tids();
        !tids.is_empty()
            && tids.iter().all(|&t| {
                process
                    .thread_state(t)
                    .is_none_or(|s| s == b'T' || s == b't')
            })
    };
    if all_stopped() {
        return Ok(PauseGuard {
            own_leader: None,
            tids: Vec::new(),
            continue_pid: None,
            _turn: turn,
        });
    }
    // Told first, so that the helper resumes it should we die from here on.
    crate::resumer::stopping(pid);
    // SAFETY: plain syscall on our own child.
    if unsafe { libc::kill(pid, libc::SIGSTOP) } != 0 {
        let err = errno();
        crate::resumer::continued(pid);
        return Err(pause_failed(process, format!("SIGSTOP: errno {err}")));
    }
    let guard = PauseGuard {
        own_leader: None,
        tids: Vec::new(),
        continue_pid: Some(pid),
        _turn: turn,
    };
    let deadline = Instant::now() + PAUSE_DEADLINE;
    while !all_stopped() {
        if !process.is_alive() {
            return Err(Error::Exited { pid });
        }
        if Instant::now() > deadline {
            return Err(pause_failed(
                process,
                format!("it did not stop within {PAUSE_DEADLINE:?}"),
            ));
        }
        std::thread::sleep(Duration::from_micros(100));
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

    /// A `sleep` that is not our child (a grandchild under `sh`), as most
    /// attach targets are; returns the `sh` and the sleep's pid.
    fn grandchild_sleeper() -> (std::process::Child, Pid) {
        use std::io::BufRead;
        let mut sh = Command::new("sh")
            .args(["-c", "sleep 30 & echo $!; wait"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spawn sh");
        let mut line = String::new();
        std::io::BufReader::new(sh.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        (sh, line.trim().parse().unwrap())
    }

    #[test]
    fn pauses_and_resumes_with_ptrace() {
        let (mut sh, pid) = grandchild_sleeper();
        let process = Process::open(pid).unwrap();
        for _ in 0..10 {
            let _guard = process.pause().expect("pause");
            assert_eq!(
                process.thread_state(pid),
                Some(b't'),
                "traced stop while paused"
            );
        }
        // Resumed: no longer in a traced stop (it may be briefly running).
        assert_ne!(
            process.thread_state(pid),
            Some(b't'),
            "resumed after the guard dropped"
        );
        unsafe { libc::kill(pid, libc::SIGKILL) };
        sh.wait().unwrap();
    }

    #[test]
    fn threads_of_one_process_take_turns_pausing_a_target() {
        let (mut sh, pid) = grandchild_sleeper();
        let process = std::sync::Arc::new(Process::open(pid).unwrap());
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let process = process.clone();
                std::thread::spawn(move || {
                    (0..25)
                        .map(|_| {
                            let guard = process.pause().map_err(|e| e.to_string())?;
                            std::thread::sleep(Duration::from_micros(200));
                            drop(guard);
                            Ok(())
                        })
                        .collect::<Result<Vec<()>, String>>()
                })
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap().map(|v| v.len()), Ok(25));
        }
        assert_ne!(process.thread_state(pid), Some(b't'), "resumed at the end");
        unsafe { libc::kill(pid, libc::SIGKILL) };
        sh.wait().unwrap();
    }

    #[test]
    fn pauses_its_own_child_with_sigstop_and_never_reaps_it() {
        let mut child = sleeper();
        let process = Process::open(child.id() as Pid).unwrap();
        for _ in 0..20 {
            let guard = process.pause().expect("pause");
            assert_eq!(process.thread_state(child.id() as Pid), Some(b'T'));
            assert_eq!(guard.continue_pid, Some(child.id() as Pid));
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "still running, exit status not stolen"
        );
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn a_paused_sleeper_is_seen_inside_a_syscall() {
        let (mut sh, pid) = grandchild_sleeper();
        let process = Process::open(pid).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let guard = process.pause().expect("pause");
        assert_eq!(
            process.thread_in_syscall(pid),
            Some(true),
            "sleep waits in a syscall"
        );
        drop(guard);
        unsafe { libc::kill(pid, libc::SIGKILL) };
        sh.wait().unwrap();
    }

    #[test]
    fn a_target_killed_while_paused_is_handed_back_to_its_parent() {
        // Seized by this thread, then killed: its exit goes to us as its
        // tracer first. Unless collected, its real parent (the shell) never
        // sees it exit while this thread lives.
        let (mut sh, pid) = grandchild_sleeper();
        let process = Process::open(pid).unwrap();
        let guard = process.pause().expect("pause");
        unsafe { libc::kill(pid, libc::SIGKILL) };
        std::thread::sleep(Duration::from_millis(50));
        drop(guard);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if sh.try_wait().unwrap().is_some() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the shell never saw its child exit"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
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
