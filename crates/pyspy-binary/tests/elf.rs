//! ELF tests against real binaries on this machine and the committed fixtures.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use pyspy_binary::{Binary, Format};

use crate::util::{first_mapping, fixture, libpython_minor, parse_maps, pyenv_libpythons};

/// A static with a known address in this very process, found by name in the
/// test binary's `.symtab`.
#[no_mangle]
#[used]
pub static PYSPY_BINARY_TEST_MARKER: [u8; 16] = *b"pyspy-binary-tst";

/// Mutable, so it lands in the writable segment rather than next to the marker.
#[no_mangle]
#[used]
pub static mut PYSPY_BINARY_TEST_COUNTER: u64 = 42;

#[no_mangle]
pub extern "C" fn pyspy_binary_test_function() -> u64 {
    7
}

fn self_exe() -> (PathBuf, Vec<u8>) {
    let path = std::fs::canonicalize("/proc/self/exe").unwrap();
    let bytes = std::fs::read(&path).unwrap();
    (path, bytes)
}

#[test]
fn test_binary_symbols_plus_bias_are_runtime_addresses() {
    let (path, bytes) = self_exe();
    let binary = Binary::parse(&bytes).unwrap();
    assert_eq!(binary.format(), Format::Elf);
    let maps = parse_maps(&std::fs::read_to_string("/proc/self/maps").unwrap());
    let first = first_mapping(&maps, &path);
    let bias = binary.load_bias(first.start, first.offset).unwrap();

    let marker = std::ptr::addr_of!(PYSPY_BINARY_TEST_MARKER) as u64;
    let counter = std::ptr::addr_of!(PYSPY_BINARY_TEST_COUNTER) as u64;
    let function = pyspy_binary_test_function as *const () as u64;
    let symbol = |name| binary.symbol(name).unwrap().wrapping_add(bias);
    assert_eq!(symbol("PYSPY_BINARY_TEST_MARKER"), marker);
    assert_eq!(symbol("PYSPY_BINARY_TEST_COUNTER"), counter);
    assert_eq!(symbol("pyspy_binary_test_function"), function);
    assert_ne!(bias, 0, "Rust test binaries are PIE, so they get a bias");

    // The mappings that hold the statics give the same bias.
    for addr in [marker, counter, function] {
        let m = maps
            .iter()
            .find(|m| m.start <= addr && addr < m.end)
            .unwrap();
        assert_eq!(binary.load_bias(m.start, m.offset), Some(bias), "{m:x?}");
    }
}

#[test]
fn test_binary_sections() {
    let (_, bytes) = self_exe();
    let binary = Binary::parse(&bytes).unwrap();
    assert!(
        binary.section(".symtab").is_some(),
        "test binaries are not stripped"
    );
    assert!(binary.symbol_count() > 100);
    let bss = binary.bss().unwrap();
    assert_eq!(bss, binary.section(".bss").unwrap());
    assert_eq!(bss.file_offset, None);
    assert_eq!(binary.section_data(&bytes, ".bss"), None);
    let rodata = binary.section_data(&bytes, ".rodata").unwrap();
    assert!(rodata.windows(16).any(|w| w == b"pyspy-binary-tst"));
    assert!(binary.section(".no-such-section").is_none());
    assert!(binary.symbol("no_such_symbol_anywhere").is_none());
}

/// Reads `addr` from `binary`'s file contents: the section that holds it.
fn read_u64(binary: &Binary, bytes: &[u8], addr: u64) -> u64 {
    let section = (binary.sections().iter())
        .find(|s| s.file_offset.is_some() && s.addr <= addr && addr < s.addr + s.size)
        .unwrap_or_else(|| panic!("no section with contents holds {addr:#x}"));
    let data = binary.section_data(bytes, &section.name).unwrap();
    let at = (addr - section.addr) as usize;
    u64::from_le_bytes(data[at..at + 8].try_into().unwrap())
}

/// Checks what pyspy-cpython will rely on in a CPython 3.`minor` binary.
fn check_cpython(binary: &Binary, bytes: &[u8], minor: u32, what: &str) {
    if minor < 7 {
        return; // _PyRuntime appeared in 3.7.
    }
    let runtime = binary
        .symbol("_PyRuntime")
        .unwrap_or_else(|| panic!("{what}: _PyRuntime"));
    match binary.section(".PyRuntime") {
        Some(section) => assert_eq!(section.addr, runtime, "{what}: .PyRuntime"),
        None => assert!(
            minor < 10,
            "{what}: 3.{minor} should have a .PyRuntime section"
        ),
    }
    if minor >= 11 {
        let version = binary
            .symbol("Py_Version")
            .unwrap_or_else(|| panic!("{what}: Py_Version"));
        let hex = read_u64(binary, bytes, version) as u32;
        assert_eq!(hex >> 16, 0x0300 | minor, "{what}: Py_Version is {hex:#x}");
    }
    let bss = binary.bss().unwrap();
    assert!(bss.size > 0 && bss.file_offset.is_none(), "{what}: {bss:?}");
}

#[test]
fn debian_python311_is_stripped_but_has_dynsym() {
    let path = "/usr/bin/python3.11";
    let bytes = std::fs::read(path).expect("Debian 12 ships /usr/bin/python3.11");
    let binary = Binary::parse(&bytes).unwrap();
    assert!(binary.section(".symtab").is_none(), "Debian strips .symtab");
    assert!(binary.section(".dynsym").is_some());
    check_cpython(&binary, &bytes, 11, path);
    // A non-PIE executable: loaded at its link-time address.
    assert_eq!(binary.load_bias(0x40_0000, 0), Some(0));
}

/// Runs `python`, which prints the runtime address of each of `symbols` and
/// its own /proc/self/maps.
fn ask_python(python: &Path, symbols: &[&str]) -> (Vec<(String, u64)>, String) {
    let script = format!(
        "import ctypes\n\
         for name in {symbols:?}:\n\
         \x20   print(name, ctypes.addressof(ctypes.c_char.in_dll(ctypes.pythonapi, name)))\n\
         print(open('/proc/self/maps').read())"
    );
    let out = Command::new(python).args(["-c", &script]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let addrs = (lines.by_ref().take(symbols.len()))
        .map(|l| {
            let (name, addr) = l.split_once(' ').unwrap();
            (name.to_owned(), addr.parse().unwrap())
        })
        .collect();
    (addrs, lines.collect::<Vec<_>>().join("\n"))
}

/// The runtime addresses Python reports equal symbol + bias computed from its
/// maps, for the ELF file at `file` (the executable or libpython).
fn check_live_bias(python: &Path, file: &Path, symbols: &[&str]) -> u64 {
    let bytes = std::fs::read(file).unwrap();
    let binary = Binary::parse(&bytes).unwrap();
    let (addrs, maps) = ask_python(python, symbols);
    let maps = parse_maps(&maps);
    let first = first_mapping(&maps, file);
    let bias = binary.load_bias(first.start, first.offset).unwrap();
    for (name, runtime) in addrs {
        let link = binary.symbol(&name).unwrap();
        assert_eq!(
            link.wrapping_add(bias),
            runtime,
            "{name} in {}",
            file.display()
        );
    }
    bias
}

#[test]
fn debian_python311_bias_in_live_process() {
    let python = Path::new("/usr/bin/python3.11");
    let bias = check_live_bias(python, python, &["_PyRuntime", "Py_Version"]);
    assert_eq!(bias, 0, "Debian's python3.11 is not PIE");
}

#[test]
fn pyenv_libpythons_parse_and_resolve() {
    for path in pyenv_libpythons() {
        let bytes = std::fs::read(&path).unwrap();
        let start = Instant::now();
        let binary = Binary::parse(&bytes).unwrap();
        let elapsed = start.elapsed();
        eprintln!(
            "{}: {} MB, {} symbols, parsed in {elapsed:?}",
            path.display(),
            bytes.len() / 1_000_000,
            binary.symbol_count()
        );
        assert!(
            binary.section(".symtab").is_some(),
            "pyenv builds keep .symtab"
        );
        check_cpython(
            &binary,
            &bytes,
            libpython_minor(&path),
            &path.to_string_lossy(),
        );
    }
}

#[test]
fn pyenv_libpython_bias_in_live_process() {
    for lib in pyenv_libpythons() {
        let minor = libpython_minor(&lib);
        if minor < 7 {
            continue;
        }
        let bin = lib.parent().unwrap().parent().unwrap().join("bin");
        let python = bin.join(format!("python3.{minor}"));
        let symbols: &[&str] = if minor >= 11 {
            &["_PyRuntime", "Py_Version"]
        } else {
            &["_PyRuntime"]
        };
        let bias = check_live_bias(&python, &lib, symbols);
        assert_ne!(bias, 0, "shared libraries are loaded at a bias");
    }
}

#[test]
fn fixture_shared_object() {
    let bytes = fixture("elf-x86_64.so");
    let binary = Binary::parse(&bytes).unwrap();
    assert_eq!(binary.format(), Format::Elf);
    let runtime = binary.symbol("_PyRuntime").unwrap();
    assert_eq!(binary.section(".PyRuntime").unwrap().addr, runtime);
    let data = binary.section_data(&bytes, ".PyRuntime").unwrap();
    assert_eq!(data.len(), 64);
    assert_eq!(data[..8], 0x5079_5275u64.to_le_bytes());
    assert_eq!(
        binary.section_data(&bytes, ".data").unwrap(),
        7u32.to_le_bytes()
    );
    assert_eq!(binary.bss().unwrap().size, 0x5000);
    assert_eq!(
        binary.symbol("big_zeroed"),
        Some(binary.bss().unwrap().addr)
    );
    assert!(binary.symbol("fixture_function").is_some());
    // The first PT_LOAD starts at offset 0 and address 0.
    let base = 0x7f12_3456_0000;
    assert_eq!(binary.load_bias(base, 0), Some(base));
    // The writable part of the RW segment (file offset 0x2ef0, address
    // 0x3ef0), mapped from file page 0x3000 at address 0x4000.
    assert_eq!(binary.load_bias(base + 0x4000, 0x3000), Some(base));
    assert_eq!(
        binary.load_bias(base, 0x10_0000),
        None,
        "past every segment"
    );
}

#[test]
fn fixture_non_pie_executable() {
    let bytes = fixture("elf-x86_64-nopie");
    let binary = Binary::parse(&bytes).unwrap();
    assert_eq!(binary.symbol("_PyRuntime"), Some(0x40_3020));
    assert_eq!(binary.load_bias(0x40_0000, 0), Some(0));
    assert_eq!(binary.load_bias(0x40_3000, 0x3000), Some(0));
}

#[test]
fn without_section_headers_dynsym_comes_from_dynamic_segment() {
    // What `sstrip` does: drop the section header table from the header.
    let mut bytes = fixture("elf-x86_64.so");
    bytes[0x28..0x30].fill(0); // e_shoff
    bytes[0x3c..0x40].fill(0); // e_shnum, e_shstrndx
    let binary = Binary::parse(&bytes).unwrap();
    assert!(binary.sections().is_empty());
    assert_eq!(binary.bss(), None);
    assert_eq!(binary.symbol("_PyRuntime"), Some(0x4020));
    assert!(binary.symbol("Py_Version").is_some());
    assert_eq!(binary.symbol("local_zeroed"), None, "only in .symtab");
    assert_eq!(
        binary.load_bias(0x7f00_0000_0000, 0),
        Some(0x7f00_0000_0000)
    );
}
