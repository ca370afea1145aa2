//! A Linux core file read as the memory of the process it captured.
//!
//! [`CoreFile`] opens an ELF core made by `gcore` or by the kernel (plain or
//! gzip-compressed), and answers reads by address from its `PT_LOAD`
//! segments; what the core left out (the read-only parts of binaries) is
//! read from the files its `NT_FILE` note names, found where they were, under
//! a `sysroot` (cores taken in a container), or next to a given executable.
//! It implements [`pyspy_process::Memory`] and [`pyspy_process::Target`], so
//! the interpreter discovery, the stack reader and the native unwinder
//! (`pyspy-native`, from each thread's [`CoreThread::regs`]) use it exactly
//! like a live process. It does not pause anything or know about Python.
//! x86-64 cores only.
#![deny(missing_docs)]

mod elf;
mod memory;

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use pyspy_process::{map_file, Error, MapRange, MappedFile, Pid};

pub use elf::CoreThread;
use elf::{FileMap, Load};

/// Where to look for the binaries a core names.
#[derive(Debug, Clone, Default)]
pub struct CoreOptions {
    /// The program that dumped core; other binaries are also looked for in
    /// its directory.
    pub executable: Option<PathBuf>,
    /// A directory the core's paths are relative to (the container's root).
    pub sysroot: Option<PathBuf>,
}

/// The core file's bytes: mapped, or decompressed into memory.
enum Bytes {
    Mapped(MappedFile),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// A process captured in a core file.
pub struct CoreFile {
    path: PathBuf,
    bytes: Bytes,
    loads: Vec<Load>,
    files: Vec<FileMap>,
    threads: Vec<CoreThread>,
    pid: Pid,
    exe: String,
    command_line: String,
    /// Where the vDSO was mapped (it has no file).
    vdso: Option<u64>,
    options: CoreOptions,
    /// Binaries opened so far, by the path the core names (`None`: not found).
    opened: Mutex<HashMap<String, Option<Arc<MappedFile>>>>,
}

/// Most bytes a gzip-compressed core is inflated to.
const MAX_INFLATED: u64 = 64 << 30;

impl CoreFile {
    /// Opens and parses the core at `path`.
    pub fn open(path: &Path, options: CoreOptions) -> Result<CoreFile, Error> {
        let bad = |detail: String| Error::BadCore {
            path: path.display().to_string(),
            detail,
        };
        let mapped = map_file(path).map_err(|e| Error::Io {
            pid: 0,
            what: path.display().to_string(),
            source: e,
        })?;
        let bytes = if mapped.starts_with(&[0x1f, 0x8b]) {
            let mut out = Vec::new();
            flate2::read::MultiGzDecoder::new(&mapped[..])
                .take(MAX_INFLATED)
                .read_to_end(&mut out)
                .map_err(|e| bad(format!("gzip data is damaged or truncated: {e}")))?;
            Bytes::Owned(out)
        } else {
            Bytes::Mapped(mapped)
        };
        let parsed = elf::parse(&bytes).map_err(bad)?;
        if let Some(l) = parsed.loads.iter().find(|l| {
            l.offset
                .checked_add(l.filesz)
                .is_none_or(|e| e > bytes.len() as u64)
        }) {
            return Err(bad(format!(
                "truncated: the segment at {:#x} needs bytes up to {} but the file has {}",
                l.vaddr,
                l.offset.saturating_add(l.filesz),
                bytes.len()
            )));
        }
        let exe = parsed
            .entry
            .and_then(|e| parsed.files.iter().find(|f| f.start <= e && e < f.end))
            .or_else(|| parsed.files.first())
            .map(|f| f.path.clone())
            .unwrap_or_else(|| parsed.fname.clone());
        let pid = parsed.pid.unwrap_or(parsed.threads[0].tid);
        Ok(CoreFile {
            path: path.to_owned(),
            bytes,
            loads: parsed.loads,
            files: parsed.files,
            threads: parsed.threads,
            pid,
            exe,
            command_line: parsed.psargs,
            vdso: parsed.vdso,
            options,
            opened: Mutex::new(HashMap::new()),
        })
    }

    /// The core file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The threads the core recorded, with their registers.
    pub fn threads(&self) -> &[CoreThread] {
        &self.threads
    }

    /// The command line as the kernel recorded it (at most 80 bytes).
    pub fn command_line(&self) -> &str {
        &self.command_line
    }

    /// Where a file the core names is, here: under the sysroot, where it
    /// was, or next to the executable.
    fn locate(&self, target_path: &str) -> Option<PathBuf> {
        // A kernel core of a process in a container names paths inside it;
        // gcore run from the host names host paths: try both, root first
        // (the host may have a different file at the container's path).
        if let Some(root) = &self.options.sysroot {
            let p = root.join(target_path.trim_start_matches('/'));
            if p.exists() {
                return Some(p);
            }
        }
        let here = PathBuf::from(target_path);
        if here.exists() {
            return Some(here);
        }
        let exe = self.options.executable.as_ref()?;
        let name = Path::new(target_path).file_name()?;
        if (Some(name) == exe.file_name() || target_path == self.exe) && exe.exists() {
            return Some(exe.clone());
        }
        let p = exe.parent()?.join(name);
        p.exists().then_some(p)
    }

    /// The binary the core names `target_path`, mapped (cached).
    fn binary(&self, target_path: &str) -> Result<Arc<MappedFile>, Error> {
        let mut opened = self.opened.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(found) = opened.get(target_path) {
            return found.clone().ok_or_else(|| self.missing(target_path));
        }
        let found = self
            .locate(target_path)
            .and_then(|p| map_file(&p).ok())
            .map(Arc::new);
        opened.insert(target_path.to_owned(), found.clone());
        found.ok_or_else(|| self.missing(target_path))
    }

    fn missing(&self, target_path: &str) -> Error {
        Error::MissingBinary {
            path: target_path.to_owned(),
            hint: match &self.options.sysroot {
                Some(root) => format!(
                    "not found under the sysroot {} nor at that path",
                    root.display()
                ),
                None => {
                    "not found at that path; pass --executable PATH (its directory is searched \
                         too) or --sysroot DIR for a core taken in a container"
                        .to_owned()
                }
            },
        }
    }
}

impl pyspy_process::Target for CoreFile {
    fn pid(&self) -> Pid {
        self.pid
    }

    fn maps(&self) -> Result<Vec<MapRange>, Error> {
        let perms = |f: &FileMap| {
            self.loads
                .iter()
                .find(|l| l.vaddr <= f.start && f.start < l.vaddr.saturating_add(l.memsz))
                .map(|l| l.flags)
                // gcore writes no program header for the code of binaries
                // (and one for everything else): their own headers say what
                // was mapped executable; without the file, it was code.
                .or_else(|| {
                    let file = self.binary(&f.path).ok()?;
                    elf::segment_flags(&file, f.offset)
                })
                .unwrap_or(5)
        };
        let mut maps: Vec<MapRange> = self
            .files
            .iter()
            .map(|f| {
                let p = perms(f);
                MapRange {
                    start: f.start as usize,
                    end: f.end as usize,
                    read: p & 4 != 0,
                    write: p & 2 != 0,
                    exec: p & 1 != 0,
                    offset: f.offset,
                    inode: 1,
                    path: Some(f.path.clone()),
                }
            })
            .collect();
        // Memory no file backs (heap, stacks, anonymous maps).
        for l in &self.loads {
            let end = l.vaddr.saturating_add(l.memsz);
            if self.files.iter().any(|f| f.start < end && l.vaddr < f.end) {
                continue;
            }
            maps.push(MapRange {
                start: l.vaddr as usize,
                end: end as usize,
                read: l.flags & 4 != 0,
                write: l.flags & 2 != 0,
                exec: l.flags & 1 != 0,
                offset: 0,
                inode: 0,
                // Named as /proc/PID/maps names it, so the native unwinder
                // reads the vDSO's unwind tables out of the core.
                path: (Some(l.vaddr) == self.vdso).then(|| "[vdso]".to_owned()),
            });
        }
        maps.sort_by_key(|m| m.start);
        Ok(maps)
    }

    fn exe(&self) -> Result<String, Error> {
        Ok(self.exe.clone())
    }

    fn read_mapped_file(&self, map: &MapRange) -> Result<MappedFile, Error> {
        let path = map.path.as_deref().unwrap_or_default();
        let here = self.locate(path).ok_or_else(|| self.missing(path))?;
        map_file(&here).map_err(|e| Error::Io {
            pid: self.pid,
            what: here.display().to_string(),
            source: e,
        })
    }

    fn tids(&self) -> Vec<Pid> {
        self.threads.iter().map(|t| t.tid).collect()
    }

    fn own_tids(&self) -> Vec<Pid> {
        // The kernel and gdb record the ids the process itself saw.
        self.tids()
    }

    fn host_path(&self, target_path: &str) -> PathBuf {
        match &self.options.sysroot {
            Some(root) => root.join(target_path.trim_start_matches('/')),
            None => PathBuf::from(target_path),
        }
    }
}
