use pyspy_process::Pid;

/// Why a thread's native stack could not be read or merged. Each costs the
/// sample it happened in, never the session.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The thread's registers could not be read: it is not paused by this
    /// thread of the profiler (ptrace requests come from the tracer thread
    /// only), or it exited.
    #[error("reading the registers of thread {tid} failed (errno {errno}); the thread must be paused by the reading thread")]
    Registers {
        /// The thread.
        tid: Pid,
        /// The OS error.
        errno: i32,
    },
    /// The native and Python stacks do not fit together (the thread was
    /// caught entering or leaving the interpreter, or a stack is corrupt).
    #[error(
        "failed to merge native and Python frames of thread {tid}: {evals} interpreter \
         evaluation frames on the native stack, {groups} groups of Python frames"
    )]
    Merge {
        /// The thread.
        tid: Pid,
        /// `_PyEval_EvalFrameDefault` frames found by unwinding.
        evals: usize,
        /// Groups of Python frames (one per C-level evaluation call).
        groups: usize,
    },
    /// The Python frame chain could not be read again to group frames.
    #[error("thread {tid}: the Python frame chain changed or could not be read at {addr:#x}")]
    Frames {
        /// The thread.
        tid: Pid,
        /// The frame address that failed.
        addr: usize,
    },
    /// The process could not be inspected (its maps, or it exited).
    #[error(transparent)]
    Process(#[from] pyspy_process::Error),
}
