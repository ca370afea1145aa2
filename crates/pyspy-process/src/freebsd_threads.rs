//! FreeBSD: each thread's scheduler state for `status.rs`, from one
//! `KERN_PROC_PID | KERN_PROC_INC_THREAD` sysctl per process and sample
//! (what Linux reads from `/proc/PID/task/TID/stat`). Running (`SRUN`) or
//! blocked (sleeping, on a lock); FreeBSD names no system call or futex
//! there, so a wait for the GIL counts as idle.

use std::time::{Duration, Instant};

use crate::freebsd_records::{kip, ProcRecord};
use crate::{freebsd_sysctl as sysctl, Activity, Pid};

/// Whether the OS tells a thread's activity: FreeBSD does, per thread.
pub const OS_THREAD_ACTIVITY: bool = true;

/// How long one listing of a process's threads answers for all of them:
/// about one sample's walk, so a sample costs one sysctl, not one per thread.
const FRESH: Duration = Duration::from_millis(1);

/// The last listing of one process's threads.
#[derive(Default)]
pub struct ThreadFiles {
    last: Option<(Pid, Instant, Vec<ProcRecord>)>,
}

impl ThreadFiles {
    fn record(&mut self, pid: Pid, tid: Pid) -> Option<&ProcRecord> {
        let fresh = self.last.as_ref().is_some_and(|(p, at, recs)| {
            *p == pid && at.elapsed() < FRESH && recs.iter().any(|r| r.tid == tid)
        });
        if !fresh {
            let recs = sysctl::threads(pid).ok()?;
            self.last = Some((pid, Instant::now(), recs));
        }
        let (_, _, recs) = self.last.as_ref()?;
        recs.iter().find(|r| r.tid == tid)
    }

    /// The state as a `/proc` letter (`R`, `S`, `T`, `Z`, `D` for a lock
    /// wait, `I` while starting).
    pub fn state(&mut self, pid: Pid, tid: Pid) -> Option<u8> {
        Some(match self.record(pid, tid)?.stat {
            kip::SRUN => b'R',
            kip::SSLEEP | kip::SWAIT => b'S',
            kip::SLOCK => b'D',
            kip::SSTOP => b'T',
            kip::SZOMB => b'Z',
            _ => b'I',
        })
    }
    /// Running or runnable.
    pub fn running(&mut self, pid: Pid, tid: Pid) -> Option<bool> {
        self.record(pid, tid).map(ProcRecord::running)
    }
    /// Whether a stopped thread was asleep in the kernel when it stopped.
    pub fn in_syscall(&mut self, pid: Pid, tid: Pid) -> Option<bool> {
        match self.stopped_activity(pid, tid)? {
            Activity::Running => Some(false),
            Activity::Blocked { .. } => Some(true),
        }
    }
    /// Running or blocked, of a running process.
    pub fn activity(&mut self, pid: Pid, tid: Pid, _what_blocks: bool) -> Option<Activity> {
        self.record(pid, tid)?.activity()
    }
    /// Computing or blocked, of a stopped (paused) process.
    pub fn stopped_activity(&mut self, pid: Pid, tid: Pid) -> Option<Activity> {
        self.record(pid, tid)?.stopped_activity()
    }
}
