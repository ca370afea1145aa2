//! Linux: the system's processes, from `/proc` (what `--subprocesses`
//! walks). Windows has the same functions in `windows_table.rs`.

use std::collections::HashMap;

use crate::Pid;

/// Every process's parent.
pub fn process_parents() -> HashMap<Pid, Pid> {
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
        if let Some(ppid) = stat_field(pid, 1).and_then(|f| f.parse().ok()) {
            out.insert(pid, ppid);
        }
    }
    out
}

/// Field `n` (0: the state letter) after the command name of `/proc/PID/stat`.
fn stat_field(pid: Pid, n: usize) -> Option<String> {
    let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    let close = stat.iter().rposition(|b| *b == b')')?;
    let rest = std::str::from_utf8(stat.get(close + 2..)?).ok()?;
    rest.split(' ').nth(n).map(str::to_owned)
}

/// The command line of `pid`, arguments joined by spaces (empty if unreadable).
pub fn process_command_line(pid: Pid) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| {
            raw.split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// The executable of `pid`, when readable.
pub fn process_exe(pid: Pid) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// Whether `pid` is gone or a zombie.
pub fn process_ended(pid: Pid) -> bool {
    stat_field(pid, 0).is_none_or(|s| s == "Z" || s == "X")
}
