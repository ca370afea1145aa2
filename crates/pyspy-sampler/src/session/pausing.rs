//! When a session pauses its target: per sample (the read mode, `--native`,
//! a platform whose reads need a stop) and around runs of reads outside
//! sampling. `session.rs` holds attaching and the rest.

use super::*;

/// Why `--nonblocking` is refused where memory is read only while the
/// target is stopped (`Process::reads_need_pause`).
const NONBLOCKING_NEEDS_PAUSE: &str = "--nonblocking cannot read this process: without \
     procfs, FreeBSD reads another process's memory only while it is stopped (ptrace PT_IO); \
     mount procfs (mount -t procfs proc /proc) to read it running, or leave --nonblocking out";

/// A pause held while a run of reads is made outside sampling (finding the
/// interpreter, probing asyncio), where reads need the target stopped; none
/// elsewhere.
pub(super) fn held_for_reads(process: &Process) -> Result<Option<PauseGuard>, Error> {
    if process.reads_need_pause() {
        Ok(Some(process.pause()?))
    } else {
        Ok(None)
    }
}

impl Session {
    /// The read mode a sample really uses: a native stack is only read
    /// paused, and so is a target whose memory can only be read stopped
    /// (FreeBSD without procfs), where `--nonblocking` is refused.
    pub(super) fn read_mode(&self, mode: ReadMode) -> Result<ReadMode, Error> {
        if self.process.reads_need_pause() {
            if mode == ReadMode::Nonblocking {
                return Err(Error::Invalid(NONBLOCKING_NEEDS_PAUSE.into()));
            }
            return Ok(ReadMode::Pause);
        }
        Ok(if self.native.is_some() {
            ReadMode::Pause
        } else {
            mode
        })
    }

    /// Pauses unless `nonblocking`, or unless this system has no ptrace:
    /// then the read is taken running (a native unwind still needs it).
    pub(super) fn pause_unless(&mut self, nonblocking: bool) -> Result<Option<PauseGuard>, Error> {
        if nonblocking || (self.cannot_pause && self.native.is_none()) {
            return Ok(None);
        }
        match self.process.pause() {
            Ok(guard) => Ok(Some(guard)),
            Err(pyspy_process::Error::PauseUnavailable { .. }) if self.native.is_none() => {
                self.cannot_pause = true;
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }
}
