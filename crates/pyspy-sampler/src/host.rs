//! Host-wide recording (`--all-pythons`): every CPython process on the
//! machine, found by rescanning `/proc`, each sampled by its own
//! [`Recorder`]; processes that exit are dropped. Their batches are taken
//! together, so a pusher sees one window holding every process (and splits
//! it per pid).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pyspy_output::{Profile, StackCount};
use pyspy_process::Pid;

use crate::{Error, RecordConfig, Recorder, Target};

/// How often `/proc` is rescanned for new Python processes.
const SCAN_EVERY: Duration = Duration::from_millis(500);

/// Which processes to record.
#[derive(Debug, Clone, Default)]
pub struct HostFilter {
    /// Only processes whose command line contains this text.
    pub command_contains: Option<String>,
    /// Only processes of this real user id.
    pub uid: Option<u32>,
}

struct Live {
    recorders: HashMap<Pid, Recorder>,
    /// Pids found not to be (readable) Python.
    rejected: HashMap<Pid, Rejected>,
    /// The last samples of processes that exited since the previous batch.
    departed: Profile,
}

/// When and as what a process was found not to be (readable) Python. It is
/// tried again when it is another process (pids are reused: another start
/// time), when it has exec'd something else (a shell or `chroot` becoming
/// Python keeps its pid and start time), and during its first
/// [`START_GRACE`] (an interpreter still loading or initialising).
struct Rejected {
    started: u64,
    exe: Option<std::path::PathBuf>,
    at: Instant,
}

/// How long a process just found not to be readable Python is tried again.
const START_GRACE: Duration = Duration::from_secs(3);

/// Recording of every matching Python process on the host.
pub struct HostRecorder {
    live: Arc<Mutex<Live>>,
    stop: Arc<AtomicBool>,
    scanner: Option<JoinHandle<()>>,
}

impl HostRecorder {
    /// Scans once (so an error in the options shows now) and starts the
    /// scanner thread. `config.batches` is forced on.
    pub fn start(mut config: RecordConfig, filter: HostFilter) -> Result<HostRecorder, Error> {
        config.batches = true;
        // Everything streams: a node agent must not grow with uptime.
        config.keep_profile = false;
        config.subprocesses = false;
        let live = Arc::new(Mutex::new(Live {
            recorders: HashMap::new(),
            rejected: HashMap::new(),
            departed: Profile::default(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        scan(&live, &config, &filter);
        let (l, s) = (live.clone(), stop.clone());
        let scanner = std::thread::Builder::new()
            .name("pyspy-host-scan".into())
            .spawn(move || {
                while !s.load(Ordering::Relaxed) {
                    std::thread::sleep(SCAN_EVERY);
                    if !s.load(Ordering::Relaxed) {
                        scan(&l, &config, &filter);
                    }
                }
            })
            .map_err(|e| Error::Internal(format!("could not start the scanner thread: {e}")))?;
        Ok(HostRecorder {
            live,
            stop,
            scanner: Some(scanner),
        })
    }

    /// Pids being recorded now.
    pub fn pids(&self) -> Vec<Pid> {
        let live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let mut pids: Vec<Pid> = live.recorders.keys().copied().collect();
        pids.sort_unstable();
        pids
    }

    /// A handle for another thread (a pusher) to take batches with.
    pub fn batch_source(&self) -> impl FnMut() -> Option<Profile> + Send + 'static {
        let live = self.live.clone();
        move || {
            let mut live = live.lock().unwrap_or_else(|p| p.into_inner());
            let mut merged = std::mem::take(&mut live.departed);
            for r in live.recorders.values() {
                if let Some((p, _)) = r.take_batch() {
                    append(&mut merged, p);
                }
            }
            Some(merged)
        }
    }

    /// Stops scanning and every recorder; returns once their threads ended.
    pub fn finish(mut self) {
        self.end();
    }

    /// True once [`HostRecorder::stop`] was called.
    pub fn is_stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Asks everything to stop.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        let live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        for r in live.recorders.values() {
            r.stop();
        }
    }

    fn end(&mut self) {
        self.stop();
        if let Some(t) = self.scanner.take() {
            let _ = t.join();
        }
        // Recorders stay (their last batches are still to be taken); their
        // sampling threads end on their own after stop().
    }
}

impl Drop for HostRecorder {
    fn drop(&mut self) {
        self.end();
    }
}

/// Appends `p`'s threads, frames and stacks to `into`, renumbered.
fn append(into: &mut Profile, p: Profile) {
    let (f0, t0) = (into.frames.len() as u32, into.threads.len() as u32);
    into.frames.extend(p.frames);
    into.threads.extend(p.threads);
    into.stacks.extend(p.stacks.into_iter().map(|s| StackCount {
        thread: s.thread + t0,
        frames: s.frames.into_iter().map(|f| f + f0).collect(),
        count: s.count,
    }));
    into.samples += p.samples;
    into.errors += p.errors;
}

/// One pass over `/proc`: drops recorders of processes that ended, starts
/// one for each new matching Python process.
fn scan(live: &Mutex<Live>, config: &RecordConfig, filter: &HostFilter) {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return;
    };
    let me = std::process::id() as Pid;
    let seen: HashSet<Pid> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<Pid>().ok())
        .filter(|&pid| pid != me)
        .collect();
    let mut guard = live.lock().unwrap_or_else(|p| p.into_inner());
    let live = &mut *guard;
    // Exited (or no longer sampled): drop, keeping only their last batch.
    let departed = &mut live.departed;
    live.recorders.retain(|pid, r| {
        let keep = seen.contains(pid) && !r.is_finished();
        if !keep {
            if let Some((p, _)) = r.take_batch() {
                append(departed, p);
            }
        }
        keep
    });
    live.rejected.retain(|pid, _| seen.contains(pid));
    for pid in seen {
        if live.recorders.contains_key(&pid) {
            continue;
        }
        let started = start_time(pid);
        let exe = || std::fs::read_link(format!("/proc/{pid}/exe")).ok();
        // Read only for processes already rejected once (most, after the
        // first scans), not for every process of every scan.
        let exe_now = live.rejected.get(&pid).map(|_| exe());
        let same = |r: &Rejected| r.started == started && Some(&r.exe) == exe_now.as_ref();
        if live
            .rejected
            .get(&pid)
            .is_some_and(|r| same(r) && r.at.elapsed() > START_GRACE)
        {
            continue;
        }
        let ok = looks_like_python(pid, filter)
            && match Recorder::start(&Target::Pid(pid), config.clone()) {
                Ok(r) => {
                    live.recorders.insert(pid, r);
                    true
                }
                Err(_) => false,
            };
        if ok {
            live.rejected.remove(&pid);
        } else if !live.rejected.get(&pid).is_some_and(same) {
            live.rejected.insert(
                pid,
                Rejected {
                    started,
                    exe: exe_now.unwrap_or_else(exe),
                    at: Instant::now(),
                },
            );
        }
    }
}

/// Cheap checks before attaching: the filter, and `python` in the
/// executable's name or a `libpython` mapped.
fn looks_like_python(pid: Pid, filter: &HostFilter) -> bool {
    if let Some(uid) = filter.uid {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let real = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u32>().ok());
        if real != Some(uid) {
            return false;
        }
    }
    if let Some(text) = &filter.command_contains {
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if !cmd.contains(text.as_str()) {
            return false;
        }
    }
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
    if exe
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.contains("python"))
    {
        return true;
    }
    std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .map(|m| m.contains("libpython"))
        .unwrap_or(false)
}

/// The process's start time (field 22 of `/proc/PID/stat`), 0 if unknown.
fn start_time(pid: Pid) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(19)?.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pyspy_output::{FrameKind, FrameLabel, ThreadInfo};

    fn one(pid: i32, name: &str, count: u64) -> Profile {
        Profile {
            frames: vec![FrameLabel {
                name: name.into(),
                filename: "f.py".into(),
                short_filename: "f.py".into(),
                line: 1,
                first_line: 1,
                kind: FrameKind::Python,
            }],
            threads: vec![ThreadInfo {
                pid,
                thread_id: 1,
                os_thread_id: None,
                name: None,
                interpreter_id: 0,
            }],
            stacks: vec![StackCount {
                thread: 0,
                frames: vec![0],
                count,
            }],
            samples: count,
            ..Profile::default()
        }
    }

    #[test]
    fn batches_of_several_processes_merge_renumbered() {
        let mut merged = Profile::default();
        append(&mut merged, one(10, "a", 2));
        append(&mut merged, one(20, "b", 3));
        assert_eq!(merged.samples, 5);
        let b = &merged.stacks[1];
        assert_eq!((b.thread, b.frames.clone()), (1, vec![1]));
        assert_eq!(merged.threads[b.thread as usize].pid, 20);
        assert_eq!(merged.frames[b.frames[0] as usize].name, "b");
    }

    // `--all-pythons` scans Linux's /proc: elsewhere there is none to read.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_filter_and_start_times_read_proc() {
        let me = std::process::id() as Pid;
        assert!(start_time(me) > 0);
        let nobody = HostFilter {
            command_contains: Some("no-such-command-line-\u{1}".into()),
            uid: None,
        };
        assert!(!looks_like_python(me, &nobody));
    }
}
