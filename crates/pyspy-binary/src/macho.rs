//! Mach-O: sections and segments from the load commands, symbols from the
//! `LC_SYMTAB` symbol table, and slice selection in fat files.
//!
//! Sections are named without their segment (`__bss`, `PyRuntime`); the
//! segment is kept so `"__DATA,__bss"` lookups work. Symbol names lose the
//! `_` that the C compiler prefixes, so C's `_PyRuntime` (stored as
//! `__PyRuntime`) is found as `_PyRuntime`, as on ELF.

use goblin::mach::constants::cputype::{
    CPU_TYPE_ARM, CPU_TYPE_ARM64, CPU_TYPE_I386, CPU_TYPE_X86_64,
};
use goblin::mach::constants::{SECTION_TYPE, S_GB_ZEROFILL, S_THREAD_LOCAL_ZEROFILL, S_ZEROFILL};
use goblin::mach::symbols::{N_EXT, N_SECT, N_STAB, N_TYPE};
use goblin::mach::{MachO, MultiArch};

use crate::binary::{Builder, Rank, Segment};
use crate::{Arch, Binary, Error, Format, Section};

const F: Format = Format::MachO;

/// Picks the `arch` slice of a fat file and parses it.
pub(crate) fn parse_fat(bytes: &[u8], arch: Arch) -> Result<Binary, Error> {
    let multi = MultiArch::new(bytes).map_err(|e| Error::malformed(F, "fat header", e))?;
    let wanted = match arch {
        Arch::X86_64 => CPU_TYPE_X86_64,
        Arch::Aarch64 => CPU_TYPE_ARM64,
    };
    let mut present = Vec::new();
    // `iter_arches` stops being useful at the first unreadable entry, so a
    // garbage `nfat_arch` cannot make this loop long.
    for fat_arch in multi.iter_arches() {
        let fat_arch = fat_arch.map_err(|e| Error::malformed(F, "fat architecture table", e))?;
        if fat_arch.cputype != wanted {
            present.push(cpu_name(fat_arch.cputype));
            continue;
        }
        let (offset, size) = (u64::from(fat_arch.offset), u64::from(fat_arch.size));
        let what = || format!("{arch} slice");
        Error::check_range(F, what, offset, size, bytes.len())?;
        let slice = &bytes[offset as usize..(offset + size) as usize];
        return parse(slice, offset);
    }
    Err(Error::unsupported(format!(
        "fat Mach-O file without an {arch} slice (it has: {})",
        present.join(", ")
    )))
}

/// Parses a single-architecture image that starts `image_offset` bytes into
/// the input given to [`Binary::parse`].
pub(crate) fn parse(image: &[u8], image_offset: u64) -> Result<Binary, Error> {
    let macho = MachO::parse(image, 0)
        .map_err(|e| Error::malformed(F, "Mach-O header and load commands", e))?;
    if !macho.is_64 {
        return Err(Error::unsupported("32-bit Mach-O file"));
    }
    let mut builder = Builder::new(F);
    builder.image_offset(image_offset);
    for segment in &macho.segments {
        if segment.filesize > 0 {
            builder.segment(Segment {
                offset: segment.fileoff.wrapping_add(image_offset),
                file_size: segment.filesize,
                vaddr: segment.vmaddr,
                align: 0,
            });
        }
        for section in segment {
            let (section, _) = section.map_err(|e| {
                let what = format!("sections of segment {}", fixed_name(&segment.segname));
                Error::malformed(F, what, e)
            })?;
            let kind = section.flags & SECTION_TYPE;
            let zerofill = matches!(kind, S_ZEROFILL | S_GB_ZEROFILL | S_THREAD_LOCAL_ZEROFILL);
            let file_offset = (!zerofill).then(|| u64::from(section.offset) + image_offset);
            let segname = fixed_name(&section.segname);
            builder.section(
                Section {
                    name: fixed_name(&section.sectname),
                    addr: section.addr,
                    size: section.size,
                    file_offset,
                },
                &segname,
                file_offset.map(|o| (o, section.size)),
            );
        }
    }
    for symbol in macho.symbols() {
        let (name, nlist) = symbol.map_err(|e| Error::malformed(F, "symbol table", e))?;
        if nlist.n_type & N_STAB != 0 || nlist.n_type & N_TYPE != N_SECT {
            continue;
        }
        let rank = if nlist.n_type & N_EXT != 0 {
            Rank::Global
        } else {
            Rank::Local
        };
        let name = name.strip_prefix('_').unwrap_or(name);
        if !name.is_empty() {
            builder.symbol(name, nlist.n_value, rank);
        }
    }
    Ok(builder.finish("__DATA,__bss"))
}

/// A 16-byte, NUL-padded Mach-O name (not always NUL-terminated).
fn fixed_name(raw: &[u8; 16]) -> String {
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    String::from_utf8_lossy(&raw[..end]).into_owned()
}

fn cpu_name(cputype: u32) -> String {
    match cputype {
        CPU_TYPE_X86_64 => "x86_64".to_owned(),
        CPU_TYPE_ARM64 => "arm64".to_owned(),
        CPU_TYPE_I386 => "i386".to_owned(),
        CPU_TYPE_ARM => "arm".to_owned(),
        other => format!("cpu type {other:#x}"),
    }
}
