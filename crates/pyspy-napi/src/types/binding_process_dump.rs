use napi_derive::napi;

use super::{BindingAsyncio, BindingThreadStack};

/// Every thread's stack of one process, read once; mirrors
/// `pyspy_sampler::ProcessDump`.
#[napi(object, object_from_js = false)]
#[derive(Debug, Clone)]
pub struct BindingProcessDump {
    /// The target's pid.
    pub pid: i32,
    /// Its pid in its own PID namespace (a container's), when that differs.
    pub namespace_pid: Option<i32>,
    /// The target's command line, space-joined.
    pub command_line: String,
    /// The interpreter executable as the target sees it.
    pub executable: String,
    /// The Python version, e.g. `3.12.1`.
    pub python_version: String,
    /// Built without the GIL (`--disable-gil`, 3.13t+).
    pub free_threaded: bool,
    /// Whether the GIL was on when read: always on a GIL build; on a
    /// free-threaded one only when turned on at run time. Absent: unknown.
    pub gil_enabled: Option<bool>,
    /// Threads, in the interpreter's list order (newest first).
    pub threads: Vec<BindingThreadStack>,
    /// The parent's pid, for processes dumped as subprocesses.
    pub parent_pid: Option<i32>,
    /// With `subprocesses`: the Python descendants, parents before children
    /// (each with an empty `subprocesses`).
    pub subprocesses: Vec<BindingProcessDump>,
    /// With `asyncio: true`: the tasks, or why they could not be read.
    pub asyncio: Option<BindingAsyncio>,
}

impl From<pyspy_sampler::ProcessDump> for BindingProcessDump {
    fn from(d: pyspy_sampler::ProcessDump) -> Self {
        Self {
            pid: d.pid,
            namespace_pid: d.namespace_pid,
            command_line: d.command_line,
            executable: d.executable,
            python_version: d.python_version,
            free_threaded: d.free_threaded,
            gil_enabled: d.gil_enabled,
            threads: d.threads.into_iter().map(Into::into).collect(),
            parent_pid: d.parent_pid,
            subprocesses: d.subprocesses.into_iter().map(Into::into).collect(),
            asyncio: d.asyncio.map(Into::into),
        }
    }
}
