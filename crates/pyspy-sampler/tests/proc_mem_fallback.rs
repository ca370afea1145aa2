//! Reads where `process_vm_readv` is refused (issue 17): a child copy of
//! this test binary installs a seccomp filter that makes `process_vm_readv`
//! fail with EPERM (an older Docker profile) or ENOSYS (gVisor, qemu-user),
//! then attaches to a live Python target (not its child). The session must
//! read through `/proc/PID/mem` (decided once, at the first read) and give
//! the same stacks as the normal path does: a dump, samples in every read
//! mode, and a recording. The parent checks that the child finished.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use pyspy_process::{Memory, ReadPath};
use pyspy_sampler::{DumpConfig, RawSample, ReadMode, RecordConfig, Recorder, Session, Target};

const PYTHON: &str = "/usr/bin/python3.11";
const MODE_ENV: &str = "PYSPY_PROC_MEM_CHILD";
const TARGET_ENV: &str = "PYSPY_PROC_MEM_TARGET";

extern "C" {
    fn prctl(option: i32, ...) -> i32;
    fn kill(pid: i32, sig: i32) -> i32;
}

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

/// `process_vm_readv` fails with `errno`; everything else is allowed.
fn refuse_process_vm_readv(errno: u32) {
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    const RET_K: u16 = 0x06;
    const RET_ALLOW: u32 = 0x7fff_0000;
    const RET_ERRNO: u32 = 0x0005_0000;
    const ARCH_X86_64: u32 = 0xc000_003e;
    const NR_PROCESS_VM_READV: u32 = 310;
    let f = |code, jt, jf, k| SockFilter { code, jt, jf, k };
    let filter = [
        f(LD_W_ABS, 0, 0, 4),
        f(JEQ_K, 1, 0, ARCH_X86_64),
        f(RET_K, 0, 0, RET_ERRNO | libc_enosys()),
        f(LD_W_ABS, 0, 0, 0),
        f(JEQ_K, 0, 1, NR_PROCESS_VM_READV),
        f(RET_K, 0, 0, RET_ERRNO | errno),
        f(RET_K, 0, 0, RET_ALLOW),
    ];
    let prog = SockFprog {
        len: filter.len() as u16,
        filter: filter.as_ptr(),
    };
    const PR_SET_NO_NEW_PRIVS: i32 = 38;
    const PR_SET_SECCOMP: i32 = 22;
    const SECCOMP_MODE_FILTER: u64 = 2;
    // SAFETY: plain prctl calls with a valid, live filter program.
    unsafe {
        assert_eq!(prctl(PR_SET_NO_NEW_PRIVS, 1u64, 0u64, 0u64, 0u64), 0);
        let r = prctl(
            PR_SET_SECCOMP,
            SECCOMP_MODE_FILTER,
            &prog as *const SockFprog,
            0u64,
            0u64,
        );
        assert_eq!(r, 0, "seccomp: {}", std::io::Error::last_os_error());
    }
}

const fn libc_enosys() -> u32 {
    38
}

/// The fixture (main thread busy), under a `sh` so it is not our child.
fn start_target() -> (Child, i32) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../test/fixtures/hardening_snapshot.py")
        .display()
        .to_string();
    let mut child = Command::new("/bin/sh")
        .args(["-c", "\"$@\" & echo $!; wait", "sh", PYTHON, &script])
        .args(["--busy", "--lifetime", "60", "--depth", "50"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the fixture");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let pid = line.trim().parse().expect("pid from sh");
    line.clear();
    out.read_line(&mut line).unwrap();
    assert!(line.starts_with("READY "), "fixture said {line:?}");
    let _ = std::fs::remove_file(line["READY ".len()..].trim());
    (child, pid)
}

/// Thread names and Python function names, innermost first, per thread.
fn stacks(pid: i32) -> Vec<(Option<String>, Vec<String>)> {
    let dump = pyspy_sampler::dump(pid, &DumpConfig::default()).expect("dump");
    let mut out: Vec<_> = dump
        .threads
        .into_iter()
        .map(|t| {
            let names = t.frames.into_iter().map(|f| f.name).collect();
            (t.thread_name, names)
        })
        .collect();
    out.sort();
    out
}

/// The child's side: refuse `process_vm_readv`, then read everything.
fn child_main(errno: u32) {
    let pid: i32 = std::env::var(TARGET_ENV).unwrap().parse().unwrap();
    let expected = stacks(pid);
    refuse_process_vm_readv(errno);
    // The filter is on: a read through the syscall itself is refused.
    let mut probe = [0u8; 1];
    let local = [1u8];
    let l = IoVec {
        base: probe.as_mut_ptr(),
        len: 1,
    };
    let r = IoVec {
        base: local.as_ptr() as *mut u8,
        len: 1,
    };
    // SAFETY: one iovec each side, over live buffers of one byte.
    let refused = unsafe { libc_process_vm_readv(std::process::id() as i32, &l, 1, &r, 1, 0) };
    assert_eq!(refused, -1, "the filter refuses process_vm_readv");
    assert_eq!(
        std::io::Error::last_os_error().raw_os_error(),
        Some(errno as i32)
    );

    let mut session = Session::attach(pid).expect("attach");
    assert_eq!(session.process().read_path(), ReadPath::ProcMem);
    // The busy main thread moves; the parked threads' stacks must be equal.
    let got = stacks(pid);
    assert_eq!(got.len(), expected.len());
    for ((name, frames), (want_name, want)) in got.iter().zip(&expected) {
        assert_eq!(name, want_name);
        if name.as_deref() != Some("MainThread") {
            assert_eq!(frames, want, "thread {name:?}");
        }
    }
    let mut raw = RawSample::default();
    for mode in [ReadMode::Consistent, ReadMode::Pause, ReadMode::Nonblocking] {
        for _ in 0..20 {
            session.sample_raw(mode, true, &mut raw).expect("sample");
            assert_eq!(raw.threads().len(), 4);
        }
    }
    let before = session.process().read_counter().calls();
    let mut buf = [0u8; 16];
    assert!(
        session.process().read(8, &mut buf).is_err(),
        "address 8 is not mapped"
    );
    assert_eq!(session.process().read_counter().calls(), before + 1);
    let recorder = Recorder::start(
        &Target::Pid(pid),
        RecordConfig {
            rate_hz: 500.0,
            duration: Some(Duration::from_millis(300)),
            ..Default::default()
        },
    )
    .expect("record");
    let finished = recorder.finish().expect("finish");
    assert!(
        finished.profile.samples > 0,
        "samples through /proc/PID/mem"
    );
    std::process::exit(0);
}

#[repr(C)]
struct IoVec {
    base: *mut u8,
    len: usize,
}

extern "C" {
    #[link_name = "process_vm_readv"]
    fn libc_process_vm_readv(
        pid: i32,
        local: *const IoVec,
        liovcnt: u64,
        remote: *const IoVec,
        riovcnt: u64,
        flags: u64,
    ) -> isize;
}

fn run(test: &str, errno: u32) {
    if let Ok(e) = std::env::var(MODE_ENV) {
        return child_main(e.parse().unwrap());
    }
    assert!(
        Path::new(PYTHON).exists(),
        "{PYTHON} is needed (Debian's python3.11)"
    );
    let (mut sh, pid) = start_target();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(MODE_ENV, errno.to_string())
        .env(TARGET_ENV, pid.to_string())
        .output()
        .expect("run the child test binary");
    // SAFETY: plain syscall on the fixture we started.
    unsafe { kill(pid, 9) };
    let _ = sh.wait();
    assert!(
        out.status.success(),
        "the child failed ({:?}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn process_vm_readv_refused_with_eperm() {
    run("process_vm_readv_refused_with_eperm", 1);
}

#[test]
fn process_vm_readv_refused_with_enosys() {
    run("process_vm_readv_refused_with_enosys", libc_enosys());
}
