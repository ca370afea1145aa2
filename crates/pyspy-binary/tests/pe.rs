//! PE tests on a DLL built by mingw-w64.

use pyspy_binary::{Binary, Format};

use crate::util::fixture;

/// Set by make-fixtures.sh (`--image-base`).
const IMAGE_BASE: u64 = 0x1_8000_0000;

#[test]
fn dll_exports_and_sections() {
    let bytes = fixture("pe-x86_64.dll");
    let binary = Binary::parse(&bytes).unwrap();
    assert_eq!(binary.format(), Format::Pe);
    // MSVC's eight-character limit: CPython's PyRuntime section is PyRuntim.
    let section = binary.section("PyRuntim").unwrap();
    let runtime = binary.symbol("_PyRuntime").unwrap();
    assert_eq!(section.addr, runtime);
    assert_eq!(runtime, IMAGE_BASE + 0x3000);
    assert_eq!(section.size, 64);
    let data = binary.section_data(&bytes, "PyRuntim").unwrap();
    assert_eq!(data.len(), 64, "raw data padding is not included");
    assert_eq!(data[..8], 0x5079_5275u64.to_le_bytes());
    assert!(binary.symbol("Py_Version").is_some());
    assert!(binary.symbol("counter").is_some());
    assert!(binary.symbol("fixture_function").is_some());
    assert_eq!(binary.symbol_count(), 6, "exactly the exported names");
    // The stripped DLL keeps no COFF symbols: statics are not found.
    assert_eq!(binary.symbol("local_zeroed"), None);

    let bss = binary.bss().unwrap();
    assert_eq!((bss.name.as_str(), bss.file_offset), (".bss", None));
    assert_eq!(binary.symbol("big_zeroed"), Some(bss.addr));
    assert_eq!(binary.section_data(&bytes, ".bss"), None);
}

#[test]
fn dll_load_bias() {
    let binary = Binary::parse(&fixture("pe-x86_64.dll")).unwrap();
    let module_base = 0x7ff8_1234_0000;
    assert_eq!(
        binary.load_bias(module_base, 0),
        Some(module_base - IMAGE_BASE)
    );
    // A page inside the image (as an RVA) gives the same bias.
    assert_eq!(
        binary.load_bias(module_base + 0x3000, 0x3000),
        Some(module_base - IMAGE_BASE)
    );
    // Loaded below the image base: the bias wraps.
    let low = 0x1000_0000;
    let bias = binary.load_bias(low, 0).unwrap();
    assert_eq!(IMAGE_BASE.wrapping_add(bias), low);
    assert_eq!(
        binary.load_bias(module_base, 0x100_0000),
        None,
        "past SizeOfImage"
    );
}
