//! The tasks a running chain does not read: who awaits a task (when the
//! cache cannot say), and with `idle` every waiting task.

use pyspy_cpython::StackWalker;
use pyspy_process::{Memory, Target};

use super::{ChainLink, IdleChain, TaskSample, TaskSampler, MAX_DEPTH};
use crate::error::Error;
use crate::graph::{callback_waiters, is_task_type, Raw};
use crate::locate;
use crate::reader::{AsyncioReader, TaskState, ThreadInput};

impl TaskSampler {
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
        for task in snap.tasks.iter().filter(|t| t.state == TaskState::Pending) {
            let first = out.links.len();
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
                cur = t.awaited_by.first().map(|&id| &snap.tasks[id]);
            }
            out.idle.push(IdleChain {
                thread_id: task.thread_id,
                links: first..out.links.len(),
            });
        }
        Ok(())
    }
}
