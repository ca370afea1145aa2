//! PID namespaces: a process in a container sees its own pids and tids
//! (its main thread is 1), and CPython stores those (`native_thread_id`,
//! `threading.get_native_id()`), while every `/proc` path and ptrace call
//! of ours needs the ids of our namespace. The `NSpid:` line of a task's
//! `status` lists its id in each namespace from ours (first) down to its
//! own (last).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::Pid;

/// The ids of the `NSpid:` line of a `/proc/.../status` text, ours first.
pub fn parse_nspid(status: &str) -> Option<Vec<Pid>> {
    let line = status.lines().find_map(|l| l.strip_prefix("NSpid:"))?;
    let ids: Option<Vec<Pid>> = line.split_whitespace().map(|f| f.parse().ok()).collect();
    ids.filter(|v| !v.is_empty())
}

/// `(ours, its own)` ids of a task from its `status` file: equal when it
/// is in our PID namespace.
fn ids(path: &str) -> Option<(Pid, Pid)> {
    let ids = parse_nspid(&std::fs::read_to_string(path).ok()?)?;
    Some((*ids.first()?, *ids.last()?))
}

/// The pid process `pid` (ours) has in its own PID namespace, when that
/// namespace is not ours.
pub fn namespace_pid(pid: Pid) -> Option<Pid> {
    let (ours, own) = ids(&format!("/proc/{pid}/status"))?;
    (own != ours).then_some(own)
}

/// Every thread of `pid` as `(our tid, its own tid)`.
pub fn thread_ids(pid: Pid) -> Vec<(Pid, Pid)> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| {
            let tid: Pid = e.file_name().to_str()?.parse().ok()?;
            // A kernel without NSpid (before 4.1) has one namespace view.
            Some(ids(&format!("/proc/{pid}/task/{tid}/status")).unwrap_or((tid, tid)))
        })
        .collect()
}

/// How often at most the thread list is read again for a tid not seen.
const RELOAD_EVERY: Duration = Duration::from_millis(50);

/// Maps the tids one process sees for its threads to ours: loaded once,
/// loaded again when an unknown tid shows up (a new thread), at most every
/// [`RELOAD_EVERY`] (an unknown tid can also be a thread that just ended).
/// In our own namespace every tid is itself, and nothing more is read.
#[derive(Debug, Default)]
pub struct TidMap {
    /// Whether the process is in another PID namespace; `None` until known.
    nested: Option<bool>,
    /// Its tid -> ours.
    map: HashMap<Pid, Pid>,
    loaded: Option<Instant>,
}

impl TidMap {
    /// Our tid for thread `own_tid` of process `pid` (ours), or `None`
    /// when no thread of the process has that tid.
    pub fn host_tid(&mut self, pid: Pid, own_tid: Pid) -> Option<Pid> {
        if !self.nested(pid) {
            return Some(own_tid);
        }
        if let Some(&tid) = self.map.get(&own_tid) {
            return Some(tid);
        }
        if self.loaded.is_some_and(|t| t.elapsed() < RELOAD_EVERY) {
            return None;
        }
        self.load(pid);
        self.map.get(&own_tid).copied()
    }

    /// Whether process `pid` is in another PID namespace than ours.
    pub fn nested(&mut self, pid: Pid) -> bool {
        *self
            .nested
            .get_or_insert_with(|| namespace_pid(pid).is_some())
    }

    fn load(&mut self, pid: Pid) {
        self.map.clear();
        self.map
            .extend(thread_ids(pid).into_iter().map(|(ours, own)| (own, ours)));
        self.loaded = Some(Instant::now());
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn parses_nspid_lines() {
        let status = "Name:\tpython3\nTgid:\t25100\nNSpid:\t25112\t2\nPPid:\t1\n";
        assert_eq!(parse_nspid(status), Some(vec![25112, 2]));
        assert_eq!(parse_nspid("NSpid:\t7\n"), Some(vec![7]));
        assert_eq!(parse_nspid("NSpid:\t7 x\n"), None);
        assert_eq!(parse_nspid("NSpid:\n"), None);
        assert_eq!(parse_nspid("Name:\tx\n"), None);
    }

    #[test]
    fn own_namespace_maps_every_tid_to_itself() {
        let pid = std::process::id() as Pid;
        let mut map = TidMap::default();
        assert!(!map.nested(pid));
        assert_eq!(namespace_pid(pid), None);
        assert_eq!(map.host_tid(pid, 12345), Some(12345));
        let tid = unsafe { libc::gettid() };
        assert!(thread_ids(pid).contains(&(tid, tid)));
    }

    /// A `sleep` that is pid 1 of its own PID namespace (the child of an
    /// `unshare` we start: `--kill-child` ends it with the `unshare`).
    #[test]
    fn a_process_in_its_own_namespace_is_mapped() {
        let mut unshare = std::process::Command::new("unshare")
            .args(["--pid", "--fork", "--kill-child", "sleep", "30"])
            .spawn()
            .expect("unshare (util-linux) runs");
        let parent = unshare.id() as Pid;
        let deadline = Instant::now() + Duration::from_secs(10);
        let host = loop {
            let child = std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children"))
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse::<Pid>().ok());
            // Wait until it is the sleep, not the fork before the exec.
            if let Some(pid) = child.filter(|p| {
                std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c == "sleep\n")
            }) {
                break pid;
            }
            assert!(Instant::now() < deadline, "no sleep under unshare");
            std::thread::sleep(Duration::from_millis(5));
        };
        let result = std::panic::catch_unwind(|| {
            assert_eq!(namespace_pid(host), Some(1));
            assert_eq!(thread_ids(host), vec![(host, 1)]);
            let mut map = TidMap::default();
            assert!(map.nested(host));
            assert_eq!(map.host_tid(host, 1), Some(host));
            assert_eq!(map.host_tid(host, 2), None, "no thread 2 in there");
        });
        let _ = unshare.kill();
        let _ = unshare.wait();
        if let Err(e) = result {
            std::panic::resume_unwind(e);
        }
    }
}
