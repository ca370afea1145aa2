//! Launching a command to profile: our own child (not the JS runtime's), with
//! the caller's standard streams, attached as soon as its interpreter is up.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use pyspy_process::Pid;

use crate::{Error, Session};

/// How long a launched command may take to show a Python interpreter.
const LAUNCH_ATTACH_TIMEOUT: Duration = Duration::from_secs(30);

/// Starts `argv` with inherited standard streams, or with none (`/dev/null`)
/// when `capture` (py-spy's hidden `--capture`: the command's output stays
/// out of the profiler's).
pub(crate) fn spawn(argv: &[String], capture: bool) -> Result<Child, Error> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| Error::Launch("no command given".into()))?;
    let stream = |fd| {
        if capture {
            std::process::Stdio::null()
        } else {
            inherited(fd)
        }
    };
    Command::new(program)
        .args(args)
        .stdin(stream(0))
        .stdout(stream(1))
        .stderr(stream(2))
        .spawn()
        .map_err(|e| Error::Launch(format!("could not start '{program}': {e}")))
}

/// Attaches to a just-spawned child as soon as its interpreter is up
/// (retrying through exec and start-up). On failure the child is killed and
/// reaped.
pub(crate) fn attach_child(child: &mut Child, program: &str) -> Result<Session, Error> {
    let pid = child.id() as Pid;
    let started = Instant::now();
    let mut wait = Duration::from_micros(200);
    loop {
        // Nothing but `finish` waits for this child: ptrace is safe.
        match Session::attach_with(pid, true) {
            Ok(session) => return Ok(session),
            Err(e) => {
                let exited = matches!(child.try_wait(), Ok(Some(_)));
                let fatal = matches!(e.code(), "EPERM" | "EUNSUPPORTED");
                if exited || fatal || started.elapsed() > LAUNCH_ATTACH_TIMEOUT {
                    if !exited {
                        let _ = child.kill();
                    }
                    let _ = child.wait();
                    if exited && !fatal {
                        return Err(Error::Launch(format!(
                            "'{program}' exited before a Python interpreter could be found in it"
                        )));
                    }
                    return Err(e);
                }
            }
        }
        std::thread::sleep(wait);
        wait = (wait * 2).min(Duration::from_millis(10));
    }
}

/// Our standard stream `fd` for the child. Node marks its own 0–2
/// close-on-exec, so plain inheritance would leave the child without them:
/// hand it a duplicate, which the spawn installs as the child's `fd`.
#[cfg(unix)]
fn inherited(fd: i32) -> std::process::Stdio {
    use std::os::fd::BorrowedFd;
    // SAFETY: 0–2 are open for the life of the process (or the dup fails).
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    match borrowed.try_clone_to_owned() {
        Ok(owned) => owned.into(),
        Err(_) => std::process::Stdio::inherit(),
    }
}

#[cfg(not(unix))]
fn inherited(_fd: i32) -> std::process::Stdio {
    std::process::Stdio::inherit()
}
