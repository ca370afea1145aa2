//! Recording from JavaScript: `startRecorder(options)` resolves with a
//! [`BindingRecorder`] (or an error as data); the recorder is polled for
//! progress and batches, stopped, finished (off the JS thread), and then
//! encodes the profile in any format. Samples never cross one by one: only
//! aggregated stacks and encoded files do.

use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::{AsyncTask, Buffer, Either};
use napi::{Env, Task};
use napi_derive::napi;
use pyspy_output::{encode_to_vec, Format, OutputOptions};
use pyspy_push::Pusher;
use pyspy_sampler::{Finished, HostFilter, HostRecorder, Recorder};

use crate::panic_guard;
use crate::types::{
    BindingError, BindingFinish, BindingFinishResult, BindingProgress, BindingPushStats,
    BindingRecordOptions, BindingStacks,
};

/// A recording in progress (or finished, holding its profile).
#[napi]
pub struct BindingRecorder {
    recorder: Arc<Mutex<Option<Recorder>>>,
    finished: Arc<Mutex<Option<Finished>>>,
    pusher: Arc<Mutex<Option<Pusher>>>,
    /// Host-wide mode (`allPythons`): no single recorder.
    host: Arc<Mutex<Option<HostRecorder>>>,
    /// Host-wide mode: when a duration ends it.
    host_deadline: Option<std::time::Instant>,
    pid: i32,
    python_version: String,
}

/// Attaches to (or launches) the target and starts sampling on a native
/// thread, off the JS thread. Resolves with the recorder, or with a
/// `BindingError` (`ENOPROCESS`, `ENOTPYTHON`, `EPERM`, `ELAUNCH`, ...).
#[napi(ts_return_type = "Promise<BindingRecorder | BindingError>")]
pub fn start_recorder(options: BindingRecordOptions) -> AsyncTask<StartTask> {
    AsyncTask::new(StartTask {
        options,
        started: None,
    })
}

/// The work behind `startRecorder`.
pub struct StartTask {
    options: BindingRecordOptions,
    started: Option<Started>,
}

/// What `startRecorder` started.
enum Started {
    One(Recorder, Option<Pusher>),
    Host(HostRecorder, Pusher, Option<std::time::Duration>),
}

impl Task for StartTask {
    type Output = Option<BindingError>;
    type JsValue = Either<BindingRecorder, BindingError>;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        let outcome = panic_guard::catch(|| {
            let (target, mut config) = self.options.to_config()?;
            let mut start_warning = None;
            let push = match &self.options.push {
                Some(p) => {
                    let push = p.to_config(&config)?;
                    // Before attaching or launching anything: a bad URL or
                    // a dead server is an error, not a silent recording
                    // (unless asked to wait for a server that is not up yet).
                    match Pusher::check(&push) {
                        Ok(()) => {}
                        Err(e) if e.is_transient() && p.retry_forever.unwrap_or(false) => {
                            start_warning = Some(format!(
                                "push: {e}; sampling starts anyway, windows are queued and retried until it answers"
                            ));
                        }
                        Err(e) => return Err(e.into()),
                    }
                    config.batches = true;
                    Some(push)
                }
                None => None,
            };
            if self.options.all_pythons.unwrap_or(false) {
                let invalid = |m: &str| BindingError {
                    code: "EINVAL".into(),
                    message: m.into(),
                };
                let Some(push) = push else {
                    return Err(invalid(
                        "allPythons needs push: it only streams to a server",
                    ));
                };
                if self.options.pid.is_some() || self.options.command.is_some() {
                    return Err(invalid("allPythons cannot be combined with pid or command"));
                }
                let filter = HostFilter {
                    command_contains: self.options.match_command.clone(),
                    uid: self.options.uid,
                };
                let duration = config.duration.take();
                let host = HostRecorder::start(config, filter)?;
                let pusher = Pusher::start(push, host.batch_source())?;
                if let Some(w) = start_warning {
                    pusher.warn(w);
                }
                return Ok(Started::Host(host, pusher, duration));
            }
            let recorder = Recorder::start(&target, config)?;
            let pusher = match push {
                Some(push) => {
                    let batches = recorder.batch_taker();
                    let source = move || batches.take().map(|(profile, _)| profile);
                    match Pusher::start(push, source) {
                        Ok(p) => {
                            if let Some(w) = start_warning {
                                p.warn(w);
                            }
                            Some(p)
                        }
                        Err(e) => {
                            recorder.stop();
                            return Err(e.into());
                        }
                    }
                }
                None => None,
            };
            Ok(Started::One(recorder, pusher))
        })
        .and_then(|r| r);
        Ok(match outcome {
            Ok(recorder) => {
                self.started = Some(recorder);
                None
            }
            Err(e) => Some(e),
        })
    }

    fn resolve(&mut self, _env: Env, output: Self::Output) -> napi::Result<Self::JsValue> {
        if let Some(err) = output {
            return Ok(Either::B(err));
        }
        let (recorder, pusher) = match self.started.take() {
            Some(Started::One(r, p)) => (r, p),
            Some(Started::Host(host, pusher, duration)) => {
                return Ok(Either::A(BindingRecorder {
                    pusher: Arc::new(Mutex::new(Some(pusher))),
                    host: Arc::new(Mutex::new(Some(host))),
                    host_deadline: duration.map(|d| std::time::Instant::now() + d),
                    recorder: Arc::new(Mutex::new(None)),
                    finished: Arc::new(Mutex::new(None)),
                    pid: 0,
                    python_version: String::new(),
                }))
            }
            None => {
                return Ok(Either::B(BindingError::internal(
                    "startRecorder resolved without a recorder",
                )))
            }
        };
        Ok(Either::A(BindingRecorder {
            host: Arc::new(Mutex::new(None)),
            host_deadline: None,
            pusher: Arc::new(Mutex::new(pusher)),
            pid: recorder.pid(),
            python_version: recorder.python_version().to_owned(),
            recorder: Arc::new(Mutex::new(Some(recorder))),
            finished: Arc::new(Mutex::new(None)),
        }))
    }
}

#[napi]
impl BindingRecorder {
    /// The target's pid (the launched command's, when launching).
    #[napi(getter)]
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The target's Python version.
    #[napi(getter)]
    pub fn python_version(&self) -> String {
        self.python_version.clone()
    }

    /// Progress so far (zeros once finished: read the finish summary).
    #[napi]
    pub fn progress(&self) -> BindingProgress {
        let guard = self.recorder.lock().unwrap_or_else(|p| p.into_inner());
        match guard.as_ref() {
            Some(r) => r.progress().into(),
            None => BindingProgress {
                samples: 0.0,
                attempts: 0.0,
                errors: 0.0,
                elapsed_ms: 0.0,
                lateness_ms: 0.0,
                rate: 0.0,
                torn_reads: 0.0,
                paused_samples: 0.0,
                processes: 0.0,
            },
        }
    }

    /// True once sampling has ended by itself (duration, target exit).
    #[napi]
    pub fn is_done(&self) -> bool {
        if let Some(host) = self.host.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            let timed_out = self
                .host_deadline
                .is_some_and(|d| std::time::Instant::now() >= d);
            if timed_out {
                host.stop();
            }
            return timed_out || host.is_stopped();
        }
        let guard = self.recorder.lock().unwrap_or_else(|p| p.into_inner());
        guard.as_ref().is_none_or(Recorder::is_finished)
    }

    /// Pushing so far, with the warning lines not yet read; null when not
    /// pushing or once finished (the finish summary has the rest).
    #[napi]
    pub fn push_stats(&self) -> Option<BindingPushStats> {
        let guard = self.pusher.lock().unwrap_or_else(|p| p.into_inner());
        let pusher = guard.as_ref()?;
        Some(BindingPushStats::new(
            pusher.stats(),
            pusher.take_warnings(),
        ))
    }

    /// Asks sampling to stop; `finish` then resolves promptly.
    #[napi]
    pub fn stop(&self) {
        if let Some(h) = self.host.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            h.stop();
        }
        if let Some(r) = self
            .recorder
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            r.stop();
        }
    }

    /// Stacks sampled since the previous call (needs `batches: true`);
    /// null when batches are off or the recording is finished.
    #[napi]
    pub fn take_batch(&self) -> Option<BindingStacks> {
        let guard = self.recorder.lock().unwrap_or_else(|p| p.into_inner());
        let (profile, counts) = guard.as_ref()?.take_batch()?;
        Some(BindingStacks::batch(&profile, &counts))
    }

    /// Waits (off the JS thread) for sampling to end — call `stop` first
    /// unless a duration or the target's exit ends it — and for a launched
    /// command to exit. Resolves with a summary or an error, as data.
    #[napi(ts_return_type = "Promise<BindingFinishResult>")]
    pub fn finish(&self) -> AsyncTask<FinishTask> {
        AsyncTask::new(FinishTask {
            recorder: self.recorder.clone(),
            finished: self.finished.clone(),
            pusher: self.pusher.clone(),
            host: self.host.clone(),
        })
    }

    /// The whole profile's aggregated stacks (after `finish`).
    #[napi]
    pub fn stacks(&self) -> Option<BindingStacks> {
        let guard = self.finished.lock().unwrap_or_else(|p| p.into_inner());
        guard.as_ref().map(|f| BindingStacks::from(&f.profile))
    }

    /// Encodes the finished profile: `flamegraph`, `speedscope`, `raw`,
    /// `chrometrace` or `pprof`. Errors (as data): `ENOTFINISHED`,
    /// `EFORMAT`, `ENOSAMPLES`.
    #[napi]
    pub fn encode(&self, format: String, title: Option<String>) -> Either<Buffer, BindingError> {
        let guard = self.finished.lock().unwrap_or_else(|p| p.into_inner());
        let Some(finished) = guard.as_ref() else {
            return Either::B(BindingError {
                code: "ENOTFINISHED".into(),
                message: "the recording has not finished yet".into(),
            });
        };
        let Ok(format) = format.parse::<Format>() else {
            return Either::B(BindingError {
                code: "EFORMAT".into(),
                message: format!("unknown format '{format}': use flamegraph, speedscope, raw, chrometrace or pprof"),
            });
        };
        let options = OutputOptions {
            title: title.unwrap_or_else(|| "pyspy-node".into()),
            ..Default::default()
        };
        match panic_guard::catch(|| encode_to_vec(&finished.profile, format, &options)) {
            Ok(Ok(bytes)) => Either::A(bytes.into()),
            Ok(Err(e)) => Either::B(BindingError {
                // The package's name for "nothing was sampled".
                code: if e.is_empty() {
                    "ENOSAMPLES".into()
                } else {
                    e.code().into()
                },
                message: e.to_string(),
            }),
            Err(e) => Either::B(e),
        }
    }
}

/// The work behind `finish`.
pub struct FinishTask {
    recorder: Arc<Mutex<Option<Recorder>>>,
    finished: Arc<Mutex<Option<Finished>>>,
    pusher: Arc<Mutex<Option<Pusher>>>,
    host: Arc<Mutex<Option<HostRecorder>>>,
}

impl FinishTask {
    /// Host-wide mode: stop scanning and sampling, push the last window.
    fn finish_host(&self, host: HostRecorder) -> BindingFinishResult {
        host.stop();
        // Let each sampling thread end its current sample before the last
        // window is cut.
        std::thread::sleep(std::time::Duration::from_millis(50));
        let push = self.finish_pusher();
        drop(host);
        BindingFinishResult {
            finish: Some(BindingFinish {
                reason: "stopped".into(),
                samples: push.as_ref().map_or(0.0, |p| p.samples),
                errors: 0.0,
                duration_ms: 0.0,
                exit_code: None,
                exit_signal: None,
                push,
            }),
            error: None,
        }
    }

    fn finish_pusher(&self) -> Option<BindingPushStats> {
        let pusher = self.pusher.lock().unwrap_or_else(|p| p.into_inner()).take();
        pusher.and_then(|p| {
            panic_guard::catch(move || {
                let (stats, warnings) = p.finish();
                BindingPushStats::new(stats, warnings)
            })
            .ok()
        })
    }
}

impl Task for FinishTask {
    type Output = BindingFinishResult;
    type JsValue = BindingFinishResult;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        let host = self.host.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(host) = host {
            return Ok(self.finish_host(host));
        }
        // Leave the recorder in place (progress and batches stay readable)
        // until its sampling thread has ended; the TypeScript layer calls
        // this only after `stop()` or `isDone()`, so the wait is short.
        let taken = loop {
            let mut guard = self.recorder.lock().unwrap_or_else(|p| p.into_inner());
            if guard.as_ref().is_none_or(Recorder::is_finished) {
                break guard.take();
            }
            drop(guard);
            std::thread::sleep(std::time::Duration::from_millis(2));
        };
        let Some(recorder) = taken else {
            let done = self.finished.lock().unwrap_or_else(|p| p.into_inner());
            return Ok(match done.as_ref() {
                Some(f) => BindingFinishResult {
                    finish: Some(f.into()),
                    error: None,
                },
                None => BindingFinishResult {
                    finish: None,
                    error: Some(BindingError {
                        code: "EINTERNAL".into(),
                        message: "finish is already running".into(),
                    }),
                },
            });
        };
        let outcome =
            panic_guard::catch(|| recorder.finish().map_err(BindingError::from)).and_then(|r| r);
        // Sampling has ended: the pusher cuts the last window and flushes
        // (bounded by its flush timeout).
        let push = self.finish_pusher();
        Ok(match outcome {
            Ok(finished) => {
                let mut summary = BindingFinish::from(&finished);
                summary.push = push;
                *self.finished.lock().unwrap_or_else(|p| p.into_inner()) = Some(finished);
                BindingFinishResult {
                    finish: Some(summary),
                    error: None,
                }
            }
            Err(e) => BindingFinishResult {
                finish: None,
                error: Some(e),
            },
        })
    }

    fn resolve(&mut self, _env: Env, output: Self::Output) -> napi::Result<Self::JsValue> {
        Ok(output)
    }
}
