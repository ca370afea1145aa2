//! Where sampling threads put what they read: the whole recording's
//! aggregation, the current live batch, and progress counters. One lock per
//! sample; several processes (`--subprocesses`) share it.

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::aggregate::Aggregator;

/// Counts of one batch that its stacks alone do not tell (for live views).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BatchCounts {
    /// Sampling attempts, failed ones included.
    pub attempts: u64,
    /// Attempts in which some thread held the GIL.
    pub gil_attempts: u64,
    /// Attempts on a target running without a GIL (a free-threaded build
    /// with the GIL disabled at run time): no thread holds one there.
    pub gil_free_attempts: u64,
    /// Of those, the attempts in which at least one thread was attached to
    /// its interpreter (running Python): the GIL-free counterpart of
    /// `gil_attempts`.
    pub attached_attempts: u64,
    /// Thread-samples of threads that were active (before any filtering).
    pub active_thread_samples: u64,
    /// Thread-samples of threads waiting to take the GIL (counted active too).
    pub gil_wait_thread_samples: u64,
    /// Most Python threads one successful attempt of the batch saw (not
    /// the last one's: a target shutting down shows an empty thread list
    /// for its final samples).
    pub threads: u64,
    /// Time the batch covers.
    pub elapsed: Duration,
}

pub(crate) struct Batch {
    pub(crate) agg: Aggregator,
    pub(crate) counts: BatchCounts,
    pub(crate) since: Instant,
}

impl Batch {
    pub(crate) fn new() -> Self {
        Batch {
            agg: Aggregator::new(false),
            counts: BatchCounts::default(),
            since: Instant::now(),
        }
    }
}

/// State shared by the caller and the sampling threads.
pub(crate) struct Shared {
    pub(crate) stop: AtomicBool,
    pub(crate) attempts: AtomicU64,
    pub(crate) samples: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) lateness_ns: AtomicU64,
    pub(crate) elapsed_ns: AtomicU64,
    pub(crate) torn_reads: AtomicU64,
    pub(crate) paused_samples: AtomicU64,
    /// Live processes being sampled.
    pub(crate) processes: AtomicU64,
    pub(crate) total: Mutex<Aggregator>,
    pub(crate) batch: Mutex<Option<Batch>>,
    pub(crate) started: Instant,
}

impl Shared {
    /// `keep_profile` false: the total only counts (see
    /// [`crate::RecordConfig::keep_profile`]).
    pub(crate) fn new(batches: bool, keep_profile: bool) -> Self {
        Shared {
            stop: AtomicBool::new(false),
            attempts: AtomicU64::new(0),
            samples: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            lateness_ns: AtomicU64::new(0),
            elapsed_ns: AtomicU64::new(0),
            torn_reads: AtomicU64::new(0),
            paused_samples: AtomicU64::new(0),
            processes: AtomicU64::new(0),
            total: Mutex::new(if keep_profile {
                Aggregator::new(true)
            } else {
                Aggregator::counting()
            }),
            batch: Mutex::new(batches.then(Batch::new)),
            started: Instant::now(),
        }
    }
}
