//! TLS through ureq's rustls (ring provider, webpki roots).

use std::path::Path;

use ureq::config::ConfigBuilder;
use ureq::tls::{parse_pem, Certificate, PemItem, RootCerts, TlsConfig};
use ureq::typestate::AgentScope;

use crate::Error;

/// This build speaks TLS.
pub(crate) const AVAILABLE: bool = true;

/// The only certificates trusted for the server (a private CA).
#[derive(Debug, Clone)]
pub(crate) struct TrustedRoots(Vec<Certificate<'static>>);

/// Reads the PEM certificates of `path`; `EINVAL` when it has none.
pub(crate) fn load_ca(path: &Path) -> Result<TrustedRoots, Error> {
    let bad = |why: String| Error::Invalid(format!("push CA file '{}': {why}", path.display()));
    let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let mut certs = Vec::new();
    for item in parse_pem(&pem) {
        match item {
            Ok(PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {} // keys and other sections are not roots
            Err(e) => return Err(bad(format!("not PEM ({e})"))),
        }
    }
    if certs.is_empty() {
        return Err(bad("no PEM certificate in it".into()));
    }
    Ok(TrustedRoots(certs))
}

/// Whether a failed request failed in TLS (the handshake, the
/// certificate): not something a retry fixes by itself.
pub(crate) fn is_tls_error(e: &ureq::Error) -> bool {
    match e {
        ureq::Error::Rustls(_) | ureq::Error::Tls(_) => true,
        // A handshake that fails comes back as the I/O error wrapping it.
        ureq::Error::Io(io) => io
            .get_ref()
            .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some()),
        _ => false,
    }
}

/// Sets the roots: the bundled web roots, or only `roots`.
pub(crate) fn configure(
    builder: ConfigBuilder<AgentScope>,
    roots: Option<&TrustedRoots>,
) -> ConfigBuilder<AgentScope> {
    match roots {
        Some(TrustedRoots(certs)) => builder.tls_config(
            TlsConfig::builder()
                .root_certs(RootCerts::new_with_certs(certs))
                .build(),
        ),
        None => builder,
    }
}
