//! Call-frame information of one ELF file (`.eh_frame`, with
//! `.eh_frame_hdr`'s search table when there is one, and `.debug_frame`),
//! searchable by address, and its rows turned into the owned [`Rules`] the
//! unwinder runs. What the rows mean depends on the file's architecture
//! (which column holds the return address, what a missing rule means), and
//! aarch64 CFI has its own instruction (`DW_CFA_AArch64_negate_ra_state`,
//! emitted for pointer authentication), which gimli parses only when told
//! the vendor: both come from the file's `e_machine`.

use std::cell::OnceCell;
use std::sync::Arc;

use gimli::{
    BaseAddresses, CfaRule, DebugFrame, EhFrame, LittleEndian, ParsedEhFrameHdr, Reader,
    RegisterRule, UnwindContext, UnwindSection, UnwindTableRow, Vendor,
};

use crate::elf::Slice;
use crate::regs::Arch;

/// How a caller's registers are found from a frame's (one row of CFI).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cfa {
    /// `register + offset`.
    Reg { reg: u16, offset: i64 },
    /// A DWARF expression that computes the CFA.
    Expr(Arc<[u8]>),
}

/// How one register of the caller is recovered.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Rule {
    /// Not recoverable (the return address: this is the outermost frame).
    Undefined,
    /// Unchanged.
    Same,
    /// Saved at `CFA + n`.
    Offset(i64),
    /// Equal to `CFA + n`.
    ValOffset(i64),
    /// In another register.
    Register(u16),
    /// Saved at the address an expression computes (with the CFA pushed).
    Expr(Arc<[u8]>),
    /// Equal to what an expression computes (with the CFA pushed).
    ValExpr(Arc<[u8]>),
}

/// The unwind rules at one address.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Rules {
    /// The architecture of the file the rules come from.
    pub(crate) arch: Arch,
    pub(crate) cfa: Cfa,
    /// Return address, then any other register with a rule, by DWARF number.
    pub(crate) ra: Rule,
    pub(crate) regs: Vec<(u16, Rule)>,
}

/// Call-frame information of one section, searchable by address.
pub(crate) struct Cfi<S> {
    arch: Arch,
    section: S,
    bases: BaseAddresses,
    /// `.eh_frame_hdr`'s sorted table, when present.
    hdr: Option<ParsedEhFrameHdr<Slice>>,
    /// Otherwise an index built on first use: (start, end, FDE offset).
    index: OnceCell<Vec<(u64, u64, usize)>>,
}

impl Cfi<EhFrame<Slice>> {
    /// `.eh_frame` at link-time address `addr`, with `.eh_frame_hdr` (at
    /// `hdr_addr`) when there is one; `bases` holds `.text` and `.got`.
    pub(crate) fn eh_frame(
        arch: Arch,
        data: &'static [u8],
        addr: u64,
        hdr: Option<(u64, &'static [u8])>,
        bases: BaseAddresses,
    ) -> Self {
        let bases = bases.set_eh_frame(addr);
        let hdr = hdr.and_then(|(hdr_addr, h)| {
            let bases = bases.clone().set_eh_frame_hdr(hdr_addr);
            gimli::EhFrameHdr::new(h, LittleEndian)
                .parse(&bases, 8)
                .ok()
                .filter(|p| p.table().is_some())
                .map(|p| (p, bases))
        });
        let (hdr, bases) = match hdr {
            Some((p, b)) => (Some(p), b),
            None => (None, bases),
        };
        let mut section = EhFrame::new(data, LittleEndian);
        section.set_address_size(8);
        section.set_vendor(vendor(arch));
        Cfi {
            arch,
            section,
            bases,
            hdr,
            index: OnceCell::new(),
        }
    }
}

impl Cfi<DebugFrame<Slice>> {
    /// `.debug_frame`.
    pub(crate) fn debug_frame(arch: Arch, data: &'static [u8]) -> Self {
        let mut section = DebugFrame::new(data, LittleEndian);
        section.set_address_size(8);
        section.set_vendor(vendor(arch));
        Cfi {
            arch,
            section,
            bases: BaseAddresses::default(),
            hdr: None,
            index: OnceCell::new(),
        }
    }
}

fn vendor(arch: Arch) -> Vendor {
    match arch {
        Arch::X86_64 => Vendor::Default,
        Arch::Aarch64 => Vendor::AArch64,
    }
}

impl<S: UnwindSection<Slice>> Cfi<S>
where
    S: HdrLookup,
{
    /// The unwind rules at link-time address `addr`; `None` when no FDE
    /// covers it (or its instructions do not parse).
    pub(crate) fn rules(&self, addr: u64, ctx: &mut UnwindContext<usize>) -> Option<Rules> {
        let fde = match &self.hdr {
            Some(hdr) => self.section.fde_via_hdr(hdr, &self.bases, addr)?,
            None => {
                let index = self.index.get_or_init(|| self.build_index());
                let i = index.partition_point(|e| e.0 <= addr).checked_sub(1)?;
                let (start, end, offset) = index[i];
                if addr < start || addr >= end {
                    return None;
                }
                let offset = S::Offset::from(offset);
                self.section
                    .fde_from_offset(&self.bases, offset, S::cie_from_offset)
                    .ok()?
            }
        };
        let row = fde
            .unwind_info_for_address(&self.section, &self.bases, ctx, addr)
            .ok()?;
        convert_row(self.arch, row, &self.section)
    }

    fn build_index(&self) -> Vec<(u64, u64, usize)> {
        let mut index = Vec::new();
        let mut entries = self.section.entries(&self.bases);
        while let Ok(Some(entry)) = entries.next() {
            if let gimli::CieOrFde::Fde(partial) = entry {
                if let Ok(fde) = partial.parse(S::cie_from_offset) {
                    let start = fde.initial_address();
                    let end = start.saturating_add(fde.len());
                    index.push((start, end, fde.offset()));
                }
            }
        }
        index.sort_unstable();
        index
    }
}

/// FDE lookup through `.eh_frame_hdr` (only `.eh_frame` has one).
pub(crate) trait HdrLookup: UnwindSection<Slice> {
    fn fde_via_hdr(
        &self,
        hdr: &ParsedEhFrameHdr<Slice>,
        bases: &BaseAddresses,
        addr: u64,
    ) -> Option<gimli::FrameDescriptionEntry<Slice>>;
}

impl HdrLookup for EhFrame<Slice> {
    fn fde_via_hdr(
        &self,
        hdr: &ParsedEhFrameHdr<Slice>,
        bases: &BaseAddresses,
        addr: u64,
    ) -> Option<gimli::FrameDescriptionEntry<Slice>> {
        hdr.table()?
            .fde_for_address(self, bases, addr, EhFrame::cie_from_offset)
            .ok()
    }
}

impl HdrLookup for DebugFrame<Slice> {
    fn fde_via_hdr(
        &self,
        _hdr: &ParsedEhFrameHdr<Slice>,
        _bases: &BaseAddresses,
        _addr: u64,
    ) -> Option<gimli::FrameDescriptionEntry<Slice>> {
        None
    }
}

/// Copies the rules of one CFI row into owned form (expressions included),
/// keeping only the registers the unwinder tracks.
fn convert_row<S: UnwindSection<Slice>>(
    arch: Arch,
    row: &UnwindTableRow<usize>,
    section: &S,
) -> Option<Rules> {
    let expr = |e: &gimli::UnwindExpression<usize>| -> Option<Arc<[u8]>> {
        let ex = e.get(section).ok()?;
        Some(Arc::from(ex.0.to_slice().ok()?.as_ref()))
    };
    let cfa = match row.cfa() {
        CfaRule::RegisterAndOffset { register, offset } => Cfa::Reg {
            reg: register.0,
            offset: *offset,
        },
        CfaRule::Expression(e) => Cfa::Expr(expr(e)?),
    };
    let rule = |r: &RegisterRule<usize>| -> Option<Rule> {
        Some(match r {
            RegisterRule::Undefined => Rule::Undefined,
            RegisterRule::SameValue => Rule::Same,
            RegisterRule::Offset(n) => Rule::Offset(*n),
            RegisterRule::ValOffset(n) => Rule::ValOffset(*n),
            RegisterRule::Register(r) => Rule::Register(r.0),
            RegisterRule::Expression(e) => Rule::Expr(expr(e)?),
            RegisterRule::ValExpression(e) => Rule::ValExpr(expr(e)?),
            // Only aarch64's RA_SIGN_STATE pseudo-register (34) gets a
            // constant, and it is not tracked: return addresses are
            // stripped whether signed or not.
            RegisterRule::Architectural | RegisterRule::Constant(_) => Rule::Undefined,
        })
    };
    let ra_column = arch.ra_column();
    // Without a rule for the return-address column: on x86-64 the return
    // address is not recoverable (an outermost frame); on aarch64 it is
    // still in the link register (a function that has not saved it).
    let ra = match row.register(gimli::Register(ra_column)) {
        Some(r) => rule(&r)?,
        None if arch.ra_default_same() => Rule::Same,
        None => Rule::Undefined,
    };
    let mut regs = Vec::new();
    for (reg, r) in row.registers() {
        if usize::from(reg.0) < arch.count() && reg.0 != ra_column {
            regs.push((reg.0, rule(r)?));
        }
    }
    Some(Rules {
        arch,
        cfa,
        ra,
        regs,
    })
}
