//! Which offsets a target's asyncio objects have, and the checks that the
//! target really matches them before anything is read through them.
//!
//! Offsets come from `generated.rs` (one table per minor version, from
//! DWARF). 3.14+ also publish the task fields and the per-thread and
//! per-interpreter task-list offsets in a `.AsyncioDebug` section of the
//! binary that holds `_asyncio`; those are read from the target's own
//! files (they can move in patch releases) and the task fields must agree
//! with the generated table. The version facts no table carries (frame
//! states, where an awaited object sits on the value stack) are here.

use pyspy_binary::Binary;
use pyspy_cpython::{Layout, Version};
use pyspy_process::Target;

use crate::error::Error;
use crate::generated;
use crate::offsets::AsyncioOffsets;

/// How a suspended coroutine's awaited object is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwaitSlot {
    /// 3.11/3.12: state SUSPENDED and the next instruction is a `RESUME`
    /// with oparg ≥ 2 (after `yield from`/`await`); the object is
    /// `localsplus[stacktop - 1]`. The opcodes that mean `RESUME`.
    ResumeCheck(&'static [u8]),
    /// 3.13: state SUSPENDED_YIELD_FROM; `localsplus[stacktop - 1]`.
    Stacktop,
    /// 3.14+: state SUSPENDED_YIELD_FROM (or its locked form);
    /// `stackpointer[-index]`, tag bits cleared.
    StackPointer(usize),
}

/// Frame-state values of a version (`enum _framestate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameStates {
    /// Suspended at a plain yield (3.11/3.12: every suspension).
    pub suspended: i8,
    /// Suspended inside `yield from`/`await` (3.13+).
    pub yield_from: Option<i8>,
    /// 3.15: the locked variant of `yield_from`.
    pub yield_from_locked: Option<i8>,
    /// Running.
    pub executing: i8,
    /// Not started yet.
    pub created: i8,
}

/// `_PyInterpreterFrame.owner` of a frame embedded in a generator.
pub const OWNED_BY_GENERATOR: u8 = 1;

/// The per-thread and per-interpreter fields of `.AsyncioDebug` (3.14+).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskLists {
    /// `_PyThreadStateImpl.asyncio_running_loop`.
    pub running_loop: usize,
    /// `_PyThreadStateImpl.asyncio_running_task`.
    pub running_task: usize,
    /// `_PyThreadStateImpl.asyncio_tasks_head` (a `struct llist_node`).
    pub thread_tasks_head: usize,
    /// `PyInterpreterState.asyncio_tasks_head`: tasks of exited threads.
    pub interp_tasks_head: usize,
}

/// Everything the reader needs for one target.
#[derive(Debug, Clone, Copy)]
pub struct AsyncioLayout {
    /// The target's version.
    pub version: Version,
    /// Object offsets.
    pub o: AsyncioOffsets,
    /// Frame states.
    pub states: FrameStates,
    /// Where an awaited object is.
    pub await_slot: AwaitSlot,
    /// 3.13: where `asyncio_running_loop` is in the target's thread states.
    pub tstate_running_loop: Option<usize>,
    /// 3.14+: from the target's `.AsyncioDebug`.
    pub lists: Option<TaskLists>,
    /// The target runs pure-Python tasks (`_PyTask`: no `_asyncio`), whose
    /// fields are read from their instance dicts, not at these offsets.
    pub python_tasks: bool,
}

impl AsyncioLayout {
    /// The generated layout for `layout`'s version, checked against the
    /// interpreter's own offsets where both know a field. 3.14+ still need
    /// [`AsyncioLayout::read_section`].
    pub fn for_interpreter(layout: &Layout) -> Result<AsyncioLayout, Error> {
        let version = layout.version;
        let free_threaded = layout.flavor.free_threaded;
        if free_threaded && version.minor != 13 {
            // Every object header is 16 bytes longer: a layout of its own,
            // generated from a build of that version (3.13t only so far).
            return Err(Error::Unsupported {
                version,
                reason: "free-threaded builds other than 3.13t are not read yet",
            });
        }
        let (o, states, await_slot) = match (version.major, version.minor) {
            (3, 13) if free_threaded => {
                (generated::ASYNCIO_3_13T, new_states(), AwaitSlot::Stacktop)
            }
            (3, 11) => (
                generated::ASYNCIO_3_11,
                old_states(),
                // RESUME 151, RESUME_QUICK 150.
                AwaitSlot::ResumeCheck(&[150, 151]),
            ),
            (3, 12) => (
                generated::ASYNCIO_3_12,
                old_states(),
                // RESUME 151, INSTRUMENTED_RESUME 240.
                AwaitSlot::ResumeCheck(&[151, 240]),
            ),
            (3, 13) => (generated::ASYNCIO_3_13, new_states(), AwaitSlot::Stacktop),
            (3, 14) => (
                generated::ASYNCIO_3_14,
                new_states(),
                AwaitSlot::StackPointer(1),
            ),
            (3, 15) => (
                generated::ASYNCIO_3_15,
                FrameStates {
                    created: 0,
                    suspended: 1,
                    yield_from: Some(2),
                    yield_from_locked: Some(3),
                    executing: 4,
                },
                // 3.15 keeps a null stackref above the awaited object.
                AwaitSlot::StackPointer(2),
            ),
            (3, 6..=10) | (2, _) => {
                return Err(Error::Unsupported {
                    version,
                    reason: "tasks are read on CPython 3.11 to 3.15 (3.10 and older lay out \
                             coroutines as frame objects, not read yet)",
                })
            }
            _ => {
                return Err(Error::Unsupported {
                    version,
                    reason: "no asyncio layout is known for this version",
                })
            }
        };
        let lo = &layout.offsets;
        check(
            version,
            "_PyInterpreterFrame.localsplus",
            o.frame_localsplus,
            lo.frame_localsplus,
        )?;
        if let Some(owner) = lo.frame_owner {
            check(version, "_PyInterpreterFrame.owner", o.frame_owner, owner)?;
        }
        // 3.13 patch releases grow PyThreadState; the running loop follows it.
        let tstate_running_loop = o
            .tstate_running_loop
            .map(|off| off - o.tstate_size + lo.tstate_size);
        Ok(AsyncioLayout {
            version,
            o,
            states,
            await_slot,
            tstate_running_loop,
            lists: None,
            python_tasks: false,
        })
    }

    /// 3.14+: finds `.AsyncioDebug` in the binary that holds `_asyncio` (a
    /// `lib-dynload` module, or the executable/libpython when built in),
    /// checks its task fields against the generated ones and keeps its
    /// thread and interpreter offsets.
    pub fn read_section<T: Target>(&mut self, target: &T, layout: &Layout) -> Result<(), Error> {
        if self.o.task_node.is_none() {
            return Ok(());
        }
        let maps = target
            .maps()
            .map_err(|e| Error::Missing(format!("memory map: {e}")))?;
        let mut seen = Vec::new();
        for map in &maps {
            let Some(path) = map.path.as_deref() else {
                continue;
            };
            let name = path.rsplit('/').next().unwrap_or(path);
            if !(name.starts_with("_asyncio") || name.contains("python")) || seen.contains(&path) {
                continue;
            }
            seen.push(path);
            let Ok(bytes) = target.read_mapped_file(map) else {
                continue;
            };
            let Ok(binary) = Binary::parse(&bytes) else {
                continue;
            };
            let Some(data) = binary.section_data(&bytes, ".AsyncioDebug") else {
                continue;
            };
            return self.apply_section(data, layout);
        }
        Err(Error::Missing(
            "no .AsyncioDebug section in the target's binaries (asyncio not imported yet?)".into(),
        ))
    }

    /// Checks and applies the 13 words of `.AsyncioDebug` (3.14, 3.15).
    pub fn apply_section(&mut self, data: &[u8], layout: &Layout) -> Result<(), Error> {
        let v = self.version;
        if data.len() < 104 {
            return Err(Error::Missing(format!(
                ".AsyncioDebug is {} bytes, expected 104",
                data.len()
            )));
        }
        let w = |i: usize| u64::from_le_bytes(data[i * 8..i * 8 + 8].try_into().unwrap()) as usize;
        let o = &self.o;
        check(v, "AsyncioDebug task size", o.task_size, w(0))?;
        check(v, "AsyncioDebug task_name", o.task_name, w(1))?;
        check(
            v,
            "AsyncioDebug task_awaited_by",
            o.fut_awaited_by.unwrap_or(0),
            w(2),
        )?;
        check(
            v,
            "AsyncioDebug task_is_task",
            o.fut_is_task.unwrap_or(0),
            w(3),
        )?;
        check(
            v,
            "AsyncioDebug task_awaited_by_is_set",
            o.fut_awaited_by_is_set.unwrap_or(0),
            w(4),
        )?;
        check(v, "AsyncioDebug task_coro", o.task_coro, w(5))?;
        check(v, "AsyncioDebug task_node", o.task_node.unwrap_or(0), w(6))?;
        let lo = &layout.offsets;
        check(v, "AsyncioDebug interpreter size", lo.interp_size, w(7))?;
        let (interp_head, tsize) = (w(8), w(9));
        let (loop_, task, head) = (w(10), w(11), w(12));
        if interp_head + 16 > w(7)
            || tsize < lo.tstate_size
            || [loop_, task, head].iter().any(|f| f + 8 > tsize)
        {
            return Err(Error::Missing(
                ".AsyncioDebug thread/interpreter offsets lie outside their structs".into(),
            ));
        }
        self.lists = Some(TaskLists {
            running_loop: loop_,
            running_task: task,
            thread_tasks_head: head,
            interp_tasks_head: interp_head,
        });
        Ok(())
    }
}

fn old_states() -> FrameStates {
    FrameStates {
        created: -2,
        suspended: -1,
        yield_from: None,
        yield_from_locked: None,
        executing: 0,
    }
}

fn new_states() -> FrameStates {
    FrameStates {
        created: -3,
        suspended: -2,
        yield_from: Some(-1),
        yield_from_locked: None,
        executing: 0,
    }
}

/// Refuses a layout whose field differs from the target's.
pub(crate) fn check(
    version: Version,
    what: &'static str,
    expected: usize,
    found: usize,
) -> Result<(), Error> {
    if expected == found {
        Ok(())
    } else {
        Err(Error::Layout {
            version,
            what,
            expected: expected as i64,
            found: found as i64,
        })
    }
}
