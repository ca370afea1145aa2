//! The bookkeeping between the window thread and the upload thread, free of
//! I/O so it can be tested alone: a queue bounded in windows and bytes that
//! drops the oldest first, the retry backoff, the counters, and warnings
//! given once per kind of failure.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

/// One window, encoded and ready to send (one request, every process's
/// series in it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Window {
    /// The request body.
    pub(crate) body: Vec<u8>,
    /// Stack samples it holds.
    pub(crate) samples: u64,
}

/// What happened to windows so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PushStats {
    /// Windows the server accepted.
    pub pushed: u64,
    /// Request bytes the server accepted.
    pub bytes: u64,
    /// Stack samples in the accepted windows.
    pub samples: u64,
    /// Windows dropped unsent: the queue was full (oldest first), or the
    /// server was still unreachable when the recording ended.
    pub dropped: u64,
    /// Windows the server refused for good (a 4xx answer other than 408/429).
    pub failed: u64,
    /// Send attempts that failed and were retried.
    pub retries: u64,
    /// Windows waiting in the queue now.
    pub queued: u64,
    /// Bytes waiting in the queue now.
    pub queued_bytes: u64,
}

/// A FIFO of windows bounded in count and bytes; pushing past a bound drops
/// the oldest windows (the newest data is worth most to a live view).
#[derive(Debug)]
pub(crate) struct Queue {
    items: VecDeque<Window>,
    bytes: usize,
    max_windows: usize,
    max_bytes: usize,
}

impl Queue {
    pub(crate) fn new(max_windows: usize, max_bytes: usize) -> Self {
        Queue {
            items: VecDeque::new(),
            bytes: 0,
            max_windows: max_windows.max(1),
            max_bytes,
        }
    }

    /// Appends `w` at the back; returns how many old windows were dropped to
    /// make room. A window bigger than the byte bound alone is kept (the
    /// queue never refuses the newest window).
    pub(crate) fn push_back(&mut self, w: Window) -> u64 {
        self.bytes += w.body.len();
        self.items.push_back(w);
        self.trim()
    }

    /// Puts a window whose send failed back at the front, to be retried
    /// first; returns the windows dropped to respect the bounds (possibly
    /// this one, being the oldest).
    pub(crate) fn push_front(&mut self, w: Window) -> u64 {
        self.bytes += w.body.len();
        self.items.push_front(w);
        self.trim()
    }

    pub(crate) fn pop_front(&mut self) -> Option<Window> {
        let w = self.items.pop_front()?;
        self.bytes -= w.body.len();
        Some(w)
    }

    /// Empties the queue, returning how many windows it held.
    pub(crate) fn clear(&mut self) -> u64 {
        let n = self.items.len() as u64;
        self.items.clear();
        self.bytes = 0;
        n
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    fn trim(&mut self) -> u64 {
        let mut dropped = 0;
        while self.items.len() > self.max_windows
            || (self.bytes > self.max_bytes && self.items.len() > 1)
        {
            if let Some(w) = self.items.pop_front() {
                self.bytes -= w.body.len();
                dropped += 1;
            }
        }
        dropped
    }
}

/// Exponential backoff between retries: `initial`, doubling up to `max`,
/// each delay shortened by up to a fifth at random so that many agents
/// restarted together do not retry in step.
#[derive(Debug)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    current: Duration,
    seed: u64,
}

impl Backoff {
    pub(crate) fn new(initial: Duration, max: Duration, seed: u64) -> Self {
        Backoff {
            initial,
            max,
            current: initial,
            seed: seed | 1,
        }
    }

    /// The delay before the next retry; doubles the one after.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let base = self.current;
        self.current = (self.current * 2).min(self.max);
        // xorshift64: cheap jitter, no dependency.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let fifth = (self.seed % 1000) as f64 / 1000.0 * 0.2;
        base.mul_f64(1.0 - fifth)
    }

    /// After a success: start again from `initial`.
    pub(crate) fn reset(&mut self) {
        self.current = self.initial;
    }
}

/// Kinds of trouble, each warned about once until pushing works again.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Trouble {
    /// Connection refused, DNS, reset, timeout...: retried.
    Unreachable,
    /// A 5xx, 408 or 429 answer: retried.
    Retryable(u16),
    /// Any other 4xx answer: the window is dropped.
    Refused(u16),
    /// The queue overflowed: oldest windows dropped.
    QueueFull,
}

/// Warning lines waiting to be read, one per kind of trouble.
#[derive(Debug, Default)]
pub(crate) struct Warnings {
    seen: HashSet<Trouble>,
    pending: Vec<String>,
    failing: bool,
}

impl Warnings {
    /// Records `trouble`; the first time (since the last recovery) its
    /// message becomes a warning line.
    pub(crate) fn report(&mut self, trouble: Trouble, message: impl FnOnce() -> String) {
        if !matches!(trouble, Trouble::QueueFull) {
            self.failing = true;
        }
        if self.seen.insert(trouble) {
            self.pending.push(message());
        }
    }

    /// A window went through: after failures, say so once, and let the next
    /// outage warn again.
    pub(crate) fn recovered(&mut self, message: impl FnOnce() -> String) {
        if self.failing {
            self.failing = false;
            self.seen.retain(|t| matches!(t, Trouble::QueueFull));
            self.pending.push(message());
        }
    }

    pub(crate) fn push(&mut self, line: String) {
        self.pending.push(line);
    }

    pub(crate) fn take(&mut self) -> Vec<String> {
        std::mem::take(&mut self.pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(n: usize) -> Window {
        Window {
            body: vec![0; n],
            samples: 1,
        }
    }

    #[test]
    fn drops_oldest_past_the_window_bound() {
        let mut q = Queue::new(3, 1 << 20);
        for i in 1..=3 {
            assert_eq!(q.push_back(w(i)), 0);
        }
        assert_eq!(q.push_back(w(4)), 1);
        assert_eq!(q.len(), 3);
        assert_eq!(q.bytes(), 2 + 3 + 4);
        assert_eq!(q.pop_front().unwrap().body.len(), 2, "the oldest went");
    }

    #[test]
    fn drops_oldest_past_the_byte_bound_but_keeps_the_newest() {
        let mut q = Queue::new(100, 10);
        q.push_back(w(4));
        q.push_back(w(4));
        assert_eq!(q.push_back(w(4)), 1, "12 > 10 bytes: one dropped");
        assert_eq!(q.bytes(), 8);
        assert_eq!(q.push_back(w(50)), 2, "an oversized window replaces all");
        assert_eq!((q.len(), q.bytes()), (1, 50));
    }

    #[test]
    fn a_retried_window_is_first_and_the_first_to_go() {
        let mut q = Queue::new(2, 1 << 20);
        q.push_back(w(2));
        q.push_back(w(3));
        assert_eq!(q.push_front(w(1)), 1);
        assert_eq!(q.pop_front().unwrap().body.len(), 2);
        assert_eq!(q.clear(), 1);
        assert_eq!((q.len(), q.bytes()), (0, 0));
    }

    #[test]
    fn backoff_doubles_to_the_cap_with_bounded_jitter_and_resets() {
        let (ms, cap) = (Duration::from_millis(100), Duration::from_millis(1000));
        let mut b = Backoff::new(ms, cap, 42);
        let delays: Vec<_> = (0..6).map(|_| b.next_delay()).collect();
        let bases = [100, 200, 400, 800, 1000, 1000];
        for (d, base) in delays.iter().zip(bases) {
            let base = Duration::from_millis(base);
            assert!(*d <= base && *d >= base.mul_f64(0.8), "{d:?} vs {base:?}");
        }
        b.reset();
        assert!(b.next_delay() <= ms);
    }

    #[test]
    fn one_warning_per_kind_until_recovery() {
        let mut warn = Warnings::default();
        for _ in 0..5 {
            warn.report(Trouble::Unreachable, || "down".into());
            warn.report(Trouble::Retryable(503), || "503".into());
        }
        warn.report(Trouble::QueueFull, || "full".into());
        warn.report(Trouble::QueueFull, || "full".into());
        assert_eq!(warn.take(), ["down", "503", "full"]);
        warn.recovered(|| "back".into());
        warn.recovered(|| "back".into());
        warn.report(Trouble::Unreachable, || "down again".into());
        warn.report(Trouble::QueueFull, || "full".into());
        assert_eq!(warn.take(), ["back", "down again"]);
    }
}
