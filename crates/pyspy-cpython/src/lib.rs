//! pyspy-cpython (in progress)
mod offsets;
mod stack;
pub use offsets::Offsets;
pub use stack::{Frame, LocalVariable, ThreadStack};
