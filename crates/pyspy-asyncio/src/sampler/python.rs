//! Await chains of pure-Python tasks (`_PyTask`, no `_asyncio`): their
//! fields sit in instance dicts, not at offsets a batch could read and a
//! cache could compare, so each sample takes the dump reader's snapshot of
//! every task (a cost per task, like `--idle`) and builds its chains from
//! it. Rare in practice (CPython always builds `_asyncio`), so simple over
//! fast.

use pyspy_cpython::StackWalker;
use pyspy_process::{Memory, Target};

use super::{TaskSample, TaskSampler, ThreadChain};
use crate::error::Error;
use crate::reader::{AsyncioReader, TaskState, ThreadInput};

impl TaskSampler {
    /// [`TaskSampler::sample`] for pure-Python tasks.
    pub(super) fn python_sample<M: Memory, T: Target>(
        &mut self,
        target: &T,
        walker: &mut StackWalker<M>,
        threads: &[ThreadInput<'_>],
        idle: bool,
        out: &mut TaskSample,
    ) -> Result<(), Error> {
        let reader = self
            .idle_reader
            .get_or_insert_with(|| AsyncioReader::with_layout(self.layout, self.interp));
        let snap = reader.read(target, walker, threads)?;
        for task in snap.tasks.iter().filter(|t| t.state == TaskState::Running) {
            // Its coroutine's frame on a thread's stack: that thread, and
            // where the loop's frames begin.
            let frame = task.coro.wrapping_add(self.layout.o.gen_iframe);
            let found = threads.iter().enumerate().find_map(|(i, th)| {
                th.frames
                    .iter()
                    .position(|f| f.addr == frame)
                    .map(|idx| (i, idx + 1))
            });
            let Some((thread, split)) = found else {
                continue;
            };
            let first = out.links.len();
            self.push_chain(&snap, task, out);
            out.threads.push(ThreadChain {
                thread,
                split,
                links: first..out.links.len(),
            });
        }
        if idle {
            self.idle_from(&snap, out);
        }
        Ok(())
    }
}
