//! What the running chains start from and do not cache: the `_asyncio`
//! module, each thread's running task, who awaits a task (when the cache
//! cannot say), and with `idle` every waiting task.

use pyspy_cpython::StackWalker;
use pyspy_process::{Memory, Target};

use super::{word, ChainLink, IdleChain, TaskSample, TaskSampler, MAX_DEPTH, PROBE_EVERY};
use crate::edges::callback_waiters;
use crate::error::{Context, Error};
use crate::graph::{is_task_type, Raw};
use crate::locate::{self, Found};
use crate::reader::{AsyncioReader, AsyncioSnapshot, Task, TaskState, ThreadInput};

impl TaskSampler {
    /// Each thread's running task (3.14+: from its thread state, one read
    /// for all; before: the `_current_tasks` dict, matched to a thread later
    /// by its coroutine's frame).
    pub(super) fn running_tasks<M: Memory>(
        &mut self,
        walker: &mut StackWalker<M>,
        threads: &[ThreadInput<'_>],
        current: usize,
        out: &mut Vec<(Option<usize>, usize)>,
    ) -> Result<(), Error> {
        let r = &walker.objects;
        if let Some(lists) = self.layout.lists {
            self.ranges.clear();
            let with_frames: Vec<usize> = (0..threads.len())
                .filter(|&i| !threads[i].frames.is_empty())
                .collect();
            self.ranges.extend(
                with_frames
                    .iter()
                    .map(|&i| (threads[i].tstate.wrapping_add(lists.running_task), 8)),
            );
            self.buf.resize(self.ranges.len() * 8, 0);
            r.mem
                .read_ranges(&self.ranges, &mut self.buf)
                .ctx("running task")?;
            for (k, &i) in with_frames.iter().enumerate() {
                let task = word(&self.buf, k * 8);
                if task != 0 {
                    out.push((Some(i), task));
                }
            }
        } else if current != 0 {
            for (_, task) in r.dict_items(current).ctx("_current_tasks")? {
                out.push((None, task));
            }
        }
        Ok(())
    }

    /// Looks for `_asyncio` (every `PROBE_EVERY` samples until found).
    pub(super) fn find_module<M: Memory, T: Target>(
        &mut self,
        target: &T,
        walker: &mut StackWalker<M>,
    ) -> Result<bool, Error> {
        if self.probe_in > 0 {
            self.probe_in -= 1;
            return Ok(false);
        }
        let r = &walker.objects;
        match locate::find_module(r, self.interp)? {
            Found::Nothing => {
                self.probe_in = PROBE_EVERY;
                Ok(false)
            }
            Found::Module {
                task_type,
                future_type,
                items,
            } => {
                locate::check_types(r, &self.layout, task_type, future_type)?;
                if self.layout.o.task_node.is_some() && self.layout.lists.is_none() {
                    self.layout.read_section(target, &r.layout)?;
                }
                let current = if self.layout.lists.is_some() {
                    0
                } else {
                    r.lookup_str_key(&items, "_current_tasks").unwrap_or(0)
                };
                self.module = Some((task_type, current));
                Ok(true)
            }
            Found::PythonTasks { task_type, .. } => {
                // Read per sample through the dump reader (python.rs).
                self.layout.python_tasks = true;
                self.layout.lists = None;
                self.module = Some((task_type, 0));
                Ok(true)
            }
        }
    }

    /// The task awaiting `raw` (one of them, when several do), or 0.
    pub(super) fn parent_of<M: Memory>(&mut self, walker: &mut StackWalker<M>, raw: &Raw) -> usize {
        let r = &walker.objects;
        let l = &self.layout;
        let mut candidates = Vec::new();
        if l.o.fut_awaited_by.is_some() {
            if raw.awaited_by_is_set {
                let _ = locate::set_items(r, l, raw.awaited_by, &mut candidates);
            } else if raw.awaited_by != 0 {
                candidates.push(raw.awaited_by);
            }
        } else {
            candidates = callback_waiters(r, l, raw.callback0, raw.callbacks, 1);
        }
        let base = l.o.type_base;
        candidates
            .into_iter()
            .filter(|&c| c != 0 && c != raw.addr)
            .find(|&c| {
                r.type_of(c).is_ok_and(|ty| {
                    is_task_type(r, base, ty, &mut self.task_types, &mut self.other_types)
                })
            })
            .unwrap_or(0)
    }

    /// Every waiting task of the interpreter, each with its awaiters.
    pub(super) fn idle_chains<M: Memory, T: Target>(
        &mut self,
        target: &T,
        walker: &mut StackWalker<M>,
        threads: &[ThreadInput<'_>],
        out: &mut TaskSample,
    ) -> Result<(), Error> {
        if self.idle_reader.is_none() {
            self.idle_reader = Some(AsyncioReader::with_layout(self.layout, self.interp));
        }
        let snap = self
            .idle_reader
            .as_mut()
            .expect("set above")
            .read(target, walker, threads)?;
        self.idle_from(&snap, out);
        Ok(())
    }

    /// Every waiting task of `snap`, each with its awaiters, into `out`.
    pub(super) fn idle_from(&mut self, snap: &AsyncioSnapshot, out: &mut TaskSample) {
        for task in snap.tasks.iter().filter(|t| t.state == TaskState::Pending) {
            let first = out.links.len();
            self.push_chain(snap, task, out);
            out.idle.push(IdleChain {
                thread_id: task.thread_id,
                links: first..out.links.len(),
            });
        }
    }

    /// `task` and the tasks awaiting it (the first of each), up to the
    /// root, as links of `out` (a running task's frames are its thread's).
    pub(super) fn push_chain(&mut self, snap: &AsyncioSnapshot, task: &Task, out: &mut TaskSample) {
        let mut seen = Vec::new();
        let mut cur = Some(task);
        while let Some(t) = cur {
            if seen.contains(&t.id) || seen.len() >= MAX_DEPTH {
                break;
            }
            seen.push(t.id);
            let start = out.frames.len();
            if t.state != TaskState::Running {
                out.frames.extend_from_slice(&t.frames);
            }
            let name = self.intern(t.name.clone());
            out.links.push(ChainLink {
                task: t.addr,
                name,
                frames: start..out.frames.len(),
            });
            cur = t.awaited_by.first().and_then(|&id| snap.tasks.get(id));
        }
    }
}
