//! Whether a thread was running, waiting for the GIL, or idle.
//!
//! The kernel says whether a thread is on a CPU and, when it is blocked,
//! in which system call and on which futex. A thread blocked on a futex
//! inside the GIL's own structure (its mutex or condition variable; 2.7's
//! semaphore) is waiting to take the GIL: it wants to run, so it is active.
//! Every other blocked thread is idle. This module does not read `/proc`
//! (`pyspy_process::ThreadFiles` does) nor find the GIL (`pyspy_cpython`
//! does).

use std::ops::Range;

use pyspy_cpython::{GilLocation, ThreadStatus};
use pyspy_process::{Activity, MemoryExt, Process};

/// The GIL's byte range in the target, resolved once known.
#[derive(Debug, Clone)]
pub(crate) struct GilRange {
    location: GilLocation,
    range: Option<Range<u64>>,
}

impl GilRange {
    pub(crate) fn new(location: GilLocation) -> GilRange {
        let range = match location {
            GilLocation::At { addr, len } => {
                Some(addr as u64..(addr as u64).saturating_add(len as u64))
            }
            _ => None,
        };
        GilRange { location, range }
    }

    /// The range, reading the GIL pointer when it lives behind one (set
    /// once when the interpreter starts; 2.7 creates its GIL with the first
    /// thread): `None` while unknown.
    pub(crate) fn get(&mut self, process: &Process) -> Option<&Range<u64>> {
        if self.range.is_none() {
            if let GilLocation::Behind { slot, len } = self.location {
                let gil = process.read_usize(slot).ok().filter(|g| *g != 0)? as u64;
                self.range = Some(gil..gil.saturating_add(len as u64));
            }
        }
        self.range.as_ref()
    }
}

/// The name (else the number) of the system call a blocked thread was in.
pub(crate) fn blocked_in(activity: Option<Activity>) -> Option<String> {
    match activity {
        Some(Activity::Blocked {
            syscall: Some(nr), ..
        }) => Some(
            pyspy_process::syscall_name(nr)
                .map(str::to_owned)
                .unwrap_or_else(|| format!("syscall {nr}")),
        ),
        _ => None,
    }
}

/// The status of a thread that the kernel found doing `activity` (`None`:
/// unknown, then a thread with Python frames counts as running where the OS
/// tells activity at all, Linux; elsewhere, Windows, the interpreter's own
/// state decides: the GIL holder runs, every other thread is idle).
pub(crate) fn classify(
    activity: Option<Activity>,
    gil: Option<&Range<u64>>,
    owns_gil: bool,
    has_frames: bool,
) -> ThreadStatus {
    // Holding the GIL is running Python, whatever the thread was doing in
    // the kernel when caught (a GIL hand-off, say).
    if owns_gil {
        return ThreadStatus::Running;
    }
    match activity {
        Some(Activity::Running) => ThreadStatus::Running,
        Some(Activity::Blocked {
            futex: Some(at), ..
        }) if gil.is_some_and(|g| g.contains(&at)) => ThreadStatus::GilWait,
        Some(Activity::Blocked { .. }) => ThreadStatus::Idle,
        None if has_frames && pyspy_process::OS_THREAD_ACTIVITY => ThreadStatus::Running,
        None => ThreadStatus::Idle,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_futex_inside_the_gil_is_a_gil_wait() {
        let gil = 0x1000..0x10d0;
        let blocked = |at| {
            Some(Activity::Blocked {
                futex: Some(at),
                syscall: Some(202),
            })
        };
        assert_eq!(
            classify(blocked(0x1040), Some(&gil), false, true),
            ThreadStatus::GilWait
        );
        assert_eq!(
            classify(blocked(0x10d0), Some(&gil), false, true),
            ThreadStatus::Idle
        );
        assert_eq!(
            classify(blocked(0x0fff), Some(&gil), false, true),
            ThreadStatus::Idle
        );
        assert_eq!(
            classify(blocked(0x1040), None, false, true),
            ThreadStatus::Idle
        );
        let sleeping = Some(Activity::Blocked {
            futex: None,
            syscall: Some(230),
        });
        assert_eq!(
            classify(sleeping, Some(&gil), false, true),
            ThreadStatus::Idle
        );
        assert_eq!(
            classify(sleeping, Some(&gil), true, true),
            ThreadStatus::Running
        );
        assert_eq!(
            classify(Some(Activity::Running), None, false, false),
            ThreadStatus::Running
        );
        assert_eq!(classify(None, None, false, true), ThreadStatus::Running);
        assert_eq!(classify(None, None, false, false), ThreadStatus::Idle);
    }

    #[test]
    fn a_range_at_a_fixed_address_needs_no_read() {
        let mut gil = GilRange::new(GilLocation::At { addr: 0x40, len: 8 });
        assert_eq!(gil.range, Some(0x40..0x48));
        let unknown = GilRange::new(GilLocation::Unknown);
        assert_eq!(unknown.range, None);
        // `get` of a fixed range reads nothing (no process needed).
        let process = Process::open(std::process::id() as i32).unwrap();
        assert_eq!(gil.get(&process), Some(&(0x40..0x48)));
    }
}
