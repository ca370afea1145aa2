//! Node-API binding for pyspy-node: the only place JavaScript meets Rust.
//!
//! It exposes [`pyspy_sampler::dump`] as two functions:
//!
//! - `dump(pid, options?)`, which reads the target on the libuv thread pool
//!   (an [`napi::bindgen_prelude::AsyncTask`]) and resolves with a
//!   [`BindingDumpResult`];
//! - `dumpSync(pid, options?)`, the same read on the calling thread.
//!
//! Both return errors as data (`{ dump: null, error: { code, message } }`)
//! rather than throwing, because a rejected async task cannot carry a
//! custom `code`; the TypeScript package (`packages/pyspy-node`) turns a
//! [`BindingError`] into a `PyspyError` and throws it. No panic crosses the
//! boundary: one is caught and reported with code `EINTERNAL`.
//!
//! What it does not do: read memory, parse binaries or know CPython layouts
//! (that is `pyspy-sampler` and the crates below it), validate arguments
//! beyond what the types need, or format output (the TypeScript layer
//! does that). Each `Binding*` type lives in its own file under `types/`
//! with its `From` conversion beside it.
//!
//! Numbers: JavaScript numbers are `f64`, so 64-bit values are passed as
//! `f64` (Node-API BigInt needs `napi6`, and we keep to `napi4`). That is
//! exact below 2^53: on x86-64 and arm64 Linux a `pthread_t` is a
//! user-space address (< 2^48), OS thread ids are below `pid_max`
//! (<= 2^22) and object addresses are user-space addresses too.
#![deny(missing_docs)]

mod dump;
mod dump_core;
mod panic_guard;
mod record;
mod types;

pub use crate::{
    dump::{dump, dump_sync, DumpTask},
    dump_core::{dump_core, BindingCoreOptions, DumpCoreTask},
    record::{start_recorder, BindingRecorder, FinishTask, StartTask},
    types::{
        BindingDumpOptions, BindingDumpResult, BindingError, BindingFinish, BindingFinishResult,
        BindingFrame, BindingLocalVariable, BindingProcessDump, BindingProgress,
        BindingRecordOptions, BindingStack, BindingStackFrame, BindingStacks, BindingThreadStack,
    },
};
