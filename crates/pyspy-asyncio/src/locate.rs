//! Finding the asyncio objects of an interpreter: the `_asyncio` module and
//! its types, each thread's running loop and current task, and the
//! containers that hold every task. All reads are bounded.

use rustc_hash::FxHashSet;

use pyspy_cpython::ObjectReader;
use pyspy_process::{Memory, MemoryExt};

use crate::error::{Context, Error};
use crate::layout::AsyncioLayout;
use crate::reader::MAX_TASKS;

/// What `sys.modules` says about asyncio.
pub(crate) enum Found {
    /// Neither `asyncio` nor `_asyncio` was imported.
    Nothing,
    /// `_asyncio` (the C accelerator) is loaded.
    Module {
        /// `_asyncio.Task`.
        task_type: usize,
        /// `_asyncio.Future`.
        future_type: usize,
        /// The module dict's items.
        items: Vec<(usize, usize)>,
    },
    /// asyncio runs without `_asyncio`: its tasks are `_PyTask`s.
    PythonTasks {
        /// `asyncio.tasks._PyTask`.
        task_type: usize,
        /// `asyncio.tasks`'s dict items (`_scheduled_tasks`, ...).
        items: Vec<(usize, usize)>,
    },
}

/// Looks up `sys.modules["_asyncio"]` and its `Task`/`Future` types.
pub(crate) fn find_module<M: Memory>(r: &ObjectReader<M>, interp: usize) -> Result<Found, Error> {
    let o = &r.layout.offsets;
    let modules = r
        .mem
        .read_usize(interp.wrapping_add(o.interp_modules))
        .ctx("sys.modules")?;
    if modules == 0 {
        return Ok(Found::Nothing);
    }
    let items = r.dict_items(modules).ctx("sys.modules")?;
    let is_module = |m: usize| {
        r.type_of(m)
            .and_then(|t| r.type_name(t))
            .is_ok_and(|n| &*n == "module")
    };
    // `sys.modules["_asyncio"] = None` is how a program keeps it out.
    let Some(module) = r
        .lookup_str_key(&items, "_asyncio")
        .filter(|&m| is_module(m))
    else {
        return match r.lookup_str_key(&items, "asyncio.tasks") {
            Some(tasks) if is_module(tasks) => python_tasks_module(r, tasks),
            _ => Ok(Found::Nothing),
        };
    };
    let md_dict = r
        .mem
        .read_usize(module.wrapping_add(o.module_md_dict))
        .ctx("_asyncio.__dict__")?;
    let items = r.dict_items(md_dict).ctx("_asyncio.__dict__")?;
    let get = |name: &str| {
        r.lookup_str_key(&items, name)
            .ok_or_else(|| Error::Missing(format!("_asyncio has no {name}")))
    };
    Ok(Found::Module {
        task_type: get("Task")?,
        future_type: get("Future")?,
        items,
    })
}

/// `asyncio.tasks` of a process without `_asyncio`: `_PyTask` and the dict.
fn python_tasks_module<M: Memory>(r: &ObjectReader<M>, module: usize) -> Result<Found, Error> {
    let md_dict = r
        .mem
        .read_usize(module.wrapping_add(r.layout.offsets.module_md_dict))
        .ctx("asyncio.tasks.__dict__")?;
    let items = r.dict_items(md_dict).ctx("asyncio.tasks.__dict__")?;
    let task_type = r
        .lookup_str_key(&items, "_PyTask")
        .ok_or_else(|| Error::Missing("asyncio.tasks has no _PyTask".into()))?;
    Ok(Found::PythonTasks { task_type, items })
}

/// Checks `_asyncio.Task`/`Future` against the layout: the fingerprint of
/// sizes and dict offset that tells the layouts apart.
pub(crate) fn check_types<M: Memory>(
    r: &ObjectReader<M>,
    l: &AsyncioLayout,
    task_type: usize,
    future_type: usize,
) -> Result<(), Error> {
    let o = &r.layout.offsets;
    let word = |at: usize, what| r.mem.read_usize(at).ctx(what);
    let v = l.version;
    let task_size = word(
        task_type.wrapping_add(o.type_tp_basicsize),
        "Task.__basicsize__",
    )?;
    crate::layout::check(v, "_asyncio.Task.__basicsize__", l.o.task_size, task_size)?;
    let future_size = word(
        future_type.wrapping_add(o.type_tp_basicsize),
        "Future.__basicsize__",
    )?;
    crate::layout::check(
        v,
        "_asyncio.Future.__basicsize__",
        l.o.future_size,
        future_size,
    )?;
    let dictoffset = word(
        task_type.wrapping_add(o.type_tp_dictoffset),
        "Task.__dictoffset__",
    )? as isize;
    if dictoffset != l.o.task_dictoffset {
        return Err(Error::Layout {
            version: v,
            what: "_asyncio.Task.__dictoffset__",
            expected: l.o.task_dictoffset as i64,
            found: dictoffset as i64,
        });
    }
    Ok(())
}

/// The running loop of the thread whose state is at `tstate` (0: none).
pub(crate) fn running_loop<M: Memory>(
    r: &ObjectReader<M>,
    l: &AsyncioLayout,
    tstate: usize,
) -> Result<usize, Error> {
    if let Some(lists) = &l.lists {
        return r
            .mem
            .read_usize(tstate.wrapping_add(lists.running_loop))
            .ctx("running loop");
    }
    if let Some(off) = l.tstate_running_loop {
        return r
            .mem
            .read_usize(tstate.wrapping_add(off))
            .ctx("running loop");
    }
    // 3.11/3.12: the thread state's dict holds it (3.11 inside a holder).
    let Some(dict_off) = l.o.tstate_dict else {
        return Ok(0);
    };
    let dict = r
        .mem
        .read_usize(tstate.wrapping_add(dict_off))
        .ctx("thread dict")?;
    if dict == 0 {
        return Ok(0);
    }
    let items = r.dict_items(dict).ctx("thread dict")?;
    let Some(value) = r.lookup_str_key(&items, "__asyncio_running_event_loop__") else {
        return Ok(0);
    };
    match l.o.running_loop_holder_loop {
        Some(off) => {
            let ty = r.type_of(value).ctx("running loop holder")?;
            if &*r.type_name(ty).ctx("running loop holder")? != "_RunningLoopHolder" {
                return Ok(0);
            }
            r.mem
                .read_usize(value.wrapping_add(off))
                .ctx("running loop")
        }
        None => Ok(value),
    }
}

/// The items of a `set` (its table's live keys), bounded.
pub(crate) fn set_items<M: Memory>(
    r: &ObjectReader<M>,
    l: &AsyncioLayout,
    set: usize,
    out: &mut Vec<usize>,
) -> Result<(), Error> {
    let mut head = [0u8; 64];
    let len = l.o.set_table.max(l.o.set_mask).max(l.o.set_used) + 8;
    let head = head
        .get_mut(..len)
        .ok_or(Error::Missing("set layout".into()))?;
    r.mem.read(set, head).ctx("set")?;
    let word = |off: usize| u64::from_le_bytes(head[off..off + 8].try_into().unwrap()) as usize;
    let (used, mask, table) = (word(l.o.set_used), word(l.o.set_mask), word(l.o.set_table));
    let slots = mask.wrapping_add(1);
    if !slots.is_power_of_two() || slots > 4 * MAX_TASKS || used > slots {
        return Err(Error::Read {
            what: "set table",
            source: pyspy_cpython::Error::Corrupt {
                what: "set size",
                addr: set,
            },
        });
    }
    // setentry: { key, hash }.
    let raw = r.mem.read_vec(table, slots * 16).ctx("set table")?;
    out.extend(
        raw.chunks_exact(16)
            .map(|e| u64::from_le_bytes(e[..8].try_into().unwrap()) as usize)
            .filter(|&k| k != 0),
    );
    Ok(())
}

/// The referents of a `weakref.WeakSet` (a Python object whose `data` set
/// holds weak references; a dead one points at `None`, which the task
/// type check drops).
pub(crate) fn weak_set_items<M: Memory>(
    r: &ObjectReader<M>,
    l: &AsyncioLayout,
    weak_set: usize,
    out: &mut Vec<usize>,
) -> Result<(), Error> {
    let attrs = r.instance_dict_items(weak_set).ctx("WeakSet attributes")?;
    let data = r
        .lookup_str_key(&attrs, "data")
        .ok_or_else(|| Error::Missing("WeakSet without data".into()))?;
    let mut refs = Vec::new();
    set_items(r, l, data, &mut refs)?;
    let ranges: Vec<(usize, usize)> = refs
        .iter()
        .map(|&w| (w.wrapping_add(l.o.weakref_object), 8))
        .collect();
    let mut buf = vec![0u8; ranges.len() * 8];
    r.mem
        .read_ranges(&ranges, &mut buf)
        .ctx("weak references")?;
    out.extend(
        buf.chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()) as usize),
    );
    Ok(())
}

/// The tasks of a 3.14+ task list (a circular `llist` whose head is at
/// `head`), as task addresses. Stops at a cycle or `MAX_TASKS`.
pub(crate) fn list_tasks<M: Memory>(
    r: &ObjectReader<M>,
    node_off: usize,
    head: usize,
    out: &mut Vec<usize>,
) -> Result<(), Error> {
    let mut seen = FxHashSet::default();
    let mut node = r.mem.read_usize(head).ctx("task list")?;
    while node != head && node != 0 {
        if !seen.insert(node) || out.len() >= MAX_TASKS {
            break;
        }
        out.push(node.wrapping_sub(node_off));
        node = r.mem.read_usize(node).ctx("task list node")?;
    }
    Ok(())
}
