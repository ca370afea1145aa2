use napi_derive::napi;
use pyspy_sampler::{BatchCounts, Profile};

/// One frame label of an aggregated stack.
#[napi(object, object_from_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct BindingStackFrame {
    /// Function name (or a synthetic root's text).
    pub name: String,
    /// Full filename; empty for synthetic frames.
    pub filename: String,
    /// Short (package-relative) filename.
    pub short_filename: String,
    /// Line shown (0: none).
    pub line: u32,
    /// The function's first line (0: unknown).
    pub first_line: u32,
}

/// One unique stack of one thread with its sample count.
#[napi(object, object_from_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct BindingStack {
    /// The process.
    pub pid: i32,
    /// Python's thread id.
    pub thread_id: f64,
    /// OS thread id, when known.
    pub os_thread_id: Option<f64>,
    /// Thread name, when known.
    pub thread_name: Option<String>,
    /// The thread's interpreter (0: the main interpreter).
    pub interpreter_id: f64,
    /// Frames, root first.
    pub frames: Vec<BindingStackFrame>,
    /// Samples that saw this stack.
    pub count: f64,
}

/// Aggregated samples: a batch, or a whole profile's stacks.
#[napi(object, object_from_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct BindingStacks {
    /// Stack samples counted.
    pub samples: f64,
    /// Failed attempts.
    pub errors: f64,
    /// Unique stacks.
    pub stacks: Vec<BindingStack>,
    /// Batches only: sampling attempts, failed ones included.
    pub attempts: Option<f64>,
    /// Batches only: attempts in which some thread held the GIL.
    pub gil_samples: Option<f64>,
    /// Batches only: attempts on a target running without a GIL (free-threaded,
    /// GIL disabled at run time).
    pub gil_free_samples: Option<f64>,
    /// Batches only: of those, attempts in which at least one thread was
    /// attached to its interpreter (running Python).
    pub attached_samples: Option<f64>,
    /// Batches only: thread-samples of active threads (before filtering).
    pub active_samples: Option<f64>,
    /// Batches only: thread-samples of threads waiting for the GIL.
    pub gil_wait_samples: Option<f64>,
    /// Batches only: the most Python threads one attempt of the batch saw.
    pub threads: Option<f64>,
    /// Batches only: milliseconds the batch covers.
    pub elapsed_ms: Option<f64>,
}

impl BindingStacks {
    /// A batch: its stacks plus the counts a live view needs.
    pub(crate) fn batch(p: &Profile, c: &BatchCounts) -> Self {
        BindingStacks {
            attempts: Some(c.attempts as f64),
            gil_samples: Some(c.gil_attempts as f64),
            gil_free_samples: Some(c.gil_free_attempts as f64),
            attached_samples: Some(c.attached_attempts as f64),
            active_samples: Some(c.active_thread_samples as f64),
            gil_wait_samples: Some(c.gil_wait_thread_samples as f64),
            threads: Some(c.threads as f64),
            elapsed_ms: Some(c.elapsed.as_secs_f64() * 1e3),
            ..BindingStacks::from(p)
        }
    }
}

impl From<&Profile> for BindingStacks {
    fn from(p: &Profile) -> Self {
        let stacks = p
            .stacks
            .iter()
            .map(|s| {
                let t = &p.threads[s.thread as usize];
                BindingStack {
                    pid: t.pid,
                    thread_id: t.thread_id as f64,
                    os_thread_id: t.os_thread_id.map(|x| x as f64),
                    thread_name: t.name.clone(),
                    interpreter_id: t.interpreter_id as f64,
                    frames: s
                        .frames
                        .iter()
                        .map(|&f| {
                            let l = &p.frames[f as usize];
                            BindingStackFrame {
                                name: l.name.clone(),
                                filename: l.filename.clone(),
                                short_filename: l.short_filename.clone(),
                                line: l.line,
                                first_line: l.first_line,
                            }
                        })
                        .collect(),
                    count: s.count as f64,
                }
            })
            .collect();
        BindingStacks {
            samples: p.samples as f64,
            errors: p.errors as f64,
            stacks,
            attempts: None,
            gil_samples: None,
            gil_free_samples: None,
            attached_samples: None,
            active_samples: None,
            gil_wait_samples: None,
            threads: None,
            elapsed_ms: None,
        }
    }
}
