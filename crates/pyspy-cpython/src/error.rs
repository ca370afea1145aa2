use pyspy_process::ReadError;

use crate::Version;

/// Failure to understand or read a CPython process.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A remote read failed (the process may have exited or changed).
    #[error("reading {what}: {source}")]
    Read {
        /// What was being read.
        what: &'static str,
        /// The failed read.
        #[source]
        source: ReadError,
    },
    /// Memory did not hold what it should (torn read or bad layout).
    #[error("unexpected data reading {what} at {addr:#x}")]
    Corrupt {
        /// What was being read.
        what: &'static str,
        /// Where.
        addr: usize,
    },
    /// The process does not look like CPython.
    #[error("{0}")]
    NotPython(String),
    /// The version is known but not supported.
    #[error("unsupported Python version {version}{detail}")]
    UnsupportedVersion {
        /// The version found.
        version: Version,
        /// Extra context (starts with a separator when set).
        detail: String,
    },
    /// Process access failed.
    #[error(transparent)]
    Process(#[from] pyspy_process::Error),
}

impl Error {
    /// Stable machine-readable code (also the JS error's `code`).
    pub fn code(&self) -> &'static str {
        match self {
            Error::Read { source, .. } if source.is_gone() => "EEXITED",
            Error::Read { source, .. } if source.is_denied() => "EPERM",
            Error::Read { .. } | Error::Corrupt { .. } => "EREAD",
            Error::NotPython(_) => "ENOTPYTHON",
            Error::UnsupportedVersion { .. } => "EUNSUPPORTED",
            Error::Process(e) => e.code(),
        }
    }
}

/// Shorthand for attaching context to a failed read.
pub(crate) trait ReadContext<T> {
    fn what(self, what: &'static str) -> Result<T, Error>;
}

impl<T> ReadContext<T> for Result<T, ReadError> {
    fn what(self, what: &'static str) -> Result<T, Error> {
        self.map_err(|source| Error::Read { what, source })
    }
}
