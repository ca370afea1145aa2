//! `dumpCore`: every thread's Python stack out of a core file, off the JS
//! thread. Same result shape and error conversion as `dump`.

use std::path::PathBuf;

use napi::bindgen_prelude::AsyncTask;
use napi::{Env, Task};
use napi_derive::napi;

use crate::panic_guard;
use crate::types::{BindingDumpOptions, BindingDumpResult, BindingError};

/// Where to find what a core file names.
#[napi(object, object_to_js = false)]
#[derive(Debug, Clone, Default)]
pub struct BindingCoreOptions {
    /// The program that dumped core; other binaries are looked for next to it.
    pub executable: Option<String>,
    /// The directory the core's paths are relative to (a container's root).
    pub sysroot: Option<String>,
}

/// Reads every thread's Python stack out of the core file at `path`, on the
/// libuv pool. Never rejects: a failure resolves with `{ dump: null, error }`
/// (`EBADCORE`, `ENOBINARY`, `ENOTPYTHON`, `EUNSUPPORTED`, `EIO`, ...).
#[napi(ts_return_type = "Promise<BindingDumpResult>")]
pub fn dump_core(
    path: String,
    core: Option<BindingCoreOptions>,
    options: Option<BindingDumpOptions>,
) -> AsyncTask<DumpCoreTask> {
    AsyncTask::new(DumpCoreTask {
        path,
        core: core.unwrap_or_default(),
        options: options.unwrap_or_default(),
    })
}

/// The work behind `dumpCore`.
pub struct DumpCoreTask {
    path: String,
    core: BindingCoreOptions,
    options: BindingDumpOptions,
}

impl Task for DumpCoreTask {
    type Output = BindingDumpResult;
    type JsValue = BindingDumpResult;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        let core = pyspy_sampler::CoreOptions {
            executable: self.core.executable.clone().map(PathBuf::from),
            sysroot: self.core.sysroot.clone().map(PathBuf::from),
        };
        let config = self.options.clone().into();
        let path = PathBuf::from(&self.path);
        Ok(panic_guard::catch(|| {
            pyspy_sampler::dump_core(&path, core, &config).map_err(BindingError::from)
        })
        .and_then(|result| result)
        .into())
    }

    fn resolve(&mut self, _env: Env, output: Self::Output) -> napi::Result<Self::JsValue> {
        Ok(output)
    }
}
