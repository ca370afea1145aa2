//! `dump`: every thread's stack of a process, once, and with `subprocesses`
//! of each of its Python descendants.

use pyspy_process::{Pid, Process};

use crate::session::{DumpConfig, ProcessDump, Session};
use crate::Error;

/// Reads every thread's Python stack of `pid` once (and, with
/// `subprocesses`, of each Python descendant: a non-Python or vanishing
/// one is skipped, never an error for the others).
pub fn dump(pid: Pid, config: &DumpConfig) -> Result<ProcessDump, Error> {
    if !config.subprocesses {
        return Session::attach(pid)?.dump(config);
    }
    let parents = crate::tree::parents();
    let mut dumps = crate::tree::tree(pid, &parents)
        .into_iter()
        .map(|p| (p, Session::attach(p).and_then(|mut s| s.dump(config))));
    let (_, root) = dumps.next().expect("the tree starts with its root");
    let subprocesses: Vec<ProcessDump> = dumps
        .filter_map(|(p, d)| {
            d.ok().map(|d| ProcessDump {
                parent_pid: parents.get(&p).copied(),
                ..d
            })
        })
        .collect();
    match root {
        Ok(root) => Ok(ProcessDump {
            subprocesses,
            ..root
        }),
        // A launcher (a shell, a non-Python parent) with Python children:
        // report the children under an empty root.
        Err(e) if !subprocesses.is_empty() && e.code() == "ENOTPYTHON" => {
            let process = Process::open(pid)?;
            Ok(ProcessDump {
                pid,
                namespace_pid: pyspy_process::namespace_pid(pid),
                command_line: process.cmdline().map(|a| a.join(" ")).unwrap_or_default(),
                executable: process.exe().unwrap_or_default(),
                python_version: String::new(),
                free_threaded: false,
                gil_enabled: None,
                threads: Vec::new(),
                parent_pid: None,
                subprocesses,
                asyncio: None,
            })
        }
        Err(e) => Err(e),
    }
}
