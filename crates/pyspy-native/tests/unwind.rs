//! Unwinds a real process: a `sleep` (not our child, as most targets are),
//! paused by this thread with ptrace.
#![cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::Arc;

use pyspy_native::{read_registers, End, NativeStacks};
use pyspy_process::{Pid, Process};

/// A `sleep 30` under `sh`: returns the `sh` and the sleep's pid.
fn grandchild_sleeper() -> (std::process::Child, Pid) {
    let mut sh = Command::new("sh")
        .args(["-c", "sleep 30 & echo $!; wait"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn sh");
    let mut line = String::new();
    std::io::BufReader::new(sh.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (sh, line.trim().parse().unwrap())
}

#[test]
fn unwinds_a_sleeping_process_to_its_start() {
    let (mut sh, pid) = grandchild_sleeper();
    // Let it reach its sleep.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let process = Arc::new(Process::open(pid).unwrap());
    let mut native = NativeStacks::without_python(process.clone());
    let guard = process.pause().expect("pause");
    native.begin_sample();
    let mut frames = Vec::new();
    let regs = read_registers(pid, pid).expect("registers");
    let end = native.unwind(regs, &mut frames);
    drop(guard);
    let names: Vec<String> = frames
        .iter()
        .enumerate()
        .flat_map(|(i, (ip, _))| native.symbolize(*ip, i == 0))
        .map(|s| format!("{} ({})", s.name, s.module))
        .collect();
    unsafe { libc::kill(pid, libc::SIGKILL) };
    sh.wait().unwrap();

    assert!(frames.len() >= 3, "a few frames: {names:?}");
    assert!(
        names
            .first()
            .is_some_and(|n| n.contains("sleep") && n.contains("libc")),
        "innermost frame is the C library's sleep: {names:?}"
    );
    assert_eq!(end, End::Complete, "reached the outermost frame: {names:?}");
    // Stack pointers grow outwards.
    assert!(frames.windows(2).all(|w| w[0].1 < w[1].1), "{frames:x?}");
}

#[test]
fn registers_of_an_unpaused_thread_are_refused_or_approximate() {
    let (mut sh, pid) = grandchild_sleeper();
    let process = Arc::new(Process::open(pid).unwrap());
    let mut native = NativeStacks::without_python(process);
    let mut frames = Vec::new();
    // Not traced by us: PTRACE_GETREGS(ET) fails; /proc/PID/task/TID/syscall
    // may still give sp and pc of a sleeping thread. Either way no panic.
    if let Ok(regs) = read_registers(pid, pid) {
        native.unwind(regs, &mut frames);
    }
    unsafe { libc::kill(pid, libc::SIGKILL) };
    sh.wait().unwrap();
}
