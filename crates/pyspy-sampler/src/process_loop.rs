//! Sampling one process on a jittered schedule into the shared [`Shared`]
//! sink, until asked to stop, the duration ends, or the process exits.

use rustc_hash::FxHashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use pyspy_output::{FrameKind, FrameLabel};

use crate::aggregate::{thread_label, Aggregator, LineMode};
use crate::count_stack::{add_key, LastStack};
use crate::record::{RecordConfig, StopReason};
use crate::sink::Shared;
use crate::{Error, RawSample, Session, ThreadStatus};
use pyspy_native::MergedFrame;

/// A sample due this soon is taken now: a sleep this short costs about as
/// much CPU as a sample, and the schedule is jittered by ±50% anyway.
const EARLY: Duration = Duration::from_micros(50);
/// Wake-up precision asked of the kernel for the sampling threads.
const TIMER_SLACK_NS: u64 = 1_000;

/// A small, fast pseudo-random generator for schedule jitter.
struct Jitter(u64);

impl Jitter {
    /// A factor in [0.5, 1.5): intervals vary around the period, so sampling
    /// never locks onto periodic work in the target.
    fn factor(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        0.5 + (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Samples `session` until stopped; `roots` are synthetic frames put above
/// every stack of this process (`process PID:"CMD"`, outermost first).
pub(crate) fn sample_process(
    mut session: Session,
    config: &RecordConfig,
    shared: &Shared,
    roots: &[FrameLabel],
) -> Result<StopReason, Error> {
    if config.native {
        if config.mode == crate::ReadMode::Nonblocking {
            return Err(Error::Invalid(pyspy_native::NONBLOCKING_REFUSAL.into()));
        }
        session.enable_native()?;
    }
    let period = Duration::from_secs_f64(1.0 / config.rate_hz.max(0.001));
    let pid = session.process().pid();
    let mut jitter =
        Jitter(0x9e37_79b9_7f4a_7c15 ^ (pid as u64).wrapping_mul(0x2545_f491_4f6c_dd1d) ^ nanos());
    let mut raw = RawSample::default();
    let mut labeler = Labeler::default();
    let mut thread_roots: Vec<Option<u32>> = Vec::new();
    // Frame ids of `interpreter N` roots, by interpreter id.
    let mut interp_roots: Vec<(i64, u32)> = Vec::new();
    let mut key: Vec<u32> = Vec::with_capacity(256);
    let mut bkey: Vec<u32> = Vec::with_capacity(256);
    // Per thread (by position in the sample): its last stack and the id it
    // was counted under.
    let mut last: Vec<LastStack> = Vec::new();
    let os_state = !config.include_idle && !config.gil_only;
    let root_ids: Vec<u32> = {
        let mut total = shared.total.lock().unwrap_or_else(|p| p.into_inner());
        roots.iter().map(|l| total.frame_id(l)).collect()
    };
    let (mut last_torn, mut last_paused) = (0, 0);
    let (mut gc_leaf, mut gil_wait_leaf) = (None, None);
    if config.asyncio && !session.asyncio_enabled() {
        // A subprocess found later: without a task reader, plain stacks.
        let _ = session.enable_asyncio(config.include_idle);
    }
    pyspy_process::set_timer_slack(TIMER_SLACK_NS);
    let mut next = Instant::now();
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            return Ok(StopReason::Stopped);
        }
        let now = Instant::now();
        let at = now.duration_since(shared.started);
        if config.duration.is_some_and(|d| at >= d) {
            return Ok(StopReason::Duration);
        }
        if next > now + EARLY {
            std::thread::sleep(next - now);
            continue; // re-check stop and duration after sleeping
        }
        let lateness = now - next;
        shared
            .lateness_ns
            .store(lateness.as_nanos() as u64, Ordering::Relaxed);
        // Far behind: skip the missed slots instead of sampling in a burst.
        next = if lateness > period { now } else { next };
        next += period.mul_f64(jitter.factor());
        shared.attempts.fetch_add(1, Ordering::Relaxed);
        match session.sample_raw(config.mode, os_state, &mut raw) {
            Ok(()) => {
                // Code objects freed and replaced at the same address: their
                // labels must be rebuilt before this sample is counted.
                for code in session.walker().take_evicted() {
                    labeler.ids.retain(|&(c, _), _| c != code);
                    // Their stacks' ids too.
                    last.iter_mut().for_each(LastStack::forget);
                }
                let mut total = shared.total.lock().unwrap_or_else(|p| p.into_inner());
                let mut batch = shared.batch.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(b) = batch.as_mut() {
                    let c = &mut b.counts;
                    c.attempts += 1;
                    c.gil_attempts += raw.threads().iter().any(|t| t.owns_gil) as u64;
                    if raw.gil_free {
                        c.gil_free_attempts += 1;
                        c.attached_attempts += raw.threads().iter().any(|t| t.attached) as u64;
                    }
                    c.active_thread_samples +=
                        raw.threads().iter().filter(|t| t.active).count() as u64;
                    c.gil_wait_thread_samples += raw
                        .threads()
                        .iter()
                        .filter(|t| t.status == ThreadStatus::GilWait)
                        .count() as u64;
                    c.threads = c.threads.max(raw.threads().len() as u64);
                }
                for (index, t) in raw.threads().iter().enumerate() {
                    // A thread running no Python code (starting up, shutting
                    // down) has nothing to count.
                    if t.frames.is_empty()
                        || !(config.include_idle || t.active)
                        || (config.gil_only && !t.owns_gil)
                    {
                        continue;
                    }
                    // The same stack as last time (an idle thread's, most
                    // often): counted under its id, nothing looked up or
                    // hashed again. Batches re-intern every key: not then.
                    let flags = u8::from(config.gc_frames && t.in_gc)
                        | u8::from(config.gil_wait_frames && t.status == ThreadStatus::GilWait)
                            << 1;
                    let reusable = batch.is_none()
                        && !session.native_enabled()
                        && raw.tasks.thread(index).is_none();
                    if let Some(stack) = last
                        .get(index)
                        .filter(|_| reusable)
                        .and_then(|l| l.same(t, flags))
                    {
                        total.add_again(stack, at);
                        continue;
                    }
                    key.clear();
                    let name = session.thread_name(t.interp, t.thread_id);
                    key.push(total.thread_id(
                        pid,
                        t.interpreter_id,
                        t.thread_id,
                        t.os_thread_id,
                        name,
                    ));
                    key.extend_from_slice(&root_ids);
                    push_interpreter_root(&mut key, &mut interp_roots, &mut total, t);
                    if config.thread_roots {
                        let thread = key[0] as usize;
                        if thread_roots.len() <= thread {
                            thread_roots.resize(thread + 1, None);
                        }
                        let id = match thread_roots[thread] {
                            Some(id) => id,
                            None => {
                                total.frame_id(&thread_label(t.os_thread_id, t.thread_id, name))
                            }
                        };
                        // Keep looking until the name is known.
                        if name.is_some() {
                            thread_roots[thread] = Some(id);
                        }
                        key.push(id);
                    }
                    if session.native_enabled() {
                        for m in t.merged.iter().rev() {
                            key.push(match *m {
                                MergedFrame::Python(i) => {
                                    let f = &t.frames[i];
                                    labeler.frame_id(
                                        &mut total,
                                        &mut session,
                                        f.code,
                                        f.line,
                                        config,
                                    )?
                                }
                                MergedFrame::Native(id) => {
                                    labeler.native_id(&mut total, &session, id, config)
                                }
                            });
                        }
                    } else if let Some(chain) = raw.tasks.thread(index) {
                        let frames = &t.frames;
                        crate::task_frames::push_chain(
                            &mut key,
                            &mut labeler,
                            &mut total,
                            &mut session,
                            config,
                            &raw.tasks,
                            chain,
                            frames,
                        )?;
                    } else {
                        // The frame before's id again for the same code and
                        // line (recursion): no lookup.
                        let mut before: Option<(usize, i32, u32)> = None;
                        for f in t.frames.iter().rev() {
                            let id = match before {
                                Some((code, line, id)) if (code, line) == (f.code, f.line) => id,
                                _ => labeler.frame_id(
                                    &mut total,
                                    &mut session,
                                    f.code,
                                    f.line,
                                    config,
                                )?,
                            };
                            before = Some((f.code, f.line, id));
                            key.push(id);
                        }
                    }
                    // Synthetic leaves: what the thread was doing beyond its
                    // Python frames.
                    if config.gc_frames && t.in_gc {
                        key.push(
                            *gc_leaf.get_or_insert_with(|| total.frame_id(&leaf_label(GC_LEAF))),
                        );
                    }
                    if config.gil_wait_frames && t.status == ThreadStatus::GilWait {
                        key.push(
                            *gil_wait_leaf
                                .get_or_insert_with(|| total.frame_id(&leaf_label(GIL_WAIT_LEAF))),
                        );
                    }
                    let name = session.thread_name(t.interp, t.thread_id);
                    let stack = add_key(
                        &mut total,
                        batch.as_mut(),
                        &mut bkey,
                        &key,
                        pid,
                        t,
                        name,
                        at,
                    );
                    if last.len() <= index {
                        last.resize_with(index + 1, LastStack::default);
                    }
                    // Kept once the thread's name is known (it is part of
                    // the thread's entry, updated on the slow path).
                    last[index].keep(t, flags, stack.filter(|_| reusable && name.is_some()));
                }
                for chain in &raw.tasks.idle {
                    let threads = raw.threads();
                    let Some(t) = threads
                        .iter()
                        .find(|t| Some(t.thread_id) == chain.thread_id)
                        .or(threads.first())
                    else {
                        continue;
                    };
                    key.clear();
                    let name = session.thread_name(t.interp, t.thread_id);
                    key.push(total.thread_id(
                        pid,
                        t.interpreter_id,
                        t.thread_id,
                        t.os_thread_id,
                        name,
                    ));
                    key.extend_from_slice(&root_ids);
                    push_interpreter_root(&mut key, &mut interp_roots, &mut total, t);
                    if config.thread_roots {
                        key.push(total.frame_id(&thread_label(t.os_thread_id, t.thread_id, name)));
                    }
                    crate::task_frames::push_links(
                        &mut key,
                        &mut labeler,
                        &mut total,
                        &mut session,
                        config,
                        &raw.tasks,
                        chain.links.clone(),
                        &[],
                    )?;
                    let name = session.thread_name(t.interp, t.thread_id);
                    add_key(
                        &mut total,
                        batch.as_mut(),
                        &mut bkey,
                        &key,
                        pid,
                        t,
                        name,
                        at,
                    );
                }
                shared.samples.store(total.samples(), Ordering::Relaxed);
            }
            Err(e) if !session.process().is_alive() || e.code() == "EEXITED" => {
                return Ok(StopReason::TargetExited);
            }
            Err(_) => {
                shared
                    .total
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .add_error();
                shared.errors.fetch_add(1, Ordering::Relaxed);
                if let Some(b) = shared
                    .batch
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .as_mut()
                {
                    b.agg.add_error();
                    b.counts.attempts += 1;
                }
            }
        }
        shared.elapsed_ns.store(
            shared.started.elapsed().as_nanos() as u64,
            Ordering::Relaxed,
        );
        let (torn, paused) = session.consistency_stats();
        shared
            .torn_reads
            .fetch_add(torn - last_torn, Ordering::Relaxed);
        shared
            .paused_samples
            .fetch_add(paused - last_paused, Ordering::Relaxed);
        (last_torn, last_paused) = (torn, paused);
    }
}

/// Pushes the `interpreter N` root of a sub-interpreter's thread (none for
/// the main interpreter's, so single-interpreter profiles are unchanged).
fn push_interpreter_root(
    key: &mut Vec<u32>,
    roots: &mut Vec<(i64, u32)>,
    total: &mut Aggregator,
    t: &crate::RawThread,
) {
    if t.interpreter_id == 0 {
        return;
    }
    let id = match roots.iter().find(|r| r.0 == t.interpreter_id) {
        Some(r) => r.1,
        None => {
            let id = total.frame_id(&crate::aggregate::interpreter_label(t.interpreter_id));
            roots.push((t.interpreter_id, id));
            id
        }
    };
    key.push(id);
}

/// The leaf frame of samples taken while the thread ran a garbage
/// collection (CPython's own sampler names it the same).
pub const GC_LEAF: &str = "<GC>";
/// The leaf frame of samples of a thread waiting to take the GIL.
pub const GIL_WAIT_LEAF: &str = "<GIL wait>";

/// A synthetic leaf: a name, no file, no line.
fn leaf_label(name: &str) -> FrameLabel {
    FrameLabel {
        name: name.to_owned(),
        filename: String::new(),
        short_filename: String::new(),
        line: 0,
        first_line: 0,
        kind: FrameKind::Python,
    }
}

fn nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Frame ids of the total aggregation by (code object, line): each label is
/// built and hashed once; later samples find the id with one lookup.
#[derive(Default)]
pub(crate) struct Labeler {
    ids: FxHashMap<(usize, i32), u32>,
    /// Native frames, by symbol id.
    native: FxHashMap<u32, u32>,
    /// `<task NAME>` frames, by task name id.
    pub(crate) tasks: Vec<Option<u32>>,
}

impl Labeler {
    /// The id of a native frame: `name (file.c:line)` with line tables,
    /// else `name (module.so)`.
    fn native_id(
        &mut self,
        total: &mut Aggregator,
        session: &Session,
        id: u32,
        config: &RecordConfig,
    ) -> u32 {
        if let Some(&f) = self.native.get(&id) {
            return f;
        }
        let label = match session.native_symbol(id) {
            Some(s) => {
                let (filename, short) = match &s.file {
                    Some(f) => (f.clone(), f.rsplit('/').next().unwrap_or(f).to_owned()),
                    None => (s.module_path.to_string(), s.module.to_string()),
                };
                FrameLabel {
                    name: s.name.clone(),
                    short_filename: if config.full_filenames {
                        filename.clone()
                    } else {
                        short
                    },
                    filename,
                    line: if config.lines == LineMode::Current {
                        s.line
                    } else {
                        0
                    },
                    first_line: 0,
                    kind: FrameKind::Native,
                }
            }
            None => FrameLabel {
                name: "?".into(),
                filename: String::new(),
                short_filename: String::new(),
                line: 0,
                first_line: 0,
                kind: FrameKind::Native,
            },
        };
        let f = total.frame_id(&label);
        self.native.insert(id, f);
        f
    }

    pub(crate) fn frame_id(
        &mut self,
        total: &mut Aggregator,
        session: &mut Session,
        code: usize,
        line: i32,
        config: &RecordConfig,
    ) -> Result<u32, Error> {
        let key = (
            code,
            if config.lines == LineMode::Current {
                line
            } else {
                0
            },
        );
        if let Some(&id) = self.ids.get(&key) {
            return Ok(id);
        }
        let info = session.walker().code(code)?;
        let first_line = info.first_line.max(0) as u32;
        let shown = match config.lines {
            LineMode::Current => line.max(0) as u32,
            LineMode::FunctionStart => first_line,
            LineMode::None => 0,
        };
        let filename = info.filename.to_string();
        let short_filename = session.short_filename(&filename, config.full_filenames);
        let id = total.frame_id(&FrameLabel {
            name: info.name.to_string(),
            filename,
            short_filename,
            line: shown,
            first_line,
            kind: FrameKind::Python,
        });
        self.ids.insert(key, id);
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_in_range_and_averages_one() {
        let mut j = Jitter(12345);
        let mut sum = 0.0;
        for _ in 0..100_000 {
            let f = j.factor();
            assert!((0.5..1.5).contains(&f));
            sum += f;
        }
        assert!((sum / 100_000.0 - 1.0).abs() < 0.01);
    }
}
