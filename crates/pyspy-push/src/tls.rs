//! TLS for `https://` servers: rustls (ring) with Mozilla's roots bundled,
//! or only the certificates of a `--push-ca` file. Linux builds carry it;
//! the other platforms' builds refuse `https://` (`EUNSUPPORTED`) until
//! their cross builds are checked with ring's C code.

#[cfg(target_os = "linux")]
#[path = "tls/rustls.rs"]
mod imp;

#[cfg(not(target_os = "linux"))]
#[path = "tls/none.rs"]
mod imp;

pub(crate) use imp::{configure, is_tls_error, load_ca, TrustedRoots, AVAILABLE};
