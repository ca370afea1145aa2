//! Tests of each format through the public API, on small hand-built
//! profiles. One module per format; `api` covers what they share.

use std::time::Duration;

use crate::{
    encode_to_vec, Format, FrameKind, FrameLabel, OutputOptions, Profile, Span, StackCount,
    ThreadInfo,
};

mod api;
mod chrometrace;
mod flamegraph;
mod perf;
mod pprof;
mod raw;
mod speedscope;

pub(super) fn py(name: &str, file: &str, line: u32, first_line: u32) -> FrameLabel {
    FrameLabel {
        name: name.into(),
        filename: format!("/srv/app/{file}"),
        short_filename: file.into(),
        line,
        first_line,
        kind: FrameKind::Python,
    }
}

pub(super) fn synthetic(name: &str, kind: FrameKind) -> FrameLabel {
    FrameLabel {
        name: name.into(),
        filename: String::new(),
        short_filename: String::new(),
        line: 0,
        first_line: 0,
        kind,
    }
}

pub(super) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

// Frame indices of `two_threads`.
pub(super) const MODULE: u32 = 0;
pub(super) const MAIN: u32 = 1;
pub(super) const HOT: u32 = 2;
pub(super) const COLD: u32 = 3;
pub(super) const WORK: u32 = 4;

/// Two threads of pid 42 at 100 Hz; `hot` is sampled 9 times and `cold` 3
/// (3:1), from two call paths:
///
/// ```text
/// MainThread (os 101): <module>;main;hot ×6  <module>;main;cold ×2
/// worker     (os 102): work;hot ×3           work;cold ×1
/// ```
///
/// Timeline (ms): main hot 0–30, cold 30–40, hot 40–70, cold 70–80;
/// worker hot 0–30, cold 30–30 (its last sample).
pub(super) fn two_threads() -> Profile {
    let frames = vec![
        py("<module>", "app.py", 10, 1),
        py("main", "app.py", 5, 4),
        py("hot", "hot.py", 3, 1),
        py("cold", "cold.py", 7, 6),
        py("work", "app.py", 20, 18),
    ];
    let threads = vec![
        ThreadInfo {
            pid: 42,
            thread_id: 0x7f00_0000_1000,
            os_thread_id: Some(101),
            name: Some("MainThread".into()),
            interpreter_id: 0,
        },
        ThreadInfo {
            pid: 42,
            thread_id: 0x7f00_0000_2000,
            os_thread_id: Some(102),
            name: Some("worker".into()),
            interpreter_id: 0,
        },
    ];
    let stacks = vec![
        StackCount {
            thread: 0,
            frames: vec![MODULE, MAIN, HOT],
            count: 6,
        },
        StackCount {
            thread: 0,
            frames: vec![MODULE, MAIN, COLD],
            count: 2,
        },
        StackCount {
            thread: 1,
            frames: vec![WORK, HOT],
            count: 3,
        },
        StackCount {
            thread: 1,
            frames: vec![WORK, COLD],
            count: 1,
        },
    ];
    let span = |thread, stack, a, b| Span {
        thread,
        stack,
        start: ms(a),
        end: ms(b),
    };
    let timeline = vec![
        span(0, 0, 0, 30),
        span(1, 2, 0, 30),
        span(0, 1, 30, 40),
        span(1, 3, 30, 30),
        span(0, 0, 40, 70),
        span(0, 1, 70, 80),
    ];
    Profile {
        frames,
        threads,
        stacks,
        timeline,
        samples: 12,
        errors: 0,
        duration: ms(80),
        rate_hz: 100.0,
        start_unix_ns: 1_700_000_000_123_456_789,
        pid: 42,
        command_line: "python app.py".into(),
        python_version: "3.12.1".into(),
    }
}

/// `two_threads` with `--threads` roots: a synthetic `thread (TID): name`
/// frame (indices 5 and 6) at the root of every stack.
pub(super) fn with_thread_roots() -> Profile {
    let mut p = two_threads();
    p.frames
        .push(synthetic("thread (101): MainThread", FrameKind::Thread));
    p.frames
        .push(synthetic("thread (102): worker", FrameKind::Thread));
    for s in &mut p.stacks {
        s.frames.insert(0, 5 + s.thread);
    }
    p
}

/// A profile with threads but not a single sample.
pub(super) fn no_samples() -> Profile {
    let mut p = two_threads();
    p.stacks.clear();
    p.timeline.clear();
    p.samples = 0;
    p
}

pub(super) fn encode(p: &Profile, format: Format) -> Vec<u8> {
    encode_to_vec(p, format, &OutputOptions::default()).unwrap()
}

pub(super) fn encode_str(p: &Profile, format: Format) -> String {
    String::from_utf8(encode(p, format)).unwrap()
}
