/// Why pushing could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A push option is malformed (URL, tag, app name, interval).
    #[error("{0}")]
    Invalid(String),
    /// Something this build cannot do (an `https://` URL).
    #[error("{0}")]
    Unsupported(String),
    /// The server could not be reached, or refused the first push (auth,
    /// not a Pyroscope server).
    #[error("cannot push to {url}: {reason}")]
    Server {
        /// The server URL, without credentials.
        url: String,
        /// What went wrong and, where known, what to do.
        reason: String,
        /// The server could not be reached or answered 5xx/408/429: it may
        /// answer later (see [`Error::is_transient`]).
        transient: bool,
    },
    /// A thread could not be started.
    #[error("could not start the {what} thread: {source}")]
    Thread {
        /// Which thread.
        what: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
}

impl Error {
    /// True when a later attempt may succeed: the server could not be
    /// reached, or said it is busy or failing. A refusal of the URL or the
    /// credentials is not transient.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Server {
                transient: true,
                ..
            }
        )
    }

    /// Stable machine-readable code: `EINVAL`, `EUNSUPPORTED`, `EPUSH` or
    /// `EINTERNAL`.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Invalid(_) => "EINVAL",
            Error::Unsupported(_) => "EUNSUPPORTED",
            Error::Server { .. } => "EPUSH",
            Error::Thread { .. } => "EINTERNAL",
        }
    }
}
