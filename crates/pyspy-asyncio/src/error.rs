//! Why tasks could not be read. None of these is fatal to a dump: the
//! thread stacks are printed and the reason is given.

use pyspy_cpython::Version;

/// Failure to read a process's asyncio tasks.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The version has no reader (3.10 and older, or unknown ones).
    #[error("asyncio tasks are not read on Python {version}: {reason}")]
    Unsupported {
        /// The target's version.
        version: Version,
        /// Why.
        reason: &'static str,
    },
    /// The target's objects do not match the layout this reader knows, so
    /// nothing is guessed.
    #[error("asyncio layout mismatch on Python {version}: {what} is {found}, expected {expected}")]
    Layout {
        /// The target's version.
        version: Version,
        /// What was compared.
        what: &'static str,
        /// The layout's value.
        expected: i64,
        /// The target's.
        found: i64,
    },
    /// Something the reader needs is missing (`_asyncio` loaded without its
    /// debug section, a missing module attribute).
    #[error("cannot read asyncio tasks: {0}")]
    Missing(String),
    /// A permanent failure found earlier, given again (its code, its text).
    #[error("{1}")]
    Refused(&'static str, String),
    /// A read failed, with what was being read.
    #[error("cannot read asyncio tasks ({what}): {source}")]
    Read {
        /// What was being read.
        what: &'static str,
        /// The failure.
        #[source]
        source: pyspy_cpython::Error,
    },
}

impl Error {
    /// Stable machine-readable code (the JavaScript side's `code`).
    pub fn code(&self) -> &'static str {
        match self {
            Error::Unsupported { .. } => "EUNSUPPORTED",
            Error::Layout { .. } => "ELAYOUT",
            Error::Missing(_) => "ENOASYNCIO",
            Error::Refused(code, _) => code,
            Error::Read { source, .. } => source.code(),
        }
    }
}

/// Attaches what was being read to a failure.
pub(crate) trait Context<T> {
    fn ctx(self, what: &'static str) -> Result<T, Error>;
}

impl<T> Context<T> for Result<T, pyspy_cpython::Error> {
    fn ctx(self, what: &'static str) -> Result<T, Error> {
        self.map_err(|source| Error::Read { what, source })
    }
}

impl<T> Context<T> for Result<T, pyspy_process::ReadError> {
    fn ctx(self, what: &'static str) -> Result<T, Error> {
        self.map_err(|source| Error::Read {
            what,
            source: pyspy_cpython::Error::Read { what, source },
        })
    }
}
