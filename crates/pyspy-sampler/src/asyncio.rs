//! `dump --asyncio`: the tasks of the sample just read (the target still
//! paused, or a core file), with their coroutine frames named like thread
//! frames. A failure to read tasks never fails the dump: it becomes the
//! [`AsyncioDump::error`] the caller prints.

use pyspy_asyncio::{AsyncioReader, ThreadInput};
use pyspy_cpython::{Frame, Interpreter, RawFrame, StackWalker, ThreadState};
use pyspy_process::{Memory, Target};

use crate::filenames::ShortFilenames;
use crate::session::DumpConfig;

/// One asyncio task of a dump.
#[derive(Debug, Clone)]
pub struct AsyncTask {
    /// Index in [`AsyncioDump::tasks`] (stable within one dump).
    pub id: u32,
    /// `task.get_name()`.
    pub name: String,
    /// `pending`, `running`, `done` or `cancelled`.
    pub state: &'static str,
    /// Python thread id of the thread whose loop runs it, when known.
    pub thread_id: Option<u64>,
    /// Its coroutine chain's frames, innermost first.
    pub frames: Vec<Frame>,
    /// Ids of the tasks it awaits.
    pub awaiting: Vec<u32>,
    /// Ids of the tasks awaiting it.
    pub awaited_by: Vec<u32>,
}

/// The asyncio part of a dump.
#[derive(Debug, Clone, Default)]
pub struct AsyncioDump {
    /// Whether some thread runs an event loop.
    pub loop_found: bool,
    /// Every task read.
    pub tasks: Vec<AsyncTask>,
    /// Tasks that could not be read and were left out.
    pub skipped: u32,
    /// Why tasks could not be read at all: `(code, message)`.
    pub error: Option<(&'static str, String)>,
    /// Remarks about partial reads.
    pub notes: Vec<String>,
}

/// Reads the tasks of `interpreter` at the moment of `states`/`frames`
/// (one entry per thread, in the same order).
#[allow(clippy::too_many_arguments)]
pub(crate) fn read_tasks<M: Memory, T: Target>(
    target: &T,
    interpreter: &Interpreter,
    walker: &mut StackWalker<M>,
    states: &[ThreadState],
    frames: &[&[RawFrame]],
    config: &DumpConfig,
    short: &mut ShortFilenames,
) -> AsyncioDump {
    let inputs: Vec<ThreadInput<'_>> = states
        .iter()
        .zip(frames)
        .map(|(s, f)| ThreadInput {
            tstate: s.addr,
            thread_id: s.thread_id,
            frames: f,
        })
        .collect();
    let snap = match AsyncioReader::new(target, interpreter)
        .and_then(|mut r| r.read(target, walker, &inputs))
    {
        Ok(s) => s,
        Err(e) => {
            return AsyncioDump {
                error: Some((e.code(), e.to_string())),
                ..AsyncioDump::default()
            }
        }
    };
    let mut tasks = Vec::with_capacity(snap.tasks.len());
    for t in snap.tasks {
        let mut out = Vec::with_capacity(t.frames.len());
        for f in &t.frames {
            let Ok(info) = walker.code(f.code) else {
                continue;
            };
            let locals = config.locals.then(|| {
                walker
                    .locals_limited(
                        f.addr,
                        &info,
                        config.locals_level.max(1) as usize * pyspy_cpython::MAX_REPR,
                    )
                    .unwrap_or_default()
            });
            out.push(short.python_frame(
                target,
                config.full_filenames,
                &info.name,
                &info.filename,
                f.line,
                locals,
            ));
        }
        tasks.push(AsyncTask {
            id: t.id as u32,
            name: t.name,
            state: t.state.as_str(),
            thread_id: t.thread_id,
            frames: out,
            awaiting: t.awaiting.iter().map(|&i| i as u32).collect(),
            awaited_by: t.awaited_by.iter().map(|&i| i as u32).collect(),
        });
    }
    AsyncioDump {
        loop_found: snap.loop_found,
        tasks,
        skipped: snap.skipped as u32,
        error: None,
        notes: snap.notes,
    }
}
