//! One window of samples → one push request: the window's profile split
//! into one pprof per process (each its own series, labelled `pid` and
//! `command`), stamped with the window's own start and duration (Pyroscope
//! drops a push identical in labels, time and content to an earlier one),
//! and wrapped in the Connect JSON body of `PusherService/Push`.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;
use pyspy_output::{encode_to_vec, Clock, Format, FrameKind, OutputOptions, Profile};
use serde_json::{json, Value};

use crate::queue::Window;

/// Longest `command` label value, in characters.
const COMMAND_LABEL_MAX: usize = 200;

/// Encodes windows; remembers each process's command line.
pub(crate) struct Encoder {
    /// `__name__`, `service_name` and the tags, in that order.
    labels: Vec<(String, String)>,
    rate_hz: f64,
    options: OutputOptions,
    commands: HashMap<i32, String>,
}

impl Encoder {
    pub(crate) fn new(
        app_name: &str,
        tags: &[(String, String)],
        clock: Clock,
        rate_hz: f64,
    ) -> Self {
        // Pyroscope's own names: CPU profiles are `process_cpu`, wall-clock
        // ones (idle threads kept) `wall`.
        let name = match clock {
            Clock::Cpu => "process_cpu",
            Clock::Wall => "wall",
        };
        let mut labels = vec![
            ("__name__".to_owned(), name.to_owned()),
            ("service_name".to_owned(), app_name.to_owned()),
        ];
        labels.extend(tags.iter().cloned());
        Encoder {
            labels,
            rate_hz,
            options: OutputOptions {
                clock,
                snake_case_labels: true,
                ..OutputOptions::default()
            },
            commands: HashMap::new(),
        }
    }

    /// The push request for `profile` (a window starting `start_unix_ns`
    /// and lasting `duration`), or None when it holds no stack.
    pub(crate) fn encode(
        &mut self,
        profile: &Profile,
        start_unix_ns: u64,
        duration: Duration,
    ) -> Option<Window> {
        let mut series = Vec::new();
        let mut samples = 0;
        for (pid, mut part) in split_by_pid(profile) {
            part.rate_hz = self.rate_hz;
            part.start_unix_ns = start_unix_ns;
            part.duration = duration;
            part.pid = pid;
            let Ok(pprof) = encode_to_vec(&part, Format::Pprof, &self.options) else {
                continue; // no stack in it
            };
            samples += part.samples;
            let command = self
                .commands
                .entry(pid)
                .or_insert_with(|| command_line(pid))
                .clone();
            let mut labels: Vec<Value> = self
                .labels
                .iter()
                .map(|(k, v)| json!({ "name": k, "value": v }))
                .collect();
            labels.push(json!({ "name": "pid", "value": pid.to_string() }));
            if !command.is_empty() {
                labels.push(json!({ "name": "command", "value": command }));
            }
            let raw = base64::engine::general_purpose::STANDARD.encode(pprof);
            series.push(json!({ "labels": labels, "samples": [{ "rawProfile": raw }] }));
        }
        if series.is_empty() {
            return None;
        }
        let body = serde_json::to_vec(&json!({ "series": series })).ok()?;
        Some(Window { body, samples })
    }

    /// Forgets command lines of processes no longer in the windows (pids
    /// get reused).
    pub(crate) fn forget_except(&mut self, live: &[i32]) {
        self.commands.retain(|pid, _| live.contains(pid));
    }
}

/// The pids of `profile`'s threads.
pub(crate) fn pids(profile: &Profile) -> Vec<i32> {
    let mut pids: Vec<i32> = profile.threads.iter().map(|t| t.pid).collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// One profile per process, with only its threads, stacks and frames; the
/// `process PID:"CMD"` root frames of `--subprocesses` are left out (the
/// series' labels say it).
pub(crate) fn split_by_pid(profile: &Profile) -> Vec<(i32, Profile)> {
    pids(profile)
        .into_iter()
        .map(|pid| {
            let mut part = Profile::default();
            let mut threads = HashMap::new();
            let mut frames = HashMap::new();
            for stack in &profile.stacks {
                let Some(thread) = profile.threads.get(stack.thread as usize) else {
                    continue;
                };
                if thread.pid != pid {
                    continue;
                }
                let t = *threads.entry(stack.thread).or_insert_with(|| {
                    part.threads.push(thread.clone());
                    part.threads.len() as u32 - 1
                });
                let mut ids = Vec::with_capacity(stack.frames.len());
                for &f in &stack.frames {
                    let Some(label) = profile.frames.get(f as usize) else {
                        continue;
                    };
                    if label.kind == FrameKind::Process {
                        continue;
                    }
                    ids.push(*frames.entry(f).or_insert_with(|| {
                        part.frames.push(label.clone());
                        part.frames.len() as u32 - 1
                    }));
                }
                part.samples += stack.count;
                part.stacks.push(pyspy_output::StackCount {
                    thread: t,
                    frames: ids,
                    count: stack.count,
                });
            }
            (pid, part)
        })
        .collect()
}

/// The process's command line from `/proc` (read-only), shortened for a
/// label; empty when it cannot be read.
fn command_line(pid: i32) -> String {
    let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return String::new();
    };
    let text = String::from_utf8_lossy(&raw);
    let joined = text
        .split('\0')
        .filter(|a| !a.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    joined.chars().take(COMMAND_LABEL_MAX).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pyspy_output::{FrameLabel, StackCount, ThreadInfo};

    fn frame(name: &str, kind: FrameKind) -> FrameLabel {
        FrameLabel {
            name: name.into(),
            filename: "f.py".into(),
            short_filename: "f.py".into(),
            line: 1,
            first_line: 1,
            kind,
        }
    }

    fn two_processes() -> Profile {
        let thread = |pid| ThreadInfo {
            pid,
            thread_id: 1,
            os_thread_id: Some(pid as u64),
            name: Some("MainThread".into()),
            interpreter_id: 0,
        };
        Profile {
            frames: vec![
                frame("process 10", FrameKind::Process),
                frame("a", FrameKind::Python),
                frame("process 20", FrameKind::Process),
                frame("b", FrameKind::Python),
            ],
            threads: vec![thread(10), thread(20)],
            stacks: vec![
                StackCount {
                    thread: 0,
                    frames: vec![0, 1],
                    count: 3,
                },
                StackCount {
                    thread: 1,
                    frames: vec![2, 3],
                    count: 1,
                },
                StackCount {
                    thread: 0,
                    frames: vec![0, 1],
                    count: 2,
                },
            ],
            samples: 6,
            ..Profile::default()
        }
    }

    #[test]
    fn splits_per_process_without_process_roots() {
        let parts = split_by_pid(&two_processes());
        assert_eq!(parts.len(), 2);
        let (pid, a) = &parts[0];
        assert_eq!((*pid, a.samples, a.threads.len()), (10, 5, 1));
        assert_eq!(a.frames, vec![frame("a", FrameKind::Python)]);
        assert!(a.stacks.iter().all(|s| s.frames == vec![0]));
        let (pid, b) = &parts[1];
        assert_eq!((*pid, b.samples), (20, 1));
        assert_eq!(b.frames[0].name, "b");
    }

    #[test]
    fn one_series_per_process_with_labels() {
        let mut enc = Encoder::new("app", &[("env".into(), "test".into())], Clock::Cpu, 100.0);
        let w = enc
            .encode(&two_processes(), 1_000, Duration::from_secs(10))
            .unwrap();
        assert_eq!(w.samples, 6);
        let body: Value = serde_json::from_slice(&w.body).unwrap();
        let series = body["series"].as_array().unwrap();
        assert_eq!(series.len(), 2);
        let labels = &series[1]["labels"];
        assert_eq!(
            labels[0],
            json!({"name": "__name__", "value": "process_cpu"})
        );
        assert_eq!(labels[1], json!({"name": "service_name", "value": "app"}));
        assert_eq!(labels[2], json!({"name": "env", "value": "test"}));
        assert_eq!(labels[3], json!({"name": "pid", "value": "20"}));
        let raw = series[0]["samples"][0]["rawProfile"].as_str().unwrap();
        let gz = base64::engine::general_purpose::STANDARD
            .decode(raw)
            .unwrap();
        assert_eq!(&gz[..2], &[0x1f, 0x8b], "gzipped pprof");
        assert!(enc.encode(&Profile::default(), 0, Duration::ZERO).is_none());
    }
}
