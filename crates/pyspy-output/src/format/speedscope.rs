//! Speedscope: the JSON file format of speedscope.app
//! (`https://www.speedscope.app/file-format-schema.json`), with one
//! `sampled` profile per thread, sorted by name, in seconds.
//!
//! Each sample is one run of identical stacks from the timeline, in time
//! order, weighted by its sample count / rate (speedscope sums weights, so
//! this is the same profile as one sample per tick, only smaller; a run's
//! count is estimated from its length, totals per stack are exact, see
//! `runs.rs`). Without a timeline each unique stack is one sample weighted
//! by its count / rate.
//! Frames are `{name, file, line, col}` with every key present, as py-spy
//! writes them (tools read them by key): `file` is null for synthetic frames,
//! `line` null when 0 (`--nolineno`, or unknown), `col` always null (py-spy
//! writes no column either). Profile names follow py-spy: `Thread {tid}
//! "{name}"`, prefixed by `Process {pid} ` when there are several
//! processes; `tid` is the OS thread id when known, else Python's.

use std::collections::HashMap;
use std::io::{self, Write};

use super::Encoder;
use crate::runs::runs;
use crate::sink::Sink;
use crate::{json, OutputOptions, Profile};

pub(crate) struct Speedscope;

const SCHEMA: &str = "https://www.speedscope.app/file-format-schema.json";

/// One speedscope profile: a Python thread of one process.
struct Thread<'a> {
    pid: i32,
    thread_id: u64,
    os_thread_id: Option<u64>,
    name: Option<&'a str>,
    /// The profile's name, once all threads are known.
    title: String,
    /// (stack index, samples) in time order.
    samples: Vec<(u32, u64)>,
    total: u64,
}

impl Encoder for Speedscope {
    fn encode(
        &self,
        profile: &Profile,
        options: &OutputOptions,
        out: &mut dyn Write,
    ) -> io::Result<()> {
        let rate = profile.effective_rate_hz();
        let (shared, frame_index) = shared_frames(profile);
        let threads = threads(profile);

        let mut sink = Sink::new(out);
        let buf = &mut sink.buf;
        buf.extend_from_slice(b"{\"$schema\":");
        json::string(buf, SCHEMA);
        buf.extend_from_slice(b",\"exporter\":");
        json::string(buf, &options.exporter);
        buf.extend_from_slice(b",\"name\":");
        json::string(buf, options.title_for(&profile.command_line));
        buf.extend_from_slice(b",\"activeProfileIndex\":0,\"shared\":{\"frames\":[");
        for (i, &f) in shared.iter().enumerate() {
            let frame = &profile.frames[f];
            let buf = &mut sink.buf;
            buf.extend_from_slice(if i == 0 {
                b"{\"name\":"
            } else {
                b",{\"name\":"
            });
            json::string(buf, &frame.name);
            buf.extend_from_slice(b",\"file\":");
            if frame.filename.is_empty() {
                buf.extend_from_slice(b"null");
            } else {
                json::string(buf, &frame.filename);
            }
            buf.extend_from_slice(b",\"line\":");
            if frame.line == 0 {
                buf.extend_from_slice(b"null");
            } else {
                json::uint(buf, frame.line.into());
            }
            buf.extend_from_slice(b",\"col\":null}");
            sink.spill()?;
        }
        sink.buf.extend_from_slice(b"]},\"profiles\":[");
        for (i, thread) in threads.iter().enumerate() {
            let buf = &mut sink.buf;
            if i > 0 {
                buf.push(b',');
            }
            buf.extend_from_slice(b"{\"type\":\"sampled\",\"name\":");
            json::string(buf, &thread.title);
            buf.extend_from_slice(b",\"unit\":\"seconds\",\"startValue\":0,\"endValue\":");
            json::number(buf, thread.total as f64 / rate);
            buf.extend_from_slice(b",\"samples\":[");
            for (j, &(stack, _)) in thread.samples.iter().enumerate() {
                let buf = &mut sink.buf;
                buf.extend_from_slice(if j == 0 { b"[" } else { b",[" });
                for (k, &f) in profile.stacks[stack as usize].frames.iter().enumerate() {
                    if k > 0 {
                        buf.push(b',');
                    }
                    json::uint(buf, frame_index[f as usize].into());
                }
                buf.push(b']');
                sink.spill()?;
            }
            sink.buf.extend_from_slice(b"],\"weights\":[");
            for (j, &(_, n)) in thread.samples.iter().enumerate() {
                if j > 0 {
                    sink.buf.push(b',');
                }
                json::number(&mut sink.buf, n as f64 / rate);
                sink.spill()?;
            }
            sink.buf.extend_from_slice(b"]}");
        }
        sink.buf.extend_from_slice(b"]}\n");
        sink.finish()
    }
}

/// The deduplicated frames (as indices of representative profile frames)
/// and, for each profile frame, its index among them.
fn shared_frames(profile: &Profile) -> (Vec<usize>, Vec<u32>) {
    let mut seen: HashMap<(&str, &str, u32), u32> = HashMap::with_capacity(profile.frames.len());
    let mut shared = Vec::with_capacity(profile.frames.len());
    let index = profile
        .frames
        .iter()
        .enumerate()
        .map(|(i, f)| {
            *seen
                .entry((&f.name, &f.filename, f.line))
                .or_insert_with(|| {
                    shared.push(i);
                    shared.len() as u32 - 1
                })
        })
        .collect();
    (shared, index)
}

/// Threads with samples, merged by (pid, Python thread id), sorted by
/// profile name (as py-spy).
fn threads(profile: &Profile) -> Vec<Thread<'_>> {
    let mut by_key: HashMap<(i32, u64), usize> = HashMap::new();
    let mut threads: Vec<Thread> = Vec::new();
    let group: Vec<usize> = profile
        .threads
        .iter()
        .map(|t| {
            let g = *by_key.entry((t.pid, t.thread_id)).or_insert_with(|| {
                threads.push(Thread {
                    pid: t.pid,
                    thread_id: t.thread_id,
                    os_thread_id: None,
                    name: None,
                    title: String::new(),
                    samples: Vec::new(),
                    total: 0,
                });
                threads.len() - 1
            });
            let thread = &mut threads[g];
            thread.os_thread_id = thread.os_thread_id.or(t.os_thread_id);
            thread.name = thread.name.or(t.name.as_deref());
            g
        })
        .collect();
    for run in runs(profile).0 {
        if profile.stacks[run.stack as usize].frames.is_empty() {
            continue;
        }
        let Some(&g) = group.get(run.thread as usize) else {
            continue;
        };
        threads[g].samples.push((run.stack, run.samples));
        threads[g].total += run.samples;
    }
    threads.retain(|t| t.total > 0);
    let several_pids = threads.iter().any(|t| t.pid != threads[0].pid);
    for t in &mut threads {
        if several_pids {
            t.title = format!("Process {} ", t.pid);
        }
        t.title
            .push_str(&format!("Thread {}", t.os_thread_id.unwrap_or(t.thread_id)));
        if let Some(name) = t.name {
            t.title.push_str(&format!(" \"{name}\""));
        }
    }
    threads.sort_by(|a, b| a.title.cmp(&b.title));
    threads
}
