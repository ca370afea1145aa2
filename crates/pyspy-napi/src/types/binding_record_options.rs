use std::time::Duration;

use napi_derive::napi;
use pyspy_sampler::{LineMode, ReadMode, RecordConfig, Target};

use crate::types::{BindingError, BindingPushOptions};

/// Options of `startRecorder`; mirrors `pyspy_sampler::RecordConfig` plus
/// the target. Exactly one of `pid` and `command` must be set.
#[napi(object, object_to_js = false)]
#[derive(Debug, Clone, Default)]
pub struct BindingRecordOptions {
    /// A running process to attach to.
    pub pid: Option<u32>,
    /// A command to launch (program, then arguments); its stdio is inherited.
    pub command: Option<Vec<String>>,
    /// Samples per second. @default 100
    pub rate: Option<f64>,
    /// Seconds to record; unset: until stopped or the target exits.
    pub duration: Option<f64>,
    /// Only threads holding the GIL. @default false
    pub gil: Option<bool>,
    /// Include idle threads. @default false
    pub idle: Option<bool>,
    /// A root frame per thread. @default false
    pub threads: Option<bool>,
    /// Label frames with the function's first line. @default false
    pub function: Option<bool>,
    /// No line numbers in labels. @default false
    pub nolineno: Option<bool>,
    /// Never pause the target and never check stacks (they may be torn).
    /// @default false
    pub nonblocking: Option<bool>,
    /// Pause every thread for every sample, as py-spy does by default. The
    /// default instead reads without pausing, checks each stack and retries
    /// torn ones, pausing only when the target keeps changing. @default false
    pub blocking: Option<bool>,
    /// Full filenames in labels. @default false
    pub full_filenames: Option<bool>,
    /// Keep batches for `takeBatch`. @default false
    pub batches: Option<bool>,
    /// Keep the whole recording's stacks for `finish` (false: the finished
    /// profile has counts only, and memory does not grow with the run's
    /// length; for pushing without a file). @default true
    pub keep_profile: Option<bool>,
    /// Also sample the target's Python descendants (started before or
    /// during the recording), each on its own thread. @default false
    pub subprocesses: Option<bool>,
    /// Merge native (C, C++, Cython) frames into the stacks; every sample is
    /// then taken paused (Linux x86-64 and arm64; not with `nonblocking`).
    /// @default false
    pub native: Option<bool>,
    /// A `<GC>` leaf frame on samples of the thread running a garbage
    /// collection. @default true
    pub gc_frames: Option<bool>,
    /// A `<GIL wait>` leaf frame on samples of threads waiting to take the
    /// GIL. @default false
    pub gil_wait_frames: Option<bool>,
    /// A launched command's standard streams go to `/dev/null`.
    /// @default false
    pub capture_output: Option<bool>,
    /// Rebuild samples of a thread running an asyncio task along its await
    /// chain (`<task NAME>` frames); with `idle`, waiting tasks are sampled
    /// too (CPython 3.11–3.15; not with `native`). @default false
    pub asyncio: Option<bool>,
    /// Push a window every interval to Grafana Pyroscope (the recorder then
    /// owns the batches: `takeBatch` returns null).
    pub push: Option<BindingPushOptions>,
    /// Every CPython process on the machine (found within a second of
    /// starting, dropped when they exit), each its own series; needs `push`
    /// and neither `pid` nor `command`.
    pub all_pythons: Option<bool>,
    /// With `allPythons`: only processes whose command line contains this.
    pub match_command: Option<String>,
    /// With `allPythons`: only processes of this user id.
    pub uid: Option<u32>,
}

impl BindingRecordOptions {
    /// The target and configuration, or an `EINVAL` naming the bad option.
    pub(crate) fn to_config(&self) -> Result<(Target, RecordConfig), BindingError> {
        let invalid = |m: String| BindingError {
            code: "EINVAL".into(),
            message: m,
        };
        let target = match (&self.pid, &self.command) {
            // Host-wide: the target is a placeholder, never started.
            (None, None) if self.all_pythons.unwrap_or(false) => Target::Pid(0),
            (Some(pid), None) => {
                let pid = i32::try_from(*pid)
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| BindingError::invalid_pid(*pid))?;
                Target::Pid(pid)
            }
            (None, Some(cmd)) if !cmd.is_empty() => Target::Command(cmd.clone()),
            (None, Some(_)) => return Err(invalid("command is empty".into())),
            _ => {
                return Err(invalid(
                    "exactly one of pid and command must be given".into(),
                ))
            }
        };
        let rate = self.rate.unwrap_or(100.0);
        if !(rate.is_finite() && rate > 0.0 && rate <= 1_000_000.0) {
            return Err(invalid(format!(
                "rate must be a number of samples per second above 0, got {rate}"
            )));
        }
        let duration = match self.duration {
            None => None,
            Some(d) if d.is_finite() && d > 0.0 => Some(Duration::from_secs_f64(d)),
            Some(d) => {
                return Err(invalid(format!(
                    "duration must be a positive number of seconds, got {d}"
                )))
            }
        };
        let (function, nolineno) = (
            self.function.unwrap_or(false),
            self.nolineno.unwrap_or(false),
        );
        if function && nolineno {
            return Err(invalid(
                "function and nolineno cannot be used together".into(),
            ));
        }
        let mode = match (
            self.nonblocking.unwrap_or(false),
            self.blocking.unwrap_or(false),
        ) {
            (true, true) => {
                return Err(invalid(
                    "nonblocking and blocking cannot be used together".into(),
                ))
            }
            (true, false) => ReadMode::Nonblocking,
            (false, true) => ReadMode::Pause,
            (false, false) => ReadMode::Consistent,
        };
        let lines = if function {
            LineMode::FunctionStart
        } else if nolineno {
            LineMode::None
        } else {
            LineMode::Current
        };
        Ok((
            target,
            RecordConfig {
                rate_hz: rate,
                duration,
                gil_only: self.gil.unwrap_or(false),
                include_idle: self.idle.unwrap_or(false),
                thread_roots: self.threads.unwrap_or(false),
                lines,
                mode,
                full_filenames: self.full_filenames.unwrap_or(false),
                batches: self.batches.unwrap_or(false),
                keep_profile: self.keep_profile.unwrap_or(true),
                subprocesses: self.subprocesses.unwrap_or(false),
                native: self.native.unwrap_or(false),
                gc_frames: self.gc_frames.unwrap_or(true),
                gil_wait_frames: self.gil_wait_frames.unwrap_or(false),
                capture_output: self.capture_output.unwrap_or(false),
                asyncio: self.asyncio.unwrap_or(false),
            },
        ))
    }
}
