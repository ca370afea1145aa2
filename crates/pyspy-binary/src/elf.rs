//! ELF: sections from the section header table, symbols from `.symtab` and
//! `.dynsym`, load segments from `PT_LOAD` program headers.
//!
//! Rather than `goblin::elf::Elf::parse`, which also reads relocations,
//! version tables and pre-splits every string table, this reads only the
//! tables it needs with goblin's per-structure parsers, checking each range
//! first so a truncated file names the table that was cut off.

use goblin::container::{Container, Ctx, Endian};
use goblin::elf::header::{EI_CLASS, EI_DATA, ELFCLASS32, ELFCLASS64, ELFDATA2MSB};
use goblin::elf::program_header::{PT_DYNAMIC, PT_LOAD};
use goblin::elf::section_header::{SHN_XINDEX, SHT_DYNSYM, SHT_NOBITS, SHT_NULL, SHT_SYMTAB};
use goblin::elf::sym::{STB_LOCAL, STT_FUNC, STT_OBJECT};
use goblin::elf::{Elf, Header, ProgramHeader, SectionHeader, Sym, Symtab};

use crate::binary::{Builder, Rank, Segment};
use crate::{Binary, Error, Format, Section};

const F: Format = Format::Elf;
const EHDR_SIZE: u64 = 64;
const PHDR_SIZE: u64 = 56;
const SHDR_SIZE: u64 = 64;
const SYM_SIZE: u64 = 24;
/// Section indexes from here up are special (`SHN_ABS`, `SHN_COMMON`, ...).
const SHN_LORESERVE: usize = 0xff00;

pub(crate) fn parse(bytes: &[u8]) -> Result<Binary, Error> {
    let len = bytes.len();
    Error::check_range(F, || "ELF header".into(), 0, EHDR_SIZE, len)?;
    match bytes[EI_CLASS] {
        ELFCLASS64 => {}
        ELFCLASS32 => return Err(Error::unsupported("32-bit ELF file")),
        class => {
            return Err(Error::malformed(
                F,
                "ELF header",
                format!("unknown class {class}"),
            ))
        }
    }
    let header = Elf::parse_header(bytes).map_err(|e| Error::malformed(F, "ELF header", e))?;
    let endian = if header.e_ident[EI_DATA] == ELFDATA2MSB {
        Endian::Big
    } else {
        Endian::Little
    };
    let ctx = Ctx::new(Container::Big, endian);

    let phdrs = program_headers(bytes, &header, ctx)?;
    let shdrs = section_headers(bytes, &header, ctx)?;
    let mut builder = Builder::new(F);
    for ph in phdrs.iter().filter(|ph| ph.p_type == PT_LOAD) {
        builder.segment(Segment {
            offset: ph.p_offset,
            file_size: ph.p_filesz,
            vaddr: ph.p_vaddr,
            align: ph.p_align,
        });
    }

    let names = SectionNames::new(bytes, &header, &shdrs)?;
    for sh in shdrs.iter().filter(|sh| sh.sh_type != SHT_NULL) {
        let file_offset = (sh.sh_type != SHT_NOBITS).then_some(sh.sh_offset);
        let section = Section {
            name: names.get(sh),
            addr: sh.sh_addr,
            size: sh.sh_size,
            file_offset,
        };
        builder.section(section, "", file_offset.map(|o| (o, sh.sh_size)));
    }

    let mut has_dynsym = false;
    for sh in &shdrs {
        if sh.sh_type == SHT_SYMTAB || sh.sh_type == SHT_DYNSYM {
            has_dynsym |= sh.sh_type == SHT_DYNSYM;
            symbol_table(&mut builder, bytes, ctx, &shdrs, sh, &names.get(sh))?;
        }
    }
    if !has_dynsym && phdrs.iter().any(|ph| ph.p_type == PT_DYNAMIC) {
        dynamic_symbols_without_sections(&mut builder, bytes);
    }
    Ok(builder.finish(".bss"))
}

fn program_headers(bytes: &[u8], header: &Header, ctx: Ctx) -> Result<Vec<ProgramHeader>, Error> {
    let count = u64::from(header.e_phnum);
    if count == 0 {
        return Ok(Vec::new());
    }
    if u64::from(header.e_phentsize) != PHDR_SIZE {
        let detail = format!("entry size {} instead of {PHDR_SIZE}", header.e_phentsize);
        return Err(Error::malformed(F, "program header table", detail));
    }
    let what = || format!("program header table ({count} entries)");
    Error::check_range(F, what, header.e_phoff, count * PHDR_SIZE, bytes.len())?;
    ProgramHeader::parse(bytes, header.e_phoff as usize, count as usize, ctx)
        .map_err(|e| Error::malformed(F, "program header table", e))
}

fn section_headers(bytes: &[u8], header: &Header, ctx: Ctx) -> Result<Vec<SectionHeader>, Error> {
    if header.e_shoff == 0 {
        return Ok(Vec::new());
    }
    if u64::from(header.e_shentsize) != SHDR_SIZE {
        let detail = format!("entry size {} instead of {SHDR_SIZE}", header.e_shentsize);
        return Err(Error::malformed(F, "section header table", detail));
    }
    // With 0 entries the real count is in the first header's sh_size (for
    // files with more than 0xff00 sections); goblin reads it from there.
    let count = u64::from(header.e_shnum).max(1);
    let what = || format!("section header table ({} entries)", header.e_shnum);
    Error::check_range(F, what, header.e_shoff, count * SHDR_SIZE, bytes.len())?;
    let offset = usize::try_from(header.e_shoff).unwrap_or(usize::MAX);
    SectionHeader::parse(bytes, offset, usize::from(header.e_shnum), ctx)
        .map_err(|e| Error::malformed(F, "section header table", e))
}

/// The section header string table, for naming sections.
struct SectionNames<'a> {
    table: &'a [u8],
}

impl<'a> SectionNames<'a> {
    fn new(bytes: &'a [u8], header: &Header, shdrs: &[SectionHeader]) -> Result<Self, Error> {
        let mut index = usize::from(header.e_shstrndx);
        if index == SHN_XINDEX as usize {
            index = shdrs.first().map_or(0, |sh| sh.sh_link as usize);
        }
        let Some(sh) = shdrs.get(index).filter(|_| index != 0) else {
            return Ok(SectionNames { table: &[] });
        };
        let what = || format!("section name table (section {index})");
        Ok(SectionNames {
            table: string_table(bytes, sh, what)?,
        })
    }

    /// The section's name; lossy for non-UTF-8 names, empty when missing.
    fn get(&self, sh: &SectionHeader) -> String {
        let name = string_at(self.table, sh.sh_name as u64).unwrap_or_default();
        String::from_utf8_lossy(name).into_owned()
    }
}

/// The bytes of a string table section, checked to lie within the file.
fn string_table<'a>(
    bytes: &'a [u8],
    sh: &SectionHeader,
    what: impl FnOnce() -> String,
) -> Result<&'a [u8], Error> {
    Error::check_range(F, what, sh.sh_offset, sh.sh_size, bytes.len())?;
    // In range, so these conversions and the slice cannot fail.
    Ok(&bytes[sh.sh_offset as usize..(sh.sh_offset + sh.sh_size) as usize])
}

/// The NUL-terminated string at `offset` in a string table.
fn string_at(table: &[u8], offset: u64) -> Option<&[u8]> {
    let rest = table.get(usize::try_from(offset).ok()?..)?;
    let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
    Some(&rest[..end])
}

fn symbol_table(
    builder: &mut Builder,
    bytes: &[u8],
    ctx: Ctx,
    shdrs: &[SectionHeader],
    sh: &SectionHeader,
    name: &str,
) -> Result<(), Error> {
    let what = || format!("symbol table {name}");
    if sh.sh_entsize != SYM_SIZE {
        let detail = format!("entry size {} instead of {SYM_SIZE}", sh.sh_entsize);
        return Err(Error::malformed(F, what(), detail));
    }
    Error::check_range(F, what, sh.sh_offset, sh.sh_size, bytes.len())?;
    let link = sh.sh_link as usize;
    let Some(strtab) = shdrs.get(link).filter(|_| link != 0) else {
        let detail = format!("string table index {link} is not a section");
        return Err(Error::malformed(F, what(), detail));
    };
    let strings = string_table(bytes, strtab, || format!("string table of {name}"))?;
    let count = (sh.sh_size / SYM_SIZE) as usize;
    let symtab = Symtab::parse(bytes, sh.sh_offset as usize, count, ctx)
        .map_err(|e| Error::malformed(F, what(), e))?;
    for sym in symtab.iter() {
        if let Some((rank, addr)) = wanted(&sym) {
            let name = string_at(strings, sym.st_name as u64).unwrap_or_default();
            if let Ok(name) = std::str::from_utf8(name) {
                if !name.is_empty() {
                    builder.symbol(name, addr, rank);
                }
            }
        }
    }
    Ok(())
}

/// Whether a symbol is a defined object or function, and how strongly.
fn wanted(sym: &Sym) -> Option<(Rank, u64)> {
    let shndx = sym.st_shndx;
    let defined = shndx != 0 && (shndx < SHN_LORESERVE || shndx == SHN_XINDEX as usize);
    let kind = sym.st_type();
    if !defined || !(kind == STT_OBJECT || kind == STT_FUNC) {
        return None;
    }
    let rank = if sym.st_bind() == STB_LOCAL {
        Rank::Local
    } else {
        Rank::Global
    };
    Some((rank, sym.st_value))
}

/// For files without section headers (e.g. run through `sstrip`), finds
/// `.dynsym` through the dynamic segment, as the dynamic loader does. Uses
/// goblin's full parser in permissive mode, which sizes the table from the
/// hash tables; a failure here just means no dynamic symbols.
fn dynamic_symbols_without_sections(builder: &mut Builder, bytes: &[u8]) {
    let options = goblin::options::ParseOptions::permissive();
    let Ok(elf) = Elf::parse_with_opts(bytes, &options) else {
        return;
    };
    for sym in elf.dynsyms.iter() {
        if let Some((rank, addr)) = wanted(&sym) {
            if let Some(name) = elf.dynstrtab.get_at(sym.st_name) {
                if !name.is_empty() {
                    builder.symbol(name, addr, rank);
                }
            }
        }
    }
}
