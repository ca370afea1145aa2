//! Other platforms: system calls are not named.

/// Always `None`.
pub fn syscall_name(_nr: i64) -> Option<&'static str> {
    None
}
