//! One sample's read of an attached target: thread states, GIL holders,
//! frames and each thread's status (running, waiting for the GIL, idle).
//! The per-sample hot path; `session.rs` holds attaching and the rest.

use super::*;

impl Session {
    /// Reads thread states, GIL holder and frames; the caller has paused the
    /// target (or chosen not to). With `validate`, each thread's top frame is
    /// re-checked after its walk; `Ok(false)` means a stack changed while it
    /// was read (the sample must be taken again).
    pub(super) fn read_raw(
        &mut self,
        os_state: bool,
        paused: bool,
        validate: bool,
        out: &mut RawSample,
    ) -> Result<bool, Error> {
        let interp = self.interpreter.interp;
        if let Some(n) = self.native.as_mut() {
            n.begin_sample();
        }
        let mut states = std::mem::take(&mut self.states);
        let result = self
            .walker
            .sample_threads(self.interpreter.runtime, interp, &mut states);
        self.states = states;
        result?;
        let states = &self.states;
        // Looked up once per new thread, not per sample, in the thread's
        // own interpreter's `sys.modules`; a missing registry (no
        // `threading` import) is not an error.
        let mut looked_up: Vec<usize> = Vec::new();
        for ts in states {
            if self.names_tried.contains(&(ts.interp, ts.thread_id))
                || looked_up.contains(&ts.interp)
            {
                continue;
            }
            looked_up.push(ts.interp);
            if let Ok(names) = self.walker.thread_names(ts.interp) {
                self.names
                    .extend(names.into_iter().map(|(id, n)| ((ts.interp, id), n)));
            }
        }
        if !looked_up.is_empty() {
            self.names_tried
                .extend(states.iter().map(|t| (t.interp, t.thread_id)));
        }
        self.walker.walk_threads(states)?;
        if validate && !self.walker.walks_unchanged()? {
            return Ok(false);
        }
        out.used = 0;
        out.gil_free = self.walker.gil_enabled(self.interpreter.interp) == Some(false);
        let gc_running = self.walker.gc_running();
        self.status_reuse.begin();
        let switches = self.walker.gil_switches();
        let gil = if os_state {
            self.gil.get(&self.process).cloned()
        } else {
            None
        };
        for (i, ts) in states.iter().enumerate() {
            if out.used == out.threads.len() {
                out.threads.push(RawThread::default());
            }
            let t = &mut out.threads[out.used];
            out.used += 1;
            t.frames.clear();
            self.walker.resolve_walk(i, &mut t.frames)?;
            t.thread_id = ts.thread_id;
            t.interp = ts.interp;
            t.interpreter_id = ts.interpreter_id;
            // CPython stores the tid of the target's own PID namespace;
            // /proc and ptrace need ours.
            let pid = self.process.pid();
            let own_tid = (ts.native_thread_id != 0).then_some(ts.native_thread_id);
            t.os_thread_id = own_tid
                .and_then(|own| self.tids.host_tid(pid, own as Pid))
                .map(|tid| tid as u64);
            t.namespace_thread_id = own_tid.filter(|own| t.os_thread_id != Some(*own));
            t.owns_gil = self.walker.holds_gil(ts.addr);
            t.attached = ts.attached.unwrap_or(t.owns_gil);
            let runs_python =
                runs_python(self.walker.gil_enabled(ts.interp), ts.attached, t.owns_gil);
            t.syscall = None;
            t.in_gc = gc_running && runs_python;
            // Paused, a thread shows where it stopped: inside a system
            // call (waiting: sleep, lock, I/O, the GIL) or in user code
            // (computing). Not paused, the scheduler state says whether it
            // is running, and a blocked one's system call what it waits on.
            t.status = match (os_state, t.os_thread_id) {
                // Its OS thread runs another interpreter's thread state
                // (`interp.exec()`): this one waits for that call to return.
                _ if suspended(states, ts) => ThreadStatus::Idle,
                (false, _) => ThreadStatus::Running,
                (true, None) => classify(None, None, runs_python, !t.frames.is_empty()),
                // Running Python (the GIL holder, or attached with no GIL) is
                // running (`classify`), whatever the kernel says: no `/proc`
                // read for the busiest threads.
                (true, Some(_)) if runs_python => ThreadStatus::Running,
                (true, Some(tid)) => {
                    // A sub-interpreter's thread waits on its interpreter's
                    // GIL (its own when isolated).
                    let own = (ts.interp != self.interpreter.interp)
                        .then(|| self.walker.gil_range(ts.interp))
                        .flatten();
                    let gil = own.as_ref().or(gil.as_ref());
                    let activity = if paused {
                        self.thread_files.stopped_activity(pid, tid as Pid)
                    } else if let Some(known) = self.status_reuse.get(tid as Pid, switches) {
                        known
                    } else {
                        let read = self.thread_files.activity(pid, tid as Pid, gil.is_some());
                        self.status_reuse.put(tid as Pid, switches, read);
                        read
                    };
                    if let Some(Activity::Blocked { syscall, .. }) = activity {
                        t.syscall = syscall;
                    }
                    classify(activity, gil, runs_python, !t.frames.is_empty())
                }
            };
            t.active = t.status.is_active();
            t.merged.clear();
            let wanted = t.active || self.merge_idle;
            if let Some(native) = self.native.as_mut().filter(|_| paused && wanted) {
                if let Some(tid) = t.os_thread_id.filter(|_| !t.frames.is_empty()) {
                    let regs = pyspy_native::read_registers(self.process.pid(), tid as Pid)?;
                    native.merge(tid as Pid, regs, ts, &t.frames, &mut t.merged)?;
                } else {
                    t.merged
                        .extend((0..t.frames.len()).map(MergedFrame::Python));
                }
            }
        }
        if let Some((sampler, idle)) = self.tasks.as_mut() {
            // Same moment as the stacks: the running task's frame is
            // checked to be on its thread's stack.
            let inputs: Vec<pyspy_asyncio::ThreadInput<'_>> = states
                .iter()
                .zip(&out.threads[..out.used])
                .map(|(s, t)| pyspy_asyncio::ThreadInput {
                    tstate: s.addr,
                    thread_id: s.thread_id,
                    frames: &t.frames,
                })
                .collect();
            let result = sampler.sample(
                &*self.process,
                &mut self.walker,
                &inputs,
                *idle,
                &mut out.tasks,
            );
            if result.is_err() {
                out.tasks.clear();
                self.task_errors += 1;
            }
        }
        Ok(true)
    }
}
