use crate::Pid;

/// Failure to read one range of remote memory. Small and allocation-free,
/// because torn reads are routine on the sampling hot path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("reading {len} bytes at {addr:#x} failed (errno {errno})")]
pub struct ReadError {
    /// Remote start address.
    pub addr: usize,
    /// Number of bytes asked for.
    pub len: usize,
    /// OS error number (`EFAULT` for an unmapped address, `ESRCH` when the
    /// process is gone, `EPERM` when access is denied; 0 for a short read).
    pub errno: i32,
}

impl ReadError {
    /// The process no longer exists.
    pub fn is_gone(&self) -> bool {
        self.errno == libc::ESRCH
    }
    /// The OS refused access.
    pub fn is_denied(&self) -> bool {
        self.errno == libc::EPERM || self.errno == libc::EACCES
    }
}

/// How to get the rights to read another process, everywhere it runs
/// (one line: the CLI prints errors on one line).
#[cfg(not(any(windows, target_os = "freebsd")))]
pub const HOW_TO_GET_PTRACE_RIGHTS: &str = "reading another process needs ptrace rights: \
     on a host, run as root (CAP_SYS_PTRACE) or set sysctl kernel.yama.ptrace_scope=0; \
     in Docker, docker run --cap-add SYS_PTRACE (a sidecar also needs --pid=container:APP); \
     in Kubernetes, securityContext.capabilities.add: [SYS_PTRACE] on the profiler's container \
     (a sidecar also needs shareProcessNamespace: true in the pod spec), \
     or kubectl debug -it POD --target=APP --profile=general";

/// How to get the rights to read another process on Windows.
#[cfg(windows)]
pub const HOW_TO_GET_PTRACE_RIGHTS: &str = "reading another process needs the right to open it: \
     run as Administrator (an elevated prompt), which holds SeDebugPrivilege, to read \
     processes of other users, services and elevated processes";

/// How to get the rights to read another process on FreeBSD (`p_candebug`:
/// root, or the target's own user while `security.bsd.unprivileged_proc_debug`
/// is 1, its default, and the target never changed credentials).
#[cfg(target_os = "freebsd")]
pub const HOW_TO_GET_PTRACE_RIGHTS: &str = "reading another process on FreeBSD needs ptrace rights: \
     run as root (sudo or doas), or as the target's own user with \
     sysctl security.bsd.unprivileged_proc_debug=1 (the default); a setuid or setgid target needs \
     root, and a process in a jail can only read processes of its own jail (allow.unprivileged_proc_debug)";

/// Failure to inspect a process.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No process has this pid.
    #[error("no process with pid {pid}")]
    NoProcess {
        /// The pid asked for.
        pid: Pid,
    },
    /// The OS denied access; the message says what was refused and how to
    /// get the rights, on a host, in Docker and in Kubernetes.
    #[error("permission denied reading process {pid}{detail}: {HOW_TO_GET_PTRACE_RIGHTS}")]
    PermissionDenied {
        /// The target.
        pid: Pid,
        /// What was refused, e.g. ` (process_vm_readv: EPERM; /proc/PID/mem:
        /// EACCES)`; empty when only one refusal was seen.
        detail: String,
    },
    /// The process exited while it was being read.
    #[error("process {pid} exited")]
    Exited {
        /// The target.
        pid: Pid,
    },
    /// A remote memory read failed.
    #[error("process {pid}: {source}")]
    Read {
        /// The target.
        pid: Pid,
        /// What failed.
        #[source]
        source: ReadError,
    },
    /// A `/proc` file or a mapped file could not be read.
    #[error("process {pid}: reading {what}: {source}")]
    Io {
        /// The target.
        pid: Pid,
        /// Which file.
        what: String,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// Pausing the process failed.
    #[error("process {pid}: could not pause it: {reason}")]
    Pause {
        /// The target.
        pid: Pid,
        /// Why.
        reason: String,
    },
    /// The OS refused access for a reason the message gives (macOS: not
    /// root, or a binary System Integrity Protection guards).
    #[error("permission denied reading process {pid}: {reason}")]
    Refused {
        /// The target.
        pid: Pid,
        /// Why, and what to do.
        reason: String,
    },
    /// This system has no ptrace (`ENOSYS`: qemu-user, some sandboxes), so
    /// the process cannot be paused; callers may read it running instead.
    #[error("process {pid}: cannot pause it: ptrace is not available here (ENOSYS)")]
    PauseUnavailable {
        /// The target.
        pid: Pid,
    },
    /// This platform is not supported.
    #[error("inspecting processes is not supported on this platform yet")]
    Unsupported,
    /// A file given as a core file is not one, or is damaged.
    #[error("{path} is not a usable core file: {detail}")]
    BadCore {
        /// The file.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// A binary a core file needs (its memory was not dumped) is missing.
    #[error("the core needs {path}, which is missing: {hint}")]
    MissingBinary {
        /// The path the core names.
        path: String,
        /// Where it was looked for and how to point at it.
        hint: String,
    },
}

impl Error {
    /// Stable machine-readable code (also the JS error's `code`).
    pub fn code(&self) -> &'static str {
        match self {
            Error::NoProcess { .. } => "ENOPROCESS",
            Error::PermissionDenied { .. } | Error::Refused { .. } => "EPERM",
            Error::Exited { .. } => "EEXITED",
            Error::Read { .. } => "EREAD",
            Error::Io { .. } => "EIO",
            Error::Pause { .. } | Error::PauseUnavailable { .. } => "EPAUSE",
            Error::Unsupported => "EUNSUPPORTED",
            Error::BadCore { .. } => "EBADCORE",
            Error::MissingBinary { .. } => "ENOBINARY",
        }
    }
}

/// The error for a failed remote read, the same on every platform: the
/// process is gone (`EEXITED`), the OS refused (`denied`, `EPERM` with how to
/// get the rights), or the range itself could not be read (`EREAD`).
/// `alive` is asked only when the errno does not already say "gone".
pub(crate) fn read_failure(
    pid: Pid,
    source: ReadError,
    alive: impl FnOnce() -> bool,
    denied: impl FnOnce() -> Error,
) -> Error {
    if source.is_gone() || !alive() {
        Error::Exited { pid }
    } else if source.is_denied() {
        denied()
    } else {
        Error::Read { pid, source }
    }
}

/// The error for a failed file or OS query about a process (`what` names it),
/// the same on every platform: gone (`EEXITED`; also when `missing_is_exit`
/// and the file is not found, as an exiting Linux process loses its `/proc`
/// entries first), refused (`denied`), or plain I/O (`EIO`).
pub(crate) fn io_failure(
    pid: Pid,
    what: &str,
    source: std::io::Error,
    missing_is_exit: bool,
    alive: impl FnOnce() -> bool,
    denied: impl FnOnce() -> Error,
) -> Error {
    if !alive() || (missing_is_exit && source.kind() == std::io::ErrorKind::NotFound) {
        return Error::Exited { pid };
    }
    if source.kind() == std::io::ErrorKind::PermissionDenied {
        return denied();
    }
    Error::Io {
        pid,
        what: what.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(errno: i32) -> ReadError {
        ReadError {
            addr: 0x1000,
            len: 8,
            errno,
        }
    }

    fn denied() -> Error {
        Error::PermissionDenied {
            pid: 7,
            detail: String::new(),
        }
    }

    #[test]
    fn a_failed_read_is_exit_denial_or_read_error() {
        let code = |errno, alive| read_failure(7, read(errno), || alive, denied).code();
        assert_eq!(code(libc::ESRCH, true), "EEXITED");
        assert_eq!(code(libc::EFAULT, false), "EEXITED");
        assert_eq!(code(libc::EPERM, true), "EPERM");
        assert_eq!(code(libc::EACCES, true), "EPERM");
        assert_eq!(code(libc::EFAULT, true), "EREAD");
        assert_eq!(code(0, true), "EREAD");
    }

    #[test]
    fn a_failed_query_is_exit_denial_or_io_error() {
        use std::io::{Error as IoError, ErrorKind};
        let code = |kind: ErrorKind, missing_is_exit, alive| {
            io_failure(
                7,
                "x",
                IoError::from(kind),
                missing_is_exit,
                || alive,
                denied,
            )
            .code()
        };
        assert_eq!(code(ErrorKind::Other, false, false), "EEXITED");
        assert_eq!(code(ErrorKind::NotFound, true, true), "EEXITED");
        assert_eq!(code(ErrorKind::NotFound, false, true), "EIO");
        assert_eq!(code(ErrorKind::PermissionDenied, false, true), "EPERM");
        assert_eq!(code(ErrorKind::Other, true, true), "EIO");
    }
}
