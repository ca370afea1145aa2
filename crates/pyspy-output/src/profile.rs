//! The recorded profile: what the sampler collected, already aggregated.
//! Frames and threads are interned once; each unique stack keeps a count;
//! a run-length timeline keeps the order samples came in (for formats that
//! need time, such as chrometrace). Nothing here refers to a live process.

use std::time::Duration;

/// What a frame stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameKind {
    /// A Python function.
    Python,
    /// A synthetic root naming the thread (`--threads`).
    Thread,
    /// A synthetic root naming the process (`--subprocesses`).
    Process,
    /// A synthetic root naming a sub-interpreter (`interpreter N`), for
    /// threads of interpreters other than the main one.
    Interpreter,
    /// A native (C/C++) frame (`--native`).
    Native,
    /// An asyncio task on an await chain (`<task NAME>`, `--asyncio`); pprof
    /// labels a sample with its innermost one's name.
    Task,
}

/// One interned frame label.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FrameLabel {
    /// Function name (or the synthetic root's text, e.g. `thread (1234): MainThread`).
    pub name: String,
    /// Full filename as the target sees it; empty for synthetic frames.
    pub filename: String,
    /// Package-relative filename (or the full one with `--full-filenames`).
    pub short_filename: String,
    /// Line shown in labels: the current line, the function's first line
    /// (`--function`), or 0 (`--nolineno`, or unknown).
    pub line: u32,
    /// The function's first line (`co_firstlineno`), 0 when unknown.
    pub first_line: u32,
    /// What it is.
    pub kind: FrameKind,
}

/// One thread seen while recording.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ThreadInfo {
    /// The process it belongs to.
    pub pid: i32,
    /// Python's thread id (pthread_t on Linux).
    pub thread_id: u64,
    /// OS thread id, when known.
    pub os_thread_id: Option<u64>,
    /// `threading` name, when known.
    pub name: Option<String>,
    /// The id of the interpreter the thread state belongs to (0: the main
    /// interpreter). One OS thread has a thread (state) per interpreter it
    /// ran code in.
    pub interpreter_id: i64,
}

/// One unique stack of one thread, with how often it was sampled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackCount {
    /// Index into [`Profile::threads`].
    pub thread: u32,
    /// Indices into [`Profile::frames`], root first, leaf last.
    pub frames: Vec<u32>,
    /// Samples that saw exactly this stack.
    pub count: u64,
}

/// A run of consecutive samples of one thread that saw the same stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Index into [`Profile::threads`].
    pub thread: u32,
    /// Index into [`Profile::stacks`].
    pub stack: u32,
    /// When the first sample of the run was taken, since the recording began.
    pub start: Duration,
    /// When the run ended: the time of the first later sample of this thread
    /// that saw another stack (or the end of the recording).
    pub end: Duration,
}

/// A finished (or in-progress snapshot of a) recording.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Profile {
    /// Interned frames.
    pub frames: Vec<FrameLabel>,
    /// Interned threads.
    pub threads: Vec<ThreadInfo>,
    /// Unique stacks with counts.
    pub stacks: Vec<StackCount>,
    /// Time-ordered runs of samples, per thread interleaved, sorted by `start`.
    pub timeline: Vec<Span>,
    /// Stack samples recorded (after idle/GIL filtering, summed over threads).
    pub samples: u64,
    /// Sampling attempts that failed.
    pub errors: u64,
    /// Wall time from the first to the last sampling attempt.
    pub duration: Duration,
    /// Requested sampling rate (samples per second per thread).
    pub rate_hz: f64,
    /// Wall-clock start, nanoseconds since the Unix epoch.
    pub start_unix_ns: u64,
    /// The main target's pid.
    pub pid: i32,
    /// The main target's command line.
    pub command_line: String,
    /// The Python version, e.g. `3.12.1`.
    pub python_version: String,
}

impl Profile {
    /// The sampling interval the rate implies.
    pub fn period(&self) -> Duration {
        if self.rate_hz > 0.0 {
            Duration::from_secs_f64(1.0 / self.rate_hz)
        } else {
            Duration::ZERO
        }
    }

    /// Samples that saw at least one frame: the sum of the counts of the
    /// non-empty stacks. Zero means there is nothing to write.
    pub fn stack_samples(&self) -> u64 {
        self.stacks
            .iter()
            .filter(|s| !s.frames.is_empty())
            .map(|s| s.count)
            .sum()
    }

    /// The sampling rate to compute times with: [`Profile::rate_hz`] when it
    /// is a positive finite number, else py-spy's default of 100 Hz.
    pub fn effective_rate_hz(&self) -> f64 {
        if self.rate_hz.is_finite() && self.rate_hz > 0.0 {
            self.rate_hz
        } else {
            100.0
        }
    }
}
