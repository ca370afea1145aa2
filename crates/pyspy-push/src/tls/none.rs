//! No TLS in this build: `https://` is refused before anything is sent.

use std::path::Path;

use ureq::config::ConfigBuilder;
use ureq::typestate::AgentScope;

use crate::Error;

/// This build does not speak TLS.
pub(crate) const AVAILABLE: bool = false;

/// Never built: nothing to trust without TLS.
#[derive(Debug, Clone)]
pub(crate) struct TrustedRoots;

pub(crate) fn load_ca(_path: &Path) -> Result<TrustedRoots, Error> {
    Err(Error::Unsupported(
        "--push-ca: this build has no TLS stack (https is supported on Linux builds)".into(),
    ))
}

pub(crate) fn is_tls_error(_e: &ureq::Error) -> bool {
    false
}

pub(crate) fn configure(
    builder: ConfigBuilder<AgentScope>,
    _roots: Option<&TrustedRoots>,
) -> ConfigBuilder<AgentScope> {
    builder
}
