//! pyspy-sampler (stub; see ARCHITECTURE.md)
pub use pyspy_cpython::{Frame, LocalVariable, ThreadStack};

/// Options for [`dump`].
#[derive(Debug, Clone, Default)]
pub struct DumpConfig {
    /// Read arguments and locals of every frame.
    pub locals: bool,
    /// Do not pause the target while reading (stacks may be torn).
    pub nonblocking: bool,
    /// Keep full filenames instead of package-relative ones.
    pub full_filenames: bool,
}

/// Every thread's stack of one process, read once.
#[derive(Debug, Clone)]
pub struct ProcessDump {
    /// The target's pid.
    pub pid: i32,
    /// The target's command line, space-joined.
    pub command_line: String,
    /// The interpreter executable as the target sees it.
    pub executable: String,
    /// The Python version, e.g. `3.12.1`.
    pub python_version: String,
    /// Threads, in the interpreter's list order (newest first).
    pub threads: Vec<ThreadStack>,
}

/// Failure to dump a process.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Not built yet.
    #[error("not implemented yet")]
    Unsupported,
}

impl Error {
    /// Stable machine-readable code (also the JS error's `code`).
    pub fn code(&self) -> &'static str {
        match self {
            Error::Unsupported => "EUNSUPPORTED",
        }
    }
}

/// Reads every thread's Python stack of `pid` once.
pub fn dump(_pid: i32, _config: &DumpConfig) -> Result<ProcessDump, Error> {
    Err(Error::Unsupported)
}
