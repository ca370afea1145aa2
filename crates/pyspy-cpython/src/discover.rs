//! Finding the interpreter in a process: which mapped binary is CPython,
//! its version, where `_PyRuntime` lives, and the layout to read it with.
//! Every candidate is validated before it is used.

use pyspy_binary::Binary;
use pyspy_process::{MapRange, Memory, MemoryExt, Process};

use crate::debug_offsets::{self, MAX_TABLE};
use crate::error::{Error, ReadContext};
use crate::generated;
use crate::{Flavor, Layout, Offsets, Version};

/// Most bytes of `.bss` scanned for a version string.
const MAX_BSS_SCAN: usize = 8 << 20;

/// A located interpreter.
#[derive(Debug, Clone)]
pub struct Interpreter {
    /// Layout (version, offsets, semantics).
    pub layout: Layout,
    /// Remote address of `_PyRuntime`.
    pub runtime: usize,
    /// Remote address of the main `PyInterpreterState`.
    pub interp: usize,
    /// The binary that holds the interpreter (executable or libpython), as
    /// the target sees it.
    pub binary_path: String,
}

/// Finds and validates the interpreter of `process`.
pub fn find_interpreter(process: &Process) -> Result<Interpreter, Error> {
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
    runtime: usize,
    binary_path: String,
}

fn probe_binary(process: &Process, map: &MapRange) -> Result<Option<Probe>, Error> {
    let path = map.path.clone().unwrap_or_default();
    let bytes = process.read_mapped_file(map)?;
    let Ok(binary) = Binary::parse(&bytes) else {
        return Ok(None);
    };
    let Some(bias) = binary.load_bias(map.start as u64, map.offset) else {
        return Ok(None);
    };
    let runtime = binary
        .symbol("_PyRuntime")
        .or_else(|| binary.section(".PyRuntime").map(|s| s.addr))
        .map(|a| a.wrapping_add(bias) as usize);
    let mut version = None;
    if let Some(sym) = binary.symbol("Py_Version") {
        let hex = process
            .read_u64(sym.wrapping_add(bias) as usize)
            .what("Py_Version")?
            & 0xffff_ffff;
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
    match runtime {
        Some(runtime) => Ok(Some(Probe {
            version,
            runtime,
            binary_path: path,
        })),
        None => Err(Error::NotPython(format!(
            "Python {version} in {path}: found no _PyRuntime"
        ))),
    }
}

fn unsupported(version: Version) -> Error {
    Error::UnsupportedVersion {
        version,
        detail: ": pyspy-node reads CPython 3.11 and newer".into(),
    }
}

/// Versions before 3.11 have no `Py_Version`: read the `sys.version` text
/// that `Py_GetVersion` keeps in a static buffer (a local symbol in
/// unstripped builds), else scan the binary's `.bss` for it.
fn version_from_memory(process: &Process, binary: &Binary, bias: u64) -> Option<Version> {
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

fn finish(process: &Process, p: Probe) -> Result<Interpreter, Error> {
    let layout = layout_for(process, p.version, p.runtime)?;
    let o = &layout.offsets;
    let interp = process
        .read_usize(p.runtime + o.runtime_interpreters_head)
        .what("interpreter list")?;
    if interp == 0 {
        return Err(Error::NotPython(format!(
            "Python {} in process {} has no interpreter yet (starting up or shutting down)",
            p.version,
            process.pid()
        )));
    }
    validate(process, &layout, interp)?;
    Ok(Interpreter {
        layout,
        runtime: p.runtime,
        interp,
        binary_path: p.binary_path,
    })
}

/// The layout for `version`, reading the target's debug offsets on 3.13+.
pub fn layout_for(mem: &impl Memory, version: Version, runtime: usize) -> Result<Layout, Error> {
    let flavor = Flavor::for_version(version).ok_or_else(|| unsupported(version))?;
    let offsets = match version.minor {
        11 => generated::OFFSETS_3_11,
        12 => generated::OFFSETS_3_12,
        minor => {
            let mut table = vec![0u8; MAX_TABLE];
            mem.read(runtime, &mut table).what("_Py_DebugOffsets")?;
            if debug_offsets::header(&table).is_none() {
                return Err(Error::UnsupportedVersion {
                    version,
                    detail: ": no _Py_DebugOffsets table at _PyRuntime (needed from 3.13 on)"
                        .into(),
                });
            }
            let (head, offsets) = debug_offsets::offsets_from_table(&table, supplement(minor))?;
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
    })
}

/// Header-derived offsets that fill what a 3.13+ table does not carry.
fn supplement(minor: u8) -> &'static Offsets {
    match minor {
        13 => &generated::OFFSETS_3_13,
        14 => &generated::OFFSETS_3_14,
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

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn is_libpython(path: &str) -> bool {
    let name = basename(path);
    name.starts_with("libpython") && name.contains(".so")
}

fn is_python_binary(path: &str, exe: &str) -> bool {
    let name = basename(path);
    path == exe || is_libpython(path) || (name.starts_with("python") && !name.ends_with(".py"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_python_binaries() {
        assert!(is_libpython("/usr/lib/libpython3.12.so.1.0"));
        assert!(is_libpython(
            "/root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0"
        ));
        assert!(!is_libpython("/usr/lib/libboost_python3.so"));
        assert!(is_python_binary(
            "/usr/bin/python3.14",
            "/usr/bin/python3.14"
        ));
        assert!(is_python_binary("/opt/app/bin/myapp", "/opt/app/bin/myapp"));
        assert!(!is_python_binary(
            "/usr/lib/x86_64-linux-gnu/libc.so.6",
            "/usr/bin/python3"
        ));
    }
}
