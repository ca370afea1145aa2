//! The recorded-profile model ([`Profile`]) and its file formats.
//!
//! A [`Profile`] is what a recording leaves behind: interned frames and
//! threads, a count per unique stack, and a run-length timeline. [`encode`]
//! writes it in one of five [`Format`]s, as the tools that read them expect:
//!
//! | [`Format`] | File | Read by |
//! |---|---|---|
//! | `flamegraph` | interactive SVG (icicle, via `inferno`) | a browser |
//! | `speedscope` | speedscope JSON, one `sampled` profile per thread | speedscope.app |
//! | `raw` | folded stacks, `root;…;leaf COUNT` | flamegraph.pl, inferno, speedscope |
//! | `chrometrace` | Trace Event JSON array of `B`/`E` events | ui.perfetto.dev, chrome://tracing |
//! | `pprof` | gzipped `profile.proto` | `go tool pprof`, Pyroscope, `pprof-format` |
//!
//! A profile without samples is refused with [`Error::Empty`] rather than
//! written as a broken file. Formats that need time order (chrometrace, and
//! speedscope when it can) use [`Profile::timeline`]; when a profile has no
//! usable timeline they lay each thread's stacks out one after the other.
//!
//! This crate never samples anything (that is `pyspy-sampler`), never picks
//! file names and never touches the file system: it writes to any
//! [`std::io::Write`].
//!
//! ```
//! use pyspy_output::{encode_to_vec, Format, OutputOptions, Profile};
//!
//! let profile = Profile::default(); // nothing recorded
//! let err = encode_to_vec(&profile, Format::Raw, &OutputOptions::default()).unwrap_err();
//! assert_eq!(err.code(), "EEMPTY");
//! assert_eq!("speedscope".parse::<Format>()?.extension(), "json");
//! # Ok::<(), pyspy_output::Error>(())
//! ```
#![deny(missing_docs)]

pub use crate::{
    error::Error,
    format::Format,
    options::{Clock, OutputOptions},
    profile::{FrameKind, FrameLabel, Profile, Span, StackCount, ThreadInfo},
};

mod error;
mod folded;
mod format;
mod json;
mod options;
mod profile;
mod runs;
mod sink;
#[cfg(test)]
mod tests;

/// Writes `profile` to `out` in `format`.
///
/// Fails with [`Error::Empty`] (writing nothing) when no stack was sampled,
/// and with [`Error::Io`] when `out` fails.
pub fn encode(
    profile: &Profile,
    format: Format,
    options: &OutputOptions,
    out: &mut dyn std::io::Write,
) -> Result<(), Error> {
    if profile.stack_samples() == 0 {
        return Err(Error::Empty);
    }
    format
        .encoder()
        .encode(profile, options, out)
        .and_then(|()| out.flush())
        .map_err(|source| Error::Io { format, source })
}

/// Like [`encode`], into a new buffer.
pub fn encode_to_vec(
    profile: &Profile,
    format: Format,
    options: &OutputOptions,
) -> Result<Vec<u8>, Error> {
    let mut buf = Vec::new();
    encode(profile, format, options, &mut buf)?;
    Ok(buf)
}
