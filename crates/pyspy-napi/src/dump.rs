//! The exported entry points. Both run [`run`]; they differ only in the
//! thread they run it on.

use napi::bindgen_prelude::AsyncTask;
use napi::{Env, Task};
use napi_derive::napi;

use crate::panic_guard;
use crate::types::{BindingDumpOptions, BindingDumpResult, BindingError};

/// Reads every thread's Python stack of process `pid` once, off the JS
/// thread (on the libuv thread pool).
///
/// Never rejects: a failure resolves with `{ dump: null, error }`, where
/// `error.code` is stable (`ENOPROCESS`, `ENOTPYTHON`, `EPERM`,
/// `EUNSUPPORTED`, `EEXITED`, `EINVAL`, `EINTERNAL`, ...). Throws
/// synchronously only when an argument has the wrong JS type.
#[napi(ts_return_type = "Promise<BindingDumpResult>")]
pub fn dump(pid: u32, options: Option<BindingDumpOptions>) -> AsyncTask<DumpTask> {
    AsyncTask::new(DumpTask {
        pid,
        options: options.unwrap_or_default(),
    })
}

/// Same as `dump`, but blocks the calling thread while it reads the target.
#[napi]
pub fn dump_sync(pid: u32, options: Option<BindingDumpOptions>) -> BindingDumpResult {
    run(pid, options.unwrap_or_default())
}

/// The work behind `dump`, run on a libuv pool thread.
pub struct DumpTask {
    pid: u32,
    options: BindingDumpOptions,
}

impl Task for DumpTask {
    type Output = BindingDumpResult;
    type JsValue = BindingDumpResult;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        Ok(run(self.pid, self.options.clone()))
    }

    fn resolve(&mut self, _env: Env, output: Self::Output) -> napi::Result<Self::JsValue> {
        Ok(output)
    }
}

/// Validates `pid`, reads the target and converts the result, with any
/// panic turned into an `EINTERNAL` error.
fn run(pid: u32, options: BindingDumpOptions) -> BindingDumpResult {
    let Some(pid) = i32::try_from(pid).ok().filter(|&pid| pid > 0) else {
        return BindingError::invalid_pid(pid).into();
    };
    let config = options.into();
    panic_guard::catch(|| pyspy_sampler::dump(pid, &config).map_err(BindingError::from))
        .and_then(|result| result)
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_pids_that_are_not_a_pid_t() {
        for pid in [0, 1 << 31, u32::MAX] {
            let result = run(pid, BindingDumpOptions::default());
            assert!(result.dump.is_none());
            assert_eq!(result.error.unwrap().code, "EINVAL", "pid {pid}");
        }
    }

    #[test]
    fn returns_exactly_one_of_dump_and_error() {
        // Whatever the sampler answers for a pid that cannot exist, the
        // result is data, never a panic or a throw.
        let result = run(i32::MAX as u32, BindingDumpOptions::default());
        assert_ne!(result.dump.is_some(), result.error.is_some());
    }

    #[test]
    fn options_default_to_false() {
        let config: pyspy_sampler::DumpConfig = BindingDumpOptions {
            locals: Some(true),
            ..Default::default()
        }
        .into();
        assert!(config.locals && !config.nonblocking && !config.full_filenames);
        assert_eq!(config.locals_level, 1);
    }
}
