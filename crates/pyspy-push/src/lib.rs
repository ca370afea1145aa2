//! Continuous profiling into Grafana Pyroscope.
//!
//! A [`Pusher`] takes windows of samples (each a [`Profile`] aggregated by
//! the sampler over one `interval`), encodes each as one gzipped pprof per
//! process with the window's own `time_nanos`/`duration_nanos`, and pushes
//! it to Pyroscope's Connect ingestion call (`POST
//! /push.v1.PusherService/Push`, JSON body) as one series per process,
//! labelled `service_name`, the user's tags, `pid` and `command`.
//!
//! Two threads do the work, never the sampling threads: one cuts a window
//! every `interval` (a lock held for a `mem::replace`) and encodes it; one
//! uploads. Between them a queue bounded in windows and bytes drops the
//! oldest window first when the server cannot keep up; failed sends are
//! retried with exponential backoff (jittered), 4xx refusals other than
//! 408/429 are dropped; every kind of failure is warned about once (read
//! with [`Pusher::take_warnings`]) until a push succeeds again. [`Pusher::check`]
//! makes one empty push first, so a bad URL, a dead server or refused
//! credentials fail at start with a clear [`Error`]. Auth: basic auth from
//! the URL's user info, or a bearer token; the tenant goes in
//! `X-Scope-OrgID`. `https://` on Linux builds (rustls; Mozilla's roots, or
//! only a private CA's with [`PushConfig::ca_file`]).
//!
//! What it does not do: sample (that is `pyspy-sampler`; [`Pusher::start`]
//! takes a closure that returns the next batch), speak TLS on other
//! platforms' builds (`EUNSUPPORTED`), client certificates, use the legacy
//! `/ingest` API, or keep windows on disk across restarts.
#![deny(missing_docs)]

mod endpoint;
mod error;
mod queue;
mod tls;
mod upload;
mod window;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use error::Error;
pub use pyspy_output::{Clock, Profile};
pub use queue::PushStats;

use endpoint::Endpoint;
use queue::{Backoff, Queue, Warnings};
use upload::{Http, Outcome, Transport};

/// How to push.
#[derive(Debug, Clone)]
pub struct PushConfig {
    /// `http://[user:password@]host[:port][/prefix]`.
    pub url: String,
    /// The `service_name` label.
    pub app_name: String,
    /// More series labels (`key`, `value`).
    pub tags: Vec<(String, String)>,
    /// Length of a window.
    pub interval: Duration,
    /// Bearer token (`Authorization: Bearer ...`).
    pub token: Option<String>,
    /// Tenant (`X-Scope-OrgID`).
    pub tenant: Option<String>,
    /// PEM file of the only certificates to trust for an `https://` server
    /// (a private CA); None: the bundled web roots.
    pub ca_file: Option<std::path::PathBuf>,
    /// CPU (default) or wall clock (idle threads sampled too).
    pub clock: Clock,
    /// The sampling rate, for the pprof period.
    pub rate_hz: f64,
    /// Most windows queued before the oldest is dropped.
    pub max_windows: usize,
    /// Most bytes queued before the oldest window is dropped.
    pub max_bytes: usize,
    /// Limit on one HTTP request.
    pub request_timeout: Duration,
    /// How long [`Pusher::finish`] keeps trying to send what is queued.
    pub flush_timeout: Duration,
    /// First retry delay (doubling up to `retry_max`).
    pub retry_initial: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
}

impl PushConfig {
    /// Defaults: 10 s windows, 100 Hz, CPU clock, a queue of 60 windows or
    /// 32 MiB, 10 s per request, 5 s to flush at the end, retries from 0.5 s
    /// to 15 s.
    pub fn new(url: impl Into<String>, app_name: impl Into<String>) -> Self {
        PushConfig {
            url: url.into(),
            app_name: app_name.into(),
            tags: Vec::new(),
            interval: Duration::from_secs(10),
            token: None,
            tenant: None,
            ca_file: None,
            clock: Clock::Cpu,
            rate_hz: 100.0,
            max_windows: 60,
            max_bytes: 32 << 20,
            request_timeout: Duration::from_secs(10),
            flush_timeout: Duration::from_secs(5),
            retry_initial: Duration::from_millis(500),
            retry_max: Duration::from_secs(15),
        }
    }

    fn validate(&self) -> Result<Endpoint, Error> {
        if !valid_label_value(&self.app_name) {
            return Err(Error::Invalid(format!(
                "invalid app name '{}': expected 1-200 printable characters",
                self.app_name
            )));
        }
        for (k, v) in &self.tags {
            check_tag(k, v)?;
        }
        let secs = self.interval.as_secs_f64();
        if !(0.1..=3600.0).contains(&secs) {
            return Err(Error::Invalid(format!(
                "push interval must be from 0.1 to 3600 seconds, got {secs}"
            )));
        }
        let endpoint = Endpoint::parse(&self.url, self.token.as_deref(), self.tenant.as_deref())?;
        if self.ca_file.is_some() && !endpoint.display.starts_with("https://") {
            return Err(Error::Invalid(
                "a push CA file is for https:// servers only".into(),
            ));
        }
        Ok(endpoint)
    }

    /// The private CA's certificates, when one is given.
    fn roots(&self) -> Result<Option<tls::TrustedRoots>, Error> {
        self.ca_file.as_deref().map(tls::load_ca).transpose()
    }
}

/// Parses a `key=value` tag, checking that Pyroscope takes it as a label.
pub fn parse_tag(text: &str) -> Result<(String, String), Error> {
    let (k, v) = text
        .split_once('=')
        .ok_or_else(|| Error::Invalid(format!("invalid tag '{text}': expected key=value")))?;
    check_tag(k, v)?;
    Ok((k.to_owned(), v.to_owned()))
}

/// Labels this crate sets itself.
const RESERVED: [&str; 4] = ["__name__", "service_name", "pid", "command"];

fn check_tag(k: &str, v: &str) -> Result<(), Error> {
    let name_ok = k
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !name_ok {
        return Err(Error::Invalid(format!(
            "invalid tag key '{k}': use letters, digits and _ (not starting with a digit)"
        )));
    }
    if RESERVED.contains(&k) {
        return Err(Error::Invalid(format!(
            "tag key '{k}' is set by pyspy-node itself"
        )));
    }
    if !valid_label_value(v) {
        return Err(Error::Invalid(format!(
            "invalid value for tag '{k}': expected 1-200 printable characters"
        )));
    }
    Ok(())
}

fn valid_label_value(v: &str) -> bool {
    !v.is_empty() && v.chars().count() <= 200 && !v.chars().any(char::is_control)
}

/// State the two threads share, under one lock.
pub(crate) struct State {
    pub(crate) queue: Queue,
    pub(crate) stats: PushStats,
    pub(crate) warnings: Warnings,
    /// Finish asked: cut the last window and stop.
    stopping: bool,
    /// The window thread is done: no more windows.
    pub(crate) closed: bool,
    /// When the upload thread gives up on what is left.
    pub(crate) deadline: Option<Instant>,
    pub(crate) max_windows: usize,
    pub(crate) max_bytes: usize,
}

pub(crate) struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    /// The URL without credentials, for messages.
    pub(crate) display_url: String,
    stop_now: AtomicBool,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for a notification (or `timeout`).
    pub(crate) fn wait<'a>(
        &self,
        guard: MutexGuard<'a, State>,
        timeout: Option<Duration>,
    ) -> MutexGuard<'a, State> {
        match timeout {
            Some(t) => {
                self.wake
                    .wait_timeout(guard, t)
                    .unwrap_or_else(|p| p.into_inner())
                    .0
            }
            None => self.wake.wait(guard).unwrap_or_else(|p| p.into_inner()),
        }
    }
}

/// Pushing in progress.
pub struct Pusher {
    shared: Arc<Shared>,
    windower: Option<JoinHandle<()>>,
    uploader: Option<JoinHandle<()>>,
    flush_timeout: Duration,
}

impl Pusher {
    /// Checks `config` and makes one empty push, so that a bad URL, a server
    /// that cannot be reached or refused credentials fail now: `EINVAL`,
    /// `EUNSUPPORTED` or `EPUSH`.
    pub fn check(config: &PushConfig) -> Result<(), Error> {
        let endpoint = config.validate()?;
        let display = endpoint.display.clone();
        let mut http = Http::new(endpoint, config.request_timeout, config.roots()?.as_ref());
        // Pyroscope answers an empty push with 400 `invalid_argument` ("no
        // profiles received") after the auth check: that proves the URL,
        // the credentials and the API without storing anything.
        let outcome = http.send(br#"{"series":[]}"#);
        let transient = match &outcome {
            Outcome::Unreachable(_) => true,
            Outcome::Status(code, _) => upload::retryable(*code),
            Outcome::Accepted | Outcome::Tls(_) => false,
        };
        let reason = match outcome {
            Outcome::Accepted => return Ok(()),
            Outcome::Status(400, text) if text.contains("invalid_argument") => return Ok(()),
            Outcome::Unreachable(e) => format!("the server cannot be reached ({e})"),
            Outcome::Tls(e) => format!(
                "TLS failed ({e}); check the server's certificate, or give its CA with --push-ca (library: caFile)"
            ),
            Outcome::Status(code @ (401 | 403), text) => format!(
                "the server refused the credentials (HTTP {code}: {text}); check the user and password in the URL, --push-token or --push-tenant"
            ),
            Outcome::Status(404, _) => format!(
                "no Pyroscope push API there (HTTP 404 for {})",
                endpoint::PUSH_PATH
            ),
            Outcome::Status(code, text) => format!("HTTP {code}: {text}"),
        };
        Err(Error::Server {
            url: display,
            reason,
            transient,
        })
    }

    /// Starts the window and upload threads. `source` returns what was
    /// sampled since its previous call (None: nothing); it is called every
    /// `interval` and once more by [`Pusher::finish`]. Does not contact the
    /// server: call [`Pusher::check`] first for that.
    pub fn start<F>(config: PushConfig, source: F) -> Result<Pusher, Error>
    where
        F: FnMut() -> Option<Profile> + Send + 'static,
    {
        let endpoint = config.validate()?;
        let roots = config.roots()?;
        let transport = Http::new(endpoint.clone(), config.request_timeout, roots.as_ref());
        Self::start_with(config, endpoint, Box::new(transport), source)
    }

    fn start_with<F>(
        config: PushConfig,
        endpoint: Endpoint,
        mut transport: Box<dyn Transport>,
        mut source: F,
    ) -> Result<Pusher, Error>
    where
        F: FnMut() -> Option<Profile> + Send + 'static,
    {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queue: Queue::new(config.max_windows, config.max_bytes),
                stats: PushStats::default(),
                warnings: Warnings::default(),
                stopping: false,
                closed: false,
                deadline: None,
                max_windows: config.max_windows,
                max_bytes: config.max_bytes,
            }),
            wake: Condvar::new(),
            display_url: endpoint.display.clone(),
            stop_now: AtomicBool::new(false),
        });
        let seed = unix_ns() ^ u64::from(std::process::id());
        let backoff = Backoff::new(config.retry_initial, config.retry_max, seed);
        let up = shared.clone();
        let uploader = std::thread::Builder::new()
            .name("pyspy-push-upload".into())
            .spawn(move || upload::run(&up, transport.as_mut(), backoff))
            .map_err(|source| Error::Thread {
                what: "push upload",
                source,
            })?;
        let win = shared.clone();
        let mut encoder =
            window::Encoder::new(&config.app_name, &config.tags, config.clock, config.rate_hz);
        let interval = config.interval;
        let windower = std::thread::Builder::new()
            .name("pyspy-push-window".into())
            .spawn(move || cut_windows(&win, interval, &mut encoder, &mut source));
        let windower = match windower {
            Ok(w) => w,
            Err(source) => {
                // Let the upload thread end before reporting.
                let mut st = shared.lock();
                st.closed = true;
                drop(st);
                shared.wake.notify_all();
                let _ = uploader.join();
                return Err(Error::Thread {
                    what: "push window",
                    source,
                });
            }
        };
        Ok(Pusher {
            shared,
            windower: Some(windower),
            uploader: Some(uploader),
            flush_timeout: config.flush_timeout,
        })
    }

    /// Counts so far.
    pub fn stats(&self) -> PushStats {
        let st = self.shared.lock();
        PushStats {
            queued: st.queue.len() as u64,
            queued_bytes: st.queue.bytes() as u64,
            ..st.stats
        }
    }

    /// Adds a warning line of the caller's (e.g. why the start check failed
    /// when the caller chose to start anyway).
    pub fn warn(&self, line: String) {
        self.shared.lock().warnings.push(line);
    }

    /// Warning lines since the previous call (one per kind of failure).
    pub fn take_warnings(&self) -> Vec<String> {
        self.shared.lock().warnings.take()
    }

    /// Cuts the last window (call it once sampling has ended), then keeps
    /// sending what is queued for up to the flush timeout; what is still
    /// unsent then counts as dropped. Returns the final counts and the
    /// warning lines not yet read.
    pub fn finish(mut self) -> (PushStats, Vec<String>) {
        self.end(self.flush_timeout);
        (self.stats(), self.take_warnings())
    }

    fn end(&mut self, flush: Duration) {
        {
            let mut st = self.shared.lock();
            st.stopping = true;
            st.deadline = Some(Instant::now() + flush);
        }
        self.shared.wake.notify_all();
        if let Some(w) = self.windower.take() {
            let _ = w.join();
        }
        if let Some(u) = self.uploader.take() {
            let _ = u.join();
        }
    }
}

impl Drop for Pusher {
    fn drop(&mut self) {
        if self.windower.is_none() && self.uploader.is_none() {
            return; // finished
        }
        // Dropped without finish(): tell both threads to end at once and do
        // not wait for them (an upload in flight may take its timeout; the
        // caller, possibly the JS thread, must not).
        self.shared.stop_now.store(true, Ordering::Relaxed);
        {
            let mut st = self.shared.lock();
            st.stopping = true;
            st.deadline = Some(Instant::now());
        }
        self.shared.wake.notify_all();
    }
}

/// The window thread.
fn cut_windows(
    shared: &Shared,
    interval: Duration,
    encoder: &mut window::Encoder,
    source: &mut dyn FnMut() -> Option<Profile>,
) {
    let mut start = unix_ns();
    let mut next = Instant::now() + interval;
    loop {
        let stopping = {
            let mut st = shared.lock();
            while !st.stopping && Instant::now() < next {
                let wait = next.saturating_duration_since(Instant::now());
                st = shared.wait(st, Some(wait));
            }
            st.stopping
        };
        let now = Instant::now();
        next = if now > next + interval {
            now + interval
        } else {
            next + interval
        };
        let end = unix_ns();
        let last = stopping && !shared.stop_now.load(Ordering::Relaxed);
        if !stopping || last {
            if let Some(profile) = source() {
                let duration = Duration::from_nanos(end.saturating_sub(start));
                let encoded = encoder.encode(&profile, start, duration);
                encoder.forget_except(&window::pids(&profile));
                if let Some(w) = encoded {
                    let mut st = shared.lock();
                    let dropped = st.queue.push_back(w);
                    upload::note_dropped(&mut st, dropped, &shared.display_url);
                }
                shared.wake.notify_all();
            }
        }
        start = end;
        if stopping {
            shared.lock().closed = true;
            shared.wake.notify_all();
            return;
        }
    }
}

fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
