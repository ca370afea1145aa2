//! One sample in raw form (code addresses and lines, no strings), as
//! [`crate::Session::sample_raw`] fills it: the recorder's hot path.

use pyspy_cpython::{RawFrame, ThreadStatus};
use pyspy_native::MergedFrame;

/// One thread of a [`RawSample`].
#[derive(Debug, Clone, Default)]
pub struct RawThread {
    /// Python's thread id.
    pub thread_id: u64,
    /// Remote address of its interpreter (for [`crate::Session::thread_name`]).
    pub interp: usize,
    /// Its interpreter's id (0: the main interpreter).
    pub interpreter_id: i64,
    /// OS thread id (in our PID namespace), when known.
    pub os_thread_id: Option<u64>,
    /// The OS thread id the target itself sees, when it is in another PID
    /// namespace (a container) and so differs.
    pub namespace_thread_id: Option<u64>,
    /// On a CPU or waiting for the GIL when sampled (always true when OS
    /// states were not read): `status.is_active()`.
    pub active: bool,
    /// Running, waiting for the GIL, or idle.
    pub status: ThreadStatus,
    /// The system call a blocked thread was in, when read.
    pub syscall: Option<i64>,
    /// Held the GIL while a garbage collection ran (it is the collector).
    pub in_gc: bool,
    /// Held the GIL (never without one: [`RawSample::gil_free`]).
    pub owns_gil: bool,
    /// Attached to its interpreter (3.12+: `PyThreadState._status.active`),
    /// running Python or about to; where that bit is not read, whether it
    /// held the GIL. Without a GIL, what says the thread runs Python.
    pub attached: bool,
    /// Frames, innermost first.
    pub frames: Vec<RawFrame>,
    /// With native frames ([`crate::Session::enable_native`]): the whole stack,
    /// innermost first, Python frames as indexes into `frames` and native
    /// ones as ids for [`crate::Session::native_symbol`]. Empty otherwise, and for
    /// an idle thread of a sample that reads OS states (it is not counted).
    pub merged: Vec<MergedFrame>,
}

/// Reused buffers for one sample of every thread.
#[derive(Debug, Default)]
pub struct RawSample {
    pub(crate) threads: Vec<RawThread>,
    /// Threads of the last sample: the first `used` of `threads` (the
    /// rest are buffers kept for reuse).
    pub(crate) used: usize,
    /// The main interpreter ran without a GIL at this sample (a
    /// free-threaded build with the GIL disabled): no thread holds one,
    /// and [`RawThread::attached`] says which threads run Python.
    pub gil_free: bool,
    /// With [`crate::Session::enable_asyncio`]: the await chains (threads by index
    /// into [`RawSample::threads`]).
    pub tasks: pyspy_asyncio::TaskSample,
}

impl RawSample {
    /// The threads of the last sample.
    pub fn threads(&self) -> &[RawThread] {
        &self.threads[..self.used]
    }
}
