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
/// How long a new process that is not (yet) Python is tried again.
const START_GRACE: Duration = Duration::from_secs(2);

/// Every process's parent (`/proc` on Linux, a Toolhelp32 snapshot on Windows).
pub(crate) fn parents() -> HashMap<Pid, Pid> {
    pyspy_process::process_parents()
}

/// `root` and its descendants, parents before children.
pub(crate) fn tree(root: Pid, parents: &HashMap<Pid, Pid>) -> Vec<Pid> {
    let mut children: HashMap<Pid, Vec<Pid>> = HashMap::new();
    for (&pid, &ppid) in parents {
        children.entry(ppid).or_default().push(pid);
    }
    let mut out = vec![root];
    // Windows keeps dead parents' ids, which new processes can reuse: a
    // parent table there can hold a cycle.
    let mut seen: std::collections::HashSet<Pid> = [root].into();
    let mut i = 0;
    while i < out.len() && out.len() < 100_000 {
        if let Some(kids) = children.get_mut(&out[i]) {
            kids.sort_unstable();
            out.extend(kids.iter().copied().filter(|k| seen.insert(*k)));
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
    let cmd = pyspy_process::process_command_line(pid);
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

/// Attaches to every Python process in `root`'s tree right now; `own_child`
/// is a child we spawned, which ptrace may stop (`Session::attach_with`).
pub(crate) fn attach_tree(root: Pid, own_child: Option<Pid>) -> Vec<Session> {
    tree(root, &parents())
        .into_iter()
        .filter_map(|pid| Session::attach_with(pid, own_child == Some(pid)).ok())
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
        // Processes that are not Python, by the executable they had then
        // and when first found so: tried again if they exec something else,
        // and for their first START_GRACE (a process just started may not
        // have loaded its interpreter yet: Windows lists python3XY.dll only
        // once the loader has run).
        let mut not_python: HashMap<Pid, (String, Instant)> = HashMap::new();
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
                    let Some(exe) = pyspy_process::process_exe(pid) else {
                        continue;
                    };
                    if not_python
                        .get(&pid)
                        .is_some_and(|(e, since)| *e == exe && since.elapsed() > START_GRACE)
                    {
                        continue;
                    }
                    match Session::attach(pid) {
                        Ok(session) => {
                            not_python.remove(&pid);
                            if let Some((pid, h)) = spawn(session, &table) {
                                running.insert(pid, h);
                            }
                        }
                        Err(_) => match not_python.get(&pid) {
                            Some((e, _)) if *e == exe => {}
                            _ => {
                                not_python.insert(pid, (exe, Instant::now()));
                            }
                        },
                    }
                }
                not_python.retain(|pid, _| table.contains_key(pid));
                let root_alive = table.contains_key(&root) && !pyspy_process::process_ended(root);
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
        // A cycle (reused parent ids on Windows) is walked once.
        let cycle: HashMap<Pid, Pid> = [(10, 11), (11, 10), (12, 11)].into_iter().collect();
        assert_eq!(tree(10, &cycle), vec![10, 11, 12]);
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
