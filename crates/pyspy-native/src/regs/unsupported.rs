//! Everywhere but Linux x86-64 and aarch64: no live registers (the sampler
//! refuses `--native` there before anything gets here: [`crate::SUPPORTED`]).
//! Registers from a core file still work on any host.

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
