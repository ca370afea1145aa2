use napi_derive::napi;

/// Progress of a recording; mirrors `pyspy_sampler::Progress`.
#[napi(object, object_from_js = false)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BindingProgress {
    /// Stack samples recorded (after filtering, summed over threads).
    pub samples: f64,
    /// Sampling attempts made.
    pub attempts: f64,
    /// Failed attempts.
    pub errors: f64,
    /// Milliseconds since sampling began.
    pub elapsed_ms: f64,
    /// Milliseconds behind schedule at the last attempt.
    pub lateness_ms: f64,
    /// Attempts per second achieved.
    pub rate: f64,
    /// Reads found torn (a stack changed while read) and retried.
    pub torn_reads: f64,
    /// Samples taken with the target paused because it kept changing.
    pub paused_samples: f64,
    /// Processes being sampled (1 without `subprocesses`).
    pub processes: f64,
}

impl From<pyspy_sampler::Progress> for BindingProgress {
    fn from(p: pyspy_sampler::Progress) -> Self {
        Self {
            samples: p.samples as f64,
            attempts: p.attempts as f64,
            errors: p.errors as f64,
            elapsed_ms: p.elapsed.as_secs_f64() * 1e3,
            lateness_ms: p.lateness.as_secs_f64() * 1e3,
            rate: p.rate_hz,
            torn_reads: p.torn_reads as f64,
            paused_samples: p.paused_samples as f64,
            processes: p.processes as f64,
        }
    }
}
