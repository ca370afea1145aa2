use napi_derive::napi;

/// A failure, returned as data; mirrors `pyspy_sampler::Error` plus the
/// binding's own `EINVAL` and `EINTERNAL`. The TypeScript layer throws it
/// as a `PyspyError`.
#[napi(object, object_from_js = false)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingError {
    /// Stable machine-readable code, e.g. `ENOPROCESS`, `EPERM`,
    /// `EINTERNAL`. Never renamed.
    pub code: String,
    /// One line for a person: what went wrong and, where known, what to do.
    pub message: String,
}

impl BindingError {
    /// A pid that is zero or does not fit a `pid_t`.
    pub(crate) fn invalid_pid(pid: u32) -> Self {
        Self {
            code: "EINVAL".to_owned(),
            message: format!(
                "invalid pid {pid}: expected an integer from 1 to {}",
                i32::MAX
            ),
        }
    }

    /// A panic inside the native code.
    pub(crate) fn internal(detail: &str) -> Self {
        Self {
            code: "EINTERNAL".to_owned(),
            message: format!(
                "internal error: {detail} (this is a bug in pyspy-node; please report it)"
            ),
        }
    }
}

impl From<pyspy_sampler::Error> for BindingError {
    fn from(e: pyspy_sampler::Error) -> Self {
        Self {
            code: e.code().to_owned(),
            message: e.to_string(),
        }
    }
}
