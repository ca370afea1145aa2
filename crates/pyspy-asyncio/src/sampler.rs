//! Await chains per sample, for `record`/`top --asyncio`: for each thread
//! running a task, that task and the tasks awaiting it up to the root, with
//! the suspended ones' coroutine frames; with `idle`, every waiting task too.
//!
//! Built for the hot path: the last sample's running tasks are tried first
//! (a task whose coroutine's frame is on a thread's stack runs there), with
//! one batched read of every task object of the chain the last sample found
//! from each and of the coroutine headers of their suspended members. A
//! task whose fields and coroutine headers are unchanged keeps its name,
//! parent and frames from the cache (by task address); anything that moved
//! is read again step by step and the cache updated. Where each thread's
//! running task is kept (3.14+: the thread state; before: `_current_tasks`)
//! is read only when a running task moved on, and every few samples.

use std::ops::Range;

mod others;
mod python;
#[cfg(test)]
mod tests;

use rustc_hash::{FxHashMap, FxHashSet};

use pyspy_cpython::{Interpreter, RawFrame, StackWalker};
use pyspy_process::{Memory, Target};

use crate::error::Error;
use crate::graph::{is_task_type, task_name, Raw};
use crate::layout::AsyncioLayout;
use crate::read::{chains, header_len, header_skip, Visited};
use crate::reader::{AsyncioReader, ThreadInput};

/// Most tasks followed up one await chain.
const MAX_DEPTH: usize = 256;
/// Samples between looks for `_asyncio` while it is not imported.
const PROBE_EVERY: u32 = 100;
/// Samples between reads of where the running tasks are kept, while the
/// last ones still run.
const REFRESH_EVERY: u32 = 16;
/// Samples a task found awaited by none is trusted before it is looked
/// at again.
const ORPHAN_RECHECK: u32 = 64;
/// Cached tasks kept before the cache is dropped (short-lived tasks).
const MAX_CACHED: usize = 8192;

/// One task of a chain.
#[derive(Debug, Clone)]
pub struct ChainLink {
    /// The task object's address.
    pub task: usize,
    /// Its name, for [`TaskSampler::name`].
    pub name: u32,
    /// Its frames in [`TaskSample::frames`], innermost first (empty for the
    /// running task: its frames are its thread's, see [`ThreadChain::split`]).
    pub frames: Range<usize>,
}

/// The await chain of a thread's running task.
#[derive(Debug, Clone)]
pub struct ThreadChain {
    /// Index of the thread in the sampler's input.
    pub thread: usize,
    /// The thread's innermost frames that are the running task's (down to
    /// its coroutine); the rest are the loop's.
    pub split: usize,
    /// In [`TaskSample::links`]: the running task, then each awaiting task.
    pub links: Range<usize>,
}

/// A waiting task sampled on its own (`idle`).
#[derive(Debug, Clone)]
pub struct IdleChain {
    /// Python thread id of its loop's thread, when known.
    pub thread_id: Option<u64>,
    /// In [`TaskSample::links`]: the task, then each awaiting task.
    pub links: Range<usize>,
}

/// The tasks of one sample (buffers reused from sample to sample).
#[derive(Debug, Clone, Default)]
pub struct TaskSample {
    /// Threads running a task.
    pub threads: Vec<ThreadChain>,
    /// With `idle`: waiting tasks.
    pub idle: Vec<IdleChain>,
    /// Chain members.
    pub links: Vec<ChainLink>,
    /// Coroutine frames of suspended chain members.
    pub frames: Vec<RawFrame>,
}

impl TaskSample {
    /// Empties it.
    pub fn clear(&mut self) {
        self.threads.clear();
        self.idle.clear();
        self.links.clear();
        self.frames.clear();
    }

    /// The chain of thread `index`, if it ran a task.
    pub fn thread(&self, index: usize) -> Option<&ThreadChain> {
        self.threads.iter().find(|c| c.thread == index)
    }
}

/// What is kept of a task between samples.
struct Cached {
    name_obj: usize,
    name: u32,
    /// The fields its parent was derived from, and that parent (0: none).
    parent_key: [usize; 3],
    parent: usize,
    /// Samples since "no parent" was last read.
    orphan_samples: u32,
    /// Its coroutine, the headers of its suspended chain, and the frames.
    coro: usize,
    chain: Vec<Visited>,
    frames: Vec<RawFrame>,
    chain_read: bool,
}

/// The running-task sampler of one interpreter.
pub struct TaskSampler {
    layout: AsyncioLayout,
    /// The `PyInterpreterState`'s address.
    interp: usize,
    /// `_asyncio.Task` and `_current_tasks` (0 on 3.14+).
    module: Option<(usize, usize)>,
    probe_in: u32,
    /// A layout the target's `_asyncio` did not match: permanent, so it is
    /// returned again rather than checked every sample.
    refused: Option<(&'static str, String)>,
    idle_reader: Option<AsyncioReader>,
    names: Vec<String>,
    name_ids: FxHashMap<String, u32>,
    cache: FxHashMap<usize, Cached>,
    task_types: FxHashSet<usize>,
    other_types: FxHashSet<usize>,
    ranges: Vec<(usize, usize)>,
    buf: Vec<u8>,
    predicted: Vec<usize>,
    /// The running tasks of the last sample.
    last_running: Vec<usize>,
    /// Samples since the running tasks were last read where they are kept.
    since_refresh: u32,
}

impl TaskSampler {
    /// A sampler for `interp`; refuses versions without a task reader.
    pub fn new<T: Target>(target: &T, interp: &Interpreter) -> Result<TaskSampler, Error> {
        let mut layout = AsyncioLayout::for_interpreter(&interp.layout)?;
        if layout.o.task_node.is_some() {
            // Missing until asyncio is imported: looked for again then.
            let _ = layout.read_section(target, &interp.layout);
        }
        Ok(TaskSampler::with_layout(layout, interp.interp))
    }

    /// A sampler with a layout already checked.
    pub(crate) fn with_layout(layout: AsyncioLayout, interp: usize) -> TaskSampler {
        TaskSampler {
            layout,
            interp,
            module: None,
            probe_in: 0,
            refused: None,
            idle_reader: None,
            names: Vec::new(),
            name_ids: FxHashMap::default(),
            cache: FxHashMap::default(),
            task_types: FxHashSet::default(),
            other_types: FxHashSet::default(),
            ranges: Vec::new(),
            buf: Vec::new(),
            predicted: Vec::new(),
            last_running: Vec::new(),
            since_refresh: 0,
        }
    }

    /// Looks for the target's `_asyncio` module now (it is looked for again
    /// every so many samples until asyncio is imported) and checks its
    /// types against the layout: `Ok(false)` when not imported yet. A
    /// mismatch is permanent and returned by every later call.
    pub fn probe<M: Memory, T: Target>(
        &mut self,
        target: &T,
        walker: &mut StackWalker<M>,
    ) -> Result<bool, Error> {
        if let Some((code, message)) = &self.refused {
            return Err(Error::Refused(code, message.clone()));
        }
        match self.find_module(target, walker) {
            Err(e @ (Error::Layout { .. } | Error::Unsupported { .. })) => {
                self.refused = Some((e.code(), e.to_string()));
                Err(e)
            }
            other => other,
        }
    }

    /// The text of a name id.
    pub fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("?", String::as_str)
    }

    /// Reads the tasks of the moment of `threads` (the caller's sample) into
    /// `out`; with `idle`, every waiting task as well.
    pub fn sample<M: Memory, T: Target>(
        &mut self,
        target: &T,
        walker: &mut StackWalker<M>,
        threads: &[ThreadInput<'_>],
        idle: bool,
        out: &mut TaskSample,
    ) -> Result<(), Error> {
        out.clear();
        if self.module.is_none() && !self.probe(target, walker)? {
            return Ok(());
        }
        let (task_type, current) = self.module.expect("found above");
        if self.layout.python_tasks {
            return self.python_sample(target, walker, threads, idle, out);
        }
        self.task_types.insert(task_type);
        // Running task candidates: (thread index if known, task).
        // A task whose coroutine's frame is still on a thread's stack still
        // runs there: the last sample's running tasks are tried first, and
        // where each thread's running task is kept is read only when one
        // has moved on, and every `REFRESH_EVERY` samples (another thread's
        // loop may have started a task meanwhile).
        let last = std::mem::take(&mut self.last_running);
        let mut moved = last.is_empty() || self.since_refresh >= REFRESH_EVERY;
        for &task in &last {
            let before = out.threads.len();
            self.running_chain(walker, threads, None, task, out);
            moved |= out.threads.len() == before;
        }
        self.since_refresh += 1;
        let mut running: Vec<(Option<usize>, usize)> = Vec::new();
        if moved {
            self.since_refresh = 0;
            self.running_tasks(walker, threads, current, &mut running)?;
            running.retain(|(_, t)| !last.contains(t));
        }
        for (thread, task) in running {
            self.running_chain(walker, threads, thread, task, out);
        }
        self.last_running.clear();
        self.last_running
            .extend(out.threads.iter().map(|c| out.links[c.links.start].task));
        if idle {
            self.idle_chains(target, walker, threads, out)?;
        }
        if self.cache.len() > MAX_CACHED {
            self.cache.clear();
        }
        Ok(())
    }

    /// Follows `task` (running on `thread`, or on whichever thread has its
    /// coroutine's frame) up its awaiters into `out`.
    fn running_chain<M: Memory>(
        &mut self,
        walker: &mut StackWalker<M>,
        threads: &[ThreadInput<'_>],
        thread: Option<usize>,
        task: usize,
        out: &mut TaskSample,
    ) {
        // One read: the chain as the cache predicts it, with the coroutine
        // headers of its suspended members.
        self.predicted.clear();
        let mut t = task;
        while t != 0 && self.predicted.len() < MAX_DEPTH && !self.predicted.contains(&t) {
            self.predicted.push(t);
            t = self.cache.get(&t).map_or(0, |c| c.parent);
        }
        let size = self.layout.o.task_size;
        let skip = header_skip(walker.objects.layout.offsets.ob_type);
        let hlen = header_len(&self.layout) - skip;
        self.ranges.clear();
        self.ranges
            .extend(self.predicted.iter().map(|&t| (t, size)));
        for &t in &self.predicted[1..] {
            if let Some(c) = self.cache.get(&t) {
                self.ranges
                    .extend(c.chain.iter().map(|(g, _)| (g + skip, hlen)));
            }
        }
        let total: usize = self.ranges.iter().map(|r| r.1).sum();
        self.buf.resize(total, 0);
        let batched = walker
            .objects
            .mem
            .read_ranges(&self.ranges, &mut self.buf)
            .is_ok();
        let first_link = out.links.len();
        let mut header_at = self.predicted.len() * size;
        let mut seen: Vec<usize> = Vec::new();
        let mut split = None;
        let mut t = task;
        let mut bytes = vec![0u8; size];
        for depth in 0..MAX_DEPTH {
            if t == 0 || seen.contains(&t) {
                break;
            }
            seen.push(t);
            let in_batch = batched && self.predicted.get(depth) == Some(&t);
            if in_batch {
                bytes.copy_from_slice(&self.buf[depth * size..(depth + 1) * size]);
            } else if walker.objects.mem.read(t, &mut bytes).is_err() {
                break;
            }
            let raw = Raw::parse(
                &bytes,
                &self.layout,
                walker.objects.layout.offsets.ob_type,
                t,
                None,
            );
            if raw.state != 0
                || !is_task_type(
                    &walker.objects,
                    self.layout.o.type_base,
                    raw.ty,
                    &mut self.task_types,
                    &mut self.other_types,
                )
            {
                break; // done, or not a task (any more)
            }
            if depth == 0 {
                // The running task's coroutine frame must be on its
                // thread's stack: which thread, and where the loop's
                // frames begin.
                let frame = raw.coro.wrapping_add(self.layout.o.gen_iframe);
                let found = threads.iter().enumerate().find_map(|(i, th)| {
                    if thread.is_some_and(|want| want != i) {
                        return None;
                    }
                    th.frames
                        .iter()
                        .position(|f| f.addr == frame)
                        .map(|idx| (i, idx + 1))
                });
                let Some(found) = found else {
                    return; // it moved on since its thread was read
                };
                split = Some(found);
            }
            let cached_ok = in_batch
                && self
                    .cache
                    .get(&t)
                    .is_some_and(|c| c.name_obj == raw.name && c.coro == raw.coro && c.chain_read);
            // The headers of a suspended chain, as batched (depth > 0).
            let headers_ok = cached_ok
                && depth > 0
                && self.cache.get(&t).is_some_and(|c| {
                    let n = c.chain.len() * hlen;
                    let fresh = self.buf.get(header_at..header_at + n);
                    let same = fresh.is_some_and(|f| {
                        c.chain
                            .iter()
                            .zip(f.chunks_exact(hlen))
                            .all(|((_, old), new)| old[..] == new[..])
                    });
                    same
                });
            if in_batch && depth > 0 {
                header_at += self.cache.get(&t).map_or(0, |c| c.chain.len() * hlen);
            }
            let name = match self.cache.get(&t).filter(|c| c.name_obj == raw.name) {
                Some(c) => c.name,
                None => match task_name(&walker.objects, raw.name) {
                    Some(n) => self.intern(n),
                    None => break,
                },
            };
            let parent_key = [raw.callback0, raw.callbacks, raw.awaited_by];
            // "No parent" is only kept for a while: gather's closure and
            // its outer future's waiter are filled in after the child's
            // callback, with no field of the child changing.
            let parent = match self.cache.get_mut(&t).filter(|c| {
                c.parent_key == parent_key && (c.parent != 0 || c.orphan_samples < ORPHAN_RECHECK)
            }) {
                Some(c) => {
                    c.orphan_samples += 1;
                    c.parent
                }
                None => {
                    if let Some(c) = self.cache.get_mut(&t) {
                        c.orphan_samples = 0;
                    }
                    self.parent_of(walker, &raw)
                }
            };
            let entry = self.cache.entry(t).or_insert_with(|| Cached {
                name_obj: 0,
                name,
                parent_key,
                parent,
                orphan_samples: 0,
                coro: 0,
                chain: Vec::new(),
                frames: Vec::new(),
                chain_read: false,
            });
            entry.name_obj = raw.name;
            entry.name = name;
            entry.parent_key = parent_key;
            entry.parent = parent;
            let start = out.frames.len();
            if depth > 0 {
                if !headers_ok {
                    let mut frames = vec![Vec::new()];
                    let mut visited = vec![Vec::new()];
                    chains(
                        walker,
                        &self.layout,
                        &[raw.coro],
                        threads,
                        &mut frames,
                        Some(&mut visited),
                    );
                    let entry = self.cache.get_mut(&t).expect("inserted above");
                    entry.coro = raw.coro;
                    entry.chain = visited.pop().unwrap_or_default();
                    entry.frames = frames.pop().unwrap_or_default();
                    entry.frames.reverse();
                    entry.chain_read = true;
                }
                let entry = &self.cache[&t];
                out.frames.extend_from_slice(&entry.frames);
            }
            out.links.push(ChainLink {
                task: t,
                name,
                frames: start..out.frames.len(),
            });
            t = parent;
        }
        if let Some((thread, split)) = split.filter(|_| out.links.len() > first_link) {
            out.threads.push(ThreadChain {
                thread,
                split,
                links: first_link..out.links.len(),
            });
        } else {
            out.links.truncate(first_link);
        }
    }

    fn intern(&mut self, name: String) -> u32 {
        if let Some(&id) = self.name_ids.get(&name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.clone());
        self.name_ids.insert(name, id);
        id
    }
}

fn word(b: &[u8], off: usize) -> usize {
    b.get(off..off + 8)
        .map(|w| u64::from_le_bytes(w.try_into().unwrap()) as usize)
        .unwrap_or(0)
}
