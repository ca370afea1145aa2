//! The engine: a [`Session`] attaches to one Python process once (finds the
//! interpreter, builds the layout, warms caches) and then reads every
//! thread's stack as often as asked; [`dump`] is one such read, and a
//! [`Recorder`] samples on a schedule into an aggregated [`Profile`].
//!
//! It decides when and how consistently to read (pausing the target unless
//! `nonblocking`), joins interpreter threads with OS thread states, names
//! and GIL ownership, and shortens filenames. It knows no struct layouts
//! (`pyspy-cpython`) and no system calls (`pyspy-process`); output formats
//! and the JS API live above it.
#![deny(missing_docs)]

mod aggregate;
mod asyncio;
mod core_dump;
mod core_native;
mod count_stack;
mod dump;
mod error;
mod filenames;
mod host;
mod launch;
mod native_frame;
mod process_loop;
mod raw;
mod record;
mod session;
mod sink;
mod status;
mod task_frames;
mod tree;

pub use aggregate::{Aggregator, LineMode};
pub use asyncio::{AsyncTask, AsyncioDump};
pub use core_dump::dump_core;
pub use dump::dump;
pub use error::Error;
pub use host::{HostFilter, HostRecorder};
pub use process_loop::{GC_LEAF, GIL_WAIT_LEAF};
pub use pyspy_core::CoreOptions;
pub use pyspy_cpython::{Frame, LocalVariable, ThreadStack, ThreadStatus, Version};
pub use pyspy_output::Profile;
pub use raw::{RawSample, RawThread};
pub use record::{BatchTaker, Finished, Progress, RecordConfig, Recorder, StopReason, Target};
pub use session::{DumpConfig, ProcessDump, ReadMode, Session};
pub use sink::BatchCounts;
