//! The parsed [`Binary`] and the format-independent questions it answers.

use std::collections::HashMap;
use std::fmt;

use crate::Error;

/// The container format of a parsed binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// ELF, as on Linux and the BSDs (64-bit only).
    Elf,
    /// Mach-O, as on macOS (64-bit only; fat files are reduced to one slice).
    MachO,
    /// PE/COFF, as on Windows (PE32+ only).
    Pe,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Elf => "ELF",
            Format::MachO => "Mach-O",
            Format::Pe => "PE",
        })
    }
}

/// The CPU architecture of a slice in a fat (universal) Mach-O file.
///
/// Only fat Mach-O files contain more than one architecture, so this only
/// matters to [`Binary::parse_arch`] on such files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arch {
    /// x86-64 (`CPU_TYPE_X86_64`).
    X86_64,
    /// 64-bit ARM (`CPU_TYPE_ARM64`).
    Aarch64,
}

impl Arch {
    /// The slice [`Binary::parse`] picks: `Aarch64` when this crate is
    /// compiled for aarch64, `X86_64` on every other host.
    pub const HOST: Arch = if cfg!(target_arch = "aarch64") {
        Arch::Aarch64
    } else {
        Arch::X86_64
    };
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "arm64",
        })
    }
}

/// One section of a binary, as its section table describes it.
///
/// Names are as stored in the file: ELF `.PyRuntime`, `.data`, `.bss`;
/// Mach-O the section name without its segment (`PyRuntime`, `__data`,
/// `__bss`); PE the 8-byte name (`PyRuntim`, `.data`) or, for long names
/// kept in the COFF string table, the full name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The section's name (see above for each format's convention).
    pub name: String,
    /// Link-time virtual address of the section's first byte (for PE this
    /// includes the image base). Add [`Binary::load_bias`] for the runtime address.
    pub addr: u64,
    /// Size in memory, in bytes.
    pub size: u64,
    /// Offset of the section's bytes in the input given to [`Binary::parse`];
    /// `None` when the section has no file contents (ELF `SHT_NOBITS`,
    /// Mach-O zerofill, PE uninitialised data). For a fat Mach-O file this
    /// already includes the slice's offset.
    pub file_offset: Option<u64>,
}

/// One file-backed piece of the memory image, used to compute the load bias
/// (an ELF `PT_LOAD`, a Mach-O segment, or the whole PE image).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Segment {
    /// Offset in the input (for PE: the RVA, 0 for the image start).
    pub(crate) offset: u64,
    /// Bytes backed by the file.
    pub(crate) file_size: u64,
    /// Link-time address of the byte at `offset`.
    pub(crate) vaddr: u64,
    /// Alignment the loader must honour (ELF `p_align`; 0 when unknown).
    pub(crate) align: u64,
}

/// Page sizes a loader may have used to round a segment's mapping down.
const PAGE_SIZES: [u64; 3] = [0x1000, 0x4000, 0x10000];

/// A parsed executable or shared library: its symbols, sections and loadable
/// segments. It owns everything it needs and keeps no reference to the bytes.
#[derive(Debug, Clone)]
pub struct Binary {
    format: Format,
    symbols: HashMap<String, u64>,
    sections: Vec<Section>,
    /// Per section, where its bytes are: `(offset, len)` in the input. The
    /// length can differ from `Section::size` (PE raw data is padded or short).
    data: Vec<Option<(u64, u64)>>,
    /// Per section, the Mach-O segment it belongs to (empty for ELF and PE).
    segment_names: Vec<String>,
    segments: Vec<Segment>,
    image_offset: u64,
    bss: Option<usize>,
}

impl Binary {
    /// Parses an ELF, Mach-O or PE file. For a fat Mach-O file, reads the
    /// slice of [`Arch::HOST`]; use [`Binary::parse_arch`] to choose another.
    ///
    /// Never panics, whatever the bytes: malformed input gives an [`Error`].
    pub fn parse(bytes: &[u8]) -> Result<Binary, Error> {
        crate::parse::parse(bytes, Arch::HOST)
    }

    /// Like [`Binary::parse`], but reads the `arch` slice of a fat Mach-O
    /// file (an error when there is none). `arch` is ignored for other files.
    pub fn parse_arch(bytes: &[u8], arch: Arch) -> Result<Binary, Error> {
        crate::parse::parse(bytes, arch)
    }

    /// The container format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Link-time address of a defined data or function symbol.
    ///
    /// ELF: from `.symtab` and `.dynsym` (objects and functions; global and
    /// weak symbols win over local ones of the same name). Mach-O: from the
    /// symbol table, with the leading `_` of C names stripped, so
    /// `symbol("_PyRuntime")` finds the C variable `_PyRuntime`. PE: from
    /// the export table (the address includes the image base).
    pub fn symbol(&self, name: &str) -> Option<u64> {
        self.symbols.get(name).copied()
    }

    /// How many distinct symbol names [`Binary::symbol`] knows.
    pub fn symbol_count(&self) -> usize {
        self.symbols.len()
    }

    /// The first section called `name` (see [`Section`] for naming). For
    /// Mach-O, `"SEGMENT,section"` (e.g. `"__DATA,__bss"`) also works and
    /// picks the section in that segment.
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.section_index(name).map(|i| &self.sections[i])
    }

    /// All sections, in section-table order.
    pub fn sections(&self) -> &[Section] {
        &self.sections
    }

    /// The file contents of section `name`, given the same `bytes` that were
    /// passed to [`Binary::parse`]. `None` for sections without contents
    /// (ELF `.bss`) or when the section lies outside `bytes`.
    pub fn section_data<'a>(&self, bytes: &'a [u8], name: &str) -> Option<&'a [u8]> {
        let (offset, len) = self.data[self.section_index(name)?]?;
        let start = usize::try_from(offset).ok()?;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        bytes.get(start..end)
    }

    /// The value to add to link-time addresses to get runtime addresses,
    /// given where one file-backed mapping of this binary sits in a process:
    /// `map_start` and `map_offset` as in a line of `/proc/PID/maps`.
    ///
    /// ELF: finds the `PT_LOAD` segment the mapping came from. A loader maps
    /// each segment from its file offset rounded down to a page, so the
    /// segment is, in order of preference: one whose file offset is exactly
    /// `map_offset`; one whose file offset rounds down to `map_offset` (by
    /// 4, 16 or 64 KiB pages, no more than its `p_align`); one whose file
    /// range contains `map_offset` (a mapping split later, e.g. by RELRO).
    /// A non-PIE executable gets 0; PIE executables and shared libraries get
    /// their load address. The mapping at offset 0 is never ambiguous, so
    /// prefer it: when one segment ends and the next starts in the same file
    /// page, other mappings can fit two segments.
    ///
    /// Mach-O: `map_offset` is a file offset in the input (a fat slice's
    /// header is at [`Binary::image_offset`]), matched against segments.
    ///
    /// PE: `map_offset` is an RVA; `load_bias(module_base, 0)` gives
    /// `module_base - ImageBase`.
    ///
    /// The result wraps around (use `wrapping_add`) when the binary was
    /// loaded below its link-time address. `None` when no segment fits.
    pub fn load_bias(&self, map_start: u64, map_offset: u64) -> Option<u64> {
        let starts_at = |s: &&Segment| s.offset == map_offset && s.file_size > 0;
        let starts_in_page = |s: &&Segment| {
            map_offset < s.offset
                && PAGE_SIZES.iter().any(|&page| {
                    page <= s.align.max(PAGE_SIZES[0]) && s.offset & !(page - 1) == map_offset
                })
        };
        let contains = |s: &&Segment| map_offset >= s.offset && map_offset - s.offset < s.file_size;
        let segment = (self.segments.iter().find(starts_at))
            .or_else(|| self.segments.iter().find(starts_in_page))
            .or_else(|| self.segments.iter().find(contains))?;
        // The mapping at `map_start` holds file offset `map_offset`, which
        // the segment places at `vaddr - (offset - map_offset)`.
        let link_addr = segment
            .vaddr
            .wrapping_sub(segment.offset)
            .wrapping_add(map_offset);
        Some(map_start.wrapping_sub(link_addr))
    }

    /// The zero-initialised data section (ELF and PE `.bss`, Mach-O
    /// `__DATA,__bss`), for scanning stripped binaries: at runtime it spans
    /// `addr + bias .. addr + bias + size`. On Mach-O, clang puts
    /// zero-initialised *global* variables in a separate zerofill section,
    /// `section("__common")`; `__bss` holds the file-local ones.
    pub fn bss(&self) -> Option<&Section> {
        self.bss.map(|i| &self.sections[i])
    }

    /// Where the parsed image starts in the input: the slice offset for a
    /// fat Mach-O file, 0 otherwise.
    pub fn image_offset(&self) -> u64 {
        self.image_offset
    }

    fn section_index(&self, name: &str) -> Option<usize> {
        if let Some(i) = self.sections.iter().position(|s| s.name == name) {
            return Some(i);
        }
        let (segment, section) = name.split_once(',')?;
        (0..self.sections.len())
            .find(|&i| self.segment_names[i] == segment && self.sections[i].name == section)
    }
}

/// How much a symbol definition should win over another of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Rank {
    /// File-local (ELF `STB_LOCAL`, Mach-O without `N_EXT`).
    Local,
    /// Visible to other files.
    Global,
}

/// Collects the pieces of a [`Binary`] while a format module reads them.
pub(crate) struct Builder {
    binary: Binary,
    symbols: HashMap<String, (u64, Rank)>,
}

impl Builder {
    pub(crate) fn new(format: Format) -> Self {
        Builder {
            binary: Binary {
                format,
                symbols: HashMap::new(),
                sections: Vec::new(),
                data: Vec::new(),
                segment_names: Vec::new(),
                segments: Vec::new(),
                image_offset: 0,
                bss: None,
            },
            symbols: HashMap::new(),
        }
    }

    /// Records a symbol unless one of at least the same rank already exists:
    /// the first global definition of a name wins.
    pub(crate) fn symbol(&mut self, name: &str, addr: u64, rank: Rank) {
        // Look up before inserting so that repeated names allocate nothing.
        match self.symbols.get_mut(name) {
            Some(old) if old.1 >= rank => {}
            Some(old) => *old = (addr, rank),
            None => {
                self.symbols.insert(name.to_owned(), (addr, rank));
            }
        }
    }

    /// Records a section; `data` is where its bytes are in the input.
    pub(crate) fn section(&mut self, section: Section, segment: &str, data: Option<(u64, u64)>) {
        self.binary.sections.push(section);
        self.binary.segment_names.push(segment.to_owned());
        self.binary.data.push(data);
    }

    pub(crate) fn segment(&mut self, segment: Segment) {
        self.binary.segments.push(segment);
    }

    pub(crate) fn image_offset(&mut self, offset: u64) {
        self.binary.image_offset = offset;
    }

    /// Finishes the binary; `bss` names its zero-initialised section as
    /// [`Binary::section`] would look it up.
    pub(crate) fn finish(mut self, bss: &str) -> Binary {
        self.binary.bss = self.binary.section_index(bss);
        self.binary.symbols = (self.symbols.into_iter())
            .map(|(name, (addr, _))| (name, addr))
            .collect();
        self.binary
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_symbols_win_over_local_ones() {
        let mut builder = Builder::new(Format::Elf);
        builder.symbol("a", 1, Rank::Local);
        builder.symbol("a", 2, Rank::Global);
        builder.symbol("b", 3, Rank::Global);
        builder.symbol("b", 4, Rank::Local);
        builder.symbol("b", 5, Rank::Global);
        builder.symbol("c", 6, Rank::Local);
        builder.symbol("c", 7, Rank::Local);
        let binary = builder.finish(".bss");
        assert_eq!(binary.symbol("a"), Some(2));
        assert_eq!(binary.symbol("b"), Some(3), "the first global wins");
        assert_eq!(binary.symbol("c"), Some(6), "the first local wins");
        assert_eq!(binary.symbol_count(), 3);
    }

    /// PT_LOADs as rust-lld lays them out, with segments starting mid-page
    /// right after the previous one ends (from a real test binary).
    fn packed_elf() -> Binary {
        let mut builder = Builder::new(Format::Elf);
        for (offset, file_size, vaddr) in [
            (0, 0x851f4, 0),
            (0x85200, 0x1ad4f0, 0x86200),
            (0x2326f0, 0x191b0, 0x2346f0),
            (0x24b8a0, 0x9f0, 0x24e8a0),
        ] {
            builder.segment(Segment {
                offset,
                file_size,
                vaddr,
                align: 0x1000,
            });
        }
        builder.finish(".bss")
    }

    #[test]
    fn each_segment_mapping_gives_the_bias() {
        let binary = packed_elf();
        let base = 0x5569_e1aa_0000;
        for segment in &binary.segments {
            let (start, offset) = (base + (segment.vaddr & !0xfff), segment.offset & !0xfff);
            assert_eq!(binary.load_bias(start, offset), Some(base), "{segment:x?}");
        }
        // A later piece of the third segment, split off by mprotect.
        assert_eq!(binary.load_bias(base + 0x24_2000, 0x24_0000), Some(base));
    }

    #[test]
    fn larger_pages_only_up_to_the_alignment() {
        let binary = packed_elf();
        // 64 KiB rounding of the second segment's offset 0x85200 is 0x80000,
        // but with p_align 0x1000 no loader rounds that far; 0x80000 is in
        // the middle of the first segment.
        assert_eq!(
            binary.load_bias(0x10_0000 + 0x8_0000, 0x8_0000),
            Some(0x10_0000)
        );
    }
}
