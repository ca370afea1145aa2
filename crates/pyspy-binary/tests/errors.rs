//! Inputs that are not (supported) binaries give a matching error.

use pyspy_binary::{Binary, Error, Format};

use crate::util::fixture;

fn parse_err(bytes: &[u8]) -> Error {
    match Binary::parse(bytes) {
        Ok(_) => panic!("parsed {} bytes that should fail", bytes.len()),
        Err(e) => e,
    }
}

#[test]
fn unknown_formats() {
    for bytes in [&b""[..], b"\x7fEL", b"#!/bin/sh\necho hi\n", &[0u8; 4096]] {
        let err = parse_err(bytes);
        assert_eq!(err.code(), "EBINFORMAT", "{err}");
    }
    let err = parse_err(b"#!/bin/sh\n");
    assert_eq!(
        err.to_string(),
        "not an ELF, Mach-O or PE file (first bytes: 23 21 2f 62 69 6e 2f 73)"
    );
    assert!(parse_err(b"").to_string().contains("empty"));
}

#[test]
fn unsupported_binaries() {
    for (name, what) in [
        ("elf-i386.o", "32-bit ELF"),
        ("macho-i386.o", "32-bit Mach-O"),
        ("pe-i686.dll", "32-bit PE"),
        ("archive.a", "ar archive"),
    ] {
        let err = parse_err(&fixture(name));
        assert!(err.is_unsupported(), "{name}: {err}");
        assert_eq!(err.code(), "EBINUNSUPPORTED");
        assert!(err.to_string().contains(what), "{name}: {err}");
    }
}

#[test]
fn fat_file_without_the_slice() {
    // A fat header listing only an i386 slice.
    let mut bytes = vec![0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 1];
    for field in [7u32, 3, 0x1000, 0x100, 12] {
        bytes.extend(field.to_be_bytes());
    }
    bytes.resize(0x1100, 0);
    let err = parse_err(&bytes);
    assert!(err.is_unsupported(), "{err}");
    assert!(err.to_string().contains("(it has: i386)"), "{err}");
}

#[test]
fn truncated_elf_names_the_table() {
    let bytes = fixture("elf-x86_64.so");
    // The section header table is at the end of the file.
    let err = parse_err(&bytes[..bytes.len() - 100]);
    assert_eq!(err.code(), "EBINTRUNCATED", "{err}");
    assert!(
        err.to_string()
            .starts_with("truncated ELF file: section header table"),
        "{err}"
    );
    let Error::Truncated { format, len, .. } = err else {
        unreachable!()
    };
    assert_eq!((format, len), (Format::Elf, bytes.len() as u64 - 100));

    let err = parse_err(&bytes[..40]);
    assert!(err.to_string().contains("ELF header"), "{err}");
}

#[test]
fn oversized_symbol_table_is_named() {
    let mut bytes = fixture("elf-x86_64.so");
    let binary = Binary::parse(&bytes).unwrap();
    // sections() skips the null section header 0, so entry i is header i + 1.
    let index = binary
        .sections()
        .iter()
        .position(|s| s.name == ".symtab")
        .unwrap()
        + 1;
    let shoff = u64::from_le_bytes(bytes[0x28..0x30].try_into().unwrap()) as usize;
    let sh_size = shoff + index * 64 + 32;
    bytes[sh_size..sh_size + 8].copy_from_slice(&0x10_0000u64.to_le_bytes());
    let err = parse_err(&bytes);
    assert_eq!(err.code(), "EBINTRUNCATED", "{err}");
    assert!(
        err.to_string()
            .starts_with("truncated ELF file: symbol table .symtab needs"),
        "{err}"
    );
}
