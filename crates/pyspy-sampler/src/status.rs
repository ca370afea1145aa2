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

use pyspy_cpython::{GilLocation, Interpreter, StackWalker, ThreadStatus};
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

/// Whether the main interpreter's GIL was on at the walker's last read:
/// always on a GIL build; `None` when a free-threaded one's flag is unread.
pub(crate) fn gil_on<M: pyspy_process::Memory>(
    interpreter: &Interpreter,
    walker: &StackWalker<M>,
) -> Option<bool> {
    if interpreter.layout.flavor.free_threaded {
        walker.gil_enabled(interpreter.interp)
    } else {
        Some(true)
    }
}

/// Whether a thread runs Python: it holds the GIL or, where its interpreter
/// has none at run time (free-threaded, `gil_enabled == Some(false)`), it is
/// attached (`PyThreadState._status.active`; unknown counts as not).
pub(crate) fn runs_python(
    gil_enabled: Option<bool>,
    attached: Option<bool>,
    owns_gil: bool,
) -> bool {
    if gil_enabled == Some(false) {
        attached == Some(true)
    } else {
        owns_gil
    }
}

/// The status of a thread that the kernel found doing `activity` (`None`:
/// unknown, then a thread with Python frames counts as running where the OS
/// tells activity at all, Linux; elsewhere, Windows, the interpreter's own
/// state decides: the thread running Python runs, every other one is idle).
/// `runs_python`: it holds the GIL or, where there is none (free-threaded,
/// GIL disabled), it is attached to its interpreter.
pub(crate) fn classify(
    activity: Option<Activity>,
    gil: Option<&Range<u64>>,
    runs_python: bool,
    has_frames: bool,
) -> ThreadStatus {
    // Running Python is running, whatever the thread was doing in the
    // kernel when caught (a GIL hand-off, say).
    if runs_python {
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
    fn without_a_gil_an_attached_thread_runs_python() {
        // GIL builds, or the GIL enabled at run time: the holder runs.
        for enabled in [None, Some(true)] {
            assert!(runs_python(enabled, Some(false), true));
            assert!(!runs_python(enabled, Some(true), false));
        }
        // No GIL: attached is what counts.
        assert!(runs_python(Some(false), Some(true), false));
        assert!(!runs_python(Some(false), Some(false), false));
        assert!(!runs_python(Some(false), None, false));
        // An attached thread blocked in the kernel still runs Python; a
        // detached one blocked is idle, and one on a CPU runs (native code).
        let sleeping = Some(Activity::Blocked {
            futex: None,
            syscall: Some(230),
        });
        let attached = runs_python(Some(false), Some(true), false);
        assert_eq!(
            classify(sleeping, None, attached, true),
            ThreadStatus::Running
        );
        let detached = runs_python(Some(false), Some(false), false);
        assert_eq!(classify(sleeping, None, detached, true), ThreadStatus::Idle);
        assert_eq!(
            classify(Some(Activity::Running), None, detached, true),
            ThreadStatus::Running
        );
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
