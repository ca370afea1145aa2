//! Recording: native threads sample the target (and, with `subprocesses`,
//! its Python descendants) on jittered schedules and aggregate as they go;
//! callers poll progress, take batches, stop it, and finally get the
//! [`Profile`]. A launched command is our own child, not the JS runtime's,
//! and its exit status comes back with the profile.

use std::process::{Child, ExitStatus};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pyspy_output::Profile;
use pyspy_process::Pid;

use crate::aggregate::LineMode;
use crate::sink::{BatchCounts, Shared};
use crate::{launch, process_loop, tree, Error, ReadMode, Session};

/// What to sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A running process.
    Pid(Pid),
    /// A command to launch (program and arguments); its stdio is inherited.
    Command(Vec<String>),
}

/// How to record.
#[derive(Debug, Clone)]
pub struct RecordConfig {
    /// Samples per second.
    pub rate_hz: f64,
    /// Stop after this long (None: until stopped or the target exits).
    pub duration: Option<Duration>,
    /// Only threads holding the GIL (`--gil`).
    pub gil_only: bool,
    /// Include idle threads (`--idle`).
    pub include_idle: bool,
    /// Add a root frame per thread (`--threads`).
    pub thread_roots: bool,
    /// How labels carry lines.
    pub lines: LineMode,
    /// How samples are kept consistent (pause, check, or neither).
    pub mode: ReadMode,
    /// Full filenames in labels.
    pub full_filenames: bool,
    /// Keep batches for [`Recorder::take_batch`].
    pub batches: bool,
    /// Keep the whole recording's stacks and timeline for
    /// [`Recorder::finish`]. Off for a recording that only streams its
    /// batches (pushing for days): the finished profile then has counts
    /// but no stacks, and memory does not grow with the run's length.
    pub keep_profile: bool,
    /// Also sample the target's Python descendants, each on its own thread.
    pub subprocesses: bool,
    /// Merge native (C, C++, Cython) frames into the stacks; every sample
    /// is then taken paused, whatever `mode` says (`Nonblocking` is refused).
    pub native: bool,
    /// Give samples of the thread running a garbage collection a `<GC>`
    /// leaf frame.
    pub gc_frames: bool,
    /// Give samples of threads waiting to take the GIL a `<GIL wait>` leaf
    /// frame, so contention shows per function.
    pub gil_wait_frames: bool,
    /// A launched command gets `/dev/null` for its standard streams
    /// (py-spy's hidden `--capture`).
    pub capture_output: bool,
    /// Rebuild samples of threads running an asyncio task along its await
    /// chain (`<task NAME>` frames); with `include_idle`, waiting tasks are
    /// sampled too. Not with `native`.
    pub asyncio: bool,
}

impl Default for RecordConfig {
    fn default() -> Self {
        RecordConfig {
            rate_hz: 100.0,
            duration: None,
            gil_only: false,
            include_idle: false,
            thread_roots: false,
            lines: LineMode::Current,
            mode: ReadMode::default(),
            full_filenames: false,
            batches: false,
            keep_profile: true,
            subprocesses: false,
            native: false,
            gc_frames: true,
            gil_wait_frames: false,
            capture_output: false,
            asyncio: false,
        }
    }
}

/// Progress of a recording.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Stack samples recorded (after filtering).
    pub samples: u64,
    /// Sampling attempts made.
    pub attempts: u64,
    /// Failed attempts.
    pub errors: u64,
    /// Time since sampling began.
    pub elapsed: Duration,
    /// How far behind schedule the last attempt started.
    pub lateness: Duration,
    /// Attempts per second achieved so far.
    pub rate_hz: f64,
    /// Reads found torn (a stack changed while read) and retried.
    pub torn_reads: u64,
    /// Samples taken with the target paused because it kept changing.
    pub paused_samples: u64,
    /// Processes being sampled (1 without `subprocesses`).
    pub processes: u64,
}

/// Why sampling ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// [`Recorder::stop`] was called.
    Stopped,
    /// The duration elapsed.
    Duration,
    /// The target exited.
    TargetExited,
}

/// The end of a recording.
#[derive(Debug)]
pub struct Finished {
    /// What was recorded.
    pub profile: Profile,
    /// Why it ended.
    pub reason: StopReason,
    /// The launched command's exit status (None when attached by pid).
    pub exit_status: Option<ExitStatus>,
}

/// A recording in progress.
pub struct Recorder {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<Result<(Profile, StopReason), Error>>>,
    child: Option<Child>,
    pid: Pid,
    python_version: String,
}

impl Recorder {
    /// Attaches (or launches and attaches) and starts sampling on a new
    /// thread. Fails early, before any thread starts, when the target cannot
    /// be read.
    pub fn start(target: &Target, config: RecordConfig) -> Result<Recorder, Error> {
        if config.native {
            if config.mode == ReadMode::Nonblocking {
                return Err(Error::Invalid(pyspy_native::NONBLOCKING_REFUSAL.into()));
            }
            if !pyspy_native::SUPPORTED {
                return Err(Error::Unsupported(pyspy_native::UNSUPPORTED_REASON));
            }
        }
        let (sessions, child, root) = match target {
            Target::Pid(pid) if config.subprocesses => {
                pyspy_process::Process::open(*pid)?;
                (first_in_tree(*pid, None)?, None, *pid)
            }
            Target::Pid(pid) => (vec![Session::attach(*pid)?], None, *pid),
            Target::Command(argv) => {
                let mut child = launch::spawn(argv, config.capture_output)?;
                let pid = child.id() as Pid;
                let sessions = if config.subprocesses {
                    first_in_tree(pid, Some(&mut child))?
                } else {
                    vec![launch::attach_child(&mut child, &argv[0])?]
                };
                (sessions, Some(child), pid)
            }
        };
        let (mut sessions, mut child) = (sessions, child);
        // Refused up front (--gil without a GIL, --asyncio with --native or on
        // a version without a task reader), not found out sample by sample.
        let refused = if config.gil_only {
            refuse_gil_only_without_gil(&sessions)
        } else {
            Ok(())
        }
        .and_then(|()| {
            if !config.asyncio {
                Ok(())
            } else if config.native {
                Err(Error::Invalid(
                    "--asyncio cannot be combined with --native".into(),
                ))
            } else {
                sessions
                    .iter_mut()
                    .try_for_each(|s| s.enable_asyncio(config.include_idle))
            }
        });
        if let Err(e) = refused {
            if let Some(c) = child.as_mut() {
                let _ = c.kill();
                let _ = c.wait();
            }
            return Err(e);
        }
        let python_version = sessions[0].interpreter().layout.version.to_string();
        let shared = Arc::new(Shared::new(config.batches, config.keep_profile));
        shared
            .processes
            .store(sessions.len() as u64, Ordering::Relaxed);
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name("pyspy-sampler".into())
            .spawn(move || run(root, sessions, &config, &worker))
            .map_err(|e| {
                Error::Process(pyspy_process::Error::Io {
                    pid: root,
                    what: "sampler thread".into(),
                    source: e,
                })
            })?;
        Ok(Recorder {
            shared,
            thread: Some(thread),
            child,
            pid: root,
            python_version,
        })
    }

    /// The target's pid (the launched child's, when launching).
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// The target's Python version.
    pub fn python_version(&self) -> &str {
        &self.python_version
    }

    /// Asks the sampling thread to stop after its current sample.
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }

    /// True once the sampling thread has ended (stopped, timed out or the
    /// target exited).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Progress so far.
    pub fn progress(&self) -> Progress {
        let s = &self.shared;
        let elapsed = Duration::from_nanos(s.elapsed_ns.load(Ordering::Relaxed));
        let attempts = s.attempts.load(Ordering::Relaxed);
        Progress {
            samples: s.samples.load(Ordering::Relaxed),
            attempts,
            errors: s.errors.load(Ordering::Relaxed),
            elapsed,
            lateness: Duration::from_nanos(s.lateness_ns.load(Ordering::Relaxed)),
            torn_reads: s.torn_reads.load(Ordering::Relaxed),
            paused_samples: s.paused_samples.load(Ordering::Relaxed),
            processes: s.processes.load(Ordering::Relaxed),
            rate_hz: if elapsed.is_zero() {
                0.0
            } else {
                attempts as f64 / elapsed.as_secs_f64()
            },
        }
    }

    /// What was sampled since the previous call, with its counts (requires
    /// [`RecordConfig::batches`]); `None` otherwise.
    pub fn take_batch(&self) -> Option<(Profile, BatchCounts)> {
        take_batch(&self.shared)
    }

    /// A handle that takes batches from another thread, and still can once
    /// the recording has finished (the last batch); see [`BatchTaker`].
    pub fn batch_taker(&self) -> BatchTaker {
        BatchTaker(self.shared.clone())
    }

    /// Waits for the sampling thread to end (call [`Recorder::stop`] first
    /// unless a duration or the target's exit will end it), then for a
    /// launched child to exit.
    pub fn finish(mut self) -> Result<Finished, Error> {
        let joined = self.thread.take().map(|t| t.join());
        let (profile, reason) = match joined {
            Some(Ok(result)) => result?,
            Some(Err(_)) => {
                return Err(Error::Internal("the sampling thread panicked".into()));
            }
            None => return Err(Error::Internal("finish called twice".into())),
        };
        let exit_status = match self.child.take() {
            Some(mut child) => Some(child.wait().map_err(|e| {
                Error::Process(pyspy_process::Error::Io {
                    pid: self.pid,
                    what: "waiting for the command".into(),
                    source: e,
                })
            })?),
            None => None,
        };
        Ok(Finished {
            profile,
            reason,
            exit_status,
        })
    }
}

/// Takes batches of a recording from any thread (a pusher's windows); it
/// shares the batch with [`Recorder::take_batch`], so one consumer only.
#[derive(Clone)]
pub struct BatchTaker(Arc<Shared>);

impl BatchTaker {
    /// Same as [`Recorder::take_batch`].
    pub fn take(&self) -> Option<(Profile, BatchCounts)> {
        take_batch(&self.0)
    }
}

fn take_batch(shared: &Shared) -> Option<(Profile, BatchCounts)> {
    let mut guard = shared.batch.lock().ok()?;
    let batch = guard.as_mut()?;
    let counts = BatchCounts {
        elapsed: batch.since.elapsed(),
        ..batch.counts
    };
    let profile = batch.agg.take();
    batch.counts = BatchCounts::default();
    batch.since = Instant::now();
    Some((profile, counts))
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(mut child) = self.child.take() {
            // Dropped without finish(): still reap it, so no zombie is left.
            let _ = child.wait();
        }
    }
}

/// How long `subprocesses` waits for a first Python process in the tree.
const FIRST_PYTHON_TIMEOUT: Duration = Duration::from_secs(10);

/// The Python processes of `root`'s tree, waiting a while for a first one
/// (a shell or launcher may start Python later). A launched `child` is
/// reaped if it exits first.
fn first_in_tree(root: Pid, mut child: Option<&mut Child>) -> Result<Vec<Session>, Error> {
    let started = Instant::now();
    loop {
        let sessions = tree::attach_tree(root, child.is_some().then_some(root));
        if !sessions.is_empty() {
            return Ok(sessions);
        }
        let gone = match child.as_deref_mut() {
            Some(c) => matches!(c.try_wait(), Ok(Some(_))),
            None => pyspy_process::Process::open(root)
                .map(|p| !p.is_alive())
                .unwrap_or(true),
        };
        if gone || started.elapsed() > FIRST_PYTHON_TIMEOUT {
            if let Some(c) = child {
                let _ = c.kill();
                let _ = c.wait();
            }
            return Err(Error::Python(pyspy_cpython::Error::NotPython(format!(
                "no Python process found in process {root} or its subprocesses"
            ))));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The sampling thread: one process, or a tree; then the profile's header.
fn run(
    root: Pid,
    mut sessions: Vec<Session>,
    config: &RecordConfig,
    shared: &Shared,
) -> Result<(Profile, StopReason), Error> {
    let start_unix_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let command_line = sessions
        .iter()
        .find(|s| s.process().pid() == root)
        .unwrap_or(&sessions[0])
        .command_line()
        .to_owned();
    let python_version = sessions[0].interpreter().layout.version.to_string();
    let reason = if config.subprocesses {
        tree::sample_tree(root, sessions, config, shared)?
    } else {
        let session = sessions.remove(0);
        process_loop::sample_process(session, config, shared, &[])?
    };
    let duration = shared.started.elapsed();
    shared
        .elapsed_ns
        .store(duration.as_nanos() as u64, Ordering::Relaxed);
    let mut total = shared.total.lock().unwrap_or_else(|p| p.into_inner());
    let profile = total.profile_mut();
    profile.duration = duration;
    profile.rate_hz = config.rate_hz;
    profile.start_unix_ns = start_unix_ns;
    profile.pid = root;
    profile.command_line = command_line;
    profile.python_version = python_version;
    Ok((total.take(), reason))
}

/// `--gil` keeps the samples of the thread holding the GIL; a free-threaded
/// target running without one has no such thread, so every sample would be
/// dropped. Refused with the reason instead (with `PYTHON_GIL=1` it works).
fn refuse_gil_only_without_gil(sessions: &[Session]) -> Result<(), Error> {
    for s in sessions {
        if s.interpreter().gil_enabled(s.process())? == Some(false) {
            return Err(Error::Invalid(format!(
                "--gil: process {} runs a free-threaded Python {} with the GIL disabled: no thread \
                 ever holds a GIL, so every sample would be dropped (start it with PYTHON_GIL=1 \
                 to profile GIL holders)",
                s.process().pid(),
                s.interpreter().layout.version
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launching_nothing_is_a_clear_error() {
        let err = Recorder::start(&Target::Command(vec![]), RecordConfig::default())
            .err()
            .unwrap();
        assert_eq!(err.code(), "ELAUNCH");
        let err = Recorder::start(
            &Target::Command(vec!["/nonexistent/prog".into()]),
            RecordConfig::default(),
        )
        .err()
        .unwrap();
        assert_eq!(err.code(), "ELAUNCH");
        assert!(err.to_string().contains("/nonexistent/prog"), "{err}");
    }
}
