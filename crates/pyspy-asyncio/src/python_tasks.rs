//! Pure-Python tasks: `asyncio.tasks._PyTask`, which asyncio uses when its
//! C module `_asyncio` cannot be imported. Such a task keeps its fields in
//! its instance dict (`_loop`, `_state`, `_fut_waiter`, `_coro`, `_name`,
//! `_callbacks`, 3.14+ `_Future__asyncio_awaited_by`) rather than at fixed
//! offsets, the module-level containers of `asyncio.tasks` hold every task,
//! and each thread's running loop lives in a `threading.local`, out of
//! reach: a loop is matched to its thread by the `run_forever` frame on
//! that thread's stack instead (its `self`).
//!
//! What is read here becomes the same [`Raw`] record a C task gives, so the
//! graph, the chains and their checks are shared.

use rustc_hash::FxHashMap;

use pyspy_cpython::{ObjectReader, StackWalker};
use pyspy_process::{Memory, MemoryExt};

use crate::graph::Raw;
use crate::layout::AsyncioLayout;
use crate::reader::ThreadInput;

/// The C task states the graph knows, by `_state`'s text.
fn state_of(text: &str) -> u32 {
    match text {
        "PENDING" => 0,
        "CANCELLED" => 1,
        "FINISHED" => 2,
        _ => u32::MAX,
    }
}

/// An attribute's value, with `None` read as 0 (absent too: a class
/// default such as `_state = _PENDING` or `__asyncio_awaited_by = None`).
fn attr<M: Memory>(r: &ObjectReader<M>, items: &[(usize, usize)], name: &str) -> usize {
    match r.lookup_str_key(items, name) {
        Some(v) if !is_none(r, v) => v,
        _ => 0,
    }
}

/// Whether `obj` is `None`.
pub(crate) fn is_none<M: Memory>(r: &ObjectReader<M>, obj: usize) -> bool {
    obj == 0
        || r.type_of(obj)
            .and_then(|t| r.type_name(t))
            .is_ok_and(|n| &*n == "NoneType")
}

/// The graph's record of the pure-Python task at `addr` (`ty` its type),
/// or `None` when its dict cannot be read.
pub(crate) fn raw<M: Memory>(
    r: &ObjectReader<M>,
    addr: usize,
    ty: usize,
    thread: Option<u64>,
) -> Option<Raw> {
    let items = r.instance_dict_items(addr).ok()?;
    let state = match r.lookup_str_key(&items, "_state") {
        None => 0, // the class default, PENDING
        Some(s) => r.read_str(s, 16).map_or(u32::MAX, |text| state_of(&text)),
    };
    let awaited_by = attr(r, &items, "_Future__asyncio_awaited_by");
    Some(Raw {
        addr,
        thread,
        ty,
        loop_: attr(r, &items, "_loop"),
        state,
        fut_waiter: attr(r, &items, "_fut_waiter"),
        coro: attr(r, &items, "_coro"),
        name: attr(r, &items, "_name"),
        callback0: 0,
        callbacks: attr(r, &items, "_callbacks"),
        awaited_by,
        // 3.14+'s pure-Python futures keep their waiters in a set.
        awaited_by_is_set: awaited_by != 0,
    })
}

/// The done-callbacks list (`_callbacks`) of a pure-Python future, 0 when
/// it has none.
pub(crate) fn callbacks_of<M: Memory>(r: &ObjectReader<M>, future: usize) -> usize {
    r.instance_dict_items(future)
        .map_or(0, |items| attr(r, &items, "_callbacks"))
}

/// Each thread's running loop, from the `BaseEventLoop.run_forever` frame
/// on its stack (its first local is `self`).
pub(crate) fn loops_by_thread<M: Memory>(
    walker: &mut StackWalker<M>,
    l: &AsyncioLayout,
    threads: &[ThreadInput<'_>],
) -> FxHashMap<usize, u64> {
    let mut loops = FxHashMap::default();
    for t in threads {
        for f in t.frames {
            let Ok(code) = walker.code(f.code) else {
                continue;
            };
            if !code.name.ends_with("run_forever") || !code.filename.ends_with("base_events.py") {
                continue;
            }
            // 3.14+ keep tagged stack references: the low bits are flags.
            let slot = f.addr.wrapping_add(l.o.frame_localsplus);
            if let Ok(v) = walker.objects.mem.read_usize(slot) {
                if v & !3 != 0 {
                    loops.insert(v & !3, t.thread_id);
                }
            }
            break;
        }
    }
    loops
}
