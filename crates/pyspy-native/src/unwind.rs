//! Walking a thread's native stack from its registers: DWARF CFI
//! (`.eh_frame`, `.debug_frame`) where a module has it, the frame-pointer
//! chain where it does not. The registers say the architecture (x86-64 or
//! aarch64), whichever this build's is; rules of a binary of another
//! architecture are not used.

use gimli::{EndianSlice, LittleEndian, UnwindContext};
use pyspy_process::Target;

use crate::blocks::Blocks;
use crate::cfi::{Cfa, Rule, Rules};
use crate::modules::Modules;
use crate::regs::{Arch, Registers};

/// Deepest native stack followed.
pub const MAX_NATIVE_FRAMES: usize = 2048;
/// Largest frame accepted from the frame-pointer chain (a bigger step means
/// `rbp`/`x29` does not hold a frame pointer).
const MAX_FP_STEP: u64 = 1 << 24;

/// How an unwind ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// At the outermost frame: its CFI says there is no caller (thread
    /// entry, `_start`), or the return address is 0.
    Complete,
    /// Stopped early: unreadable memory, no rule and no frame pointer, a
    /// stack that does not grow upwards, or too many frames.
    Truncated,
}

/// Unwinds from `regs`, pushing every frame's instruction pointer and
/// stack pointer (innermost first: the thread's own `rip`/`pc` and stack
/// pointer, then
/// each return address with its caller's stack pointer). A frame's stack
/// lies between its own stack pointer and the next frame's.
pub(crate) fn unwind(
    target: &dyn Target,
    modules: &mut Modules,
    blocks: &mut Blocks,
    ctx: &mut UnwindContext<usize>,
    mut regs: Registers,
    out: &mut Vec<(u64, u64)>,
) -> End {
    let mut refreshed = false;
    let mut first = true;
    loop {
        let (Some(ip), Some(sp)) = (regs.ip(), regs.sp()) else {
            return End::Truncated;
        };
        if ip == 0 {
            return End::Complete;
        }
        out.push((ip, sp));
        if out.len() >= MAX_NATIVE_FRAMES {
            return End::Truncated;
        }
        // A return address points after its call: look up the call itself.
        let leaf = first;
        let at = if leaf { ip } else { ip - 1 };
        first = false;
        let rules = match modules.rules(target, at, ctx) {
            Ok(r) => r,
            // Not in any mapping we know: a library loaded since the maps
            // were read? Read them again, once per unwind.
            Err(()) if !refreshed => {
                refreshed = true;
                modules.refresh(target);
                modules.rules(target, at, ctx).ok().flatten()
            }
            Err(()) => None,
        };
        let step = match rules.filter(|r| r.arch == regs.arch()) {
            Some(r) => step_cfi(target, blocks, &r, &regs),
            None => step_fp(target, blocks, &regs),
        };
        match step {
            Ok(next) => {
                // The stack grows down: every caller's frame is above. Only
                // an aarch64 leaf that has not moved the stack pointer
                // (`bl` pushes nothing) shares its caller's.
                let same_ok = leaf && regs.arch() == Arch::Aarch64;
                if next
                    .sp()
                    .is_none_or(|nsp| nsp < sp || (nsp == sp && !same_ok))
                {
                    return End::Truncated;
                }
                regs = next;
            }
            Err(end) => return end,
        }
    }
}

/// The caller's registers, or how the unwind ends here.
type Step = Result<Registers, End>;

fn step_cfi(target: &dyn Target, blocks: &mut Blocks, rules: &Rules, regs: &Registers) -> Step {
    let cfa = match &rules.cfa {
        Cfa::Reg { reg, offset } => regs.get(*reg).map(|v| v.wrapping_add(*offset as u64)),
        Cfa::Expr(e) => eval(target, blocks, e, regs, None),
    };
    let Some(cfa) = cfa else {
        return Err(End::Truncated);
    };
    let arch = regs.arch();
    let ra_column = arch.ra_column();
    let ra = match &rules.ra {
        Rule::Undefined => return Err(End::Complete),
        r => recover(target, blocks, r, cfa, regs, ra_column),
    };
    let Some(ra) = ra.map(|ra| arch.strip_return_address(ra)) else {
        return Err(End::Truncated);
    };
    let mut next = *regs;
    for (reg, rule) in &rules.regs {
        next.set(*reg, recover(target, blocks, rule, cfa, regs, *reg));
    }
    // On both architectures the CFA is the caller's stack pointer.
    next.set(arch.sp(), Some(cfa));
    // aarch64: the caller's link register held this return address (a
    // no-op on x86-64, whose return-address column is `%rip`: the ip below).
    next.set(ra_column, Some(ra));
    next.set_ip(Some(ra));
    if ra == 0 {
        return Err(End::Complete);
    }
    Ok(next)
}

fn recover(
    target: &dyn Target,
    blocks: &mut Blocks,
    rule: &Rule,
    cfa: u64,
    regs: &Registers,
    reg: u16,
) -> Option<u64> {
    match rule {
        Rule::Undefined => None,
        Rule::Same => regs.get(reg),
        Rule::Offset(n) => blocks.read_u64(target, cfa.wrapping_add(*n as u64)),
        Rule::ValOffset(n) => Some(cfa.wrapping_add(*n as u64)),
        Rule::Register(r) => regs.get(*r),
        Rule::Expr(e) => {
            let at = eval(target, blocks, e, regs, Some(cfa))?;
            blocks.read_u64(target, at)
        }
        Rule::ValExpr(e) => eval(target, blocks, e, regs, Some(cfa)),
    }
}

/// Runs a CFI DWARF expression (with the CFA pushed first for register
/// rules); its value, or `None` when it needs anything unavailable.
fn eval(
    target: &dyn Target,
    blocks: &mut Blocks,
    expr: &[u8],
    regs: &Registers,
    initial: Option<u64>,
) -> Option<u64> {
    let encoding = gimli::Encoding {
        address_size: 8,
        format: gimli::Format::Dwarf32,
        version: 4,
    };
    let mut e = gimli::Expression(EndianSlice::new(expr, LittleEndian)).evaluation(encoding);
    if let Some(v) = initial {
        e.set_initial_value(v);
    }
    let mut result = e.evaluate().ok()?;
    for _ in 0..64 {
        result = match result {
            gimli::EvaluationResult::Complete => {
                let pieces = e.result();
                return match pieces.first()?.location {
                    gimli::Location::Address { address } => Some(address),
                    gimli::Location::Value { value } => value.to_u64(u64::MAX).ok(),
                    _ => None,
                };
            }
            gimli::EvaluationResult::RequiresMemory { address, size, .. } => {
                let mut b = [0u8; 8];
                let n = usize::from(size).min(8);
                if !blocks.read(target, usize::try_from(address).ok()?, &mut b[..n]) {
                    return None;
                }
                e.resume_with_memory(gimli::Value::Generic(u64::from_le_bytes(b)))
                    .ok()?
            }
            gimli::EvaluationResult::RequiresRegister { register, .. } => {
                let v = regs.get(register.0)?;
                e.resume_with_register(gimli::Value::Generic(v)).ok()?
            }
            _ => return None,
        };
    }
    None
}

/// One step along the frame-pointer chain: the caller's frame pointer is
/// saved at `rbp` (`x29`), the return address just above it. The caller's
/// stack pointer is not known exactly; the record's end is a lower bound.
fn step_fp(target: &dyn Target, blocks: &mut Blocks, regs: &Registers) -> Step {
    let arch = regs.arch();
    let (Some(bp), Some(sp)) = (regs.bp(), regs.sp()) else {
        return Err(End::Truncated);
    };
    if bp == 0 && arch.zero_fp_ends_chain() {
        return Err(End::Complete);
    }
    if bp < sp || bp - sp > MAX_FP_STEP || bp % 8 != 0 {
        return Err(End::Truncated);
    }
    let (Some(saved_bp), Some(ra)) = (blocks.read_u64(target, bp), blocks.read_u64(target, bp + 8))
    else {
        return Err(End::Truncated);
    };
    let ra = arch.strip_return_address(ra);
    if ra == 0 {
        return Err(End::Complete);
    }
    let mut next = *regs;
    next.set(arch.fp(), Some(saved_bp));
    next.set(arch.sp(), Some(bp + 16));
    next.set(arch.ra_column(), Some(ra));
    next.set_ip(Some(ra));
    Ok(next)
}
