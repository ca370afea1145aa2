//! Await edges rebuilt from both ends before 3.14 (what a task waits on,
//! and who registered a done-callback on it), and the gather/TaskGroup
//! objects in between.

use rustc_hash::FxHashMap;

use pyspy_cpython::ObjectReader;
use pyspy_process::{Memory, MemoryExt};

use crate::layout::AsyncioLayout;

/// Most callbacks or gather children looked at per task.
const MAX_EDGES: usize = 4096;

/// The tasks a task waits on through its `_fut_waiter`: that task, or the
/// children of a `gather`.
pub(crate) fn waited_on<M: Memory>(
    r: &ObjectReader<M>,
    waiter: usize,
    waiter_type: usize,
    ids: &FxHashMap<usize, usize>,
) -> Vec<usize> {
    if waiter == 0 {
        return Vec::new();
    }
    if let Some(&id) = ids.get(&waiter) {
        return vec![id];
    }
    let ty = match waiter_type {
        0 => r.type_of(waiter),
        t => Ok(t),
    };
    let is_gather = ty
        .and_then(|t| r.type_name(t))
        .is_ok_and(|n| &*n == "_GatheringFuture");
    if !is_gather {
        return Vec::new();
    }
    let Ok(attrs) = r.instance_dict_items(waiter) else {
        return Vec::new();
    };
    let Some(children) = r.lookup_str_key(&attrs, "_children") else {
        return Vec::new();
    };
    list_items(r, children)
        .into_iter()
        .filter_map(|c| ids.get(&c).copied())
        .collect()
}

/// The objects named as waiters by done-callbacks (`callback0` and the
/// `(callback, context)` entries of the `callbacks` list): a C task's
/// `__wakeup` builtin names its task; a `TaskGroup`'s `_on_task_done`
/// method its group's `_parent_task`; `gather`'s `_done_callback` closure
/// its outer future, whose own callbacks name the task awaiting the gather
/// (`depth` bounds that step). Not checked to be tasks.
pub(crate) fn callback_waiters<M: Memory>(
    r: &ObjectReader<M>,
    l: &AsyncioLayout,
    callback0: usize,
    callbacks_list: usize,
    depth: u8,
) -> Vec<usize> {
    let mut callbacks = vec![callback0];
    if callbacks_list != 0 {
        for entry in list_items(r, callbacks_list) {
            // Each entry is a (callback, context) tuple.
            if let Ok(items) = r.tuple_items(entry, 2) {
                callbacks.extend(items.first());
            }
        }
    }
    let mut out = Vec::new();
    for cb in callbacks.into_iter().filter(|&c| c != 0) {
        let Ok(name) = r.type_of(cb).and_then(|t| r.type_name(t)) else {
            continue;
        };
        match &*name {
            "builtin_function_or_method" => {
                out.extend(r.mem.read_usize(cb.wrapping_add(l.o.cfunction_self)).ok())
            }
            "method" => {
                let Ok(owner) = r.mem.read_usize(cb.wrapping_add(l.o.method_self)) else {
                    continue;
                };
                if l.python_tasks {
                    // A pure-Python task's `__wakeup` is a bound method.
                    out.push(owner);
                }
                out.extend(
                    r.instance_dict_items(owner)
                        .ok()
                        .and_then(|attrs| r.lookup_str_key(&attrs, "_parent_task")),
                );
            }
            "function" if depth > 0 => {
                if let Some(outer) = gathering_future(r, cb) {
                    if l.python_tasks {
                        let list = crate::python_tasks::callbacks_of(r, outer);
                        out.extend(callback_waiters(r, l, 0, list, depth - 1));
                        continue;
                    }
                    let o = &l.o;
                    let cb0 = r.mem.read_usize(outer.wrapping_add(o.fut_callback0));
                    let list = r.mem.read_usize(outer.wrapping_add(o.fut_callbacks));
                    if let (Ok(cb0), Ok(list)) = (cb0, list) {
                        out.extend(callback_waiters(r, l, cb0, list, depth - 1));
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// `PyFunctionObject.func_closure` (3.11–3.15: seven pointers after the
/// object header) and `PyCellObject.ob_ref` (right after it); the header
/// ends with `ob_type` (16 bytes on GIL builds, 32 free-threaded).
const FUNC_CLOSURE_AFTER_HEADER: usize = 56;
/// Most closure cells looked at.
const MAX_CELLS: usize = 16;

/// The `_GatheringFuture` a function's closure holds (gather's
/// `_done_callback` keeps its outer future in a cell).
fn gathering_future<M: Memory>(r: &ObjectReader<M>, func: usize) -> Option<usize> {
    let header = r.layout.offsets.ob_type + 8;
    let closure = r
        .mem
        .read_usize(func.wrapping_add(header + FUNC_CLOSURE_AFTER_HEADER))
        .ok()?;
    if closure == 0 {
        return None;
    }
    for cell in r.tuple_items(closure, MAX_CELLS).ok()? {
        let Ok(obj) = r.mem.read_usize(cell.wrapping_add(header)) else {
            continue;
        };
        if obj != 0
            && r.type_of(obj)
                .and_then(|t| r.type_name(t))
                .is_ok_and(|n| &*n == "_GatheringFuture")
        {
            return Some(obj);
        }
    }
    None
}

/// A list's items (at most `MAX_EDGES`; none if unreadable).
fn list_items<M: Memory>(r: &ObjectReader<M>, list: usize) -> Vec<usize> {
    let o = &r.layout.offsets;
    let Ok(n) = r.mem.read_usize(list.wrapping_add(o.list_ob_size)) else {
        return Vec::new();
    };
    let Ok(items) = r.mem.read_usize(list.wrapping_add(o.list_ob_item)) else {
        return Vec::new();
    };
    if n > MAX_EDGES {
        return Vec::new();
    }
    r.pointers(items, n).unwrap_or_default()
}
