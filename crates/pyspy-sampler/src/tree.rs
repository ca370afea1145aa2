//! `--subprocesses`: find a process's descendants (grandchildren and ones
//! started later included), sample every Python one on its own thread (no
//! lock-step: a slow or dying process never holds up the others), skip the
//! rest, and drop the ones that exit.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use pyspy_output::{FrameKind, FrameLabel};
use pyspy_process::Pid;

use crate::process_loop::sample_process;
use crate::record::{RecordConfig, StopReason};
use crate::sink::Shared;
use crate::{Error, Session};

/// How often the process tree is scanned for new processes.
const SCAN_EVERY: Duration = Duration::from_millis(100);

/// Every process's parent, from `/proc/*/stat`.
pub(crate) fn parents() -> HashMap<Pid, Pid> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<Pid>().ok())
        else {
            continue;
        };
        if let Some(ppid) = read_ppid(pid) {
            out.insert(pid, ppid);
        }
    }
    out
}

fn read_ppid(pid: Pid) -> Option<Pid> {
    let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    let close = stat.iter().rposition(|b| *b == b')')?;
    let rest = std::str::from_utf8(stat.get(close + 2..)?).ok()?;
    rest.split(' ').nth(1)?.parse().ok()
}

/// `root` and its descendants, parents before children.
pub(crate) fn tree(root: Pid, parents: &HashMap<Pid, Pid>) -> Vec<Pid> {
    let mut children: HashMap<Pid, Vec<Pid>> = HashMap::new();
    for (&pid, &ppid) in parents {
        children.entry(ppid).or_default().push(pid);
    }
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() && out.len() < 100_000 {
        if let Some(kids) = children.get_mut(&out[i]) {
            kids.sort_unstable();
            out.extend(kids.iter().copied());
        }
        i += 1;
    }
    out
}

/// The processes from `root` down to `pid` (both included).
pub(crate) fn chain(root: Pid, pid: Pid, parents: &HashMap<Pid, Pid>) -> Vec<Pid> {
    let mut out = vec![pid];
    let mut at = pid;
    while at != root {
        match parents.get(&at) {
            Some(&p) if p > 0 && out.len() < 1024 => {
                out.push(p);
                at = p;
            }
            _ => break,
        }
    }
    out.reverse();
    out
}

/// The synthetic root frame naming a process, as py-spy writes it.
pub(crate) fn process_label(pid: Pid) -> FrameLabel {
    let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| {
            raw.split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    // In a container, the pid it sees itself too, to match its own logs.
    let ns = pyspy_process::namespace_pid(pid).map_or(String::new(), |n| format!(" (ns {n})"));
    FrameLabel {
        name: format!("process {pid}{ns}:\"{cmd}\""),
        filename: String::new(),
        short_filename: String::new(),
        line: 0,
        first_line: 0,
        kind: FrameKind::Process,
    }
}

/// Attaches to every Python process in `root`'s tree right now.
pub(crate) fn attach_tree(root: Pid) -> Vec<Session> {
    tree(root, &parents())
        .into_iter()
        .filter_map(|pid| Session::attach(pid).ok())
        .collect()
}

/// Samples `first` and every Python process that appears in `root`'s tree
/// later, each on its own thread, until stopped, the duration ends, or the
/// tree has no Python process left and `root` has exited.
pub(crate) fn sample_tree(
    root: Pid,
    first: Vec<Session>,
    config: &RecordConfig,
    shared: &Shared,
) -> Result<StopReason, Error> {
    std::thread::scope(|scope| {
        let mut running: HashMap<
            Pid,
            std::thread::ScopedJoinHandle<'_, Result<StopReason, Error>>,
        > = HashMap::new();
        // Processes that are not Python, by the executable they had then:
        // tried again only if they exec something else.
        let mut not_python: HashMap<Pid, String> = HashMap::new();
        let spawn = |session: Session, parents: &HashMap<Pid, Pid>| {
            let pid = session.process().pid();
            let roots: Vec<FrameLabel> = chain(root, pid, parents)
                .into_iter()
                .map(process_label)
                .collect();
            let handle = std::thread::Builder::new()
                .name(format!("pyspy-sampler-{pid}"))
                .spawn_scoped(scope, move || {
                    sample_process(session, config, shared, &roots)
                });
            handle.ok().map(|h| (pid, h))
        };
        let table = parents();
        for session in first {
            if let Some((pid, h)) = spawn(session, &table) {
                running.insert(pid, h);
            }
        }
        let mut last_scan = Instant::now();
        loop {
            if shared.stop.load(Ordering::Relaxed) {
                return Ok(StopReason::Stopped);
            }
            if config
                .duration
                .is_some_and(|d| shared.started.elapsed() >= d)
            {
                return Ok(StopReason::Duration);
            }
            running.retain(|_, h| !h.is_finished());
            if last_scan.elapsed() >= SCAN_EVERY {
                last_scan = Instant::now();
                let table = parents();
                for pid in tree(root, &table) {
                    if running.contains_key(&pid) {
                        continue;
                    }
                    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
                        .map(|p| p.to_string_lossy().into_owned());
                    let Ok(exe) = exe else { continue };
                    if not_python.get(&pid) == Some(&exe) {
                        continue;
                    }
                    match Session::attach(pid) {
                        Ok(session) => {
                            not_python.remove(&pid);
                            if let Some((pid, h)) = spawn(session, &table) {
                                running.insert(pid, h);
                            }
                        }
                        Err(_) => {
                            not_python.insert(pid, exe);
                        }
                    }
                }
                not_python.retain(|pid, _| table.contains_key(pid));
                let root_alive = table.contains_key(&root) && !is_zombie(root);
                if running.is_empty() && !root_alive {
                    return Ok(StopReason::TargetExited);
                }
            }
            shared
                .processes
                .store(running.len() as u64, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(5));
        }
    })
}

fn is_zombie(pid: Pid) -> bool {
    std::fs::read(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let close = stat.iter().rposition(|b| *b == b')')?;
            stat.get(close + 2).copied()
        })
        .is_none_or(|s| s == b'Z' || s == b'X')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_trees_and_chains() {
        let parents: HashMap<Pid, Pid> = [(10, 1), (11, 10), (12, 10), (13, 11), (20, 1)]
            .into_iter()
            .collect();
        assert_eq!(tree(10, &parents), vec![10, 11, 12, 13]);
        assert_eq!(chain(10, 13, &parents), vec![10, 11, 13]);
        assert_eq!(chain(10, 10, &parents), vec![10]);
    }

    #[test]
    fn finds_this_process_children() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let me = std::process::id() as Pid;
        assert!(tree(me, &parents()).contains(&(child.id() as Pid)));
        assert!(process_label(child.id() as Pid)
            .name
            .contains("\"sleep 5\""));
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
