//! One attached target: find the interpreter once, then read stacks.

use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};

use pyspy_cpython::{
    find_interpreter, Frame, Interpreter, RawFrame, StackWalker, ThreadStack, ThreadState,
    ThreadStatus,
};
use pyspy_native::{MergedFrame, NativeStacks, NativeSymbol};
use pyspy_process::{Activity, PauseGuard, Pid, Process, ThreadFiles, TidMap};

use crate::asyncio::AsyncioDump;
use crate::filenames::ShortFilenames;
use crate::native_frame::native_frame;
use crate::status::{blocked_in, classify, gil_on, runs_python, GilRange};
use crate::{Error, RawSample, RawThread};

mod pausing;
mod read_raw;
mod status_reuse;

use pausing::held_for_reads;

/// How a sample is kept consistent with the running target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadMode {
    /// Read without pausing, then check that every thread's top frame is
    /// still the one walked; retry a torn read, and pause only when the
    /// target keeps changing under the reader. The target pays nothing in
    /// the common case.
    #[default]
    Consistent,
    /// Pause every thread for every sample (py-spy's default).
    Pause,
    /// Never pause, never check (stacks may be torn).
    Nonblocking,
}

/// Attempts of [`ReadMode::Consistent`] before it pauses the target.
const CONSISTENT_TRIES: usize = 3;

/// Options for [`dump`] and [`Session::read_stacks`].
#[derive(Debug, Clone, Default)]
pub struct DumpConfig {
    /// Read arguments and locals of every frame.
    pub locals: bool,
    /// How long their renderings may be: py-spy's `--locals` count, 128
    /// characters per level (0 counts as 1).
    pub locals_level: u32,
    /// Do not pause the target while reading (stacks may be torn).
    pub nonblocking: bool,
    /// Keep full filenames instead of package-relative ones.
    pub full_filenames: bool,
    /// Also dump the target's Python descendants.
    pub subprocesses: bool,
    /// Merge native (C, C++, Cython) frames into the stacks (the target is
    /// paused; refused with `nonblocking`).
    pub native: bool,
    /// Also read the asyncio tasks (see [`crate::AsyncioDump`]).
    pub asyncio: bool,
}

/// Every thread's stack of one process, read once.
#[derive(Debug, Clone)]
pub struct ProcessDump {
    /// The target's pid.
    pub pid: i32,
    /// Its pid in its own PID namespace (a container's), when that is not ours.
    pub namespace_pid: Option<i32>,
    /// The target's command line, space-joined.
    pub command_line: String,
    /// The interpreter executable as the target sees it.
    pub executable: String,
    /// The Python version, e.g. `3.12.1`.
    pub python_version: String,
    /// Built without the GIL (`--disable-gil`, 3.13t+).
    pub free_threaded: bool,
    /// Whether the GIL was on when read: always on a GIL build; on a
    /// free-threaded one only when turned on at run time (`PYTHON_GIL=1`, or
    /// an extension module that needs it). `None`: unknown.
    pub gil_enabled: Option<bool>,
    /// Threads, in the interpreter's list order (newest first).
    pub threads: Vec<ThreadStack>,
    /// The parent's pid, for processes dumped as subprocesses.
    pub parent_pid: Option<i32>,
    /// With `subprocesses`: the Python descendants, parents before children.
    pub subprocesses: Vec<ProcessDump>,
    /// With `asyncio`: the tasks, or why they could not be read.
    pub asyncio: Option<AsyncioDump>,
}

/// A Python process attached for reading.
pub struct Session {
    process: Arc<Process>,
    interpreter: Interpreter,
    walker: StackWalker<Arc<Process>>,
    /// `threading` names by interpreter and thread id: each interpreter
    /// has its own `threading` module.
    names: FxHashMap<(usize, u64), String>,
    names_tried: FxHashSet<(usize, u64)>,
    /// Thread states of the last read (reused).
    states: Vec<ThreadState>,
    thread_files: ThreadFiles,
    /// The target's tids (what CPython stores) to ours, across PID namespaces.
    tids: TidMap,
    torn_reads: u64,
    paused_fallbacks: u64,
    /// ptrace answered ENOSYS (qemu-user): every read is taken running.
    cannot_pause: bool,
    short_filenames: ShortFilenames,
    command_line: String,
    executable: String,
    /// With `--native`: unwinding, symbols and the merge.
    native: Option<NativeStacks>,
    /// Merge the native stacks of idle threads too (a dump shows them; a
    /// recording that leaves idle threads out need not unwind them).
    merge_idle: bool,
    /// Where the GIL's locks are (a thread blocked there waits for the GIL).
    gil: GilRange,
    /// With `--asyncio`: the await chains of every sample, and whether
    /// waiting tasks are sampled too.
    tasks: Option<(pyspy_asyncio::TaskSampler, bool)>,
    /// Samples whose tasks could not be read (their threads still count).
    task_errors: u64,
    /// Statuses of threads the GIL shows have not run since they were read.
    status_reuse: status_reuse::StatusReuse,
}

/// Attempts of a dump that could not pause (no ptrace) at a read whose
/// stacks did not change under it, before one is taken as it comes.
const UNPAUSED_DUMP_TRIES: usize = 20;

/// Attempts of a dump whose native merge failed (a thread caught entering
/// or leaving the interpreter) before the failure is reported.
const NATIVE_DUMP_TRIES: usize = 5;

impl Session {
    /// Attaches to `pid`: opens it, finds and validates its interpreter.
    pub fn attach(pid: Pid) -> Result<Session, Error> {
        Session::attach_with(pid, false)
    }

    /// [`Session::attach`]; `own_child`: `pid` is a child we spawned and
    /// nothing but us waits for, so ptrace may stop it from the start
    /// (FreeBSD's attach already pauses; see `Process::set_child_ptrace_safe`).
    pub fn attach_with(pid: Pid, own_child: bool) -> Result<Session, Error> {
        let process = Arc::new(Process::open(pid)?);
        if own_child {
            process.set_child_ptrace_safe();
        }
        // Where reads need a stop, one stop for the whole search rather
        // than one per read.
        let held = held_for_reads(&process)?;
        let interpreter = find_interpreter(&*process).map_err(|e| exited_or(&process, e.into()))?;
        drop(held);
        let command_line = process.cmdline().map(|a| a.join(" ")).unwrap_or_default();
        let mut executable = process.exe().unwrap_or_default();
        // Under an emulator (qemu-user) the process's executable is the
        // emulator; the interpreter's own binary is what Python calls it.
        if executable
            .rsplit('/')
            .next()
            .is_some_and(|n| n.starts_with("qemu-"))
        {
            executable.clone_from(&interpreter.binary_path);
        }
        let mut walker = StackWalker::new(process.clone(), interpreter.layout);
        walker.watch_gc(interpreter.gc_collecting);
        // 3.12+: every interpreter's threads, not only the main one's.
        walker.watch_interpreters(interpreter.runtime);
        // Sampled again and again: threads the GIL proves unchanged since
        // the last read are not read again.
        walker.reuse_quiet_threads(true);
        let gil = GilRange::new(interpreter.gil);
        Ok(Session {
            process,
            interpreter,
            walker,
            names: FxHashMap::default(),
            names_tried: FxHashSet::default(),
            states: Vec::new(),
            thread_files: ThreadFiles::default(),
            tids: TidMap::default(),
            torn_reads: 0,
            paused_fallbacks: 0,
            cannot_pause: false,
            short_filenames: ShortFilenames::default(),
            command_line,
            executable,
            native: None,
            merge_idle: true,
            gil,
            tasks: None,
            task_errors: 0,
            status_reuse: Default::default(),
        })
    }

    /// Reads the asyncio await chains of every sample from now on
    /// ([`RawSample::tasks`]); with `idle`, every waiting task too. Refused
    /// on versions without a task reader.
    pub fn enable_asyncio(&mut self, idle: bool) -> Result<(), Error> {
        let _held = held_for_reads(&self.process)?;
        let mut sampler = pyspy_asyncio::TaskSampler::new(&*self.process, &self.interpreter)
            .map_err(|e| Error::Asyncio(e.code(), e.to_string()))?;
        // A target whose `_asyncio` does not match is refused now, not
        // found out sample by sample; one that has not imported asyncio yet
        // is looked at again while sampling.
        if let Err(
            e @ (pyspy_asyncio::Error::Layout { .. } | pyspy_asyncio::Error::Unsupported { .. }),
        ) = sampler.probe(&*self.process, &mut self.walker)
        {
            return Err(Error::Asyncio(e.code(), e.to_string()));
        }
        self.tasks = Some((sampler, idle));
        Ok(())
    }

    /// Whether [`Session::enable_asyncio`] was called.
    pub fn asyncio_enabled(&self) -> bool {
        self.tasks.is_some()
    }

    /// The name of a task of [`RawSample::tasks`].
    pub fn task_name(&self, id: u32) -> &str {
        self.tasks.as_ref().map_or("?", |(s, _)| s.name(id))
    }

    /// Samples whose asyncio tasks could not be read.
    pub fn task_errors(&self) -> u64 {
        self.task_errors
    }

    /// Merges native frames into every sample from now on ([`RawThread::merged`]);
    /// samples are then always taken paused.
    pub fn enable_native(&mut self) -> Result<(), Error> {
        if !pyspy_native::SUPPORTED {
            return Err(Error::Unsupported(pyspy_native::UNSUPPORTED_REASON));
        }
        if self.native.is_none() {
            self.native = Some(NativeStacks::new(self.process.clone(), &self.interpreter));
        }
        Ok(())
    }

    /// Whether native frames are merged ([`Session::enable_native`]).
    pub fn native_enabled(&self) -> bool {
        self.native.is_some()
    }

    /// A native frame of [`RawThread::merged`].
    pub fn native_symbol(&self, id: u32) -> Option<&NativeSymbol> {
        self.native.as_ref().map(|n| n.symbol(id))
    }

    /// The target's process handle.
    pub fn process(&self) -> &Process {
        &self.process
    }

    /// The target's command line, space-joined.
    pub fn command_line(&self) -> &str {
        &self.command_line
    }

    /// The located interpreter.
    pub fn interpreter(&self) -> &Interpreter {
        &self.interpreter
    }

    /// Reads every thread's stack once.
    pub fn read_stacks(&mut self, config: &DumpConfig) -> Result<Vec<ThreadStack>, Error> {
        self.read_stacks_inner(config)
            .map(|(threads, _)| threads)
            .map_err(|e| exited_or(&self.process, e))
    }

    fn read_stacks_inner(
        &mut self,
        config: &DumpConfig,
    ) -> Result<(Vec<ThreadStack>, Option<AsyncioDump>), Error> {
        if config.native {
            if config.nonblocking {
                return Err(Error::Invalid(pyspy_native::NONBLOCKING_REFUSAL.into()));
            }
            self.enable_native()?;
        }
        if config.nonblocking {
            self.read_mode(ReadMode::Nonblocking)?;
        }
        let mut raw = RawSample::default();
        self.merge_idle = true;
        let mut tries = 0;
        let guard = loop {
            let guard = self.pause_unless(config.nonblocking)?;
            // Not paused though asked to be: checked like a recording's
            // reads, retried while torn, the last try taken as it is.
            let check = guard.is_none() && !config.nonblocking && tries + 1 < UNPAUSED_DUMP_TRIES;
            match self.read_raw(true, guard.is_some(), check, &mut raw) {
                Err(Error::Native(_)) if tries + 1 < NATIVE_DUMP_TRIES => tries += 1,
                Ok(false) | Err(_) if check => tries += 1,
                Err(e) => return Err(e),
                Ok(_) => break guard,
            }
        };
        let mut threads = Vec::with_capacity(raw.threads.len());
        for (index, t) in raw.threads().iter().enumerate() {
            let mut frames = Vec::with_capacity(t.frames.len());
            let order: Vec<MergedFrame> = if self.native.is_some() {
                t.merged.clone()
            } else {
                (0..t.frames.len()).map(MergedFrame::Python).collect()
            };
            for m in order {
                let f = match m {
                    MergedFrame::Python(i) => &t.frames[i],
                    MergedFrame::Native(id) => {
                        frames.push(native_frame(self.native_symbol(id)));
                        continue;
                    }
                };
                let info = self.walker.code(f.code)?;
                let locals = if config.locals {
                    Some(self.walker.locals_limited(
                        f.addr,
                        &info,
                        config.locals_level.max(1) as usize * pyspy_cpython::MAX_REPR,
                    )?)
                } else {
                    None
                };
                frames.push(Frame {
                    name: info.name.to_string(),
                    filename: info.filename.to_string(),
                    short_filename: None,
                    line: f.line,
                    module: None,
                    locals,
                });
            }
            threads.push(ThreadStack {
                thread_id: t.thread_id,
                os_thread_id: t.os_thread_id,
                namespace_thread_id: t.namespace_thread_id,
                thread_name: self.names.get(&(t.interp, t.thread_id)).cloned(),
                interpreter_id: t.interpreter_id,
                active: t.status.is_active(),
                status: t.status,
                syscall: blocked_in(t.syscall.map(|nr| Activity::Blocked {
                    futex: None,
                    syscall: Some(nr),
                }))
                .filter(|_| t.status != ThreadStatus::Running),
                owns_gil: t.owns_gil,
                // read_raw fills one thread per state, in order.
                attached: self.states.get(index).and_then(|s| s.attached),
                frames,
            });
        }
        // Tasks are read at the same moment, before the target resumes.
        let asyncio = config.asyncio.then(|| {
            let frames: Vec<&[RawFrame]> = raw.threads().iter().map(|t| &t.frames[..]).collect();
            crate::asyncio::read_tasks(
                &*self.process,
                &self.interpreter,
                &mut self.walker,
                &self.states,
                &frames,
                config,
                &mut self.short_filenames,
            )
        });
        drop(guard);
        for frame in threads.iter_mut().flat_map(|t| t.frames.iter_mut()) {
            if frame.module.is_none() {
                frame.short_filename =
                    Some(self.short_filename(&frame.filename, config.full_filenames));
            } else if config.full_filenames {
                frame.short_filename = Some(frame.filename.clone());
            }
        }
        Ok((threads, asyncio))
    }

    /// One sample in raw form (code addresses and lines, no strings), into
    /// reused buffers: the recorder's hot path. `os_state` reads whether
    /// each thread is on a CPU (a `/proc` read per thread); without it every
    /// thread counts as active.
    pub fn sample_raw(
        &mut self,
        mode: ReadMode,
        os_state: bool,
        out: &mut RawSample,
    ) -> Result<(), Error> {
        // Idle threads are left out when their OS state is read.
        self.merge_idle = !os_state;
        let mode = self.read_mode(mode)?;
        let result = (|| {
            if mode == ReadMode::Consistent {
                for _ in 0..CONSISTENT_TRIES {
                    // A read that fails while the target runs is torn too
                    // (it followed a pointer that moved): try again.
                    if let Ok(true) = self.read_raw(os_state, false, true, out) {
                        return Ok(());
                    }
                    if !self.process.is_alive() {
                        return Err(Error::Process(pyspy_process::Error::Exited {
                            pid: self.process.pid(),
                        }));
                    }
                    self.torn_reads += 1;
                }
                // Too busy to catch still: pause for this one sample.
                self.paused_fallbacks += 1;
            }
            let guard = self.pause_unless(mode == ReadMode::Nonblocking)?;
            self.read_raw(os_state, guard.is_some(), false, out)
                .map(|_| ())
        })();
        result.map_err(|e| exited_or(&self.process, e))
    }

    /// Reads that [`ReadMode::Consistent`] found torn and retried, and the
    /// samples it then took paused.
    pub fn consistency_stats(&self) -> (u64, u64) {
        (self.torn_reads, self.paused_fallbacks)
    }

    /// `threading` name of a thread seen in the last sample, by its
    /// interpreter's address ([`RawThread::interp`]) and thread id.
    pub fn thread_name(&self, interp: usize, thread_id: u64) -> Option<&str> {
        self.names.get(&(interp, thread_id)).map(String::as_str)
    }

    /// The short (or, with `full`, the full) form of a filename.
    pub fn short_filename(&mut self, filename: &str, full: bool) -> String {
        if full {
            filename.to_owned()
        } else {
            self.short_filenames.get(&*self.process, filename)
        }
    }

    /// The stack walker (code objects and their cache).
    pub fn walker(&mut self) -> &mut StackWalker<Arc<Process>> {
        &mut self.walker
    }

    /// Reads every thread's stack once, with the process header.
    pub fn dump(&mut self, config: &DumpConfig) -> Result<ProcessDump, Error> {
        let (threads, asyncio) = self
            .read_stacks_inner(config)
            .map_err(|e| exited_or(&self.process, e))?;
        Ok(ProcessDump {
            pid: self.process.pid(),
            namespace_pid: pyspy_process::namespace_pid(self.process.pid()),
            command_line: self.command_line.clone(),
            executable: self.executable.clone(),
            python_version: self.interpreter.layout.version.to_string(),
            free_threaded: self.interpreter.layout.flavor.free_threaded,
            gil_enabled: gil_on(&self.interpreter, &self.walker),
            threads,
            parent_pid: None,
            subprocesses: Vec::new(),
            asyncio,
        })
    }
}

/// Whether `ts` is a thread state its OS thread has left for another
/// interpreter's: not bound while one of the same OS thread is (3.12+).
pub(crate) fn suspended(states: &[ThreadState], ts: &ThreadState) -> bool {
    !ts.bound
        && ts.native_thread_id != 0
        && states
            .iter()
            .any(|o| o.bound && o.addr != ts.addr && o.native_thread_id == ts.native_thread_id)
}

/// A failure while the target is gone is reported as its exit, whatever
/// the read that noticed it.
fn exited_or(process: &Process, err: Error) -> Error {
    if process.is_alive() {
        err
    } else {
        Error::Process(pyspy_process::Error::Exited { pid: process.pid() })
    }
}
