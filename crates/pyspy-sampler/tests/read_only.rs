//! Read-only, always (issue 10): the profiler never writes into its
//! target. A child copy of this test binary installs a seccomp filter on
//! all its threads that kills it (SIGSYS) on any `process_vm_writev`, any
//! `ptrace` request that writes (`POKE*`, `SET*REGS*`, `SETSIGINFO`), and
//! any `open`/`openat`/`openat2` for writing (which also covers writing
//! through `/proc/PID/mem`), then dumps (with locals and native frames),
//! samples in every read mode and records two live targets: one paused
//! with ptrace (not its child) and one with SIGSTOP (its own child). The
//! parent checks that the child finished cleanly. A second test checks
//! that the filter does kill a process that writes.
#![cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use pyspy_sampler::{DumpConfig, RawSample, ReadMode, RecordConfig, Recorder, Session, Target};

const PYTHON: &str = "/usr/bin/python3.11";
const MODE_ENV: &str = "PYSPY_READ_ONLY_CHILD";

extern "C" {
    fn prctl(option: i32, ...) -> i32;
    fn syscall(number: i64, ...) -> i64;
    fn getpid() -> i32;
}

#[cfg(target_arch = "x86_64")]
mod nr {
    pub const ARCH: u32 = 0xc000_003e; // AUDIT_ARCH_X86_64
    pub const PTRACE: u32 = 101;
    pub const PROCESS_VM_WRITEV: u32 = 311;
    pub const OPENAT: u32 = 257;
    pub const OPEN: Option<u32> = Some(2);
    pub const OPENAT2: u32 = 437;
    pub const SECCOMP: i64 = 317;
    pub const PROCESS_VM_WRITEV_CALL: i64 = 311;
}

#[cfg(target_arch = "aarch64")]
mod nr {
    pub const ARCH: u32 = 0xc000_00b7; // AUDIT_ARCH_AARCH64
    pub const PTRACE: u32 = 117;
    pub const PROCESS_VM_WRITEV: u32 = 271;
    pub const OPENAT: u32 = 56;
    pub const OPEN: Option<u32> = None;
    pub const OPENAT2: u32 = 437;
    pub const SECCOMP: i64 = 277;
    pub const PROCESS_VM_WRITEV_CALL: i64 = 271;
}

/// `ptrace` requests that change the tracee.
const PTRACE_WRITES: &[u32] = &[
    4,      // PTRACE_POKETEXT
    5,      // PTRACE_POKEDATA
    6,      // PTRACE_POKEUSER
    13,     // PTRACE_SETREGS
    15,     // PTRACE_SETFPREGS
    19,     // PTRACE_SETFPXREGS
    0x4203, // PTRACE_SETSIGINFO
    0x4205, // PTRACE_SETREGSET
    0x420b, // PTRACE_SETSIGMASK
    0x4212, // PTRACE_SET_SYSCALL_USER_DISPATCH_CONFIG
    0x4213, // PTRACE_SET_SYSCALL_INFO
];

/// `O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND`.
const WRITE_FLAGS: u32 = 0o1 | 0o2 | 0o100 | 0o1000 | 0o2000;

#[repr(C)]
struct SockFilter {
    code: u16,
    jt: u8,
    jf: u8,
    k: u32,
}

#[repr(C)]
struct SockFprog {
    len: u16,
    filter: *const SockFilter,
}

const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JSET_K: u16 = 0x45; // BPF_JMP | BPF_JSET | BPF_K
const RET_K: u16 = 0x06; // BPF_RET | BPF_K
const RET_ALLOW: u32 = 0x7fff_0000;
const RET_KILL_PROCESS: u32 = 0x8000_0000;

fn stmt(code: u16, k: u32) -> SockFilter {
    SockFilter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> SockFilter {
    SockFilter { code, jt, jf, k }
}

/// The filter: kill the process on a write into another process (or any
/// open for writing), allow everything else.
fn filter() -> Vec<SockFilter> {
    // seccomp_data: nr at 0, arch at 4, args[i] at 16 + 8 i (low word first).
    let mut f = vec![
        stmt(LD_W_ABS, 4),
        jump(JEQ_K, nr::ARCH, 1, 0),
        stmt(RET_K, RET_KILL_PROCESS),
        stmt(LD_W_ABS, 0),
        jump(JEQ_K, nr::PROCESS_VM_WRITEV, 0, 1),
        stmt(RET_K, RET_KILL_PROCESS),
    ];
    // ptrace: request (args[0]) in the write list.
    f.push(jump(JEQ_K, nr::PTRACE, 0, (3 + PTRACE_WRITES.len()) as u8));
    f.push(stmt(LD_W_ABS, 16));
    for (i, req) in PTRACE_WRITES.iter().enumerate() {
        // Match: jump to the kill after the list; else try the next.
        f.push(jump(JEQ_K, *req, (PTRACE_WRITES.len() - i) as u8, 0));
    }
    f.push(stmt(RET_K, RET_ALLOW));
    f.push(stmt(RET_K, RET_KILL_PROCESS));
    // open(path, flags) and openat(dirfd, path, flags): flags with a write bit.
    f.push(stmt(LD_W_ABS, 0));
    f.push(jump(JEQ_K, nr::OPENAT2, 0, 1));
    f.push(stmt(RET_K, RET_KILL_PROCESS)); // openat2 is not used at all
    f.push(jump(JEQ_K, nr::OPENAT, 0, 3));
    f.push(stmt(LD_W_ABS, 32));
    f.push(jump(JSET_K, WRITE_FLAGS, 0, 1));
    f.push(stmt(RET_K, RET_KILL_PROCESS));
    if let Some(open) = nr::OPEN {
        f.push(stmt(LD_W_ABS, 0));
        f.push(jump(JEQ_K, open, 0, 3));
        f.push(stmt(LD_W_ABS, 24));
        f.push(jump(JSET_K, WRITE_FLAGS, 0, 1));
        f.push(stmt(RET_K, RET_KILL_PROCESS));
    }
    f.push(stmt(RET_K, RET_ALLOW));
    f
}

/// Installs [`filter`] on every thread of this process.
fn install_filter() {
    let prog_filter = filter();
    let prog = SockFprog {
        len: prog_filter.len() as u16,
        filter: prog_filter.as_ptr(),
    };
    const PR_SET_NO_NEW_PRIVS: i32 = 38;
    const SECCOMP_SET_MODE_FILTER: i64 = 1;
    const SECCOMP_FILTER_FLAG_TSYNC: i64 = 1;
    // SAFETY: plain system calls with a valid, live filter program.
    unsafe {
        assert_eq!(
            prctl(PR_SET_NO_NEW_PRIVS, 1u64, 0u64, 0u64, 0u64),
            0,
            "no_new_privs"
        );
        let r = syscall(
            nr::SECCOMP,
            SECCOMP_SET_MODE_FILTER,
            SECCOMP_FILTER_FLAG_TSYNC,
            &prog as *const SockFprog,
        );
        assert_eq!(r, 0, "seccomp: {}", std::io::Error::last_os_error());
    }
}

fn fixture() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../test/fixtures/hardening_snapshot.py")
        .display()
        .to_string()
}

/// Starts the fixture (busy) and waits for READY; with `shell`, under a
/// `sh` that waits for it (so it is not our child). Returns the child and
/// the Python pid.
fn start_target(shell: bool) -> (Child, i32) {
    let script = fixture();
    let mut cmd = if shell {
        let mut c = Command::new("/bin/sh");
        c.args(["-c", "\"$@\" & echo $!; wait", "sh", PYTHON, &script]);
        c
    } else {
        let mut c = Command::new(PYTHON);
        c.arg(&script);
        c
    };
    // No Stdio::null(): that opens /dev/null for writing, which the filter
    // forbids (the own-child target is started after the filter is on).
    let mut child = cmd
        .args(["--busy", "--lifetime", "60", "--depth", "50"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the fixture");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let pid = if shell {
        out.read_line(&mut line).unwrap();
        let pid = line.trim().parse().expect("pid from sh");
        line.clear();
        pid
    } else {
        child.id() as i32
    };
    out.read_line(&mut line).unwrap();
    assert!(line.starts_with("READY "), "fixture said {line:?}");
    let _ = std::fs::remove_file(line["READY ".len()..].trim());
    (child, pid)
}

/// Everything that reads a target, once each way.
fn read_everything(pid: i32) {
    for config in [
        DumpConfig {
            locals: true,
            ..Default::default()
        },
        DumpConfig {
            nonblocking: true,
            ..Default::default()
        },
    ] {
        let dump = pyspy_sampler::dump(pid, &config).expect("dump");
        assert_eq!(dump.threads.len(), 4);
    }
    // Native frames (registers read with ptrace), where this target allows.
    let _ = pyspy_sampler::dump(
        pid,
        &DumpConfig {
            native: true,
            ..Default::default()
        },
    );
    let mut session = Session::attach(pid).expect("attach");
    let mut raw = RawSample::default();
    for mode in [ReadMode::Consistent, ReadMode::Pause, ReadMode::Nonblocking] {
        for _ in 0..20 {
            session.sample_raw(mode, true, &mut raw).expect("sample");
        }
    }
    for mode in [ReadMode::Pause, ReadMode::Consistent] {
        let recorder = Recorder::start(
            &Target::Pid(pid),
            RecordConfig {
                rate_hz: 500.0,
                duration: Some(Duration::from_millis(300)),
                mode,
                ..Default::default()
            },
        )
        .expect("record");
        recorder.finish().expect("finish");
    }
}

/// The child's side: runs when [`MODE_ENV`] is set.
fn child_main(mode: &str) {
    match mode {
        "read" => {
            let shell_pid: i32 = std::env::var("PYSPY_READ_ONLY_TARGET")
                .unwrap()
                .parse()
                .unwrap();
            // Start the own child and warm up its pause path (which forks a
            // helper that opens /dev/null) before the filter is on.
            let (mut own, own_pid) = start_target(false);
            drop(pyspy_sampler::dump(own_pid, &DumpConfig::default()).expect("warm-up dump"));
            install_filter();
            read_everything(shell_pid);
            read_everything(own_pid);
            let _ = own.kill();
            let _ = own.wait();
        }
        "write" => {
            install_filter();
            // SAFETY: a write to our own memory, of our own bytes: harmless
            // if it ran, and the filter must not let it.
            let mut word = 0u64;
            let iov = [(&mut word as *mut u64 as usize, 8usize)];
            unsafe {
                syscall(
                    nr::PROCESS_VM_WRITEV_CALL,
                    getpid() as i64,
                    iov.as_ptr(),
                    1i64,
                    iov.as_ptr(),
                    1i64,
                    0i64,
                );
            }
        }
        other => panic!("unknown mode {other}"),
    }
    std::process::exit(0);
}

fn run_child(test: &str, mode: &str, envs: &[(&str, String)]) -> std::process::Output {
    Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(MODE_ENV, mode)
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("run the child test binary")
}

#[test]
fn reading_never_writes_into_the_target() {
    if let Ok(mode) = std::env::var(MODE_ENV) {
        return child_main(&mode);
    }
    if !Path::new(PYTHON).exists() {
        eprintln!("skipped: no {PYTHON}");
        return;
    }
    let (mut sh, pid) = start_target(true);
    let out = run_child(
        "reading_never_writes_into_the_target",
        "read",
        &[("PYSPY_READ_ONLY_TARGET", pid.to_string())],
    );
    // SAFETY: plain syscall on the fixture we started.
    unsafe { libc_kill(pid, 9) };
    let _ = sh.wait();
    assert!(
        out.status.success(),
        "the reading child failed ({:?}, signal {:?}: 31 is SIGSYS, a forbidden write):\n{}\n{}",
        out.status,
        out.status.signal(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_filter_kills_a_writer() {
    if let Ok(mode) = std::env::var(MODE_ENV) {
        return child_main(&mode);
    }
    let out = run_child("the_filter_kills_a_writer", "write", &[]);
    assert_eq!(
        out.status.signal(),
        Some(31),
        "killed by SIGSYS: {:?}",
        out.status
    );
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}
