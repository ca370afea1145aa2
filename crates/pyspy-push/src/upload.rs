//! Sending: the HTTP transport, and the upload loop that drains the queue
//! on its own thread, retrying with backoff and classifying failures.

use std::time::{Duration, Instant};

use crate::endpoint::Endpoint;
use crate::queue::{Backoff, Trouble};
use crate::tls;
use crate::Shared;

/// How one send went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// 2xx.
    Accepted,
    /// An HTTP answer other than 2xx, with the start of its body.
    Status(u16, String),
    /// No answer: connection refused, DNS, reset, timeout...
    Unreachable(String),
    /// The TLS handshake failed (e.g. a certificate not trusted).
    Tls(String),
}

/// Sends one request body; the tests use a fake.
pub(crate) trait Transport: Send {
    fn send(&mut self, body: &[u8]) -> Outcome;
}

/// HTTP(S) transport with bounded timeouts (a slow server delays uploads,
/// never sampling).
pub(crate) struct Http {
    agent: ureq::Agent,
    endpoint: Endpoint,
}

impl Http {
    pub(crate) fn new(
        endpoint: Endpoint,
        timeout: Duration,
        roots: Option<&tls::TrustedRoots>,
    ) -> Self {
        let builder = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(timeout.min(Duration::from_secs(5))))
            .timeout_global(Some(timeout));
        let agent = tls::configure(builder, roots).build().into();
        Http { agent, endpoint }
    }
}

impl Transport for Http {
    fn send(&mut self, body: &[u8]) -> Outcome {
        let mut req = self
            .agent
            .post(&self.endpoint.push_url)
            .header("Content-Type", "application/json");
        for (k, v) in &self.endpoint.headers {
            req = req.header(k, v);
        }
        match req.send(body) {
            Ok(mut resp) => {
                let status = resp.status().as_u16();
                if (200..300).contains(&status) {
                    return Outcome::Accepted;
                }
                let text = resp
                    .body_mut()
                    .with_config()
                    .limit(4096)
                    .read_to_string()
                    .unwrap_or_default();
                Outcome::Status(status, one_line(&text))
            }
            Err(e) if tls::is_tls_error(&e) => Outcome::Tls(e.to_string()),
            Err(e) => Outcome::Unreachable(e.to_string()),
        }
    }
}

fn one_line(text: &str) -> String {
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    line.chars().take(200).collect()
}

/// Whether a status is worth retrying.
pub(crate) fn retryable(status: u16) -> bool {
    status >= 500 || status == 408 || status == 429
}

/// The upload thread: sends queued windows oldest first until the queue is
/// empty and the window thread has closed it, or the flush deadline passes.
pub(crate) fn run(shared: &Shared, transport: &mut dyn Transport, mut backoff: Backoff) {
    let url = &shared.display_url;
    loop {
        let window = {
            let mut st = shared.lock();
            loop {
                if st.closed && (st.queue.len() == 0 || past(st.deadline)) {
                    let unsent = st.queue.clear();
                    if unsent > 0 {
                        st.stats.dropped += unsent;
                        st.warnings.push(format!(
                            "push: {unsent} window(s) not sent before exit ({url} still failing)"
                        ));
                    }
                    return;
                }
                if let Some(w) = st.queue.pop_front() {
                    break w;
                }
                st = shared.wait(st, None);
            }
        };
        let outcome = transport.send(&window.body);
        let mut st = shared.lock();
        let failure = match outcome {
            Outcome::Accepted => {
                st.stats.pushed += 1;
                st.stats.bytes += window.body.len() as u64;
                st.stats.samples += window.samples;
                backoff.reset();
                st.warnings
                    .recovered(|| format!("push: {url} accepts windows again"));
                None
            }
            Outcome::Status(code, text) if !retryable(code) => {
                st.stats.failed += 1;
                st.warnings.report(Trouble::Refused(code), || {
                    format!("push: {url} refused a window (HTTP {code}: {text}); such windows are dropped")
                });
                None
            }
            Outcome::Status(code, text) => {
                Some((Trouble::Retryable(code), format!("HTTP {code}: {text}")))
            }
            Outcome::Unreachable(e) | Outcome::Tls(e) => Some((Trouble::Unreachable, e)),
        };
        if let Some((trouble, why)) = failure {
            st.stats.retries += 1;
            st.warnings.report(trouble, || {
                format!("push: {url} failed ({why}); retrying with backoff, sampling goes on")
            });
            let dropped = st.queue.push_front(window);
            note_dropped(&mut st, dropped, url);
            let until = Instant::now() + backoff.next_delay();
            // Sleep out the backoff, but wake for the end of the run (whose
            // flush deadline bounds it).
            while Instant::now() < until && !(st.closed && past(st.deadline)) {
                let wait = until.saturating_duration_since(Instant::now());
                st = shared.wait(st, Some(wait));
            }
        }
    }
}

fn past(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| Instant::now() >= d)
}

/// Counts windows the queue dropped, warning once.
pub(crate) fn note_dropped(st: &mut crate::State, dropped: u64, url: &str) {
    if dropped == 0 {
        return;
    }
    st.stats.dropped += dropped;
    let (max_w, max_b) = (st.max_windows, st.max_bytes);
    st.warnings.report(Trouble::QueueFull, || {
        format!(
            "push: queue for {url} full ({max_w} windows / {} MiB): dropping the oldest windows (counted in the summary)",
            max_b >> 20
        )
    });
}
