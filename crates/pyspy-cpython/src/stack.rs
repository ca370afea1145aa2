//! The stack types the reader produces: plain data, no remote addresses
//! except where a field says so.

/// One Python frame.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Frame {
    /// Function name: `co_qualname` on 3.11+ (e.g. `Worker.run`), `co_name` before (`run`); `<module>` for module code.
    pub name: String,
    /// Source path as the target sees it (`co_filename`).
    pub filename: String,
    /// Package-relative form of `filename` (py-spy's `short_filename`).
    pub short_filename: Option<String>,
    /// Line number; 0 when unknown.
    pub line: i32,
    /// Native module (a `.so`), for native frames only.
    pub module: Option<String>,
    /// Arguments and locals, when asked for.
    pub locals: Option<Vec<LocalVariable>>,
}

/// One argument or local variable of a frame.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LocalVariable {
    /// Variable name.
    pub name: String,
    /// Remote address of the object.
    pub addr: usize,
    /// True for function arguments.
    pub arg: bool,
    /// A `repr()`-like rendering, when the type is understood.
    pub repr: Option<String>,
}

/// One thread's Python stack, innermost frame first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadStack {
    /// Python's thread id (`threading.get_ident()`, a pthread_t on Linux).
    pub thread_id: u64,
    /// The OS thread id, when known.
    pub os_thread_id: Option<u64>,
    /// `threading.Thread.name`, when the thread is registered there.
    pub thread_name: Option<String>,
    /// Running on a CPU (not sleeping or blocked) when read.
    pub active: bool,
    /// Held the GIL when read.
    pub owns_gil: bool,
    /// Frames, innermost first.
    pub frames: Vec<Frame>,
}
