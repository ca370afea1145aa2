use napi_derive::napi;
use pyspy_sampler::{Finished, StopReason};

use crate::types::{BindingError, BindingPushStats};

/// How a recording ended.
#[napi(object, object_from_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct BindingFinish {
    /// `stopped`, `duration` or `exited` (the target exited).
    pub reason: String,
    /// Stack samples recorded.
    pub samples: f64,
    /// Failed attempts.
    pub errors: f64,
    /// Milliseconds from the first to the last attempt.
    pub duration_ms: f64,
    /// A launched command's exit code (null when killed by a signal or attached).
    pub exit_code: Option<i32>,
    /// A launched command's terminating signal number, when killed by one.
    pub exit_signal: Option<i32>,
    /// What pushing did, when pushing (its warnings: the ones not yet read).
    pub push: Option<BindingPushStats>,
}

/// `finish()`'s result: exactly one of the two is set.
#[napi(object, object_from_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct BindingFinishResult {
    /// The summary, on success.
    pub finish: Option<BindingFinish>,
    /// The failure.
    pub error: Option<BindingError>,
}

impl From<&Finished> for BindingFinish {
    fn from(f: &Finished) -> Self {
        let reason = match f.reason {
            StopReason::Stopped => "stopped",
            StopReason::Duration => "duration",
            StopReason::TargetExited => "exited",
        };
        BindingFinish {
            reason: reason.into(),
            samples: f.profile.samples as f64,
            errors: f.profile.errors as f64,
            duration_ms: f.profile.duration.as_secs_f64() * 1e3,
            exit_code: f.exit_status.and_then(|s| s.code()),
            exit_signal: f.exit_status.and_then(signal),
            push: None,
        }
    }
}

#[cfg(unix)]
fn signal(status: std::process::ExitStatus) -> Option<i32> {
    std::os::unix::process::ExitStatusExt::signal(&status)
}

#[cfg(not(unix))]
fn signal(_: std::process::ExitStatus) -> Option<i32> {
    None
}
