//! The process table (parents, command lines, executables, threads) where it
//! is not read yet (macOS): empty answers, so `--subprocesses`
//! finds no children there.

use crate::Pid;

/// See the Linux version.
pub fn thread_ids(_pid: Pid) -> Vec<(Pid, Pid)> {
    Vec::new()
}

/// No process table here: empty.
pub fn process_parents() -> std::collections::HashMap<Pid, Pid> {
    std::collections::HashMap::new()
}

/// Unknown here.
pub fn process_command_line(_pid: Pid) -> String {
    String::new()
}

/// Unknown here.
pub fn process_exe(_pid: Pid) -> Option<String> {
    None
}

/// Unknown here: taken as ended.
pub fn process_ended(_pid: Pid) -> bool {
    true
}
