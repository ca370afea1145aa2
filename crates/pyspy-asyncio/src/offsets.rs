//! Byte offsets of the asyncio objects and the coroutine fields the reader
//! touches, one table per CPython minor version (`generated.rs`, produced
//! from DWARF by `scripts/generate-layouts.py`). A field a version does not
//! have is `None`. Sizes are the target's `sizeof`.

/// Offsets for one CPython minor version (x86-64 Linux, GIL build).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsyncioOffsets {
    /// `sizeof(TaskObj)`: `_asyncio.Task.__basicsize__`.
    pub task_size: usize,
    /// `sizeof(FutureObj)`: `_asyncio.Future.__basicsize__`.
    pub future_size: usize,
    /// `FutureObj.fut_loop` (shared by tasks).
    pub fut_loop: usize,
    /// `fut_callback0`: the first done-callback.
    pub fut_callback0: usize,
    /// `fut_callbacks`: a list of `(callback, context)` tuples, or NULL.
    pub fut_callbacks: usize,
    /// `fut_state` (a 4-byte enum: pending, cancelled, finished).
    pub fut_state: usize,
    /// `fut_awaited_by` (3.14+): one waiter, or a `set` of them.
    pub fut_awaited_by: Option<usize>,
    /// `fut_is_task` (3.14+, a `char`).
    pub fut_is_task: Option<usize>,
    /// `fut_awaited_by_is_set` (3.14+, a `char`).
    pub fut_awaited_by_is_set: Option<usize>,
    /// `TaskObj.task_fut_waiter`: the future the task waits on.
    pub task_fut_waiter: usize,
    /// `task_coro`.
    pub task_coro: usize,
    /// `task_name` (a `str`, or an `int` N for "Task-N").
    pub task_name: usize,
    /// `task_node` (3.14+): the task's link in its thread's task list.
    pub task_node: Option<usize>,
    /// `futureiterobject.future`: what `await future` leaves on the stack.
    pub futureiter_future: usize,
    /// 3.11 `PyRunningLoopHolder.rl_loop`.
    pub running_loop_holder_loop: Option<usize>,
    /// `PyGenObject.gi_frame_state` (an `int8_t`).
    pub gen_frame_state: usize,
    /// `PyGenObject.gi_iframe`: the embedded `_PyInterpreterFrame`.
    pub gen_iframe: usize,
    /// `_PyInterpreterFrame.stacktop` (3.11–3.13: an `int` index into
    /// `localsplus`).
    pub frame_stacktop: Option<usize>,
    /// `_PyInterpreterFrame.stackpointer` (3.14+: a `_PyStackRef *`).
    pub frame_stackpointer: Option<usize>,
    /// `_PyInterpreterFrame.localsplus` (checked against the target's).
    pub frame_localsplus: usize,
    /// `_PyInterpreterFrame.owner` (checked against the target's).
    pub frame_owner: usize,
    /// `PyCFunctionObject.m_self` (a task's wake-up callback's task).
    pub cfunction_self: usize,
    /// `PyMethodObject.im_self`.
    pub method_self: usize,
    /// `PySetObject.used`.
    pub set_used: usize,
    /// `PySetObject.mask`.
    pub set_mask: usize,
    /// `PySetObject.table`.
    pub set_table: usize,
    /// `PyWeakReference.wr_object`.
    pub weakref_object: usize,
    /// `PyThreadState.dict` (3.11, 3.12: holds the running loop).
    pub tstate_dict: Option<usize>,
    /// `_PyThreadStateImpl.asyncio_running_loop` (3.13; 3.14+ read it from
    /// the target's `.AsyncioDebug` table).
    pub tstate_running_loop: Option<usize>,
    /// `sizeof(PyThreadState)` of the build the table comes from: 3.13
    /// patch releases grow it, and `_PyThreadStateImpl`'s fields move with
    /// it (the target's own size comes from its `_Py_DebugOffsets`).
    pub tstate_size: usize,
    /// `_asyncio.Task.tp_dictoffset`: the `dict` field's offset up to 3.12,
    /// -1 (a managed dict) from 3.13 on. Part of the type's fingerprint.
    pub task_dictoffset: isize,
    /// `PyTypeObject.tp_base` (a task subclass's base chain).
    pub type_base: usize,
}
