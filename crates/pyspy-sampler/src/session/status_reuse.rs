//! Thread status without a `/proc` read per thread per sample, where the
//! GIL proves a thread has not run Python since its status was read.
//!
//! A thread that does not hold the GIL can only start or stop waiting by
//! taking it (a switch: see `pyspy_cpython`'s quiet threads) or inside C
//! code that released it (a read that returns, a computation that ends).
//! So the kernel's word on a thread is reused while the GIL's
//! `switch_number` is the one seen with it, for at most [`REUSE_FOR`]: that
//! bounds how late a change made in C without the GIL shows (the default
//! 100 Hz reads every thread every sample; at 1 kHz and above, most of the
//! `/proc` reads of idle threads are gone).

use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

use pyspy_process::{Activity, Pid};

/// How long a thread's status is reused without a GIL switch.
pub(crate) const REUSE_FOR: Duration = Duration::from_millis(10);
/// Most threads remembered (a larger process starts over).
const MAX_REMEMBERED: usize = 4096;

/// Statuses read from the kernel, by thread, with the GIL switch count and
/// the time they were read at.
#[derive(Debug, Default)]
pub(crate) struct StatusReuse {
    seen: FxHashMap<Pid, (u64, Instant, Option<Activity>)>,
    /// The current sample's time, taken once, when first needed.
    now: Option<Instant>,
}

impl StatusReuse {
    /// A new sample begins.
    pub(crate) fn begin(&mut self) {
        self.now = None;
    }

    fn now(&mut self) -> Instant {
        *self.now.get_or_insert_with(Instant::now)
    }

    /// The status of `tid` as last read, if it still holds with the GIL
    /// switched `switches` times (`None`: not known, nothing is reused).
    pub(crate) fn get(&mut self, tid: Pid, switches: Option<u64>) -> Option<Option<Activity>> {
        let switches = switches?;
        let &(seen_at, when, activity) = self.seen.get(&tid)?;
        let now = self.now();
        (seen_at == switches && now.saturating_duration_since(when) < REUSE_FOR).then_some(activity)
    }

    /// Remembers what the kernel said of `tid`.
    pub(crate) fn put(&mut self, tid: Pid, switches: Option<u64>, activity: Option<Activity>) {
        let Some(switches) = switches else {
            return;
        };
        if self.seen.len() >= MAX_REMEMBERED && !self.seen.contains_key(&tid) {
            self.seen.clear();
        }
        let now = self.now();
        self.seen.insert(tid, (switches, now, activity));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SLEEPING: Option<Activity> = Some(Activity::Blocked {
        futex: None,
        syscall: Some(230),
    });

    #[test]
    fn reused_only_without_a_switch_and_while_fresh() {
        let mut r = StatusReuse::default();
        r.begin();
        assert_eq!(r.get(7, Some(3)), None, "nothing read yet");
        r.put(7, Some(3), SLEEPING);
        r.begin();
        assert_eq!(r.get(7, Some(3)), Some(SLEEPING));
        assert_eq!(r.get(7, Some(4)), None, "the GIL switched since");
        assert_eq!(r.get(7, None), None, "no switch count: nothing proven");
        assert_eq!(r.get(8, Some(3)), None, "another thread");
        r.put(9, None, SLEEPING);
        assert_eq!(r.get(9, Some(3)), None, "read without a switch count");
        // Older than REUSE_FOR: read again.
        r.seen
            .insert(7, (3, Instant::now() - REUSE_FOR * 2, SLEEPING));
        r.begin();
        assert_eq!(r.get(7, Some(3)), None);
    }
}
