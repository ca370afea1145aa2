//! Quiet threads: threads whose Python stack cannot have changed since the
//! last sample read it, so the snapshot (`snapshot.rs`) does not read them
//! again and their last walk is reused.
//!
//! The proof comes from the GIL (3.12+, builds with a GIL): its
//! `switch_number` grows each time a thread takes the GIL from another one.
//! While it stays put and its `last_holder` is the same thread, no other
//! thread has run Python in between, so only the last holder's stack can
//! have moved: it is read every time, every other thread is kept as it was
//! (its state, its list link, its frames). The snapshot reads the GIL in
//! the same system call and checks the speculation afterwards; a switch
//! sends the sample to a full read at once. Threads are also read in full
//! every [`FULL_READ_EVERY`] reads, which bounds how long a thread list
//! changed by the holder alone (a thread state freed by another thread,
//! which CPython does only at fork and shutdown) could go unnoticed.
//!
//! Not used: on free-threaded builds (threads run Python without the GIL),
//! with several interpreters (each has its own GIL), before 3.12 (the GIL
//! is not read there), and unless [`StackWalker::reuse_quiet_threads`]
//! asked for it (core files and one-off dumps read everything).

use crate::gil_state::GilRead;
use crate::walker::{RawFrame, StackWalker};
use crate::ThreadState;

/// Reads in a row that may skip quiet threads before one reads them all.
pub(crate) const FULL_READ_EVERY: u32 = 128;

/// What the last read saw of the GIL: what the next one speculates on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QuietBasis {
    pub(crate) switches: u64,
    pub(crate) last_holder: usize,
}

impl QuietBasis {
    /// From one interpreter's GIL as read; `None` where it proves nothing.
    pub(crate) fn from_read(read: &GilRead) -> Option<QuietBasis> {
        if read.enabled.is_some() {
            // Free-threaded: threads run Python without taking the GIL.
            return None;
        }
        Some(QuietBasis {
            switches: read.switches?,
            last_holder: read.last_holder,
        })
    }

    /// Whether `read` (this sample's) shows no switch since the basis.
    pub(crate) fn still_holds(&self, read: &GilRead) -> bool {
        read.switches == Some(self.switches) && read.last_holder == self.last_holder
    }
}

/// A thread as last read in full, kept to stand in for it while quiet.
#[derive(Debug, Default, Clone)]
pub(crate) struct KeptThread {
    pub(crate) state: Option<ThreadState>,
    /// Its thread state's `next` link, as read.
    pub(crate) next: usize,
    /// The read ([`StackWalker::begin_read`]'s count) that read its state.
    pub(crate) state_read: u64,
    /// `switch_number` as that read saw it (before the thread's bytes).
    pub(crate) switches: Option<u64>,
    /// Its frames as that read's walk resolved them.
    pub(crate) frames: Vec<RawFrame>,
    /// The read whose walk resolved `frames`.
    pub(crate) frames_read: u64,
}

impl KeptThread {
    /// Whether it can stand in for thread `addr` under `basis`: read in
    /// full (state and frames by the same read) when the GIL had switched
    /// as often as it has now, and not the thread that took it last.
    pub(crate) fn stands_in(&self, addr: usize, basis: &QuietBasis) -> bool {
        addr != basis.last_holder
            && self.state.is_some_and(|s| s.addr == addr)
            && self.state_read != 0
            && self.frames_read == self.state_read
            && self.switches == Some(basis.switches)
    }
}

impl<M> StackWalker<M> {
    /// Lets live sampling skip quiet threads (see the module doc): only
    /// for reads of a live process sampled again and again, where a read
    /// that is one switch late costs nothing but a re-read.
    pub fn reuse_quiet_threads(&mut self, on: bool) {
        self.quiet.enabled = on;
    }

    /// `switch_number` of the GIL as the last read saw it (one
    /// interpreter, 3.12+ with a GIL); `None` otherwise. While it stays the
    /// same, only the GIL's last holder can have run Python.
    pub fn gil_switches(&self) -> Option<u64> {
        self.quiet.read_switches
    }

    /// Whether thread `index` of the last read was quiet (not read again:
    /// its state and frames are the previous read's).
    pub fn was_quiet(&self, index: usize) -> bool {
        self.quiet.now.get(index).copied().unwrap_or(false)
    }
}

/// The walker's quiet-thread bookkeeping.
#[derive(Debug, Default)]
pub(crate) struct QuietState {
    pub(crate) enabled: bool,
    /// Per thread of the current read: quiet or not.
    pub(crate) now: Vec<bool>,
    /// This read's `switch_number` (one interpreter with a GIL only) and
    /// the GIL's last holder with it.
    pub(crate) read_switches: Option<u64>,
    pub(crate) read_last_holder: usize,
    /// Reads since the last one that read every thread.
    pub(crate) since_full: u32,
}
