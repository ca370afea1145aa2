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
    /// The OS thread id (in the reader's PID namespace), when known.
    pub os_thread_id: Option<u64>,
    /// The OS thread id the target itself sees (`threading.get_native_id()`),
    /// when it is in another PID namespace (a container) and so differs.
    pub namespace_thread_id: Option<u64>,
    /// `threading.Thread.name`, when the thread is registered there.
    pub thread_name: Option<String>,
    /// Running on a CPU or waiting for the GIL (not idle) when read:
    /// `status != ThreadStatus::Idle`, py-spy's `active`.
    pub active: bool,
    /// Running, waiting for the GIL, or idle, when read.
    pub status: ThreadStatus,
    /// For a thread waiting (idle or for the GIL): the system call it was
    /// blocked in (`futex`, `clock_nanosleep`, ...), when known.
    pub syscall: Option<String>,
    /// Held the GIL when read.
    pub owns_gil: bool,
    /// Attached to its interpreter when read (CPython 3.12+'s
    /// `_status.active`): running Python or about to. With a GIL, the same
    /// as holding it; on a free-threaded build with the GIL off, what
    /// running Python means. `None` before 3.12 (no such state).
    pub attached: Option<bool>,
    /// The id of the interpreter this thread (state) belongs to: 0 for the
    /// main interpreter. An OS thread that runs code in a sub-interpreter
    /// is listed once per interpreter it has a thread state in.
    pub interpreter_id: i64,
    /// Frames, innermost first.
    pub frames: Vec<Frame>,
}

/// What a thread was doing when read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ThreadStatus {
    /// On a CPU (or ready for one), or holding the GIL.
    #[default]
    Running,
    /// Blocked taking the GIL: it wants to run Python and waits for the
    /// thread that holds the GIL to let go. Counts as active.
    GilWait,
    /// Blocked in anything else: I/O, sleep, a lock, a condition variable.
    Idle,
}

impl ThreadStatus {
    /// `running`, `gil_wait` or `idle` (the JSON and label form).
    pub fn as_str(self) -> &'static str {
        match self {
            ThreadStatus::Running => "running",
            ThreadStatus::GilWait => "gil_wait",
            ThreadStatus::Idle => "idle",
        }
    }

    /// Not idle (py-spy's `active`).
    pub fn is_active(self) -> bool {
        self != ThreadStatus::Idle
    }
}
