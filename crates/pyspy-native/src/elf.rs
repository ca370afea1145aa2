//! One ELF file as the unwinder and symbolizer need it: its architecture
//! (x86-64 or aarch64; other files are refused), loadable segments (for the
//! load bias), function symbols sorted by address, call-frame information
//! (`cfi.rs`), and DWARF line tables, built on first use.

use std::cell::OnceCell;
use std::sync::Arc;

use gimli::{BaseAddresses, DebugFrame, EhFrame, EndianSlice, LittleEndian, UnwindContext};
use goblin::elf::{program_header::PT_LOAD, section_header::SHT_NOBITS, sym, Elf};

use crate::cfi::{Cfi, Rules};
use crate::regs::Arch;

/// Byte slices that borrow from [`ElfFile::_bytes`]; see the safety note there.
pub(crate) type Slice = EndianSlice<'static, LittleEndian>;

/// Where an ELF file's bytes live.
pub(crate) enum Bytes {
    /// The file, mapped from `/proc/PID/root/...` or `/proc/PID/map_files/...`.
    Mapped(pyspy_process::MappedFile),
    /// A copy (the `[vdso]`, read from the target's memory).
    Owned(Vec<u8>),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// A function symbol. `name` borrows from the file's bytes.
#[derive(Clone, Copy)]
struct Symbol {
    addr: u64,
    /// 0 when the symbol table gives no size (then it ends where the next
    /// symbol starts).
    size: u64,
    name: &'static str,
}

/// A `PT_LOAD` segment.
#[derive(Debug, Clone, Copy)]
struct Load {
    offset: u64,
    vaddr: u64,
    filesz: u64,
    exec: bool,
}

/// A parsed ELF file.
pub(crate) struct ElfFile {
    symbols: Vec<Symbol>,
    loads: Vec<Load>,
    eh_frame: Option<Cfi<EhFrame<Slice>>>,
    debug_frame: Option<Cfi<DebugFrame<Slice>>>,
    /// DWARF sections, when the file has `.debug_info` and `.debug_line`.
    dwarf_sections: Option<gimli::Dwarf<Slice>>,
    lines: OnceCell<Option<addr2line::Context<Slice>>>,
    /// Has a `.symtab` (not stripped).
    #[cfg(all(test, target_os = "linux", target_arch = "x86_64"))]
    has_symtab: bool,
    /// The bytes every `'static` slice above borrows from. SAFETY: the
    /// slices are made `'static` by `extend`; they never leave this struct
    /// except borrowed from `&self`, and this field is declared last so it
    /// is dropped after everything that points into it. A mapped file is
    /// never unmapped or moved while this struct lives.
    _bytes: Arc<Bytes>,
}

/// Extends a borrow of `bytes` to `'static` (see [`ElfFile::_bytes`]).
fn extend(bytes: &[u8]) -> &'static [u8] {
    // SAFETY: see `ElfFile::_bytes`: callers only store the result inside the
    // `ElfFile` that owns the bytes.
    unsafe { std::slice::from_raw_parts(bytes.as_ptr(), bytes.len()) }
}

impl ElfFile {
    /// Parses `bytes`. Never panics on malformed input: a file that is not
    /// a 64-bit little-endian ELF is `None`; missing pieces are just absent.
    pub(crate) fn parse(bytes: Bytes) -> Option<ElfFile> {
        let bytes = Arc::new(bytes);
        let data = extend(&bytes);
        let elf = Elf::parse(data).ok()?;
        if !elf.is_64 || !elf.little_endian {
            return None;
        }
        let arch = Arch::from_elf_machine(elf.header.e_machine)?;
        let loads = elf
            .program_headers
            .iter()
            .filter(|p| p.p_type == PT_LOAD)
            .map(|p| Load {
                offset: p.p_offset,
                vaddr: p.p_vaddr,
                filesz: p.p_filesz,
                exec: p.is_executable(),
            })
            .collect();

        let section = |name: &str| {
            elf.section_headers.iter().find(|s| {
                elf.shdr_strtab.get_at(s.sh_name) == Some(name) && s.sh_type != SHT_NOBITS
            })
        };
        let contents = |name: &str| -> Option<(u64, &'static [u8])> {
            let s = section(name)?;
            // Compressed debug sections are not read (no zlib here).
            if s.sh_flags & u64::from(goblin::elf::section_header::SHF_COMPRESSED) != 0 {
                return None;
            }
            let start = usize::try_from(s.sh_offset).ok()?;
            let end = start.checked_add(usize::try_from(s.sh_size).ok()?)?;
            Some((s.sh_addr, data.get(start..end)?))
        };

        let mut bases = BaseAddresses::default();
        if let Some(text) = section(".text") {
            bases = bases.set_text(text.sh_addr);
        }
        if let Some(got) = section(".got") {
            bases = bases.set_got(got.sh_addr);
        }
        let eh_frame = contents(".eh_frame").map(|(addr, d)| {
            Cfi::eh_frame(arch, d, addr, contents(".eh_frame_hdr"), bases.clone())
        });
        let debug_frame = contents(".debug_frame").map(|(_, d)| Cfi::debug_frame(arch, d));

        let dwarf_sections = (contents(".debug_info").is_some()
            && contents(".debug_line").is_some())
        .then(|| {
            gimli::Dwarf::load(|id| -> Result<Slice, ()> {
                Ok(EndianSlice::new(
                    contents(id.name()).map(|(_, d)| d).unwrap_or(&[]),
                    LittleEndian,
                ))
            })
            .ok()
        })
        .flatten();

        let mut symbols = Vec::new();
        let mut ranked = Vec::new();
        for (syms, strtab) in [(&elf.syms, &elf.strtab), (&elf.dynsyms, &elf.dynstrtab)] {
            for s in syms.iter() {
                let typ = s.st_type();
                if s.st_value == 0 || s.st_shndx == 0 {
                    continue; // undefined or absolute zero
                }
                let rank = match typ {
                    sym::STT_FUNC | sym::STT_GNU_IFUNC => 0,
                    sym::STT_NOTYPE => 2,
                    _ => continue,
                };
                let rank = rank
                    + match s.st_bind() {
                        sym::STB_GLOBAL => 0,
                        sym::STB_WEAK => 1,
                        _ => 1,
                    };
                let Some(name) = strtab.get_at(s.st_name).filter(|n| !n.is_empty()) else {
                    continue;
                };
                // Local labels and mapping symbols are not functions.
                if name.starts_with(".L") || name.starts_with('$') {
                    continue;
                }
                ranked.push((s.st_value, rank, name.starts_with("__"), s.st_size, name));
            }
        }
        // For aliases at one address: functions over untyped labels, global
        // over local, and names that do not start with `__` (`select` over
        // `__select`), then the sized one.
        ranked.sort_unstable_by(|a, b| {
            (a.0, a.1, a.2, std::cmp::Reverse(a.3)).cmp(&(b.0, b.1, b.2, std::cmp::Reverse(b.3)))
        });
        for (addr, _, _, size, name) in ranked {
            if symbols.last().is_some_and(|s: &Symbol| s.addr == addr) {
                continue;
            }
            symbols.push(Symbol { addr, size, name });
        }

        #[cfg(all(test, target_os = "linux", target_arch = "x86_64"))]
        let has_symtab = !elf.syms.is_empty();

        Some(ElfFile {
            symbols,
            loads,
            eh_frame,
            debug_frame,
            dwarf_sections,
            lines: OnceCell::new(),
            #[cfg(all(test, target_os = "linux", target_arch = "x86_64"))]
            has_symtab,
            _bytes: bytes,
        })
    }

    /// The load bias of a mapping of this file at `start` holding file
    /// offset `offset`: runtime address minus link-time address. Within one
    /// `PT_LOAD` segment, `vaddr - offset` is the same for every byte, and
    /// a loader maps a segment from its offset rounded down to a page, so
    /// the segment whose page-rounded file range holds `offset` decides;
    /// the executable one wins when two share a page.
    pub(crate) fn bias(&self, start: u64, offset: u64, exec: bool) -> Option<u64> {
        let holds = |l: &&Load| {
            let from = l.offset & !0xfff;
            offset >= from && offset < l.offset.saturating_add(l.filesz.max(1))
        };
        let seg = self
            .loads
            .iter()
            .filter(holds)
            .find(|l| l.exec == exec)
            .or_else(|| self.loads.iter().find(holds))?;
        let link = seg.vaddr.wrapping_sub(seg.offset).wrapping_add(offset);
        Some(start.wrapping_sub(link))
    }

    /// The function symbol at link-time address `addr`: its (mangled) name
    /// and start.
    pub(crate) fn symbol(&self, addr: u64) -> Option<(&str, u64)> {
        let i = self.symbols.partition_point(|s| s.addr <= addr);
        let s = self.symbols.get(i.checked_sub(1)?)?;
        let inside = if s.size > 0 {
            addr - s.addr < s.size
        } else {
            // Unsized: up to the next symbol, and within some sane reach.
            self.symbols.get(i).is_none_or(|n| addr < n.addr) && addr - s.addr < 1 << 20
        };
        inside.then_some((s.name, s.addr))
    }

    /// Source locations of link-time address `addr`, innermost inlined
    /// function first: (function name, file, line). Empty without DWARF.
    pub(crate) fn lines(&self, addr: u64) -> Vec<(Option<String>, Option<String>, u32)> {
        let ctx = self.lines.get_or_init(|| {
            let dwarf = self.dwarf_sections.as_ref()?;
            // The Dwarf holds only slices: cloning it is cheap.
            let dwarf = gimli::Dwarf {
                debug_abbrev: dwarf.debug_abbrev,
                debug_addr: dwarf.debug_addr,
                debug_aranges: dwarf.debug_aranges,
                debug_info: dwarf.debug_info,
                debug_line: dwarf.debug_line,
                debug_line_str: dwarf.debug_line_str,
                debug_macinfo: dwarf.debug_macinfo,
                debug_macro: dwarf.debug_macro,
                debug_names: dwarf.debug_names,
                debug_str: dwarf.debug_str,
                debug_str_offsets: dwarf.debug_str_offsets,
                debug_types: dwarf.debug_types,
                locations: dwarf.locations,
                ranges: dwarf.ranges,
                file_type: dwarf.file_type,
                sup: None,
                abbreviations_cache: gimli::AbbreviationsCache::new(),
            };
            addr2line::Context::from_dwarf(dwarf).ok()
        });
        let mut out = Vec::new();
        let Some(ctx) = ctx else {
            return out;
        };
        let Ok(mut frames) = ctx.find_frames(addr).skip_all_loads() else {
            return out;
        };
        while let Ok(Some(frame)) = frames.next() {
            let name = frame
                .function
                .as_ref()
                .and_then(|f| f.raw_name().ok().map(|n| n.into_owned()));
            let (file, line) = match frame.location {
                Some(loc) => (loc.file.map(str::to_owned), loc.line.unwrap_or(0)),
                None => (None, 0),
            };
            out.push((name, file, line));
            if out.len() >= 64 {
                break;
            }
        }
        out
    }

    /// The unwind rules at link-time address `addr`, from `.eh_frame` or
    /// else `.debug_frame`; `None` when neither covers it.
    pub(crate) fn rules(&self, addr: u64, ctx: &mut UnwindContext<usize>) -> Option<Rules> {
        if let Some(cfi) = &self.eh_frame {
            if let Some(r) = cfi.rules(addr, ctx) {
                return Some(r);
            }
        }
        self.debug_frame.as_ref()?.rules(addr, ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    fn own_exe() -> ElfFile {
        let exe = std::fs::read("/proc/self/exe").unwrap();
        ElfFile::parse(Bytes::Owned(exe)).expect("our own executable parses")
    }

    #[test]
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    fn finds_own_functions_and_their_rules() {
        let elf = own_exe();
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        let exe = exe.to_string_lossy();
        let map = pyspy_process::parse_maps(&maps)
            .into_iter()
            .find(|m| m.exec && m.path.as_deref() == Some(&*exe))
            .unwrap();
        let bias = elf.bias(map.start as u64, map.offset, true).unwrap();
        let here = finds_own_functions_and_their_rules as *const () as usize as u64;
        let link = here.wrapping_sub(bias);
        if elf.has_symtab {
            let (name, start) = elf.symbol(link).expect("a symbol for this test");
            assert!(
                name.contains("finds_own_functions_and_their_rules"),
                "{name}"
            );
            assert!(start <= link);
        }
        let mut ctx = UnwindContext::new();
        let rules = elf.rules(link + 4, &mut ctx).expect("CFI for this test");
        assert_eq!(rules.ra, crate::cfi::Rule::Offset(-8));
    }

    /// A truncated or corrupted binary (a file rewritten while mapped) is
    /// parsed or refused, never a panic, and so are lookups in it.
    #[test]
    #[cfg(target_os = "linux")]
    fn survives_truncated_and_corrupted_files() {
        let exe = std::fs::read("/proc/self/exe").unwrap();
        let mut ctx = UnwindContext::new();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for i in 0..40u64 {
            let mut bytes = exe.clone();
            if i % 2 == 0 {
                bytes.truncate((next() % exe.len() as u64) as usize);
            } else {
                for _ in 0..64 {
                    let at = (next() % bytes.len() as u64) as usize;
                    bytes[at] = next() as u8;
                }
            }
            if let Some(elf) = ElfFile::parse(Bytes::Owned(bytes)) {
                for _ in 0..200 {
                    let addr = next() % (exe.len() as u64 * 2);
                    let _ = elf.symbol(addr);
                    let _ = elf.rules(addr, &mut ctx);
                }
                let _ = elf.lines(0x1000);
            }
        }
    }

    #[test]
    fn rejects_garbage() {
        assert!(ElfFile::parse(Bytes::Owned(b"not an elf".to_vec())).is_none());
        assert!(ElfFile::parse(Bytes::Owned(vec![0x7f, b'E', b'L', b'F', 2, 1, 1])).is_none());
    }
}
