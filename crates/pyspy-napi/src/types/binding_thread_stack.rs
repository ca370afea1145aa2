use napi_derive::napi;

use super::BindingFrame;

/// One thread's Python stack; mirrors `pyspy_sampler::ThreadStack`.
///
/// Ids are `f64` because JS numbers are; they are exact (see the crate doc).
#[napi(object, object_from_js = false, use_nullable = true)]
#[derive(Debug, Clone)]
pub struct BindingThreadStack {
    /// Python's thread id (`threading.get_ident()`, a `pthread_t` on Linux).
    pub thread_id: f64,
    /// The OS thread id (Linux tid, in the profiler's PID namespace), when known.
    pub os_thread_id: Option<f64>,
    /// The tid the target itself sees, when it is in another PID namespace
    /// (a container) and so differs from `os_thread_id`.
    pub namespace_thread_id: Option<f64>,
    /// `threading.Thread.name`, when the thread is registered there.
    pub thread_name: Option<String>,
    /// Running on a CPU or waiting for the GIL (not idle) when read.
    pub active: bool,
    /// `running`, `gil_wait` or `idle`.
    pub status: String,
    /// For a waiting thread: the system call it was blocked in, when known.
    pub syscall: Option<String>,
    /// Held the GIL when read.
    pub owns_gil: bool,
    /// Attached to its interpreter when read (CPython 3.12+; `None` before).
    pub attached: Option<bool>,
    /// The thread's interpreter (0: the main interpreter).
    pub interpreter_id: f64,
    /// Frames, innermost first.
    pub frames: Vec<BindingFrame>,
}

impl From<pyspy_sampler::ThreadStack> for BindingThreadStack {
    fn from(t: pyspy_sampler::ThreadStack) -> Self {
        Self {
            // Exact: a pthread_t / tid is far below 2^53 (crate doc).
            thread_id: t.thread_id as f64,
            os_thread_id: t.os_thread_id.map(|tid| tid as f64),
            namespace_thread_id: t.namespace_thread_id.map(|tid| tid as f64),
            thread_name: t.thread_name,
            active: t.active,
            status: t.status.as_str().to_owned(),
            syscall: t.syscall,
            owns_gil: t.owns_gil,
            attached: t.attached,
            interpreter_id: t.interpreter_id as f64,
            frames: t.frames.into_iter().map(Into::into).collect(),
        }
    }
}
