/// Failure to read a Python process.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Understanding or reading the interpreter failed.
    #[error(transparent)]
    Python(#[from] pyspy_cpython::Error),
    /// Process access failed.
    #[error(transparent)]
    Process(#[from] pyspy_process::Error),
    /// A thread's native stack could not be read or merged (`--native`).
    #[error(transparent)]
    Native(pyspy_native::Error),
    /// A feature this platform lacks (its reason).
    #[error("{0}")]
    Unsupported(&'static str),
    /// An option, or a combination of options, is invalid.
    #[error("{0}")]
    Invalid(String),
    /// A command to profile could not be started.
    #[error("{0}")]
    Launch(String),
    /// `--asyncio` cannot read this target's tasks (its code, its reason).
    #[error("{1}")]
    Asyncio(&'static str, String),
    /// A bug: something that should not happen did.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// Stable machine-readable code (also the JS error's `code`): `ENOPROCESS`,
    /// `ENOTPYTHON`, `EPERM`, `EUNSUPPORTED`, `EEXITED`, `EREAD`, ...
    pub fn code(&self) -> &'static str {
        match self {
            Error::Python(e) => e.code(),
            Error::Process(e) => e.code(),
            Error::Native(_) => "EREAD",
            Error::Unsupported(_) => "EUNSUPPORTED",
            Error::Invalid(_) => "EINVAL",
            Error::Launch(_) => "ELAUNCH",
            Error::Asyncio(code, _) => code,
            Error::Internal(_) => "EINTERNAL",
        }
    }
}

impl From<pyspy_native::Error> for Error {
    fn from(e: pyspy_native::Error) -> Self {
        match e {
            pyspy_native::Error::Process(p) => Error::Process(p),
            e => Error::Native(e),
        }
    }
}
