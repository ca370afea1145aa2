use napi_derive::napi;

use super::BindingFrame;

/// One asyncio task; mirrors `pyspy_sampler::AsyncTask`.
#[napi(object, object_from_js = false, use_nullable = true)]
#[derive(Debug, Clone)]
pub struct BindingAsyncTask {
    /// Index in the dump's task list (stable within one dump).
    pub id: u32,
    /// `task.get_name()`.
    pub name: String,
    /// `pending`, `running`, `done` or `cancelled`.
    pub state: String,
    /// Python thread id of the thread whose loop runs it, when known (a
    /// number, like `BindingThreadStack.thread_id`).
    pub thread_id: Option<f64>,
    /// Its coroutine chain's frames, innermost first.
    pub frames: Vec<BindingFrame>,
    /// Ids of the tasks it awaits.
    pub awaiting: Vec<u32>,
    /// Ids of the tasks awaiting it.
    pub awaited_by: Vec<u32>,
}

/// The asyncio part of a dump; mirrors `pyspy_sampler::AsyncioDump`.
#[napi(object, object_from_js = false, use_nullable = true)]
#[derive(Debug, Clone)]
pub struct BindingAsyncio {
    /// Whether some thread runs an event loop.
    pub loop_found: bool,
    /// Every task read.
    pub tasks: Vec<BindingAsyncTask>,
    /// Tasks that could not be read and were left out.
    pub skipped: u32,
    /// Stable code of why tasks could not be read at all (`EUNSUPPORTED`,
    /// `ELAYOUT`, `ENOASYNCIO`, `EREAD`), or null.
    pub error_code: Option<String>,
    /// Its message.
    pub error_message: Option<String>,
    /// Remarks about partial reads.
    pub notes: Vec<String>,
}

impl From<pyspy_sampler::AsyncioDump> for BindingAsyncio {
    fn from(d: pyspy_sampler::AsyncioDump) -> Self {
        let (error_code, error_message) = match d.error {
            Some((code, message)) => (Some(code.to_owned()), Some(message)),
            None => (None, None),
        };
        Self {
            loop_found: d.loop_found,
            tasks: d
                .tasks
                .into_iter()
                .map(|t| BindingAsyncTask {
                    id: t.id,
                    name: t.name,
                    state: t.state.to_owned(),
                    thread_id: t.thread_id.map(|id| id as f64),
                    frames: t.frames.into_iter().map(Into::into).collect(),
                    awaiting: t.awaiting,
                    awaited_by: t.awaited_by,
                })
                .collect(),
            skipped: d.skipped,
            error_code,
            error_message,
            notes: d.notes,
        }
    }
}
