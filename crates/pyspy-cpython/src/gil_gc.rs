//! Where the GIL's locks and the garbage collector's `collecting` flag live.
//!
//! A thread that waits to take the GIL back sleeps in the kernel on a futex
//! inside the GIL's own structure (its condition variable or mutex; before
//! 3.2-style GILs, 2.7's semaphore), so the GIL's address range tells a GIL
//! wait from any other blocking wait. The collector sets `collecting` for the
//! length of a collection. This module only finds the addresses; reading
//! them per sample is `snapshot.rs`'s (the flag) and the sampler's (the
//! futex a thread waits on, from `/proc`).
//!
//! - 3.12+: `interp->ceval.gil` points at the GIL in use (read once set);
//!   3.7–3.11 embed it in `_PyRuntime.ceval.gil`; sizes from the headers.
//! - 3.6: four static variables (`gil_mutex`, `gil_cond`, `switch_mutex`,
//!   `switch_cond`), found by symbol (unstripped builds only).
//! - 2.7: the static `interpreter_lock` points at a `sem_t`: by symbol, or
//!   decoded from the exported `PyEval_ReleaseLock` in stripped builds.
//! - `collecting`: `_PyRuntime.gc` (3.7, 3.8), `interp->gc` (3.9+), or a
//!   static (2.7, 3.6: by symbol, or decoded from `PyGC_Collect`).

use pyspy_binary::Binary;

use crate::Offsets;

/// Where the GIL's locks are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GilLocation {
    /// Not found (a stripped 3.6 build, say): GIL waits look like any wait.
    #[default]
    Unknown,
    /// `len` bytes at `addr`.
    At {
        /// Start of the range.
        addr: usize,
        /// Bytes.
        len: usize,
    },
    /// `len` bytes at the address stored at `slot` (0 until it is set).
    Behind {
        /// Where the pointer lives.
        slot: usize,
        /// Bytes at the pointer.
        len: usize,
    },
}

/// `sizeof(sem_t)` on 64-bit glibc (2.7's GIL is one).
const SEM_SIZE: usize = 32;
/// `sizeof(pthread_cond_t)` and `sizeof(pthread_mutex_t)`, 64-bit glibc.
const COND_SIZE: usize = 48;
const MUTEX_SIZE: usize = 40;

/// What a binary's symbols (or exported code) say about the statics that
/// pre-3.7 versions keep the GIL and the collector's flag in; addresses
/// already relocated.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Statics {
    gil: GilLocation,
    gc_collecting: Option<usize>,
}

impl Statics {
    /// Looks the statics up in `binary` (`bytes` its file, `bias` its load
    /// bias). Only meaningful before 3.7; later versions use offsets.
    pub(crate) fn find(binary: &Binary, bytes: &[u8], bias: u64) -> Statics {
        let at = |a: u64| a.wrapping_add(bias) as usize;
        let cond_mutex = ["gil_mutex", "gil_cond", "switch_mutex", "switch_cond"]
            .map(|name| binary.symbol(name));
        let gil = if let [Some(m1), Some(c1), Some(m2), Some(c2)] = cond_mutex {
            let start = m1.min(c1).min(m2).min(c2);
            let end = (m1 + MUTEX_SIZE as u64)
                .max(m2 + MUTEX_SIZE as u64)
                .max(c1 + COND_SIZE as u64)
                .max(c2 + COND_SIZE as u64);
            // The four sit together in ceval.c's .bss; anything else is not them.
            if end - start <= 512 {
                GilLocation::At {
                    addr: at(start),
                    len: (end - start) as usize,
                }
            } else {
                GilLocation::Unknown
            }
        } else if let Some(slot) = binary
            .symbol("interpreter_lock")
            .or_else(|| load_target(binary, bytes, "PyEval_ReleaseLock"))
        {
            GilLocation::Behind {
                slot: at(slot),
                len: SEM_SIZE,
            }
        } else {
            GilLocation::Unknown
        };
        let gc_collecting = binary
            .symbol("collecting")
            .or_else(|| collecting_from_code(binary, bytes))
            .map(at);
        Statics { gil, gc_collecting }
    }
}

/// The GIL's location and the address of the collector's flag, for an
/// interpreter at `interp` of a runtime at `runtime`.
pub(crate) fn locate(
    o: &Offsets,
    runtime: usize,
    interp: usize,
    statics: Statics,
) -> (GilLocation, Option<usize>) {
    let gil = match (o.runtime_ceval_gil, o.interp_ceval_gil, o.gil_size) {
        (Some(off), _, Some(len)) => GilLocation::At {
            addr: runtime.wrapping_add(off),
            len,
        },
        (None, Some(off), Some(len)) => GilLocation::Behind {
            slot: interp.wrapping_add(off),
            len,
        },
        _ => statics.gil,
    };
    let gc = match (o.runtime_gc, o.interp_gc, o.gc_collecting) {
        (Some(gc), _, Some(flag)) => Some(runtime.wrapping_add(gc).wrapping_add(flag)),
        (None, Some(gc), Some(flag)) => Some(interp.wrapping_add(gc).wrapping_add(flag)),
        _ => statics.gc_collecting,
    };
    (gil, gc)
}

/// The bytes of the exported function `name`, up to `len`.
fn function_code<'a>(
    binary: &Binary,
    bytes: &'a [u8],
    name: &str,
    len: usize,
) -> Option<(u64, &'a [u8])> {
    let func = binary.symbol(name)?;
    let section = binary
        .sections()
        .iter()
        .find(|s| s.file_offset.is_some() && func >= s.addr && func - s.addr < s.size)?;
    let off = usize::try_from(section.file_offset?.checked_add(func - section.addr)?).ok()?;
    let end = off.checked_add(len)?.min(bytes.len());
    Some((func, bytes.get(off..end)?))
}

/// 2.7's `PyEval_ReleaseLock` passes `interpreter_lock` on in a tail call:
/// `48 8b 3d <disp32>` (`mov rdi, [rip + disp32]`) then `e9` (`jmp`). The
/// load's address is the static's.
fn load_target(binary: &Binary, bytes: &[u8], name: &str) -> Option<u64> {
    let (func, code) = function_code(binary, bytes, name, 8)?;
    if code.len() < 8 || code[..3] != [0x48, 0x8b, 0x3d] || code[7] != 0xe9 {
        return None;
    }
    let disp = i32::from_le_bytes(code[3..7].try_into().ok()?);
    Some(func.wrapping_add(7).wrapping_add(disp as i64 as u64))
}

/// `PyGC_Collect` (2.7, 3.6) starts `if (collecting) ... else { collecting
/// = 1; ...`: a `cmpl $0, disp32(%rip)` (`83 3d <disp32> 00`) and, soon
/// after, a `movl $1, disp32(%rip)` (`c7 05 <disp32> 01 00 00 00`) to the
/// same address. Both must agree, else `None`.
fn collecting_from_code(binary: &Binary, bytes: &[u8]) -> Option<u64> {
    let (func, code) = function_code(binary, bytes, "PyGC_Collect", 64)?;
    let target = |i: usize, len: usize| -> Option<u64> {
        let disp = i32::from_le_bytes(code.get(i + 2..i + 6)?.try_into().ok()?);
        Some(
            func.wrapping_add((i + len) as u64)
                .wrapping_add(disp as i64 as u64),
        )
    };
    let cmp = (0..code.len().saturating_sub(7))
        .find(|&i| code[i..i + 2] == [0x83, 0x3d] && code[i + 6] == 0)?;
    let flag = target(cmp, 7)?;
    let set = (cmp + 7..code.len().saturating_sub(10))
        .find(|&i| code[i..i + 2] == [0xc7, 0x05] && code[i + 6..i + 10] == [1, 0, 0, 0])?;
    (target(set, 10)? == flag).then_some(flag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_place_the_gil_and_the_flag() {
        let mut o = Offsets {
            runtime_ceval_gil: Some(100),
            gil_size: Some(208),
            runtime_gc: Some(300),
            gc_collecting: Some(20),
            ..Offsets::default()
        };
        let (gil, gc) = locate(&o, 0x1000, 0x9000, Statics::default());
        assert_eq!(
            gil,
            GilLocation::At {
                addr: 0x1064,
                len: 208
            }
        );
        assert_eq!(gc, Some(0x1000 + 320));
        o.runtime_ceval_gil = None;
        o.interp_ceval_gil = Some(8);
        o.runtime_gc = None;
        o.interp_gc = Some(40);
        let (gil, gc) = locate(&o, 0x1000, 0x9000, Statics::default());
        assert_eq!(
            gil,
            GilLocation::Behind {
                slot: 0x9008,
                len: 208
            }
        );
        assert_eq!(gc, Some(0x9000 + 60));
    }

    #[test]
    fn without_offsets_the_statics_are_used() {
        let statics = Statics {
            gil: GilLocation::At { addr: 5, len: 6 },
            gc_collecting: Some(7),
        };
        let (gil, gc) = locate(&Offsets::default(), 1, 2, statics);
        assert_eq!((gil, gc), (GilLocation::At { addr: 5, len: 6 }, Some(7)));
    }
}
