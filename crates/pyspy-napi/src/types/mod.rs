//! The plain objects that cross the boundary, one per file, each with its
//! conversion from the `pyspy-sampler` type it mirrors.

mod binding_asyncio;
mod binding_dump_options;
mod binding_dump_result;
mod binding_error;
mod binding_finish;
mod binding_frame;
mod binding_local_variable;
mod binding_process_dump;
mod binding_progress;
mod binding_push;
mod binding_record_options;
mod binding_stacks;
mod binding_thread_stack;

pub use self::binding_asyncio::BindingAsyncio;
pub use self::{
    binding_dump_options::BindingDumpOptions, binding_dump_result::BindingDumpResult,
    binding_error::BindingError, binding_frame::BindingFrame,
    binding_local_variable::BindingLocalVariable, binding_process_dump::BindingProcessDump,
    binding_thread_stack::BindingThreadStack,
};
pub use self::{
    binding_finish::{BindingFinish, BindingFinishResult},
    binding_progress::BindingProgress,
    binding_push::{BindingPushOptions, BindingPushStats},
    binding_record_options::BindingRecordOptions,
    binding_stacks::{BindingStack, BindingStackFrame, BindingStacks},
};
