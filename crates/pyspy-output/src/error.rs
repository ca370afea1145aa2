use crate::Format;

/// Failure to write a profile.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The profile has no samples; nothing was written.
    #[error("no samples were collected, so there is nothing to write")]
    Empty,
    /// The destination failed while `format` was being written.
    #[error("writing the {format} output: {source}")]
    Io {
        /// The format being written.
        format: Format,
        /// What the writer reported.
        #[source]
        source: std::io::Error,
    },
    /// A format name that is not one of ours.
    #[error(
        "unknown output format {0:?}; expected flamegraph, speedscope, raw, chrometrace or pprof"
    )]
    UnknownFormat(String),
}

impl Error {
    /// Stable machine-readable code (also the JS error's `code`): `EEMPTY`,
    /// `EIO` or `EFORMAT`. Never rename.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Empty => "EEMPTY",
            Error::Io { .. } => "EIO",
            Error::UnknownFormat(_) => "EFORMAT",
        }
    }

    /// Whether the profile had no samples.
    pub fn is_empty(&self) -> bool {
        matches!(self, Error::Empty)
    }
}
