//! One attached target: find the interpreter once, then read stacks.

use std::collections::HashMap;
use std::sync::Arc;

use pyspy_cpython::{find_interpreter, Interpreter, StackWalker, ThreadStack};
use pyspy_process::{Pid, Process};

use crate::filenames::ShortFilenames;
use crate::Error;

/// Options for [`dump`] and [`Session::read_stacks`].
#[derive(Debug, Clone, Default)]
pub struct DumpConfig {
    /// Read arguments and locals of every frame.
    pub locals: bool,
    /// Do not pause the target while reading (stacks may be torn).
    pub nonblocking: bool,
    /// Keep full filenames instead of package-relative ones.
    pub full_filenames: bool,
}

/// Every thread's stack of one process, read once.
#[derive(Debug, Clone)]
pub struct ProcessDump {
    /// The target's pid.
    pub pid: i32,
    /// The target's command line, space-joined.
    pub command_line: String,
    /// The interpreter executable as the target sees it.
    pub executable: String,
    /// The Python version, e.g. `3.12.1`.
    pub python_version: String,
    /// Threads, in the interpreter's list order (newest first).
    pub threads: Vec<ThreadStack>,
}

/// A Python process attached for reading.
pub struct Session {
    process: Arc<Process>,
    interpreter: Interpreter,
    walker: StackWalker<Arc<Process>>,
    names: HashMap<u64, String>,
    short_filenames: ShortFilenames,
    command_line: String,
    executable: String,
}

impl Session {
    /// Attaches to `pid`: opens it, finds and validates its interpreter.
    pub fn attach(pid: Pid) -> Result<Session, Error> {
        let process = Arc::new(Process::open(pid)?);
        let interpreter = find_interpreter(&process).map_err(|e| exited_or(&process, e.into()))?;
        let command_line = process.cmdline().map(|a| a.join(" ")).unwrap_or_default();
        let executable = process.exe().unwrap_or_default();
        let walker = StackWalker::new(process.clone(), interpreter.layout);
        Ok(Session {
            process,
            interpreter,
            walker,
            names: HashMap::new(),
            short_filenames: ShortFilenames::default(),
            command_line,
            executable,
        })
    }

    /// The target's process handle.
    pub fn process(&self) -> &Process {
        &self.process
    }

    /// The located interpreter.
    pub fn interpreter(&self) -> &Interpreter {
        &self.interpreter
    }

    /// Reads every thread's stack once.
    pub fn read_stacks(&mut self, config: &DumpConfig) -> Result<Vec<ThreadStack>, Error> {
        self.read_stacks_inner(config)
            .map_err(|e| exited_or(&self.process, e))
    }

    fn read_stacks_inner(&mut self, config: &DumpConfig) -> Result<Vec<ThreadStack>, Error> {
        // OS thread states first: a paused thread no longer shows as running.
        let running: HashMap<u64, bool> = self
            .process
            .threads()?
            .into_iter()
            .map(|t| (t.tid as u64, t.running))
            .collect();
        let guard = if config.nonblocking {
            None
        } else {
            Some(self.process.pause()?)
        };
        let interp = self.interpreter.interp;
        self.walker.begin_read();
        let states = self.walker.thread_states(interp)?;
        let holder = self
            .walker
            .gil_holder(self.interpreter.runtime, interp)
            .unwrap_or(0);
        if states
            .iter()
            .any(|t| !self.names.contains_key(&t.thread_id))
        {
            // A missing registry (no `threading` import) is not an error.
            if let Ok(names) = self.walker.thread_names(interp) {
                self.names.extend(names);
            }
        }
        let mut threads = Vec::with_capacity(states.len());
        for ts in &states {
            let frames = if ts.top_frame == 0 {
                Vec::new()
            } else {
                // A chunk that cannot be copied only costs speed.
                let _ = self.walker.prefetch_chunks(ts.datastack_chunk);
                self.walker.frames(ts.top_frame, config.locals)?
            };
            let os_tid = (ts.native_thread_id != 0).then_some(ts.native_thread_id);
            let active = match os_tid.and_then(|t| running.get(&t)) {
                Some(r) => *r,
                None => !frames.is_empty(),
            };
            threads.push(ThreadStack {
                thread_id: ts.thread_id,
                os_thread_id: os_tid,
                thread_name: self.names.get(&ts.thread_id).cloned(),
                active,
                owns_gil: holder != 0 && holder == ts.addr,
                frames,
            });
        }
        drop(guard);
        if !config.full_filenames {
            for frame in threads.iter_mut().flat_map(|t| t.frames.iter_mut()) {
                frame.short_filename =
                    Some(self.short_filenames.get(&self.process, &frame.filename));
            }
        } else {
            for frame in threads.iter_mut().flat_map(|t| t.frames.iter_mut()) {
                frame.short_filename = Some(frame.filename.clone());
            }
        }
        Ok(threads)
    }

    /// Reads every thread's stack once, with the process header.
    pub fn dump(&mut self, config: &DumpConfig) -> Result<ProcessDump, Error> {
        let threads = self.read_stacks(config)?;
        Ok(ProcessDump {
            pid: self.process.pid(),
            command_line: self.command_line.clone(),
            executable: self.executable.clone(),
            python_version: self.interpreter.layout.version.to_string(),
            threads,
        })
    }
}

/// Reads every thread's Python stack of `pid` once.
pub fn dump(pid: Pid, config: &DumpConfig) -> Result<ProcessDump, Error> {
    Session::attach(pid)?.dump(config)
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
