//! Aggregation of samples into a [`Profile`]: frames, threads and stacks
//! interned by id, counts per unique stack, and a run-length timeline. The
//! per-sample path allocates only when it meets something new.

use rustc_hash::FxHashMap;
use std::time::Duration;

use pyspy_output::{FrameKind, FrameLabel, Profile, Span, StackCount, ThreadInfo};

/// How frame labels carry lines (py-spy's `--function` and `--nolineno`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LineMode {
    /// The line being executed.
    #[default]
    Current,
    /// The function's first line (`-F/--function`).
    FunctionStart,
    /// No line numbers (`--nolineno`).
    None,
}

/// Builds a profile sample by sample.
#[derive(Debug, Default)]
pub struct Aggregator {
    profile: Profile,
    labels: FxHashMap<FrameLabel, u32>,
    /// By pid, interpreter id and Python thread id.
    threads: FxHashMap<(i32, i64, u64), u32>,
    /// Stack key: thread index followed by frame ids, root first.
    stacks: FxHashMap<Box<[u32]>, u32>,
    /// Per thread: index of its open span in the timeline.
    open_span: Vec<Option<usize>>,
    keep_timeline: bool,
    /// Only count samples: keep no stacks (frames and threads are still
    /// interned, for batches that re-intern from this aggregator's ids).
    count_only: bool,
}

impl Aggregator {
    /// An empty aggregation; `timeline` keeps the time order of samples.
    pub fn new(timeline: bool) -> Self {
        Aggregator {
            keep_timeline: timeline,
            ..Default::default()
        }
    }

    /// An aggregation that only counts samples and interns labels: for a
    /// recording that streams its batches and must not grow for days.
    pub fn counting() -> Self {
        Aggregator {
            count_only: true,
            ..Default::default()
        }
    }

    /// The id of a frame label, interning it on first sight.
    pub fn frame_id(&mut self, label: &FrameLabel) -> u32 {
        if let Some(&id) = self.labels.get(label) {
            return id;
        }
        let id = self.profile.frames.len() as u32;
        self.profile.frames.push(label.clone());
        self.labels.insert(label.clone(), id);
        id
    }

    /// The index of a thread, interning it (and updating its name) as needed.
    pub fn thread_id(
        &mut self,
        pid: i32,
        interpreter_id: i64,
        thread_id: u64,
        os_thread_id: Option<u64>,
        name: Option<&str>,
    ) -> u32 {
        if let Some(&idx) = self.threads.get(&(pid, interpreter_id, thread_id)) {
            let info = &mut self.profile.threads[idx as usize];
            if info.name.is_none() && name.is_some() {
                info.name = name.map(str::to_owned);
            }
            return idx;
        }
        let idx = self.profile.threads.len() as u32;
        self.profile.threads.push(ThreadInfo {
            pid,
            thread_id,
            os_thread_id,
            name: name.map(str::to_owned),
            interpreter_id,
        });
        self.threads.insert((pid, interpreter_id, thread_id), idx);
        self.open_span.push(None);
        idx
    }

    /// Counts one sample of `thread` whose stack is `key` = `[thread, frame
    /// ids root first...]`, taken at `at` since the recording began; returns
    /// the stack's id (none when only counting), for [`Aggregator::add_again`].
    pub fn add(&mut self, key: &[u32], at: Duration) -> Option<u32> {
        if self.count_only {
            self.profile.samples += 1;
            return None;
        }
        let thread = key[0];
        let stack = match self.stacks.get(key) {
            Some(&id) => id,
            None => {
                let id = self.profile.stacks.len() as u32;
                self.profile.stacks.push(StackCount {
                    thread,
                    frames: key[1..].to_vec(),
                    count: 0,
                });
                self.stacks.insert(key.into(), id);
                id
            }
        };
        self.add_again(stack, at);
        Some(stack)
    }

    /// Counts one more sample of a stack [`Aggregator::add`] returned:
    /// no key to build or hash.
    pub fn add_again(&mut self, stack: u32, at: Duration) {
        let s = &mut self.profile.stacks[stack as usize];
        s.count += 1;
        let thread = s.thread;
        self.profile.samples += 1;
        if self.keep_timeline {
            self.extend_timeline(thread, stack, at);
        }
    }

    fn extend_timeline(&mut self, thread: u32, stack: u32, at: Duration) {
        let slot = &mut self.open_span[thread as usize];
        if let Some(i) = *slot {
            let span = &mut self.profile.timeline[i];
            span.end = at;
            if span.stack == stack {
                return;
            }
        }
        *slot = Some(self.profile.timeline.len());
        self.profile.timeline.push(Span {
            thread,
            stack,
            start: at,
            end: at,
        });
    }

    /// Counts a failed sampling attempt.
    pub fn add_error(&mut self) {
        self.profile.errors += 1;
    }

    /// Samples counted so far.
    pub fn samples(&self) -> u64 {
        self.profile.samples
    }

    /// The profile so far (leaving this aggregator empty and ready to reuse
    /// for the next batch).
    pub fn take(&mut self) -> Profile {
        let fresh = Aggregator {
            keep_timeline: self.keep_timeline,
            count_only: self.count_only,
            ..Default::default()
        };
        std::mem::replace(self, fresh).profile
    }

    /// Read access to the profile so far.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// Write access to the header fields (duration, rate, pid, ...).
    pub fn profile_mut(&mut self) -> &mut Profile {
        &mut self.profile
    }
}

/// The synthetic root frame of a sub-interpreter's threads: `interpreter N`.
/// It sits under a process's root (`--subprocesses`) and above a thread's
/// (`--threads`): an interpreter holds threads, and one OS thread can run
/// in several interpreters.
pub fn interpreter_label(id: i64) -> FrameLabel {
    FrameLabel {
        name: format!("interpreter {id}"),
        filename: String::new(),
        short_filename: String::new(),
        line: 0,
        first_line: 0,
        kind: FrameKind::Interpreter,
    }
}

/// A synthetic root frame for a thread (`--threads`), as py-spy labels it.
pub fn thread_label(os_thread_id: Option<u64>, thread_id: u64, name: Option<&str>) -> FrameLabel {
    let id = match os_thread_id {
        Some(t) => t.to_string(),
        None => format!("{thread_id:#x}"),
    };
    let name = match name {
        Some(n) => format!("thread ({id}): {n}"),
        None => format!("thread ({id})"),
    };
    FrameLabel {
        name,
        filename: String::new(),
        short_filename: String::new(),
        line: 0,
        first_line: 0,
        kind: FrameKind::Thread,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(name: &str) -> FrameLabel {
        FrameLabel {
            name: name.into(),
            filename: "f.py".into(),
            short_filename: "f.py".into(),
            line: 1,
            first_line: 1,
            kind: FrameKind::Python,
        }
    }

    #[test]
    fn counting_keeps_no_stacks_however_many_samples() {
        let mut a = Aggregator::counting();
        let t = a.thread_id(1, 0, 7, None, None);
        let ids: Vec<u32> = (0..50)
            .map(|i| a.frame_id(&label(&format!("f{i}"))))
            .collect();
        for n in 0..100_000u64 {
            let i = (n % 50) as usize;
            a.add(&[t, ids[i], ids[(i * 7) % 50]], Duration::from_millis(n));
        }
        assert_eq!(a.samples(), 100_000);
        assert!(a.profile().stacks.is_empty());
        assert!(a.profile().timeline.is_empty());
        // Labels stay interned (batches re-intern from these ids).
        assert_eq!(a.profile().frames.len(), 50);
        let p = a.take();
        assert_eq!(p.samples, 100_000);
        a.add(&[0, 0], Duration::ZERO);
        assert!(
            a.profile().stacks.is_empty(),
            "take() keeps the counting mode"
        );
    }

    #[test]
    fn interns_and_counts() {
        let mut a = Aggregator::new(true);
        let t = a.thread_id(1, 0, 7, Some(70), Some("main"));
        let (x, y) = (a.frame_id(&label("x")), a.frame_id(&label("y")));
        assert_eq!(a.frame_id(&label("x")), x);
        let ms = Duration::from_millis;
        a.add(&[t, x, y], ms(0));
        a.add(&[t, x, y], ms(10));
        a.add(&[t, x], ms(20));
        a.add(&[t, x, y], ms(30));
        let p = a.take();
        assert_eq!(p.samples, 4);
        assert_eq!(p.stacks.len(), 2);
        assert_eq!(
            p.stacks[0],
            StackCount {
                thread: t,
                frames: vec![x, y],
                count: 3
            }
        );
        let spans: Vec<_> = p
            .timeline
            .iter()
            .map(|s| (s.stack, s.start, s.end))
            .collect();
        assert_eq!(
            spans,
            vec![(0, ms(0), ms(20)), (1, ms(20), ms(30)), (0, ms(30), ms(30))]
        );
        assert_eq!(a.samples(), 0, "take() leaves it empty");
    }

    #[test]
    fn one_os_thread_in_two_interpreters_is_two_threads() {
        let mut a = Aggregator::new(false);
        let host = a.thread_id(1, 0, 7, Some(70), Some("host-1"));
        let sub = a.thread_id(1, 1, 7, Some(70), Some("sub-1"));
        assert_ne!(host, sub);
        assert_eq!(a.thread_id(1, 1, 7, Some(70), None), sub);
        let p = a.take();
        assert_eq!(p.threads[sub as usize].interpreter_id, 1);
        assert_eq!(p.threads[sub as usize].name.as_deref(), Some("sub-1"));
        assert_eq!(p.threads[host as usize].interpreter_id, 0);
        let root = interpreter_label(3);
        assert_eq!(root.name, "interpreter 3");
        assert_eq!(root.kind, FrameKind::Interpreter);
    }

    #[test]
    fn thread_roots_read_like_py_spy() {
        assert_eq!(
            thread_label(Some(42), 7, Some("MainThread")).name,
            "thread (42): MainThread"
        );
        assert_eq!(thread_label(None, 0xab, None).name, "thread (0xab)");
    }
}
