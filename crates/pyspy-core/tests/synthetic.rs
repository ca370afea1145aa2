//! A core file built byte by byte: one thread, one dumped segment, one
//! segment left to a file named by NT_FILE. Checks reads across sources,
//! the memory map, and the errors for damaged input.

use std::io::Write;

use pyspy_core::{CoreFile, CoreOptions};
use pyspy_process::{Memory, Target};

fn note(kind: u32, desc: &[u8]) -> Vec<u8> {
    let mut n = Vec::new();
    n.extend_from_slice(&5u32.to_le_bytes());
    n.extend_from_slice(&(desc.len() as u32).to_le_bytes());
    n.extend_from_slice(&kind.to_le_bytes());
    n.extend_from_slice(b"CORE\0\0\0\0");
    n.extend_from_slice(desc);
    while n.len() % 4 != 0 {
        n.push(0);
    }
    n
}

/// A core: thread 77 in futex(0x5000); 0x1000..0x1010 dumped ("0123456789abcdef");
/// 0x2000..0x3000 mapped from `file` at offset 0x100, not dumped.
fn core_bytes(file: &str) -> Vec<u8> {
    let mut prstatus = vec![0u8; 336];
    prstatus[32..36].copy_from_slice(&77u32.to_le_bytes());
    prstatus[112 + 8 * 14..112 + 8 * 15].copy_from_slice(&0x5000u64.to_le_bytes());
    prstatus[112 + 8 * 15..112 + 8 * 16].copy_from_slice(&202u64.to_le_bytes());
    let mut nt_file = Vec::new();
    // count, page size, then (start, end, offset in pages).
    for v in [1u64, 0x100, 0x2000, 0x3000, 0x1] {
        nt_file.extend_from_slice(&v.to_le_bytes());
    }
    nt_file.extend_from_slice(file.as_bytes());
    nt_file.push(0);
    let notes = [note(1, &prstatus), note(0x4649_4c45, &nt_file)].concat();
    let data = b"0123456789abcdef";
    let phoff = 64u64;
    let notes_at = phoff + 3 * 56;
    let data_at = notes_at + notes.len() as u64;
    let mut b = vec![0u8; 64];
    b[..4].copy_from_slice(b"\x7fELF");
    b[4] = 2;
    b[5] = 1;
    b[16..18].copy_from_slice(&4u16.to_le_bytes());
    b[18..20].copy_from_slice(&62u16.to_le_bytes());
    b[32..40].copy_from_slice(&phoff.to_le_bytes());
    b[54..56].copy_from_slice(&56u16.to_le_bytes());
    b[56..58].copy_from_slice(&3u16.to_le_bytes());
    let ph = |kind: u32, flags: u32, off: u64, vaddr: u64, filesz: u64, memsz: u64| {
        let mut p = vec![0u8; 56];
        p[..4].copy_from_slice(&kind.to_le_bytes());
        p[4..8].copy_from_slice(&flags.to_le_bytes());
        p[8..16].copy_from_slice(&off.to_le_bytes());
        p[16..24].copy_from_slice(&vaddr.to_le_bytes());
        p[32..40].copy_from_slice(&filesz.to_le_bytes());
        p[40..48].copy_from_slice(&memsz.to_le_bytes());
        p
    };
    b.extend(ph(4, 0, notes_at, 0, notes.len() as u64, 0));
    b.extend(ph(1, 6, data_at, 0x1000, 16, 16));
    b.extend(ph(1, 4, data_at + 16, 0x2000, 0, 0x1000));
    b.extend(notes);
    b.extend_from_slice(data);
    b
}

fn write(dir: &std::path::Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::File::create(&p).unwrap().write_all(bytes).unwrap();
    p
}

#[test]
fn reads_dumped_and_file_backed_memory() {
    let dir = std::env::temp_dir().join(format!("pyspy-core-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut lib = vec![0u8; 0x100];
    lib.extend_from_slice(b"from the file");
    let lib = write(&dir, "lib.so", &lib);
    let core = write(&dir, "core", &core_bytes(lib.to_str().unwrap()));
    let c = CoreFile::open(&core, CoreOptions::default()).unwrap();
    let mut buf = [0u8; 4];
    c.read(0x1004, &mut buf).unwrap();
    assert_eq!(&buf, b"4567");
    let mut buf = [0u8; 13];
    c.read(0x2000, &mut buf).unwrap();
    assert_eq!(&buf, b"from the file");
    assert!(
        c.read(0x100c, &mut [0u8; 8]).is_err(),
        "past the dumped bytes"
    );
    assert!(c.read(0x9000, &mut [0u8; 1]).is_err(), "unmapped");
    assert_eq!(c.tids(), vec![77]);
    assert_eq!(
        (c.threads()[0].syscall(), c.threads()[0].arg0()),
        (202, 0x5000)
    );
    let maps = c.maps().unwrap();
    assert_eq!(maps.len(), 2);
    assert_eq!(maps[1].path.as_deref(), lib.to_str());

    // A file it names, gone: found again next to --executable.
    let moved = dir.join("elsewhere");
    std::fs::create_dir_all(&moved).unwrap();
    std::fs::rename(&lib, moved.join("lib.so")).unwrap();
    let c = CoreFile::open(&core, CoreOptions::default()).unwrap();
    assert!(c.read(0x2000, &mut [0u8; 4]).is_err());
    let c = CoreFile::open(
        &core,
        CoreOptions {
            executable: Some(moved.join("python")),
            sysroot: None,
        },
    )
    .unwrap();
    c.read(0x2000, &mut [0u8; 4]).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn damaged_input_is_refused_with_a_reason() {
    let dir = std::env::temp_dir().join(format!("pyspy-core-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let full = core_bytes("/nonexistent/lib.so");
    let cases: [(&str, Vec<u8>, &str); 4] = [
        ("text", b"hello".to_vec(), "not an ELF file"),
        ("truncated", full[..full.len() - 4].to_vec(), "truncated"),
        ("headers-only", full[..100].to_vec(), "truncated"),
        (
            "executable",
            [&full[..16], &2u16.to_le_bytes()[..], &full[18..]].concat(),
            "not a core file",
        ),
    ];
    for (name, bytes, why) in cases {
        let p = write(&dir, name, &bytes);
        let err = CoreFile::open(&p, CoreOptions::default())
            .err()
            .unwrap_or_else(|| panic!("{name} opened"));
        assert_eq!(err.code(), "EBADCORE", "{name}");
        assert!(err.to_string().contains(why), "{name}: {err}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A core with an auxiliary vector naming the vDSO at 0x7000 (dumped, no
/// file) and an `NT_FILE` entry for `lib` at 0x4000 from offset 0x1000 with
/// no program header at all (as gcore leaves out the code of binaries).
fn gcore_like(lib: &str) -> Vec<u8> {
    let mut prstatus = vec![0u8; 336];
    prstatus[32..36].copy_from_slice(&5u32.to_le_bytes());
    let mut auxv = Vec::new();
    for v in [33u64, 0x7000, 0, 0] {
        auxv.extend_from_slice(&v.to_le_bytes());
    }
    let mut nt_file = Vec::new();
    for v in [1u64, 0x1000, 0x4000, 0x5000, 1] {
        nt_file.extend_from_slice(&v.to_le_bytes());
    }
    nt_file.extend_from_slice(lib.as_bytes());
    nt_file.push(0);
    let notes = [
        note(1, &prstatus),
        note(6, &auxv),
        note(0x4649_4c45, &nt_file),
    ]
    .concat();
    let phoff = 64u64;
    let notes_at = phoff + 2 * 56;
    let vdso_at = notes_at + notes.len() as u64;
    let mut b = vec![0u8; 64];
    b[..4].copy_from_slice(b"\x7fELF");
    b[4] = 2;
    b[5] = 1;
    b[16..18].copy_from_slice(&4u16.to_le_bytes());
    b[18..20].copy_from_slice(&62u16.to_le_bytes());
    b[32..40].copy_from_slice(&phoff.to_le_bytes());
    b[54..56].copy_from_slice(&56u16.to_le_bytes());
    b[56..58].copy_from_slice(&2u16.to_le_bytes());
    for (kind, flags, off, vaddr, size) in [
        (4u32, 0u32, notes_at, 0u64, notes.len() as u64),
        (1, 5, vdso_at, 0x7000, 0x10),
    ] {
        let mut p = vec![0u8; 56];
        p[..4].copy_from_slice(&kind.to_le_bytes());
        p[4..8].copy_from_slice(&flags.to_le_bytes());
        p[8..16].copy_from_slice(&off.to_le_bytes());
        p[16..24].copy_from_slice(&vaddr.to_le_bytes());
        p[32..40].copy_from_slice(&size.to_le_bytes());
        p[40..48].copy_from_slice(&size.to_le_bytes());
        b.extend(p);
    }
    b.extend(notes);
    b.extend_from_slice(&[0x7f; 16]);
    b
}

/// An ELF file whose segments are r-- at offset 0 and r-x at 0x1000.
fn text_at_0x1000() -> Vec<u8> {
    let mut b = vec![0u8; 64];
    b[..4].copy_from_slice(b"\x7fELF");
    b[4] = 2;
    b[5] = 1;
    b[32..40].copy_from_slice(&64u64.to_le_bytes());
    b[54..56].copy_from_slice(&56u16.to_le_bytes());
    b[56..58].copy_from_slice(&2u16.to_le_bytes());
    for (flags, off) in [(4u32, 0u64), (5, 0x1000)] {
        let mut p = vec![0u8; 56];
        p[..4].copy_from_slice(&1u32.to_le_bytes());
        p[4..8].copy_from_slice(&flags.to_le_bytes());
        p[8..16].copy_from_slice(&off.to_le_bytes());
        p[32..40].copy_from_slice(&0x1000u64.to_le_bytes());
        b.extend(p);
    }
    b.resize(0x2000, 0xcc);
    b
}

#[test]
fn maps_name_the_vdso_and_find_code_gcore_left_out() {
    let dir = std::env::temp_dir().join(format!("pyspy-core-maps-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let lib = write(&dir, "libtext.so", &text_at_0x1000());
    let core = write(&dir, "core", &gcore_like(lib.to_str().unwrap()));
    let c = CoreFile::open(&core, CoreOptions::default()).unwrap();
    let maps = c.maps().unwrap();
    let text = maps.iter().find(|m| m.start == 0x4000).unwrap();
    assert!(text.exec, "executable, from the binary's own segment flags");
    assert_eq!(text.offset, 0x1000);
    let vdso = maps.iter().find(|m| m.start == 0x7000).unwrap();
    assert_eq!(vdso.path.as_deref(), Some("[vdso]"));
    assert!(vdso.exec);
    // Code is read from the file: the unwinder's view of it.
    let mut buf = [0u8; 2];
    c.read(0x4000, &mut buf).unwrap();
    assert_eq!(buf, [0xcc, 0xcc]);

    // Without the file, a mapping gcore left out is taken for code.
    std::fs::remove_file(&lib).unwrap();
    let c = CoreFile::open(&core, CoreOptions::default()).unwrap();
    let maps = c.maps().unwrap();
    assert!(maps.iter().find(|m| m.start == 0x4000).unwrap().exec);
    std::fs::remove_dir_all(&dir).unwrap();
}
