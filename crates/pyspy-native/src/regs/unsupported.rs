//! Everywhere but Linux x86-64: no live registers. aarch64 Linux would need
//! `PTRACE_GETREGSET`/`NT_PRSTATUS` and an aarch64 unwinder (DWARF numbering,
//! PAC bits in return addresses), which `--native` does not have yet; the
//! sampler refuses `--native` there before anything gets here
//! ([`crate::SUPPORTED`]).

use pyspy_process::Pid;

use super::Registers;
use crate::Error;

/// Always `ENOSYS`.
pub fn read_registers(_pid: Pid, tid: Pid) -> Result<Registers, Error> {
    Err(Error::Registers {
        tid,
        errno: libc::ENOSYS,
    })
}
