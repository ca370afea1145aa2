//! One full read of an interpreter through the public reader API, as
//! `pyspy-sampler`'s `Session` does it (layout, thread states, GIL holder,
//! thread names, data-stack chunks, frames, the torn-read check, code
//! objects, locals), recording what each step answered.

use pyspy_cpython::{layout_for, Error, RawFrame, StackWalker, Version};
use pyspy_process::Memory;

/// What one read did: a step name and what it answered, in order.
#[derive(Debug, Default)]
pub struct Trace {
    pub steps: Vec<(&'static str, String)>,
    pub threads: usize,
    pub frames: usize,
    pub locals: usize,
}

impl Trace {
    fn note<T>(&mut self, step: &'static str, r: &Result<T, Error>) {
        self.steps.push((step, outcome(r)));
    }
}

/// The kind of an answer, without addresses (so that it can be a feature).
fn outcome<T>(r: &Result<T, Error>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(Error::Read { what, .. }) => format!("read {what}"),
        Err(Error::Corrupt { what, .. }) => format!("corrupt {what}"),
        Err(e) => e.code().into(),
    }
}

/// Most thread states and frames looked at per read, to keep one execution
/// short (the reader's own bounds are much larger).
const THREADS: usize = 64;

/// Reads everything `passes` times with one walker (its caches carry over,
/// as in a recording); `between(pass)` runs before every pass after the
/// first (to change memory under the caches).
pub fn read_all<M: Memory + Clone>(
    mem: M,
    version: Version,
    runtime: usize,
    interp: usize,
    passes: usize,
    mut between: impl FnMut(usize),
) -> Trace {
    let mut trace = Trace::default();
    let layout = layout_for(&mem, version, runtime);
    trace.note("layout", &layout);
    let Ok(layout) = layout else {
        return trace;
    };
    let mut walker = StackWalker::new(mem, layout);
    for pass in 0..passes {
        if pass > 0 {
            between(pass);
        }
        walker.begin_read();
        let states = walker.thread_states(interp);
        trace.note("thread_states", &states);
        let gil = walker.gil_holder(runtime, interp);
        trace.note("gil_holder", &gil);
        let names = walker.thread_names(interp);
        trace.note("thread_names", &names);
        let Ok(states) = states else {
            continue;
        };
        trace.threads += states.len();
        for ts in states.iter().take(THREADS) {
            if ts.top_frame == 0 {
                continue;
            }
            let chunks = walker.prefetch_chunks(ts.datastack_chunk, ts.datastack_top);
            trace.note("prefetch_chunks", &chunks);
            let mut raw: Vec<RawFrame> = Vec::new();
            let frames = walker.raw_frames(ts.top_frame, &mut raw);
            trace.note("raw_frames", &frames);
            if frames.is_ok() {
                let same = walker.walk_unchanged(ts.top_slot, ts.top_frame);
                trace.note("walk_unchanged", &same);
            }
            trace.frames += raw.len();
            for f in &raw {
                let info = walker.code(f.code);
                trace.note("code", &info);
                if let Ok(info) = info {
                    let locals = walker.locals(f.addr, &info);
                    trace.note("locals", &locals);
                    if let Ok(l) = locals {
                        trace.locals += l.len();
                    }
                }
            }
            let named = walker.frames(ts.top_frame, false);
            trace.note("frames", &named);
            let _ = walker.take_evicted();
        }
        // The recorder's path, three times: the second read is the
        // speculative one-call snapshot built from what the first found,
        // the third (3.12+) leaves the threads the GIL proves quiet unread.
        walker.reuse_quiet_threads(true);
        for _ in 0..3 {
            sample_path(&mut walker, runtime, interp, &mut trace);
        }
    }
    trace
}

/// One sample as `Session::read_raw` takes it: snapshot, every walk, the
/// torn-read check, then lines.
fn sample_path<M: Memory>(
    walker: &mut StackWalker<M>,
    runtime: usize,
    interp: usize,
    trace: &mut Trace,
) {
    let mut states = Vec::new();
    let holder = walker.sample_threads(runtime, interp, &mut states);
    trace.note("sample_threads", &holder);
    if holder.is_err() {
        return;
    }
    states.truncate(THREADS);
    let walked = walker.walk_threads(&states);
    trace.note("walk_threads", &walked);
    if walked.is_err() {
        return;
    }
    let same = walker.walks_unchanged();
    trace.note("walks_unchanged", &same);
    for i in 0..states.len() {
        let mut raw: Vec<RawFrame> = Vec::new();
        let resolved = walker.resolve_walk(i, &mut raw);
        trace.note("resolve_walk", &resolved);
        trace.frames += raw.len();
    }
    let _ = walker.take_evicted();
}
