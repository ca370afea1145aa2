//! Recording: a native thread samples one target on a jittered schedule and
//! aggregates as it goes; callers poll progress, take batches, stop it, and
//! finally get the [`Profile`]. Launching a command (and passing its exit
//! status back) is handled here too, so the child is ours, not the JS
//! runtime's.

use std::collections::HashMap;
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pyspy_output::{FrameKind, FrameLabel, Profile};
use pyspy_process::Pid;

use crate::aggregate::{thread_label, Aggregator, LineMode};
use crate::{Error, RawSample, ReadMode, Session};

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

#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    attempts: AtomicU64,
    samples: AtomicU64,
    errors: AtomicU64,
    lateness_ns: AtomicU64,
    elapsed_ns: AtomicU64,
    torn_reads: AtomicU64,
    paused_samples: AtomicU64,
    batch: Mutex<Option<Batch>>,
}

/// A recording in progress.
pub struct Recorder {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<Result<(Profile, StopReason), Error>>>,
    child: Option<Child>,
    pid: Pid,
    python_version: String,
}

/// Counts of one batch that its stacks alone do not tell (for live views).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BatchCounts {
    /// Sampling attempts, failed ones included.
    pub attempts: u64,
    /// Attempts in which some thread held the GIL.
    pub gil_attempts: u64,
    /// Thread-samples of threads that were active (before any filtering).
    pub active_thread_samples: u64,
    /// Python threads seen by the last successful attempt.
    pub threads: u64,
    /// Time the batch covers.
    pub elapsed: Duration,
}

struct Batch {
    agg: Aggregator,
    counts: BatchCounts,
    since: Instant,
}

impl Batch {
    fn new() -> Self {
        Batch {
            agg: Aggregator::new(false),
            counts: BatchCounts::default(),
            since: Instant::now(),
        }
    }
}

/// How long a launched command may take to show a Python interpreter.
const LAUNCH_ATTACH_TIMEOUT: Duration = Duration::from_secs(30);

impl Recorder {
    /// Attaches (or launches and attaches) and starts sampling on a new
    /// thread. Fails early, before any thread starts, when the target cannot
    /// be read.
    pub fn start(target: &Target, config: RecordConfig) -> Result<Recorder, Error> {
        let (session, child) = match target {
            Target::Pid(pid) => (Session::attach(*pid)?, None),
            Target::Command(argv) => launch(argv)?,
        };
        let pid = session.process().pid();
        let python_version = session.interpreter().layout.version.to_string();
        let shared = Arc::new(Shared::default());
        if config.batches {
            *shared.batch.lock().unwrap() = Some(Batch::new());
        }
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name("pyspy-sampler".into())
            .spawn(move || sample_loop(session, &config, &worker))
            .map_err(|e| {
                Error::Process(pyspy_process::Error::Io {
                    pid,
                    what: "sampler thread".into(),
                    source: e,
                })
            })?;
        Ok(Recorder {
            shared,
            thread: Some(thread),
            child,
            pid,
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
        let mut guard = self.shared.batch.lock().ok()?;
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

/// Spawns `argv` with inherited stdio and attaches as soon as its
/// interpreter is up (retrying through exec and interpreter start-up).
fn launch(argv: &[String]) -> Result<(Session, Option<Child>), Error> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| Error::Launch("no command given".into()))?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(inherited(0))
        .stdout(inherited(1))
        .stderr(inherited(2))
        .spawn()
        .map_err(|e| Error::Launch(format!("could not start '{program}': {e}")))?;
    let pid = child.id() as Pid;
    let started = Instant::now();
    let mut wait = Duration::from_micros(200);
    loop {
        match Session::attach(pid) {
            Ok(session) => {
                // Nothing but `finish` waits for this child: ptrace is safe.
                session.process().set_child_ptrace_safe();
                return Ok((session, Some(child)));
            }
            Err(e) => {
                let exited = matches!(child.try_wait(), Ok(Some(_)));
                let fatal = matches!(e.code(), "EPERM" | "EUNSUPPORTED");
                if exited || fatal || started.elapsed() > LAUNCH_ATTACH_TIMEOUT {
                    if !exited {
                        let _ = child.kill();
                    }
                    let _ = child.wait();
                    if exited && !fatal {
                        return Err(Error::Launch(format!(
                            "'{program}' exited before a Python interpreter could be found in it"
                        )));
                    }
                    return Err(e);
                }
            }
        }
        std::thread::sleep(wait);
        wait = (wait * 2).min(Duration::from_millis(10));
    }
}

/// Our standard stream `fd` for the child. Node marks its own 0–2
/// close-on-exec, so plain inheritance would leave the child without them:
/// hand it a duplicate, which the spawn installs as the child's `fd`.
#[cfg(unix)]
fn inherited(fd: i32) -> std::process::Stdio {
    use std::os::fd::BorrowedFd;
    // SAFETY: 0–2 are open for the life of the process (or the dup fails).
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    match borrowed.try_clone_to_owned() {
        Ok(owned) => owned.into(),
        Err(_) => std::process::Stdio::inherit(),
    }
}

#[cfg(not(unix))]
fn inherited(_fd: i32) -> std::process::Stdio {
    std::process::Stdio::inherit()
}

/// A small, fast pseudo-random generator for schedule jitter.
struct Jitter(u64);

impl Jitter {
    /// A factor in [0.5, 1.5): intervals vary around the period, so sampling
    /// never locks onto periodic work in the target.
    fn factor(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        0.5 + (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn sample_loop(
    mut session: Session,
    config: &RecordConfig,
    shared: &Shared,
) -> Result<(Profile, StopReason), Error> {
    let period = Duration::from_secs_f64(1.0 / config.rate_hz.max(0.001));
    let start_unix_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let started = Instant::now();
    let mut jitter = Jitter(0x9e37_79b9_7f4a_7c15 ^ start_unix_ns);
    let mut total = Aggregator::new(true);
    let mut raw = RawSample::default();
    let mut labeler = Labeler::default();
    let mut thread_roots: Vec<Option<u32>> = Vec::new();
    let mut key: Vec<u32> = Vec::with_capacity(256);
    let pid = session.process().pid();
    let os_state = !config.include_idle && !config.gil_only;
    let mut next = started;
    let reason = loop {
        if shared.stop.load(Ordering::Relaxed) {
            break StopReason::Stopped;
        }
        let now = Instant::now();
        if config
            .duration
            .is_some_and(|d| now.duration_since(started) >= d)
        {
            break StopReason::Duration;
        }
        if next > now {
            std::thread::sleep(next - now);
            continue; // re-check stop and duration after sleeping
        }
        let lateness = now - next;
        shared
            .lateness_ns
            .store(lateness.as_nanos() as u64, Ordering::Relaxed);
        // Far behind: skip the missed slots instead of sampling in a burst.
        next = if lateness > period { now } else { next };
        next += period.mul_f64(jitter.factor());
        let at = now.duration_since(started);
        shared.attempts.fetch_add(1, Ordering::Relaxed);
        match session.sample_raw(config.mode, os_state, &mut raw) {
            Ok(()) => {
                // Code objects freed and replaced at the same address: their
                // labels must be rebuilt before this sample is counted.
                for code in session.walker().take_evicted() {
                    labeler.ids.retain(|&(c, _), _| c != code);
                }
                let mut batch = shared.batch.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(b) = batch.as_mut() {
                    let c = &mut b.counts;
                    c.attempts += 1;
                    c.gil_attempts += raw.threads().iter().any(|t| t.owns_gil) as u64;
                    c.active_thread_samples +=
                        raw.threads().iter().filter(|t| t.active).count() as u64;
                    c.threads = raw.threads().len() as u64;
                }
                for t in raw.threads() {
                    // A thread running no Python code (starting up, shutting
                    // down) has nothing to count.
                    if t.frames.is_empty()
                        || !(config.include_idle || t.active)
                        || (config.gil_only && !t.owns_gil)
                    {
                        continue;
                    }
                    key.clear();
                    let name = session.thread_name(t.thread_id);
                    key.push(total.thread_id(pid, t.thread_id, t.os_thread_id, name));
                    if config.thread_roots {
                        let thread = key[0] as usize;
                        if thread_roots.len() <= thread {
                            thread_roots.resize(thread + 1, None);
                        }
                        let id = match thread_roots[thread] {
                            Some(id) => id,
                            None => {
                                total.frame_id(&thread_label(t.os_thread_id, t.thread_id, name))
                            }
                        };
                        // Keep looking until the name is known.
                        if name.is_some() {
                            thread_roots[thread] = Some(id);
                        }
                        key.push(id);
                    }
                    for f in t.frames.iter().rev() {
                        key.push(labeler.frame_id(
                            &mut total,
                            &mut session,
                            f.code,
                            f.line,
                            config,
                        )?);
                    }
                    total.add(&key, at);
                    if let Some(b) = batch.as_mut().map(|b| &mut b.agg) {
                        // Same ids are not shared across aggregators: re-intern.
                        let mut bkey = Vec::with_capacity(key.len());
                        let name = session.thread_name(t.thread_id);
                        bkey.push(b.thread_id(pid, t.thread_id, t.os_thread_id, name));
                        for &id in &key[1..] {
                            bkey.push(b.frame_id(&total.profile().frames[id as usize]));
                        }
                        b.add(&bkey, at);
                    }
                }
                shared.samples.store(total.samples(), Ordering::Relaxed);
            }
            Err(e) if !session.process().is_alive() || e.code() == "EEXITED" => {
                let _ = e;
                break StopReason::TargetExited;
            }
            Err(_) => {
                total.add_error();
                shared.errors.fetch_add(1, Ordering::Relaxed);
                if let Some(b) = shared
                    .batch
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .as_mut()
                {
                    b.agg.add_error();
                    b.counts.attempts += 1;
                }
            }
        }
        shared
            .elapsed_ns
            .store(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        let (torn, paused) = session.consistency_stats();
        shared.torn_reads.store(torn, Ordering::Relaxed);
        shared.paused_samples.store(paused, Ordering::Relaxed);
    };
    let duration = started.elapsed();
    shared
        .elapsed_ns
        .store(duration.as_nanos() as u64, Ordering::Relaxed);
    let profile = total.profile_mut();
    profile.duration = duration;
    profile.rate_hz = config.rate_hz;
    profile.start_unix_ns = start_unix_ns;
    profile.pid = pid;
    profile.command_line = session.command_line().to_owned();
    profile.python_version = session.interpreter().layout.version.to_string();
    Ok((total.take(), reason))
}

/// Frame ids of the total aggregation by (code object, line): each label is
/// built and hashed once; later samples find the id with one lookup.
#[derive(Default)]
struct Labeler {
    ids: HashMap<(usize, i32), u32>,
}

impl Labeler {
    fn frame_id(
        &mut self,
        total: &mut Aggregator,
        session: &mut Session,
        code: usize,
        line: i32,
        config: &RecordConfig,
    ) -> Result<u32, Error> {
        let key = (
            code,
            if config.lines == LineMode::Current {
                line
            } else {
                0
            },
        );
        if let Some(&id) = self.ids.get(&key) {
            return Ok(id);
        }
        let info = session.walker().code(code)?;
        let first_line = info.first_line.max(0) as u32;
        let shown = match config.lines {
            LineMode::Current => line.max(0) as u32,
            LineMode::FunctionStart => first_line,
            LineMode::None => 0,
        };
        let filename = info.filename.to_string();
        let short_filename = session.short_filename(&filename, config.full_filenames);
        let id = total.frame_id(&FrameLabel {
            name: info.name.to_string(),
            filename,
            short_filename,
            line: shown,
            first_line,
            kind: FrameKind::Python,
        });
        self.ids.insert(key, id);
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_in_range_and_averages_one() {
        let mut j = Jitter(12345);
        let mut sum = 0.0;
        for _ in 0..100_000 {
            let f = j.factor();
            assert!((0.5..1.5).contains(&f));
            sum += f;
        }
        assert!((sum / 100_000.0 - 1.0).abs() < 0.01);
    }

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
