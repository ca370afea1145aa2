//! Task records and their await edges.
//!
//! 3.14+ tasks name their waiters (`fut_awaited_by`: one object or a set).
//! Before that the edges are rebuilt from both ends: what a task waits on
//! (`_fut_waiter`: another task, or a `gather`'s future and its children)
//! and the done-callbacks registered on a task (a waiting C task's
//! `__wakeup` builtin, whose `__self__` is the waiter; a `TaskGroup`'s
//! `_on_task_done` bound method, whose group's `_parent_task` waits for it;
//! those live in `edges.rs`).

use rustc_hash::{FxHashMap, FxHashSet};

use pyspy_cpython::{ObjectReader, StackWalker};
use pyspy_process::{Memory, MemoryExt};

use crate::edges::{callback_waiters, waited_on};
use crate::layout::AsyncioLayout;
use crate::locate;
use crate::reader::{AsyncioSnapshot, Task, TaskState, ThreadInput};

/// Longest task name kept.
const MAX_NAME: usize = 256;
/// Deepest `tp_base` chain followed for a Task subclass.
const MAX_BASES: usize = 16;

/// The fields of one task object the graph needs.
pub(crate) struct Raw {
    pub(crate) addr: usize,
    pub(crate) thread: Option<u64>,
    pub(crate) ty: usize,
    pub(crate) loop_: usize,
    pub(crate) state: u32,
    pub(crate) fut_waiter: usize,
    pub(crate) coro: usize,
    pub(crate) name: usize,
    pub(crate) callback0: usize,
    pub(crate) callbacks: usize,
    pub(crate) awaited_by: usize,
    pub(crate) awaited_by_is_set: bool,
}

impl Raw {
    /// The fields of the task object whose `o.task_size` bytes are `bytes`.
    pub(crate) fn parse(
        bytes: &[u8],
        l: &AsyncioLayout,
        ob_type: usize,
        addr: usize,
        thread: Option<u64>,
    ) -> Raw {
        let o = &l.o;
        Raw {
            addr,
            thread,
            ty: word(bytes, ob_type),
            loop_: word(bytes, o.fut_loop),
            state: bytes
                .get(o.fut_state..o.fut_state + 4)
                .map_or(u32::MAX, |b| u32::from_le_bytes(b.try_into().unwrap())),
            fut_waiter: word(bytes, o.task_fut_waiter),
            coro: word(bytes, o.task_coro),
            name: word(bytes, o.task_name),
            callback0: word(bytes, o.fut_callback0),
            callbacks: word(bytes, o.fut_callbacks),
            awaited_by: o.fut_awaited_by.map_or(0, |off| word(bytes, off)),
            awaited_by_is_set: o
                .fut_awaited_by_is_set
                .is_some_and(|off| bytes.get(off).is_some_and(|&b| b != 0)),
        }
    }
}

/// What a reader keeps between reads of the same process (`record --asyncio
/// --idle` reads every task each sample).
#[derive(Default)]
pub(crate) struct GraphCache {
    /// Names by (task, name object).
    names: FxHashMap<(usize, usize), String>,
    /// Waiters named by a task's only done-callback, by (task, callback):
    /// kept once found (gather fills its closure in after the callback).
    waiters: FxHashMap<(usize, usize), Vec<usize>>,
}

/// Entries a cache keeps before it is dropped (tasks come and go).
const MAX_CACHED: usize = 1 << 16;

/// Reads every candidate, keeps the tasks, follows their chains and edges.
#[allow(clippy::too_many_arguments)]
pub(crate) fn build<M: Memory>(
    cache: &mut GraphCache,
    walker: &mut StackWalker<M>,
    l: &AsyncioLayout,
    task_type: usize,
    candidates: &[(usize, Option<u64>)],
    loops: &FxHashMap<usize, u64>,
    current: &FxHashMap<usize, u64>,
    threads: &[ThreadInput<'_>],
    snap: &mut AsyncioSnapshot,
) {
    let mut task_types = FxHashSet::default();
    let mut other_types = FxHashSet::default();
    task_types.insert(task_type);
    let raws = if l.python_tasks {
        python_raws(
            walker,
            l,
            candidates,
            &mut task_types,
            &mut other_types,
            snap,
        )
    } else {
        c_raws(
            walker,
            l,
            candidates,
            &mut task_types,
            &mut other_types,
            snap,
        )
    };
    edges_and_frames(cache, walker, l, raws, loops, current, threads, snap);
}

/// The candidates that are C tasks, read in one batch.
fn c_raws<M: Memory>(
    walker: &mut StackWalker<M>,
    l: &AsyncioLayout,
    candidates: &[(usize, Option<u64>)],
    task_types: &mut FxHashSet<usize>,
    other_types: &mut FxHashSet<usize>,
    snap: &mut AsyncioSnapshot,
) -> Vec<Raw> {
    let o = &l.o;
    let size = o.task_size;
    let ranges: Vec<(usize, usize)> = candidates.iter().map(|(a, _)| (*a, size)).collect();
    let mut buf = vec![0u8; ranges.len() * size];
    let batched = walker.objects.mem.read_ranges(&ranges, &mut buf).is_ok();
    let mut raws = Vec::with_capacity(candidates.len());
    for (i, &(addr, thread)) in candidates.iter().enumerate() {
        let bytes = &mut buf[i * size..(i + 1) * size];
        if !batched && walker.objects.mem.read(addr, bytes).is_err() {
            snap.skipped += 1;
            continue;
        }
        let ty = word(bytes, walker.objects.layout.offsets.ob_type);
        if !is_task_type(&walker.objects, o.type_base, ty, task_types, other_types) {
            continue; // a dead weak reference's None, a set's dummy
        }
        raws.push(Raw::parse(
            bytes,
            l,
            walker.objects.layout.offsets.ob_type,
            addr,
            thread,
        ));
    }
    raws
}

/// The candidates that are pure-Python tasks, each from its instance dict.
fn python_raws<M: Memory>(
    walker: &mut StackWalker<M>,
    l: &AsyncioLayout,
    candidates: &[(usize, Option<u64>)],
    task_types: &mut FxHashSet<usize>,
    other_types: &mut FxHashSet<usize>,
    snap: &mut AsyncioSnapshot,
) -> Vec<Raw> {
    let r = &walker.objects;
    let mut raws = Vec::with_capacity(candidates.len());
    for &(addr, thread) in candidates {
        let Ok(ty) = r.type_of(addr) else {
            snap.skipped += 1;
            continue;
        };
        if !is_task_type(r, l.o.type_base, ty, task_types, other_types) {
            continue;
        }
        match crate::python_tasks::raw(r, addr, ty, thread) {
            Some(raw) => raws.push(raw),
            None => snap.skipped += 1,
        }
    }
    raws
}

/// Names, states and await edges of the tasks read, then their frames.
#[allow(clippy::too_many_arguments)]
fn edges_and_frames<M: Memory>(
    cache: &mut GraphCache,
    walker: &mut StackWalker<M>,
    l: &AsyncioLayout,
    raws: Vec<Raw>,
    loops: &FxHashMap<usize, u64>,
    current: &FxHashMap<usize, u64>,
    threads: &[ThreadInput<'_>],
    snap: &mut AsyncioSnapshot,
) {
    let r = &walker.objects;
    let mut tasks: Vec<Task> = Vec::with_capacity(raws.len());
    let mut keep = Vec::with_capacity(raws.len());
    for raw in &raws {
        let state = match raw.state {
            0 if current.contains_key(&raw.addr) => TaskState::Running,
            0 => TaskState::Pending,
            1 => TaskState::Cancelled,
            2 => TaskState::Done,
            _ => {
                snap.skipped += 1;
                note(snap, "a task with an unknown state was skipped");
                continue;
            }
        };
        if cache.names.len() > MAX_CACHED || cache.waiters.len() > MAX_CACHED {
            *cache = GraphCache::default();
        }
        let name = match cache.names.get(&(raw.addr, raw.name)) {
            Some(n) => Some(n.clone()),
            None => task_name(r, raw.name).inspect(|n| {
                cache.names.insert((raw.addr, raw.name), n.clone());
            }),
        };
        let Some(name) = name else {
            snap.skipped += 1;
            note(snap, "a task whose name could not be read was skipped");
            continue;
        };
        tasks.push(Task {
            id: tasks.len(),
            addr: raw.addr,
            name,
            coro: raw.coro,
            state,
            thread_id: raw
                .thread
                .or_else(|| loops.get(&raw.loop_).copied())
                .or_else(|| current.get(&raw.addr).copied()),
            frames: Vec::new(),
            awaiting: Vec::new(),
            awaited_by: Vec::new(),
        });
        keep.push(raw);
    }
    let ids: FxHashMap<usize, usize> = tasks.iter().map(|t| (t.addr, t.id)).collect();
    // The types of the futures tasks wait on, in one read (only a gather's
    // is looked into).
    let mut waiter_types: FxHashMap<usize, usize> = FxHashMap::default();
    if l.o.fut_awaited_by.is_none() {
        let futures: Vec<usize> = keep
            .iter()
            .map(|k| k.fut_waiter)
            .filter(|w| *w != 0 && !ids.contains_key(w))
            .collect();
        let ob_type = r.layout.offsets.ob_type;
        let ranges: Vec<(usize, usize)> = futures.iter().map(|&f| (f + ob_type, 8)).collect();
        let mut buf = vec![0u8; ranges.len() * 8];
        if r.mem.read_ranges(&ranges, &mut buf).is_ok() {
            for (i, &f) in futures.iter().enumerate() {
                waiter_types.insert(f, word(&buf, i * 8));
            }
        }
    }
    // Edges as (waiter, awaited).
    let mut edges: FxHashSet<(usize, usize)> = FxHashSet::default();
    for (id, raw) in keep.iter().enumerate() {
        if l.o.fut_awaited_by.is_some() {
            let mut waiters = Vec::new();
            if raw.awaited_by != 0 {
                if raw.awaited_by_is_set {
                    let _ = locate::set_items(r, l, raw.awaited_by, &mut waiters);
                } else {
                    waiters.push(raw.awaited_by);
                }
            }
            edges.extend(waiters.iter().filter_map(|w| ids.get(w)).map(|&w| (w, id)));
            continue;
        }
        let waiter_type = waiter_types.get(&raw.fut_waiter).copied().unwrap_or(0);
        for awaited in waited_on(r, raw.fut_waiter, waiter_type, &ids) {
            edges.insert((id, awaited));
        }
        let key = (raw.addr, raw.callback0);
        let waiters = match cache.waiters.get(&key).filter(|_| raw.callbacks == 0) {
            Some(w) => w.clone(),
            None => {
                let w = callback_waiters(r, l, raw.callback0, raw.callbacks, 1);
                if raw.callbacks == 0 && !w.is_empty() {
                    cache.waiters.insert(key, w.clone());
                }
                w
            }
        };
        for waiter in waiters.iter().filter_map(|w| ids.get(w)) {
            edges.insert((*waiter, id));
        }
    }
    let mut edges: Vec<(usize, usize)> = edges.into_iter().filter(|(a, b)| a != b).collect();
    edges.sort_unstable();
    for &(waiter, awaited) in &edges {
        tasks[waiter].awaiting.push(awaited);
        tasks[awaited].awaited_by.push(waiter);
    }
    for t in &mut tasks {
        t.awaited_by.sort_unstable();
    }
    // Frames.
    let coros: Vec<usize> = keep.iter().map(|r| r.coro).collect();
    let mut frames = vec![Vec::new(); tasks.len()];
    let cut = crate::read::chains(walker, l, &coros, threads, &mut frames, None);
    if cut > 0 {
        note(
            snap,
            &format!("{cut} coroutine chain(s) could not be read to the end"),
        );
    }
    for (t, mut f) in tasks.iter_mut().zip(frames) {
        f.reverse();
        t.frames = f;
    }
    snap.tasks = tasks;
}

fn note(snap: &mut AsyncioSnapshot, text: &str) {
    if !snap.notes.iter().any(|n| n == text) {
        snap.notes.push(text.to_owned());
    }
}

/// Whether `ty` is `_asyncio.Task` or a subclass of it.
pub(crate) fn is_task_type<M: Memory>(
    r: &ObjectReader<M>,
    base_off: usize,
    ty: usize,
    yes: &mut FxHashSet<usize>,
    no: &mut FxHashSet<usize>,
) -> bool {
    if yes.contains(&ty) {
        return true;
    }
    if no.contains(&ty) || ty == 0 {
        return false;
    }
    let mut t = ty;
    for _ in 0..MAX_BASES {
        match r.mem.read_usize(t.wrapping_add(base_off)) {
            Ok(0) | Err(_) => break,
            Ok(base) if yes.contains(&base) => {
                yes.insert(ty);
                return true;
            }
            Ok(base) => t = base,
        }
    }
    no.insert(ty);
    false
}

/// A task's name: a `str`, or an `int` N meaning `Task-N` (3.13+ store
/// the counter and format it on demand).
pub(crate) fn task_name<M: Memory>(r: &ObjectReader<M>, name: usize) -> Option<String> {
    let ty = r.type_of(name).ok()?;
    match &*r.type_name(ty).ok()? {
        "str" => r.read_str(name, MAX_NAME).ok(),
        "int" => Some(format!("Task-{}", r.read_int(name).ok()??)),
        _ => None,
    }
}

fn word(b: &[u8], off: usize) -> usize {
    b.get(off..off + 8)
        .map(|w| u64::from_le_bytes(w.try_into().unwrap()) as usize)
        .unwrap_or(0)
}
