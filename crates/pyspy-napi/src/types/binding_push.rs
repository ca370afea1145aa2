use std::time::Duration;

use napi_derive::napi;
use pyspy_push::{Clock, PushConfig, PushStats};
use pyspy_sampler::RecordConfig;

use crate::types::BindingError;

/// Continuous pushing to Grafana Pyroscope, part of `startRecorder`'s
/// options; mirrors `pyspy_push::PushConfig`.
#[napi(object, object_to_js = false)]
#[derive(Debug, Clone, Default)]
pub struct BindingPushOptions {
    /// `http://[user:password@]host[:port][/prefix]`.
    pub url: String,
    /// The `service_name` label.
    pub app_name: String,
    /// More labels, each `key=value`.
    pub tags: Option<Vec<String>>,
    /// Seconds per window. @default 10
    pub interval: Option<f64>,
    /// Bearer token.
    pub token: Option<String>,
    /// Tenant (`X-Scope-OrgID`).
    pub tenant: Option<String>,
    /// PEM file of the only certificates to trust for an `https://`
    /// server (a private CA).
    pub ca_file: Option<String>,
    /// A server that cannot be reached at start (or answers 5xx) is not an
    /// error: sampling starts and windows are queued and retried.
    /// @default false
    pub retry_forever: Option<bool>,
}

impl BindingPushOptions {
    /// The push configuration for a recording made with `record`; `EINVAL`
    /// for a bad option.
    pub(crate) fn to_config(&self, record: &RecordConfig) -> Result<PushConfig, BindingError> {
        let mut config = PushConfig::new(self.url.clone(), self.app_name.clone());
        for tag in self.tags.iter().flatten() {
            config.tags.push(pyspy_push::parse_tag(tag)?);
        }
        if let Some(secs) = self.interval {
            if !(secs.is_finite() && (0.1..=3600.0).contains(&secs)) {
                return Err(BindingError {
                    code: "EINVAL".into(),
                    message: format!("push interval must be from 0.1 to 3600 seconds, got {secs}"),
                });
            }
            config.interval = Duration::from_secs_f64(secs);
        }
        config.token = self.token.clone();
        config.tenant = self.tenant.clone();
        config.ca_file = self.ca_file.as_ref().map(Into::into);
        config.rate_hz = record.rate_hz;
        config.clock = if record.include_idle {
            Clock::Wall
        } else {
            Clock::Cpu
        };
        Ok(config)
    }
}

/// What pushing did; mirrors `pyspy_push::PushStats`, plus the warning
/// lines since the previous read.
#[napi(object, object_from_js = false)]
#[derive(Debug, Clone, PartialEq)]
pub struct BindingPushStats {
    /// Windows the server accepted.
    pub pushed: f64,
    /// Request bytes the server accepted.
    pub bytes: f64,
    /// Stack samples in the accepted windows.
    pub samples: f64,
    /// Windows dropped unsent (queue full, or still failing at the end).
    pub dropped: f64,
    /// Windows the server refused for good (4xx).
    pub failed: f64,
    /// Failed sends that were retried.
    pub retries: f64,
    /// Windows waiting to be sent.
    pub queued: f64,
    /// Bytes waiting to be sent.
    pub queued_bytes: f64,
    /// New warning lines, one per kind of failure.
    pub warnings: Vec<String>,
}

impl BindingPushStats {
    pub(crate) fn new(s: PushStats, warnings: Vec<String>) -> Self {
        BindingPushStats {
            pushed: s.pushed as f64,
            bytes: s.bytes as f64,
            samples: s.samples as f64,
            dropped: s.dropped as f64,
            failed: s.failed as f64,
            retries: s.retries as f64,
            queued: s.queued as f64,
            queued_bytes: s.queued_bytes as f64,
            warnings,
        }
    }
}

impl From<pyspy_push::Error> for BindingError {
    fn from(e: pyspy_push::Error) -> Self {
        Self {
            code: e.code().to_owned(),
            message: e.to_string(),
        }
    }
}
