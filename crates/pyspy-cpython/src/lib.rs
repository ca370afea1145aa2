//! CPython knowledge: how to find the interpreter in a process and read every
//! thread's Python stack out of its memory.
//!
//! [`find_interpreter`] locates the CPython binary among a process's
//! mappings, detects its version (`Py_Version`, the `_Py_DebugOffsets`
//! header, or the `sys.version` text), finds the interpreter (`_PyRuntime`
//! from 3.7 on, `interp_head` before) and builds a [`Layout`]: offsets from
//! the target's own debug-offsets table on 3.13+, from generated per-version
//! tables on 2.7 and 3.6–3.12. [`StackWalker`] then
//! reads thread states, frames, code objects, line tables and strings
//! through any [`pyspy_process::Memory`]; with
//! [`StackWalker::watch_interpreters`] (3.12+) the threads of every
//! interpreter of the process, not only the main one's (see
//! `interpreters.rs`). This crate does not decide when to
//! read (pausing, sampling and output are `pyspy-sampler`'s) and parses no
//! binary formats itself (`pyspy-binary` does).
#![deny(missing_docs)]

mod arch;
mod binary_names;
mod chunks;
mod codes;
mod consistency;
mod debug_offsets;
mod dict;
mod discover;
mod error;
#[rustfmt::skip]
mod generated;
#[cfg(test)]
mod generated_tests;
mod gil_gc;
mod gil_state;
mod interpreters;
#[cfg(test)]
mod interpreters_tests;
mod layout;
mod linetable;
mod locals;
mod objects;
mod offsets;
mod quiet;
mod scalars;
mod snapshot;
mod snapshot_check;
mod stack;
mod threads;
mod version;
mod walker;

pub use codes::CodeInfo;
pub use debug_offsets::{header as debug_offsets_header, TableHeader};
pub use discover::{find_interpreter, layout_for, Interpreter};
pub use error::Error;
pub use gil_gc::GilLocation;
pub use interpreters::{read_interpreter_list, InterpreterRef, MAX_INTERPRETERS};
pub use layout::{DictKind, Flavor, Frames, Layout, LineTable, ManagedDict, Tlbc};
pub use linetable::{line_for_lasti, line_for_offset};
pub use locals::MAX_REPR;
pub use objects::ObjectReader;
pub use offsets::Offsets;
pub use stack::{Frame, LocalVariable, ThreadStack, ThreadStatus};
pub use threads::ThreadState;
pub use version::Version;
pub use walker::{RawFrame, StackWalker, MAX_FRAMES};
