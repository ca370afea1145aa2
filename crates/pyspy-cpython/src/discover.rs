//! Finding the interpreter in a process: which mapped binary is CPython,
//! its version, where `_PyRuntime` lives, and the layout to read it with.
//! Every candidate is validated before it is used.

use pyspy_binary::Binary;
use pyspy_process::{MapRange, Memory, MemoryExt, Target};

use crate::arch::for_this_arch;
use crate::binary_names::{is_libpython, is_python_binary, runtime_address};
use crate::debug_offsets::{self, MAX_TABLE};
use crate::error::{Error, ReadContext};
use crate::generated;
use crate::gil_gc::{self, GilLocation, Statics};
use crate::{Flavor, Layout, Offsets, Version};

/// Most bytes of `.bss` scanned for a version string.
const MAX_BSS_SCAN: usize = 8 << 20;

/// A located interpreter.
#[derive(Debug, Clone)]
pub struct Interpreter {
    /// Layout (version, offsets, semantics).
    pub layout: Layout,
    /// Remote address of `_PyRuntime`. Before 3.7, which has none: of
    /// `_PyThreadState_Current` (the GIL holder's thread state, which
    /// [`crate::StackWalker::gil_holder`] then reads at offset 0), or 0 when
    /// the binary does not name it.
    pub runtime: usize,
    /// Remote address of the main `PyInterpreterState`.
    pub interp: usize,
    /// The binary that holds the interpreter (executable or libpython), as
    /// the target sees it.
    pub binary_path: String,
    /// Where the GIL's locks are (a thread blocked on them waits for the GIL).
    pub gil: GilLocation,
    /// Remote address of the collector's `collecting` flag (an `int`).
    pub gc_collecting: Option<usize>,
}

impl Interpreter {
    /// Free-threaded builds: whether the GIL is on now (`PYTHON_GIL=1`, or an
    /// extension module that needs it); `None` for builds that always have
    /// one, or while the interpreter has not set its GIL up.
    pub fn gil_enabled(&self, mem: &impl Memory) -> Result<Option<bool>, Error> {
        let (Some(enabled), Some(slot)) = (
            self.layout.gil_enabled,
            self.layout.offsets.interp_ceval_gil,
        ) else {
            return Ok(None);
        };
        let gil = mem
            .read_usize(self.interp.wrapping_add(slot))
            .what("GIL pointer")?;
        if gil == 0 {
            return Ok(None);
        }
        let mut word = [0u8; 4];
        mem.read(gil.wrapping_add(enabled), &mut word)
            .what("GIL enabled flag")?;
        Ok(Some(i32::from_le_bytes(word) != 0))
    }
}

/// Finds and validates the interpreter of `process`.
pub fn find_interpreter<T: Target>(process: &T) -> Result<Interpreter, Error> {
    let maps = process.maps()?;
    let exe = process.exe()?;
    let mut candidates: Vec<&MapRange> = Vec::new();
    for map in &maps {
        let Some(path) = map.path.as_deref() else {
            continue;
        };
        if !is_python_binary(path, &exe) {
            continue;
        }
        match candidates
            .iter_mut()
            .find(|c| c.path.as_deref() == Some(path))
        {
            Some(c) if map.offset < c.offset => *c = map,
            Some(_) => {}
            None => candidates.push(map),
        }
    }
    // libpython first: when present it holds the interpreter.
    candidates.sort_by_key(|m| !m.path.as_deref().is_some_and(is_libpython));
    let mut last_err = None;
    for map in candidates {
        match probe_binary(process, map) {
            Ok(Some(found)) => return finish(process, found),
            Ok(None) => {}
            Err(e @ Error::UnsupportedVersion { .. }) => return Err(e),
            Err(e) => last_err = Some(e),
        }
    }
    if let Some(e) = last_err {
        return Err(e);
    }
    Err(Error::NotPython(format!(
        "process {} ({exe}) is not a Python process: no CPython interpreter found in its binaries",
        process.pid()
    )))
}

struct Probe {
    version: Version,
    /// `_PyRuntime` (3.7+), when found.
    runtime: Option<usize>,
    /// Where the interpreter-list head pointer lives: the static
    /// `interp_head` before 3.7, `_PyRuntime.interpreters.head` after, as
    /// found from a symbol or from the code of `PyInterpreterState_Head`.
    head_slot: Option<usize>,
    /// `_PyThreadState_Current` (before 3.7: the GIL holder's tstate).
    tstate_current: Option<usize>,
    /// 2.7: `Py_UNICODE`'s size, from which `PyUnicodeUCS2_*` or
    /// `PyUnicodeUCS4_*` functions the binary exports.
    py2_unicode_size: Option<usize>,
    /// The binary's `.bss` and `.data` in the process, for a last-resort
    /// search of the interpreter pointer in stripped binaries.
    scan: Vec<(usize, usize)>,
    /// Before 3.7: the statics holding the GIL and the collector's flag.
    statics: Statics,
    binary_path: String,
}

fn probe_binary<T: Target>(process: &T, map: &MapRange) -> Result<Option<Probe>, Error> {
    let path = map.path.clone().unwrap_or_default();
    let bytes = process.read_mapped_file(map)?;
    let Ok(binary) = Binary::parse(&bytes) else {
        return Ok(None);
    };
    let Some(bias) = binary.load_bias(map.start as u64, map.offset) else {
        return Ok(None);
    };
    let at = |a: u64| a.wrapping_add(bias) as usize;
    let runtime = runtime_address(&binary).map(at);
    let mut version = None;
    if let Some(sym) = binary.symbol("Py_Version") {
        let hex = process.read_u64(at(sym)).what("Py_Version")? & 0xffff_ffff;
        version = Version::from_hex(hex);
    }
    if let (None, Some(runtime)) = (version, runtime) {
        let mut head = [0u8; 24];
        if process.read(runtime, &mut head).is_ok() {
            version = debug_offsets::header(&head).map(|h| h.version);
        }
    }
    let looks_like_python = runtime.is_some()
        || ["Py_Initialize", "Py_GetVersion", "PyEval_EvalFrameEx"]
            .iter()
            .any(|s| binary.symbol(s).is_some());
    if !looks_like_python {
        return Ok(None);
    }
    if version.is_none() {
        version = version_from_memory(process, &binary, bias);
    }
    let Some(version) = version else {
        return Err(Error::NotPython(format!(
            "could not tell the Python version of {path}"
        )));
    };
    if Flavor::for_version(version).is_none() {
        return Err(unsupported(version));
    }
    let head_slot = binary
        .symbol("interp_head")
        .or_else(|| head_slot_from_code(&binary, &bytes))
        .map(at);
    let py2_unicode_size = if binary.symbol("PyUnicodeUCS2_FromString").is_some() {
        Some(2)
    } else if binary.symbol("PyUnicodeUCS4_FromString").is_some() {
        Some(4)
    } else {
        None
    };
    let scan = [".bss", ".data"]
        .iter()
        .filter_map(|name| binary.section(name))
        .map(|s| (at(s.addr), s.size as usize))
        .collect();
    Ok(Some(Probe {
        version,
        runtime,
        head_slot,
        tstate_current: binary.symbol("_PyThreadState_Current").map(at),
        py2_unicode_size,
        scan,
        statics: if (version.major, version.minor) < (3, 7) {
            Statics::find(&binary, &bytes, bias)
        } else {
            Statics::default()
        },
        binary_path: path,
    }))
}

/// `PyInterpreterState_Head()` returns the head of the interpreter list:
/// `interp_head` before 3.7, `_PyRuntime.interpreters.head` after. Compiled
/// with optimisation for x86_64 it is one RIP-relative load and a return,
/// `48 8b 05 <disp32> c3` (`mov rax, [rip + disp32]; ret`): the load's
/// address is the list head's. Any other code gives `None`. This finds the
/// static `interp_head` of stripped builds, which export the function but
/// not the variable (Debian's 2.7).
fn head_slot_from_code(binary: &Binary, bytes: &[u8]) -> Option<u64> {
    let func = binary.symbol("PyInterpreterState_Head")?;
    let section = binary
        .sections()
        .iter()
        .find(|s| s.file_offset.is_some() && func >= s.addr && func - s.addr < s.size)?;
    let off = usize::try_from(section.file_offset?.checked_add(func - section.addr)?).ok()?;
    let code = bytes.get(off..off.checked_add(8)?)?;
    if code[..3] != [0x48, 0x8b, 0x05] || code[7] != 0xc3 {
        return None;
    }
    let disp = i32::from_le_bytes(code[3..7].try_into().ok()?);
    Some(func.wrapping_add(7).wrapping_add(disp as i64 as u64))
}

fn unsupported(version: Version) -> Error {
    Error::UnsupportedVersion {
        version,
        detail: ": pyspy-node reads CPython 2.7 and 3.6 or newer".into(),
    }
}

/// Versions before 3.11 have no `Py_Version`: read the `sys.version` text
/// that `Py_GetVersion` keeps in a static buffer (a local symbol in
/// unstripped builds), else scan the binary's `.bss` for it.
fn version_from_memory<T: Target>(process: &T, binary: &Binary, bias: u64) -> Option<Version> {
    for name in ["version.0", "version"] {
        if let Some(sym) = binary.symbol(name) {
            let mut buf = [0u8; 128];
            if process
                .read(sym.wrapping_add(bias) as usize, &mut buf)
                .is_ok()
            {
                if let Some(v) = Version::scan(&buf) {
                    return Some(v);
                }
            }
        }
    }
    let bss = binary.bss()?;
    let len = (bss.size as usize).min(MAX_BSS_SCAN);
    let mut buf = vec![0u8; len];
    process
        .read(bss.addr.wrapping_add(bias) as usize, &mut buf)
        .ok()?;
    Version::scan_sys_version(&buf)
}

fn finish<T: Target>(process: &T, p: Probe) -> Result<Interpreter, Error> {
    let v = p.version;
    let mut layout = layout_for(process, v, p.runtime.unwrap_or(0))?;
    let o = layout.offsets;
    // The runtime state exists from 3.7 on; before, `_PyThreadState_Current`
    // is a global of its own, read by `gil_holder` at offset 0.
    let (runtime, head_slot) = match o.runtime_interpreters_head {
        Some(head) => {
            let runtime = p
                .runtime
                .or_else(|| p.head_slot.map(|s| s.wrapping_sub(head)))
                .ok_or_else(|| {
                    Error::NotPython(format!(
                        "Python {v} in {}: found no _PyRuntime",
                        p.binary_path
                    ))
                })?;
            (runtime, Some(runtime.wrapping_add(head)))
        }
        None => {
            layout.offsets.runtime_tstate_current = p.tstate_current.map(|_| 0);
            (p.tstate_current.unwrap_or(0), p.head_slot)
        }
    };
    if let (Some(size), true) = (p.py2_unicode_size, layout.flavor.py2) {
        layout.offsets.unicode_char_size = Some(size);
    }
    let interp = find_interp(process, &layout, head_slot, &p)?;
    let interp = main_interp(process, &layout.offsets, head_slot).unwrap_or(interp);
    if interp == 0 {
        return Err(Error::NotPython(format!(
            "Python {v} in process {} has no interpreter yet (starting up or shutting down)",
            process.pid()
        )));
    }
    validate(process, &layout, interp)?;
    if o.tstate_native_thread_id.is_none() {
        layout.pthread_tid = pthread_tid_offset(process, &layout, interp);
    }
    let (gil, gc_collecting) = gil_gc::locate(&layout.offsets, runtime, interp, p.statics);
    Ok(Interpreter {
        layout,
        runtime,
        interp,
        binary_path: p.binary_path,
        gil,
        gc_collecting,
    })
}

/// 3.12+: the main interpreter (id 0, the list's last: new interpreters
/// are prepended), which is not the head while sub-interpreters run.
fn main_interp(mem: &impl Memory, o: &Offsets, head_slot: Option<usize>) -> Option<usize> {
    o.interp_id?;
    let list = crate::read_interpreter_list(mem, o, head_slot?).ok()?;
    let main = list.iter().find(|i| i.id == 0).or(list.last())?;
    Some(main.addr)
}

/// The interpreter list's head when its slot is
/// known; else (stripped 2.7/3.6 builds) the `interp` of the thread that
/// holds the GIL, or a pointer in the binary's `.bss`/`.data` that passes
/// [`plausible_interp`] (the static `interp_head` is one).
fn find_interp(
    process: &impl Target,
    layout: &Layout,
    head_slot: Option<usize>,
    p: &Probe,
) -> Result<usize, Error> {
    if let Some(slot) = head_slot {
        return process.read_usize(slot).what("interpreter list");
    }
    if let Some(current) = p.tstate_current {
        let tstate = process.read_usize(current).what("current thread state")?;
        if tstate != 0 {
            if let Ok(interp) =
                process.read_usize(tstate.wrapping_add(layout.offsets.tstate_interp))
            {
                if plausible_interp(process, layout, interp) {
                    return Ok(interp);
                }
            }
        }
    }
    let heap: Vec<MapRange> = process
        .maps()?
        .into_iter()
        .filter(|m| m.read && m.write && m.path.as_deref().is_none_or(|p| p == "[heap]"))
        .collect();
    scan_for_interp(process, layout, &p.scan, &heap).ok_or_else(|| {
        Error::NotPython(format!(
            "Python {} in {}: found no interpreter state (no interp_head symbol or \
             PyInterpreterState_Head code, no thread holding the GIL, no candidate in .bss/.data)",
            layout.version, p.binary_path
        ))
    })
}

/// The first word of the `ranges` (`.bss`, then `.data`) that points into
/// `heap` (where `malloc` puts interpreter states) at a
/// [`plausible_interp`].
fn scan_for_interp(
    mem: &impl Memory,
    layout: &Layout,
    ranges: &[(usize, usize)],
    heap: &[MapRange],
) -> Option<usize> {
    for &(start, size) in ranges {
        let Ok(words) = mem.read_vec(start, size.min(MAX_BSS_SCAN)) else {
            continue;
        };
        for word in words.chunks_exact(8) {
            let cand = u64::from_le_bytes(word.try_into().unwrap()) as usize;
            if cand != 0
                && cand.is_multiple_of(8)
                && heap.iter().any(|m| m.contains(cand))
                && plausible_interp(mem, layout, cand)
            {
                return Some(cand);
            }
        }
    }
    None
}

/// An interpreter state: its first thread state points back at it, and its
/// `modules` is a `dict`.
fn plausible_interp(mem: &impl Memory, layout: &Layout, interp: usize) -> bool {
    let o = &layout.offsets;
    let check = || -> Option<bool> {
        let head = mem
            .read_usize(interp.wrapping_add(o.interp_threads_head))
            .ok()?;
        if head == 0 || !head.is_multiple_of(8) {
            return Some(false);
        }
        if mem.read_usize(head.wrapping_add(o.tstate_interp)).ok()? != interp {
            return Some(false);
        }
        let modules = mem.read_usize(interp.wrapping_add(o.interp_modules)).ok()?;
        let ty = mem.read_usize(modules.wrapping_add(o.ob_type)).ok()?;
        let name = mem.read_usize(ty.wrapping_add(o.type_tp_name)).ok()?;
        let mut buf = [0u8; 5];
        mem.read(name, &mut buf).ok()?;
        Some(&buf == b"dict\0")
    };
    check().unwrap_or(false)
}

/// glibc keeps the kernel tid of a thread in its descriptor (`struct
/// pthread`, which a `pthread_t` points at) at this offset, per
/// architecture; checked with gettid() and pthread_self() on glibc 2.36
/// (Debian 12 amd64, and arm64 under qemu-user).
const GLIBC_PTHREAD_TID: Option<usize> = if cfg!(all(target_os = "linux", target_arch = "x86_64")) {
    Some(0x2d0)
} else if cfg!(all(target_os = "linux", target_arch = "aarch64")) {
    Some(0xd0)
} else {
    None
};

/// Where the OS tid sits in the targets' thread descriptors, for versions
/// whose thread states have no `native_thread_id`: glibc's offset, used only
/// when it holds for the threads running now (every thread state's
/// descriptor gives a live tid of the process, or 0 for a thread that
/// ended, and at least one does). Other C libraries (musl) fail the check.
fn pthread_tid_offset<T: Target>(process: &T, layout: &Layout, interp: usize) -> Option<usize> {
    let offset = GLIBC_PTHREAD_TID?;
    let o = &layout.offsets;
    // The descriptors hold the tids of the target's own PID namespace.
    let tids = process.own_tids();
    let mut seen = Vec::new();
    let mut addr = process
        .read_usize(interp.wrapping_add(o.interp_threads_head))
        .ok()?;
    while addr != 0 && seen.len() < crate::threads::MAX_THREADS {
        let pthread = process
            .read_usize(addr.wrapping_add(o.tstate_thread_id))
            .ok()?;
        let mut raw = [0u8; 4];
        process.read(pthread.wrapping_add(offset), &mut raw).ok()?;
        let tid = i32::from_le_bytes(raw);
        if tid != 0 {
            if !tids.contains(&tid) || seen.contains(&tid) {
                return None;
            }
            seen.push(tid);
        }
        addr = process.read_usize(addr.wrapping_add(o.tstate_next)).ok()?;
    }
    (!seen.is_empty()).then_some(offset)
}

/// The layout for `version`, reading the target's debug offsets on 3.13+.
pub fn layout_for(mem: &impl Memory, version: Version, runtime: usize) -> Result<Layout, Error> {
    let mut flavor = Flavor::for_version(version).ok_or_else(|| unsupported(version))?;
    let mut code_generation = None;
    let mut tlbc = None;
    let mut gil_enabled = None;
    let offsets = match (version.major, version.minor) {
        (2, _) => for_this_arch(generated::OFFSETS_2_7, 7),
        (3, 6) => for_this_arch(generated::OFFSETS_3_6, 6),
        (3, 7) => for_this_arch(generated::OFFSETS_3_7, 7),
        (3, 8) => for_this_arch(generated::OFFSETS_3_8, 8),
        (3, 9) => for_this_arch(generated::OFFSETS_3_9, 9),
        (3, 10) => for_this_arch(generated::OFFSETS_3_10, 10),
        (3, 11) => for_this_arch(generated::OFFSETS_3_11, 11),
        (3, 12) => for_this_arch(generated::OFFSETS_3_12, 12),
        (_, minor) => {
            let mut table = vec![0u8; MAX_TABLE];
            mem.read(runtime, &mut table).what("_Py_DebugOffsets")?;
            if debug_offsets::header(&table).is_none() {
                return Err(Error::UnsupportedVersion {
                    version,
                    detail: ": no _Py_DebugOffsets table at _PyRuntime (needed from 3.13 on)"
                        .into(),
                });
            }
            let free_threaded = debug_offsets::header(&table).is_some_and(|h| h.free_threaded);
            let (head, offsets) = debug_offsets::offsets_from_table(
                &table,
                &for_this_arch(*supplement(minor, free_threaded), minor),
            )?;
            code_generation = debug_offsets::code_generation(&table, minor);
            tlbc = debug_offsets::tlbc(&table, minor);
            gil_enabled = offsets
                .gil_size
                .and_then(|size| debug_offsets::gil_enabled_offset(&table, minor, size));
            flavor.free_threaded = head.free_threaded;
            if (head.version.major, head.version.minor) != (version.major, version.minor) {
                return Err(Error::UnsupportedVersion {
                    version,
                    detail: format!(": its debug offsets table says {}", head.version),
                });
            }
            offsets
        }
    };
    Ok(Layout {
        version,
        offsets,
        flavor,
        pthread_tid: None,
        code_generation,
        gil_enabled,
        tlbc,
    })
}

/// Header-derived offsets that fill what a 3.13+ table does not carry.
fn supplement(minor: u8, free_threaded: bool) -> &'static Offsets {
    match minor {
        13 if free_threaded => &generated::OFFSETS_3_13T,
        13 => &generated::OFFSETS_3_13,
        14 if free_threaded => &generated::OFFSETS_3_14T,
        14 => &generated::OFFSETS_3_14,
        _ if free_threaded => &generated::OFFSETS_3_15T,
        _ => &generated::OFFSETS_3_15,
    }
}

/// The interpreter's first thread state must point back at it.
fn validate(mem: &impl Memory, layout: &Layout, interp: usize) -> Result<(), Error> {
    let o = &layout.offsets;
    let head = mem
        .read_usize(interp + o.interp_threads_head)
        .what("thread list head")?;
    if head == 0 {
        return Ok(());
    }
    let back = mem
        .read_usize(head + o.tstate_interp)
        .what("thread state")?;
    if back != interp {
        return Err(Error::Corrupt {
            what: "interpreter (thread state does not point back)",
            addr: interp,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pyspy_process::FakeMemory;

    fn word(v: usize) -> Vec<u8> {
        (v as u64).to_le_bytes().to_vec()
    }

    fn heap_map(start: usize, end: usize) -> MapRange {
        MapRange {
            start,
            end,
            read: true,
            write: true,
            exec: false,
            offset: 0,
            inode: 0,
            path: Some("[heap]".into()),
        }
    }

    /// A 2.7 interpreter at 0x5000 whose thread state (0x6000) points back,
    /// with a `dict` for `modules`; `.bss` at 0x1000 holds other pointers
    /// first (into the heap, but to no interpreter), then the real one.

    #[test]
    fn scans_bss_for_a_validated_interpreter() {
        let layout = layout_for(&FakeMemory::new(), Version::new(2, 7, 18), 0).unwrap();
        let o = layout.offsets;
        let (interp, tstate, dict, dict_type, name) = (0x5000, 0x6000, 0x7000, 0x7100, 0x7200);
        let mut mem = FakeMemory::new();
        let mut bss = Vec::new();
        for v in [0, 0x5008, 0x7000, 0x1234_5678, interp, 0] {
            bss.extend(word(v));
        }
        mem.place(0x1000, bss);
        mem.place(interp + o.interp_threads_head, word(tstate));
        mem.place(interp + o.interp_modules, word(dict));
        mem.place(tstate + o.tstate_interp, word(interp));
        mem.place(dict + o.ob_type, word(dict_type));
        mem.place(dict_type + o.type_tp_name, word(name));
        mem.place(name, b"dict\0".to_vec());
        let heap = [heap_map(0x5000, 0x8000)];
        let bss = [(0x1000, 48)];
        assert!(plausible_interp(&mem, &layout, interp));
        assert!(!plausible_interp(&mem, &layout, 0x5008));
        assert_eq!(scan_for_interp(&mem, &layout, &bss, &heap), Some(interp));
        // Outside the heap, the same word is not a candidate.
        let elsewhere = [heap_map(0x7000, 0x8000)];
        assert_eq!(scan_for_interp(&mem, &layout, &bss, &elsewhere), None);
        // A thread state that does not point back: refused.
        mem.place(tstate + o.tstate_interp, word(0x9000));
        assert_eq!(scan_for_interp(&mem, &layout, &bss, &heap), None);
        // `modules` not a dict: refused.
        mem.place(tstate + o.tstate_interp, word(interp));
        mem.place(name, b"list\0".to_vec());
        assert!(!plausible_interp(&mem, &layout, interp));
    }
}
