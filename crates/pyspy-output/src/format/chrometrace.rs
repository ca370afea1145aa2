//! Chrometrace: a Chrome Trace Event JSON array, for ui.perfetto.dev and
//! chrome://tracing.
//!
//! Walking each thread's runs in time order, frames that disappear from one
//! run to the next get an `E` event (leaf first) and new frames a `B` event
//! (root first), found by the common root prefix of the two stacks. A frame
//! is the same when its name, filename and line are. Whatever is still open
//! is closed when the thread's last run ends (at least one sampling period
//! after it began); a gap between runs closes everything. Events are sorted
//! by `ts` (microseconds since the recording began), after `M` events naming
//! the processes and threads. `tid` is the OS thread id when known, else
//! Python's thread id. Stacks without a timeline are laid out one after the
//! other (see [`crate::runs`]).

use std::collections::BTreeSet;
use std::io::{self, Write};
use std::time::Duration;

use super::Encoder;
use crate::runs::{runs, Run};
use crate::sink::Sink;
use crate::{json, OutputOptions, Profile, ThreadInfo};

pub(crate) struct Chrometrace;

/// One `B` or `E` event.
#[derive(Clone, Copy)]
struct Event {
    ts: Duration,
    begin: bool,
    thread: u32,
    frame: u32,
}

/// A thread's open frames and its last run.
#[derive(Default, Clone)]
struct Open {
    frames: Vec<u32>,
    last: Option<Run>,
}

impl Encoder for Chrometrace {
    fn encode(&self, profile: &Profile, _: &OutputOptions, out: &mut dyn Write) -> io::Result<()> {
        let events = events(profile);
        let mut sink = Sink::new(out);
        sink.buf.push(b'[');
        let mut first = true;
        let mut sep = |buf: &mut Vec<u8>| {
            buf.extend_from_slice(if first { b"\n" } else { b",\n" });
            first = false;
        };

        let used: BTreeSet<u32> = events.iter().map(|e| e.thread).collect();
        let pids: BTreeSet<i32> = used
            .iter()
            .map(|&t| profile.threads[t as usize].pid)
            .collect();
        for pid in pids {
            let buf = &mut sink.buf;
            sep(buf);
            buf.extend_from_slice(b"{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":");
            json::int(buf, pid.into());
            buf.extend_from_slice(b",\"ts\":0,\"args\":{\"name\":");
            if pid == profile.pid && !profile.command_line.is_empty() {
                json::string(buf, &profile.command_line);
            } else {
                json::string(buf, &format!("process {pid}"));
            }
            buf.extend_from_slice(b"}}");
        }
        // Per thread: `,"cat":"python","pid":P,"tid":T,"ts":`.
        let mut ids: Vec<Vec<u8>> = vec![Vec::new(); profile.threads.len()];
        for &t in &used {
            let thread = &profile.threads[t as usize];
            let buf = &mut sink.buf;
            sep(buf);
            buf.extend_from_slice(b"{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":");
            json::int(buf, thread.pid.into());
            buf.extend_from_slice(b",\"tid\":");
            json::uint(buf, tid(thread));
            buf.extend_from_slice(b",\"ts\":0,\"args\":{\"name\":");
            match &thread.name {
                Some(name) => json::string(buf, name),
                None => json::string(buf, &format!("thread {}", tid(thread))),
            }
            buf.extend_from_slice(b"}}");

            let id = &mut ids[t as usize];
            id.extend_from_slice(b",\"cat\":\"python\",\"pid\":");
            json::int(id, thread.pid.into());
            id.extend_from_slice(b",\"tid\":");
            json::uint(id, tid(thread));
            id.extend_from_slice(b",\"ts\":");
        }

        // Per frame: its escaped name, and `,"args":{...}}` for `B` events.
        let mut names: Vec<Option<Vec<u8>>> = vec![None; profile.frames.len()];
        let mut args: Vec<Vec<u8>> = vec![Vec::new(); profile.frames.len()];
        for event in events {
            let f = event.frame as usize;
            let name = names[f].get_or_insert_with(|| {
                let frame = &profile.frames[f];
                let mut name = Vec::new();
                json::string(&mut name, &frame.name);
                let a = &mut args[f];
                a.extend_from_slice(b",\"args\":{\"filename\":");
                json::string(a, &frame.filename);
                a.extend_from_slice(b",\"line\":");
                match frame.line {
                    0 => a.extend_from_slice(b"null"),
                    line => json::uint(a, line.into()),
                }
                a.extend_from_slice(b"}}");
                name
            });
            let buf = &mut sink.buf;
            sep(buf);
            buf.extend_from_slice(if event.begin {
                b"{\"ph\":\"B\",\"name\":"
            } else {
                b"{\"ph\":\"E\",\"name\":"
            });
            buf.extend_from_slice(name);
            buf.extend_from_slice(&ids[event.thread as usize]);
            json::micros(buf, event.ts);
            if event.begin {
                buf.extend_from_slice(&args[f]);
            } else {
                buf.push(b'}');
            }
            sink.spill()?;
        }
        sink.buf.extend_from_slice(b"\n]\n");
        sink.finish()
    }
}

/// The thread id Perfetto shows: the OS one when known.
fn tid(thread: &ThreadInfo) -> u64 {
    thread.os_thread_id.unwrap_or(thread.thread_id)
}

/// All `B`/`E` events, balanced per thread, sorted by time (stably, so
/// each thread keeps its own order).
fn events(profile: &Profile) -> Vec<Event> {
    let period = Duration::from_secs_f64(1.0 / profile.effective_rate_hz());
    let same = |a: u32, b: u32| {
        let (fa, fb) = (&profile.frames[a as usize], &profile.frames[b as usize]);
        a == b || (fa.name == fb.name && fa.filename == fb.filename && fa.line == fb.line)
    };
    let mut open = vec![Open::default(); profile.threads.len()];
    let mut events = Vec::new();
    let close = |events: &mut Vec<Event>, thread: u32, frames: &[u32], ts: Duration| {
        let ends = frames.iter().rev().map(|&frame| Event {
            ts,
            begin: false,
            thread,
            frame,
        });
        events.extend(ends);
    };

    for run in runs(profile).0 {
        let Some(state) = open.get_mut(run.thread as usize) else {
            continue;
        };
        if let Some(last) = state.last {
            if run.start > last.end {
                let ts = finish(&last, period).min(run.start);
                close(&mut events, run.thread, &state.frames, ts);
                state.frames.clear();
            }
        }
        let new = &profile.stacks[run.stack as usize].frames;
        let common = state
            .frames
            .iter()
            .zip(new)
            .take_while(|(&a, &b)| same(a, b))
            .count();
        close(&mut events, run.thread, &state.frames[common..], run.start);
        let begins = new[common..].iter().map(|&frame| Event {
            ts: run.start,
            begin: true,
            thread: run.thread,
            frame,
        });
        events.extend(begins);
        state.frames.clear();
        state.frames.extend_from_slice(new);
        state.last = Some(run);
    }
    for (thread, state) in open.iter().enumerate() {
        if let Some(last) = &state.last {
            close(
                &mut events,
                thread as u32,
                &state.frames,
                finish(last, period),
            );
        }
    }
    events.sort_by_key(|e| e.ts);
    events
}

/// When a thread's last run ends: its end, but at least one period after
/// its start (a run's last sample stands for one period).
fn finish(run: &Run, period: Duration) -> Duration {
    run.end.max(run.start + period)
}
