//! The executable mappings of a target, each tied to its file (loaded and
//! parsed on first use: through `/proc/PID/root` or `/proc/PID/map_files`
//! for a live process, where a core's `NT_FILE` note says it was for a core
//! file), with the unwind rules looked up so far cached per address.

use std::collections::HashMap;
use std::sync::Arc;

use gimli::UnwindContext;
use pyspy_process::{MapRange, Target};

use crate::cfi::Rules;
use crate::elf::{Bytes, ElfFile};

/// Cached rule lookups per module before the cache is cleared (bounds memory
/// on targets that run through huge amounts of code).
const MAX_RULES: usize = 1 << 16;
/// Largest `[vdso]` read from the target.
const MAX_VDSO: usize = 1 << 20;

/// One mapped file (or the vDSO).
pub(crate) struct Module {
    /// Path as the target sees it (`[vdso]` for the vDSO).
    pub(crate) path: Arc<str>,
    /// Its last component, e.g. `libc.so.6`.
    pub(crate) name: Arc<str>,
    /// Part of the interpreter (the Python executable or libpython): its
    /// frames are hidden, and its evaluation function is replaced by
    /// Python frames.
    pub(crate) interpreter: bool,
    /// Runtime address minus link-time address.
    bias: u64,
    /// Its exec mapping, to load it from.
    map: MapRange,
    inode: u64,
    state: Load,
    rules: HashMap<u64, Option<Arc<Rules>>>,
}

enum Load {
    NotYet,
    Loaded(Box<ElfFile>),
    Failed,
}

impl Module {
    /// The parsed file and its load bias, loading it on first use; `None`
    /// when it cannot be read or parsed (then only frame pointers and
    /// addresses are left).
    pub(crate) fn elf(&mut self, target: &dyn Target) -> Option<(&ElfFile, u64)> {
        if let Load::NotYet = self.state {
            self.state = match load(target, &self.map) {
                Some(elf) => {
                    match elf.bias(self.map.start as u64, self.map.offset, self.map.exec) {
                        Some(b) => {
                            self.bias = b;
                            Load::Loaded(Box::new(elf))
                        }
                        None => Load::Failed,
                    }
                }
                None => Load::Failed,
            };
        }
        match &self.state {
            Load::Loaded(e) => Some((e, self.bias)),
            _ => None,
        }
    }

    /// The unwind rules at runtime address `addr` (cached).
    fn rules(
        &mut self,
        target: &dyn Target,
        addr: u64,
        ctx: &mut UnwindContext<usize>,
    ) -> Option<Arc<Rules>> {
        if let Some(r) = self.rules.get(&addr) {
            return r.clone();
        }
        let (elf, bias) = self.elf(target)?;
        let r = elf.rules(addr.wrapping_sub(bias), ctx).map(Arc::new);
        if self.rules.len() >= MAX_RULES {
            self.rules.clear();
        }
        self.rules.insert(addr, r.clone());
        r
    }
}

fn load(target: &dyn Target, map: &MapRange) -> Option<ElfFile> {
    let bytes = if map.path.as_deref() == Some("[vdso]") {
        if map.size() > MAX_VDSO {
            return None;
        }
        let mut v = vec![0u8; map.size()];
        target.read(map.start, &mut v).ok()?;
        Bytes::Owned(v)
    } else {
        Bytes::Mapped(target.read_mapped_file(map).ok()?)
    };
    ElfFile::parse(bytes)
}

/// All executable mappings of the target, by address.
pub(crate) struct Modules {
    modules: Vec<Module>,
    /// (start, end, module index), sorted by start.
    ranges: Vec<(u64, u64, usize)>,
    /// Paths of the interpreter's binaries as the target sees them.
    interpreter_paths: Vec<String>,
}

impl Modules {
    /// Reads the target's maps.
    pub(crate) fn new(target: &dyn Target, interpreter_paths: Vec<String>) -> Modules {
        let mut m = Modules {
            modules: Vec::new(),
            ranges: Vec::new(),
            interpreter_paths,
        };
        m.refresh(target);
        m
    }

    /// Re-reads the maps (a library was loaded or unloaded), keeping what is
    /// known about modules that are still mapped at the same place.
    pub(crate) fn refresh(&mut self, target: &dyn Target) {
        let Ok(maps) = target.maps() else {
            return;
        };
        let mut old: Vec<Option<Module>> = std::mem::take(&mut self.modules)
            .into_iter()
            .map(Some)
            .collect();
        self.ranges.clear();
        for map in maps.iter().filter(|m| m.exec) {
            let Some(path) = map.path.as_deref() else {
                continue; // anonymous code (JIT): frame pointers only
            };
            if path.starts_with('[') && path != "[vdso]" {
                continue; // [vsyscall], [uprobes]
            }
            let same =
                |m: &Module| &*m.path == path && m.inode == map.inode && m.map.start == map.start;
            let module = match old.iter_mut().find(|m| m.as_ref().is_some_and(same)) {
                Some(slot) => slot.take().expect("found above"),
                None => {
                    let name = path
                        .trim_end_matches(" (deleted)")
                        .rsplit('/')
                        .next()
                        .unwrap_or(path);
                    Module {
                        path: Arc::from(path),
                        name: Arc::from(name),
                        interpreter: self.interpreter_paths.iter().any(|p| p == path),
                        bias: 0,
                        map: map.clone(),
                        inode: map.inode,
                        state: Load::NotYet,
                        rules: HashMap::new(),
                    }
                }
            };
            self.ranges
                .push((map.start as u64, map.end as u64, self.modules.len()));
            self.modules.push(module);
        }
        self.ranges.sort_unstable();
    }

    /// The module whose executable mapping holds `addr`.
    pub(crate) fn find(&self, addr: u64) -> Option<usize> {
        let i = self
            .ranges
            .partition_point(|r| r.0 <= addr)
            .checked_sub(1)?;
        let (start, end, m) = self.ranges[i];
        (addr >= start && addr < end).then_some(m)
    }

    /// A module by index.
    pub(crate) fn get(&mut self, i: usize) -> &mut Module {
        &mut self.modules[i]
    }

    /// Unwind rules at `addr`: `Err(())` when no module holds it, `Ok(None)`
    /// when its module has no CFI there.
    pub(crate) fn rules(
        &mut self,
        target: &dyn Target,
        addr: u64,
        ctx: &mut UnwindContext<usize>,
    ) -> Result<Option<Arc<Rules>>, ()> {
        let i = self.find(addr).ok_or(())?;
        Ok(self.modules[i].rules(target, addr, ctx))
    }
}
