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
fn a_free_threaded_3_14_table_without_bytecode_copy_offsets_is_refused() {
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

/// The `_Py_DebugOffsets` of a free-threaded 3.14t/3.15t as its headers
/// define it (`tests/data/*.hex`, written by scripts/generate-offsets.sh
/// from Debian's headers compiled with -DPy_GIL_DISABLED: no such build
/// runs here), placed at `RUNTIME` in fake memory.
const RUNTIME: usize = 0x10_0000;

fn free_threaded_table(minor: u8) -> (FakeMemory, Version) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/data/debug_offsets_3.{minor}t.hex"));
    let text = std::fs::read_to_string(&path).expect("generated table");
    let hex: String = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .flat_map(|l| l.trim().chars())
        .collect();
    let mut bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let header = pyspy_cpython::debug_offsets_header(&bytes).expect("cookie");
    assert!(header.free_threaded);
    // The reader reads a fixed-size window: the rest of `_PyRuntime`.
    bytes.resize(8192, 0);
    let mut mem = FakeMemory::new();
    mem.place(RUNTIME, bytes);
    (mem, header.version)
}

#[test]
fn free_threaded_3_14t_and_3_15t_tables_match_their_headers() {
    for (minor, gen) in [
        (14, &generated::OFFSETS_3_14T),
        (15, &generated::OFFSETS_3_15T),
    ] {
        let (mem, version) = free_threaded_table(minor);
        assert_eq!((version.major, version.minor), (3, minor));
        let layout = layout_for(&mem, version, RUNTIME).expect("layout from table");
        assert!(layout.flavor.free_threaded);
        assert_eq!(layout.offsets.ob_type, 24, "3.{minor}t");
        let tlbc = layout.tlbc.expect("thread-local bytecode offsets");
        assert!(tlbc.frame_index + 4 <= layout.offsets.frame_size);
        assert!(tlbc.code_array + 8 <= layout.offsets.code_size);
        assert!(layout.gil_enabled.is_some());
        for (name, got, want) in common(&layout.offsets, gen) {
            assert_eq!(
                got, want,
                "3.{minor}t {name}: table says {got:?}, headers say {want:?}"
            );
        }
    }
}

/// Fake objects in the layout of a free-threaded build.
struct Objects<'a> {
    mem: &'a mut FakeMemory,
    o: Offsets,
    next: usize,
}

impl Objects<'_> {
    fn alloc(&mut self, bytes: Vec<u8>) -> usize {
        let at = self.next;
        self.next += (bytes.len() + 15) & !15;
        self.mem.place(at, bytes);
        at
    }
    fn put(b: &mut [u8], at: usize, v: u64) {
        b[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }
    /// A type whose `tp_name` is `name`.
    fn type_named(&mut self, name: &str) -> usize {
        // Names are read 64 bytes at a time.
        let mut c = name.as_bytes().to_vec();
        c.resize(64, 0);
        let cname = self.alloc(c);
        let mut t = vec![0u8; 512];
        Self::put(&mut t, self.o.type_tp_name, cname as u64);
        self.alloc(t)
    }
    /// A compact ASCII `str`.
    fn str_object(&mut self, ty: usize, text: &str) -> usize {
        let o = self.o;
        let ascii = o.unicode_ascii_size.unwrap();
        // The header is read up to the compact (non-ASCII) size.
        let mut b = vec![0u8; (ascii + text.len() + 1).max(o.unicode_compact_size.unwrap() + 8)];
        Self::put(&mut b, o.ob_type, ty as u64);
        Self::put(&mut b, o.unicode_length, text.len() as u64);
        // kind 1, compact, ascii
        b[o.unicode_state.unwrap()] = (1 << 2) | (1 << 5) | (1 << 6);
        b[ascii..ascii + text.len()].copy_from_slice(text.as_bytes());
        self.alloc(b)
    }
    fn bytes_object(&mut self, ty: usize, data: &[u8]) -> usize {
        let o = self.o;
        let mut b = vec![0u8; (o.bytes_ob_sval + data.len() + 1).max(96)];
        Self::put(&mut b, o.ob_type, ty as u64);
        Self::put(&mut b, o.bytes_ob_size, data.len() as u64);
        b[o.bytes_ob_sval..o.bytes_ob_sval + data.len()].copy_from_slice(data);
        self.alloc(b)
    }
}

/// A frame running a thread's own copy of the bytecode (tlbc_index 1) is
/// placed by that copy, not by the code object's bytecode; index 0 by the
/// code object's own.
#[test]
fn free_threaded_3_14t_and_3_15t_lines_come_from_the_threads_bytecode_copy() {
    for minor in [14u8, 15] {
        let (mut mem, version) = free_threaded_table(minor);
        let layout = layout_for(&mem, version, RUNTIME).expect("layout");
        let o = layout.offsets;
        let tlbc = layout.tlbc.unwrap();
        let mut objs = Objects {
            mem: &mut mem,
            o,
            next: 0x40_0000,
        };
        let str_type = objs.type_named("str");
        let bytes_type = objs.type_named("bytes");
        let code_type = objs.type_named("code");
        let name = objs.str_object(str_type, "work");
        let file = objs.str_object(str_type, "job.py");
        // Location table: 4 code units (8 bytes) on line 100+5, then 4 on
        // one more (no-column entries, signed-varint line deltas).
        let table = objs.bytes_object(
            bytes_type,
            &[0x80 | (13 << 3) | 3, 10, 0x80 | (13 << 3) | 3, 2],
        );
        // The thread's copy of the 16 bytes of bytecode, elsewhere.
        let copy = objs.alloc(vec![0u8; 16]);
        let mut array = vec![0u8; 24];
        Objects::put(&mut array, 0, 2); // size: entries 0 and 1
        Objects::put(&mut array, 16, copy as u64);
        let array_at = objs.alloc(array);
        let mut code = vec![0u8; o.code_size + 16];
        Objects::put(&mut code, o.ob_type, code_type as u64);
        Objects::put(&mut code, o.code_filename, file as u64);
        Objects::put(&mut code, o.code_name, name as u64);
        Objects::put(&mut code, o.code_qualname.unwrap(), name as u64);
        Objects::put(&mut code, o.code_linetable, table as u64);
        code[o.code_firstlineno..o.code_firstlineno + 4].copy_from_slice(&100i32.to_le_bytes());
        Objects::put(&mut code, tlbc.code_array, array_at as u64);
        let code_at = objs.alloc(code);
        let own = code_at + o.code_code_adaptive.unwrap();
        // entries[0] is the code object's own bytecode.
        let mut array = vec![0u8; 24];
        Objects::put(&mut array, 0, 2);
        Objects::put(&mut array, 8, own as u64);
        Objects::put(&mut array, 16, copy as u64);
        objs.mem.place(array_at, array);
        let frame = |instr: usize, index: i32| {
            let mut f = vec![0u8; o.frame_size.max(tlbc.frame_index + 4)];
            Objects::put(&mut f, o.frame_executable, code_at as u64);
            Objects::put(&mut f, o.frame_instr_ptr, instr as u64);
            f[tlbc.frame_index..tlbc.frame_index + 4].copy_from_slice(&index.to_le_bytes());
            f
        };
        // Second line in the copy; first line in the code object's own.
        let in_copy = objs.alloc(frame(copy + 10, 1));
        let in_own = objs.alloc(frame(own + 2, 0));
        let mut walker = pyspy_cpython::StackWalker::new(&mem, layout);
        let mut out = Vec::new();
        walker.raw_frames(in_copy, &mut out).expect("walk");
        assert_eq!(
            out.iter().map(|f| f.line).collect::<Vec<_>>(),
            [106],
            "3.{minor}t copy"
        );
        out.clear();
        walker.raw_frames(in_own, &mut out).expect("walk");
        assert_eq!(
            out.iter().map(|f| f.line).collect::<Vec<_>>(),
            [105],
            "3.{minor}t own"
        );
        // An index past the array is refused, not read out of bounds.
        let bad = {
            let at = 0x90_0000;
            let mut m = mem.clone();
            m.place(at, frame(copy + 10, 7));
            let mut w = pyspy_cpython::StackWalker::new(&m, layout);
            let mut out = Vec::new();
            w.raw_frames(at, &mut out).map(|_| out.len())
        };
        assert!(bad.is_err(), "3.{minor}t: tlbc index 7 of 2: {bad:?}");
    }
}
