//! Mach-O tests on fixtures built by clang and lld's Mach-O linker.

use pyspy_binary::{Arch, Binary, Format};

use crate::util::fixture;

const MAGIC: [u8; 8] = 0x5079_5275u64.to_le_bytes();

#[test]
fn object_file() {
    let bytes = fixture("macho-x86_64.o");
    let binary = Binary::parse(&bytes).unwrap();
    assert_eq!(binary.format(), Format::MachO);
    // The C symbol `_PyRuntime` is stored as `__PyRuntime`; one `_` is stripped.
    let runtime = binary.symbol("_PyRuntime").unwrap();
    assert_eq!(binary.section("PyRuntime").unwrap().addr, runtime);
    assert_eq!(binary.section("__DATA,PyRuntime").unwrap().addr, runtime);
    assert!(binary.symbol("__PyRuntime").is_none());
    assert!(binary.symbol("Py_Version").is_some());
    assert!(binary.symbol("fixture_function").is_some());
    assert_eq!(
        binary.section_data(&bytes, "PyRuntime").unwrap()[..8],
        MAGIC
    );
    // A file-local symbol (no N_EXT) is still found.
    assert_eq!(
        binary.symbol("local_zeroed"),
        Some(binary.bss().unwrap().addr)
    );
}

#[test]
fn dylib_sections_and_symbols() {
    let bytes = fixture("macho-x86_64.dylib");
    let binary = Binary::parse(&bytes).unwrap();
    assert_eq!(binary.image_offset(), 0);
    assert_eq!(binary.symbol("_PyRuntime"), Some(0x2000));
    assert_eq!(
        binary.section("PyRuntime").unwrap().file_offset,
        Some(0x2000)
    );
    assert_eq!(
        binary.section_data(&bytes, "PyRuntime").unwrap()[..8],
        MAGIC
    );
    assert_eq!(
        binary.section_data(&bytes, "__data").unwrap(),
        7u32.to_le_bytes()
    );
    assert!(binary.symbol("fixture_arch_x86_64").is_some());

    let bss = binary.bss().unwrap();
    assert_eq!(bss, binary.section("__DATA,__bss").unwrap());
    assert_eq!(
        (bss.name.as_str(), bss.size, bss.file_offset),
        ("__bss", 0x1000, None)
    );
    assert_eq!(binary.section_data(&bytes, "__bss"), None);
    // clang puts zero-initialised globals in __common, also zerofill.
    let common = binary.section("__common").unwrap();
    assert_eq!(common.file_offset, None);
    assert_eq!(binary.symbol("big_zeroed"), Some(common.addr));
}

#[test]
fn dylib_load_bias() {
    let binary = Binary::parse(&fixture("macho-x86_64.dylib")).unwrap();
    let base = 0x1_0420_0000;
    // __TEXT: file offset 0 at link address 0.
    assert_eq!(binary.load_bias(base, 0), Some(base));
    // __DATA: file offset 0x2000 at link address 0x2000.
    assert_eq!(binary.load_bias(base + 0x2000, 0x2000), Some(base));
    assert_eq!(binary.load_bias(base, 0x10_0000), None);
}

#[test]
fn fat_file_uses_host_slice() {
    let bytes = fixture("macho-fat.dylib");
    let binary = Binary::parse(&bytes).unwrap();
    let (marker, other) = match Arch::HOST {
        Arch::Aarch64 => ("fixture_arch_arm64", "fixture_arch_x86_64"),
        Arch::X86_64 => ("fixture_arch_x86_64", "fixture_arch_arm64"),
    };
    assert!(binary.symbol(marker).is_some());
    assert!(binary.symbol(other).is_none());
}

#[test]
fn fat_file_slices() {
    let bytes = fixture("macho-fat.dylib");
    // Slice offsets as written by llvm-lipo: x86_64 at 4 KiB, arm64 at 32 KiB.
    for (arch, offset, marker, runtime) in [
        (Arch::X86_64, 0x1000, "fixture_arch_x86_64", 0x2000),
        (Arch::Aarch64, 0x8000, "fixture_arch_arm64", 0x4000),
    ] {
        let binary = Binary::parse_arch(&bytes, arch).unwrap();
        assert_eq!(binary.image_offset(), offset, "{arch}");
        assert!(binary.symbol(marker).is_some(), "{arch}");
        assert_eq!(binary.symbol("_PyRuntime"), Some(runtime), "{arch}");
        // File offsets count from the start of the fat file.
        let section = binary.section("PyRuntime").unwrap();
        assert!(section.file_offset.unwrap() > offset, "{arch}");
        assert_eq!(
            binary.section_data(&bytes, "PyRuntime").unwrap()[..8],
            MAGIC,
            "{arch}"
        );
        // The slice's header is its __TEXT segment's first byte.
        assert_eq!(
            binary.load_bias(0x1_0000_0000, offset),
            Some(0x1_0000_0000),
            "{arch}"
        );
    }
}
