//! The `_Py_DebugOffsets` reader against the tables inside real Debian
//! 3.13/3.14/3.15 binaries (installed by `test/pythons/install.sh`), checked
//! field by field against offsets generated from the same versions' headers.

use std::path::PathBuf;

use pyspy_binary::Binary;
use pyspy_cpython::{layout_for, Offsets, Version};
use pyspy_process::FakeMemory;

fn roots() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.cache/pythons/roots")
}

/// The free-threaded 3.13t that `scripts/freethreaded.mjs` builds (same path
/// rules: `$PYSPY_PYTHON_313T`, else the XDG cache).
fn free_threaded_313() -> PathBuf {
    if let Some(p) = std::env::var_os("PYSPY_PYTHON_313T") {
        return p.into();
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache"));
    cache.join("pyspy-node/cpython-3.13.5t/bin/python3.13t")
}

/// The `.PyRuntime` section of a Debian interpreter, placed in fake memory at
/// its link-time address (which is where `_PyRuntime` points in the file).
fn runtime_table(minor: u8) -> (FakeMemory, usize, Version) {
    runtime_table_of(roots().join(format!("debian-3.{minor}/usr/bin/python3.{minor}")))
}

fn runtime_table_of(path: PathBuf) -> (FakeMemory, usize, Version) {
    let bytes = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run `node scripts/setup.mjs` first (npm test does)",
            path.display()
        )
    });
    let binary = Binary::parse(&bytes).expect("parse interpreter");
    let section = binary.section(".PyRuntime").expect(".PyRuntime section");
    let data = binary
        .section_data(&bytes, ".PyRuntime")
        .expect("section data")
        .to_vec();
    assert_eq!(
        binary.symbol("_PyRuntime"),
        Some(section.addr),
        "_PyRuntime starts the section"
    );
    let version = pyspy_cpython::debug_offsets_header(&data)
        .expect("cookie")
        .version;
    let mut mem = FakeMemory::new();
    mem.place(section.addr as usize, data);
    (mem, section.addr as usize, version)
}

/// One compared field: name, from the table, from the headers (`None` for
/// a field the version does not have).
type Compared = (&'static str, Option<usize>, Option<usize>);

/// Plain and optional offsets alike, for comparing.
trait AsOffset {
    fn as_offset(&self) -> Option<usize>;
}
impl AsOffset for usize {
    fn as_offset(&self) -> Option<usize> {
        Some(*self)
    }
}
impl AsOffset for Option<usize> {
    fn as_offset(&self) -> Option<usize> {
        *self
    }
}

fn check(minor: u8, expected: impl Fn(&Offsets) -> Vec<Compared>) {
    let (mem, runtime, version) = runtime_table(minor);
    assert_eq!((version.major, version.minor), (3, minor));
    let layout = layout_for(&mem, version, runtime).expect("layout from table");
    assert!(!layout.flavor.free_threaded);
    assert_eq!(layout.gil_enabled, None);
    for (name, got, want) in expected(&layout.offsets) {
        assert_eq!(
            got, want,
            "3.{minor} {name}: table says {got:?}, headers say {want:?}"
        );
    }
}

macro_rules! same {
    ($got:expr, $want:expr, [$($f:ident),*]) => {
        vec![$((stringify!($f), $got.$f.as_offset(), $want.$f.as_offset())),*]
    };
}

fn common(got: &Offsets, want: &Offsets) -> Vec<Compared> {
    same!(
        got,
        want,
        [
            runtime_interpreters_head,
            interp_next,
            interp_threads_head,
            interp_modules,
            tstate_next,
            tstate_interp,
            tstate_thread_id,
            tstate_native_thread_id,
            tstate_datastack_chunk,
            frame_previous,
            frame_executable,
            frame_instr_ptr,
            frame_localsplus,
            code_filename,
            code_name,
            code_qualname,
            code_linetable,
            code_firstlineno,
            code_argcount,
            code_localsplusnames,
            code_localspluskinds,
            code_code_adaptive,
            ob_type,
            type_tp_name,
            type_tp_flags,
            type_tp_basicsize,
            type_tp_dictoffset,
            heap_type_cached_keys,
            tuple_ob_size,
            tuple_ob_item,
            list_ob_size,
            list_ob_item,
            dict_ma_keys,
            dict_ma_values,
            float_ob_fval,
            long_lv_tag,
            long_ob_digit,
            bytes_ob_size,
            bytes_ob_sval,
            unicode_state,
            unicode_length,
            unicode_ascii_size,
            unicode_compact_size
        ]
    )
}

/// `generated.rs` names its struct through `crate::offsets`.
mod offsets {
    pub use pyspy_cpython::Offsets;
}

#[path = "../src/generated.rs"]
#[rustfmt::skip]
#[allow(dead_code)]
mod generated;

#[test]
fn debian_3_13_table_matches_headers() {
    check(13, |o| common(o, &generated::OFFSETS_3_13));
}

#[test]
fn debian_3_14_table_matches_headers() {
    check(14, |o| common(o, &generated::OFFSETS_3_14));
}

#[test]
fn debian_3_15_table_matches_headers() {
    check(15, |o| common(o, &generated::OFFSETS_3_15));
}

#[test]
fn a_table_with_an_offset_outside_its_struct_is_refused() {
    let (mut mem, runtime, version) = runtime_table(14);
    let mut bytes = vec![0u8; 2048];
    use pyspy_process::Memory;
    mem.read(runtime, &mut bytes).unwrap();
    // thread_state.size sits after the cookie/version/flag (24 bytes), the
    // runtime group (3 words) and the 3.14 interpreter group (16 words).
    let at = 24 + 3 * 8 + 16 * 8;
    bytes[at..at + 8].copy_from_slice(&8u64.to_le_bytes());
    mem.place(runtime, bytes);
    let err = layout_for(&mem, version, runtime).unwrap_err();
    assert_eq!(err.code(), "EUNSUPPORTED");
    assert!(err.to_string().contains("thread_state"), "{err}");
}

#[test]
fn free_threaded_3_13t_table_matches_headers() {
    let (mem, runtime, version) = runtime_table_of(free_threaded_313());
    assert_eq!((version.major, version.minor), (3, 13));
    let layout = layout_for(&mem, version, runtime).expect("layout from table");
    assert!(layout.flavor.free_threaded);
    assert_eq!(layout.flavor.managed_dict_offset(), 8);
    // Every object field moves by 16 (ob_tid, padding, mutex, gc bits, local
    // and shared reference counts come before ob_type).
    assert_eq!(layout.offsets.ob_type, 24);
    // `enabled` is an int inside the GIL struct.
    let gil = &generated::OFFSETS_3_13T;
    let enabled = layout.gil_enabled.expect("GIL enabled flag");
    assert!(enabled + 4 <= gil.gil_size.unwrap());
    for (name, got, want) in common(&layout.offsets, gil) {
        assert_eq!(
            got, want,
            "3.13t {name}: table says {got:?}, headers say {want:?}"
        );
    }
}

#[test]
fn free_threaded_tables_newer_than_3_13_are_refused() {
    let (mut mem, runtime, version) = runtime_table(14);
    let mut bytes = vec![0u8; 2048];
    use pyspy_process::Memory;
    mem.read(runtime, &mut bytes).unwrap();
    // The free-threaded flag follows the cookie and the version.
    bytes[16] = 1;
    mem.place(runtime, bytes);
    let err = layout_for(&mem, version, runtime).unwrap_err();
    assert_eq!(err.code(), "EUNSUPPORTED");
    assert!(err.to_string().contains("free-threaded"), "{err}");
}
