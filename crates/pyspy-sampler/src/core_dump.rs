//! `dump --core`: every thread's Python stack out of a core file.
//!
//! The same discovery and stack reader as a live dump, over a
//! [`pyspy_core::CoreFile`] instead of a process: nothing is paused and
//! nothing changes under the reader. A thread's status comes from the
//! registers the core recorded (`orig_rax` is the system call it was in, `rdi`
//! its first argument: a futex inside the GIL means it waited for the GIL).
//! With `native`, each thread's native stack is unwound from those
//! registers and merged with its Python frames (`core_native.rs`).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use pyspy_core::{CoreFile, CoreOptions};
use pyspy_cpython::{find_interpreter, GilLocation, StackWalker, ThreadStack, ThreadStatus};
use pyspy_process::{Activity, MemoryExt, Target};

use crate::core_native::{CoreNative, Shown};
use crate::filenames::ShortFilenames;
use crate::session::{DumpConfig, ProcessDump};
use crate::status::{blocked_in, classify, gil_on, runs_python};
use crate::Error;

/// Reads every thread's Python stack (with `config.native`, merged with
/// its native stack) out of the core file at `path`. `config.subprocesses`
/// is refused (`EINVAL`); `nonblocking` means nothing for a core.
pub fn dump_core(
    path: &Path,
    options: CoreOptions,
    config: &DumpConfig,
) -> Result<ProcessDump, Error> {
    if config.subprocesses {
        return Err(Error::Invalid(
            "--subprocesses does not apply to a core file (it holds one process)".into(),
        ));
    }
    let core = Arc::new(CoreFile::open(path, options)?);
    let interpreter = find_interpreter(&*core)?;
    let mut native = config
        .native
        .then(|| CoreNative::new(core.clone(), &interpreter));
    let mut walker = StackWalker::new(core.clone(), interpreter.layout);
    let mut states = Vec::new();
    walker.watch_interpreters(interpreter.runtime);
    walker.sample_threads(interpreter.runtime, interpreter.interp, &mut states)?;
    // Each interpreter has its own `threading` registry.
    let mut names = HashMap::new();
    for i in walker.interpreters().to_vec() {
        let these = walker.thread_names(i.addr).unwrap_or_default();
        names.extend(these.into_iter().map(|(id, n)| ((i.addr, id), n)));
    }
    walker.walk_threads(&states)?;
    let gil = match interpreter.gil {
        GilLocation::At { addr, len } => Some(addr as u64..(addr + len) as u64),
        GilLocation::Behind { slot, len } => core
            .read_usize(slot)
            .ok()
            .filter(|g| *g != 0)
            .map(|g| g as u64..(g + len) as u64),
        GilLocation::Unknown => None,
    };
    let registers: HashMap<u64, (i64, u64)> = core
        .threads()
        .iter()
        .map(|t| (t.tid as u64, (t.syscall(), t.arg0())))
        .collect();
    let mut short = ShortFilenames::default();
    let mut raws: Vec<Vec<pyspy_cpython::RawFrame>> = Vec::with_capacity(states.len());
    let mut threads = Vec::with_capacity(states.len());
    for (i, ts) in states.iter().enumerate() {
        let mut raw = Vec::new();
        walker.resolve_walk(i, &mut raw)?;
        raws.push(raw);
        let raw = &raws[i];
        let shown = match native.as_mut() {
            Some(n) => n.stack(ts, raw),
            None => (0..raw.len()).map(Shown::Python).collect(),
        };
        let mut frames = Vec::with_capacity(shown.len());
        for item in shown {
            let f = match item {
                Shown::Python(k) => &raw[k],
                Shown::Native(mut frame) => {
                    if config.full_filenames && !frame.filename.is_empty() {
                        frame.short_filename = Some(frame.filename.clone());
                    }
                    frames.push(frame);
                    continue;
                }
            };
            let info = walker.code(f.code)?;
            let locals = if config.locals {
                Some(walker.locals_limited(
                    f.addr,
                    &info,
                    config.locals_level.max(1) as usize * pyspy_cpython::MAX_REPR,
                )?)
            } else {
                None
            };
            frames.push(short.python_frame(
                &*core,
                config.full_filenames,
                &info.name,
                &info.filename,
                f.line,
                locals,
            ));
        }
        let owns_gil = walker.holds_gil(ts.addr);
        let os_thread_id = (ts.native_thread_id != 0).then_some(ts.native_thread_id);
        let activity =
            os_thread_id
                .and_then(|tid| registers.get(&tid))
                .map(|&(nr, arg0)| match nr {
                    -1 => Activity::Running,
                    _ => Activity::in_syscall(nr, arg0),
                });
        // A sub-interpreter's thread waits on its interpreter's GIL.
        let own = (ts.interp != interpreter.interp)
            .then(|| walker.gil_range(ts.interp))
            .flatten();
        let status = if crate::session::suspended(&states, ts) {
            ThreadStatus::Idle
        } else {
            classify(
                activity,
                own.as_ref().or(gil.as_ref()),
                runs_python(walker.gil_enabled(ts.interp), ts.attached, owns_gil),
                !raw.is_empty(),
            )
        };
        let syscall = blocked_in(activity).filter(|_| status != ThreadStatus::Running);
        threads.push(ThreadStack {
            thread_id: ts.thread_id,
            os_thread_id,
            // A core's thread ids and CPython's are both the process's own.
            namespace_thread_id: None,
            thread_name: names.get(&(ts.interp, ts.thread_id)).cloned(),
            interpreter_id: ts.interpreter_id,
            active: status.is_active(),
            status,
            syscall,
            owns_gil,
            attached: ts.attached,
            frames,
        });
    }
    let asyncio = config.asyncio.then(|| {
        let frames: Vec<&[pyspy_cpython::RawFrame]> = raws.iter().map(|r| &r[..]).collect();
        crate::asyncio::read_tasks(
            &*core,
            &interpreter,
            &mut walker,
            &states,
            &frames,
            config,
            &mut short,
        )
    });
    Ok(ProcessDump {
        asyncio,
        pid: core.pid(),
        namespace_pid: None,
        command_line: core.command_line().to_owned(),
        executable: core.exe()?,
        python_version: interpreter.layout.version.to_string(),
        free_threaded: interpreter.layout.flavor.free_threaded,
        gil_enabled: gil_on(&interpreter, &walker),
        threads,
        parent_pid: None,
        subprocesses: Vec::new(),
    })
}
