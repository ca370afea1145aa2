//! Pprof: a gzipped `profile.proto` (github.com/google/pprof), as read by
//! `go tool pprof`, Pyroscope and the `pprof-format` npm package.
//!
//! Sample types are `samples/count` and `cpu/nanoseconds` (or `wall`, per
//! [`crate::Clock`]; the default), the time value being count × period.
//! Each unique stack of each thread is one sample with its locations leaf
//! first and labels `thread id` (Python's, numeric), `thread native id` (OS,
//! numeric, when known), `thread name` (when known) and `pid` (numeric);
//! with [`crate::OutputOptions::snake_case_labels`] the keys are
//! `thread_id`, `thread_native_id`, `thread_name` (Pyroscope's rule). A
//! stack with `<task NAME>` frames (`--asyncio`) is also labelled
//! `task name` (`task_name`) with its innermost task's name. Samples of
//! a sub-interpreter's threads carry `interpreter` (its id, numeric).
//! There is one Function per (name, filename, first line) and one Location
//! per (function, line) with one Line and no mapping (Python code has no
//! addresses). Functions have no `system_name`: when it equals the name,
//! `go tool pprof` "demangles" names that look like C++ (`<…>`, `[…]`,
//! `::`), so `<module>` would show as `<unknown>` and `<lambda>` as nothing. Comments name the exporter,
//! the command line and the Python version. Gzip uses the fastest level,
//! as Go's runtime does for its own profiles. Written by hand: the
//! encoding is small, see `proto.rs`.

use std::collections::HashMap;
use std::io::{self, Write};

use flate2::{write::GzEncoder, Compression};

use super::{proto, Encoder};
use crate::{FrameKind, OutputOptions, Profile, ThreadInfo};

pub(crate) struct Pprof;

/// `string_table`, deduplicated; index 0 is `""`.
struct Strings {
    table: Vec<String>,
    index: HashMap<String, u64>,
}

impl Strings {
    fn new() -> Self {
        Strings {
            table: vec![String::new()],
            index: HashMap::from([(String::new(), 0)]),
        }
    }

    fn get(&mut self, s: &str) -> u64 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.table.len() as u64;
        self.table.push(s.to_owned());
        self.index.insert(s.to_owned(), i);
        i
    }
}

impl Encoder for Pprof {
    fn encode(
        &self,
        profile: &Profile,
        options: &OutputOptions,
        out: &mut dyn Write,
    ) -> io::Result<()> {
        let bytes = build(profile, options);
        let mut gz = GzEncoder::new(out, Compression::fast());
        gz.write_all(&bytes)?;
        gz.finish()?.flush()
    }
}

/// The uncompressed `Profile` message.
fn build(profile: &Profile, options: &OutputOptions) -> Vec<u8> {
    let mut strings = Strings::new();
    let mut buf = Vec::with_capacity(64 * profile.stacks.len() + 1024);
    let mut msg = Vec::new();
    let clock = strings.get(options.clock.pprof_name());
    let nanoseconds = strings.get("nanoseconds");
    let period = (1e9 / profile.effective_rate_hz()).round().max(1.0) as u64;

    // sample_type = 1, period_type = 11, period = 12.
    let value_type = |msg: &mut Vec<u8>, kind: u64, unit: u64| {
        msg.clear();
        proto::int(msg, 1, kind);
        proto::int(msg, 2, unit);
    };
    let (samples, count) = (strings.get("samples"), strings.get("count"));
    value_type(&mut msg, samples, count);
    proto::bytes(&mut buf, 1, &msg);
    value_type(&mut msg, clock, nanoseconds);
    proto::bytes(&mut buf, 1, &msg);
    proto::bytes(&mut buf, 11, &msg);
    proto::int(&mut buf, 12, period);

    // Functions (5) and locations (4), one location per profile frame.
    let mut functions: HashMap<(u64, u64, u32), u64> = HashMap::new();
    let mut locations: HashMap<(u64, u32), u64> = HashMap::new();
    let mut line_msg = Vec::new();
    let frame_location: Vec<u64> = profile
        .frames
        .iter()
        .map(|frame| {
            let name = strings.get(&frame.name);
            let filename = strings.get(&frame.filename);
            let key = (name, filename, frame.first_line);
            let next = functions.len() as u64 + 1;
            let function = *functions.entry(key).or_insert_with(|| {
                msg.clear();
                proto::int(&mut msg, 1, next);
                proto::int(&mut msg, 2, name);
                if filename != 0 {
                    proto::int(&mut msg, 4, filename);
                }
                if frame.first_line != 0 {
                    proto::int(&mut msg, 5, frame.first_line as u64);
                }
                proto::bytes(&mut buf, 5, &msg);
                next
            });
            let next = locations.len() as u64 + 1;
            *locations.entry((function, frame.line)).or_insert_with(|| {
                line_msg.clear();
                proto::int(&mut line_msg, 1, function);
                if frame.line != 0 {
                    proto::int(&mut line_msg, 2, frame.line as u64);
                }
                msg.clear();
                proto::int(&mut msg, 1, next);
                proto::bytes(&mut msg, 4, &line_msg);
                proto::bytes(&mut buf, 4, &msg);
                next
            })
        })
        .collect();

    // Samples (2).
    let labels: Vec<Vec<u8>> = profile
        .threads
        .iter()
        .map(|t| thread_labels(t, options.snake_case_labels, &mut strings))
        .collect();
    for stack in &profile.stacks {
        if stack.frames.is_empty() || stack.count == 0 {
            continue;
        }
        msg.clear();
        let leaf_first = stack
            .frames
            .iter()
            .rev()
            .map(|&f| frame_location[f as usize]);
        proto::packed(&mut msg, 1, leaf_first);
        proto::packed(
            &mut msg,
            2,
            [stack.count, stack.count.saturating_mul(period)].into_iter(),
        );
        if let Some(labels) = labels.get(stack.thread as usize) {
            msg.extend_from_slice(labels);
        }
        if let Some(task) = stack
            .frames
            .iter()
            .rev()
            .map(|&f| &profile.frames[f as usize])
            .find(|f| f.kind == FrameKind::Task)
        {
            let name = task
                .name
                .strip_prefix("<task ")
                .and_then(|n| n.strip_suffix('>'))
                .unwrap_or(&task.name);
            let key = if options.snake_case_labels {
                "task_name"
            } else {
                "task name"
            };
            let mut label = Vec::new();
            proto::int(&mut label, 1, strings.get(key));
            proto::int(&mut label, 2, strings.get(name));
            proto::bytes(&mut msg, 3, &label);
        }
        proto::bytes(&mut buf, 2, &msg);
    }

    // time_nanos = 9, duration_nanos = 10, comment = 13, default_sample_type = 14.
    if profile.start_unix_ns != 0 {
        proto::int(&mut buf, 9, profile.start_unix_ns);
    }
    let duration = profile.duration.as_nanos().min(i64::MAX as u128) as u64;
    if duration != 0 {
        proto::int(&mut buf, 10, duration);
    }
    let mut comments = vec![options.exporter.clone()];
    if !profile.command_line.is_empty() {
        comments.push(format!("command: {}", profile.command_line));
    }
    if !profile.python_version.is_empty() {
        comments.push(format!("python {}", profile.python_version));
    }
    for comment in comments.iter().filter(|c| !c.is_empty()) {
        proto::int(&mut buf, 13, strings.get(comment));
    }
    proto::int(&mut buf, 14, clock);

    // string_table = 6, last: everything above has interned its strings.
    for s in &strings.table {
        proto::bytes(&mut buf, 6, s.as_bytes());
    }
    buf
}

/// The encoded `label` fields (3) every sample of `thread` carries.
fn thread_labels(thread: &ThreadInfo, snake_case: bool, strings: &mut Strings) -> Vec<u8> {
    let key = |k: &'static str| {
        if snake_case {
            k.replace(' ', "_")
        } else {
            k.to_owned()
        }
    };
    let mut out = Vec::new();
    let mut label = Vec::new();
    let mut num = |out: &mut Vec<u8>, key: u64, v: u64| {
        label.clear();
        proto::int(&mut label, 1, key);
        proto::int(&mut label, 3, v);
        proto::bytes(out, 3, &label);
    };
    num(&mut out, strings.get(&key("thread id")), thread.thread_id);
    if let Some(os) = thread.os_thread_id {
        num(&mut out, strings.get(&key("thread native id")), os);
    }
    num(&mut out, strings.get("pid"), thread.pid as i64 as u64);
    if let Some(name) = &thread.name {
        let mut label = Vec::new();
        proto::int(&mut label, 1, strings.get(&key("thread name")));
        proto::int(&mut label, 2, strings.get(name));
        proto::bytes(&mut out, 3, &label);
    }
    // Sub-interpreters only: main-interpreter samples stay as they were.
    if thread.interpreter_id != 0 {
        num(
            &mut out,
            strings.get("interpreter"),
            thread.interpreter_id as u64,
        );
    }
    out
}
