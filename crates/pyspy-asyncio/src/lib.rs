//! asyncio tasks of a CPython 3.11–3.15 process, read out of its memory.
//!
//! [`AsyncioReader`] finds every `_asyncio.Task` of the interpreter (3.11:
//! the `_all_tasks` weak set; 3.12/3.13: `_scheduled_tasks` and
//! `_eager_tasks`; 3.14+: each thread's task list and the interpreter's,
//! located through the `.AsyncioDebug` section), the running loop and
//! current task of each thread, and for each task its name, state, the
//! suspended frames of its coroutine chain (a coroutine awaiting another is
//! one logical stack; the running task's frames are its thread's, down to
//! its coroutine), and its await edges: `awaited_by` from the tasks' own
//! field on 3.14+, rebuilt before that from what each task waits on
//! (`_fut_waiter`, `gather`'s children) and the wake-up callbacks
//! registered on each task (a waiting task's `__wakeup`, a `TaskGroup`'s
//! `_on_task_done`).
//!
//! Offsets come from `generated.rs` (DWARF, by `scripts/generate-layouts.py`)
//! and are validated against the live type objects (`_asyncio.Task`'s
//! size and dict offset, 3.14+'s `.AsyncioDebug`) before use; a mismatch
//! is refused with its reason, never guessed. Every read is bounded (task
//! count, chain depth, set sizes, list walks with cycle checks); a task
//! that cannot be read is skipped and counted.
//!
//! Pure-Python tasks (`_PyTask`, what asyncio uses when `_asyncio` cannot
//! be imported) are read from their instance dicts and `asyncio.tasks`'s
//! containers instead (`python_tasks.rs`); the free-threaded 3.13t has a
//! layout of its own.
//!
//! It does not: pause the target (the caller does), read free-threaded
//! builds other than 3.13t, or 3.10 and older (both refused with a
//! reason). It only reads memory, through [`pyspy_process::Memory`] (a
//! live process or a core file alike).
#![deny(missing_docs)]

mod edges;
mod error;
#[rustfmt::skip]
mod generated;
mod graph;
mod layout;
mod locate;
mod offsets;
mod python_tasks;
mod read;
mod reader;
mod sampler;
#[cfg(test)]
mod tests;

pub use error::Error;
pub use layout::{AsyncioLayout, AwaitSlot, FrameStates, TaskLists};
pub use offsets::AsyncioOffsets;
pub use reader::{
    AsyncioReader, AsyncioSnapshot, Task, TaskState, ThreadInput, MAX_CHAIN, MAX_TASKS,
};
pub use sampler::{ChainLink, IdleChain, TaskSample, TaskSampler, ThreadChain};
