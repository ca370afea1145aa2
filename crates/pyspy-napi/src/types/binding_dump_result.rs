use napi_derive::napi;

use super::{BindingError, BindingProcessDump};

/// What `dump`/`dumpSync` return: exactly one of `dump` and `error` is
/// non-null.
#[napi(object, object_from_js = false, use_nullable = true)]
#[derive(Debug, Clone)]
pub struct BindingDumpResult {
    /// The stacks, on success.
    pub dump: Option<BindingProcessDump>,
    /// Why there are no stacks, on failure.
    pub error: Option<BindingError>,
}

impl From<Result<pyspy_sampler::ProcessDump, BindingError>> for BindingDumpResult {
    fn from(result: Result<pyspy_sampler::ProcessDump, BindingError>) -> Self {
        match result {
            Ok(dump) => Self {
                dump: Some(dump.into()),
                error: None,
            },
            Err(error) => error.into(),
        }
    }
}

impl From<BindingError> for BindingDumpResult {
    fn from(error: BindingError) -> Self {
        Self {
            dump: None,
            error: Some(error),
        }
    }
}
