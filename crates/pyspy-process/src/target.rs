//! What finding an interpreter needs from a target beyond its memory: its
//! memory map, its binaries and its threads. A live [`crate::Process`] is
//! one; a core file (crate `pyspy-core`) is another. The stack reader sees
//! only [`Memory`]; discovery sees this.

use std::path::PathBuf;

use crate::{Error, MapRange, MappedFile, Memory, Pid};

/// A process to find an interpreter in: live, or captured in a core file.
pub trait Target: Memory {
    /// Its pid (as recorded, for a core file).
    fn pid(&self) -> Pid;
    /// Its memory map, as `/proc/PID/maps` lists it.
    fn maps(&self) -> Result<Vec<MapRange>, Error>;
    /// Its executable, as the target saw it.
    fn exe(&self) -> Result<String, Error>;
    /// The file behind `map`, mapped read-only.
    fn read_mapped_file(&self, map: &MapRange) -> Result<MappedFile, Error>;
    /// Its OS thread ids.
    fn tids(&self) -> Vec<Pid>;
    /// Its thread ids as it sees them itself (in its own PID namespace:
    /// what C libraries and CPython store).
    fn own_tids(&self) -> Vec<Pid>;
    /// Where a path as the target sees it can be opened from here.
    fn host_path(&self, target_path: &str) -> PathBuf;
}

impl Target for crate::Process {
    fn pid(&self) -> Pid {
        crate::Process::pid(self)
    }
    fn maps(&self) -> Result<Vec<MapRange>, Error> {
        crate::Process::maps(self)
    }
    fn exe(&self) -> Result<String, Error> {
        crate::Process::exe(self)
    }
    fn read_mapped_file(&self, map: &MapRange) -> Result<MappedFile, Error> {
        crate::Process::read_mapped_file(self, map)
    }
    fn tids(&self) -> Vec<Pid> {
        crate::Process::tids(self)
    }
    fn own_tids(&self) -> Vec<Pid> {
        crate::thread_ids(crate::Process::pid(self))
            .into_iter()
            .map(|(_, own)| own)
            .collect()
    }
    fn host_path(&self, target_path: &str) -> PathBuf {
        crate::Process::host_path(self, target_path)
    }
}

impl<T: Target + ?Sized> Target for std::sync::Arc<T> {
    fn pid(&self) -> Pid {
        (**self).pid()
    }
    fn maps(&self) -> Result<Vec<MapRange>, Error> {
        (**self).maps()
    }
    fn exe(&self) -> Result<String, Error> {
        (**self).exe()
    }
    fn read_mapped_file(&self, map: &MapRange) -> Result<MappedFile, Error> {
        (**self).read_mapped_file(map)
    }
    fn tids(&self) -> Vec<Pid> {
        (**self).tids()
    }
    fn own_tids(&self) -> Vec<Pid> {
        (**self).own_tids()
    }
    fn host_path(&self, target_path: &str) -> PathBuf {
        (**self).host_path(target_path)
    }
}
