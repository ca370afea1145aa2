//! The reader's entry point: one snapshot of every task of an interpreter.

use rustc_hash::{FxHashMap, FxHashSet};

use pyspy_cpython::{Interpreter, RawFrame, StackWalker};
use pyspy_process::{Memory, Target};

use crate::error::{Context, Error};
use crate::layout::AsyncioLayout;
use crate::locate::{self, Found};

/// Most tasks read from one process.
pub const MAX_TASKS: usize = 100_000;
/// Deepest coroutine chain followed (coroutine awaiting coroutine).
pub const MAX_CHAIN: usize = 1024;

/// A thread as the stack reader saw it (the caller's sample).
#[derive(Debug, Clone, Copy)]
pub struct ThreadInput<'a> {
    /// Its `PyThreadState`.
    pub tstate: usize,
    /// Python's thread id.
    pub thread_id: u64,
    /// Its frames, innermost first.
    pub frames: &'a [RawFrame],
}

/// A task's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    /// Waiting (or scheduled) to run.
    Pending,
    /// The current task of its thread's loop.
    Running,
    /// Finished with a result or an exception.
    Done,
    /// Cancelled.
    Cancelled,
}

impl TaskState {
    /// Its name in JSON and text: `pending`, `running`, `done`, `cancelled`.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Pending => "pending",
            TaskState::Running => "running",
            TaskState::Done => "done",
            TaskState::Cancelled => "cancelled",
        }
    }
}

/// One task.
#[derive(Debug, Clone)]
pub struct Task {
    /// Index in [`AsyncioSnapshot::tasks`] (stable within one snapshot).
    pub id: usize,
    /// The task object's address.
    pub addr: usize,
    /// `get_name()`.
    pub name: String,
    /// Its coroutine object (0 when done).
    pub coro: usize,
    /// State.
    pub state: TaskState,
    /// The thread whose loop runs it (3.14+: the thread that created it),
    /// when known.
    pub thread_id: Option<u64>,
    /// Its coroutine chain's frames, innermost first.
    pub frames: Vec<RawFrame>,
    /// Ids of the tasks it waits on.
    pub awaiting: Vec<usize>,
    /// Ids of the tasks waiting on it.
    pub awaited_by: Vec<usize>,
}

/// Every task of an interpreter at one moment.
#[derive(Debug, Clone, Default)]
pub struct AsyncioSnapshot {
    /// Whether any thread runs an event loop.
    pub loop_found: bool,
    /// The tasks.
    pub tasks: Vec<Task>,
    /// Tasks skipped because they could not be read (dangling, torn).
    pub skipped: usize,
    /// Why some were skipped or cut (one line each, deduplicated).
    pub notes: Vec<String>,
}

/// The task type (`_asyncio.Task`, or `_PyTask`) and the dict items of the
/// module that holds the task containers (`_asyncio`, or `asyncio.tasks`).
type Module = (usize, Vec<(usize, usize)>);

/// Reads tasks of one interpreter; keeps what does not change between
/// reads (the layout, the module's types) for the next one.
pub struct AsyncioReader {
    layout: AsyncioLayout,
    interp: usize,
    module: Option<Module>,
    cache: crate::graph::GraphCache,
}

impl AsyncioReader {
    /// A reader for `interp`'s version; 3.14+ also find `.AsyncioDebug`.
    pub fn new<T: Target>(target: &T, interp: &Interpreter) -> Result<AsyncioReader, Error> {
        let mut layout = AsyncioLayout::for_interpreter(&interp.layout)?;
        if layout.o.task_node.is_some() {
            // Missing until asyncio is imported: checked again at read.
            let _ = layout.read_section(target, &interp.layout);
        }
        Ok(AsyncioReader::with_layout(layout, interp.interp))
    }

    /// A reader with a layout already made (3.14+: its section may still
    /// be missing, read at the first read).
    pub(crate) fn with_layout(layout: AsyncioLayout, interp: usize) -> AsyncioReader {
        AsyncioReader {
            layout,
            interp,
            module: None,
            cache: Default::default(),
        }
    }

    /// The layout in use.
    pub fn layout(&self) -> &AsyncioLayout {
        &self.layout
    }

    /// Reads every task. `threads` are the caller's sample of the same
    /// moment (the target paused, or a core file).
    pub fn read<M: Memory, T: Target>(
        &mut self,
        target: &T,
        walker: &mut StackWalker<M>,
        threads: &[ThreadInput<'_>],
    ) -> Result<AsyncioSnapshot, Error> {
        let r = &walker.objects;
        if self.module.is_none() {
            match locate::find_module(r, self.interp)? {
                Found::Nothing => return Ok(AsyncioSnapshot::default()),
                Found::Module {
                    task_type,
                    future_type,
                    items,
                } => {
                    locate::check_types(r, &self.layout, task_type, future_type)?;
                    self.module = Some((task_type, items));
                }
                Found::PythonTasks { task_type, items } => {
                    self.layout.python_tasks = true;
                    self.layout.lists = None;
                    self.module = Some((task_type, items));
                }
            }
        }
        if self.layout.o.task_node.is_some()
            && self.layout.lists.is_none()
            && !self.layout.python_tasks
        {
            self.layout.read_section(target, &r.layout)?;
        }
        let l = self.layout;
        let mut snap = AsyncioSnapshot::default();
        // Running loop and current task per thread.
        let mut loops: FxHashMap<usize, u64> = FxHashMap::default();
        let mut current: FxHashMap<usize, u64> = FxHashMap::default();
        if l.python_tasks {
            loops = crate::python_tasks::loops_by_thread(walker, &l, threads);
        }
        let r = &walker.objects;
        let (task_type, items) = self.module.as_ref().expect("set above");
        for t in threads.iter().filter(|_| !l.python_tasks) {
            let lp = locate::running_loop(r, &l, t.tstate)?;
            if lp != 0 {
                loops.insert(lp, t.thread_id);
                if let Some(lists) = &l.lists {
                    let task = pyspy_process::MemoryExt::read_usize(
                        &r.mem,
                        t.tstate.wrapping_add(lists.running_task),
                    )
                    .ctx("running task")?;
                    if task != 0 {
                        current.insert(task, t.thread_id);
                    }
                }
            }
        }
        snap.loop_found = !loops.is_empty();
        // Every task, by container, with the thread it belongs to when the
        // container says.
        let mut candidates: Vec<(usize, Option<u64>)> = Vec::new();
        let mut buf = Vec::new();
        if let (Some(lists), Some(node)) = (&l.lists, l.o.task_node) {
            for t in threads {
                buf.clear();
                locate::list_tasks(
                    r,
                    node,
                    t.tstate.wrapping_add(lists.thread_tasks_head),
                    &mut buf,
                )?;
                candidates.extend(buf.iter().map(|&a| (a, Some(t.thread_id))));
            }
            buf.clear();
            locate::list_tasks(
                r,
                node,
                self.interp.wrapping_add(lists.interp_tasks_head),
                &mut buf,
            )?;
            candidates.extend(buf.iter().map(|&a| (a, None)));
        } else {
            let get = |name: &str| r.lookup_str_key(items, name);
            if let Some(all) = get("_all_tasks").or_else(|| get("_scheduled_tasks")) {
                locate::weak_set_items(r, &l, all, &mut buf)?;
            }
            if let Some(eager) = get("_eager_tasks") {
                locate::set_items(r, &l, eager, &mut buf)?;
            }
            // The current task of each loop (3.11-3.13: `_current_tasks`).
            if let Some(cur) = get("_current_tasks") {
                for (lp, task) in r.dict_items(cur).ctx("_current_tasks")? {
                    if let Some(&tid) = loops.get(&lp) {
                        current.insert(task, tid);
                    }
                }
            }
            candidates.extend(buf.iter().map(|&a| (a, None)));
        }
        let mut seen = FxHashSet::default();
        candidates.retain(|(a, _)| *a != 0 && seen.insert(*a));
        if candidates.len() > MAX_TASKS {
            snap.notes.push(format!(
                "{} tasks, only the first {MAX_TASKS} read",
                candidates.len()
            ));
            candidates.truncate(MAX_TASKS);
        }
        crate::graph::build(
            &mut self.cache,
            walker,
            &l,
            *task_type,
            &candidates,
            &loops,
            &current,
            threads,
            &mut snap,
        );
        Ok(snap)
    }
}
