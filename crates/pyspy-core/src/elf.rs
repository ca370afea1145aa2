//! The parts of an ELF64 little-endian core file this crate reads: the
//! program headers (`PT_LOAD` memory, `PT_NOTE`) and the notes (threads'
//! `NT_PRSTATUS`, `NT_PRPSINFO`, `NT_AUXV`, `NT_FILE`). Every offset and
//! count comes from the file and is checked against its length.

/// One `PT_LOAD` segment: `memsz` bytes of the process at `vaddr`, of which
/// the first `filesz` are in the core at `offset` (the rest was not dumped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Load {
    pub vaddr: u64,
    pub memsz: u64,
    pub filesz: u64,
    pub offset: u64,
    /// `PF_R`/`PF_W`/`PF_X` bits.
    pub flags: u32,
}

/// One `NT_FILE` entry: `[start, end)` maps `path` from byte `offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileMap {
    pub start: u64,
    pub end: u64,
    pub offset: u64,
    pub path: String,
}

/// A thread's `NT_PRSTATUS`: its tid and general registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoreThread {
    /// The thread's id (as the process saw it).
    pub tid: i32,
    /// x86-64 `user_regs_struct`, in its order (r15 ... gs).
    pub regs: [u64; 27],
}

impl CoreThread {
    /// `orig_rax`: the system call the thread was in, or -1.
    pub fn syscall(&self) -> i64 {
        self.regs[15] as i64
    }
    /// `rdi`: the first argument of that system call.
    pub fn arg0(&self) -> u64 {
        self.regs[14]
    }
}

/// What the headers and notes say.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub loads: Vec<Load>,
    pub files: Vec<FileMap>,
    pub threads: Vec<CoreThread>,
    pub pid: Option<i32>,
    pub fname: String,
    pub psargs: String,
    /// `AT_ENTRY` from the auxiliary vector.
    pub entry: Option<u64>,
    /// `AT_SYSINFO_EHDR`: where the vDSO is mapped.
    pub vdso: Option<u64>,
}

const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const NT_PRSTATUS: u32 = 1;
const NT_PRPSINFO: u32 = 3;
const NT_AUXV: u32 = 6;
const NT_FILE: u32 = 0x4649_4c45;
const AT_ENTRY: u64 = 9;
const AT_SYSINFO_EHDR: u64 = 33;
const EM_X86_64: u16 = 62;
/// `sizeof(struct elf_prstatus)` on x86-64, and where `pr_pid` and `pr_reg` sit.
const PRSTATUS_SIZE: usize = 336;
const PRSTATUS_PID: usize = 32;
const PRSTATUS_REG: usize = 112;
/// `struct elf_prpsinfo` on x86-64: `pr_pid`, `pr_fname[16]`, `pr_psargs[80]`.
const PRPSINFO_PID: usize = 24;
const PRPSINFO_FNAME: usize = 40;
const PRPSINFO_PSARGS: usize = 56;
/// Most program headers and `NT_FILE` entries believed (real cores have thousands at most).
const MAX_ENTRIES: u64 = 1 << 20;

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}
fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}
fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}
fn c_string(b: &[u8]) -> String {
    let end = b.iter().position(|c| *c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// Parses a core file's headers and notes; `Err` says why it is not one.
pub(crate) fn parse(b: &[u8]) -> Result<Parsed, String> {
    if b.len() < 64 || &b[..4] != b"\x7fELF" {
        return Err("not an ELF file".into());
    }
    if b[4] != 2 || b[5] != 1 {
        return Err("not a 64-bit little-endian ELF file".into());
    }
    let e_type = u16_at(b, 16).unwrap_or(0);
    if e_type != 4 {
        return Err(format!(
            "an ELF file of type {e_type}, not a core file (type 4)"
        ));
    }
    let machine = u16_at(b, 18).unwrap_or(0);
    if machine != EM_X86_64 {
        return Err(format!(
            "a core file of machine {machine}; only x86-64 (62) is read"
        ));
    }
    let phoff = u64_at(b, 32).ok_or("truncated ELF header")?;
    let phentsize = u64::from(u16_at(b, 54).ok_or("truncated ELF header")?);
    let phnum = u64::from(u16_at(b, 56).ok_or("truncated ELF header")?);
    if phentsize < 56 || phnum == 0 || phnum > MAX_ENTRIES {
        return Err(format!(
            "implausible program headers ({phnum} of {phentsize} bytes)"
        ));
    }
    let mut out = Parsed::default();
    for i in 0..phnum {
        let at = phoff
            .checked_add(i * phentsize)
            .and_then(|a| usize::try_from(a).ok())
            .filter(|a| a.checked_add(56).is_some_and(|e| e <= b.len()))
            .ok_or("truncated: the program headers run past the end of the file")?;
        let p_type = u32_at(b, at).unwrap_or(0);
        let flags = u32_at(b, at + 4).unwrap_or(0);
        let offset = u64_at(b, at + 8).unwrap_or(0);
        let vaddr = u64_at(b, at + 16).unwrap_or(0);
        let filesz = u64_at(b, at + 32).unwrap_or(0);
        let memsz = u64_at(b, at + 40).unwrap_or(0);
        match p_type {
            PT_LOAD => out.loads.push(Load {
                vaddr,
                memsz,
                filesz: filesz.min(memsz),
                offset,
                flags,
            }),
            PT_NOTE => {
                let notes = usize::try_from(offset)
                    .ok()
                    .and_then(|o| b.get(o..o.checked_add(usize::try_from(filesz).ok()?)?))
                    .ok_or("truncated: the notes run past the end of the file")?;
                parse_notes(notes, &mut out)?;
            }
            _ => {}
        }
    }
    out.loads.sort_by_key(|l| l.vaddr);
    out.files.sort_by_key(|f| f.start);
    if out.threads.is_empty() {
        return Err("no thread status notes (NT_PRSTATUS)".into());
    }
    Ok(out)
}

fn parse_notes(mut b: &[u8], out: &mut Parsed) -> Result<(), String> {
    let pad4 = |n: usize| n.checked_add(3).map(|n| n & !3);
    while b.len() >= 12 {
        let namesz = u32_at(b, 0).unwrap_or(0) as usize;
        let descsz = u32_at(b, 4).unwrap_or(0) as usize;
        let kind = u32_at(b, 8).unwrap_or(0);
        let name_end = pad4(namesz)
            .and_then(|n| n.checked_add(12))
            .ok_or("bad note")?;
        let desc_end = pad4(descsz)
            .and_then(|d| d.checked_add(name_end))
            .ok_or("bad note")?;
        let (Some(name), Some(desc)) = (b.get(12..12 + namesz), b.get(name_end..name_end + descsz))
        else {
            return Err("truncated note".into());
        };
        if c_string(name) == "CORE" {
            match kind {
                NT_PRSTATUS if desc.len() >= PRSTATUS_SIZE - 8 => {
                    let mut regs = [0u64; 27];
                    for (k, r) in regs.iter_mut().enumerate() {
                        *r = u64_at(desc, PRSTATUS_REG + 8 * k).unwrap_or(0);
                    }
                    out.threads.push(CoreThread {
                        tid: u32_at(desc, PRSTATUS_PID).unwrap_or(0) as i32,
                        regs,
                    });
                }
                NT_PRPSINFO if desc.len() >= PRPSINFO_PSARGS + 80 => {
                    out.pid = Some(u32_at(desc, PRPSINFO_PID).unwrap_or(0) as i32);
                    out.fname = c_string(&desc[PRPSINFO_FNAME..PRPSINFO_FNAME + 16]);
                    out.psargs = c_string(&desc[PRPSINFO_PSARGS..PRPSINFO_PSARGS + 80]);
                }
                NT_AUXV => {
                    let aux = |key| {
                        desc.chunks_exact(16)
                            .find(|kv| u64_at(kv, 0) == Some(key))
                            .and_then(|kv| u64_at(kv, 8))
                    };
                    out.entry = aux(AT_ENTRY);
                    out.vdso = aux(AT_SYSINFO_EHDR);
                }
                NT_FILE => parse_nt_file(desc, out)?,
                _ => {}
            }
        }
        b = b.get(desc_end..).unwrap_or(&[]);
    }
    Ok(())
}

fn parse_nt_file(desc: &[u8], out: &mut Parsed) -> Result<(), String> {
    let count = u64_at(desc, 0).ok_or("truncated NT_FILE")?;
    let page = u64_at(desc, 8).ok_or("truncated NT_FILE")?;
    if count > MAX_ENTRIES {
        return Err(format!("implausible NT_FILE ({count} entries)"));
    }
    let table_end = 16 + 24 * count as usize;
    let mut names = desc
        .get(table_end..)
        .ok_or("truncated NT_FILE")?
        .split(|c| *c == 0);
    for i in 0..count as usize {
        let at = 16 + 24 * i;
        let name = names.next().ok_or("truncated NT_FILE names")?;
        out.files.push(FileMap {
            start: u64_at(desc, at).unwrap_or(0),
            end: u64_at(desc, at + 8).unwrap_or(0),
            offset: u64_at(desc, at + 16).unwrap_or(0).saturating_mul(page),
            path: String::from_utf8_lossy(name).into_owned(),
        });
    }
    Ok(())
}

/// The `PF_*` flags of the `PT_LOAD` segment of ELF file `b` that a mapping
/// from file offset `offset` maps: gcore leaves executable segments of
/// binaries out of the core entirely (no program header), so whether such
/// a mapping was executable is known only from the binary. A loader maps a
/// segment from its offset rounded down to a page; the segment starting in
/// that page wins over one whose tail shares it.
pub(crate) fn segment_flags(b: &[u8], offset: u64) -> Option<u32> {
    if b.get(..4)? != b"\x7fELF" || b.get(4) != Some(&2) || b.get(5) != Some(&1) {
        return None;
    }
    let phoff = u64_at(b, 32)?;
    let phentsize = u64::from(u16_at(b, 54)?);
    let phnum = u64::from(u16_at(b, 56)?);
    if phentsize < 56 {
        return None;
    }
    let mut containing = None;
    for i in 0..phnum {
        let at = usize::try_from(phoff.checked_add(i * phentsize)?).ok()?;
        if u32_at(b, at)? != PT_LOAD {
            continue;
        }
        let (flags, p_offset, filesz) =
            (u32_at(b, at + 4)?, u64_at(b, at + 8)?, u64_at(b, at + 32)?);
        let from = p_offset & !0xfff;
        if from == offset {
            return Some(flags);
        }
        if offset > from && offset < p_offset.saturating_add(filesz) && containing.is_none() {
            containing = Some(flags);
        }
    }
    containing
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ELF64 file with these `PT_LOAD`s: `(flags, offset, filesz)`.
    fn elf_with(loads: &[(u32, u64, u64)]) -> Vec<u8> {
        let mut b = vec![0u8; 64];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[32..40].copy_from_slice(&64u64.to_le_bytes());
        b[54..56].copy_from_slice(&56u16.to_le_bytes());
        b[56..58].copy_from_slice(&(loads.len() as u16).to_le_bytes());
        for &(flags, offset, filesz) in loads {
            let mut p = vec![0u8; 56];
            p[..4].copy_from_slice(&PT_LOAD.to_le_bytes());
            p[4..8].copy_from_slice(&flags.to_le_bytes());
            p[8..16].copy_from_slice(&offset.to_le_bytes());
            p[32..40].copy_from_slice(&filesz.to_le_bytes());
            b.extend(p);
        }
        b
    }

    #[test]
    fn segment_flags_follow_the_mapped_offset() {
        // r--, r-x, then rw- starting inside the text's last page.
        let b = elf_with(&[(4, 0, 0x800), (5, 0x1000, 0x2000), (6, 0x2e10, 0x100)]);
        assert_eq!(segment_flags(&b, 0), Some(4));
        assert_eq!(segment_flags(&b, 0x1000), Some(5));
        assert_eq!(
            segment_flags(&b, 0x2000),
            Some(6),
            "the segment starting in that page"
        );
        assert_eq!(segment_flags(&b, 0x1800), Some(5), "inside the text");
        assert_eq!(segment_flags(&b, 0x9000), None);
        assert_eq!(segment_flags(b"not an elf", 0), None);
        assert_eq!(segment_flags(&b[..100], 0x1000), None, "truncated headers");
    }
}
